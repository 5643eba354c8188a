"""`make lab` as a new user runs it: the test lab itself is made by it (see
the `lab` fixture), from an empty engine state and an empty registry, so its
output is checked here: the summary, the cleanup dry run and the demo
rollout. A step that fails shows the failing task and its message on the
terminal, not only a log path."""

import os
import re
import subprocess

from labtools import ROOT, lab_exec


def test_make_lab_prints_the_lab_the_cleanup_plan_and_the_demo_rollout(lab):
    assert lab.make_output is not None, "BERTH_KEEP_LAB reused a lab; run without it to test the make lab path"
    out = lab.make_output
    assert "berth lab %s: %d hosts in 3 buildings" % (lab.name, len(lab.hosts)) in out, out
    assert "image cleanup (dry run): ok" in out, out
    assert re.search(r"^Memory: the %d hosts use [\d.]+ GiB after site.yml, \d+ MiB per host" % len(lab.hosts), out, re.MULTILINE), out
    # The summary names each host's Debian release and engine: both kinds run.
    table = [line.split() for line in out.splitlines() if re.match(r"^\s+bldg_\w+\s+%s-\w+\s" % lab.name, line)]
    assert len(table) == len(lab.hosts), out
    assert {(row[4], row[5].split(".")[0]) for row in table} == {("12", "20"), ("13", "26")}, out
    rows = [line for line in out.splitlines() if re.match(r"^\s+%s-\w+\s+bldg_\w\s" % lab.name, line)]
    assert len([r for r in rows if "v1" in r and "-> v2" in r and "deployed" in r]) == len(lab.hosts), out
    # Right after make lab, the demo served v2 on every host, through the host's nginx.
    assert lab.served_after_make == dict.fromkeys(lab.hosts, "v2")


def test_a_failing_step_shows_its_task_and_message(lab):
    # Hosts without their Python (the binary itself, or interpreter discovery
    # finds python3.N): every module fails there, for real. All of them, so
    # the converge stops at its first task instead of converging the rest.
    hosts = sorted(lab.hosts)
    # python3.11 on Debian 12, python3.13 on Debian 13.
    pythons = {host: lab_exec(host, "readlink -f /usr/bin/python3", check=True).stdout.strip() for host in hosts}
    moved = []
    try:
        for host in hosts:
            lab_exec(host, "mv %s %s.moved" % (pythons[host], pythons[host]), check=True)
            moved.append(host)
        made = subprocess.run(
            ["make", "--no-print-directory", "lab"],
            cwd=ROOT,
            env=dict(os.environ, **lab.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=1200,
            check=False,
        )
    finally:
        for host in moved:
            lab_exec(host, "mv %s.moved %s" % (pythons[host], pythons[host]), check=True)
    assert made.returncode != 0
    out = made.stdout
    assert "berth: converging playbooks/site.yml ... FAILED" in out, out
    failure = out.split("FAILED", 1)[1]
    assert re.search(r"^  task   \S", failure, re.MULTILINE), out
    assert all(re.search(r"^  hosts  .*%s" % host, failure, re.MULTILINE) for host in hosts), out
    assert "python" in failure.lower(), out
    assert "full log: " in failure
    assert "make lab stopped at: converging playbooks/site.yml" in out
