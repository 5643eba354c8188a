#!/usr/bin/env bash
# berth's execution environment (execution-environment.yml) on the local
# engine, built on the lab's own base image and cached by the hash of what
# goes into it.
#
#   ee.sh tag     print the image reference for the current inputs
#   ee.sh build   make sure that image exists
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
stage=$top/.cache/ee/stage
export DOCKER_BUILDKIT=0 # the classic builder needs no buildx plugin

die() {
  echo "berth: $*" >&2
  exit 1
}

stage_inputs() {
  local tarball
  tarball=$("$top/scripts/collection.sh" build)
  rm -rf "$stage"
  mkdir -p "$stage/local-ca"
  cp "$tarball" "$stage/berth-ops.tar.gz"
  # The build host's own CAs; none on most machines.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$stage/local-ca/"
  fi
  touch "$stage/local-ca/.keep"
  # The collections of requirements.yml, at their pinned versions, taken
  # from the pinned ansible package of this venv (Galaxy is out of reach and
  # the whole package is 30 times bigger than what berth uses).
  python3 - "$top/requirements.yml" "$stage/collections" <<'PY' || die "requirements.yml does not match the ansible package"
import json, os, shutil, sys
import ansible_collections, yaml
wanted = yaml.safe_load(open(sys.argv[1]))["collections"]
for entry in wanted:
    namespace, name = entry["name"].split(".")
    for root in ansible_collections.__path__:
        source = os.path.join(root, namespace, name)
        if os.path.exists(os.path.join(source, "MANIFEST.json")) and not os.path.islink(source):
            break
    else:
        sys.exit("berth: %s is not in the ansible package" % entry["name"])
    version = json.load(open(os.path.join(source, "MANIFEST.json")))["collection_info"]["version"]
    if version != entry["version"]:
        sys.exit("berth: %s is %s in the ansible package, requirements.yml pins %s" % (entry["name"], version, entry["version"]))
    shutil.copytree(source, os.path.join(sys.argv[2], "ansible_collections", namespace, name), ignore=shutil.ignore_patterns("__pycache__"))
PY
  # What the image is made of: the recipe, the collection's inputs (the
  # tarball itself carries build times), the base image and the CAs.
  {
    cat "$top/execution-environment.yml" "$top/bindep.txt" "$top/scripts/ee.sh" "$tarball.inputs" "$top/requirements.yml"
    "$top/scripts/host-image.sh" tag
    cat "$stage"/local-ca/*.crt 2>/dev/null || true
    ansible-builder --version
  } | sha256sum | cut -c1-12 >"$stage/hash"
}

case "${1:-}" in
  tag)
    stage_inputs
    echo "berth/ee:$(cat "$stage/hash")"
    ;;
  build)
    stage_inputs
    tag="berth/ee:$(cat "$stage/hash")"
    if docker image inspect "$tag" >/dev/null 2>&1; then
      echo "berth: execution environment $tag (cached)"
      exit 0
    fi
    base=$("$top/scripts/host-image.sh" tag)
    docker image inspect "$base" >/dev/null 2>&1 || "$top/scripts/host-image.sh" build
    log=$top/.cache/ee/build.log
    (cd "$top" && ansible-builder build -f execution-environment.yml -c "$top/.cache/ee/context" \
      --container-runtime docker --build-arg "EE_BASE_IMAGE=$base" -t "$tag" -v 3) >"$log" 2>&1 || {
      tail -n 40 "$log" >&2
      die "building $tag failed (see $log)"
    }
    docker tag "$tag" berth/ee:latest
    echo "berth: built execution environment $tag"
    # Older builds are dead weight; keep any that a container still uses.
    docker image ls berth/ee --format '{{.Repository}}:{{.Tag}}' |
      grep -vx -e "$tag" -e berth/ee:latest | xargs -r docker rmi >/dev/null 2>&1 || true
    ;;
  *) die "usage: ee.sh tag|build" ;;
esac
