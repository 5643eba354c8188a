"""Content-hash image builds: what goes into the input hash, how tags are
rendered, why a rebuild is needed, and what the engine's build and push
streams say happened."""

import hashlib
import json
import re
import string

from ansible_collections.berth.ops.plugins.module_utils.berth_images import parse_reference, tag_error

LABEL_PREFIX = "berth.input"
HASH_LABEL = "berth.input-hash"
COMPONENTS = ("dockerfile", "context", "build_args", "target", "platform", "labels", "base_images")
TAG_FIELDS = ("timestamp", "git_sha", "hash")
FROM_LINE = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(?P<image>\S+)(?:\s+AS\s+(?P<stage>\S+))?\s*$", re.IGNORECASE | re.MULTILINE)
ARG_LINE = re.compile(r"^\s*ARG\s+(?P<name>\w+)(?:=(?P<default>\S*))?\s*$", re.IGNORECASE | re.MULTILINE)
STEP = re.compile(r"^Step (\d+)/(\d+) : (\S+)")
SCALARS = (str, int, float, bool)


def _digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def build_arg_errors(build_args):
    """Build args must be scalars: Docker passes them as strings."""
    if not isinstance(build_args, dict):
        return ["build_args must be a mapping of name to value"]
    return [
        "build_args.%s: a %s is not a valid build argument value (use a string or number)" % (name, type(value).__name__)
        for name, value in sorted(build_args.items())
        if value is not None and not isinstance(value, SCALARS)
    ]


def normalize_build_args(build_args):
    out = {}
    for name, value in sorted((build_args or {}).items()):
        if isinstance(value, bool):
            value = "true" if value else "false"
        out[name] = None if value is None else str(value)
    return out


def from_images(dockerfile_text, build_args=None):
    """External images a Dockerfile builds FROM (stage names excluded)."""
    args = {m.group("name"): m.group("default") or "" for m in ARG_LINE.finditer(dockerfile_text)}
    args.update({k: v for k, v in normalize_build_args(build_args).items() if v is not None})
    stages, images = set(), []
    for match in FROM_LINE.finditer(dockerfile_text):
        image = string.Template(match.group("image")).safe_substitute(args)
        if image.lower() not in stages and image != "scratch" and image not in images:
            images.append(image)
        if match.group("stage"):
            stages.add(match.group("stage").lower())
    return images


def input_components(files, dockerfile_text, build_args, target, platform, labels, base_ids):
    """Per-input hashes. `files` maps context paths to content hashes."""
    return {
        "dockerfile": _digest(dockerfile_text),
        "context": _digest(files),
        "build_args": _digest(normalize_build_args(build_args)),
        "target": _digest(target or ""),
        "platform": _digest(platform or ""),
        "labels": _digest(labels or {}),
        "base_images": _digest(base_ids),
    }


def input_hash(components):
    return _digest([components[name] for name in COMPONENTS])


def component_labels(components, digest):
    labels = {HASH_LABEL: digest}
    labels.update({"%s.%s" % (LABEL_PREFIX, name): value[:16] for name, value in components.items()})
    return labels


def change_reasons(previous_labels, components, previous_files=None, files=None, limit=10):
    """Why a build is needed, compared with the last image of the same name."""
    if not previous_labels or HASH_LABEL not in previous_labels:
        return ["no earlier image of this name carries an input hash"]
    reasons = []
    for name in COMPONENTS:
        if previous_labels.get("%s.%s" % (LABEL_PREFIX, name)) != components[name][:16]:
            reasons.append("%s changed" % name.replace("_", " "))
    if "context changed" in reasons and previous_files is not None and files is not None:
        changed = sorted(p for p in set(files) | set(previous_files) if files.get(p) != previous_files.get(p))
        detail = ", ".join(changed[:limit]) + (" and %d more" % (len(changed) - limit) if len(changed) > limit else "")
        reasons[reasons.index("context changed")] = "context changed: %s" % detail
    return reasons or ["the image with this input hash is gone"]


def template_errors(templates):
    errors = []
    for template in templates:
        try:
            fields = {f for _unused, f, _unused, _unused in string.Formatter().parse(template) if f is not None}
        except ValueError as exc:
            errors.append("tag template %r: %s" % (template, exc))
            continue
        unknown = sorted(fields - set(TAG_FIELDS))
        if unknown:
            errors.append("tag template %r: unknown field %s (use %s)" % (template, ", ".join(unknown), ", ".join(TAG_FIELDS)))
            continue
        sample = template.format(timestamp="20260101-000000000", git_sha="0" * 12, hash="0" * 12)
        error = tag_error(sample)
        if error:
            errors.append("tag template %r: %s" % (template, error))
    return errors


def is_template(tag):
    return "{" in tag


