#!/usr/bin/env bash
# Docker engine for the lab and the tests.
#
#   engine.sh ensure          install docker.io if no dockerd exists, start a
#                             daemon if none answers (and remember that berth
#                             started it)
#   engine.sh release         stop the daemon only if berth started it
#   engine.sh run -- CMD...   ensure, run CMD, then stop the daemon again if
#                             this very call started it
#
# A daemon that was already answering is never stopped.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
state_dir=${BERTH_ENGINE_STATE:-$top/.cache/engine}
marker=$state_dir/started-by-berth   # "systemd" or the pid of our dockerd
pidfile=$state_dir/dockerd.pid
log=$state_dir/dockerd.log

die() {
  echo "berth: $*" >&2
  exit 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@" || die "needs root for '$1': run as root or with sudo"
  else
    die "needs root for '$1': run as root or with sudo"
  fi
}

answers() {
  command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1
}

has_systemd() {
  [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

install_engine() {
  if command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; then
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 ||
    die "no Docker engine installed and no apt-get to install docker.io with"
  echo "berth: installing Docker Engine (Debian package docker.io)"
  {
    as_root apt-get update -q &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends docker.io ca-certificates
  } >"$state_dir/apt.log" 2>&1 ||
    die "no Docker engine: installing docker.io failed (see $state_dir/apt.log)"
}

wait_until_answering() {
  local i
  for i in $(seq 1 60); do
    answers && return 0
    sleep 1
  done
  return 1
}

start_engine() {
  if has_systemd && systemctl cat docker.service >/dev/null 2>&1; then
    as_root systemctl start docker.service >>"$log" 2>&1 ||
      die "no Docker engine: 'systemctl start docker' failed (see $log)"
    echo systemd >"$marker"
  else
    as_root setsid nohup dockerd --pidfile "$pidfile" >>"$log" 2>&1 </dev/null &
    echo $! >"$marker"
  fi
  if ! wait_until_answering; then
    stop_engine
    die "no Docker engine: dockerd did not answer within 60 s (see $log)"
  fi
  echo "berth: started a Docker engine (log: $log)"
}

stop_engine() {
  [ -f "$marker" ] || return 0
  local how
  how=$(cat "$marker")
  if [ "$how" = systemd ]; then
    as_root systemctl stop docker.service docker.socket || true
  else
    local pid
    pid=$(cat "$pidfile" 2>/dev/null || echo "$how")
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
      as_root kill -TERM "$pid"
      for _ in $(seq 1 30); do
        [ -d "/proc/$pid" ] || break
        sleep 1
      done
    fi
  fi
  rm -f "$marker"
  echo "berth: stopped the Docker engine that berth had started"
}

ensure() {
  mkdir -p "$state_dir"
  answers && return 1
  install_engine
  answers && return 1
  start_engine
  return 0
}

case "${1:-}" in
  ensure)
    ensure || true
    ;;
  release)
    stop_engine
    ;;
  run)
    shift
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || die "usage: engine.sh run -- COMMAND..."
    if ensure; then trap stop_engine EXIT; fi
    rc=0
    "$@" || rc=$?
    exit "$rc"
    ;;
  *)
    die "usage: engine.sh ensure|release|run -- COMMAND..."
    ;;
esac
