"""The retention policy: one function decides which image tags to keep and
which to remove, on a Docker host and in a registry alike.

A candidate is one tag (or one untagged image) with what is known about it.
Every rule that keeps it is recorded, so a plan can say why.

Also here, shared by docker_image_prune and registry_prune: the policy's
option spec, its validation, the fleet's completeness, and one time parser.
"""

import datetime
import fnmatch
import re

# MAJOR.MINOR[.PATCH][-pre][+build], optional "v"; a bare number (a build
# counter, a timestamp) is not taken for a version, a v-prefixed one is.
SEMVER = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
V_MAJOR = re.compile(r"^v(\d+)$")
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# RFC 3339 as Docker, Distribution and Harbor write it; fraction and offset optional.
TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$")
# Characters of a tag (Docker's reference grammar) plus glob syntax.
TAG_GLOB = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]+$")

MAX_KEEP = 1000
MAX_GRACE = 10 * 365 * 86400
MAX_CONCURRENCY = 64  # requests or removals a prune module runs at once

IN_USE = "in use"
PROTECTED = "protected"
PATTERN = "keep pattern"
NEWEST = "newest"
GRACE = "grace period"

# The policy, as both modules take it: option `policy`, these suboptions.
POLICY_SPEC = {
    "keep": {"type": "int", "default": 5},
    "keep_patterns": {"type": "list", "elements": "str", "default": []},
    "grace": {"type": "raw", "default": "24h"},
    "repositories": {"type": "list", "elements": "str", "default": []},
}
POLICY_OPTION = {"type": "dict", "options": POLICY_SPEC, "apply_defaults": True, "default": {}}

# What the fleet runs, as registry_prune takes it: every Docker host that
# must report, and the digests each one that did report uses.
FLEET_SPEC = {
    "hosts": {"type": "list", "elements": "str", "required": True},
    "in_use": {"type": "dict", "default": {}},
}
FLEET_OPTION = {"type": "dict", "options": FLEET_SPEC, "required": True}


class Candidate:
    """One tag of a repository (tag None: an untagged image).

    `image` is what removal frees: an image ID on a host, a manifest digest
    in a registry. `arrived` is when it reached this host or registry (pull
    or push time), `created` when it was built. `digests` are every other
    name it is known by (repo digests, an index's per-platform manifests).
    """

    __slots__ = ("arrived", "created", "digests", "image", "repository", "size", "tag")

    def __init__(self, repository, tag, image, created=0, arrived=None, size=0, digests=()):
        self.repository = repository
        self.tag = tag
        self.image = image
        self.created = created or 0
        self.arrived = self.created if arrived is None else arrived
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


def parse_time(text):
    """Epoch seconds of an RFC 3339 time, honouring its offset; None for an
    empty value or Docker's zero time (0001-01-01). Any fraction length is
    accepted; a time without an offset is taken as UTC. ValueError otherwise."""
    if text is None or text == "" or str(text).startswith("0001-01-01"):
        return None
    match = TIME.match(str(text).strip())
    if not match:
        raise ValueError("%r is not an RFC 3339 time" % (text,))
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    fraction, _zulu, sign, off_hours, off_minutes = match.group(7, 8, 9, 10, 11)
    offset = datetime.timedelta(0)
    if sign:
        offset = datetime.timedelta(hours=int(off_hours), minutes=int(off_minutes))
        if offset >= datetime.timedelta(hours=24):
            raise ValueError("%r has an offset of 24 hours or more" % (text,))
        if sign == "-":
            offset = -offset
    moment = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.timezone(offset))
    return moment.timestamp() + (float("0." + fraction) if fraction else 0.0)


def time_or_none(text):
    """parse_time, with an unreadable time taken as unknown."""
    try:
        return parse_time(text)
    except (ValueError, OverflowError):
        return None


def semver_key(tag):
    """Sortable version of a semver-like tag, or None.

    A release ranks above its pre-releases; pre-release identifiers compare
    numerically when numeric, as in semver 2.0.
    """
    major = V_MAJOR.match(tag or "")
    if major:
        return (int(major.group(1)), 0, 0, 1, ())
    match = SEMVER.match(tag or "")
    if not match:
        return None
    core = tuple(int(part or 0) for part in match.group(1, 2, 3))
    pre = match.group(4)
    if pre is None:
        return (*core, 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*core, 0, parts)


def is_prerelease(tag):
    version = semver_key(tag)
    return version is not None and version[3] == 0


def order_key(candidate):
    """Newest first, for the keep slots: releases by version, then
    pre-releases by version (a pre-release never pushes a release out),
    then every other tag by when it arrived here."""
    version = semver_key(candidate.tag)
    if version is not None:
        return (2 if version[3] else 1, version, candidate.arrived, candidate.tag)
    return (0, (), candidate.arrived, candidate.tag or "")


def glob_errors(glob):
    """Why fnmatch would read `glob` other than as written, or []: a [ with no
    closing ], a ] outside a class, an empty class, a reversed range."""
    errors, index = [], 0
    while index < len(glob):
        char = glob[index]
        if char == "]":
            errors.append("has a ] with no opening [")
        elif char == "[":
            start = index + 1
            if start < len(glob) and glob[start] == "!":
                start += 1
            if start < len(glob) and glob[start] == "]":
                # fnmatch reads "[]...]" as a class holding "]": refuse the ambiguity.
                errors.append("has an empty [] (fnmatch would read its ] as a member)")
                start += 1
            end = glob.find("]", start)
            if end < 0:
                errors.append("has a [ with no closing ]")
                break
            members = glob[start:end]
            for low, high in re.findall(r"(.)-(.)", members):
                if low > high:
                    errors.append("has a reversed range %s-%s" % (low, high))
            index = end
        index += 1
    return errors


