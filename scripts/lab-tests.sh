#!/usr/bin/env bash
# The lab suites as two pytest sessions at once, each on its own test lab.
# Both wait on SSH, health checks and paced load part of
# the time, so two labs finish sooner than one; the rest is CPU-bound on 2
# cores, and a third lab was measured to gain nothing. Each session's output
# is printed whole, in turn; the exit status is the first failure's.
#
# The second session's lab is only brought up and converged (lab_up.yml,
# site.yml): the first one runs `make lab` itself, and the second needs no
# cleanup dry run or demo.
#
# With --tails QUEUE (make test), each slot then runs Molecule from the
# shared queue of scenarios QUEUE, as the checks' slot beside them does: the
# slot that is free first takes the next. The caller empties QUEUE first.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=.cache/lab-tests
mkdir -p "$logs"
tails=false
if [ "${1:-}" = --tails ]; then
  tails=true
  queue=${2:?--tails needs the Molecule queue directory}
fi
it=tests/integration
# name campus | test paths | tail targets: about the same wall time each. The
# first session is the one `make lab`'s default-named test lab runs, with the
# README and make-lab tests and the teardown test that proves nothing is left
# behind (Molecule's objects, which come and go beside it, are told apart).
sessions=(
  "berth-test 10.78.0.0/16|$it --ignore=$it/test_rollout.py --ignore=$it/test_collection.py --ignore=$it/test_no_control_state.py --ignore=$it/test_harbor_role.py --ignore=$it/test_harbor_modules.py|molecule"
  "berth-test2 10.80.0.0/16|$it/test_collection.py $it/test_no_control_state.py $it/test_harbor_role.py $it/test_harbor_modules.py tests/faults $it/test_rollout.py|molecule"
)
slot() {
  local name=$1 campus=$2 tail=$3 converge_only=$4 rc
  shift 4
  BERTH_TEST_TIMES=$logs/$name.times BERTH_TEST_LAB_NAME=$name BERTH_TEST_LAB_CAMPUS=$campus \
    BERTH_TEST_LAB_CONVERGE_ONLY=$converge_only pytest -q -p no:cacheprovider --durations=25 "$@"
  rc=$?
  if $tails; then
    for target in $tail; do
      echo "=== then make $target ==="
      SECONDS=0
      MAKEFLAGS= make --no-print-directory "$target" MOLECULE_ARGS="--queue $queue" || { [ "$rc" -eq 0 ] && rc=1; }
      echo "=== make $target: ${SECONDS} s ==="
    done
  fi
  return "$rc"
}
rm -f "$logs"/*.times
pids=()
for i in "${!sessions[@]}"; do
  IFS='|' read -r head paths tail <<<"${sessions[$i]}"
  read -r name campus <<<"$head"
  read -ra args <<<"$paths"
  # The first session's lab is made by `make lab`; the others need only a
  # converged fleet (lab_up.yml and site.yml).
  slot "$name" "$campus" "$tail" "$([ "$i" -eq 0 ] && echo 0 || echo 1)" "${args[@]}" >"$logs/$name.log" 2>&1 &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' INT TERM
status=0
for i in "${!sessions[@]}"; do
  wait "${pids[$i]}"
  rc=$?
  name=${sessions[$i]%% *}
  echo "=== session $((i + 1)): lab $name, exit $rc ==="
  cat "$logs/$name.log"
  if [ "$rc" -ne 0 ] && [ -s "$logs/$name.times" ]; then
    # A session cut short prints no durations of its own.
    echo "--- session $((i + 1)): the longest test phases that ended, of $(wc -l <"$logs/$name.times") ---"
    sort -rn "$logs/$name.times" | head -n 30
  fi
  echo
  [ "$status" -eq 0 ] && status=$rc
done
exit "$status"
