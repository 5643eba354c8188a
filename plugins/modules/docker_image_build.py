#!/usr/bin/python
"""Build an image only when its inputs changed, tag it, push it."""

DOCUMENTATION = r"""
---
module: docker_image_build
short_description: Content-hash image builds with tag templates and retried pushes
description:
  - Hashes the build inputs (context files honouring .dockerignore, the Dockerfile, build args, target, platform,
    labels and the IDs of the FROM images) and labels the image with that hash.
  - When an image with the same hash exists locally, or in the registry when pushing, nothing is built and the module
    reports C(changed=false).
  - Tags are literal or templates with C({timestamp}) (yyyyMMdd-HHmmssSSS), C({git_sha}) and C({hash}). Templates
    are rendered only when a build happens.
  - Pushes retry transient failures with exponential backoff.
  - Check mode says whether a build would happen and why. Diff shows the input hash and the tags before and after,
    and the tags pushed.
  - Not to be confused with M(community.docker.docker_image_build), which runs C(docker buildx build) on every call
    and always reports a build. This module builds with the engine's classic builder only when the input hash
    changed, renders tag templates, and looks for the hash in the registry before building.
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.attributes
  - berth.ops.attributes.host
  - berth.ops.docker
options:
  path:
    description: Build context directory.
    type: path
    required: true
  dockerfile:
    description: Dockerfile, relative to I(path).
    type: str
    default: Dockerfile
  name:
    description: Repository to tag, with its registry, e.g. C(registry:5000/test/web). No tag.
    type: str
    required: true
  tags:
    description: Tags, literal or templates.
    type: list
    elements: str
    default:
      - latest
  build_args:
    description: Build arguments; values must be strings or numbers.
    type: dict
    default: {}
  target:
    description: Build stage to stop at.
    type: str
  labels:
    description: Labels to add to the image.
    type: dict
    default: {}
  cache_from:
    description: Images to use as cache sources.
    type: list
    elements: str
    default: []
  platform:
    description: Target platform, where the engine supports it.
    type: str
  git_sha:
    description: Commit for C({git_sha}); read from the context's git repository when omitted.
    type: str
  push:
    description: Push every tag after building.
    type: bool
    default: false
  push_retries:
    description: Retries of a failed push (and of the registry check before a build).
    type: int
    default: 3
  retry_delay:
    description: Seconds before the first retry; doubled each time.
    type: float
    default: 2
  registry_scan:
    description: How many of the newest registry tags to look through for an image with the same hash.
    type: int
    default: 10
  state_dir:
    description: Where file manifests of earlier builds are kept, to say which files changed.
    type: path
    default: ~/.cache/berth/build
  timeout:
    description: Seconds for engine API calls.
    type: int
    default: 600
  slot_ticket:
    description:
      - A running ticket of the builder's build queue (see M(berth.ops.build_slot)). The module holds the ticket's
        lock while it runs, so the slot is freed when the build ends, fails or is killed.
      - The module fails, building nothing, when the ticket is not running on this host.
    type: str
  slot_dir:
    description: The build queue's directory, as given to M(berth.ops.build_slot).
    type: path
    default: /run/berth/build-queue
"""

EXAMPLES = r"""
- name: Build and push, tagged with a timestamp and the commit
  berth.ops.docker_image_build:
    path: /srv/build/web
    name: 10.77.1.11:5000/test/web
    tags: ["{timestamp}", "git-{git_sha}", latest]
    build_args:
      BASE_TAG: "2026.11"
    push: true
  register: web

- name: Use the reference that was pushed
  ansible.builtin.debug:
    msg: "{{ web.tags | first }}@{{ web.digest }}"
"""

