"""Image cleanup under real faults on the test lab. Each scenario injects its
fault for real (a lab host stopped, the registry stopped while deletes are
in flight, a building cut off by iptables, a tag moved while a host runs
the old digest), then checks that every digest deployed anywhere still
pulls by digest from a host in every building, and that re-running the
cleanup converges (a second run changes nothing).

Figures: one line per scenario, `FAULT cleanup <scenario>: deployed digests
lost N` (N must be 0), written to the real stdout so -rA or -s shows them."""

import json
import os
import subprocess
import threading
import time
import uuid

import pytest
import yaml
from labtools import ROOT, docker, lab_exec, registry_tags, seed_registry

STORAGE = "/var/lib/docker-registry/docker/registry/v2/repositories"
KEEP = 2
FIGURES = {}

# Run on a lab host: is repo@digest pullable from the registry, manifest
# (and every platform of an index), config and layers? Prints the problems.
PULLABLE = r"""
import json, sys
import requests
registry, refs = sys.argv[1], json.loads(sys.argv[2])
base = "https://%s/v2/" % registry
session = requests.Session()
session.verify = "/etc/docker/certs.d/%s/ca.crt" % registry
ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"])
problems = []

def check(repo, digest):
    answer = session.get(base + "%s/manifests/%s" % (repo, digest), headers={"Accept": ACCEPT}, timeout=20)
    if answer.status_code != 200:
        problems.append("%s@%s: manifest HTTP %d" % (repo, digest, answer.status_code))
        return
    document = answer.json()
    for child in document.get("manifests") or []:
        check(repo, child["digest"])
    for blob in [document.get("config")] + (document.get("layers") or []):
        if blob and session.head(base + "%s/blobs/%s" % (repo, blob["digest"]), timeout=20).status_code != 200:
            problems.append("%s@%s: blob %s missing" % (repo, digest, blob["digest"]))

for ref in refs:
    repo, digest = ref.split("@", 1)
    check(repo, digest)
print(json.dumps(problems))
"""

# Run on the registry host: stop the registry as soon as the first of the
# watched manifests is deleted, i.e. while the prune's deletes are in flight.
WATCH = r"""
import os, subprocess, sys, time
paths = sys.argv[2:]
deadline = time.time() + float(sys.argv[1])
while time.time() < deadline and not os.path.exists("/tmp/berth-fault-watch.stop"):
    if any(not os.path.exists(p) for p in paths):
        subprocess.run(["systemctl", "stop", "docker-registry"], check=False)
        gone = sum(not os.path.exists(p) for p in paths)
        open("/tmp/berth-fault-watch", "w").write("stopped after %d\n" % gone)
        break
    time.sleep(0.002)
"""


@pytest.fixture(scope="module")
def world(lab, figures):
    with open(lab.inventory, encoding="utf-8") as stream:
        inventory = yaml.safe_load(stream)["all"]
    buildings = inventory["vars"]["berth_buildings"]
    members = {b: sorted(inventory["children"][b]["hosts"]) for b in buildings}
    server = next(h for h in lab.hosts if h.endswith("-a1"))
    # One puller per building, never the registry host when there is another.
    pullers = {b: next((h for h in hosts if h != server), hosts[0]) for b, hosts in members.items()}
    prefix = "faultcl%s" % uuid.uuid4().hex[:6]
    registry = "%s:5000" % lab.hosts[server]
    repos = ["%s/app%d" % (prefix, n) for n in range(3)]
    seed_registry(
        pullers["bldg_a"], registry, [(repo, "1.%d.0" % n, "%s-%d" % (repo, n), "2026-01-01T00:00:00Z") for repo in repos for n in range(8)]
    )
    world = {
        "lab": lab,
        "server": server,
        "registry": registry,
        "repos": repos,
        "prefix": prefix,
        "buildings": members,
        "pullers": pullers,
        "seeder": pullers["bldg_a"],
        "campus": os.environ.get("BERTH_TEST_LAB_CAMPUS", "10.78.0.0/16"),
        "subnets": {b: spec["host_subnet"] for b, spec in buildings.items()},
        "say": figures.append,
    }
    # Old versions deployed in every building: the policy alone would delete them.
    deploy(world, members["bldg_b"][-1], "%s:1.0.0" % repos[0])
    deploy(world, members["bldg_c"][0], "%s:1.1.0" % repos[1])
    deploy(world, members["bldg_a"][-1], "%s:1.2.0" % repos[2])
    first = cleanup(world, "setup")
    assert first.returncode == 0, first.explain()
    yield world
    summary = ", ".join("%s %d" % item for item in sorted(FIGURES.items()))
    figures.append("FAULT cleanup summary: deployed digests lost per scenario: %s" % summary)


