#!/usr/bin/python
"""A Harbor replication: the remote registry endpoint and the policy."""

DOCUMENTATION = r"""
---
module: harbor_replication
short_description: Manage a Harbor registry endpoint and a replication policy to or from it
description:
  - Building-to-building replication (each building's Harbor pushes to its peers) and test-to-prod promotion (push
    the C(test) project to the prod Harbor), on demand, on a schedule, or on every push (C(event_based)).
  - The endpoint is created or updated first; with I(state=absent) the policy goes, and the endpoint too when no
    other policy or proxy-cache project uses it.
  - Harbor never shows an endpoint's secret again, so I(registry.access_secret) is sent on creation and whenever
    I(update_secret) is true.
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.harbor
  - berth.ops.state
  - berth.ops.attributes
  - berth.ops.attributes.api
options:
  name:
    description: Policy name.
    type: str
    required: true
  state:
    description: Whether the policy exists.
  description:
    description: Free text.
    type: str
    default: ''
  registry:
    description: The remote end.
    type: dict
    required: true
    suboptions:
      name:
        description: Endpoint name in Harbor.
        type: str
        required: true
      type:
        description: Harbor's adapter, e.g. C(harbor) or C(docker-registry).
        type: str
        default: harbor
      url:
        description: The remote registry's URL.
        type: str
      insecure:
        description: Skip TLS verification of the remote (avoid; distribute the CA instead).
        type: bool
        default: false
      access_key:
        description: User or robot name on the remote.
        type: str
      access_secret:
        description: Its password or secret.
        type: str
      description:
        description: Free text.
        type: str
  update_secret:
    description: Send I(registry.access_secret) even when the endpoint exists (reports a change).
    type: bool
    default: false
  direction:
    description: C(push) to the remote or C(pull) from it.
    type: str
    choices:
      - push
      - pull
    default: push
  name_filter:
    description: Repositories to replicate, e.g. C(test/**).
    type: str
  tag_filter:
    description: Tags to replicate, e.g. C(release-*).
    type: str
  resource_filter:
    description: C(image) or C(artifact).
    type: str
    choices:
      - image
      - artifact
  dest_namespace:
    description: Namespace (project) on the destination; the source's when empty.
    type: str
  dest_namespace_replace_count:
    description: How many leading path parts I(dest_namespace) replaces; -1 keeps the whole path.
    type: int
  trigger:
    description: When to replicate.
    type: str
    choices:
      - manual
      - scheduled
      - event_based
    default: manual
  cron:
    description: Six-field cron for C(scheduled).
    type: str
  deletion:
    description: Replicate deletions too.
    type: bool
    default: false
  override:
    description: Overwrite artifacts that exist at the destination.
    type: bool
    default: true
  enabled:
    description: Whether the policy runs.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Promote release tags of test to the prod Harbor on every push
  berth.ops.harbor_replication:
    harbor_url: https://harbor.bldg-a.example
    password: "{{ vault_harbor_admin_password }}"
    name: test-to-prod
    registry:
      name: prod
      url: https://harbor.prod.example
      access_key: robot$promoter
      access_secret: "{{ vault_prod_promoter_secret }}"
    name_filter: "test/**"
    tag_filter: "release-*"
    dest_namespace: prod
    trigger: event_based
"""

RETURN = r"""
policy_id:
  description: Harbor's id of the policy.
  returned: when present and not in check mode
  type: int
  sample: 3
registry_id:
  description: Harbor's id of the endpoint.
  returned: when present and not in check mode
  type: int
  sample: 2
changes:
  description: What changed, endpoint and policy.
  returned: always
  type: list
  elements: str
  sample:
    - registry created
    - policy created
"""

from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_client import converge_object, object_module, run_module
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_objects import (
    combined_diff,
    registry_comparable,
    registry_desired,
    registry_request,
    replication_comparable,
    replication_desired,
    replication_errors,
    replication_request,
)


def by_name(items, name):
    return next((item for item in items if item["name"] == name), None)


