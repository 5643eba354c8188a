#!/usr/bin/python
"""Prune one Docker host by berth's retention policy."""

DOCUMENTATION = r"""
---
module: docker_image_prune
short_description: Prune a Docker host's images by berth's retention policy
description:
  - Keeps what I(policy) keeps (the newest tags per repository, keep patterns, anything that arrived on
    the host less than the grace period ago), every image used by a container on the host (running or
    stopped) and every reference or digest in I(protected). Removes the rest, including dangling images.
  - Opt-in extras, each off by default; exited containers older than I(containers_older_than), dangling
    volumes, the builder cache.
  - Check mode returns the full plan with reasons and bytes. A real run removes with bounded concurrency
    and reports every failure without stopping at the first.
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.attributes
  - berth.ops.attributes.host
  - berth.ops.retention
  - berth.ops.docker
options:
  protected:
    description: References, digests or image IDs that are always kept (e.g. what the fleet runs).
    type: list
    elements: str
    default: []
  dangling:
    description: Remove untagged images.
    type: bool
    default: true
  containers_older_than:
    description: Also remove exited containers that finished longer ago than this.
    type: raw
  containers_skip_labels:
    description: Exited containers with any of these labels are never removed (rollback copies).
    type: list
    elements: str
    default:
      - berth.app
  volumes:
    description: Also remove dangling volumes.
    type: bool
    default: false
  volumes_skip_labels:
    description: Dangling volumes with any of these labels are kept.
    type: list
    elements: str
    default:
      - berth.keep
  builder_cache:
    description: Also prune the builder cache.
    type: bool
    default: false
  concurrency:
    description: Removals run at once (1 to 64).
    type: int
    default: 4
  state_path:
    description:
      - JSON file where the module records when it first saw each image on this host. Docker keeps no
        pull time (C(LastTagTime) is set for local tags only), so the grace period counts from the later
        of this and C(LastTagTime). An image seen for the first time arrives now. Not written in check
        mode; rewritten only when the set of images changed.
    type: path
    default: /var/lib/berth/docker-image-first-seen.json
"""

EXAMPLES = r"""
- name: Plan the prune of this host, keeping what the fleet runs
  berth.ops.docker_image_prune:
    policy:
      keep: 3
      grace: 24h
    protected: "{{ fleet_digests }}"
  check_mode: true
  register: host_plan

- name: Prune images, old exited containers and dangling volumes
  berth.ops.docker_image_prune:
    policy:
      keep: 3
      keep_patterns: ["base/*:*"]
    containers_older_than: 7d
    volumes: true
"""

RETURN = r"""
check_mode:
  description: Whether this was a plan only.
  returned: always
  type: bool
  sample: false
plan:
  description: Every candidate with its action (keep, untag, remove) and reasons.
  returned: always
  type: list
  elements: dict
  sample:
    - ref: 10.77.1.11:5000/lab/demo:r3
      repository: 10.77.1.11:5000/lab/demo
      tag: r3
      image: sha256:4b1f3c0e5d2a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e
      action: keep
      reasons:
        - in use
        - newest
      size: 131080192
    - ref: 10.77.1.11:5000/lab/demo:r1
      repository: 10.77.1.11:5000/lab/demo
      tag: r1
      image: sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d
      action: remove
      reasons: []
      size: 131072000
kept:
  description: References kept.
  returned: always
  type: list
  elements: str
  sample:
    - 10.77.1.11:5000/lab/demo:r3
removed:
  description: References and image IDs removed (or that would be).
  returned: always
  type: list
  elements: str
  sample:
    - 10.77.1.11:5000/lab/demo:r1
planned:
  description: Image IDs the plan frees.
  returned: always
  type: list
  elements: str
  sample:
    - sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d
planned_bytes:
  description: Bytes the plan frees.
  returned: always
  type: int
  sample: 131072000
images_removed:
  description: Image IDs really removed; empty in check mode.
  returned: always
  type: list
  elements: str
  sample:
    - sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d
state_changed:
  description: Whether the first-seen record changed (or would).
  returned: always
  type: bool
  sample: true
untagged:
  description: Tags removed from images that stay for another tag.
  returned: always
  type: list
  elements: str
  sample:
    - 10.77.1.11:5000/lab/demo:latest
failures:
  description: What could not be removed, with the engine's error. Not C(failed), which Ansible sets to
    true on failure.
  returned: always
  type: list
  elements: dict
  sample:
    - ref: sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d
      error: 'conflict: unable to remove repository reference (must force)'
bytes:
  description: Bytes the removed images and builder cache freed; 0 in check mode.
  returned: always
  type: int
  sample: 131072000
containers_removed:
  description: Exited containers removed.
  returned: always
  type: list
  elements: str
  sample:
    - demo-r0-5d60aa
volumes_removed:
  description: Dangling volumes removed.
  returned: always
  type: list
  elements: str
  sample:
    - 3f1c2a9b0d7e
durations:
  description: Seconds spent planning and removing.
  returned: always
  type: dict
  sample:
    plan: 0.154
    remove: 0.92
builder_cache_bytes:
  description: Bytes the builder cache prune freed; 0 unless I(builder_cache).
  returned: always
  type: int
  sample: 0
"""