def deploy(world, host, ref, name=None):
    image = "%s/%s" % (world["registry"], ref)
    name = name or "%s-%s" % (world["prefix"], ref.rsplit("/", 1)[1].replace(":", "-").replace("@", "-"))
    lab_exec(host, "docker pull -q %s && docker create --name %s %s /nothing" % (image, name, image), check=True)
    return name


def settings(world, report):
    return {
        "image_cleanup_policy": {"keep": 5, "keep_patterns": [], "grace": 0, "repositories": ["*/%s/*" % world["prefix"]]},
        "image_cleanup_registry_policy": {"keep": KEEP, "repositories": ["%s/*" % world["prefix"]]},
        "image_cleanup_prune_dangling": False,
        "image_cleanup_report_path": report,
    }


def report_path(world, name):
    return os.path.join(ROOT, ".cache", "image-cleanup", "%s-%s.json" % (world["prefix"], name))


def cleanup(world, name, *extra, env=None):
    return world["lab"].playbook(
        "playbooks/image_cleanup.yml", "-e", json.dumps(settings(world, report_path(world, name))), *extra, env=env, timeout=900
    )


def report(world, name):
    with open(report_path(world, name), encoding="utf-8") as stream:
        return json.load(stream)


FAST_FAIL = {"ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ConnectTimeout=5"}


def deployed(world):
    """Every digest of ours that a container anywhere uses, read from the
    engines themselves (not from the role)."""
    found = set()
    for host in world["lab"].hosts:
        script = (
            "docker ps -aq | xargs -r docker inspect -f '{{.Image}}' | sort -u | xargs -r docker image inspect -f '{{json .RepoDigests}}'"
        )
        for line in lab_exec(host, script, check=True).stdout.split():
            found.update(d for d in json.loads(line) if d.startswith("%s/%s/" % (world["registry"], world["prefix"])))
    return {ref.split("/", 1)[1] for ref in found}


