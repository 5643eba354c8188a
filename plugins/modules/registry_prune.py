#!/usr/bin/python
"""Prune a registry (Distribution or Harbor) by berth's retention policy."""

DOCUMENTATION = r"""
---
module: registry_prune
short_description: Prune a Distribution or Harbor registry by berth's retention policy
description:
  - Lists repositories and tags, applies the same retention policy as docker_image_prune,
    and deletes by digest. Deletes are tag-safe, a digest that a kept tag shares is never
    deleted.
  - I(protected) carries every digest deployed anywhere in the fleet, so what runs can
    always be pulled again.
  - Then garbage-collects. On Distribution the module runs on the registry host and
    arranges a read-only window (the registry keeps serving pulls, refuses pushes) around
    C(garbage-collect); on Harbor it triggers the GC API.
  - A Distribution registry with deletes disabled is detected and explained before anything
    is deleted. Check mode returns the plan.
options:
  backend: {description: C(distribution) or C(harbor)., type: str, choices: [distribution, harbor], default: distribution}
  registry: {description: "Distribution: C(host:port). Harbor: its URL, e.g. C(https://harbor.example).", type: str, required: true}
  scheme: {description: "Distribution: C(https) or C(http).", type: str, choices: [https, http], default: https}
  ca_path: {description: CA bundle; by default Docker's certs.d entry for the registry., type: path}
  validate_certs: {description: Verify TLS certificates., type: bool, default: true}
  username: {description: User (a Harbor robot account works)., type: str}
  password: {description: Password or robot secret., type: str, no_log: true}
  keep: {description: Newest tags kept per repository., type: int, default: 5}
  keep_patterns: {description: "Tag globs or C(repo-glob:tag-glob) always kept.", type: list, elements: str, default: []}
  protected: {description: "Digests, C(repo@digest), C(registry/repo@digest) or C(repo:tag) that must stay.", type: list, elements: str, default: []}
  grace: {description: Keep what was pushed less than this ago (seconds, C(24h), C(7d))., type: raw, default: 24h}
  repositories: {description: Only repositories matching these globs; all when empty., type: list, elements: str, default: []}
  storage_dir: {description: "Distribution: filesystem storage root. Read (on the registry host) for tags, digests and push times; without it the API is used and there are no push times.", type: path, default: /var/lib/docker-registry}
  gc: {description: Garbage-collect after deleting., type: bool, default: true}
  registry_config: {description: "Distribution: the registry's config.yml.", type: path, default: /etc/docker/registry/config.yml}
  registry_service: {description: "Distribution: the registry's systemd unit.", type: str, default: docker-registry}
  concurrency: {description: Requests in flight at once., type: int, default: 8}
"""

RETURN = r"""
plan: {description: Every tag with its action and reasons., returned: always, type: list}
kept: {description: Tags kept., returned: always, type: list}
removed: {description: Tags whose digests were (or would be) deleted., returned: always, type: list}
deleted: {description: Digests deleted, as repo@digest., returned: always, type: list}
failed: {description: Deletes that failed, with the error., returned: always, type: list}
bytes: {description: Bytes of the deleted manifests' layers (shared layers may stay until GC finds them unused)., returned: always, type: int}
gc: {description: What garbage collection did., returned: when it ran, type: dict}
durations: {description: Seconds spent listing and deleting., returned: always, type: dict}
"""

import datetime
import fnmatch
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

try:
    import yaml
except ImportError:  # only garbage collection on the registry host needs it
    yaml = None

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.berth_harbor import HarborClient, HarborError
from ansible.module_utils.berth_registry import RegistryClient, RegistryError, StorageReader, docker_ca_path
from ansible.module_utils.berth_retention import Candidate, parse_duration, plan, policy_errors, semver_key

ZERO_DIGEST = "sha256:" + "0" * 64
READONLY_CONFIG = "/run/berth/registry-readonly.yml"


