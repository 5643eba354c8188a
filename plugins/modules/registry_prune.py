#!/usr/bin/python
"""Prune a registry (Distribution or Harbor) by berth's retention policy."""

DOCUMENTATION = r"""
---
module: registry_prune
short_description: Prune a Distribution or Harbor registry by berth's retention policy
description:
  - Lists repositories, tags and untagged manifests, applies the same retention policy as docker_image_prune,
    and deletes by digest. Deletes are tag-safe, a digest that a kept tag shares is never deleted.
  - B(Fails closed.) I(fleet) names every Docker host that must report what it runs, and what each one
    that did report runs. While any host is missing the module refuses, names the hosts and sends no request
    at all. Every digest a reporting host runs stays, tagged or not.
  - 'Distribution storage (on the registry host): an index (multi-arch image) counts the layers of its
    per-platform manifests, is kept when any of them is protected, and takes them along when it goes unless
    another index or a kept tag still uses them. Manifests no tag names are untagged candidates, arriving
    when they were pushed: this is what frees the old digest of a moved tag once no host runs it.'
  - An empty registry (a fresh one has no storage tree until its first push) is nothing to prune.
  - Then garbage-collects. On Distribution the module runs on the registry host and arranges a read-only
    window (the registry keeps serving pulls, refuses pushes) around C(garbage-collect); on Harbor it
    triggers the GC API. No collection after a failed delete.
  - A Distribution registry with deletes disabled is detected and explained before anything is deleted,
    from its config on the registry host, else (outside check mode) by deleting a digest that cannot exist.
  - Check mode returns the plan and sends no mutating request.
  - The result says what was really deleted. After a failed delete, the registry's storage (or the API)
    is asked whether the manifest is gone, so a registry that stops mid-prune still gets an exact account;
    what cannot be told is listed in C(unknown).
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.attributes
  - berth.ops.attributes.host
  - berth.ops.retention
options:
  backend:
    description: C(distribution) or C(harbor).
    type: str
    choices:
      - distribution
      - harbor
    default: distribution
  registry:
    description: 'Distribution: C(host:port). Harbor: its URL, e.g. C(https://harbor.example).'
    type: str
    required: true
  scheme:
    description: 'Distribution: C(https) or C(http).'
    type: str
    choices:
      - https
      - http
    default: https
  ca_path:
    description: CA bundle; by default Docker's certs.d entry for the registry.
    type: path
  validate_certs:
    description: Verify TLS certificates.
    type: bool
    default: true
  username:
    description: User (a Harbor robot account works).
    type: str
  password:
    description: Password or robot secret.
    type: str
  protected:
    description: Digests, C(repo@digest), C(registry/repo@digest) or C(repo:tag) that must stay.
    type: list
    elements: str
    default: []
  fleet:
    description: What the fleet runs. Required, so that no caller forgets it.
    type: dict
    required: true
    suboptions:
      hosts:
        description: Every Docker host that must report; an empty list states there is none.
        type: list
        elements: str
        required: true
      in_use:
        description: For each host that reported, the references it runs (C(registry/repo@digest) or digests).
        type: dict
        default: {}
  storage_dir:
    description: 'Distribution: filesystem storage root. Read (on the registry host) for tags, untagged
      manifests, indexes and push times; without it the API is used and there are no push times.'
    type: path
    default: /var/lib/docker-registry
  gc:
    description: Garbage-collect after deleting.
    type: bool
    default: true
  registry_config:
    description: 'Distribution: the registry''s config.yml, read when it describes I(registry) (same port).'
    type: path
    default: /etc/docker/registry/config.yml
  registry_service:
    description: 'Distribution: the registry''s systemd unit.'
    type: str
    default: docker-registry
  concurrency:
    description: Requests in flight at once (1 to 64).
    type: int
    default: 8
"""