RETURN = r"""
image_id:
  description: Image ID.
  returned: success
  type: str
  sample: sha256:3b1e5d0a0c4f1b2e8d7c6a5b4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e
digest:
  description: Registry digest after a push (or the one found in the registry).
  returned: when pushed or found
  type: str
  sample: sha256:9c2d1e0f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f
tags:
  description: Full references of the image's tags.
  returned: success
  type: list
  elements: str
  sample:
    - 10.77.1.11:5000/test/web:20261123-101500123
    - 10.77.1.11:5000/test/web:latest
input_hash:
  description: Hash of the build inputs.
  returned: always
  type: str
  sample: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
built:
  description: Whether a build ran.
  returned: always
  type: bool
  sample: true
pushed:
  description: Whether anything was pushed.
  returned: always
  type: bool
  sample: true
reasons:
  description: Why a build was (or would be) needed.
  returned: always
  type: list
  elements: str
  sample:
    - app/main.py changed
layers_built:
  description: Filesystem layers this build created.
  returned: when built
  type: int
  sample: 2
layers_reused:
  description: Filesystem layers taken from base images or earlier builds.
  returned: when built
  type: int
  sample: 5
steps:
  description: Dockerfile steps run and cached.
  returned: when built
  type: dict
  sample:
    run: 3
    cached: 6
size:
  description: Image size in bytes.
  returned: success
  type: int
  sample: 131072000
pushed_layers:
  description: Layer IDs uploaded by the push.
  returned: always
  type: list
  elements: str
  sample:
    - sha256:1f2e3d4c5b6a79880716253443526170f9e8d7c6b5a4938271605f4e3d2c1b0a
pushed_bytes:
  description: Compressed bytes of the layers this push uploaded.
  returned: always
  type: int
  sample: 5242880
durations:
  description: Seconds spent hashing inputs, building and pushing.
  returned: always
  type: dict
  sample:
    hash: 0.4
    build: 12.8
    push: 1.9
image_bytes:
  description: Compressed bytes of all the image's layers in the registry.
  returned: when pushed or found
  type: int
  sample: 52428800
slot:
  description: The build slot this run held (I(slot_ticket)), and from when to when on the builder's clock.
  returned: when slot_ticket is given
  type: dict
  sample: {ticket: web-8f2c41d09a7e, held_from: 1764770012.5, held_to: 1764770019.1}
"""

import datetime
import hashlib
import json
import os
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.berth.ops.plugins.module_utils.berth_build import (
    HASH_LABEL,
    already_pushed,
    build_arg_errors,
    build_diff,
    change_reasons,
    component_labels,
    decide,
    from_images,
    input_components,
    input_hash,
    is_template,
    layer_bytes,
    name_error,
    name_tags,
    needs_git_sha,
    new_layers,
    normalize_build_args,
    parse_build_stream,
    parse_push_stream,
    permanent_push_error,
    registry_scheme,
    render_tags,
    scan_order,
    template_errors,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_build_queue import ticket_error
from ansible_collections.berth.ops.plugins.module_utils.berth_build_queue_client import hold
from ansible_collections.berth.ops.plugins.module_utils.berth_images import parse_reference
from ansible_collections.berth.ops.plugins.module_utils.berth_registry_client import (
    RegistryClient,
    RegistryError,
    docker_ca_path,
    docker_credentials,
)

try:
    import docker
    from docker.utils.build import exclude_paths

    HAS_DOCKER = True
except ImportError:
    HAS_DOCKER = False


def validate(module):
    p = module.params
    errors = []
    if not os.path.isdir(p["path"]):
        errors.append("path: build context %s does not exist or is not a directory" % p["path"])
    elif not os.path.isfile(os.path.join(p["path"], p["dockerfile"])):
        errors.append("dockerfile: %s not found in %s" % (p["dockerfile"], p["path"]))
    error = name_error(p["name"])
    if error:
        errors.append("name: %s" % error)
    if not p["tags"]:
        errors.append("tags: at least one tag is needed")
    errors.extend("tags: %s" % e for e in template_errors(p["tags"]))
    errors.extend(build_arg_errors(p["build_args"]))
    for key in ("push_retries", "registry_scan", "timeout"):
        if p[key] < 0:
            errors.append("%s must not be negative" % key)
    if p["retry_delay"] < 0:
        errors.append("retry_delay must not be negative")
    if p["labels"] and not all(isinstance(v, str) for v in p["labels"].values()):
        errors.append("labels: values must be strings")
    error = ticket_error(p["slot_ticket"], "slot_ticket")
    if error:
        errors.append(error)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)


def context_manifest(root, dockerfile):
    """{relative path: sha256} of every file the engine would receive."""
    ignore = os.path.join(root, ".dockerignore")
    patterns = []
    if os.path.exists(ignore):
        with open(ignore, encoding="utf-8") as stream:
            patterns = [line.strip() for line in stream if line.strip() and not line.startswith("#")]
    files = {}
    for rel in sorted(exclude_paths(root, patterns, dockerfile=dockerfile)):
        full = os.path.join(root, rel)
        if os.path.isfile(full) and not os.path.islink(full):
            digest = hashlib.sha256()
            with open(full, "rb") as stream:
                for chunk in iter(lambda s=stream: s.read(1 << 20), b""):
                    digest.update(chunk)
            files[rel] = "%s:%o" % (digest.hexdigest(), os.stat(full).st_mode & 0o7777)
        elif os.path.islink(full):
            files[rel] = "link:" + os.readlink(full)
    return files


