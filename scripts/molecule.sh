#!/usr/bin/env bash
# Runs `molecule test` for every scenario under molecule/ (or those named),
# one after another, and prints each one's time and a summary; the exit
# status is 1 when any failed. With --queue DIR, several runners share one
# list: each takes the next scenario no runner has claimed (mkdir is atomic),
# so make test's two slots split the scenarios by what is left, not by a
# fixed half.
set -uo pipefail
cd "$(dirname "$0")/.."
queue=""
if [ "${1:-}" = --queue ]; then
  queue=$2
  shift 2
  mkdir -p "$queue"
fi
if [ $# -gt 0 ]; then
  scenarios=("$@")
else
  # Longest first (measured: reset about 250 s, env 162, rollout 102, docker 90, harbor 88,
  # proxy 83), the rest by name: two runners on one queue then end close
  # together instead of one waiting for the other's long last scenario.
  scenarios=()
  for name in reset env rollout docker harbor proxy; do
    [ -f "molecule/$name/molecule.yml" ] && scenarios+=("$name")
  done
  for file in molecule/*/molecule.yml; do
    name=$(basename "$(dirname "$file")")
    [[ " ${scenarios[*]} " == *" $name "* ]] || scenarios+=("$name")
  done
fi
: "${BERTH_HOST_IMAGE:?the platform image (scripts/host-image.sh env)}"
: "${BERTH_HOST_IMAGE_TRIXIE:?the Debian 13 platform image (scripts/host-image.sh env)}"
# Scenarios whose role the lab runs on Debian 12 hosts only (the registry is
# a1's), and the reset, run on Debian 13 here; the rest run on Debian 12, as
# the lab's a1 and b1 do, beside the lab's Debian 13 hosts.
trixie_scenarios=" registry image_cleanup pki reset "
failed=()
ran=0
current=""
# Cut short (a CI time limit), the running scenario's host goes with it.
trap '[ -n "$current" ] && docker rm -f -v "berth-molecule-$current" >/dev/null 2>&1; exit 143' TERM INT
for scenario in "${scenarios[@]}"; do
  [ -f "molecule/$scenario/molecule.yml" ] || { echo "molecule: no scenario $scenario" >&2; failed+=("$scenario"); continue; }
  if [ -n "$queue" ] && ! mkdir "$queue/$scenario" 2>/dev/null; then
    continue  # another runner took it
  fi
  SECONDS=0
  current=$scenario
  if [[ "$trixie_scenarios" == *" $scenario "* ]]; then image=$BERTH_HOST_IMAGE_TRIXIE; else image=$BERTH_HOST_IMAGE; fi
  BERTH_MOLECULE_IMAGE=$image molecule test -s "$scenario" &
  wait $!
  rc=$?
  current=""
  ran=$((ran + 1))
  echo "=== molecule $scenario ($image): $([ $rc -eq 0 ] && echo passed || echo FAILED) in ${SECONDS} s ==="
  [ $rc -eq 0 ] || failed+=("$scenario")
done
echo "=== molecule: $ran scenario(s) run here, ${#failed[@]} failed${failed[*]:+: ${failed[*]}} ==="
[ ${#failed[@]} -eq 0 ]
