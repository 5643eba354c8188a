#!/usr/bin/env bash
# Lab host image, cached by the hash of its recipe.
#
#   host-image.sh tag     print the image reference for the current recipe
#   host-image.sh build   make sure that image exists (pull debian:bookworm
#                         and build on it, or debootstrap + docker import)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
recipe_dir=$top/images/host
mirror=${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
export DOCKER_BUILDKIT=0   # the classic builder needs no buildx plugin

die() {
  echo "berth: $*" >&2
  exit 1
}

recipe_hash() {
  (cd "$top" && cat images/host/Dockerfile images/host/packages.txt \
    images/host/configure.sh images/host/berth_lab_pycache.py scripts/host-image.sh) | sha256sum | cut -c1-12
}

tag="berth/host:$(recipe_hash)"

debootstrap_base() {
  local rootfs_tag=$1 work
  command -v debootstrap >/dev/null 2>&1 || {
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
  } >/dev/null || die "cannot install debootstrap"
  work=$(mktemp -d "${TMPDIR:-/tmp}/berth-rootfs.XXXXXX")
  echo "berth: no registry answers; building the rootfs with debootstrap ($mirror)"
  debootstrap --variant=minbase \
    --include="$(grep -v '^#' "$recipe_dir/packages.txt" | paste -sd, -)" \
    bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    rm -rf "$work"
    die "debootstrap failed"
  }
  tar -C "$work/rootfs" -c . | docker import - "$rootfs_tag" >/dev/null
  rm -rf "$work"
}

build() {
  if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "berth: host image $tag (cached)"
    return 0
  fi
  local base=debian:bookworm rootfs_tag="berth/host-rootfs:${tag#*:}"
  if ! timeout 120 docker pull -q "$base" >/dev/null 2>&1; then
    debootstrap_base "$rootfs_tag"
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
  # Older recipes are dead weight; keep any that a container still uses.
  docker image ls --filter label=berth.recipe --format '{{.Repository}}:{{.Tag}}' |
    grep -vx "$tag" | xargs -r docker rmi >/dev/null 2>&1 || true
}

case "${1:-}" in
  tag) echo "$tag" ;;
  build) build ;;
  *) die "usage: host-image.sh tag|build" ;;
esac