def timestamp_tag(now):
    """yyyyMMdd-HHmmssSSS of a datetime."""
    return now.strftime("%Y%m%d-%H%M%S") + "%03d" % (now.microsecond // 1000)


def render_tags(templates, now, git_sha, digest):
    return [t.format(timestamp=timestamp_tag(now), git_sha=(git_sha or "")[:12], hash=digest[:12]) for t in templates]


def name_error(name):
    try:
        ref = parse_reference(name)
    except ValueError as exc:
        return str(exc)
    if ref.tag or ref.digest:
        return "name %r must not carry a tag or digest; use tags" % name
    return None


def parse_build_stream(events):
    """Steps run and cached, the image id and any error, from the engine's build stream."""
    steps, cached, image_id, error, log = 0, 0, None, None, []
    for event in events:
        if "error" in event:
            error = event.get("error") or (event.get("errorDetail") or {}).get("message")
        text = event.get("stream") or ""
        for line in text.splitlines():
            log.append(line)
            if STEP.match(line):
                steps += 1
            if "---> Using cache" in line:
                cached += 1
            if line.startswith("Successfully built "):
                image_id = line.split()[-1]
        aux = event.get("aux") or {}
        if aux.get("ID"):
            image_id = aux["ID"]
    return {"steps": steps, "steps_cached": cached, "image_id": image_id, "error": error, "log": log[-40:]}


def parse_push_stream(events):
    """Layers pushed and already present (short diff IDs), the digest, any error."""
    pushed, existing, digest, error = [], [], None, None
    for event in events:
        if "error" in event:
            error = event.get("error") or (event.get("errorDetail") or {}).get("message")
        layer, status = event.get("id"), event.get("status") or ""
        if layer and status == "Pushed":
            pushed.append(layer)
        elif layer and (status == "Layer already exists" or status.startswith("Mounted from")):
            existing.append(layer)
        aux = event.get("aux") or {}
        if aux.get("Digest"):
            digest = aux["Digest"]
    return {"pushed": pushed, "existing": existing, "digest": digest, "error": error}


def layer_bytes(diff_ids, manifest):
    """{short diff ID: compressed bytes} from the image's layers and its
    registry manifest, whose layers are listed in the same order."""
    return {diff_id.split(":", 1)[-1][:12]: layer["size"] for diff_id, layer in zip(diff_ids, manifest.get("layers") or [])}


def new_layers(image_layers, known_layers):
    """Layers of the image that no earlier image (base or previous build) had."""
    known = set(known_layers)
    return [layer for layer in image_layers if layer not in known]


def build_diff(before_hash, before_tags, after_hash, after_tags, pushed=()):
    """Ansible's diff of one build: the input hash the requested tags stand
    for and the tags, before and after; the tags sent to the registry, after."""
    before = {"input_hash": before_hash, "tags": sorted(before_tags)}
    after = {"input_hash": after_hash, "tags": sorted(after_tags)}
    if pushed:
        after["pushed"] = sorted(pushed)
    return {"before": before, "after": after}


# -- what a run does, once it knows what exists -------------------------------------------
PERMANENT_PUSH_ERRORS = ("unauthorized", "denied", "x509", "certificate", "authentication required")


def name_tags(name, repo_tags):
    """The tags of repository `name` among an image's RepoTags."""
    return [t for t in repo_tags or [] if t.startswith(name + ":")]


def existing_tags(name, literal_tags, repo_tags):
    """An image with the input hash is here already: (the tags it ends up
    with, the ones to add, the ones it had). The requested tags come first:
    callers print the first one."""
    requested = ["%s:%s" % (name, t) for t in literal_tags]
    had = name_tags(name, repo_tags)
    retag = [t for t in requested if t not in had]
    return requested + sorted(set(had) - set(requested)), retag, had


def decide(name, literal_tags, local_image, registry_found):
    """What a run does, in this order: an image here with the input hash
    gets the requested literal tags ("tag", no build); else an image in the
    registry with it is the result ("found"); else it builds ("build").
    `local_image`: the engine's image list entry; `registry_found`: {"tag",
    "digest"} of the registry's image, or None."""
    if local_image:
        tags, retag, had = existing_tags(name, literal_tags, local_image.get("RepoTags"))
        return {"action": "tag", "image_id": local_image["Id"], "tags": tags, "retag": retag, "had": had}
    if registry_found:
        return {"action": "found", "tags": ["%s:%s" % (name, registry_found["tag"])], "digest": registry_found["digest"]}
    return {"action": "build"}


def scan_order(literal_tags, registry_tags, scan):
    """The registry's tags to look for the input hash under: the requested
    literal tags it has, then the `scan` others that sort last (the newest,
    for timestamp tags)."""
    return [t for t in literal_tags if t in registry_tags] + sorted(set(registry_tags) - set(literal_tags), reverse=True)[:scan]


def needs_git_sha(templates):
    return any("{git_sha}" in t for t in templates)


def already_pushed(name, remote_digest, local_digests):
    """Whether the registry's manifest of a tag is this image's: the image
    knows it among its RepoDigests."""
    return bool(remote_digest) and "%s@%s" % (name, remote_digest) in local_digests


def permanent_push_error(message):
    """Whether a retry cannot help: credentials or TLS are wrong."""
    return any(word in message.lower() for word in PERMANENT_PUSH_ERRORS)


def registry_scheme(registry_config, registry):
    """How the engine talks to `registry`: http when its RegistryConfig
    (from the engine's info) marks it insecure or it is on loopback (the
    engine's own insecure range); else https."""
    secure = registry_config.get("IndexConfigs", {}).get(registry, {}).get("Secure", True)
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry.split("]")[0][1:]
    if host in ("localhost", "127.0.0.1", "::1") or host.startswith("127."):
        secure = False
    return "https" if secure else "http"