def lost(world, refs):
    """(ref, building) pairs that do not pull by digest from that building."""
    missing = []
    for building, host in sorted(world["pullers"].items()):
        checked = subprocess.run(
            ["docker", "exec", host, "python3", "-c", PULLABLE, world["registry"], json.dumps(sorted(refs))],
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr[-2000:]
        missing += [(problem, building) for problem in json.loads(checked.stdout)]
        for ref in sorted(refs):
            if lab_exec(host, "docker pull -q %s/%s" % (world["registry"], ref)).returncode != 0:
                missing.append((ref, building))
    return missing


def figure(world, scenario, refs):
    assert refs, "nothing deployed: the scenario proves nothing"
    missing = lost(world, refs)
    FIGURES[scenario] = len({ref for ref, _ in missing})
    world["say"](
        "FAULT cleanup %s: deployed digests lost %d (of %d, pulled from %d buildings)"
        % (scenario, FIGURES[scenario], len(refs), len(world["pullers"]))
    )
    assert missing == []


def converges(world, scenario):
    """A re-run finishes the job, the run after it changes nothing."""
    again = cleanup(world, scenario + "-again")
    assert again.returncode == 0, again.explain()
    settled = cleanup(world, scenario + "-settled")
    assert settled.returncode == 0, settled.explain()
    final = report(world, scenario + "-settled")
    assert final["registries"][world["server"]]["removed"] == 0 and final["deleted"] == 0
    assert {h: n for h, n in settled.changed().items() if h != "localhost"} == dict.fromkeys(world["lab"].hosts, 0)
    return report(world, scenario + "-again")


def tags(world, repos=None):
    return registry_tags(world["seeder"], world["registry"], repos or world["repos"])


def revisions(world, repos=None):
    held = {}
    for repo in repos or world["repos"]:
        # A deleted manifest loses its link file; its directory may stay.
        top = "%s/%s/_manifests/revisions/sha256" % (STORAGE, repo)
        listed = lab_exec(world["server"], "ls %s/*/link 2>/dev/null" % top).stdout.split()
        held[repo] = {"sha256:" + path.split("/")[-2] for path in listed}
    return held


def more_versions(world, label, count=4, repos=None):
    """Old versions that the policy deletes: something for a fault to interrupt."""
    images = [
        (repo, "0.%d.%s" % (n, label), "%s-%s-%d" % (repo, label, n), "2025-01-01T00:00:00Z")
        for repo in repos or world["repos"]
        for n in range(count)
    ]
    seed_registry(world["seeder"], world["registry"], images)


def wait_running(host, seconds=120):
    deadline = time.monotonic() + seconds
    while lab_exec(host, "systemctl is-system-running").stdout.strip() not in ("running", "degraded"):
        assert time.monotonic() < deadline, "%s did not come back" % host
        time.sleep(1)
    while lab_exec(host, "docker info -f '{{.ID}}'").returncode != 0:
        assert time.monotonic() < deadline, "the engine on %s did not come back" % host
        time.sleep(1)


def test_a_host_stopped_during_a_real_cleanup_deletes_nothing(world):
    refs = deployed(world)
    more_versions(world, "stop")
    before, held = tags(world), revisions(world)
    victim = world["buildings"]["bldg_b"][0]
    settings_json = json.dumps(settings(world, report_path(world, "stopped")))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", PYTHONUNBUFFERED="1", **FAST_FAIL)
    process = subprocess.Popen(
        [
            "ansible-playbook",
            "-i",
            world["lab"].inventory,
            "playbooks/image_cleanup.yml",
            "-e",
            settings_json,
            "-e",
            "image_cleanup_dry_run=false",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, stopper = [], None
    try:
        for line in process.stdout:
            output.append(line)
            if stopper is None and line.startswith("PLAY ["):
                # The run has started: the host goes down under it.
                stopper = threading.Thread(target=docker, args=("stop", "-t", "2", victim))
                stopper.start()
        process.wait(timeout=900)
    finally:
        if stopper:
            stopper.join()
        docker("start", victim)
    text = "".join(output)
    collected = text.split("TASK [image_cleanup : List the host's containers", 1)[1].split("TASK [", 1)[0]
    assert victim in collected and ("UNREACHABLE" in collected or "unreachable" in collected), text[-4000:]
    assert process.returncode != 0
    assert "no in-use list from %s" % victim in text, text[-4000:]
    assert tags(world) == before and revisions(world) == held  # not one manifest deleted
    found = report(world, "stopped")
    assert found["missing_hosts"] == [victim] and found["registries"][world["server"]]["deleted"] == 0
    wait_running(victim)
    figure(world, "host-stopped", refs)
    converges(world, "host-stopped")


def test_the_registry_stopped_mid_prune_reports_exactly_what_went(world):
    refs = deployed(world)
    more_versions(world, "mid", count=120)
    held = revisions(world)
    watched = [
        "%s/%s/_manifests/revisions/sha256/%s/link" % (STORAGE, repo, digest.split(":", 1)[1])
        for repo, digests in held.items()
        for digest in digests
    ]
    lab_exec(world["server"], "rm -f /tmp/berth-fault-watch /tmp/berth-fault-watch.stop")
    watcher = subprocess.Popen(["docker", "exec", "-i", world["server"], "python3", "-", "600", *watched], stdin=subprocess.PIPE, text=True)
    watcher.stdin.write(WATCH)
    watcher.stdin.close()
    try:
        run = cleanup(world, "registry-stopped")
    finally:
        lab_exec(world["server"], "touch /tmp/berth-fault-watch.stop")
        watcher.wait(timeout=60)
        lab_exec(world["server"], "systemctl start docker-registry", check=True)
    assert "stopped after" in lab_exec(world["server"], "cat /tmp/berth-fault-watch").stdout, run.explain()
    assert run.returncode != 0
    found = report(world, "registry-stopped")["registries"][world["server"]]
    assert found["status"] == "failed" and found["failures"], found
    assert found["gc"] is None  # no collection after a broken pass
    # Exact: what the report calls deleted is what left the registry's storage.
    now_held = revisions(world)
    gone = {"%s@%s" % (repo, d) for repo, digests in held.items() for d in digests - now_held[repo]}
    assert set(found["deleted_refs"]) == gone and gone, (found["deleted_refs"], gone)
    world["say"]("FAULT cleanup registry-stopped: deleted before the stop %d, failed %d" % (len(gone), len(found["failures"])))
    deadline = time.monotonic() + 30
    while (
        lab_exec(
            world["seeder"], "curl -sf --cacert /etc/docker/certs.d/%s/ca.crt https://%s/v2/" % (world["registry"], world["registry"])
        ).returncode
        != 0
    ):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    figure(world, "registry-stopped", refs)
    again = converges(world, "registry-stopped")
    assert again["registries"][world["server"]]["gc"]["blobs_deleted"] > 0
    # No tag is left naming a deleted manifest.
    for repo, names in tags(world).items():
        for name in names:
            head = "curl -s -o /dev/null -w '%%{http_code}' -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' --cacert /etc/docker/certs.d/%s/ca.crt https://%s/v2/%s/manifests/%s"
            assert lab_exec(world["seeder"], head % (world["registry"], world["registry"], repo, name)).stdout == "200", (repo, name)


def test_a_building_cut_off_by_a_partition_fails_closed(world):
    """Building C is cut off from the rest of the campus, where the control
    host sits (as if in building A): iptables DROP inside its hosts, for
    every campus address outside building C."""
    refs = deployed(world)
    more_versions(world, "split")
    before, held = tags(world), revisions(world)
    cut = world["buildings"]["bldg_c"]
    own, campus = world["subnets"]["bldg_c"], world["campus"]
    rules = [
        ("INPUT", "-s", campus, "DROP"),
        ("INPUT", "-s", own, "ACCEPT"),
        ("OUTPUT", "-d", campus, "DROP"),
        ("OUTPUT", "-d", own, "ACCEPT"),
    ]
    try:
        for host in cut:
            for chain, flag, network, action in rules:
                lab_exec(host, "iptables -I %s 1 %s %s -m comment --comment berth-fault -j %s" % (chain, flag, network, action), check=True)
        assert lab_exec(world["seeder"], "nc -z -w 2 %s 22" % world["lab"].hosts[cut[0]]).returncode != 0  # the cut is real
        run = cleanup(world, "partition", "-e", "image_cleanup_dry_run=false", env=FAST_FAIL)
    finally:
        for host in cut:
            for chain, flag, network, action in rules:
                lab_exec(host, "iptables -D %s %s %s -m comment --comment berth-fault -j %s" % (chain, flag, network, action))
    assert run.returncode != 0
    for host in cut:
        assert "no in-use list from" in run.output and host in report(world, "partition")["missing_hosts"], run.explain()
    assert tags(world) == before and revisions(world) == held
    assert report(world, "partition")["registries"][world["server"]]["deleted"] == 0
    figure(world, "partition", refs)
    converges(world, "partition")


def test_a_tag_moved_while_a_host_runs_the_old_digest(world):
    repo = "%s/moving" % world["prefix"]
    seed_registry(world["seeder"], world["registry"], [(repo, "1.0", "moving-a", "2025-01-01T00:00:00Z")])
    host = world["buildings"]["bldg_b"][-1]
    name = deploy(world, host, "%s:1.0" % repo, name="%s-moving" % world["prefix"])
    seed_registry(world["seeder"], world["registry"], [(repo, "1.0", "moving-b", "2025-01-02T00:00:00Z")])
    held = revisions(world, [repo])[repo]
    assert len(held) == 2  # the old digest is now untagged
    refs = deployed(world)
    old = next(ref for ref in refs if ref.startswith(repo + "@"))
    assert old.split("@", 1)[1] in held and tags(world, [repo])[repo] == ["1.0"]
    run = cleanup(world, "tag-moved", "-e", "image_cleanup_dry_run=false")
    assert run.returncode == 0, run.explain()
    assert revisions(world, [repo])[repo] == held  # the old digest stays: a host runs it
    plan = report(world, "tag-moved")["registries"][world["server"]]
    assert old not in plan["deleted_refs"]
    figure(world, "tag-moved", refs)
    converges(world, "tag-moved")
    # Once nothing runs it, the untagged old digest goes; the tag stays.
    lab_exec(host, "docker rm %s" % name, check=True)
    freed = cleanup(world, "tag-moved-freed")
    assert freed.returncode == 0, freed.explain()
    assert revisions(world, [repo])[repo] == held - {old.split("@", 1)[1]}
    assert tags(world, [repo])[repo] == ["1.0"]
    assert old in report(world, "tag-moved-freed")["registries"][world["server"]]["deleted_refs"]
