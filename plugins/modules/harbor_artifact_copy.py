#!/usr/bin/python
"""Promote one artifact between Harbor projects."""

DOCUMENTATION = r"""
---
module: harbor_artifact_copy
short_description: Copy (promote) one artifact from one Harbor project to another
description:
  - Harbor copies the manifest and references the same blobs, so a promotion moves no data.
  - Idempotent by digest, when the destination already has the source's digest under the same tag (or at all, for
    a digest), nothing happens.
  - With I(state=absent) the artifact is removed from the destination project (an undo of a promotion).
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.harbor
  - berth.ops.state
  - berth.ops.attributes
  - berth.ops.attributes.api
options:
  source:
    description: C(project/repository:tag) or C(project/repository@sha256:...).
    type: str
    required: true
  project:
    description: Destination project.
    type: str
    required: true
  repository:
    description: Destination repository; the source's when left out.
    type: str
  state:
    description: Whether the destination holds the artifact.
"""

EXAMPLES = r"""
- name: Promote the tested build to prod
  berth.ops.harbor_artifact_copy:
    harbor_url: https://harbor.bldg-a.example
    password: "{{ vault_harbor_admin_password }}"
    source: test/shop/web:20261123-101500123
    project: prod
"""

RETURN = r"""
digest:
  description: The artifact's digest.
  returned: when the source exists
  type: str
  sample: sha256:4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f506172839
destination:
  description: The destination reference.
  returned: always
  type: str
  sample: prod/shop/web:20261123-101500123
"""

from ansible.module_utils.six.moves.urllib.parse import quote
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_client import HarborError, converge_object, object_module, run_module
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_objects import (
    PROJECT_NAME,
    REPOSITORY_NAME,
    artifact_reference,
    project_path,
    repository_path,
)


def artifact_path(project, repository, reference):
    return "%s/repositories/%s/artifacts/%s" % (project_path(project), repository_path(repository), quote(reference, safe=":"))


def main():
    module = object_module(
        source={"type": "str", "required": True},
        project={"type": "str", "required": True},
        repository={"type": "str"},
    )
    p = module.params
    errors = []
    try:
        source = artifact_reference(p["source"])
    except ValueError as exc:
        errors.append("source: %s" % exc)
        source = None
    if not PROJECT_NAME.match(p["project"]):
        errors.append("project: %r is not a valid project name" % p["project"])
    if p["repository"] is not None and not REPOSITORY_NAME.match(p["repository"]):
        errors.append("repository: %r is not a valid repository name" % p["repository"])
    run_module(module, errors, converge, p, source)


def converge(module, client, p, source):
    project, repository, tag, digest = source
    target_repository = p["repository"] or repository
    reference = tag or digest
    destination = "%s/%s%s%s" % (p["project"], target_repository, ":" if tag else "@", reference)
    found = client.get(artifact_path(project, repository, reference), missing_ok=True)
    there = client.get(artifact_path(p["project"], target_repository, reference), missing_ok=True)
    present = p["state"] == "present"
    if present and found is None:
        raise HarborError("source artifact %s does not exist" % p["source"], 404)

    def copy(_changes):
        if client.project(p["project"]) is None:
            raise HarborError("destination project %s does not exist" % p["project"], 404)
        from_ref = "%s/%s%s%s" % (project, repository, ":" if tag else "@", reference)
        client.request(
            "POST",
            "%s/repositories/%s/artifacts" % (project_path(p["project"]), repository_path(target_repository)),
            params={"from": from_ref},
            expect=(201,),
        )

    # The object is the digest at the destination. Copying is the same request
    # whether or not another digest is there, so with state present it is
    # always an update, from None when nothing is there (as the diff shows it).
    done = converge_object(
        module,
        {destination: there["digest"] if there else None} if present or there else None,
        {destination: found["digest"]} if present else None,
        update=copy,
        delete=lambda: client.delete(artifact_path(p["project"], target_repository, there["digest"]), missing_ok=False),
    )
    result = done.result(destination=destination)
    if present or there:
        result["digest"] = (found if present else there)["digest"]
    return result


if __name__ == "__main__":
    main()
