#!/usr/bin/env python3
"""Prints what `make lab` built: hosts, buildings, addresses, what converged."""

import argparse
import json
import os
import re
import subprocess
import sys

import yaml

# The repo is the collection berth.ops (collections/ links back to it).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "collections"))
from ansible_collections.berth.ops.plugins.module_utils.berth_cleanup import cleanup_summary

RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)"
)
PLAY = re.compile(r"^PLAY \[(?P<name>.+?)\] \*+")


def parse_log(path):
    plays, recap = [], {}
    with open(path, encoding="utf-8") as log:
        for line in log:
            play = PLAY.match(line)
            if play and play.group("name") not in plays:
                plays.append(play.group("name"))
            match = RECAP.match(line)
            if match:
                recap[match.group("host")] = {k: int(v) for k, v in match.groupdict().items() if k != "host"}
    return plays, recap


def engine_version(container):
    result = subprocess.run(
        ["docker", "exec", container, "docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else "-"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--cleanup-report", help="JSON report of an image-cleanup dry run")
    args = parser.parse_args()

    with open(args.inventory, encoding="utf-8") as stream:
        inventory = yaml.safe_load(stream)["all"]
    buildings = inventory["vars"]["berth_buildings"]
    children = inventory["children"]
    plays, recap = parse_log(args.log)

    rows = []
    for building in sorted(buildings):
        for host, hostvars in sorted(children[building]["hosts"].items()):
            functions = sorted(g for g, members in children.items() if g not in buildings and host in members["hosts"])
            stats = recap.get(host, {})
            rows.append(
                (
                    building,
                    host,
                    hostvars["ansible_host"],
                    ",".join(functions),
                    engine_version(host),
                    "ok=%s changed=%s failed=%s" % (stats.get("ok", "-"), stats.get("changed", "-"), stats.get("failed", "-")),
                )
            )
    header = ("building", "host", "address", "groups", "docker", "site.yml")
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
    print()
    print("berth lab %s: %d hosts in %d buildings" % (inventory["vars"]["berth_lab_name"], len(rows), len(buildings)))
    for building in sorted(buildings):
        subnets = buildings[building]
        print("  %s  hosts %s  containers %s" % (building, subnets["host_subnet"], subnets.get("container_subnet", "-")))
    print()
    for row in [header] + rows:
        print(("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths))).rstrip())
    print()
    print("Converged by playbooks/site.yml: " + "; ".join(plays))
    ssh_vars = inventory["vars"]
    print(
        "Reach a host:  ssh -i %s %s root@%s"
        % (ssh_vars["ansible_ssh_private_key_file"], ssh_vars["ansible_ssh_common_args"].split(" -o StrictHostKeyChecking")[0], rows[0][2])
    )
    if args.cleanup_report and os.path.exists(args.cleanup_report):
        with open(args.cleanup_report, encoding="utf-8") as stream:
            print()
            print("\n".join(cleanup_summary(json.load(stream))))
        print()
    print("Re-converge:   ansible-playbook -i %s playbooks/site.yml" % args.inventory)
    print("Tear down:     make lab-down")
    failed = any(stats.get("failed") or stats.get("unreachable") for stats in recap.values())
    return 1 if failed or not recap else 0


if __name__ == "__main__":
    sys.exit(main())