EXAMPLES = r"""
- name: Plan the prune of a building's registry (check mode sends no mutating request)
  berth.ops.registry_prune:
    registry: "{{ ansible_host }}:5000"
    scheme: http
    policy:
      keep: 5
      grace: 24h
    fleet:
      hosts: "{{ groups['docker_hosts'] }}"
      in_use: "{{ in_use_by_host }}"
  check_mode: true
  register: registry_plan

- name: Prune a Harbor registry with a robot account
  berth.ops.registry_prune:
    backend: harbor
    registry: https://harbor.bldg-a.example
    username: robot$cleanup
    password: "{{ vault_harbor_cleanup_secret }}"
    policy:
      keep: 10
      keep_patterns: ["release-*"]
    fleet:
      hosts: "{{ groups['docker_hosts'] }}"
      in_use: "{{ in_use_by_host }}"
  delegate_to: localhost
"""

RETURN = r"""
check_mode:
  description: Whether this was a plan only.
  returned: always
  type: bool
  sample: false
plan:
  description: Every tag and untagged manifest with its action and reasons.
  returned: always
  type: list
  elements: dict
  sample:
    - ref: 10.77.1.11:5000/lab/demo:r3
      repository: lab/demo
      tag: r3
      image: sha256:4b1f3c0e5d2a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e
      action: keep
      reasons:
        - in use
        - newest
      size: 48221696
    - ref: 10.77.1.11:5000/lab/demo:r1
      repository: lab/demo
      tag: r1
      image: sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d
      action: remove
      reasons: []
      size: 48213504
kept:
  description: Tags kept.
  returned: always
  type: list
  elements: str
  sample:
    - 10.77.1.11:5000/lab/demo:r3
removed:
  description: Tags and untagged manifests that go (or would go).
  returned: always
  type: list
  elements: str
  sample:
    - 10.77.1.11:5000/lab/demo:r1
planned:
  description: Manifests planned for deletion, as repo@digest, per-platform ones after their index.
  returned: always
  type: list
  elements: str
  sample:
    - lab/demo@sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d
planned_bytes:
  description: Layer bytes of the planned manifests.
  returned: always
  type: int
  sample: 48213504
deleted:
  description: Manifests really deleted, as repo@digest; empty in check mode.
  returned: always
  type: list
  elements: str
  sample:
    - lab/demo@sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d
failures:
  description: Deletes that failed (the manifest is still there), with the error. Not C(failed), which
    Ansible sets to true on failure.
  returned: always
  type: list
  elements: dict
  sample:
    - ref: lab/demo@sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d
      error: DELETE returned 500
unknown:
  description: Deletes whose outcome could not be told.
  returned: always
  type: list
  elements: dict
  sample:
    - ref: lab/demo@sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d
      error: connection refused
dangling_tags_removed:
  description: Tags left naming a deleted manifest (the registry stopped between its delete and its untag),
    removed from storage.
  returned: distribution with storage
  type: list
  elements: str
  sample:
    - lab/demo:r1
tags_removed_first:
  description: Tags of the manifests about to be deleted, removed from storage first, so that Distribution's
    delete then reads only the kept tags.
  returned: distribution with storage
  type: list
  elements: str
  sample:
    - lab/demo:r1
bytes:
  description: Layer bytes of the deleted manifests (shared layers may stay until GC finds them unused).
  returned: always
  type: int
  sample: 48213504
refused:
  description: True when the fleet was incomplete and nothing was sent.
  returned: always
  type: bool
  sample: false
missing_hosts:
  description: Docker hosts that did not report.
  returned: always
  type: list
  sample: []
deletes_enabled:
  description: 'Whether the registry allows deletes: true, false or C(unknown).'
  returned: distribution
  type: raw
  sample: true
empty:
  description: True when the registry holds no repository at all.
  returned: always
  type: bool
  sample: false
gc:
  description: What garbage collection did.
  returned: when it ran
  type: dict
  sample:
    blobs_deleted: 7
    readonly_seconds: 3.41
durations:
  description: Seconds spent listing and deleting.
  returned: always
  type: dict
  sample:
    list: 0.412
    delete: 0.087
"""

import fnmatch
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

try:
    import yaml
