"""Decisions of registry cleanup (Distribution, and Harbor's registry): the
retention candidates of what a registry holds, the order of deletes, and
which config describes which registry. Plain functions without I/O; the
clients that read and delete are in berth_registry_client."""

from ansible_collections.berth.ops.plugins.module_utils.berth_retention import Candidate, policy_plan, time_or_none


def platform_entry(entries):
    """The entry of an index (manifest list) whose config stands for the
    image: amd64's, else the first; None for an empty index."""
    entries = entries or []
    return next((m for m in entries if m.get("platform", {}).get("architecture") == "amd64"), entries[0] if entries else None)


# -- what storage holds ----------------------------------------------------------------
def manifest_children(document):
    """Digests that an index (manifest list) references; [] for an image."""
    return [entry["digest"] for entry in (document or {}).get("manifests") or [] if entry.get("digest")]


def layer_bytes(document):
    return sum(layer.get("size", 0) for layer in (document or {}).get("layers") or [])


def repository_candidates(repository, tags, revisions, documents, created=None):
    """The retention candidates of one Distribution repository.

    `tags`: {tag: (digest, push time)}; `revisions`: {digest: push time} of
    every manifest held; `documents`: {digest: parsed manifest or None};
    `created`: {digest: build time}. An index counts its per-platform
    manifests' layers and is known by their digests too, so a protected
    platform keeps its index. Revisions that no tag names and no index
    references are untagged candidates, arriving when they were pushed.

    Returns (candidates, {index identity: [child identities]}, {identity: own layer bytes}).
    """
    created = created or {}
    documents = documents or {}
    held = set(revisions) | {digest for digest, _unused in tags.values()}
    children = {digest: [c for c in manifest_children(documents.get(digest)) if c in held] for digest in held}
    referenced = {child for listed in children.values() for child in listed}
    own = {digest: layer_bytes(documents.get(digest)) for digest in held}

    def identity(digest):
        return "%s@%s" % (repository, digest)

    def make(tag, digest, arrived):
        kids = children.get(digest) or []
        names = (digest, identity(digest), *kids, *(identity(k) for k in kids))
        size = sum(own.get(k, 0) for k in kids) if kids else own.get(digest, 0)
        return Candidate(repository, tag, identity(digest), created=created.get(digest) or 0, arrived=arrived, size=size, digests=names)

    found = [make(tag, digest, pushed) for tag, (digest, pushed) in sorted(tags.items())]
    tagged = {digest for digest, _unused in tags.values()}
    for digest in sorted(set(revisions) - tagged - referenced):
        found.append(make(None, digest, revisions[digest]))
    index_children = {identity(d): [identity(k) for k in kids] for d, kids in children.items() if kids}
    return found, index_children, {identity(d): size for d, size in own.items()}


PLATFORM_OF_KEPT = "platform of a kept index"


def deletion_order(freed, children, kept_images, protected):
    """(first, then, held): what to delete, in two steps.

    `first`: the freed manifests, except any that an index which stays lists
    as a platform (`held`); `then`: the platforms of deleted indexes that
    nothing else keeps: no index that stays lists them, no kept tag names
    them, no protected reference (or bare digest) names them. Deleting the
    index first means a pull never finds an index whose platforms are gone.
    """
    deleting = set(freed)
    while True:
        listed = {child for index, kids in children.items() if index not in deleting for child in kids}
        held = deleting & listed
        if not held:
            break
        deleting -= held
    then = set()
    for index in deleting:
        for child in children.get(index) or []:
            digest = child.rsplit("@", 1)[1]
            if child in deleting or child in listed or child in kept_images or child in protected or digest in protected:
                continue
            then.add(child)
    return sorted(deleting), sorted(then), sorted(set(freed) - deleting)


def prune_plan(found, children, own, protected, policy, now):
    """What a prune deletes and in which order: (result fields, first, then).

    The retention plan over every candidate, then deletion_order on the
    images it frees: a freed manifest that an index which stays lists as a
    platform is kept (PLATFORM_OF_KEPT), and the platforms of deleted
    indexes go after them. `own` gives each identity's own bytes."""
    found_plan = policy_plan(found, policy, untag=False, protected=protected, now=now)
    items = found_plan["items"]
    kept_images = {item["image"] for item in items if item["action"] == "keep"}
    first, then, held = deletion_order(found_plan["images_freed"], children, kept_images, protected)
    for item in items:
        if item["image"] in held:
            item.update(action="keep", reasons=[PLATFORM_OF_KEPT])
    fields = {
        "plan": items,
        "kept": [item["ref"] for item in items if item["action"] == "keep"],
        "removed": [item["ref"] for item in items if item["action"] == "remove"],
        "planned": first + then,
        "planned_bytes": sum(own.get(identity, 0) for identity in first + then),
    }
    return fields, first, then


def registry_port(registry, scheme="https"):
    host, _unused, port = registry.rpartition(":")
    if host and port.isdigit() and "]" not in port:
        return int(port)
    return 443 if scheme == "https" else 80


def config_describes(config, registry, scheme="https"):
    """Whether a Distribution config.yml is the one of `registry`: it
    listens on the port the registry is reached on."""
    addr = str(((config or {}).get("http") or {}).get("addr") or ":5000")
    port = addr.rpartition(":")[2]
    return port.isdigit() and int(port) == registry_port(registry, scheme)


def config_deletes_enabled(config):
    """storage.delete.enabled of a Distribution config (off unless set)."""
    return ((((config or {}).get("storage") or {}).get("delete") or {}).get("enabled")) is True


def config_storage_root(config):
    return (((config or {}).get("storage") or {}).get("filesystem") or {}).get("rootdirectory")


def artifact_candidates(name, host, artifacts):
    """Harbor artifacts of one repository as retention candidates, tagged or
    not. Each is known by its digest, repo@digest and host/repo@digest, and
    an index by its platforms' digests too, so what a host runs is matched
    whether it still has a tag or not. An untagged platform manifest of an
    index goes with its index, never on its own."""
    found = []
    platforms = {r.get("child_digest") for artifact in artifacts for r in artifact.get("references") or []}
    for artifact in artifacts:
        digest = artifact["digest"]
        identity = "%s@%s" % (name, digest)
        created = time_or_none((artifact.get("extra_attrs") or {}).get("created")) or time_or_none(artifact.get("push_time")) or 0
        children = [r["child_digest"] for r in artifact.get("references") or [] if r.get("child_digest")]
        digests = tuple(form for d in (digest, *children) for form in (d, "%s@%s" % (name, d), "%s/%s@%s" % (host, name, d)))
        size = artifact.get("size", 0)
        tags = artifact.get("tags") or []
        if not tags and digest not in platforms:
            found.append(
                Candidate(
                    name, None, identity, created=created, arrived=time_or_none(artifact.get("push_time")), size=size, digests=digests
                )
            )
        for tag in tags:
            arrived = time_or_none(tag.get("push_time")) or time_or_none(artifact.get("push_time"))
            found.append(Candidate(name, tag["name"], identity, created=created, arrived=arrived, size=size, digests=digests))
    return found
