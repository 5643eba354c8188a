#!/usr/bin/env python3
"""`make bench`: every figure the issues ask for, measured side by side in
one run on this machine. Absolute times on shared 2-core machines are noisy;
the ratios are what to compare."""

import argparse
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from labtools import ansible_playbook  # noqa: E402

BENCH_LAB = {"BERTH_LAB_NAME": "berth-bench", "BERTH_LAB_CAMPUS": "10.79.0.0/16"}


def timed(label, *args, env=None):
    start = time.monotonic()
    run = ansible_playbook(*args, env=env)
    elapsed = time.monotonic() - start
    if run.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (label, run.explain()))
    return elapsed, run


def bench_lab():
    """Lab bring-up, first converge of site.yml, idempotent re-run."""
    inventory = os.path.join(os.path.dirname(os.path.dirname(HERE)), ".lab", BENCH_LAB["BERTH_LAB_NAME"], "inventory", "hosts.yml")
    ansible_playbook("playbooks/lab-down.yml", env=BENCH_LAB)
    try:
        up, _ = timed("lab-up", "playbooks/lab-up.yml", env=BENCH_LAB)
        first, _ = timed("first converge", "-i", inventory, "playbooks/site.yml")
        again, rerun = timed("re-run", "-i", inventory, "playbooks/site.yml")
    finally:
        ansible_playbook("playbooks/lab-down.yml", env=BENCH_LAB)
    return [
        ("lab up (5 hosts, 3 buildings)", "%.1f s" % up),
        ("site.yml, first converge", "%.1f s" % first),
        ("site.yml, idempotent re-run (changed=%d)" % rerun.total_changed(), "%.1f s" % again),
        ("re-run / first converge", "%.2f" % (again / first)),
    ]


BENCHES = {"lab": bench_lab}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*BENCHES, []], help="benches to run (default: all)")
    args = parser.parse_args()
    print("berth bench on %s, %d cores, Python %s" % (platform.node() or "?", os.cpu_count(), platform.python_version()))
    for name in args.names or BENCHES:
        rows = BENCHES[name]()
        print("\n[%s] %s" % (name, BENCHES[name].__doc__))
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            print("  %s  %s" % (label.ljust(width), value))


if __name__ == "__main__":
    main()
