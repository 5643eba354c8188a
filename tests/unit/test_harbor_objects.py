"""The decisions behind berth's Harbor modules: validation, request bodies and
comparison with what Harbor returns."""

import os
import sys

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_objects import (
    ROBOT_ACCESS,
    artifact_reference,
    find_immutable,
    gc_comparable,
    gc_desired,
    gc_errors,
    gc_request,
    immutable_rule,
    project_changes,
    project_current,
    project_desired,
    project_errors,
    project_path,
    replication_comparable,
    replication_desired,
    replication_errors,
    replication_request,
    repository_path,
    retention_comparable,
    retention_errors,
    retention_policy,
    robot_comparable,
    robot_desired,
    robot_errors,
    robot_full_name,
)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from harbor_standin import vocab


def test_robot_vocabulary_matches_the_stand_ins_copy_of_harbors_table():
    # Two independent transcriptions of Harbor's RBAC table must agree.
    assert ROBOT_ACCESS == vocab.ROBOT_ACCESS


@pytest.mark.parametrize("name", ["test", "team-a", "a.b_c", "x1"])
def test_valid_project_names(name):
    assert project_errors({"name": name}) == []


@pytest.mark.parametrize("name", ["Test", "-a", "a-", "a b", "", "a/b", "a__"])
def test_invalid_project_names(name):
    assert "not a valid Harbor project name" in project_errors({"name": name})[0]


def test_paths_encode_names_and_repository_slashes_twice():
    assert project_path("team-a") == "/projects/team-a"
    assert repository_path("shop/web") == "shop%252Fweb"


def test_project_changes_only_what_was_asked_and_missing_flags_are_false():
    current = project_current({"metadata": {"public": "false"}}, 100)
    assert project_changes(current, project_desired({"public": False, "auto_scan": False})) == {}
    assert project_changes(current, project_desired({"auto_scan": True, "storage_quota": 100})) == {"metadata": {"auto_scan": "true"}}
    assert project_changes(current, project_desired({"storage_quota": -1})) == {"storage_quota": -1}


def test_quota_must_be_unlimited_or_positive():
    assert project_errors({"name": "a", "storage_quota": 0})
    assert not project_errors({"name": "a", "storage_quota": -1})


ROBOT = {"name": "ci", "permissions": [{"project": "test", "access": ["repository:push", "repository:pull"]}]}


def test_robot_level_and_full_name_follow_the_permissions():
    assert robot_full_name(ROBOT) == "robot$test+ci"
    system = {"name": "ops", "permissions": [{"access": ["registry:list"]}, {"project": "*", "access": ["repository:pull"]}]}
    assert robot_full_name(system) == "robot$ops"
    assert robot_desired(system)["level"] == "system"
    assert robot_errors(system) == []


@pytest.mark.parametrize(
    ("permissions", "message"),
    [
        ([{"project": "test", "access": ["repo:pull"]}], "unknown project resource 'repo'"),
        ([{"project": "test", "access": ["repository:drop"]}], "'drop' cannot be granted"),
        ([{"access": ["repository:pull"]}], "unknown system resource 'repository'"),
        ([], "at least one permission"),
        ([{"project": "a", "access": ["repository:pull"]}, {"project": "b", "access": ["repository:pull"]}], None),
    ],
)
def test_robot_permission_errors(permissions, message):
    errors = robot_errors({"name": "x", "permissions": permissions})
    if message is None:
        assert errors == []  # two projects: a system robot
    else:
        assert any(message in error for error in errors), errors


def test_robot_comparison_ignores_order_and_harbor_naming():
    desired = robot_desired(ROBOT)
    listed = {
        "name": "robot$test+ci",
        "description": "",
        "level": "project",
        "disable": False,
        "duration": -1,
        "permissions": [
            {"kind": "project", "namespace": "test", "access": [{"resource": "repository", "action": a} for a in ("pull", "push")]}
        ],
    }
    assert robot_comparable(listed) == desired
    assert robot_comparable(dict(listed, description="x")) != desired


def test_a_pinned_secret_must_be_strong_enough():
    assert "secret" in robot_errors(dict(ROBOT, secret="short"))[0]
    assert robot_errors(dict(ROBOT, secret="Long-enough-1")) == []