def main():
    module = object_module(
        name={"type": "str", "required": True},
        description={"type": "str", "default": ""},
        registry={
            "type": "dict",
            "required": True,
            "options": {
                "name": {"type": "str", "required": True},
                "type": {"type": "str", "default": "harbor"},
                "url": {"type": "str"},
                "insecure": {"type": "bool", "default": False},
                "access_key": {"type": "str", "no_log": False},
                "access_secret": {"type": "str", "no_log": True},
                "description": {"type": "str"},
            },
        },
        update_secret={"type": "bool", "default": False},
        direction={"type": "str", "choices": ["push", "pull"], "default": "push"},
        name_filter={"type": "str"},
        tag_filter={"type": "str"},
        resource_filter={"type": "str", "choices": ["image", "artifact"]},
        dest_namespace={"type": "str"},
        dest_namespace_replace_count={"type": "int"},
        trigger={"type": "str", "choices": ["manual", "scheduled", "event_based"], "default": "manual"},
        cron={"type": "str"},
        deletion={"type": "bool", "default": False},
        override={"type": "bool", "default": True},
        enabled={"type": "bool", "default": True},
    )
    p = module.params
    errors = replication_errors(p)
    run_module(module, errors, converge, p)


def converge(module, client, p):
    registries = client.paged("/registries")
    policies = client.paged("/replication/policies")
    registry, policy = by_name(registries, p["registry"]["name"]), by_name(policies, p["name"])

    if p["state"] == "absent":
        policy_done = converge_object(
            module,
            policy and replication_comparable(policy),
            None,
            delete=lambda: client.delete("/replication/policies/%d" % policy["id"], missing_ok=False),
        )
        # The endpoint goes too, unless another policy or a proxy-cache project still uses it.
        still_used = registry is not None and any(
            (other.get("src_registry") or {}).get("id") == registry["id"] or (other.get("dest_registry") or {}).get("id") == registry["id"]
            for other in policies
            if policy is None or other["id"] != policy["id"]
        )
        unused = registry is not None and not still_used and not proxy_cache_uses(client, registry["id"])
        registry_done = converge_object(
            module,
            registry_comparable(registry) if unused else None,
            None,
            delete=lambda: client.delete("/registries/%d" % registry["id"], missing_ok=False),
        )
        return finish(("policy", policy_done), ("registry", registry_done))

    def update_registry(_changes):
        body = {k: v for k, v in wanted_registry.items() if k not in ("type", "access_key")}
        if p["registry"].get("access_key"):
            body.update(credential_type="basic", access_key=p["registry"]["access_key"])
        if p["update_secret"] and p["registry"].get("access_secret"):
            body["access_secret"] = p["registry"]["access_secret"]
        client.put("/registries/%d" % registry["id"], body)

    wanted_registry = registry_desired(p["registry"])
    registry_done = converge_object(
        module,
        registry and registry_comparable(registry),
        wanted_registry,
        create=lambda: client.create("/registries", registry_request(p["registry"])),
        update=update_registry,
        # Harbor never shows the secret: update_secret sends it whether or not anything else differs.
        compare=lambda current, wanted: current != wanted or p["update_secret"],
    )
    registry_id = registry["id"] if registry else registry_done.created

    desired = replication_desired(p)
    policy_done = converge_object(
        module,
        policy and replication_comparable(policy),
        desired,
        create=lambda: client.create("/replication/policies", replication_request(desired, registry_id)),
        update=lambda _changes: client.put(
            "/replication/policies/%d" % policy["id"], dict(replication_request(desired, registry_id), id=policy["id"])
        ),
    )
    result = finish(("registry", registry_done), ("policy", policy_done))
    policy_id = policy["id"] if policy else policy_done.created
    if policy_id is not None:
        result["policy_id"] = policy_id
    if registry_id is not None:
        result["registry_id"] = registry_id
    return result


def proxy_cache_uses(client, registry_id):
    return any(project.get("registry_id") == registry_id for project in client.projects())


def finish(*objects):
    """The result of converging the endpoint and the policy: (diff key, Converged) pairs, in the order they ran."""
    labels = {"registry": "endpoint", "policy": "policy"}
    changes = ["%s %s" % (labels[key], done.verb) for key, done in objects if done.changed]
    result = {"changed": bool(changes), "changes": changes}
    diff = combined_diff((key, done.diff) for key, done in objects)
    if diff:
        result["diff"] = diff
    return result


if __name__ == "__main__":
    main()
