#!/usr/bin/python
"""Harbor's garbage-collection schedule."""

DOCUMENTATION = r"""
---
module: harbor_gc_schedule
short_description: Set or remove Harbor's garbage-collection schedule
description:
  - Deleting artifacts frees no disk until garbage collection runs; this keeps a schedule in place.
  - To run GC once, now, berth's registry_prune triggers it after deleting.
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.harbor
  - berth.ops.state
  - berth.ops.attributes
  - berth.ops.attributes.api
options:
  state:
    description: C(absent) removes the schedule.
  schedule:
    description: How often. C(custom) needs I(cron).
    type: str
    choices:
      - none
      - hourly
      - daily
      - weekly
      - custom
    default: weekly
  cron:
    description: Six-field cron (seconds first) for C(custom).
    type: str
  delete_untagged:
    description: Also delete untagged artifacts.
    type: bool
    default: false
  workers:
    description: Parallel GC workers (1-5).
    type: int
"""

EXAMPLES = r"""
- name: GC every Saturday at 02:00
  berth.ops.harbor_gc_schedule:
    harbor_url: https://harbor.bldg-a.example
    password: "{{ vault_harbor_admin_password }}"
    schedule: custom
    cron: "0 0 2 * * 6"
"""

RETURN = r"""
schedule:
  description: The schedule after the run, as berth compares it.
  returned: always
  type: dict
  sample:
    type: Custom
    cron: 0 0 2 * * 6
    delete_untagged: false
    workers: 1
"""

from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_client import converge_object, object_module, run_module
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_objects import gc_comparable, gc_desired, gc_errors, gc_request


def main():
    module = object_module(
        schedule={"type": "str", "choices": ["none", "hourly", "daily", "weekly", "custom"], "default": "weekly"},
        cron={"type": "str"},
        delete_untagged={"type": "bool", "default": False},
        workers={"type": "int"},
    )
    run_module(module, gc_errors(module.params), converge)


def converge(module, client):
    found = client.get("/system/gc/schedule") or {}
    parameters = module.from_json(found["job_parameters"]) if found.get("job_parameters") else {}
    desired = gc_desired(module.params)

    def update(_changes):
        if not found:  # Harbor has never had a schedule: the first one is created
            client.request("POST", "/system/gc/schedule", body=gc_request(desired), expect=(201,))
        else:
            client.put("/system/gc/schedule", gc_request(desired))

    # The schedule always exists as a setting (type None is off), so converging only ever updates it.
    done = converge_object(module, gc_comparable(found.get("schedule"), parameters), desired, update=update)
    return done.result(schedule=desired)


if __name__ == "__main__":
    main()
