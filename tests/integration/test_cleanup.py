"""Fleet-aware cleanup on the test lab: a registry with 100+ tags where what
is deployed on lab hosts survives however old it is, shared digests stay
under kept tags, kept images still pull after GC, and a stopped Docker host
makes the registry prune delete nothing."""

import json
import time
import uuid

import pytest
from labtools import docker, lab_exec, registry_tags, seed_registry

VERSIONS = ["1.%d.0" % n for n in range(22)]
KEEP = 3


@pytest.fixture(scope="module")
def fleet(lab):
    hosts = sorted(lab.hosts)
    pick = lambda suffix: next(h for h in hosts if h.endswith(suffix))  # noqa: E731
    prefix = "regtest%s" % uuid.uuid4().hex[:6]
    registry = "%s:5000" % lab.hosts[pick("-a1")]
    repos = ["%s/r%d" % (prefix, n) for n in range(5)]
    images = []
    for repo in repos:
        for index, version in enumerate(VERSIONS):
            images.append((repo, version, "%s-%d" % (repo, index), "2026-01-01T00:%02d:00Z" % index))
        images.append((repo, "stable", "%s-2" % repo, "2026-01-01T00:02:00Z"))  # shares 1.2.0's digest
    seed_registry(pick("-a2"), registry, images)
    # r0:1.0.0, the oldest of all, is deployed: a stopped container on b1 uses it.
    deployed = "%s/%s:1.0.0" % (registry, repos[0])
    lab_exec(pick("-b1"), "docker pull -q %s && docker create --name %s-deployed %s /nothing" % (deployed, prefix, deployed), check=True)
    return {
        "lab": lab,
        "registry": registry,
        "repos": repos,
        "prefix": prefix,
        "seeder": pick("-a2"),
        "puller": pick("-c1"),
        "stopped": pick("-c1"),
        "server": pick("-a1"),
    }


def tags(fleet):
    return registry_tags(fleet["seeder"], fleet["registry"], fleet["repos"])


def expected(fleet):
    survivors = {}
    for repo in fleet["repos"]:
        keep = set(VERSIONS[-KEEP:]) | {"stable", "1.2.0"}  # newest, pattern, shared digest
        if repo == fleet["repos"][0]:
            keep.add("1.0.0")  # deployed on a lab host
        survivors[repo] = sorted(keep)
    return survivors


def cleanup(fleet, report, *extra, env=None):
    settings = {
        "image_cleanup_registry_keep": KEEP,
        "image_cleanup_registry_keep_patterns": ["stable"],
        "image_cleanup_registry_grace": 0,
        "image_cleanup_registry_repositories": ["%s/*" % fleet["prefix"]],
        "image_cleanup_repositories": ["*/%s/*" % fleet["prefix"]],
        "image_cleanup_grace": 0,
        "image_cleanup_prune_dangling": False,
        "image_cleanup_report_path": str(report),
    }
    return fleet["lab"].playbook("playbooks/image_cleanup.yml", "-v", "-e", json.dumps(settings), *extra, env=env)


def test_a_dry_run_plans_and_deletes_nothing(fleet, tmp_path):
    before = tags(fleet)
    assert sum(len(t) for t in before.values()) == 5 * 23
    run = cleanup(fleet, tmp_path / "report.json", "-e", "image_cleanup_dry_run=true")
    assert run.returncode == 0, run.explain()
    assert tags(fleet) == before
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["dry_run"] is True and report["missing_hosts"] == []
    assert report["registries"][fleet["server"]]["removed"] == 5 * 23 - sum(len(v) for v in expected(fleet).values())
    assert "would remove" in run.output


