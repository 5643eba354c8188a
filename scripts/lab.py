#!/usr/bin/env python3
"""`make lab`: bring up the lab hosts, converge site.yml, dry-run the image
cleanup, print the summary, then build the sample app and roll it out.

Each step writes its full output to a log in the lab's state directory and
prints one line. When a step fails, the failing tasks and their messages are
printed on the terminal, so the reason never hides in a log.

The lab is BERTH_LAB_NAME (default berth-lab) on BERTH_LAB_CAMPUS; the tests
run this very script for their own lab."""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The repo is the collection berth.ops (collections/ links back to it).
sys.path.insert(0, os.path.join(ROOT, "collections"))
from ansible_collections.berth.ops.plugins.module_utils.berth_cleanup import cleanup_summary  # noqa: E402
from ansible_collections.berth.ops.plugins.module_utils.berth_lab import DEFAULT_LAB, cgroup_paths, lab_paths, memory_in_use  # noqa: E402

RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)
PLAY = re.compile(r"^PLAY \[(?P<name>.+?)\] \*+", re.MULTILINE)
TASK = re.compile(r"^TASK \[(?P<name>.+?)\] \*+")
# "fatal: [h]: FAILED! =>", "fatal: [h]: UNREACHABLE! =>", "failed: [h] (item=x) =>"
FAILURE = re.compile(r"^(?:fatal|failed): \[(?P<host>[^\]]+)\](?P<item> \(item=.*?\))?(?:: (?:FAILED|UNREACHABLE)!)? =>(?P<rest>.*)$")


class StepFailed(Exception):
    pass


def failures(text):
    """(task, host, message) of every failed or unreachable result in an
    ansible-playbook log (YAML or JSON result format)."""
    found, task = [], "?"
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = TASK.match(line)
        if match:
            task = match.group("name")
            continue
        match = FAILURE.match(line)
        if not match:
            continue
        rest = match.group("rest").strip()
        if rest:
            try:
                result = json.loads(rest)
            except ValueError:
                result = {"msg": rest}
        else:
            block = []
            for follower in lines[index + 1 :]:
                if follower and not follower.startswith("    "):
                    break
                block.append(follower[4:])
            try:
                result = yaml.safe_load("\n".join(block)) or {}
            except yaml.YAMLError:
                result = {"msg": "\n".join(block)}
        if not isinstance(result, dict):
            result = {"msg": str(result)}
        message = result.get("msg") or result.get("stderr") or result.get("stdout") or "(no message)"
        host = match.group("host").split(" -> ")[0]
        found.append((task, host + (match.group("item") or ""), " ".join(str(message).split())))
    return found


def grouped(found):
    """{(task, message): [hosts]} in the order the failures happened."""
    groups = {}
    for task, host, message in found:
        groups.setdefault((task, message), []).append(host)
    return groups


def recap(text):
    return {m.group("host"): {k: int(v) for k, v in m.groupdict().items() if k != "host"} for m in RECAP.finditer(text)}


class Lab:
    def __init__(self, env):
        self.env = env
        self.name = env.get("BERTH_LAB_NAME") or DEFAULT_LAB
        paths = lab_paths(ROOT, self.name)
        self.state = paths["state_dir"]
        self.inventory = paths["inventory"]
        self.logs = {}

    def step(self, title, log_name, *args):
        """One ansible-playbook run: full output to the log, one line here."""
        os.makedirs(self.state, exist_ok=True)
        log = os.path.join(self.state, log_name)
        started = time.monotonic()
        print("berth: %s ..." % title, end="", flush=True)
        with open(log, "a", encoding="utf-8") as stream:
            stream.write("\n$ ansible-playbook %s\n" % " ".join(args))
            stream.flush()
            proc = subprocess.run(
                ["ansible-playbook", *args],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
            )
            stream.write(proc.stdout)
        self.logs[log_name] = proc.stdout
        seconds = time.monotonic() - started
        if proc.returncode == 0:
            print(" ok (%.0f s)" % seconds, flush=True)
            return proc.stdout
        print(" FAILED (%.0f s)" % seconds, flush=True)
        found = failures(proc.stdout)
        print("berth: ansible-playbook %s exited %d" % (" ".join(args), proc.returncode), file=sys.stderr)
        # The last failures are the ones that stopped the run (earlier ones
        # may have been rescued); one entry per task and message.
        for (task, message), hosts in list(grouped(found).items())[-5:]:
            print("  task   %s\n  hosts  %s\n  error  %s" % (task, ", ".join(hosts), message[:2000]), file=sys.stderr)
        if not found:
            print("  (no failed task in the output; its last lines:)", file=sys.stderr)
            for line in proc.stdout.strip().splitlines()[-15:]:
                print("  | " + line, file=sys.stderr)
        print("  full log: %s" % log, file=sys.stderr)
        raise StepFailed(title)

    def playbook(self, title, log_name, *args):
        return self.step(title, log_name, "-i", self.inventory, *args)

    def inventory_data(self):
        with open(self.inventory, encoding="utf-8") as stream:
            return yaml.safe_load(stream)["all"]


