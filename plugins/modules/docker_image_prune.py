#!/usr/bin/python
"""Prune one Docker host by berth's retention policy."""

DOCUMENTATION = r"""
---
module: docker_image_prune
short_description: Prune a Docker host's images by berth's retention policy
description:
  - Keeps the newest I(keep) tags per repository (semver-aware, then by creation time),
    every image used by a container on the host (running or stopped), every reference or
    digest in I(protected), tags matching I(keep_patterns), and anything that arrived on the
    host less than I(grace) ago (the time it was pulled or tagged here, not its build time).
    Removes the rest, including dangling images.
  - Opt-in extras, each off by default; exited containers older than
    I(containers_older_than), dangling volumes, the builder cache.
  - Check mode returns the full plan with reasons and bytes. A real run removes with bounded
    concurrency and reports every failure without stopping at the first.
requirements:
  - Docker SDK for Python (python3-docker).
options:
  keep: {description: Newest tags kept per repository., type: int, default: 5}
  keep_patterns: {description: "Tag globs (C(release-*)) or C(repo-glob:tag-glob) that are always kept.", type: list, elements: str, default: []}
  protected: {description: References, digests or image IDs that are always kept (e.g. what the fleet runs)., type: list, elements: str, default: []}
  grace: {description: "Keep what arrived less than this ago: seconds or C(15m), C(24h), C(7d).", type: raw, default: 24h}
  repositories: {description: Only consider repositories matching these globs; all when empty., type: list, elements: str, default: []}
  dangling: {description: Remove untagged images., type: bool, default: true}
  containers_older_than: {description: Also remove exited containers that finished longer ago than this., type: raw}
  containers_skip_labels: {description: Exited containers with any of these labels are never removed (rollback copies)., type: list, elements: str, default: [berth.app]}
  volumes: {description: Also remove dangling volumes., type: bool, default: false}
  volumes_skip_labels: {description: Dangling volumes with any of these labels are kept., type: list, elements: str, default: [berth.keep]}
  builder_cache: {description: Also prune the builder cache., type: bool, default: false}
  concurrency: {description: Removals run at once., type: int, default: 4}
  docker_host: {description: Docker daemon URL., type: str, default: "unix:///var/run/docker.sock"}
"""

RETURN = r"""
plan: {description: Every candidate with its action (keep, untag, remove) and reasons., returned: always, type: list}
kept: {description: References kept., returned: always, type: list}
removed: {description: References and image IDs removed (or that would be)., returned: always, type: list}
untagged: {description: Tags removed from images that stay for another tag., returned: always, type: list}
failed: {description: What could not be removed, with the engine's error., returned: always, type: list}
bytes: {description: Bytes the removed images and builder cache free (planned in check mode)., returned: always, type: int}
containers_removed: {description: Exited containers removed., returned: always, type: list}
volumes_removed: {description: Dangling volumes removed., returned: always, type: list}
durations: {description: Seconds spent planning and removing., returned: always, type: dict}
"""

import datetime
import fnmatch
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.berth_retention import Candidate, parse_duration, plan, policy_errors

try:
    import docker

    HAS_DOCKER = True
except ImportError:
    HAS_DOCKER = False

NEVER = "0001-01-01T00:00:00Z"


def timestamp(text):
    """Epoch seconds of a Docker RFC 3339 time, or None for the zero time."""
    if not text or text.startswith("0001-01-01"):
        return None
    text = text.rstrip("Z")
    head, _, fraction = text.partition(".")
    fraction = "".join(ch for ch in fraction if ch.isdigit())[:6]
    moment = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S")
    return moment.replace(tzinfo=datetime.UTC).timestamp() + (float("0." + fraction) if fraction else 0)


def validate(module):
    p = module.params
    errors = policy_errors(p["keep"], p["keep_patterns"], p["grace"])
    if p["containers_older_than"] is not None:
        try:
            parse_duration(p["containers_older_than"])
        except ValueError as exc:
            errors.append("containers_older_than: %s" % exc)
    if p["concurrency"] < 1:
        errors.append("concurrency must be at least 1")
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)


def exited_containers_to_remove(client, older_than, skip_labels, now):
    if older_than is None:
        return []
    limit = parse_duration(older_than)
    chosen = []
    for summary in client.containers(all=True, filters={"status": "exited"}):
        labels = summary.get("Labels") or {}
        if any(label in labels for label in skip_labels):
            continue
        finished = timestamp(client.inspect_container(summary["Id"])["State"].get("FinishedAt", NEVER))
        if finished is not None and now - finished > limit:
            chosen.append({"id": summary["Id"], "name": (summary.get("Names") or ["?"])[0].lstrip("/"), "image": summary["ImageID"]})
    return chosen