import fnmatch
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.berth.ops.plugins.module_utils.berth_retention import (
    POLICY_OPTION,
    Candidate,
    arrival_times,
    concurrency_errors,
    parse_duration,
    plan_diff,
    policy_option_errors,
    policy_plan,
    time_or_none,
)

try:
    import docker

    HAS_DOCKER = True
except ImportError:
    HAS_DOCKER = False

NEVER = "0001-01-01T00:00:00Z"


def validate(module):
    p = module.params
    errors = policy_option_errors(p["policy"])
    if p["containers_older_than"] is not None:
        try:
            parse_duration(p["containers_older_than"])
        except ValueError as exc:
            errors.append("containers_older_than: %s" % exc)
    errors += concurrency_errors(p["concurrency"])
    if not os.path.isabs(p["state_path"]):
        errors.append("state_path must be an absolute path, got %r" % p["state_path"])
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)


def read_state(path):
    """{image id: first seen} from the module's record; {} when there is none
    (or it is unreadable: then every image counts as arriving now)."""
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, ValueError):
        return {}
    return data.get("first_seen") or {} if isinstance(data, dict) else {}


def write_state(path, record):
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".first-seen-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump({"version": 1, "first_seen": record}, stream, indent=1, sort_keys=True)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def exited_containers_to_remove(client, older_than, skip_labels, now):
    if older_than is None:
        return []
    limit = parse_duration(older_than)
    chosen = []
    for summary in client.containers(all=True, filters={"status": "exited"}):
        labels = summary.get("Labels") or {}
        if any(label in labels for label in skip_labels):
            continue
        finished = time_or_none(client.inspect_container(summary["Id"])["State"].get("FinishedAt", NEVER))
        if finished is not None and now - finished > limit:
            chosen.append({"id": summary["Id"], "name": (summary.get("Names") or ["?"])[0].lstrip("/"), "image": summary["ImageID"]})
    return chosen


def inspect_all(client):
    """[(summary, inspect)] of every image on the host."""
    return [(summary, client.inspect_image(summary["Id"])) for summary in client.images()]


def candidates(images, arrived, repositories, dangling):
    found = []
    for summary, details in images:
        created = time_or_none(details.get("Created")) or 0
        digests = tuple(d.split("@", 1)[1] for d in details.get("RepoDigests") or []) + tuple(details.get("RepoDigests") or [])
        tags = [t for t in details.get("RepoTags") or [] if t != "<none>:<none>"]
        common = {"created": created, "arrived": arrived[summary["Id"]], "size": summary.get("Size", 0), "digests": digests}
        if not tags:
            if dangling:
                found.append(Candidate(None, None, summary["Id"], **common))
            continue
        for ref in tags:
            repository, tag = ref.rsplit(":", 1)
            if repositories and not any(fnmatch.fnmatchcase(repository, glob) for glob in repositories):
                continue
            found.append(Candidate(repository, tag, summary["Id"], **common))
    return found


def run_all(module, jobs):
    """Run (label, callable) jobs with bounded concurrency; collect failures."""
    done, failed = [], []

    def attempt(job):
        label, action = job
        try:
            action()
            return label, None
        except Exception as exc:  # every failure is reported, none hides the rest
            return label, str(exc)

    with ThreadPoolExecutor(max_workers=module.params["concurrency"]) as pool:
        for label, error in pool.map(attempt, jobs):
            if error:
                failed.append({"ref": label, "error": error})
            else:
                done.append(label)
    return done, failed


def image_jobs(client, result_plan):
    """One job per image: its tags go one after another, images in parallel."""
    per_image = {}
    for item in result_plan["items"]:
        if item["action"] in ("remove", "untag"):
            per_image.setdefault(item["image"], []).append(item)
    jobs = []
    for image, items in sorted(per_image.items()):

        def remove(image=image, items=items):
            for item in items:
                client.remove_image(item["ref"] if item["tag"] is not None else image, noprune=False)

        jobs.append((image, remove))
    return jobs


