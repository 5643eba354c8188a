#!/usr/bin/env python3
"""`make bench`: every figure the issues ask for, measured side by side in
one run on this machine. Absolute times on shared 2-core machines are noisy;
the ratios are what to compare."""

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from labtools import ROOT, ansible_playbook, lab_hosts, task_results  # noqa: E402

BENCH_LAB = {"BERTH_LAB_NAME": "berth-bench", "BERTH_LAB_CAMPUS": "10.79.0.0/16"}


def timed(label, *args, env=None):
    start = time.monotonic()
    run = ansible_playbook(*args, env=env)
    elapsed = time.monotonic() - start
    if run.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (label, run.explain()))
    return elapsed, run


class BenchLab:
    """A lab of its own for the benches, removed again at the end."""

    def __init__(self):
        self.inventory = os.path.join(ROOT, ".lab", BENCH_LAB["BERTH_LAB_NAME"], "inventory", "hosts.yml")
        self.hosts = {}

    def __enter__(self):
        ansible_playbook("playbooks/lab-down.yml", env=BENCH_LAB)
        return self

    def __exit__(self, *exc):
        ansible_playbook("playbooks/lab-down.yml", env=BENCH_LAB)

    def playbook(self, label, *args):
        return timed(label, "-i", self.inventory, *args)

    def host(self, suffix):
        return next(name for name in self.hosts if name.endswith(suffix))


def bench_lab(lab):
    """Lab bring-up, first converge of site.yml, idempotent re-run."""
    up, _ = timed("lab-up", "playbooks/lab-up.yml", env=BENCH_LAB)
    lab.hosts = lab_hosts(lab.inventory)
    first, _ = lab.playbook("first converge", "playbooks/site.yml")
    again, rerun = lab.playbook("re-run", "playbooks/site.yml")
    return [
        ("lab up (%d hosts, 3 buildings)" % len(lab.hosts), "%.1f s" % up),
        ("site.yml, first converge", "%.1f s" % first),
        ("site.yml, idempotent re-run (changed=%d)" % rerun.total_changed(), "%.1f s" % again),
        ("re-run / first converge", "%.2f" % (again / first)),
    ]


def module_seconds(result):
    return sum(result["durations"].values())


def bench_build(lab):
    """Cold three-layer build and push versus an app-only rebuild (module time)."""
    builder = lab.host("-a2")
    registry = "%s:5000" % lab.hosts[lab.host("-a1")]
    artifact = tempfile.mkdtemp(prefix="berth-bench-app-")
    shutil.copytree(os.path.join(ROOT, "images", "example", "app"), artifact, dirs_exist_ok=True)
    try:
        app = ("playbooks/build.yml", "-v", "-e", "build_host=" + builder, "-e", "app=bench", "-e", "artifact=" + artifact)
        app += ("-e", "middleware_image=%s/base/middleware:1" % registry, "-e", "version=1")
        _, base = lab.playbook("base and middleware", "playbooks/build-base.yml", "-v", "-e", "build_host=" + builder)
        _, first = lab.playbook("app, cold", *app)
        with open(os.path.join(artifact, "version"), "w", encoding="utf-8") as stream:
            stream.write("v2\n")
        _, second = lab.playbook("app only", *app)
    finally:
        shutil.rmtree(artifact)
    layers = [
        task_results(base.output, name)[builder] for name in ("Build and push the base OS image", "Build and push the middleware image")
    ]
    cold_app = task_results(first.output, "Build and push")[builder]
    rebuild = task_results(second.output, "Build and push")[builder]
    cold = sum(module_seconds(result) for result in [*layers, cold_app])
    pushed_cold = sum(result["pushed_bytes"] for result in [*layers, cold_app])
    return [
        ("cold build + push, base + middleware + app", "%.2f s" % cold),
        (
            "app-only rebuild + push",
            "%.2f s (layers built %d, reused %d)" % (module_seconds(rebuild), rebuild["layers_built"], rebuild["layers_reused"]),
        ),
        ("app-only / cold (goal <= 0.2)", "%.3f" % (module_seconds(rebuild) / cold)),
        ("bytes pushed, cold (whole image)", "%d" % pushed_cold),
        ("bytes pushed, app-only rebuild", "%d (%d layer)" % (rebuild["pushed_bytes"], len(rebuild["pushed_layers"]))),
        ("app-only bytes / whole image bytes", "%.5f" % (rebuild["pushed_bytes"] / rebuild["image_bytes"])),
    ]


BENCHES = {"lab": bench_lab, "build": bench_build}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benches to run: %s (default: all)" % ", ".join(BENCHES))
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BENCHES))
    if unknown:
        parser.error("unknown bench: %s" % ", ".join(unknown))
    print("berth bench on %s, %d cores, Python %s" % (platform.node() or "?", os.cpu_count(), platform.python_version()))
    names = args.names or list(BENCHES)
    with BenchLab() as lab:
        if "lab" not in names:
            bench_lab(lab)  # the other benches need a converged lab
        for name in names:
            rows = BENCHES[name](lab)
            print("\n[%s] %s" % (name, BENCHES[name].__doc__))
            width = max(len(label) for label, _ in rows)
            for label, value in rows:
                print("  %s  %s" % (label.ljust(width), value), flush=True)


if __name__ == "__main__":
    main()
