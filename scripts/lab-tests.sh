#!/usr/bin/env bash
# The lab suites as two pytest sessions at once, each on its own test lab
# made by `make lab`. They mostly wait on SSH, health checks and load, so two
# labs cost little more wall time than one. Each session's output is printed
# whole, in turn; the exit status is the first failure's.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=.cache/lab-tests
mkdir -p "$logs"
# The collection, the faults and the rollouts on one lab, everything else on
# the other: about the same wall time each.
second=(tests/integration/test_collection.py tests/faults tests/integration/test_rollout.py)
BERTH_TEST_LAB_NAME=berth-test2 BERTH_TEST_LAB_CAMPUS=10.80.0.0/16 \
  pytest -q -p no:cacheprovider --durations=15 "${second[@]}" >"$logs/second.log" 2>&1 &
second_pid=$!
trap 'kill "$second_pid" 2>/dev/null' INT TERM
pytest -q --durations=15 tests/integration --ignore=tests/integration/test_rollout.py --ignore=tests/integration/test_collection.py
first=$?
wait "$second_pid"
rc=$?
echo
echo "=== second session: ${second[*]} (lab berth-test2) ==="
cat "$logs/second.log"
[ "$first" -ne 0 ] && exit "$first"
exit "$rc"
