#!/usr/bin/python
"""Harbor v2 robot accounts."""

DOCUMENTATION = r"""
---
module: harbor_robot
short_description: Manage a Harbor robot account and its permissions
description:
  - A project robot (one project) or a system robot (several projects and system resources).
  - Permissions are C(resource:action) strings checked against Harbor's RBAC table before Harbor is contacted.
  - Harbor shows a robot's secret only when it is made. The module returns it once, in C(secret), on creation or
    rotation; register the result with C(no_log). Give I(secret) from vault to pin it instead; the module then checks
    Harbor accepts it and resets it if not.
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.harbor
  - berth.ops.state
  - berth.ops.attributes
  - berth.ops.attributes.api
options:
  name:
    description: The robot's own name (Harbor adds C(robot$) and the project).
    type: str
    required: true
  state:
    description: Whether the robot exists.
  level:
    description: C(project) or C(system); by default C(project) when one project is named.
    type: str
    choices:
      - project
      - system
  description:
    description: Free text.
    type: str
    default: ''
  duration:
    description: Days until it expires, C(-1) for never. Unchanged on existing robots when left out.
    type: int
  disable:
    description: Disable the robot without deleting it.
    type: bool
    default: false
  permissions:
    description: Grants. Leave out I(project) for system resources; C(*) means every project.
    type: list
    elements: dict
    default: []
    suboptions:
      project:
        description: Project name or C(*).
        type: str
      access:
        description: C(resource:action) strings, e.g. C(repository:pull).
        type: list
        elements: str
        required: true
  secret:
    description: The secret to pin (8-128 characters, upper and lower case and a digit).
    type: str
  rotate:
    description: Refresh the secret now (a new one is generated unless I(secret) is given).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: A pull-only robot for the test project, secret kept in vault
  berth.ops.harbor_robot:
    harbor_url: https://harbor.bldg-a.example
    password: "{{ vault_harbor_admin_password }}"
    name: deployer
    permissions:
      - project: test
        access: [repository:pull, artifact:read]
    secret: "{{ vault_harbor_deployer_secret }}"
  no_log: true
"""

RETURN = r"""
robot:
  description: The robot as Harbor lists it (no secret).
  returned: when present
  type: dict
  sample:
    name: robot$test+deployer
    level: project
    duration: -1
    disable: false
full_name:
  description: The login name, C(robot$project+name) or C(robot$name).
  returned: always
  type: str
  sample: robot$test+deployer
secret:
  description: The new secret, only when Harbor generated one in this run.
  returned: on creation or rotation
  type: str
  sample: Rq7vX2mN9pLk4TzB8wYc3HdF6sJa1Ge5
changes:
  description: What changed.
  returned: always
  type: list
  elements: str
  sample:
    - created
"""

from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_client import converge_object, object_module, run_module
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_objects import (
    robot_comparable,
    robot_desired,
    robot_errors,
    robot_full_name,
    robot_level,
)


def find_robot(client, p):
    """The existing robot with this name, at its level."""
    full_name = robot_full_name(p) if p.get("permissions") else None
    params = {"q": "Level=system"}
    if robot_level(p) == "project" and p.get("permissions"):
        project = client.project(p["permissions"][0]["project"])
        if project is None:
            return None
        params = {"q": "Level=project,ProjectID=%d" % project["project_id"]}
    for robot in client.paged("/robots", params):
        if robot["name"] == full_name or (full_name is None and robot["name"].rsplit("+", 1)[-1].replace("robot$", "", 1) == p["name"]):
            return robot
    return None


def main():
    module = object_module(
        name={"type": "str", "required": True},
        level={"type": "str", "choices": ["project", "system"]},
        description={"type": "str", "default": ""},
        duration={"type": "int"},
        disable={"type": "bool", "default": False},
        permissions={
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {"project": {"type": "str"}, "access": {"type": "list", "elements": "str", "required": True}},
        },
        secret={"type": "str", "no_log": True},
        rotate={"type": "bool", "default": False},
    )
    p = module.params
    errors = robot_errors(p)
    run_module(module, errors, converge, p)


def converge(module, client, p):
    robot = find_robot(client, p)
    full_name = robot_full_name(p) if p["permissions"] else (robot or {}).get("name", "robot$" + p["name"])
    desired = robot_desired(p, robot) if p["state"] == "present" else None
    result = {"full_name": full_name}

    def create():
        created = client.request("POST", "/robots", body=desired, expect=(201,))[2]
        if p["secret"]:
            client.request("PATCH", "/robots/%d" % created["id"], body={"secret": p["secret"]})
        else:
            result["secret"] = created["secret"]  # Harbor shows a generated secret only once
        return client.get("/robots/%d" % created["id"])

    done = converge_object(
        module,
        robot and robot_comparable(robot),
        desired,
        create=create,
        update=lambda _changes: client.put("/robots/%d" % robot["id"], dict(desired, name=robot["name"])),
        delete=lambda: client.delete("/robots/%d" % robot["id"], missing_ok=False),
    )
    result.update(done.result(changes=[done.verb] if done.changed else []))
    if robot is None or desired is None:
        return dict(result, robot=done.created) if done.created else result

    # The secret is not part of the object Harbor shows, so it is checked apart.
    if p["rotate"]:
        result["changes"].append("secret rotated")
        if not module.check_mode:
            answer = client.request("PATCH", "/robots/%d" % robot["id"], body={"secret": p["secret"]} if p["secret"] else {})[2]
            if not p["secret"]:
                result["secret"] = answer["secret"]
    elif p["secret"] and not client.authenticates(robot["name"], p["secret"]):
        result["changes"].append("secret reset to the pinned one")
        if not module.check_mode:
            client.request("PATCH", "/robots/%d" % robot["id"], body={"secret": p["secret"]})
    result["changed"] = bool(result["changes"])
    result["robot"] = client.get("/robots/%d" % robot["id"]) if result["changed"] and not module.check_mode else robot
    return result


if __name__ == "__main__":
    main()