def host_versions(container):
    """(Debian release, engine version) of a lab host, "-" for one unknown."""
    result = subprocess.run(
        [
            *("docker", "exec", container, "sh", "-c"),
            ". /etc/os-release; echo ${VERSION_ID:--}; docker version --format '{{.Server.Version}}' 2>/dev/null || echo -",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    found = result.stdout.split()
    return tuple(found) if len(found) == 2 else ("-", "-")


def existing(paths):
    return next((path for path in paths if os.path.exists(path)), None)


def host_memory(names):
    """{lab host: bytes of memory it uses, page cache left out}: the host's
    systemd, engine, services and containers, read from its cgroup."""
    found = {}
    for name in names:
        cid = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", name], capture_output=True, text=True, check=False).stdout.strip()
        usage = existing(cgroup_paths(cid, ("memory", "memory.usage_in_bytes"), "memory.current")) if cid else None
        stat = existing(cgroup_paths(cid, ("memory", "memory.stat"), "memory.stat")) if cid else None
        if usage and stat:
            with open(usage, encoding="ascii") as first, open(stat, encoding="ascii") as second:
                found[name] = memory_in_use(second.read(), int(first.read()))
    return found


def summary(lab, site_output, cleanup_report):
    inventory = lab.inventory_data()
    buildings = inventory["vars"]["berth_buildings"]
    children = inventory["children"]
    stats = recap(site_output)
    rows = []
    for building in sorted(buildings):
        for host, hostvars in sorted(children[building]["hosts"].items()):
            functions = sorted(g for g, members in children.items() if g not in buildings and host in members["hosts"])
            done = stats.get(host, {})
            rows.append(
                (
                    building,
                    host,
                    hostvars["ansible_host"],
                    ",".join(functions),
                    *host_versions(host),
                    "ok=%s changed=%s failed=%s" % (done.get("ok", "-"), done.get("changed", "-"), done.get("failed", "-")),
                )
            )
    memory = host_memory([row[1] for row in rows])
    rows = [(*row, "%.0f MiB" % (memory[row[1]] / 1024**2) if row[1] in memory else "-") for row in rows]
    header = ("building", "host", "address", "groups", "debian", "docker", "site.yml", "memory")
    widths = [max(len(str(row[i])) for row in [*rows, header]) for i in range(len(header))]
    lines = ["", "berth lab %s: %d hosts in %d buildings" % (lab.name, len(rows), len(buildings))]
    for building in sorted(buildings):
        spec = buildings[building]
        lines.append("  %s  hosts %s  containers %s" % (building, spec["host_subnet"], spec.get("container_subnet", "-")))
    lines.append("")
    lines += [("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths))).rstrip() for row in [header, *rows]]
    lines.append("")
    if memory:
        used = sum(memory.values())
        lines.append(
            "Memory: the %d hosts use %.1f GiB after site.yml, %.0f MiB per host (docker stats)"
            % (len(memory), used / 1024**3, used / len(memory) / 1024**2)
        )
    plays = list(dict.fromkeys(m.group("name") for m in PLAY.finditer(site_output)))
    lines.append("Converged by playbooks/site.yml: " + "; ".join(plays))
    ssh = inventory["vars"]
    lines.append(
        "Reach a host:  ssh -i %s %s root@%s"
        % (ssh["ansible_ssh_private_key_file"], ssh["ansible_ssh_common_args"].split(" -o StrictHostKeyChecking")[0], rows[0][2])
    )
    if cleanup_report:
        lines += ["", *cleanup_summary(cleanup_report), ""]
    lines.append("Re-converge:   ansible-playbook -i %s playbooks/site.yml" % os.path.relpath(lab.inventory, ROOT))
    lines.append("Tear down:     make lab-down")
    return "\n".join(lines)


def demo(lab):
    """Build the sample app's three layers and roll it out: v1, then v2."""
    inventory = lab.inventory_data()
    # The first Docker host that is not the registry: the tests build on the
    # same host, so they reuse the layers built here.
    registries = set(inventory["children"].get("registry", {}).get("hosts") or ())
    docker_hosts = sorted(inventory["children"]["docker_hosts"]["hosts"])
    builder = next((h for h in docker_hosts if h not in registries), docker_hosts[-1])
    building = next(b for b in inventory["vars"]["berth_buildings"] if builder in inventory["children"][b]["hosts"])
    registry = inventory["vars"]["berth_buildings"][building]["registry"]
    lab.playbook(
        "building the demo's base and middleware on %s" % builder, "demo.log", "playbooks/build_base.yml", "-e", "build_host=" + builder
    )
    for version in ("v1", "v2"):
        artifact = os.path.join(lab.state, "demo", version)
        shutil.copytree(os.path.join(ROOT, "images", "example", "app"), artifact, dirs_exist_ok=True)
        with open(os.path.join(artifact, "version"), "w", encoding="utf-8") as stream:
            stream.write(version + "\n")
        lab.playbook(
            "building demo %s" % version,
            "demo.log",
            "playbooks/build.yml",
            *("-e", "build_host=" + builder, "-e", "app=demo", "-e", "artifact=" + artifact),
            *("-e", "middleware_image=%s/base/middleware:1" % registry, "-e", "version=" + version),
        )
    report = os.path.join(lab.state, "rollout.json")
    lab.playbook("rolling out demo v1", "demo.log", "playbooks/rollout.yml", "-e", "app=demo", "-e", "version=v1")
    lab.playbook(
        "rolling out demo v2",
        "demo.log",
        "playbooks/rollout.yml",
        *("-e", "app=demo", "-e", "version=v2", "-e", "rollout_report_path=" + report),
    )
    with open(report, encoding="utf-8") as stream:
        return "\n".join(json.load(stream)["lines"])


def main():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    if not env.get("BERTH_HOST_IMAGE"):
        sys.exit("berth: BERTH_HOST_IMAGE is not set; run `make lab`, which builds the host image")
    lab = Lab(env)
    for name in ("lab-up.log", "site.log", "cleanup.log", "demo.log"):
        if os.path.exists(os.path.join(lab.state, name)):
            os.remove(os.path.join(lab.state, name))
    try:
        lab.step("starting the lab hosts of %s" % lab.name, "lab-up.log", "playbooks/lab_up.yml")
        site = lab.playbook("converging playbooks/site.yml", "site.log", "playbooks/site.yml")
        report_path = os.path.join(lab.state, "cleanup-report.json")
        lab.playbook(
            "image cleanup, dry run",
            "cleanup.log",
            "playbooks/image_cleanup.yml",
            *("-e", "image_cleanup_dry_run=true", "-e", "image_cleanup_report_path=" + report_path),
        )
        with open(report_path, encoding="utf-8") as stream:
            print(summary(lab, site, json.load(stream)))
        print()
        print(demo(lab))
        print("  (try: curl http://<host address>/version from a host of the same building)")
    except StepFailed as exc:
        sys.exit("berth: make lab stopped at: %s" % exc)


if __name__ == "__main__":
    main()
