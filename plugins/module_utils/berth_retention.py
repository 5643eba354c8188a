"""The retention policy: one function decides which image tags to keep and
which to remove, on a Docker host and in a registry alike.

A candidate is one tag (or one untagged image) with what is known about it.
Every rule that keeps it is recorded, so a plan can say why.
"""

import fnmatch
import re

# MAJOR.MINOR[.PATCH][-pre][+build], optional "v"; a bare number (a build
# counter, a timestamp) is not taken for a version.
SEMVER = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

IN_USE = "in use"
PROTECTED = "protected"
PATTERN = "keep pattern"
NEWEST = "newest"
GRACE = "grace period"


class Candidate:
    """One tag of a repository (tag None: an untagged, dangling image).

    `image` is what removal frees: an image ID on a host, a manifest digest
    in a registry. `arrived` is when it reached this host or registry (pull
    or push time), `created` when it was built.
    """

    __slots__ = ("arrived", "created", "digests", "image", "repository", "size", "tag")

    def __init__(self, repository, tag, image, created=0, arrived=None, size=0, digests=()):
        self.repository = repository
        self.tag = tag
        self.image = image
        self.created = created or 0
        self.arrived = created if arrived is None else arrived
        self.size = size or 0
        self.digests = tuple(digests)

    @property
    def ref(self):
        if self.tag is None:
            return self.image
        return "%s:%s" % (self.repository, self.tag)

    def key(self):
        return (self.repository or "", self.tag or "", self.image)


def parse_duration(value):
    """Seconds in '90', '90s', '15m', '24h', '7d', '2w' (or a number)."""
    if isinstance(value, bool):
        raise ValueError("%r is not a duration" % value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = DURATION.match(str(value))
        if not match:
            raise ValueError("%r is not a duration like 90s, 15m, 24h, 7d" % (value,))
        seconds = float(match.group(1)) * UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError("%r is negative" % (value,))
    return seconds


def semver_key(tag):
    """Sortable version of a semver-like tag, or None.

    A release ranks above its pre-releases; pre-release identifiers compare
    numerically when numeric, as in semver 2.0.
    """
    match = SEMVER.match(tag or "")
    if not match:
        return None
    core = tuple(int(part or 0) for part in match.group(1, 2, 3))
    pre = match.group(4)
    if pre is None:
        return (*core, 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*core, 0, parts)


def order_key(candidate):
    """Newest first: semver tags by version, the rest by creation time."""
    version = semver_key(candidate.tag)
    if version is not None:
        return (1, version, candidate.created, candidate.tag)
    return (0, (), candidate.created, candidate.tag or "")


def policy_errors(keep, patterns, grace):
    errors = []
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        errors.append("keep must be a whole number of tags, 0 or more, got %r" % (keep,))
    for index, pattern in enumerate(patterns or []):
        if not isinstance(pattern, str) or not pattern.strip():
            errors.append("keep_patterns[%d]: %r is not a pattern" % (index, pattern))
        elif pattern.count("[") != pattern.count("]"):
            errors.append("keep_patterns[%d]: %r has an unbalanced [ ]" % (index, pattern))
    try:
        parse_duration(grace)
    except ValueError as exc:
        errors.append("grace: %s" % exc)
    return errors


def _matches(candidate, pattern):
    if ":" in pattern:
        repo_pattern, tag_pattern = pattern.rsplit(":", 1)
        return fnmatch.fnmatchcase(candidate.repository or "", repo_pattern) and fnmatch.fnmatchcase(candidate.tag or "", tag_pattern)
    return candidate.tag is not None and fnmatch.fnmatchcase(candidate.tag, pattern)


def decide(candidates, keep=5, in_use=(), protected=(), patterns=(), grace=0, now=0):
    """Keep or remove each candidate.

    Returns {candidate key: [reasons to keep]}; an empty list means remove.
    - `in_use`: images (IDs or digests) used by a container, running or stopped;
    - `protected`: refs, digests or image IDs that must stay (e.g. the fleet's);
    - `patterns`: tag globs ('release-*') or 'repo-glob:tag-glob';
    - `keep`: newest tags per repository, in the order_key order;
    - `grace`: seconds after arrival during which anything stays.
    """
    errors = policy_errors(keep, patterns, grace)
    if errors:
        raise ValueError("; ".join(errors))
    grace_seconds = parse_duration(grace)
    in_use, protected = set(in_use), set(protected)
    reasons = {}
    by_repository = {}
    for candidate in candidates:
        kept = []
        identities = {candidate.image, *candidate.digests}
        if identities & in_use:
            kept.append(IN_USE)
        if identities & protected or candidate.ref in protected:
            kept.append(PROTECTED)
        if any(_matches(candidate, pattern) for pattern in patterns):
            kept.append(PATTERN)
        if grace_seconds and now - candidate.arrived < grace_seconds:
            kept.append(GRACE)
        reasons[candidate.key()] = kept
        if candidate.tag is not None:
            by_repository.setdefault(candidate.repository, []).append(candidate)
    for tags in by_repository.values():
        for candidate in sorted(tags, key=order_key, reverse=True)[:keep]:
            reasons[candidate.key()].append(NEWEST)
    return reasons


def removable_images(candidates, reasons):
    """Images all of whose candidates go: only these free space.

    On a registry this is the tag-safe rule: a digest shared with a kept tag
    is never deleted.
    """
    keeps = {}
    for candidate in candidates:
        keeps.setdefault(candidate.image, []).append(bool(reasons[candidate.key()]))
    return {image for image, kept in keeps.items() if not any(kept)}


SHARED = "shares its image with a kept tag"


def _action(kept, image_goes, untag):
    if kept:
        return "keep"
    if image_goes:
        return "remove"
    return "untag" if untag else "keep"


def plan(candidates, untag=True, **policy):
    """The whole plan: every candidate with its action and reasons, the
    images that go, and the bytes that frees.

    An unkept tag whose image stays for another tag is untagged on a host
    (`untag=True`) and left alone in a registry, where deleting the digest
    would take the kept tag with it.
    """
    candidates = list(candidates)
    reasons = decide(candidates, **policy)
    going = removable_images(candidates, reasons)
    sizes = {c.image: c.size for c in candidates}
    items = []
    for c in candidates:
        kept = sorted(reasons[c.key()])
        action = _action(kept, c.image in going, untag)
        if action == "keep" and not kept:
            kept = [SHARED]
        items.append(
            {"ref": c.ref, "repository": c.repository, "tag": c.tag, "image": c.image, "action": action, "reasons": kept, "size": c.size}
        )
    items.sort(key=lambda item: (item["repository"] or "", item["tag"] or "", item["image"]))
    return {
        "items": items,
        "kept": [i["ref"] for i in items if i["action"] == "keep"],
        "removed": [i["ref"] for i in items if i["action"] == "remove"],
        "untagged": [i["ref"] for i in items if i["action"] == "untag"],
        "images_freed": sorted(going),
        "bytes": sum(sizes[image] for image in going),
    }
