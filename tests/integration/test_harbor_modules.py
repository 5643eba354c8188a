"""berth's Harbor object modules through ansible-playbook against the Harbor
stand-in, which checks every request and response against Harbor's swagger.

Each module goes through one playbook: create in check mode, create, create
again, update, update again, delete in check mode, delete, delete again. A
check-mode step is followed by the real step, which must still report a
change: that is how "check mode changed nothing" is proven."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from labtools import ROOT

sys.path.insert(0, os.path.join(ROOT, "tests"))
from harbor_standin import HarborStandIn

PASSWORD = "Stand-in-admin-2c81e"
DIGEST = "sha256:" + "ab" * 32

LIFECYCLES = {
    "harbor_project": (
        {"name": "team-a", "public": False, "auto_scan": True, "storage_quota": "20GB"},
        {"name": "team-a", "public": True, "auto_scan": True, "storage_quota": "30GB"},
        {"name": "team-a", "state": "absent"},
    ),
    "harbor_robot": (
        {"name": "deployer", "permissions": [{"project": "test", "access": ["repository:pull", "artifact:read"]}]},
        {"name": "deployer", "description": "pulls", "permissions": [{"project": "test", "access": ["repository:pull"]}]},
        {"name": "deployer", "state": "absent", "permissions": [{"project": "test", "access": ["repository:pull"]}]},
    ),
    "harbor_retention": (
        {"project": "test", "rules": [{"template": "latestPushedK", "count": 10}, {"template": "always", "tag_matches": "release-*"}]},
        {
            "project": "test",
            "schedule": "0 0 3 * * *",
            "rules": [{"template": "nDaysSinceLastPull", "days": 30, "repo_excludes": "base/**", "untagged": False}],
        },
        {"project": "test", "state": "absent"},
    ),
    "harbor_immutable_rule": (
        {"project": "test", "tag_matches": "release-*"},
        {"project": "test", "tag_matches": "release-*", "disabled": True},
        {"project": "test", "tag_matches": "release-*", "state": "absent"},
    ),
    "harbor_gc_schedule": (
        {"schedule": "weekly"},
        {"schedule": "custom", "cron": "0 0 2 * * 6", "delete_untagged": True, "workers": 2},
        {"state": "absent"},
    ),
    "harbor_replication": (
        {
            "name": "a-to-b",
            "registry": {
                "name": "bldg-b",
                "url": "https://harbor.bldg-b.example",
                "access_key": "robot$replicator",
                "access_secret": "Repl1cator-secret",
            },
            "name_filter": "test/**",
            "trigger": "event_based",
        },
        {
            "name": "a-to-b",
            "registry": {"name": "bldg-b", "url": "https://harbor.bldg-b.example", "access_key": "robot$replicator"},
            "name_filter": "test/**",
            "tag_filter": "release-*",
            "trigger": "scheduled",
            "cron": "0 30 1 * * *",
        },
        {"name": "a-to-b", "state": "absent", "registry": {"name": "bldg-b"}},
    ),
    "harbor_artifact_copy": (
        {"source": "test/shop/web:1.0.0", "project": "prod"},
        {"source": "test/shop/web:1.0.1", "project": "prod"},
        {"source": "test/shop/web:1.0.1", "project": "prod", "state": "absent"},
    ),
}


@pytest.fixture
def harbor():
    with HarborStandIn(PASSWORD) as server:
        server.state.add_project("test")
        server.state.add_project("prod")
        server.state.add_artifact("test", "shop/web", DIGEST, tags=["1.0.0"], size=100)
        server.state.add_artifact("test", "shop/web", "sha256:" + "cd" * 32, tags=["1.0.1"], size=100)
        yield server
        assert server.violations == []


def run_tasks(harbor, tasks, *extra, callback="ansible.posix.json", user="admin", password=PASSWORD):
    """Run tasks on localhost with the connection options as module defaults."""
    connection = {"harbor_url": harbor.url, "username": user, "password": password}
    play = [
        {
            "name": "Harbor modules",
            "hosts": "localhost",
            "gather_facts": False,
            "module_defaults": {"group/berth.ops.harbor": connection},
            "tasks": tasks,
        }
    ]
    path = os.path.join(ROOT, ".cache", "harbor-modules-%d.yml" % os.getpid())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(play, handle)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK=callback, ANSIBLE_FORCE_COLOR="0")
    try:
        proc = subprocess.run(
            [
                "ansible-playbook",
                "-i",
                "localhost,",
                "-c",
                "local",
                "-e",
                "ansible_python_interpreter=" + sys.executable,
                "--diff",
                path,
                *extra,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        os.unlink(path)
    return proc


def results_of(proc):
    assert proc.stdout.lstrip().startswith("{"), proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    return [task["hosts"]["localhost"] for play in report["plays"] for task in play["tasks"]]


def step(module, args, check=False):
    task = {"name": "%s %s" % (module, "check" if check else "apply"), "berth.ops." + module: args}
    if check:
        task["check_mode"] = True
    return task


@pytest.mark.parametrize("module", sorted(LIFECYCLES))
def test_lifecycle_create_noop_update_delete_with_check_mode(harbor, module):
    create, update, delete = LIFECYCLES[module]
    tasks = [
        step(module, create, check=True),
        step(module, create),
        step(module, create),
        step(module, update, check=True),
        step(module, update),
        step(module, update),
        step(module, delete, check=True),
        step(module, delete),
        step(module, delete),
    ]
    proc = run_tasks(harbor, tasks)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    results = results_of(proc)
    changed = [r.get("changed", False) for r in results]
    assert changed == [True, True, False, True, True, False, True, True, False], [r.get("msg") for r in results]
    assert all(not r.get("failed") for r in results)
    update_diff = results[4]["diff"]
    diff = update_diff[0] if isinstance(update_diff, list) else update_diff
    assert diff["before"] and diff["after"] and diff["before"] != diff["after"]


def test_created_objects_are_what_harbor_holds(harbor):
    create = {module: LIFECYCLES[module][0] for module in LIFECYCLES}
    proc = run_tasks(harbor, [step(module, create[module]) for module in sorted(create)])
    assert proc.returncode == 0, proc.stdout[-4000:]
    state = harbor.state
    project = state.project_by_name("team-a")
    assert project["metadata"]["auto_scan"] == "true" and project["metadata"]["public"] == "false"
    assert state.quota_of(project["project_id"])["storage"] == 20 * 1024**3
    robot = state.robot_by_full_name("robot$test+deployer")
    assert {(a["resource"], a["action"]) for a in robot["permissions"][0]["access"]} == {("repository", "pull"), ("artifact", "read")}
    (policy,) = state.retentions.values()
    assert [r["template"] for r in policy["rules"]] == ["latestPushedK", "always"]
    assert policy["rules"][0]["params"] == {"latestPushedK": 10}
    (rule,) = state.immutable_rules.values()
    assert rule["tag_selectors"][0]["pattern"] == "release-*"
    assert state.gc_schedule["type"] == "Weekly"
    (replication,) = state.replication_policies.values()
    assert replication["trigger"] == {"type": "event_based"} and replication["dest_registry_id"]
    assert [a["digest"] for a in state.artifacts_of(state.repository("prod/shop/web")["id"])] == [DIGEST]


def test_robot_secret_is_returned_once_pinned_and_rotated_without_showing_it(harbor):
    pinned = "Pinned-robot-Secret-9"
    robot = {"name": "ci", "permissions": [{"project": "test", "access": ["repository:push", "repository:pull"]}]}
    tasks = [
        {"name": "Create", "berth.ops.harbor_robot": robot, "register": "made", "no_log": True},
        {"name": "Prove the secret works", "ansible.builtin.assert": {"that": ["made.secret | length >= 8"], "quiet": True}},
        {"name": "Pin", "berth.ops.harbor_robot": dict(robot, secret=pinned), "no_log": True},
        {"name": "Pin again", "berth.ops.harbor_robot": dict(robot, secret=pinned), "no_log": True},
        {"name": "Rotate", "berth.ops.harbor_robot": dict(robot, rotate=True), "register": "rotated", "no_log": True},
        {"name": "Show the login name", "ansible.builtin.debug": {"msg": "{{ rotated.full_name }} changed={{ rotated.changed }}"}},
    ]
    proc = run_tasks(harbor, tasks, "-v", callback="default")
    assert proc.returncode == 0, proc.stdout[-4000:]
    stored = harbor.state.robot_by_full_name("robot$test+ci")
    assert stored["secret"] != pinned  # rotated after pinning
    assert "robot$test+ci changed=True" in proc.stdout
    for secret in (PASSWORD, pinned, stored["secret"]):
        assert secret not in proc.stdout + proc.stderr
    assert proc.stdout.count("changed: [localhost]") == 3  # create, pin, rotate; the second pin found it in place


def test_robot_account_authenticates_the_modules(harbor):
    robot = {
        "name": "admin-bot",
        "level": "system",
        "permissions": [{"access": ["project:create", "project:list"]}, {"project": "*", "access": ["project:read"]}],
        "secret": "Bot-secret-42x",
    }
    assert run_tasks(harbor, [step("harbor_robot", robot)]).returncode == 0
    proc = run_tasks(harbor, [step("harbor_project", {"name": "by-robot"})], user="robot$admin-bot", password="Bot-secret-42x")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert harbor.state.project_by_name("by-robot") is not None
    wrong = run_tasks(harbor, [step("harbor_project", {"name": "nope"})], user="robot$admin-bot", password="Wrong-secret-1")
    assert wrong.returncode != 0 and "401" in wrong.stdout


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        ("harbor_project", {"name": "Bad_Name"}, "not a valid Harbor project name"),
        (
            "harbor_robot",
            {"name": "x", "permissions": [{"project": "test", "access": ["repositry:pull"]}]},
            "unknown project resource 'repositry'",
        ),
        ("harbor_robot", {"name": "x", "permissions": [{"project": "test", "access": ["repository:fly"]}]}, "'fly' cannot be granted"),
        ("harbor_retention", {"project": "test", "rules": [{"template": "keepEverything"}]}, "unknown retention template 'keepEverything'"),
        ("harbor_retention", {"project": "test", "rules": [{"template": "latestPushedK"}]}, "needs a whole number"),
        ("harbor_gc_schedule", {"schedule": "custom", "cron": "0 3 * * *"}, "six-field cron"),
        ("harbor_replication", {"name": "r", "registry": {"name": "x", "url": "ftp://x"}}, "not an http(s) URL"),
        ("harbor_artifact_copy", {"source": "test/web", "project": "prod"}, "has no tag"),
        ("harbor_immutable_rule", {"project": "test", "tag_matches": "a", "tag_excludes": "b"}, "not both"),
    ],
)
def test_bad_input_fails_clearly_before_any_request(harbor, module, args, message):
    before = len(harbor.requests)
    proc = run_tasks(harbor, [step(module, args)])
    assert proc.returncode != 0
    (result,) = results_of(proc)
    assert message in result["msg"]
    assert len(harbor.requests) == before, harbor.requests[before:]
