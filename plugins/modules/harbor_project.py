#!/usr/bin/python
"""Harbor projects."""

DOCUMENTATION = r"""
---
module: harbor_project
short_description: Create, update or delete a Harbor project
description:
  - Public or private, storage quota, vulnerability scanning on push, and proxy-cache projects that mirror a registry
    endpoint.
  - Only the settings you give are managed; Harbor keeps the rest.
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.harbor
  - berth.ops.state
  - berth.ops.attributes
  - berth.ops.attributes.api
options:
  name:
    description: Project name (lower case, digits, . _ -).
    type: str
    required: true
  state:
    description: Whether the project exists.
  public:
    description: Anyone may pull.
    type: bool
  auto_scan:
    description: Scan artifacts on push.
    type: bool
  prevent_vulnerable:
    description: Refuse pulls of artifacts at or above I(severity).
    type: bool
  severity:
    description: Threshold for I(prevent_vulnerable).
    type: str
    choices:
      - none
      - low
      - medium
      - high
      - critical
  storage_quota:
    description: Bytes the project may store, C(-1) for unlimited. Human sizes such as C(20GB) or C(512MiB) work.
    type: str
  proxy_cache_registry:
    description: Name of a registry endpoint (see M(berth.ops.harbor_replication)) this project caches. Fixed at creation.
    type: str
  purge:
    description: With I(state=absent), delete the project's repositories first; Harbor refuses to delete a non-empty
      project.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: A private project for test builds, 50 GB
  berth.ops.harbor_project:
    harbor_url: https://harbor.bldg-a.example
    password: "{{ vault_harbor_admin_password }}"
    name: test
    public: false
    auto_scan: true
    storage_quota: 50GB
"""

RETURN = r"""
project:
  description: The project as Harbor holds it after the run (what would be, in check mode).
  returned: when present
  type: dict
  sample:
    name: test
    public: false
    auto_scan: true
    storage_quota: 53687091200
changes:
  description: The settings changed or to change.
  returned: always
  type: dict
  sample:
    auto_scan:
      before: false
      after: true
"""

from ansible.module_utils.basic import human_to_bytes
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_client import HarborError, converge_object, object_module, run_module
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_objects import (
    UNLIMITED,
    project_after,
    project_changes,
    project_current,
    project_desired,
    project_errors,
    project_path,
    repository_path,
)


def quota_bytes(value):
    if value is None:
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return human_to_bytes(text.replace("i", "").replace("I", ""), isbits=False)
    except ValueError:
        return 0  # project_errors explains


def proxy_registry_id(client, name):
    found = [r for r in client.paged("/registries", {"q": "name=%s" % name}) if r["name"] == name]
    if not found:
        raise HarborError("proxy_cache_registry: no registry endpoint named %r" % name)
    return found[0]["id"]


def main():
    module = object_module(
        name={"type": "str", "required": True},
        public={"type": "bool"},
        auto_scan={"type": "bool"},
        prevent_vulnerable={"type": "bool"},
        severity={"type": "str", "choices": ["none", "low", "medium", "high", "critical"]},
        storage_quota={"type": "str"},
        proxy_cache_registry={"type": "str"},
        purge={"type": "bool", "default": False},
    )
    p = dict(module.params, storage_quota=quota_bytes(module.params["storage_quota"]))
    errors = project_errors(p)
    run_module(module, errors, converge, p)


def converge(module, client, p):
    path = project_path(p["name"])
    project = client.project(p["name"])
    if p["state"] == "absent":
        repositories = client.repositories(p["name"]) if project and p["purge"] else []

        def delete():
            # Harbor refuses to delete a project that still has repositories.
            for full_name in repositories:
                client.delete("%s/repositories/%s" % (path, repository_path(full_name.partition("/")[2])))
            client.delete(path, missing_ok=False)

        done = converge_object(module, project and project_current(project, None), None, delete=delete)
        return done.result(changes={"deleted": p["name"], "repositories": repositories} if done.changed else {})

    desired = project_desired(p)
    if project is None:

        def create():
            body = {"project_name": p["name"], "metadata": desired["metadata"], "storage_limit": desired.get("storage_quota", UNLIMITED)}
            if p["proxy_cache_registry"]:
                body["registry_id"] = proxy_registry_id(client, p["proxy_cache_registry"])
            client.create("/projects", body)
            return client.project(p["name"])

        done = converge_object(module, None, desired, create=create)
        return done.result(changes={"created": p["name"]}, project=done.made if done.ran else {"name": p["name"], **desired})

    if p["proxy_cache_registry"]:
        registry_id = proxy_registry_id(client, p["proxy_cache_registry"])
        if project.get("registry_id") != registry_id:
            raise HarborError("proxy_cache_registry: project %s exists and Harbor cannot change what it caches" % p["name"])
    quota_id, quota = client.quota(project["project_id"]) if "storage_quota" in desired else (None, None)

    def update(changes):
        if "metadata" in changes:
            client.put(path, {"metadata": changes["metadata"]})
        if "storage_quota" in changes:
            client.put("/quotas/%s" % quota_id, {"hard": {"storage": changes["storage_quota"]}})
        return client.project(p["name"])

    current = project_current(project, quota)
    done = converge_object(module, current, desired, update=update, compare=project_changes, after=project_after)
    return done.result(changes=done.changes, project=done.made if done.ran else project)


if __name__ == "__main__":
    main()