def main():
    module = AnsibleModule(
        argument_spec={
            "policy": POLICY_OPTION,
            "protected": {"type": "list", "elements": "str", "default": []},
            "dangling": {"type": "bool", "default": True},
            "containers_older_than": {"type": "raw"},
            "containers_skip_labels": {"type": "list", "elements": "str", "default": ["berth.app"]},
            "volumes": {"type": "bool", "default": False},
            "volumes_skip_labels": {"type": "list", "elements": "str", "default": ["berth.keep"]},
            "builder_cache": {"type": "bool", "default": False},
            "concurrency": {"type": "int", "default": 4},
            "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
            "state_path": {"type": "path", "default": "/var/lib/berth/docker-image-first-seen.json"},
        },
        supports_check_mode=True,
    )
    validate(module)
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker (python3-docker)"))
    p = module.params
    policy = p["policy"]
    try:
        client = docker.APIClient(base_url=p["docker_host"], version="auto", timeout=300)
        client.ping()
    except docker.errors.DockerException as exc:
        module.fail_json(msg="cannot read the Docker engine at %s: %s" % (p["docker_host"], exc))

    now = time.time()
    started = time.monotonic()
    doomed_containers = exited_containers_to_remove(client, p["containers_older_than"], p["containers_skip_labels"], now)
    doomed_ids = {c["id"] for c in doomed_containers}
    in_use = {c["ImageID"] for c in client.containers(all=True) if c["Id"] not in doomed_ids}
    images = inspect_all(client)
    state = read_state(p["state_path"])
    tag_times = {summary["Id"]: time_or_none((details.get("Metadata") or {}).get("LastTagTime")) for summary, details in images}
    arrived, record = arrival_times(state, tag_times, now)
    found = candidates(images, arrived, policy["repositories"], p["dangling"])
    result_plan = policy_plan(found, policy, untag=True, in_use=in_use, protected=p["protected"], now=now)
    volumes = []
    if p["volumes"]:
        listed = (client.volumes(filters={"dangling": True}) or {}).get("Volumes") or []
        volumes = [v["Name"] for v in listed if not any(label in (v.get("Labels") or {}) for label in p["volumes_skip_labels"])]
    freed = set(result_plan["images_freed"])
    result = {
        "check_mode": module.check_mode,
        "plan": result_plan["items"],
        "kept": result_plan["kept"],
        "removed": result_plan["removed"],
        "untagged": result_plan["untagged"],
        "planned": result_plan["images_freed"],
        "planned_bytes": result_plan["bytes"],
        "images_removed": [],
        "failures": [],
        "bytes": 0,
        "containers_removed": [c["name"] for c in doomed_containers],
        "volumes_removed": volumes,
        "builder_cache_bytes": 0,
        "state_changed": {k: v for k, v in record.items() if k not in freed} != state,
        "durations": {"plan": round(time.monotonic() - started, 3), "remove": 0.0},
    }
    if module._diff:
        result["diff"] = plan_diff(result["kept"], result["removed"], "images on this host")
    planned = bool(result_plan["removed"] or result_plan["untagged"] or doomed_containers or volumes)
    if module.check_mode:
        module.exit_json(changed=planned or result["state_changed"], **result)
    if not (planned or p["builder_cache"]):
        if result["state_changed"]:
            write_state(p["state_path"], record)
        module.exit_json(changed=result["state_changed"], **result)

    removing = time.monotonic()
    _unused, failed_containers = run_all(
        module, [(c["name"], lambda c=c: client.remove_container(c["id"], v=False)) for c in doomed_containers]
    )
    images_done, failed_images = run_all(module, image_jobs(client, result_plan))
    _unused, failed_volumes = run_all(module, [(name, lambda name=name: client.remove_volume(name)) for name in volumes])
    result["durations"]["remove"] = round(time.monotonic() - removing, 3)
    sizes = {item["image"]: item["size"] for item in result_plan["items"]}
    gone = [image for image in result_plan["images_freed"] if image in images_done]
    result["images_removed"] = gone
    result["bytes"] = sum(sizes[image] for image in gone)
    if p["builder_cache"]:
        try:
            result["builder_cache_bytes"] = client.prune_builds().get("SpaceReclaimed") or 0
        except docker.errors.APIError as exc:
            failed_images.append({"ref": "builder cache", "error": str(exc)})
        result["bytes"] += result["builder_cache_bytes"]
    result["failures"] = failed_containers + failed_images + failed_volumes
    failed_refs = {f["ref"] for f in failed_images}
    result["removed"] = [i["ref"] for i in result_plan["items"] if i["action"] == "remove" and i["image"] not in failed_refs]
    result["untagged"] = [i["ref"] for i in result_plan["items"] if i["action"] == "untag" and i["image"] not in failed_refs]
    result["containers_removed"] = [c["name"] for c in doomed_containers if c["name"] not in {f["ref"] for f in failed_containers}]
    result["volumes_removed"] = [v for v in volumes if v not in {f["ref"] for f in failed_volumes}]
    # The record keeps only what is still there, so the next run finds it unchanged.
    remaining = {summary["Id"] for summary in client.images()}
    record = {image: seen for image, seen in record.items() if image in remaining}
    result["state_changed"] = record != state
    if result["state_changed"]:
        write_state(p["state_path"], record)
    changed = bool(
        images_done or result["containers_removed"] or result["volumes_removed"] or result["builder_cache_bytes"] or result["state_changed"]
    )
    if result["failures"]:
        module.fail_json(msg="%d removal(s) failed; the rest went ahead" % len(result["failures"]), changed=changed, **result)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