except ImportError:  # only the registry host's config reading needs it
    yaml = None

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_client import HarborClient, HarborError
from ansible_collections.berth.ops.plugins.module_utils.berth_registry import (
    artifact_candidates,
    config_deletes_enabled,
    config_describes,
    config_storage_root,
    layer_bytes,
    prune_plan,
    repository_candidates,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_registry_client import (
    RegistryClient,
    RegistryError,
    StorageReader,
    docker_ca_path,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_retention import (
    FLEET_OPTION,
    POLICY_OPTION,
    Candidate,
    concurrency_errors,
    fleet_digests,
    fleet_errors,
    fleet_missing,
    parse_duration,
    plan_diff,
    policy_option_errors,
    semver_key,
    time_or_none,
)

ZERO_DIGEST = "sha256:" + "0" * 64
READONLY_CONFIG = "/run/berth/registry-readonly.yml"


def wanted(repository, globs):
    return not globs or any(fnmatch.fnmatchcase(repository, glob) for glob in globs)


def parallel(module, function, items):
    with ThreadPoolExecutor(max_workers=module.params["concurrency"]) as pool:
        return list(pool.map(function, items))


class Backend:
    """What main() asks of a registry, whichever it is (chosen once, from
    the backend option):

    listing(result): (candidates, {index: [children]}, {identity: own bytes}),
    noting result["empty"]; delete(identity): True when it went, False when
    it was gone already; gone(identity): whether it is gone now (asked after
    a failed delete); before_deletes and after_deletes: tidying around the
    deletes; collect(): the garbage collection's result."""

    def before_deletes(self, result, doomed, kept):
        """Nothing to do before the deletes."""

    def after_deletes(self, result, gone):
        """Nothing to do after them."""


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


def registry_config(module):
    """The registry's own config.yml when this host has it and it describes
    the registry being pruned, else None."""
    p = module.params
    if yaml is None or not os.path.isfile(p["registry_config"]):
        return None
    try:
        with open(p["registry_config"], encoding="utf-8") as stream:
            config = yaml.safe_load(stream)
    except (OSError, yaml.YAMLError):
        return None
    return config if isinstance(config, dict) and config_describes(config, p["registry"], p["scheme"]) else None


def distribution_listing(module, client, config, need_push_times):
    """(candidates, {index: children}, {identity: own bytes}, empty): from
    the storage on the registry host, else over the API (no push times)."""
    p = module.params
    root = config_storage_root(config)
    if root and os.path.normpath(root) != os.path.normpath(p["storage_dir"]):
        module.fail_json(
            msg="storage_dir: %s is not the storage of registry %s, whose config %s says %s; nothing was deleted"
            % (p["storage_dir"], p["registry"], p["registry_config"], root)
        )
    storage = StorageReader(p["storage_dir"])
    if storage.available():
        return storage_listing(module, storage) + (not storage.repositories(),)
    # A fresh registry has no storage tree until its first push.
    repositories = [r for r in client.catalog() if wanted(r, p["policy"]["repositories"])]
    if not repositories:
        return [], {}, {}, True
    if need_push_times:
        module.fail_json(
            msg="the grace period needs push times, which only the registry's storage has (%s not found here): "
            "run on the registry host with storage_dir set, or set policy.grace: 0" % storage.base
        )
    found = api_candidates(module, client, repositories)
    return found, {}, {c.image: c.size for c in found}, False


def storage_listing(module, storage):
    found, children, own = [], {}, {}
    for repo in storage.repositories():
        if not wanted(repo, module.params["policy"]["repositories"]):
            continue
        tags, revisions = storage.tags(repo), storage.revisions(repo)
        digests = set(revisions) | {digest for digest, _unused in tags.values()}
        documents = {digest: storage.manifest(digest) for digest in digests}
        repo_found, repo_children, repo_own = repository_candidates(repo, tags, revisions, documents)
        found += repo_found
        children.update(repo_children)
        own.update(repo_own)
    return found, children, own


def api_candidates(module, client, repositories):
    pairs = [(repo, tag) for repo, tags in zip(repositories, parallel(module, client.tags, repositories)) for tag in tags]
    manifests = parallel(module, lambda pair: client.manifest(*pair), pairs)

    def created(item):
        # Without push times, build time is the only order other tags have.
        (repo, tag), found = item
        if not found or semver_key(tag) is not None:
            return None
        return time_or_none((client.image_config(repo, found[0]) or {}).get("created"))

    times = parallel(module, created, list(zip(pairs, manifests)))
    found = []
    for (repo, tag), manifest, when in zip(pairs, manifests, times):
        if manifest:
            identity = "%s@%s" % (repo, manifest[0])
            found.append(Candidate(repo, tag, identity, created=when, size=layer_bytes(manifest[2]), digests=(manifest[0], identity)))
    return found


def deletes_enabled(module, client, config):
    """True, or "unknown" in check mode without the config; fails when off."""
    p = module.params
    if config is not None:
        enabled = config_deletes_enabled(config)
    elif module.check_mode:
        return "unknown"  # a probe would be a DELETE: check mode sends none
    else:
        try:
            # A delete of a digest that cannot exist: 404 when deletes are on, 405 when off.
            client.delete_manifest("berth-delete-probe", ZERO_DIGEST)
            enabled = True
        except RegistryError as exc:
            if exc.status != 405:
                raise
            enabled = False
    if not enabled:
        module.fail_json(
            msg="registry %s refuses deletes (storage.delete.enabled is off): set storage.delete.enabled: true in its config "
            "(berth's registry role: registry_delete_enabled: true); nothing was deleted" % p["registry"],
            deletes_enabled=False,
        )
    return True


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
            time.sleep(0.2)


def distribution_gc(module, client):
    """garbage-collect inside a read-only window: the registry keeps serving
    pulls from a read-only copy of its config while blobs are swept."""
    p = module.params
    if yaml is None:
        raise RegistryError("garbage collection needs PyYAML (python3-yaml) on the registry host")
    if not os.path.exists(p["registry_config"]):
        raise RegistryError("garbage collection runs on the registry host: %s not found" % p["registry_config"])
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
            raise RegistryError("could not restart %s read-only: %s" % (p["registry_service"], out))
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
        raise RegistryError("garbage-collect failed: %s" % out[-2000:])
    swept = [line for line in out.splitlines() if "blob eligible for deletion" in line]
    return {"blobs_deleted": len(swept), "readonly_seconds": round(time.monotonic() - started, 2)}


class Distribution(Backend):
    """A CNCF Distribution registry: listed from its storage when this is the
    registry host (else over the API), deleted through the API with the
    storage's tags of doomed manifests removed around the deletes, collected
    by garbage-collect in a read-only window."""

    def __init__(self, module):
        self.module = module
        self.client = distribution_client(module)
        self.storage = StorageReader(module.params["storage_dir"])

    def listing(self, result):
        """(candidates, {index: children}, {identity: own bytes}). Fails,
        nothing deleted, on a storage_dir that is not the registry's, a grace
        period without push times, or a registry that refuses deletes."""
        p = self.module.params
        self.client.ping()
        config = registry_config(self.module)
        found, children, own, result["empty"] = distribution_listing(
            self.module, self.client, config, parse_duration(p["policy"]["grace"]) > 0
        )
        if found:
            result["deletes_enabled"] = deletes_enabled(self.module, self.client, config)
        return found, children, own

    def delete(self, identity):
        return self.client.delete_manifest(*identity.split("@", 1))

    def gone(self, identity):
        repo, digest = identity.split("@", 1)
        if self.storage.available():
            return not self.storage.has_revision(repo, digest)
        return self.client.manifest_digest(repo, digest) is None

    def before_deletes(self, result, doomed, kept):
        """Remove the tags of the doomed manifests in storage first (see
        StorageReader.untag_doomed); the kept references' tags stay."""
        if not self.storage.available():
            return
        by_repository, kept_tags = {}, {}
        for identity in doomed:
            repo, digest = identity.split("@", 1)
            by_repository.setdefault(repo, set()).add(digest)
        for ref in kept:
            repo, _unused, tag = ref.rpartition(":")
            kept_tags.setdefault(repo, set()).add(tag)
        result["tags_removed_first"] = [
            tag
            for repo, digests in sorted(by_repository.items())
            for tag in self.storage.untag_doomed(repo, digests, kept_tags.get(repo, ()))
        ]

    def after_deletes(self, result, gone):
        """Remove the tags that still name manifests now gone."""
        if not self.storage.available():
            return
        by_repository = {}
        for identity in gone:
            repo, digest = identity.split("@", 1)
            by_repository.setdefault(repo, set()).add(digest)
        result["dangling_tags_removed"] = [
            tag for repo, digests in sorted(by_repository.items()) for tag in self.storage.untag(repo, digests)
        ]

    def collect(self):
        return distribution_gc(self.module, self.client)


# -- Harbor -----------------------------------------------------------------------
def harbor_client(module):
    p = module.params
    return HarborClient(p["registry"], p["username"], p["password"], ca_path=p["ca_path"], validate_certs=p["validate_certs"])


def harbor_candidates(module, client):
    p = module.params
    host = p["registry"].split("://", 1)[-1].rstrip("/")
    repositories = [name for project in client.projects() for name in client.repositories(project["name"])]
    repositories = [name for name in repositories if wanted(name, p["policy"]["repositories"])]
    found = []
    for name, artifacts in zip(repositories, parallel(module, client.artifacts, repositories)):
        found += artifact_candidates(name, host, artifacts)
    return found


class Harbor(Backend):
    """Harbor, through its API: artifacts listed and deleted (Harbor drops
    their tags itself), garbage collection triggered."""

    def __init__(self, module):
        self.module = module
        self.client = harbor_client(module)

    def listing(self, result):
        found = harbor_candidates(self.module, self.client)
        result["empty"] = not found
        return found, {}, {c.image: c.size for c in found}

    def delete(self, identity):
        return self.client.delete_artifact(*identity.split("@", 1))

    def gone(self, identity):
        return self.client.artifact(*identity.split("@", 1)) is None

    def collect(self):
        return {"triggered": self.client.trigger_gc()}


BACKENDS = {"distribution": Distribution, "harbor": Harbor}


# -- both ------------------------------------------------------------------------------
def protected_forms(protected):
    """Deployed references arrive as the fleet pulled them (registry/repo@digest),
    and a registry's API name may differ from the name hosts pull by. A bare
    digest protects that manifest in every repository: when in doubt, keep."""
    forms = set(protected)
    forms.update(item.rsplit("@", 1)[1] for item in protected if "@" in item)
    return forms


def validate(module):
    p = module.params
    errors = policy_option_errors(p["policy"]) + fleet_errors(p["fleet"]) + concurrency_errors(p["concurrency"])
    if p["backend"] == "harbor" and not p["registry"].startswith(("https://", "http://")):
        errors.append("registry: %r is not Harbor's http(s) URL" % p["registry"])
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors, deleted=[], check_mode=module.check_mode)


def empty_result(module):
    return {
        "check_mode": module.check_mode,
        "plan": [],
        "kept": [],
        "removed": [],
        "planned": [],
        "planned_bytes": 0,
        "deleted": [],
        "failures": [],
        "unknown": [],
        "bytes": 0,
        "refused": False,
        "missing_hosts": [],
        "empty": False,
        "durations": {"list": 0.0, "delete": 0.0},
    }


def delete_all(module, backend, first, then, children):
    """[(identity, deleted, error)]: `first` deleted, then the platforms in
    `then` whose every freed index went."""

    def attempt(identity):
        try:
            return identity, backend.delete(identity), None
        except (RegistryError, HarborError) as exc:
            return identity, False, str(exc)

    outcomes = parallel(module, attempt, first)
    failed_first = {identity for identity, _unused, error in outcomes if error}
    # A platform manifest goes only once every freed index that lists it is gone.
    then = [c for c in then if not any(c in children.get(index, ()) for index in failed_first)]
    return outcomes + parallel(module, attempt, then)


def account(backend, outcomes):
    """(deleted, failed, unknown, already gone) from the deletes' outcomes."""
    deleted, failed, unknown, already_gone = [], [], [], []
    for identity, done, error in outcomes:
        if not error:
            (deleted if done else already_gone).append(identity)
            continue
        # The request failed, but the registry may have acted before it went
        # away: ask its storage (or API) so the account is exact.
        try:
            really_gone = backend.gone(identity)
        except (RegistryError, HarborError, OSError):
            really_gone = None
        if really_gone is None:
            unknown.append({"ref": identity, "error": error})
        elif really_gone:
            deleted.append(identity)
        else:
            failed.append({"ref": identity, "error": error})
    return deleted, failed, unknown, already_gone


def delete_planned(module, backend, result, first, then, children, own):
    """Delete the plan and account for every delete in the result. Fails,
    with no garbage collection, when a delete failed or its outcome is
    unknown. Returns what was deleted."""
    deleting = time.monotonic()
    backend.before_deletes(result, first + then, result["kept"])
    outcomes = delete_all(module, backend, first, then, children)
    result["durations"]["delete"] = round(time.monotonic() - deleting, 3)
    deleted, failed, unknown, already_gone = account(backend, outcomes)
    result.update(deleted=sorted(deleted), failures=failed, unknown=unknown, bytes=sum(own.get(identity, 0) for identity in deleted))
    backend.after_deletes(result, deleted + already_gone)
    if failed or unknown:
        # Collect only after a clean pass: the next run finishes the deletes first.
        module.fail_json(
            msg="%d delete(s) failed, %d with an unknown outcome; %d manifest(s) deleted (listed in deleted); no garbage collection"
            % (len(failed), len(unknown), len(deleted)),
            changed=bool(deleted),
            **result,
        )
    return deleted


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
            "policy": POLICY_OPTION,
            "protected": {"type": "list", "elements": "str", "default": []},
            "fleet": FLEET_OPTION,
            "storage_dir": {"type": "path", "default": "/var/lib/docker-registry"},
            "gc": {"type": "bool", "default": True},
            "registry_config": {"type": "path", "default": "/etc/docker/registry/config.yml"},
            "registry_service": {"type": "str", "default": "docker-registry"},
            "concurrency": {"type": "int", "default": 8},
        },
        supports_check_mode=True,
    )
    validate(module)
    p = module.params
    result = empty_result(module)
    missing = fleet_missing(p["fleet"])
    if missing:
        # Fail closed, before any request: what the missing hosts run is unknown.
        result.update(refused=True, missing_hosts=missing)
        module.fail_json(
            msg="registry prune refused (fail closed): no in-use list from %s; nothing was deleted from %s"
            % (", ".join(missing), p["registry"]),
            **result,
        )
    protected = protected_forms(list(p["protected"]) + fleet_digests(p["fleet"]))
    started = time.monotonic()
    try:
        backend = BACKENDS[p["backend"]](module)
        found, children, own = backend.listing(result)
    except (RegistryError, HarborError) as exc:
        module.fail_json(msg=str(exc), **result)
    fields, first, then = prune_plan(found, children, own, protected, p["policy"], time.time())
    result.update(fields)
    result["durations"]["list"] = round(time.monotonic() - started, 3)
    if module._diff:
        result["diff"] = plan_diff(result["kept"], result["removed"], "registry %s" % p["registry"])
    if module.check_mode or not first:
        module.exit_json(changed=bool(first), **result)
    deleted = delete_planned(module, backend, result, first, then, children, own)
    if p["gc"] and deleted:
        try:
            result["gc"] = backend.collect()
        except (RegistryError, HarborError, OSError) as exc:
            result["gc"] = {"error": str(exc)}
            module.fail_json(msg="%d manifest(s) deleted, then garbage collection failed: %s" % (len(deleted), exc), changed=True, **result)
    module.exit_json(changed=bool(deleted), **result)


if __name__ == "__main__":
    main()