def pattern_errors(pattern):
    """Errors of one keep pattern: a tag glob, or repo-glob:tag-glob."""
    if not isinstance(pattern, str) or not pattern.strip():
        return ["is not a pattern"]
    if pattern != pattern.strip():
        return ["has leading or trailing spaces"]
    if ":" in pattern:
        repository, tag = pattern.rsplit(":", 1)
        if not repository or not tag:
            return ["is repo:tag with an empty %s side" % ("repository" if not repository else "tag")]
    else:
        repository, tag = None, pattern
    errors = []
    if not TAG_GLOB.match(tag):
        errors.append("has a tag part %r with characters no tag has (a repository pattern needs :TAG-GLOB)" % tag)
    errors += glob_errors(tag)
    if repository is not None:
        errors += glob_errors(repository)
    return errors


def policy_errors(keep, patterns, grace, repositories=(), field="policy"):
    """Every problem of a policy, each naming its field."""
    errors = []
    if isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep <= MAX_KEEP:
        errors.append("%s.keep must be a whole number of tags from 0 to %d, got %r" % (field, MAX_KEEP, keep))
    if not isinstance(patterns, (list, tuple)):
        errors.append("%s.keep_patterns must be a list, got %r" % (field, patterns))
        patterns = []
    for index, pattern in enumerate(patterns):
        for problem in pattern_errors(pattern):
            errors.append("%s.keep_patterns[%d]: %r %s" % (field, index, pattern, problem))
    for index, glob in enumerate(repositories or []):
        if not isinstance(glob, str) or not glob.strip():
            errors.append("%s.repositories[%d]: %r is not a pattern" % (field, index, glob))
            continue
        for problem in glob_errors(glob):
            errors.append("%s.repositories[%d]: %r %s" % (field, index, glob, problem))
    try:
        if parse_duration(grace) > MAX_GRACE:
            errors.append("%s.grace: %r is more than ten years" % (field, grace))
    except ValueError as exc:
        errors.append("%s.grace: %s" % (field, exc))
    return errors


def policy_option_errors(policy):
    """policy_errors() of the module option `policy` (POLICY_SPEC)."""
    return policy_errors(policy["keep"], policy["keep_patterns"], policy["grace"], policy["repositories"])


def concurrency_errors(concurrency):
    """The prune modules' `concurrency` option out of range."""
    if 1 <= concurrency <= MAX_CONCURRENCY:
        return []
    return ["concurrency must be from 1 to %d, got %d" % (MAX_CONCURRENCY, concurrency)]


def fleet_errors(fleet):
    """Malformed fleet data (bad input), not missing hosts."""
    errors = []
    hosts = fleet.get("hosts")
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        errors.append("fleet.hosts must be a list of host names")
    in_use = fleet.get("in_use") or {}
    if not isinstance(in_use, dict):
        errors.append("fleet.in_use must map host names to lists of digests")
        return errors
    for host, refs in in_use.items():
        if not isinstance(refs, list) or not all(isinstance(ref, str) for ref in refs):
            errors.append("fleet.in_use[%s] must be a list of image references or digests" % host)
    return errors


def fleet_missing(fleet):
    """Docker hosts that must report and did not: while any is missing, no
    registry may delete, since what it runs is unknown."""
    reported = fleet.get("in_use") or {}
    return sorted({host for host in fleet.get("hosts") or [] if not isinstance(reported.get(host), list)})


def fleet_digests(fleet):
    """Every reference that any reporting host runs."""
    return sorted({ref for refs in (fleet.get("in_use") or {}).values() if isinstance(refs, list) for ref in refs})


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
    errors = policy_errors(keep, list(patterns), grace)
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


def policy_plan(candidates, policy, untag, **facts):
    """plan() with the module option `policy` (POLICY_SPEC) as its rules;
    `facts` are what the caller knows besides (in_use, protected, now)."""
    return plan(candidates, untag=untag, keep=policy["keep"], patterns=policy["keep_patterns"], grace=policy["grace"], **facts)


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


def arrival_times(state, images, now):
    """When each image arrived on a host, and the module's new record.

    `state`: {image id: first seen} as recorded by earlier runs; `images`:
    {image id: LastTagTime or None} of the images there now. An image not in
    the record is first seen at its LastTagTime when it has one (a local tag
    is a true arrival), else `now`: Docker keeps no pull time, so a pulled
    image counts from the first run that saw it. Arrival is the later of
    first seen and LastTagTime (a re-tag is an arrival). Ids no longer on
    the host drop out, so the record stays the size of the host.
    """
    state = state if isinstance(state, dict) else {}
    arrived, record = {}, {}
    for image, tagged in images.items():
        seen = state.get(image)
        if isinstance(seen, bool) or not isinstance(seen, (int, float)):
            seen = tagged if tagged is not None else now
        record[image] = float(seen)
        arrived[image] = max(float(seen), tagged or 0.0)
    return arrived, dict(sorted(record.items()))


def plan_diff(kept, removed, where):
    """The --diff view of a prune plan: the references `where` holds before,
    and the ones it keeps after (the removed ones are the lines that go)."""
    before = sorted(set(kept) | set(removed))
    return {
        "before_header": "%s (before)" % where,
        "after_header": "%s (after)" % where,
        "before": "".join(ref + "\n" for ref in before),
        "after": "".join(ref + "\n" for ref in sorted(set(kept))),
    }
