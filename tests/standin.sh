#!/usr/bin/env bash
# Starts or stops an API stand-in (tests/<kind>_standin) in the background,
# for the Molecule scenarios that play Harbor or Rancher on the control host.
#
#   standin.sh start KIND DIR [server options]   prints "started" or "running"
#   standin.sh stop KIND DIR                     prints "stopped" or "none"
#
# DIR holds <kind>-standin.pid, .log (the server's output, "violation:"
# lines included) and .url. The password comes from the file named by
# STANDIN_PASSWORD_FILE and reaches the server through its environment,
# never its command line. timeout bounds a server no cleanup ever stopped.
set -euo pipefail
action=$1 kind=$2 dir=$3
shift 3
tests=$(cd "$(dirname "$0")" && pwd)
base=$dir/$kind-standin
ours() { [ -s "$base.pid" ] && grep -qa "${kind}_standin.server" "/proc/$(cat "$base.pid")/cmdline" 2>/dev/null; }
case $action in
  start)
    if ours; then
      echo running
      exit 0
    fi
    rm -f "$base.log" "$base.url"
    STANDIN_PASSWORD=$(cat "${STANDIN_PASSWORD_FILE:?the password file}")
    export STANDIN_PASSWORD
    (cd "$tests" && exec setsid timeout 2h "${PYTHON:-python3}" -m "${kind}_standin.server" "$@" >"$base.log" 2>&1 </dev/null) &
    echo $! >"$base.pid"
    for _ in $(seq 120); do
      url=$(sed -n 's/^listening on //p' "$base.log")
      if [ -n "$url" ]; then
        echo "$url" >"$base.url"
        echo started
        exit 0
      fi
      sleep 0.5
    done
    cat "$base.log" >&2
    echo "the $kind stand-in did not start" >&2
    exit 1
    ;;
  stop)
    if ! ours; then
      rm -f "$base.pid"
      echo none
      exit 0
    fi
    pid=$(cat "$base.pid")
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$base.pid"
    echo stopped
    ;;
  *)
    echo "usage: standin.sh start|stop KIND DIR [server options]" >&2
    exit 2
    ;;
esac
