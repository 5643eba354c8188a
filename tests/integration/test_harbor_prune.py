"""registry_prune's Harbor backend against the Harbor stand-in, which checks
every request and response against Harbor's own swagger. Same retention
policy as on hosts and Distribution: newest N, patterns, grace from push
time, protected digests, tag-safe deletes, then Harbor's GC API."""

import datetime
import json
import os
import sys

import pytest
from labtools import ROOT, local_playbook, task_results

sys.path.insert(0, os.path.join(ROOT, "tests"))
from harbor_standin import HarborStandIn

PASSWORD = "Stand-in-admin-7f3c9"
VERSIONS = ["1.%d.0" % n for n in range(12)]


def digest(n):
    return "sha256:%064x" % (n + 1)


def ago(**delta):
    return (datetime.datetime.now(datetime.UTC) - datetime.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def harbor():
    with HarborStandIn(PASSWORD) as server:
        state = server.state
        state.add_project("lab")
        for n, version in enumerate(VERSIONS):
            pushed = ago(minutes=10) if version == "1.5.0" else ago(days=60 - n)
            tags = [version, "stable"] if version == "1.3.0" else [version]
            state.add_artifact("lab", "web", digest(n), tags=tags, push_time=pushed, size=1000, created=ago(days=90 - n))
        state.add_artifact("lab", "web", digest(99), tags=[], push_time=ago(days=80), size=500)
        # Untagged too, but a host still runs it: its tag moved on.
        state.add_artifact("lab", "web", digest(98), tags=[], push_time=ago(days=85), size=500)
        state.add_artifact("lab", "api", digest(50), tags=["2.0.0"], push_time=ago(days=70), size=10)
        state.add_artifact("lab", "api", digest(51), tags=["2.1.0"], push_time=ago(days=69), size=10)
        yield server
        assert server.violations == []


FLEET = {"hosts": ["lab-b1", "lab-c1"], "in_use": {"lab-b1": ["harbor.bldg-a.example/lab/web@%s" % digest(98)], "lab-c1": []}}


def prune(harbor, *args, **options):
    settings = {
        "backend": "harbor",
        "registry": harbor.url,
        "policy": {"keep": 3, "keep_patterns": ["stable"], "grace": "1h"},
        "protected": ["harbor.bldg-a.example/lab/web@%s" % digest(0)],
        "fleet": FLEET,
    }
    settings.update(options)
    run = local_playbook(
        "tests/integration/playbooks/registry-prune.yml",
        "-e",
        "target=localhost",
        "-e",
        json.dumps({"prune": settings, "harbor_password": PASSWORD}),
        *args,
        timeout=300,
    )
    return run, task_results(run.output, "Show the result").get("localhost", {}).get("prune_result", {})


def remaining(harbor):
    return {
        (repo["name"], tag["name"] if tag else None)
        for repo in harbor.state.repositories.values()
        for artifact in harbor.state.artifacts_of(repo["id"])
        for tag in (artifact["tags"] or [None])
    }


EXPECTED = {
    ("lab/web", "1.0.0"),  # protected: deployed in the fleet
    ("lab/web", "1.3.0"),  # shares its digest with the kept "stable"
    ("lab/web", "stable"),  # keep pattern
    ("lab/web", "1.5.0"),  # pushed ten minutes ago: grace
    ("lab/web", "1.9.0"),  # newest three
    ("lab/web", "1.10.0"),
    ("lab/web", "1.11.0"),
    ("lab/web", None),  # untagged, run by a host
    ("lab/api", "2.0.0"),
    ("lab/api", "2.1.0"),
}


def test_check_mode_plans_and_deletes_nothing(harbor):
    before = remaining(harbor)
    run, result = prune(harbor, "--check")
    assert run.returncode == 0, run.explain()
    assert result["changed"] is True and result["check_mode"] is True
    assert len(result["planned"]) == 7 and result["deleted"] == []
    assert "lab/web@%s" % digest(99) in result["planned"] and "lab/web@%s" % digest(98) not in result["planned"]
    assert remaining(harbor) == before
    assert [r for r in harbor.requests if r[0] != "GET"] == []
    assert harbor.state.gc_runs == []


def test_prune_keeps_exactly_the_policy_then_runs_gc(harbor):
    run, result = prune(harbor)
    assert run.returncode == 0, run.explain()
    assert remaining(harbor) == EXPECTED
    assert any(a["digest"] == digest(98) for a in harbor.state.artifacts.values())
    assert len(result["deleted"]) == 7 and "lab/web@%s" % digest(99) in result["deleted"]
    assert len(harbor.state.gc_runs) == 1
    assert PASSWORD not in run.output
    deletes = [r for r in harbor.requests if r[0] == "DELETE"]
    assert len(deletes) == 7 and all(status == 200 for _, _, status in deletes)
    again, result = prune(harbor)
    assert again.returncode == 0, again.explain()
    assert result["changed"] is False and len(harbor.state.gc_runs) == 1


def test_wrong_credentials_fail_clearly_and_delete_nothing(harbor):
    before = remaining(harbor)
    run = local_playbook(
        "tests/integration/playbooks/registry-prune.yml",
        "-e",
        "target=localhost",
        "-e",
        json.dumps(
            {
                "prune": {"backend": "harbor", "registry": harbor.url, "policy": {"grace": 0}, "fleet": FLEET},
                "harbor_password": "not-the-password",
            }
        ),
        timeout=300,
    )
    assert run.returncode != 0
    assert "HTTP 401" in run.output and "UNAUTHORIZED" in run.output, run.explain()
    assert remaining(harbor) == before


def test_a_host_that_did_not_report_stops_the_prune_before_any_request(harbor):
    before = remaining(harbor)
    fleet = {"hosts": ["lab-b1", "lab-c1"], "in_use": {"lab-b1": []}}
    run, _ = prune(harbor, fleet=fleet)
    assert run.returncode != 0
    assert "registry prune refused (fail closed): no in-use list from lab-c1" in run.output, run.explain()
    assert remaining(harbor) == before and harbor.requests == []
