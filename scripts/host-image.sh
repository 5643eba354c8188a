#!/usr/bin/env bash
# Lab host image, cached by the hash of its recipe.
#
#   host-image.sh tag [RELEASE]    print the image reference of one Debian
#                                  release (default: bookworm)
#   host-image.sh build [RELEASE]  make sure the images exist (default: every
#                                  release the lab runs); pull debian:RELEASE
#                                  and build on it, or debootstrap + import
#   host-image.sh env              BERTH_HOST_IMAGE=... (bookworm) and
#                                  BERTH_HOST_IMAGE_TRIXIE=..., for `env`
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
recipe_dir=$top/images/host
mirror=${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
export DOCKER_BUILDKIT=0   # the classic builder needs no buildx plugin

die() {
  echo "berth: $*" >&2
  exit 1
}

# The releases a lab host can run (playbooks/vars/lab_topology.yml).
releases="bookworm trixie"

recipe_hash() {
  (cd "$top" && echo "$1" && cat images/host/Dockerfile images/host/packages.txt \
    images/host/configure.sh images/host/berth_lab_pycache.py scripts/host-image.sh) | sha256sum | cut -c1-12
}

image_tag() {
  case " $releases " in
    *" $1 "*) ;;
    *) die "unknown release '$1' (known: $releases)" ;;
  esac
  # bookworm keeps the bare hash: it is the base every other image names.
  if [ "$1" = bookworm ]; then echo "berth/host:$(recipe_hash "$1")"; else echo "berth/host:$1-$(recipe_hash "$1")"; fi
}

debootstrap_base() {
  local release=$1 rootfs_tag=$2 work
  command -v debootstrap >/dev/null 2>&1 || {
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
  } >/dev/null || die "cannot install debootstrap"
  work=$(mktemp -d "${TMPDIR:-/tmp}/berth-rootfs.XXXXXX")
  echo "berth: no registry answers; building the $release rootfs with debootstrap ($mirror)"
  debootstrap --variant=minbase \
    --include="$(grep -v '^#' "$recipe_dir/packages.txt" | paste -sd, -)" \
    "$release" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    rm -rf "$work"
    die "debootstrap failed"
  }
  tar -C "$work/rootfs" -c . | docker import - "$rootfs_tag" >/dev/null
  rm -rf "$work"
}

build_one() {
  local release=$1 tag
  tag=$(image_tag "$release")
  if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "berth: host image $tag (cached)"
    return 0
  fi
  local base=debian:$release rootfs_tag="berth/host-rootfs:${tag#*:}"
  if ! timeout 120 docker pull -q "$base" >/dev/null 2>&1; then
    debootstrap_base "$release" "$rootfs_tag"
    base=$rootfs_tag
  fi
  local log
  log=$(mktemp)
  docker build --build-arg "BASE=$base" --label "berth.recipe=${tag#*:}" \
    -t "$tag" "$recipe_dir" >"$log" 2>&1 || {
    tail -n 30 "$log" >&2
    rm -f "$log"
    die "building $tag failed"
  }
  rm -f "$log"
  if [ "$base" = "$rootfs_tag" ]; then docker rmi "$rootfs_tag" >/dev/null; fi
  echo "berth: built host image $tag"
}

build() {
  local release current=()
  # One build at a time: make test starts its slots while the images are
  # made, and a second caller waits here, then finds them cached.
  mkdir -p "$top/.cache"
  exec 9>"$top/.cache/host-image.lock"
  flock 9
  # shellcheck disable=SC2086  # the release list is words
  [ $# -gt 0 ] || set -- $releases
  for release in "$@"; do
    build_one "$release"
  done
  # Older recipes are dead weight; keep any that a container still uses.
  for release in $releases; do current+=(-e "$(image_tag "$release")"); done
  # Only berth/host: images built on one (the EE) inherit its label.
  docker image ls berth/host --filter label=berth.recipe --format '{{.Repository}}:{{.Tag}}' |
    grep -vxF "${current[@]}" | xargs -r docker rmi >/dev/null 2>&1 || true
}

case "${1:-}" in
  tag) image_tag "${2:-bookworm}" ;;
  build) shift && build "$@" ;;
  env) echo "BERTH_HOST_IMAGE=$(image_tag bookworm) BERTH_HOST_IMAGE_TRIXIE=$(image_tag trixie)" ;;
  *) die "usage: host-image.sh tag [RELEASE] | build [RELEASE...] | env" ;;
esac
