#!/usr/bin/python
"""One immutable-tag rule of a Harbor project."""

DOCUMENTATION = r"""
---
module: harbor_immutable_rule
short_description: Manage an immutable-tag rule of a Harbor project
description:
  - A rule is known by what it selects (tag and repository patterns), so the same task finds it again; only I(disabled)
    can change on an existing rule.
  - Tags an immutable rule selects cannot be overwritten or deleted, retention included.
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
    description: Whether the rule exists.
  tag_matches:
    description: Doublestar pattern of tags made immutable (C(**) when neither tag option is given).
    type: str
  tag_excludes:
    description: Every tag except those matching.
    type: str
  repo_matches:
    description: Doublestar pattern of repositories (C(**) when neither repository option is given).
    type: str
  repo_excludes:
    description: Every repository except those matching.
    type: str
  disabled:
    description: Keep the rule but switch it off.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Release tags can never be overwritten
  berth.ops.harbor_immutable_rule:
    harbor_url: https://harbor.bldg-a.example
    password: "{{ vault_harbor_admin_password }}"
    project: prod
    tag_matches: "release-*"
"""

RETURN = r"""
rule_id:
  description: Harbor's id of the rule.
  returned: when present and not in check mode
  type: int
  sample: 7
"""

from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_client import HarborError, converge_object, object_module, run_module
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_objects import (
    find_immutable,
    immutable_errors,
    immutable_rule,
    project_errors,
    project_path,
    selector_key,
)

SELECTOR_OPTIONS = ("tag_matches", "tag_excludes", "repo_matches", "repo_excludes")


def main():
    module = object_module(
        project={"type": "str", "required": True},
        disabled={"type": "bool", "default": False},
        **{name: {"type": "str"} for name in SELECTOR_OPTIONS},
    )
    p = module.params
    rule_params = {k: p[k] for k in SELECTOR_OPTIONS if p[k] is not None}
    rule_params["disabled"] = p["disabled"]
    errors = project_errors({"name": p["project"]}) + immutable_errors(rule_params)
    run_module(module, errors, converge, p, rule_params)


def describe(rule):
    tags, repos = selector_key(rule)
    return {"tags": [list(t[:2]) for t in tags], "repositories": [list(r) for r in repos], "disabled": bool(rule.get("disabled"))}


def converge(module, client, p, rule_params):
    path = project_path(p["project"]) + "/immutabletagrules"
    if client.project(p["project"]) is None:
        raise HarborError("project %s does not exist" % p["project"], 404)
    # A rule is known by its selectors; only whether it is disabled can differ.
    existing = find_immutable(client.paged(path), rule_params)
    desired = immutable_rule(rule_params)
    rule_path = existing and "%s/%d" % (path, existing["id"])
    done = converge_object(
        module,
        existing and describe(existing),
        describe(desired) if p["state"] == "present" else None,
        create=lambda: client.create(path, desired),
        update=lambda _changes: client.put(rule_path, dict(desired, id=existing["id"], priority=existing.get("priority", 0))),
        delete=lambda: client.delete(rule_path, missing_ok=False),
    )
    result = done.result()
    if p["state"] == "present" and (existing or done.created):
        result["rule_id"] = existing["id"] if existing else done.created
    return result


if __name__ == "__main__":
    main()
