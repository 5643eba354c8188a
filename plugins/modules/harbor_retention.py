#!/usr/bin/python
"""A Harbor project's tag retention policy."""

DOCUMENTATION = r"""
---
module: harbor_retention
short_description: Manage a Harbor project's tag retention rules
description:
  - Rules use Harbor's own templates; an artifact is retained when any rule retains it.
  - Harbor's retention knows nothing about what the fleet runs; berth's registry_prune does. Use both, this one
    as Harbor's own safety net.
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.harbor
  - berth.ops.state
  - berth.ops.attributes
  - berth.ops.attributes.api
options:
  project:
    description: The project.
    type: str
    required: true
  state:
    description: C(absent) removes the whole policy.
  rules:
    description:
      - 'Up to 15 rules: I(template) is one of C(latestPushedK), C(latestPulledN) (with I(count)), C(nDaysSinceLastPush),
        C(nDaysSinceLastPull) (with I(days)) or C(always).'
      - 'Selection: I(tag_matches) or I(tag_excludes), I(repo_matches) or I(repo_excludes) (doublestar patterns,
        C(**) by default), I(untagged) (default true) and I(disabled).'
    type: list
    elements: dict
    default: []
  schedule:
    description: Six-field cron (seconds first) for Harbor to run the policy; empty runs it only by hand.
    type: str
    default: ''
"""

EXAMPLES = r"""
- name: Keep the last 10 pushes of every repository and every release tag
  berth.ops.harbor_retention:
    harbor_url: https://harbor.bldg-a.example
    password: "{{ vault_harbor_admin_password }}"
    project: test
    schedule: "0 0 3 * * *"
    rules:
      - {template: latestPushedK, count: 10}
      - {template: always, tag_matches: "release-*"}
"""

RETURN = r"""
policy_id:
  description: Harbor's id of the policy.
  returned: when present and not in check mode
  type: int
  sample: 5
policy:
  description: The policy as berth compares it.
  returned: always
  type: dict
  sample:
    algorithm: or
    rules:
      - template: latestPushedK
        params:
          latestPushedK: 10
"""

from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_client import HarborError, converge_object, object_module, run_module
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_objects import (
    project_errors,
    retention_comparable,
    retention_errors,
    retention_policy,
)


def main():
    module = object_module(
        project={"type": "str", "required": True},
        rules={"type": "list", "elements": "dict", "default": []},
        schedule={"type": "str", "default": ""},
    )
    p = module.params
    errors = project_errors({"name": p["project"]}) + retention_errors(p["rules"], p["schedule"])
    if p["state"] == "present" and not p["rules"]:
        errors.append("rules: give at least one rule, or state: absent to remove the policy")
    run_module(module, errors, converge, p)


def converge(module, client, p):
    project = client.project(p["project"])
    if project is None:
        raise HarborError("project %s does not exist" % p["project"], 404)
    policy_id = int((project.get("metadata") or {}).get("retention_id") or 0)
    path = "/retentions/%d" % policy_id
    current = retention_comparable(client.get(path)) if policy_id else None
    body = retention_policy(project["project_id"], p["rules"], p["schedule"]) if p["state"] == "present" else None
    desired = retention_comparable(body) if body else None
    done = converge_object(
        module,
        current,
        desired,
        create=lambda: client.create("/retentions", body),
        update=lambda _changes: client.put(path, dict(body, id=policy_id)),
        delete=lambda: client.delete(path, missing_ok=False),
    )
    result = done.result(policy=desired or {})
    if desired and (policy_id or done.created):
        result["policy_id"] = policy_id or done.created
    return result


if __name__ == "__main__":
    main()
