#!/usr/bin/env bash
# The lab suites as two pytest sessions at once, each on its own test lab
# made by `make lab`. Both wait on SSH, health checks and paced load part of
# the time, so two labs finish sooner than one; the rest is CPU-bound on 2
# cores, and a third lab was measured to gain nothing. Each session's output
# is printed whole, in turn; the exit status is the first failure's.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=.cache/lab-tests
mkdir -p "$logs"
it=tests/integration
# name campus | test paths: about the same wall time each. The first session
# is the one `make lab`'s default-named test lab runs, with the README and
# make-lab tests and the teardown test that proves nothing is left behind.
sessions=(
  "berth-test 10.78.0.0/16|$it --ignore=$it/test_rollout.py --ignore=$it/test_collection.py --ignore=$it/test_no_control_state.py"
  "berth-test2 10.80.0.0/16|$it/test_collection.py $it/test_no_control_state.py tests/faults $it/test_rollout.py"
)
pids=()
for i in "${!sessions[@]}"; do
  read -r name campus <<<"${sessions[$i]%%|*}"
  read -ra paths <<<"${sessions[$i]#*|}"
  BERTH_TEST_LAB_NAME=$name BERTH_TEST_LAB_CAMPUS=$campus \
    pytest -q -p no:cacheprovider --durations=25 "${paths[@]}" >"$logs/$name.log" 2>&1 &
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
  echo
  [ "$status" -eq 0 ] && status=$rc
done
exit "$status"
