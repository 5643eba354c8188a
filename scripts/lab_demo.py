#!/usr/bin/env python3
"""The end of `make lab`: build the sample app's three layers, then roll it
out across the buildings (v1, then v2 under the same proxy) and print the
rollout summary."""

import argparse
import json
import os
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def playbook(log, *args):
    with open(log, "a", encoding="utf-8") as stream:
        result = subprocess.run(["ansible-playbook", *args], cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        sys.exit("berth: lab demo step failed: ansible-playbook %s (see %s)" % (" ".join(args), log))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--state", required=True, help="the lab's state directory")
    args = parser.parse_args()
    with open(args.inventory, encoding="utf-8") as stream:
        inventory = yaml.safe_load(stream)["all"]
    builder = sorted(inventory["children"]["docker_hosts"]["hosts"])[-1]
    building = next(b for b in inventory["vars"]["berth_buildings"] if builder in inventory["children"][b]["hosts"])
    registry = inventory["vars"]["berth_buildings"][building]["registry"]
    args.state = os.path.abspath(args.state)
    log = os.path.join(args.state, "demo.log")
    inv = ("-i", args.inventory)
    playbook(log, *inv, "playbooks/build_base.yml", "-e", "build_host=" + builder)
    for version in ("v1", "v2"):
        artifact = os.path.join(args.state, "demo", version)
        shutil.copytree(os.path.join(ROOT, "images", "example", "app"), artifact, dirs_exist_ok=True)
        with open(os.path.join(artifact, "version"), "w", encoding="utf-8") as stream:
            stream.write(version + "\n")
        playbook(
            log,
            *inv,
            "playbooks/build.yml",
            *("-e", "build_host=" + builder, "-e", "app=demo", "-e", "artifact=" + artifact),
            *("-e", "middleware_image=%s/base/middleware:1" % registry, "-e", "version=" + version),
        )
    report = os.path.join(args.state, "rollout.json")
    playbook(log, *inv, "playbooks/rollout.yml", "-e", "app=demo", "-e", "version=v1")
    playbook(log, *inv, "playbooks/rollout.yml", "-e", "app=demo", "-e", "version=v2", "-e", "rollout_report_path=" + report)
    with open(report, encoding="utf-8") as stream:
        print("\n".join(json.load(stream)["lines"]))
    print("  (try: curl http://<host address>/version from a host of the same building)")


if __name__ == "__main__":
    main()
