"""Tag retention, immutable tag rule and garbage collection handlers of the Harbor
API stand-in (a test double for berth's tests, not Harbor). A manual GC run
completes at once and shows in the history as Success.
"""

import copy
import json

from . import vocab
from .base import (
    NEVER,
    Response,
    created,
    find_project,
    op,
    require_project,
    require_system,
    select,
)
from .state import now
from .swagger import ApiError

GC_EXTRA = {"redis_url_reg": "redis://redis:6379/1?idle_timeout_seconds=30", "time_window": 2}


# -- tag retention ------------------------------------------------------------------------------------
@op("getRentenitionMetadata")
def get_retention_metadata(call):
    return Response(200, copy.deepcopy(vocab.RETENTION_METADATA))


def store_retention(st, policy, ident=None):
    ident = ident or st.next_id("retention")
    st.retentions[ident] = dict(copy.deepcopy(policy), id=ident)
    st.projects[policy["scope"]["ref"]]["metadata"]["retention_id"] = str(ident)
    return ident


def _retention_project(call, policy, action):
    scope = policy.get("scope") or {}
    if scope.get("level") != "project":
        raise ApiError(400, "scope %s is not support" % scope.get("level"))
    project = call.state.projects.get(scope.get("ref") or 0)
    require_project(call, project, "tag-retention", action)
    if project is None:
        raise ApiError(400, "invalid Project id %d" % (scope.get("ref") or 0))
    return project


def find_retention(call, action, missing_status=404):
    policy = call.state.retentions.get(call.params["id"])
    if policy is None:
        raise ApiError(missing_status, "retention policy %d not found" % call.params["id"])
    require_project(call, call.state.projects.get(policy["scope"]["ref"]), "tag-retention", action)
    return policy


@op("createRetention")
def create_retention(call):
    vocab.check_retention(call.body)
    project = _retention_project(call, call.body, "create")
    if project["metadata"].get("retention_id"):
        raise ApiError(400, "project %d already has retention policy %s" % (project["project_id"], project["metadata"]["retention_id"]))
    return created(call, store_retention(call.state, call.body))


@op("getRetention")
def get_retention(call):
    return Response(200, copy.deepcopy(find_retention(call, "read")))


@op("updateRetention")
def update_retention(call):
    vocab.check_retention(call.body)
    project = _retention_project(call, call.body, "update")
    if project["metadata"].get("retention_id") != str(call.params["id"]):
        raise ApiError(404, "the retention policy id %d does not match" % call.params["id"])
    store_retention(call.state, call.body, call.params["id"])
    return Response(200)


@op("deleteRetention")
def delete_retention(call):
    policy = find_retention(call, "delete", missing_status=400)  # Harbor wraps the miss as a bad request
    del call.state.retentions[policy["id"]]
    call.state.projects[policy["scope"]["ref"]]["metadata"].pop("retention_id", None)
    return Response(200)


# -- immutable tag rules ---------------------------------------------------------------------------
IMMUTABLE_MAX = 15


def _immutable_rule(call, project, ident):
    rule = call.state.immutable_rules.get(ident)
    if rule is None or rule["project_id"] != project["project_id"]:
        raise ApiError(404, "immutable rule %d not found in project %s" % (ident, project["name"]))
    return rule


def _rule_body(call):
    rule = {k: v for k, v in call.body.items() if k != "id"}
    vocab.check_selectors(rule, "immutable rule")
    rule.setdefault("action", "immutable")
    rule.setdefault("template", "immutable_template")
    return rule


@op("ListImmuRules")
def list_immutable_rules(call):
    project = find_project(call, "immutable-tag", "list")
    rules = [r for r in call.state.immutable_rules.values() if r["project_id"] == project["project_id"]]
    return select(call, [({}, {k: v for k, v in r.items() if k != "project_id"}) for r in rules])


@op("CreateImmuRule")
def create_immutable_rule(call):
    project, st = find_project(call, "immutable-tag", "create"), call.state
    rule = _rule_body(call)
    if sum(r["project_id"] == project["project_id"] for r in st.immutable_rules.values()) >= IMMUTABLE_MAX:
        raise ApiError(400, "only %d immutable rules are allowed per project" % IMMUTABLE_MAX)
    ident = st.next_id("immutable_rule")
    st.immutable_rules[ident] = dict(rule, id=ident, project_id=project["project_id"])
    return created(call, ident)


