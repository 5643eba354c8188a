#!/usr/bin/env bash
# The collection berth.ops, built from the repo's own files.
#
#   collection.sh build     build .cache/collection/berth-ops-<version>.tar.gz
#                           (again only when a file that goes into it changed)
#                           and print its path
#   collection.sh install   build, then install it with ansible-galaxy into a
#                           temporary path and print that path
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/.cache/collection

die() {
  echo "berth: $*" >&2
  exit 1
}

version=$(sed -n 's/^version: *//p' "$top/galaxy.yml")
[ -n "$version" ] || die "galaxy.yml has no version"
tarball=$out/berth-ops-$version.tar.gz

build() {
  mkdir -p "$out"
  # make test builds from two lab sessions and sanity at once: one at a time.
  exec 9>"$out/.lock"
  flock 9
  # The build walks the tree; hash what it would take (galaxy.yml's
  # build_ignore left out) so an unchanged tree reuses the tarball, and a
  # file a command writes into the checkout (the README's image.txt) does
  # not make a new one.
  local want
  want=$(cd "$top" && git ls-files -co --exclude-standard | python3 -c '
import fnmatch, hashlib, os, sys
import yaml
ignore = yaml.safe_load(open("galaxy.yml")).get("build_ignore") or []
def ignored(path):
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(os.path.basename(p), pattern) for p in prefixes for pattern in ignore)
digest = hashlib.sha256()
for path in sorted(sys.stdin.read().splitlines()):
    if ignored(path):
        continue
    if os.path.isfile(path) and not os.path.islink(path):
        digest.update(path.encode() + b"\0" + open(path, "rb").read())
    elif os.path.islink(path):
        digest.update(path.encode() + b"->" + os.readlink(path).encode())
print(digest.hexdigest()[:16])')
  if [ -f "$tarball" ] && [ "$(cat "$tarball.inputs" 2>/dev/null)" = "$want" ]; then
    echo "$tarball"
    return 0
  fi
  (cd "$top" && ansible-galaxy collection build --force --output-path "$out" .) >"$out/build.log" 2>&1 || {
    cat "$out/build.log" >&2
    die "ansible-galaxy collection build failed"
  }
  echo "$want" >"$tarball.inputs"
  echo "$tarball"
}

case "${1:-}" in
  build) build ;;
  install)
    build >/dev/null
    dest=$(mktemp -d "${TMPDIR:-/tmp}/berth-collection.XXXXXX")
    ANSIBLE_COLLECTIONS_PATH=$dest ansible-galaxy collection install --offline --no-deps --force \
      -p "$dest" "$tarball" >"$out/install.log" 2>&1 || {
      cat "$out/install.log" >&2
      die "ansible-galaxy collection install failed"
    }
    echo "$dest"
    ;;
  *) die "usage: collection.sh build|install" ;;
esac
