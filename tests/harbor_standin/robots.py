"""Robot account handlers of the Harbor API stand-in (a test double for berth's
tests, not Harbor). Harbor stores a project robot as "project+name" and shows it
as "robot$project+name"; a system robot is "robot$name". The secret is only
returned by create and refresh.
"""

import copy
import re
import secrets
import string
import time

from . import vocab
from .base import (
    Response,
    created,
    op,
    parse_q,
    require_project,
    require_system,
    select,
)
from .state import now, valid_project_name
from .swagger import ApiError


def new_secret():
    """32 letters and digits, like Harbor's generated secrets, that pass its own secret rule."""
    alphabet = string.ascii_letters + string.digits
    while True:
        secret = "".join(secrets.choice(alphabet) for _ in range(32))
        if vocab.ROBOT_SECRET.fullmatch(secret):
            return secret


def robot_out(st, robot):
    permissions = []
    for perm in robot["permissions"]:
        if perm["kind"] == "project" and perm["namespace"] != "*" and not st.project_by_name(perm["namespace"]):
            continue  # Harbor hides permissions on projects that are gone
        permissions.append({"kind": perm["kind"], "namespace": perm["namespace"], "access": [dict(a) for a in perm["access"]]})
    keys = ("id", "description", "level", "duration", "disable", "expires_at", "creation_time", "update_time")
    return dict({k: robot[k] for k in keys}, name="robot$" + robot["name"], editable=True, permissions=permissions)


def _check_duration(duration):
    if duration != -1 and not 0 < duration < 2**31 - 1:
        raise ApiError(400, "bad request error duration input: %d, duration must be either -1(Never) or a positive integer" % duration)


def _robot_project(call, robot_req, action):
    """The project a project-level robot belongs to (404 if missing); None for system robots."""
    if robot_req["level"] != "project":
        for perm in robot_req["permissions"]:
            if perm["kind"] == "project" and perm["namespace"] != "*" and not call.state.project_by_name(perm["namespace"]):
                raise ApiError(404, "project %s not found" % perm["namespace"])
        return None
    perm = robot_req["permissions"][0]
    if perm["kind"] != "project":
        raise ApiError(400, "bad request permission level: %s" % perm["kind"])
    project = call.state.project_by_name(perm.get("namespace") or "")
    require_project(call, project, "robot", action)
    if project is None:
        raise ApiError(404, "project %s not found" % perm.get("namespace"))
    return project


def _require_robot_access(call, robot, action):
    if robot["level"] == "system":
        require_system(call, "robot", action)
    else:
        require_project(call, call.state.projects.get(robot["project_id"]), "robot", action)


def find_robot(call, action):
    robot = call.state.robots.get(call.params["robot_id"])
    if robot is None:
        raise ApiError(404, "robot %d not found" % call.params["robot_id"])
    _require_robot_access(call, robot, action)
    return robot


def _expiry(duration, start):
    return -1 if duration == -1 else int(start + duration * 86400)


@op("ListRobot")
def list_robots(call):
    keywords = parse_q(call.params.get("q"))
    level = keywords.pop("level", None)
    if level is None:
        keywords["projectid"] = ("exact", "0")
        require_system(call, "robot", "list")
    elif level[0] != "exact" or level[1] not in ("system", "project"):
        raise ApiError(400, "bad request error level input")
    elif level[1] == "system":
        keywords["projectid"] = ("exact", "0")
        require_system(call, "robot", "list")
    else:
        if keywords.get("projectid", ("",))[0] != "exact":
            raise ApiError(400, "must with project ID when to query project robots")
        if not re.fullmatch(r"-?\d+", keywords["projectid"][1]):
            raise ApiError(400, "Project ID must be int type.")
        require_project(call, call.state.projects.get(int(keywords["projectid"][1])), "robot", "list")
    # q's Level matches the level field; name matches Harbor's stored name ("name" or "project+name").
    rows = [({"name": r["name"], "projectid": r["project_id"]}, robot_out(call.state, r)) for r in call.state.robots.values()]
    return select(call, rows, keywords)


@op("CreateRobot")
def create_robot(call):
    st, req = call.state, call.body
    if not valid_project_name(req.get("name")):
        raise ApiError(400, "robot name is not in lower case or contains illegal characters")
    duration = req.get("duration", 0)
    _check_duration(duration)
    vocab.check_robot_permissions(req.get("level"), req.get("permissions"))
    if req["level"] == "system":
        require_system(call, "robot", "create")
    project = _robot_project(call, req, "create")
    name = "%s+%s" % (project["name"], req["name"]) if project else req["name"]
    if any(r["name"] == name for r in st.robots.values()):
        raise ApiError(409, "robot account robot$%s already exists" % name)
    start, stamp = time.time(), now()
    robot = {
        "id": st.next_id("robot"),
        "name": name,
        "description": req.get("description", ""),
        "level": req["level"],
        "project_id": project["project_id"] if project else 0,
        "secret": new_secret(),
        "duration": duration,
        "expires_at": _expiry(duration, start),
        "created_at": start,
        "disable": bool(req.get("disable", False)),
        "permissions": copy.deepcopy(req["permissions"]),
        "creation_time": stamp,
        "update_time": stamp,
    }
    st.robots[robot["id"]] = robot
    response = created(call, robot["id"])
    response.body = {
        "id": robot["id"],
        "name": "robot$" + name,
        "secret": robot["secret"],
        "creation_time": stamp,
        "expires_at": robot["expires_at"],
    }
    return response


@op("GetRobotByID")
def get_robot(call):
    return Response(200, robot_out(call.state, find_robot(call, "read")))


@op("UpdateRobot")
def update_robot(call):
    st, req = call.state, call.body
    robot = st.robots.get(call.params["robot_id"])
    if robot is None:
        raise ApiError(404, "robot %d not found" % call.params["robot_id"])
    duration = req["duration"] if req.get("duration") is not None else robot["duration"]
    _check_duration(duration)
    vocab.check_robot_permissions(req.get("level"), req.get("permissions"))
    project = _robot_project(call, req, "update")
    if robot["level"] == "project" and (project is None or project["project_id"] != robot["project_id"]):
        raise ApiError(400, "cannot update the project id of robot")
    _require_robot_access(call, robot, "update")
    if req["level"] != robot["level"] or req.get("name") != "robot$" + robot["name"]:
        raise ApiError(400, "cannot update the level or name of robot")
    if duration != robot["duration"]:
        robot.update(duration=duration, expires_at=_expiry(duration, robot["created_at"]))
    robot.update(
        description=req.get("description", ""),
        disable=bool(req.get("disable", False)),
        permissions=copy.deepcopy(req["permissions"]),
        update_time=now(),
    )
    return Response(200)


@op("RefreshSec")
def refresh_robot_secret(call):
    robot, secret = find_robot(call, "update"), (call.body or {}).get("secret")
    if secret:
        if not vocab.ROBOT_SECRET.fullmatch(secret):
            raise ApiError(
                400,
                "the secret must be 8-128, inclusively, characters long with at least 1 uppercase letter, 1 lowercase letter and 1 number",
            )
        robot["secret"] = secret
        return Response(200, {})
    robot["secret"] = new_secret()
    return Response(200, {"secret": robot["secret"]})


@op("DeleteRobot")
def delete_robot(call):
    del call.state.robots[find_robot(call, "delete")["id"]]
    return Response(200)