def git_sha(module, path):
    if module.params["git_sha"]:
        return module.params["git_sha"]
    try:
        return subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        module.fail_json(msg="tags use {git_sha} but %s is not in a git repository and git_sha was not given" % path)


def with_retries(module, action, what, registry):
    p = module.params
    delay, attempt = p["retry_delay"], 0
    while True:
        try:
            return action()
        except (RegistryError, docker.errors.APIError, OSError, RuntimeError) as exc:
            message = str(exc)
            if permanent_push_error(message) or attempt >= p["push_retries"]:
                module.fail_json(msg="%s failed after %d attempt(s) against registry %s: %s" % (what, attempt + 1, registry, message))
            time.sleep(delay)
            delay, attempt = delay * 2, attempt + 1


def registry_client(client, registry):
    """A client of `registry` that reaches it as the engine does, with the
    credentials of `docker login`."""
    scheme = registry_scheme(client.info().get("RegistryConfig", {}), registry)
    user, password = docker_credentials(registry)
    return RegistryClient(registry, scheme=scheme, ca_path=docker_ca_path(registry), username=user, password=password)


def manifest_path(module, digest):
    return os.path.join(module.params["state_dir"], "%s.json" % digest)


def load_manifest(module, digest):
    try:
        with open(manifest_path(module, digest), encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return None


def save_manifest(module, digest, files):
    path = manifest_path(module, digest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(files, stream)


def push_tag(module, client, name, tag):
    def attempt():
        result = parse_push_stream(client.push(name, tag=tag, stream=True, decode=True))
        if result["error"]:
            raise RuntimeError(result["error"])
        return result

    return with_retries(module, attempt, "pushing %s:%s" % (name, tag), parse_reference(name).registry or "docker.io")


class Build:
    """One run, phase by phase: hash the inputs, look for an image with that
    hash (here, then in the registry), decide (berth_build.decide), build,
    tag, push, report. self.result is what the module returns."""

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.p = module.params
        self.ref = parse_reference(self.p["name"])
        self.literal = [t for t in self.p["tags"] if not is_template(t)]
        self.durations = {"hash": 0.0, "build": 0.0, "push": 0.0}
        self.digest = None
        self.files = {}
        self.components = {}
        self.base_ids = {}
        self.result = {}

    def run(self):
        self.hash_inputs()
        self.check_registry()
        image = self.find_local()
        found = self.find_in_registry() if not image and self.p["push"] else None
        decision = decide(self.ref.name, self.literal, image, found)
        if decision["action"] == "found":
            self.result.update(tags=decision["tags"], digest=decision["digest"], reasons=["the registry already has this input hash"])
            return self.result
        if decision["action"] == "tag":
            image_id, tags, retag = decision["image_id"], decision["tags"], decision["retag"]
            before = (self.digest, decision["had"])
        else:
            previous, before = self.explain()
            if self.module.check_mode:
                return self.would_build(before)
            image_id, tags = self.build(previous)
            retag = tags[1:]
        self.tag(image_id, retag)
        pushed = self.push(image_id, tags)
        return self.report(image_id, tags, before, pushed)

    # -- the input hash ------------------------------------------------------------------------
    def hash_inputs(self):
        """The context's files, the Dockerfile, the build settings and the
        IDs of the FROM images as this engine has them, hashed."""
        p = self.p
        started = time.monotonic()
        with open(os.path.join(p["path"], p["dockerfile"]), encoding="utf-8") as stream:
            dockerfile_text = stream.read()
        self.files = context_manifest(p["path"], p["dockerfile"])
        for base in from_images(dockerfile_text, p["build_args"]):
            if not base or "$" in base:
                self.module.fail_json(msg="dockerfile: a FROM line resolves to %r; give its ARG a value in build_args" % base)
            try:
                self.base_ids[base] = self.client.inspect_image(base)["Id"]
            except docker.errors.NotFound:
                self.base_ids[base] = "absent"
        self.components = input_components(
            self.files, dockerfile_text, p["build_args"], p["target"], p["platform"], p["labels"], self.base_ids
        )
        self.digest = input_hash(self.components)
        self.durations["hash"] = round(time.monotonic() - started, 3)
        self.result = {
            "changed": False,
            "input_hash": self.digest,
            "built": False,
            "pushed": False,
            "pushed_layers": [],
            "pushed_bytes": 0,
            "reasons": [],
            "durations": self.durations,
        }

    # -- what exists ---------------------------------------------------------------------------
    def registry(self):
        """A fresh client for each phase: a token taken before a long build
        may have expired by the push."""
        return registry_client(self.client, self.ref.registry)

    def check_registry(self):
        """Before anything is built, the registry of a push must answer."""
        if self.p["push"] and self.ref.registry:
            with_retries(self.module, self.registry().ping, "checking the registry", self.ref.registry)

    def find_local(self):
        images = self.client.images(filters={"label": "%s=%s" % (HASH_LABEL, self.digest)})
        return max(images, key=lambda image: image.get("Created", 0)) if images else None

    def find_in_registry(self):
        """{"tag", "digest"} of an image in the registry with the input hash."""
        ref = self.ref
        if not ref.registry:
            return None
        registry = self.registry()
        tags = with_retries(self.module, lambda: registry.tags(ref.repository), "listing tags of %s" % ref.name, ref.registry)
        for tag in scan_order(self.literal, tags, self.p["registry_scan"]):
            config = registry.image_config(ref.repository, tag) or {}
            if (config.get("config") or {}).get("Labels", {}).get(HASH_LABEL) == self.digest:
                return {"tag": tag, "digest": registry.manifest_digest(ref.repository, tag)}
        return None

    def previous_image(self):
        """The image to explain a rebuild against: the one holding the first
        literal tag, else the newest berth-built image of the name."""
        images = [i for i in self.client.images(name=self.ref.name) if (i.get("Labels") or {}).get(HASH_LABEL)]
        for tag in self.literal:
            holder = [i for i in images if "%s:%s" % (self.ref.name, tag) in (i.get("RepoTags") or [])]
            if holder:
                return holder[0]
        return max(images, key=lambda image: image.get("Created", 0)) if images else None

    # -- the build -----------------------------------------------------------------------------
    def explain(self):
        """(previous image, (its input hash, its tags)), and in the result
        why a build is needed."""
        previous = self.previous_image()
        labels = (previous or {}).get("Labels") or {}
        self.result["reasons"] = change_reasons(labels, self.components, load_manifest(self.module, labels.get(HASH_LABEL)), self.files)
        return previous, (labels.get(HASH_LABEL), name_tags(self.ref.name, (previous or {}).get("RepoTags")))

    def would_build(self, before):
        """Check mode stops before the build: that it would run, and why.
        The diff shows the tags as given, templates unrendered."""
        if self.module._diff:
            self.result["diff"] = build_diff(*before, self.digest, ["%s:%s" % (self.ref.name, t) for t in self.p["tags"]])
        return dict(self.result, changed=True)

    def known_layers(self, previous):
        """Layers the engine had before this build: the FROM images' and the previous build's."""
        known = []
        for base_id in self.base_ids.values():
            if base_id != "absent":
                known += self.client.inspect_image(base_id)["RootFS"].get("Layers", [])
        if previous:
            known += self.client.inspect_image(previous["Id"])["RootFS"].get("Layers", [])
        return known

    def build(self, previous):
        """(image id, full tags); the build gets the first tag."""
        p = self.p
        rendered = render_tags(
            p["tags"],
            datetime.datetime.now(datetime.UTC),
            git_sha(self.module, p["path"]) if needs_git_sha(p["tags"]) else None,
            self.digest,
        )
        tags = ["%s:%s" % (self.ref.name, t) for t in rendered]
        labels = dict(p["labels"], **component_labels(self.components, self.digest))
        known_layers = self.known_layers(previous)
        kwargs = {"platform": p["platform"]} if p["platform"] else {}
        build_started = time.monotonic()
        stream = self.client.build(
            path=p["path"],
            dockerfile=p["dockerfile"],
            tag=tags[0],
            buildargs=normalize(p["build_args"]),
            target=p["target"],
            labels=labels,
            cache_from=p["cache_from"] or None,
            rm=True,
            forcerm=True,
            decode=True,
            **kwargs,
        )
        outcome = parse_build_stream(stream)
        self.durations["build"] = round(time.monotonic() - build_started, 3)
        if outcome["error"] or not outcome["image_id"]:
            self.module.fail_json(
                msg="build failed: %s" % (outcome["error"] or "no image produced"), build_log=outcome["log"], **self.result
            )
        image_id = self.client.inspect_image(tags[0])["Id"]
        layers = self.client.inspect_image(image_id)["RootFS"].get("Layers", [])
        built = new_layers(layers, known_layers)
        self.result.update(
            changed=True,
            built=True,
            layers_built=len(built),
            layers_reused=len(layers) - len(built),
            steps={"total": outcome["steps"], "cached": outcome["steps_cached"], "run": outcome["steps"] - outcome["steps_cached"]},
        )
        save_manifest(self.module, self.digest, self.files)
        return image_id, tags

    # -- tags and the push ---------------------------------------------------------------------
    def tag(self, image_id, retag):
        if retag and not self.module.check_mode:
            for full in retag:
                self.client.tag(image_id, self.ref.name, full.rsplit(":", 1)[1], force=True)
        if retag:
            self.result["changed"] = True

    def push(self, image_id, tags):
        """The tags sent (in check mode: that would be sent) to the registry:
        those whose manifest there is not this image's."""
        ref, result = self.ref, self.result
        to_push = []
        if not (self.p["push"] and ref.registry):
            return to_push
        push_started = time.monotonic()
        registry = self.registry()
        local_digests = self.client.inspect_image(image_id).get("RepoDigests") or []
        for full in tags:
            tag = full.rsplit(":", 1)[1]
            remote = with_retries(
                self.module, lambda t=tag: registry.manifest_digest(ref.repository, t), "checking %s" % full, ref.registry
            )
            if already_pushed(ref.name, remote, local_digests):
                result["digest"] = remote
                continue
            result["changed"] = True
            to_push.append(full)
            if self.module.check_mode:
                continue
            pushed = push_tag(self.module, self.client, ref.name, tag)
            result["pushed"] = True
            result["digest"] = pushed["digest"]
            result["pushed_layers"] = sorted(set(result["pushed_layers"]) | set(pushed["pushed"]))
        if result.get("digest") and not self.module.check_mode:
            self.measure(registry, image_id)
        self.durations["push"] = round(time.monotonic() - push_started, 3)
        return to_push

    def measure(self, registry, image_id):
        """Compressed bytes of the image and of what this push uploaded,
        from the registry's manifest."""
        ref, result = self.ref, self.result
        found = with_retries(self.module, lambda: registry.manifest(ref.repository, result["digest"]), "reading the manifest", ref.registry)
        sizes = layer_bytes(self.client.inspect_image(image_id)["RootFS"].get("Layers", []), found[2] if found else {})
        result["image_bytes"] = sum(sizes.values())
        result["pushed_bytes"] = sum(sizes.get(layer, 0) for layer in result["pushed_layers"])

    def report(self, image_id, tags, before, pushed):
        self.result.update(image_id=image_id, tags=tags, size=self.client.inspect_image(image_id).get("Size"))
        if self.module._diff and self.result["changed"]:
            self.result["diff"] = build_diff(*before, self.digest, tags, pushed)
        return self.result


def connect(module):
    p = module.params
    try:
        return docker.APIClient(base_url=p["docker_host"], version="auto", timeout=p["timeout"])
    except docker.errors.DockerException as exc:
        module.fail_json(msg="cannot reach the Docker engine at %s: %s" % (p["docker_host"], exc))


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "dockerfile": {"type": "str", "default": "Dockerfile"},
            "name": {"type": "str", "required": True},
            "tags": {"type": "list", "elements": "str", "default": ["latest"]},
            "build_args": {"type": "dict", "default": {}},
            "target": {"type": "str"},
            "labels": {"type": "dict", "default": {}},
            "cache_from": {"type": "list", "elements": "str", "default": []},
            "platform": {"type": "str"},
            "git_sha": {"type": "str"},
            "push": {"type": "bool", "default": False},
            "push_retries": {"type": "int", "default": 3},
            "retry_delay": {"type": "float", "default": 2},
            "registry_scan": {"type": "int", "default": 10},
            "state_dir": {"type": "path", "default": "~/.cache/berth/build"},
            "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
            "timeout": {"type": "int", "default": 600},
            "slot_ticket": {"type": "str"},
            "slot_dir": {"type": "path", "default": "/run/berth/build-queue"},
        },
        supports_check_mode=True,
    )
    validate(module)
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker (python3-docker)"))
    # Held until the process ends; check mode builds nothing and takes no slot.
    slot = hold_slot(module) if module.params["slot_ticket"] and not module.check_mode else None
    held_from = time.time()
    result = Build(module, connect(module)).run()
    if slot is not None:
        # When this build held its slot, on the builder's clock.
        result["slot"] = {"ticket": module.params["slot_ticket"], "held_from": round(held_from, 3), "held_to": round(time.time(), 3)}
    module.exit_json(**result)


def hold_slot(module):
    p = module.params
    slot = hold(p["slot_dir"], p["slot_ticket"])
    if slot is None:
        module.fail_json(
            msg="build slot %s is not running on this host (acquire it with build_slot first; its lease may have run out); nothing was built"
            % p["slot_ticket"]
        )
    return slot


def normalize(build_args):
    return {k: v for k, v in normalize_build_args(build_args).items() if v is not None}


if __name__ == "__main__":
    main()