def iso_time(text):
    if not text:
        return None
    text = text.replace("Z", "+00:00")
    head, sep, rest = text.partition(".")
    if sep:  # Python 3.11 takes at most 6 fraction digits
        digits = "".join(ch for ch in rest if ch.isdigit())
        rest = digits[:6] + rest[len(digits) :]
        text = head + "." + rest
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def wanted(repository, globs):
    return not globs or any(fnmatch.fnmatchcase(repository, glob) for glob in globs)


def parallel(module, function, items):
    with ThreadPoolExecutor(max_workers=module.params["concurrency"]) as pool:
        return list(pool.map(function, items))


# -- Distribution ---------------------------------------------------------------
def distribution_client(module):
    p = module.params
    return RegistryClient(
        p["registry"],
        scheme=p["scheme"],
        ca_path=p["ca_path"] or docker_ca_path(p["registry"]),
        username=p["username"],
        password=p["password"],
        validate_certs=p["validate_certs"],
    )


def distribution_candidates(module, client, need_push_times):
    """Tags, digests, push and creation times: from the storage on the
    registry host, else over the API (without push times)."""
    p = module.params
    storage = StorageReader(p["storage_dir"])
    if storage.available():
        return storage_candidates(module, storage)
    if need_push_times:
        module.fail_json(
            msg="the grace period needs push times, which only the storage in %s has; run on the registry host or set grace: 0"
            % p["storage_dir"]
        )
    return api_candidates(module, client)


def candidate(repo, tag, digest, created, arrived, size):
    identity = "%s@%s" % (repo, digest)
    return Candidate(repo, tag, identity, created=created or 0, arrived=arrived, size=size, digests=(digest, identity))


def layer_bytes(manifest):
    return sum(layer.get("size", 0) for layer in (manifest or {}).get("layers") or [])


def storage_candidates(module, storage):
    found = []
    for repo in storage.repositories():
        if not wanted(repo, module.params["repositories"]):
            continue
        facts = {}
        for tag, (digest, pushed) in sorted(storage.tags(repo).items()):
            if digest not in facts:
                # Creation time only orders non-semver tags; skip reading it otherwise.
                config = storage.image_config(digest) if semver_key(tag) is None else None
                facts[digest] = (iso_time((config or {}).get("created")), layer_bytes(storage.manifest(digest)))
            created, size = facts[digest]
            found.append(candidate(repo, tag, digest, created, pushed, size))
    return found


def api_candidates(module, client):
    repositories = [r for r in client.catalog() if wanted(r, module.params["repositories"])]
    pairs = [(repo, tag) for repo, tags in zip(repositories, parallel(module, client.tags, repositories)) for tag in tags]
    manifests = parallel(module, lambda pair: client.manifest(*pair), pairs)

    def created(item):
        (repo, tag), found = item
        if not found or semver_key(tag) is not None:
            return None
        return iso_time((client.image_config(repo, found[0]) or {}).get("created"))

    times = parallel(module, created, list(zip(pairs, manifests)))
    return [
        candidate(repo, tag, found[0], when, None, layer_bytes(found[2]))
        for (repo, tag), found, when in zip(pairs, manifests, times)
        if found
    ]


def check_deletes_enabled(module, client):
    """A delete of a digest that cannot exist: 404 when deletes are on, 405 when off."""
    try:
        client.delete_manifest("berth-delete-probe", ZERO_DIGEST)
    except RegistryError as exc:
        if exc.status == 405:
            module.fail_json(
                msg="registry %s refuses deletes (HTTP 405): set storage.delete.enabled: true in its config "
                "(berth's registry role: registry_delete_enabled: true); nothing was deleted" % module.params["registry"]
            )
        raise


def run(command):
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.returncode, result.stdout + result.stderr