def test_retention_policy_round_trips_through_harbors_shape():
    rules = [{"template": "latestPushedK", "count": 5, "repo_excludes": "base/**"}, {"template": "always", "tag_matches": "release-*"}]
    policy = retention_policy(7, rules, "0 0 1 * * *")
    assert policy["scope"] == {"level": "project", "ref": 7}
    assert policy["rules"][0]["params"] == {"latestPushedK": 5}
    assert policy["rules"][0]["scope_selectors"]["repository"][0] == {
        "kind": "doublestar",
        "decoration": "repoExcludes",
        "pattern": "base/**",
    }
    # Harbor returns params as strings and adds ids; the comparison does not care.
    returned = dict(
        policy, id=3, rules=[dict(r, id=i, params={k: str(v) for k, v in r["params"].items()}) for i, r in enumerate(policy["rules"])]
    )
    assert retention_comparable(returned) == retention_comparable(policy)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"template": "latestPushedN", "count": 1}, "unknown retention template"),
        ({"template": "latestPushedK"}, "needs a whole number"),
        ({"template": "latestPushedK", "count": 40000}, "needs a whole number"),
        ({"template": "always", "days": 3}, "takes no parameter"),
        ({"template": "always", "tag_matches": "a", "tag_excludes": "b"}, "not both"),
        ({"template": "always", "colour": "red"}, "unknown keys colour"),
    ],
)
def test_retention_rule_errors(rule, message):
    assert any(message in error for error in retention_errors([rule], "")), retention_errors([rule], "")


def test_retention_limits_and_duplicates():
    assert "at most 15" in retention_errors([{"template": "always", "tag_matches": str(n)} for n in range(16)], "")[0]
    assert "the same rule" in retention_errors([{"template": "always"}, {"template": "always"}], "")[0]
    assert "six-field" in retention_errors([{"template": "always"}], "0 3 * * *")[0]


def test_immutable_rules_are_found_by_what_they_select():
    rules = [
        dict(immutable_rule({"tag_matches": "v*"}), id=1),
        dict(immutable_rule({"tag_matches": "release-*", "repo_matches": "app/**"}), id=2),
    ]
    assert find_immutable(rules, {"tag_matches": "release-*", "repo_matches": "app/**", "disabled": True})["id"] == 2
    assert find_immutable(rules, {"tag_matches": "release-*"}) is None


def test_gc_schedule_shapes():
    desired = gc_desired({"schedule": "custom", "cron": "0 0 2 * * 6", "delete_untagged": True})
    request = gc_request(desired)
    assert request == {"schedule": {"type": "Custom", "cron": "0 0 2 * * 6"}, "parameters": {"delete_untagged": True}}
    assert gc_comparable(request["schedule"], request["parameters"]) == desired
    assert gc_desired({"state": "absent"}) == gc_comparable(None, {}) == {"type": "None"}
    assert gc_errors({"schedule": "daily", "cron": "0 0 1 * * *"})
    assert gc_errors({"schedule": "weekly", "workers": 9})


REPLICATION = {
    "name": "promote",
    "registry": {"name": "prod", "url": "https://harbor.prod.example/"},
    "direction": "push",
    "name_filter": "test/**",
    "tag_filter": "release-*",
    "trigger": "event_based",
    "dest_namespace": "prod",
}


def test_replication_round_trip_push_and_pull():
    desired = replication_desired(REPLICATION)
    request = replication_request(desired, 4)
    assert request["dest_registry"] == {"id": 4} and "src_registry" not in request
    returned = dict(request, id=9, dest_registry={"id": 4, "name": "prod"}, src_registry={"id": 0, "name": "Local"})
    assert replication_comparable(returned) == desired
    pulled = replication_request(replication_desired(dict(REPLICATION, direction="pull", trigger="manual")), 4)
    assert pulled["src_registry"] == {"id": 4}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trigger": "scheduled"}, "six-field"),
        ({"trigger": "manual", "cron": "0 0 0 * * *"}, "only with trigger: scheduled"),
        ({"direction": "pull"}, "event_based replication pushes"),
        ({"registry": {"name": "prod", "url": "harbor.prod"}}, "not an http(s) URL"),
        ({"registry": {"name": "prod", "url": "https://x", "type": "nexus"}}, "unknown adapter"),
        ({"dest_namespace": "Prod"}, "not a valid namespace"),
    ],
)
def test_replication_errors(change, message):
    assert any(message in error for error in replication_errors(dict(REPLICATION, **change)))


def test_artifact_references_use_the_one_image_parser():
    assert artifact_reference("test/shop/web:1.0") == ("test", "shop/web", "1.0", None)
    digest = "sha256:" + "a" * 64
    assert artifact_reference("test/web@" + digest) == ("test", "web", None, digest)
    for bad in ("web:1.0", "harbor.example/test/web:1", "test/web"):
        with pytest.raises(ValueError):
            artifact_reference(bad)