def candidates(client, repositories, dangling):
    found = []
    for summary in client.images():
        details = client.inspect_image(summary["Id"])
        created = timestamp(details.get("Created")) or 0
        arrived = timestamp((details.get("Metadata") or {}).get("LastTagTime")) or created
        digests = tuple(d.split("@", 1)[1] for d in details.get("RepoDigests") or []) + tuple(details.get("RepoDigests") or [])
        tags = [t for t in details.get("RepoTags") or [] if t != "<none>:<none>"]
        if not tags:
            if dangling:
                found.append(
                    Candidate(None, None, summary["Id"], created=created, arrived=arrived, size=summary.get("Size", 0), digests=digests)
                )
            continue
        for ref in tags:
            repository, tag = ref.rsplit(":", 1)
            if repositories and not any(fnmatch.fnmatchcase(repository, glob) for glob in repositories):
                continue
            found.append(
                Candidate(repository, tag, summary["Id"], created=created, arrived=arrived, size=summary.get("Size", 0), digests=digests)
            )
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
            "keep": {"type": "int", "default": 5},
            "keep_patterns": {"type": "list", "elements": "str", "default": []},
            "protected": {"type": "list", "elements": "str", "default": []},
            "grace": {"type": "raw", "default": "24h"},
            "repositories": {"type": "list", "elements": "str", "default": []},
            "dangling": {"type": "bool", "default": True},
            "containers_older_than": {"type": "raw"},
            "containers_skip_labels": {"type": "list", "elements": "str", "default": ["berth.app"]},
            "volumes": {"type": "bool", "default": False},
            "volumes_skip_labels": {"type": "list", "elements": "str", "default": ["berth.keep"]},
            "builder_cache": {"type": "bool", "default": False},
            "concurrency": {"type": "int", "default": 4},
            "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
        },
        supports_check_mode=True,
    )
    validate(module)
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker (python3-docker)"))
    p = module.params
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
    found = candidates(client, p["repositories"], p["dangling"])
    result_plan = plan(
        found, untag=True, keep=p["keep"], in_use=in_use, protected=p["protected"], patterns=p["keep_patterns"], grace=p["grace"], now=now
    )
    volumes = []
    if p["volumes"]:
        listed = (client.volumes(filters={"dangling": True}) or {}).get("Volumes") or []
        volumes = [v["Name"] for v in listed if not any(label in (v.get("Labels") or {}) for label in p["volumes_skip_labels"])]
    result = {
        "plan": result_plan["items"],
        "kept": result_plan["kept"],
        "removed": result_plan["removed"],
        "untagged": result_plan["untagged"],
        "images_removed": result_plan["images_freed"],
        "failed": [],
        "bytes": result_plan["bytes"],
        "containers_removed": [c["name"] for c in doomed_containers],
        "volumes_removed": volumes,
        "builder_cache_bytes": 0,
        "durations": {"plan": round(time.monotonic() - started, 3), "remove": 0.0},
    }
    planned = bool(result_plan["removed"] or result_plan["untagged"] or doomed_containers or volumes)
    if module.check_mode or not (planned or p["builder_cache"]):
        module.exit_json(changed=planned, **result)

    removing = time.monotonic()
    _, failed_containers = run_all(module, [(c["name"], lambda c=c: client.remove_container(c["id"], v=False)) for c in doomed_containers])
    images_done, failed_images = run_all(module, image_jobs(client, result_plan))
    _, failed_volumes = run_all(module, [(name, lambda name=name: client.remove_volume(name)) for name in volumes])
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
    result["failed"] = failed_containers + failed_images + failed_volumes
    failed_refs = {f["ref"] for f in failed_images}
    result["removed"] = [i["ref"] for i in result_plan["items"] if i["action"] == "remove" and i["image"] not in failed_refs]
    result["containers_removed"] = [c["name"] for c in doomed_containers if c["name"] not in {f["ref"] for f in failed_containers}]
    result["volumes_removed"] = [v for v in volumes if v not in {f["ref"] for f in failed_volumes}]
    changed = bool(images_done or result["containers_removed"] or result["volumes_removed"] or result["builder_cache_bytes"])
    if result["failed"]:
        module.fail_json(msg="%d removal(s) failed; the rest went ahead" % len(result["failed"]), changed=changed, **result)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