def wait_ready(client, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        try:
            client.ping()
            return
        except RegistryError as exc:
            if exc.status == 401:
                return
            if time.monotonic() > deadline:
                raise


def distribution_gc(module, client):
    """garbage-collect inside a read-only window: the registry keeps serving
    pulls from a read-only copy of its config while blobs are swept."""
    p = module.params
    if yaml is None:
        module.fail_json(msg="garbage collection needs PyYAML (python3-yaml) on the registry host")
    if not os.path.exists(p["registry_config"]):
        module.fail_json(msg="garbage collection runs on the registry host: %s not found" % p["registry_config"])
    with open(p["registry_config"], encoding="utf-8") as stream:
        config = yaml.safe_load(stream)
    config.setdefault("storage", {}).setdefault("maintenance", {})["readonly"] = {"enabled": True}
    dropin_dir = "/run/systemd/system/%s.service.d" % p["registry_service"]
    dropin = os.path.join(dropin_dir, "berth-readonly.conf")
    os.makedirs(os.path.dirname(READONLY_CONFIG), exist_ok=True)
    os.makedirs(dropin_dir, exist_ok=True)
    with open(READONLY_CONFIG, "w", encoding="utf-8") as stream:
        json.dump(config, stream)
    os.chmod(READONLY_CONFIG, 0o644)
    with open(dropin, "w", encoding="utf-8") as stream:
        stream.write("[Service]\nExecStart=\nExecStart=/usr/bin/docker-registry serve %s\n" % READONLY_CONFIG)
    started = time.monotonic()
    try:
        run(["systemctl", "daemon-reload"])
        rc, out = run(["systemctl", "restart", p["registry_service"]])
        if rc != 0:
            module.fail_json(msg="could not restart %s read-only: %s" % (p["registry_service"], out))
        wait_ready(client)
        rc, out = run(["docker-registry", "garbage-collect", p["registry_config"]])
    finally:
        for path in (dropin, READONLY_CONFIG):
            if os.path.exists(path):
                os.remove(path)
        run(["systemctl", "daemon-reload"])
        run(["systemctl", "restart", p["registry_service"]])
        wait_ready(client)
    if rc != 0:
        module.fail_json(msg="garbage-collect failed: %s" % out[-2000:])
    swept = [line for line in out.splitlines() if "blob eligible for deletion" in line]
    return {"blobs_deleted": len(swept), "readonly_seconds": round(time.monotonic() - started, 2)}


# -- Harbor -----------------------------------------------------------------------
def harbor_client(module):
    p = module.params
    return HarborClient(p["registry"], p["username"], p["password"], ca_path=p["ca_path"], validate_certs=p["validate_certs"])


def harbor_candidates(module, client):
    p = module.params
    host = p["registry"].split("://", 1)[-1].rstrip("/")
    repositories = [name for project in client.projects() for name in client.repositories(project["name"])]
    repositories = [name for name in repositories if wanted(name, p["repositories"])]
    found = []
    for name, artifacts in zip(repositories, parallel(module, client.artifacts, repositories)):
        for artifact in artifacts:
            digest = artifact["digest"]
            identity = "%s@%s" % (name, digest)
            created = iso_time((artifact.get("extra_attrs") or {}).get("created")) or iso_time(artifact.get("push_time")) or 0
            digests = (digest, identity, "%s/%s" % (host, identity))
            tags = artifact.get("tags") or []
            if not tags:
                found.append(
                    Candidate(
                        None, None, identity, created=created, arrived=iso_time(artifact.get("push_time")), size=artifact.get("size", 0)
                    )
                )
            for tag in tags:
                arrived = iso_time(tag.get("push_time")) or iso_time(artifact.get("push_time"))
                found.append(
                    Candidate(name, tag["name"], identity, created=created, arrived=arrived, size=artifact.get("size", 0), digests=digests)
                )
    return found


# -- both ------------------------------------------------------------------------------
def protected_forms(protected):
    """Deployed references arrive as the fleet pulled them (registry/repo@digest),
    and a registry's API name may differ from the name hosts pull by. A bare
    digest protects that manifest in every repository: when in doubt, keep."""
    forms = set(protected)
    forms.update(item.rsplit("@", 1)[1] for item in protected if "@" in item)
    return forms


def main():
    module = AnsibleModule(
        argument_spec={
            "backend": {"type": "str", "choices": ["distribution", "harbor"], "default": "distribution"},
            "registry": {"type": "str", "required": True},
            "scheme": {"type": "str", "choices": ["https", "http"], "default": "https"},
            "ca_path": {"type": "path"},
            "validate_certs": {"type": "bool", "default": True},
            "username": {"type": "str"},
            "password": {"type": "str", "no_log": True},
            "keep": {"type": "int", "default": 5},
            "keep_patterns": {"type": "list", "elements": "str", "default": []},
            "protected": {"type": "list", "elements": "str", "default": []},
            "grace": {"type": "raw", "default": "24h"},
            "repositories": {"type": "list", "elements": "str", "default": []},
            "storage_dir": {"type": "path", "default": "/var/lib/docker-registry"},
            "gc": {"type": "bool", "default": True},
            "registry_config": {"type": "path", "default": "/etc/docker/registry/config.yml"},
            "registry_service": {"type": "str", "default": "docker-registry"},
            "concurrency": {"type": "int", "default": 8},
        },
        supports_check_mode=True,
    )
    p = module.params
    errors = policy_errors(p["keep"], p["keep_patterns"], p["grace"])
    if p["concurrency"] < 1:
        errors.append("concurrency must be at least 1")
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)
    need_push_times = parse_duration(p["grace"]) > 0
    started = time.monotonic()
    try:
        if p["backend"] == "distribution":
            client = distribution_client(module)
            client.ping()
            found = distribution_candidates(module, client, need_push_times)
            check_deletes_enabled(module, client)
            delete = lambda identity: client.delete_manifest(*identity.split("@", 1))  # noqa: E731
        else:
            client = harbor_client(module)
            found = harbor_candidates(module, client)
            delete = lambda identity: client.delete_artifact(*identity.split("@", 1))  # noqa: E731
    except (RegistryError, HarborError) as exc:
        module.fail_json(msg=str(exc))

    result_plan = plan(
        found,
        untag=False,
        keep=p["keep"],
        protected=protected_forms(p["protected"]),
        patterns=p["keep_patterns"],
        grace=p["grace"],
        now=time.time(),
    )
    going = result_plan["images_freed"]
    result = {
        "plan": result_plan["items"],
        "kept": result_plan["kept"],
        "removed": result_plan["removed"],
        "deleted": going,
        "failed": [],
        "bytes": result_plan["bytes"],
        "durations": {"list": round(time.monotonic() - started, 3), "delete": 0.0},
    }
    if module.check_mode or not going:
        module.exit_json(changed=bool(going), **result)

    def attempt(identity):
        try:
            delete(identity)
            return identity, None
        except (RegistryError, HarborError) as exc:
            return identity, str(exc)

    deleting = time.monotonic()
    outcomes = parallel(module, attempt, going)
    result["durations"]["delete"] = round(time.monotonic() - deleting, 3)
    result["failed"] = [{"ref": identity, "error": error} for identity, error in outcomes if error]
    result["deleted"] = [identity for identity, error in outcomes if not error]
    sizes = {item["image"]: item["size"] for item in result_plan["items"]}
    result["bytes"] = sum(sizes[identity] for identity in result["deleted"])
    if p["gc"] and result["deleted"]:
        try:
            result["gc"] = distribution_gc(module, client) if p["backend"] == "distribution" else {"triggered": client.trigger_gc()}
        except (RegistryError, HarborError) as exc:
            result["failed"].append({"ref": "garbage collection", "error": str(exc)})
    if result["failed"]:
        module.fail_json(msg="%d delete(s) failed; the rest went ahead" % len(result["failed"]), changed=bool(result["deleted"]), **result)
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