def test_the_registry_keeps_exactly_the_policy_and_the_fleet(fleet, tmp_path):
    run = cleanup(fleet, tmp_path / "report.json")
    assert run.returncode == 0, run.explain()
    assert tags(fleet) == expected(fleet)
    registry = json.loads((tmp_path / "report.json").read_text())["registries"][fleet["server"]]
    assert registry["changed"] is True
    assert registry["gc"]["blobs_deleted"] > 0
    for ref in ("%s:1.0.0" % fleet["repos"][0], "%s:%s" % (fleet["repos"][1], VERSIONS[-1]), "%s:stable" % fleet["repos"][2]):
        pulled = lab_exec(fleet["puller"], "docker pull -q %s/%s" % (fleet["registry"], ref))
        assert pulled.returncode == 0, pulled.stderr
    again = cleanup(fleet, tmp_path / "again.json")
    assert again.returncode == 0, again.explain()
    report = json.loads((tmp_path / "again.json").read_text())
    assert report["registries"][fleet["server"]]["removed"] == 0
    assert all(entry["removed"] == 0 for entry in report["hosts"].values())
    assert report["registries"][fleet["server"]]["changed"] is False


def test_a_stopped_docker_host_makes_the_registry_prune_delete_nothing(fleet, tmp_path):
    extra = [(repo, "0.%d.0" % n, "%s-extra-%d" % (repo, n), "2025-01-01T00:00:00Z") for repo in fleet["repos"] for n in range(3)]
    seed_registry(fleet["seeder"], fleet["registry"], extra)
    before = tags(fleet)
    docker("stop", "-t", "5", fleet["stopped"])
    try:
        # No connection sharing, so the stopped host fails fast and for real.
        run = cleanup(fleet, tmp_path / "report.json", env={"ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ConnectTimeout=5"})
    finally:
        docker("start", fleet["stopped"])
    assert run.returncode != 0
    assert "no in-use list from %s" % fleet["stopped"] in run.output, run.explain()
    assert tags(fleet) == before
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "refused" and report["missing_hosts"] == [fleet["stopped"]]
    assert report["hosts"][fleet["stopped"]]["status"] == "missing"
    deadline = time.monotonic() + 90
    while lab_exec(fleet["stopped"], "systemctl is-system-running").stdout.strip() not in ("running", "degraded"):
        assert time.monotonic() < deadline
        time.sleep(1)


def module(fleet, options, *args):
    run = fleet["lab"].playbook(
        "tests/integration/playbooks/registry-prune.yml", *args, "-e", "target=%s" % fleet["server"], "-e", json.dumps({"prune": options})
    )
    return run


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"keep": -2}, "keep must be a whole number of tags, 0 or more, got -2"),
        ({"keep_patterns": ["[abc"]}, "keep_patterns[0]: '[abc' has an unbalanced [ ]"),
        ({"backend": "quay"}, "value of backend must be one of: distribution, harbor, got: quay"),
    ],
)
def test_bad_input_is_refused_before_any_delete(fleet, options, message):
    before = tags(fleet)
    run = module(fleet, dict({"registry": fleet["registry"], "grace": 0, "gc": False}, **options))
    assert run.returncode != 0
    assert message in run.output, run.explain()
    assert tags(fleet) == before


def test_a_registry_without_deletes_is_detected_and_explained(fleet):
    server = fleet["server"]
    lab_exec(
        server,
        "sed 's/enabled: true/enabled: false/; s/addr: :5000/addr: 127.0.0.1:5099/' /etc/docker/registry/config.yml "
        "| grep -v -E 'tls:|certificate:|key:' > /tmp/nodelete.yml && systemd-run --unit nodelete docker-registry serve /tmp/nodelete.yml",
        check=True,
    )
    try:
        time.sleep(1)
        run = module(fleet, {"registry": "127.0.0.1:5099", "scheme": "http", "grace": 0, "keep": 0})
    finally:
        lab_exec(server, "systemctl stop nodelete; rm -f /tmp/nodelete.yml")
    assert run.returncode != 0
    assert "refuses deletes (HTTP 405): set storage.delete.enabled: true" in run.output, run.explain()
