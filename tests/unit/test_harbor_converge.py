"""The one converge every Harbor object module shares: plan_object decides
(create, update, delete or nothing, and the diff), converge_object runs the
one call it takes, never in check mode. The calls here act on a dict that
stands for Harbor."""

from types import SimpleNamespace

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_client import converge_object
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_objects import (
    combined_diff,
    plan_object,
    project_after,
    project_changes,
    project_current,
    project_desired,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# An object as a module compares it: a few fields, or None when it does not exist.
OBJECTS = st.none() | st.dictionaries(st.sampled_from(["name", "disabled", "cron", "count"]), st.integers(0, 2) | st.booleans())
FLAGS = st.none() | st.booleans()


class FakeHarbor:
    """One object's store and the calls converge_object makes on it."""

    def __init__(self, held):
        self.held = held
        self.calls = []

    def create(self, desired):
        def call():
            self.calls.append("create")
            self.held = dict(desired)
            return 7

        return call

    def update(self, desired):
        def call(changes):
            self.calls.append(("update", changes))
            self.held = dict(desired)

        return call

    def delete(self):
        self.calls.append("delete")
        self.held = None

    def converge(self, desired, check_mode=False, diff=True, **options):
        module = SimpleNamespace(check_mode=check_mode, _diff=diff)
        held = None if self.held is None else dict(self.held)
        return converge_object(
            module, held, desired, create=self.create(desired), update=self.update(desired), delete=self.delete, **options
        )


@pytest.mark.parametrize(
    ("current", "desired", "action", "diff"),
    [
        (None, None, None, None),
        (None, {"a": 1}, "create", {"before": {}, "after": {"a": 1}}),
        ({"a": 1}, {"a": 1}, None, None),
        ({"a": 1}, {"a": 2}, "update", {"before": {"a": 1}, "after": {"a": 2}}),
        ({"a": 1}, None, "delete", {"before": {"a": 1}, "after": {}}),
    ],
)
def test_plan_decides_the_action_and_the_diff(current, desired, action, diff):
    plan = plan_object(current, desired)
    assert (plan.action, plan.diff, plan.changed) == (action, diff, action is not None)
    assert plan.verb == {"create": "created", "update": "updated", "delete": "deleted"}.get(action)


def test_a_comparison_decides_what_differs_and_the_diff_shows_the_object_after():
    current = project_current({"metadata": {"public": "false", "auto_scan": "false"}}, 100)
    desired = project_desired({"auto_scan": True, "storage_quota": 200})
    plan = plan_object(current, desired, project_changes, project_after)
    assert plan.action == "update" and plan.changes == {"metadata": {"auto_scan": "true"}, "storage_quota": 200}
    # Settings the task leaves out stay in the diff as Harbor keeps them.
    assert plan.diff["after"] == {"metadata": {"public": "false", "auto_scan": "true"}, "storage_quota": 200}
    # Missing flags count as false: nothing to do.
    assert not plan_object(current, project_desired({"prevent_vulnerable": False}), project_changes).changed


def test_update_gets_what_the_comparison_found():
    harbor = FakeHarbor({"count": 1})
    done = harbor.converge({"count": 2}, compare=lambda c, d: sorted(k for k in d if c.get(k) != d[k]))
    assert harbor.calls == [("update", ["count"])] and done.changes == ["count"]


def test_the_result_has_the_diff_only_when_the_task_asked_for_one():
    assert FakeHarbor(None).converge({"a": 1}, diff=False).result(rule_id=3) == {"changed": True, "rule_id": 3}
    assert FakeHarbor(None).converge({"a": 1}).result() == {"changed": True, "diff": {"before": {}, "after": {"a": 1}}}
    assert FakeHarbor({"a": 1}).converge({"a": 1}).result(policy={}) == {"changed": False, "policy": {}}


def test_created_is_what_create_returned_and_only_when_it_ran():
    assert FakeHarbor(None).converge({"a": 1}).created == 7
    assert FakeHarbor(None).converge({"a": 1}, check_mode=True).created is None
    assert FakeHarbor({"a": 0}).converge({"a": 1}).created is None


def test_several_objects_share_one_diff_each_under_its_key_where_it_exists():
    created = plan_object(None, {"url": "https://b"}).diff
    updated = plan_object({"cron": "a"}, {"cron": "b"}).diff
    deleted = plan_object({"name": "p"}, None).diff
    assert combined_diff([("registry", created), ("policy", updated)]) == {
        "before": {"policy": {"cron": "a"}},
        "after": {"registry": {"url": "https://b"}, "policy": {"cron": "b"}},
    }
    assert combined_diff([("policy", deleted), ("registry", None)]) == {"before": {"policy": {"name": "p"}}, "after": {}}
    assert combined_diff([("policy", None), ("registry", None)]) is None


@settings(max_examples=200, deadline=None)
@given(OBJECTS, OBJECTS)
def test_converging_twice_the_second_pass_changes_nothing(held, desired):
    harbor = FakeHarbor(held)
    first = harbor.converge(desired)
    assert harbor.held == desired
    assert len(harbor.calls) == (1 if first.changed else 0)
    second = harbor.converge(desired)
    assert not second.changed and second.diff is None and len(harbor.calls) == (1 if first.changed else 0)


@settings(max_examples=200, deadline=None)
@given(OBJECTS, OBJECTS, st.booleans())
def test_check_mode_never_calls_create_update_or_delete_and_reports_the_same(held, desired, diff):
    checked = FakeHarbor(held)
    in_check = checked.converge(desired, check_mode=True, diff=diff)
    assert checked.calls == [] and checked.held == held and not in_check.ran and in_check.made is None
    applied = FakeHarbor(held).converge(desired, diff=diff)
    assert in_check.result() == applied.result()
    assert in_check.changed == (held != desired)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries({"public": FLAGS, "auto_scan": FLAGS, "prevent_vul": FLAGS}),
    st.none() | st.sampled_from([-1, 100, 200]),
    st.fixed_dictionaries(
        {"public": FLAGS, "auto_scan": FLAGS, "prevent_vulnerable": FLAGS, "storage_quota": st.none() | st.sampled_from([-1, 100, 200])}
    ),
)
def test_a_project_after_its_update_is_what_the_diff_showed_and_needs_nothing_more(flags, quota, params):
    held = project_current({"metadata": {k: ("true" if v else "false") for k, v in flags.items() if v is not None}}, quota)
    desired = project_desired(params)
    plan = plan_object(held, desired, project_changes, project_after)
    if plan.action == "update":
        held = project_after(held, plan.changes)  # what Harbor holds after the PUTs
        assert held == plan.diff["after"]
    assert not plan_object(held, desired, project_changes, project_after).changed