@op("UpdateImmuRule")
def update_immutable_rule(call):
    ident = call.params["immutable_rule_id"]
    if call.body.get("id") != ident:
        raise ApiError(400, "the immutable_rule_id doesn't match the id in the payload body of ImmutableRule")
    project = find_project(call, "immutable-tag", "update")
    _immutable_rule(call, project, ident)
    call.state.immutable_rules[ident] = dict(_rule_body(call), id=ident, project_id=project["project_id"])
    return Response(200)


@op("DeleteImmuRule")
def delete_immutable_rule(call):
    project = find_project(call, "immutable-tag", "delete")
    del call.state.immutable_rules[_immutable_rule(call, project, call.params["immutable_rule_id"])["id"]]
    return Response(200)


# -- garbage collection -------------------------------------------------------------------------------
def gc_out(run):
    return {
        "id": run["id"],
        "job_name": "GARBAGE_COLLECTION",
        "job_kind": run["trigger"],
        "job_parameters": json.dumps(run["parameters"], sort_keys=True),
        "job_status": run["status"],
        "schedule": {"type": run["trigger"].title(), "cron": "", "next_scheduled_time": NEVER},
        "creation_time": run["creation_time"],
        "update_time": run["update_time"],
    }


def _gc_kick(call):
    """Harbor's gcAPI.kick: Manual runs now, None drops the schedule, the rest replace it."""
    st, req = call.state, call.body
    kind, cron = req["schedule"]["type"], req["schedule"].get("cron", "")
    parameters = dict(req.get("parameters") or {}, **GC_EXTRA)
    if kind == "Manual":
        stamp = now()
        run = {
            "id": st.next_id("gc"),
            "trigger": "MANUAL",
            "status": "Success",
            "parameters": parameters,
            "creation_time": stamp,
            "update_time": stamp,
        }
        st.gc_runs.append(run)
        return run["id"]
    if kind == "None":
        st.gc_schedule = None
    elif kind in ("Hourly", "Daily", "Weekly", "Custom"):
        if not cron:
            raise ApiError(400, "empty cron string for gc schedule")
        vocab.check_cron(cron, "gc schedule")
        stamp = now()
        st.gc_schedule = {
            "id": st.next_id("schedule"),
            "type": kind,
            "cron": cron,
            "parameters": parameters,
            "creation_time": stamp,
            "update_time": stamp,
        }
    return 0


@op("getGCHistory")
def get_gc_history(call):
    require_system(call, "garbage-collection", "list")
    return select(call, [({}, gc_out(run)) for run in reversed(call.state.gc_runs)])


@op("getGC")
def get_gc(call):
    require_system(call, "garbage-collection", "read")
    run = next((r for r in call.state.gc_runs if r["id"] == call.params["gc_id"]), None)
    if run is None:
        raise ApiError(404, "garbage collection %d not found" % call.params["gc_id"])
    return Response(200, gc_out(run))


@op("getGCSchedule")
def get_gc_schedule(call):
    require_system(call, "garbage-collection", "read")
    schedule = call.state.gc_schedule
    if schedule is None:
        return Response(200)  # Harbor answers an empty 200 when there is no schedule
    body = {
        "id": schedule["id"],
        "job_name": "",
        "job_kind": schedule["cron"],
        "job_parameters": json.dumps(schedule["parameters"], sort_keys=True),
        "job_status": "",
        "schedule": {"type": schedule["type"], "cron": schedule["cron"], "next_scheduled_time": NEVER},
        "creation_time": schedule["creation_time"],
        "update_time": schedule["update_time"],
    }
    return Response(200, body)


@op("createGCSchedule")
def create_gc_schedule(call):
    require_system(call, "garbage-collection", "create")
    ident = _gc_kick(call)
    return Response(201, None, {"Location": "%s/%d" % (call.path.rstrip("/").rsplit("/", 1)[0], ident)})


@op("updateGCSchedule")
def update_gc_schedule(call):
    require_system(call, "garbage-collection", "update")
    _gc_kick(call)
    return Response(200)
