"""What registry_prune decides from a registry's contents: candidates from
Distribution storage (indexes, untagged manifests), the order of deletes,
Harbor artifacts, and which config describes which registry."""

from ansible_collections.berth.ops.plugins.module_utils.berth_registry import (
    PLATFORM_OF_KEPT,
    artifact_candidates,
    config_deletes_enabled,
    config_describes,
    config_storage_root,
    deletion_order,
    manifest_children,
    platform_entry,
    prune_plan,
    registry_port,
    repository_candidates,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_retention import GRACE, PROTECTED, plan
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = 1_000_000


def d(n):
    return "sha256:%064x" % n


def image(*sizes):
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [{"size": s} for s in sizes]}


def index(*children):
    return {"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"digest": c} for c in children]}


def registry_plan(found, children, own, protected=(), keep=0, grace=0):
    result = plan(found, untag=False, keep=keep, protected=set(protected), grace=grace, now=NOW)
    kept = {i["image"] for i in result["items"] if i["action"] == "keep"}
    first, then, held = deletion_order(result["images_freed"], children, kept, set(protected))
    assert not set(held) & set(first + then)
    return result, first, then, sum(own.get(i, 0) for i in first + then)


def test_an_index_counts_its_platforms_and_takes_them_along():
    documents = {d(1): index(d(2), d(3)), d(2): image(100, 20), d(3): image(50)}
    revisions = {d(1): 10, d(2): 9, d(3): 9}
    found, children, own = repository_candidates("app", {"1.0.0": (d(1), 10)}, revisions, documents)
    assert [(c.ref, c.size) for c in found] == [("app:1.0.0", 170)]  # not 0 bytes
    assert children == {"app@" + d(1): ["app@" + d(2), "app@" + d(3)]}
    _, first, then, freed = registry_plan(found, children, own)
    assert first == ["app@" + d(1)] and then == ["app@" + d(2), "app@" + d(3)]
    assert freed == 170


def test_a_protected_platform_keeps_its_index_and_a_shared_one_stays():
    documents = {d(1): index(d(2), d(3)), d(4): index(d(3), d(5)), d(2): image(1), d(3): image(2), d(5): image(4)}
    tags = {"old": (d(1), 1), "new": (d(4), 2)}
    found, children, own = repository_candidates("app", tags, dict.fromkeys(documents, 1), documents)
    # A host runs the amd64 manifest of "old": the whole index stays.
    result, first, then, _ = registry_plan(found, children, own, protected={d(2)})
    assert {i["ref"]: i["reasons"] for i in result["items"]}["app:old"] == [PROTECTED]
    assert first == [] or "app@" + d(1) not in first
    # Nothing protected, "new" kept by keep=1: "old" goes, its platform shared with "new" stays.
    result, first, then, freed = registry_plan(found, children, own, keep=1)
    assert first == ["app@" + d(1)] and then == ["app@" + d(2)] and freed == 1


def test_a_platform_with_its_own_kept_tag_stays():
    documents = {d(1): index(d(2)), d(2): image(8)}
    found, children, own = repository_candidates("app", {"multi": (d(1), 1), "amd64": (d(2), 5)}, dict.fromkeys(documents, 1), documents)
    result, first, then, _ = registry_plan(found, children, own, keep=1)
    assert result["kept"] == ["app:amd64"] and first == ["app@" + d(1)] and then == []


def test_untagged_revisions_are_candidates_protected_by_the_fleet():
    # "web:1.0" moved from d(1) to d(2); a host still runs d(1).
    documents = {d(1): image(10), d(2): image(20), d(7): index(d(8)), d(8): image(5)}
    revisions = {d(1): NOW - 100, d(2): NOW - 50, d(7): NOW - 10, d(8): NOW - 10}
    found, children, own = repository_candidates("web", {"1.0": (d(2), NOW - 50)}, revisions, documents)
    refs = sorted(c.ref for c in found)
    assert refs == ["web:1.0", "web@" + d(1), "web@" + d(7)]  # d(8) is a platform of d(7), not a candidate
    untagged = next(c for c in found if c.image == "web@" + d(1))
    assert untagged.tag is None and untagged.arrived == NOW - 100
    _, first, _, _ = registry_plan(found, children, own, keep=5, protected={"10.0.0.1:5000/web@" + d(1), d(1)})
    assert first == ["web@" + d(7)]  # the running old digest stays; the stray index goes
    _, first, then, _ = registry_plan(found, children, own, keep=5)
    assert first == ["web@" + d(1), "web@" + d(7)] and then == ["web@" + d(8)]
    result, first, _, _ = registry_plan(found, children, own, keep=5, grace=60)
    assert first == ["web@" + d(1)]
    assert {i["ref"]: i["reasons"] for i in result["items"]}["web@" + d(7)] == [GRACE]


def test_a_tagged_image_that_a_kept_index_lists_is_held_back():
    documents = {d(1): image(3), d(9): index(d(1))}
    found, children, _ = repository_candidates("app", {"1.0.0": (d(1), 1), "2.0.0": (d(9), 2)}, dict.fromkeys(documents, 1), documents)
    result = plan(found, untag=False, keep=1, now=NOW)
    assert result["images_freed"] == ["app@" + d(1)]  # the policy alone would delete it...
    kept = {i["image"] for i in result["items"] if i["action"] == "keep"}
    assert deletion_order(result["images_freed"], children, kept, set()) == ([], [], ["app@" + d(1)])  # ...but 2.0.0 needs it


def test_a_dangling_tag_link_without_a_revision_is_still_listed():
    found, _, _ = repository_candidates("app", {"x": (d(1), 3)}, {}, {})
    assert [(c.ref, c.size, c.arrived) for c in found] == [("app:x", 0, 3)]
    assert manifest_children(None) == [] and manifest_children(index(d(1))) == [d(1)]


# A random repository: images, indexes over them, tags on any of them.
@st.composite
def repositories(draw):
    singles = draw(st.integers(1, 6))
    documents = {d(n): image(n) for n in range(1, singles + 1)}
    for n in range(draw(st.integers(0, 3))):
        kids = draw(st.lists(st.sampled_from(sorted(documents)), min_size=1, max_size=3, unique=True))
        documents[d(100 + n)] = index(*[k for k in kids if k in documents and "manifests" not in documents[k]])
    digests = sorted(documents)
    tags = draw(st.dictionaries(st.sampled_from(["1.0.0", "1.1.0", "2.0.0", "latest", "rc"]), st.sampled_from(digests), max_size=4))
    held = draw(st.lists(st.sampled_from(digests), unique=True))
    revisions = {digest: NOW - 100 for digest in set(held) | set(tags.values())}
    for digest, document in list(documents.items()):
        if digest in revisions:
            revisions.update({c: NOW - 100 for c in manifest_children(document)})
    protected = set(draw(st.lists(st.sampled_from(digests), max_size=2)))
    keep = draw(st.integers(0, 3))
    return documents, {t: (g, NOW - 100) for t, g in tags.items()}, revisions, protected, keep


@settings(max_examples=400, deadline=None)
@given(repositories())
def test_nothing_protected_or_kept_is_ever_deleted(case):
    documents, tags, revisions, protected, keep = case
    found, children, own = repository_candidates("app", tags, revisions, documents)
    result, first, then, _ = registry_plan(found, children, own, protected=protected, keep=keep)
    deleted = {identity.rsplit("@", 1)[1] for identity in first + then}
    kept_tags = {t for t in tags if "app:" + t in result["kept"]}
    assert not deleted & protected  # what the fleet runs stays, as manifest or platform
    for t in kept_tags:
        digest = tags[t][0]
        assert digest not in deleted  # a kept tag still pulls
        assert not set(manifest_children(documents[digest])) & deleted  # ... on every platform
    for identity in first:  # every index that stays keeps all its platforms
        assert identity not in then
    staying = set(revisions) - deleted
    for digest in staying:
        assert not set(manifest_children(documents.get(digest))) & deleted


def test_the_prune_plan_keeps_a_platform_that_a_kept_index_lists_and_says_why():
    documents = {d(1): image(3), d(9): index(d(1)), d(5): image(7)}
    tags = {"1.0.0": (d(1), 1), "2.0.0": (d(9), 2), "0.1.0": (d(5), 0)}
    found, children, own = repository_candidates("app", tags, dict.fromkeys(documents, 1), documents)
    fields, first, then = prune_plan(found, children, own, set(), {"keep": 1, "keep_patterns": [], "grace": 0}, NOW)
    assert first == ["app@" + d(5)] and then == []
    reasons = {item["ref"]: (item["action"], item["reasons"]) for item in fields["plan"]}
    assert reasons["app:1.0.0"] == ("keep", [PLATFORM_OF_KEPT])  # the policy alone would delete it
    assert fields["kept"] == ["app:1.0.0", "app:2.0.0"] and fields["removed"] == ["app:0.1.0"]
    assert fields["planned"] == first + then and fields["planned_bytes"] == 7


@settings(max_examples=200, deadline=None)
@given(repositories())
def test_the_prune_plan_deletes_what_plan_and_deletion_order_free(case):
    documents, tags, revisions, protected, keep = case
    found, children, own = repository_candidates("app", tags, revisions, documents)
    fields, first, then = prune_plan(found, children, own, protected, {"keep": keep, "keep_patterns": [], "grace": 0}, NOW)
    _, expected_first, expected_then, freed = registry_plan(found, children, own, protected=protected, keep=keep)
    assert (first, then, fields["planned_bytes"]) == (expected_first, expected_then, freed)
    for item in fields["plan"]:  # a reference is removed exactly when its manifest goes first
        assert (item["action"] == "remove") == (item["image"] in first), item
    assert not set(fields["kept"]) & set(fields["removed"])


def test_an_indexs_config_is_read_from_its_amd64_platform():
    arm, amd = {"digest": d(1), "platform": {"architecture": "arm64"}}, {"digest": d(2), "platform": {"architecture": "amd64"}}
    assert platform_entry([arm, amd]) == amd and platform_entry([arm]) == arm
    assert platform_entry([]) is None and platform_entry(None) is None


def test_harbor_untagged_artifacts_are_protected_by_digest():
    artifacts = [
        {"digest": d(1), "tags": None, "push_time": "2020-01-01T00:00:00.000Z", "size": 5},
        {"digest": d(2), "tags": [{"name": "1.0", "push_time": "2020-01-02T00:00:00+02:00"}], "size": 6},
        {"digest": d(3), "tags": [], "references": [{"child_digest": d(4)}], "size": 9},
        {"digest": d(4), "tags": [], "size": 4},
    ]
    found = artifact_candidates("lab/web", "harbor.example", artifacts)
    assert sorted(c.ref for c in found) == ["lab/web:1.0", "lab/web@" + d(1), "lab/web@" + d(3)]  # d(4) goes with d(3)
    untagged = next(c for c in found if c.image == "lab/web@" + d(1))
    assert "harbor.example/lab/web@" + d(1) in untagged.digests and d(1) in untagged.digests
    assert next(c for c in found if c.tag == "1.0").arrived == 1577916000.0  # +02:00 honoured
    fleet = {"harbor.example/lab/web@" + d(1), "harbor.example/lab/web@" + d(4)}
    result = plan(found, untag=False, keep=0, protected=fleet, now=NOW)
    assert result["images_freed"] == ["lab/web@" + d(2)]


def test_which_config_describes_which_registry():
    config = {"http": {"addr": ":5000"}, "storage": {"delete": {"enabled": True}, "filesystem": {"rootdirectory": "/srv/reg"}}}
    assert config_describes(config, "10.0.0.1:5000") and not config_describes(config, "127.0.0.1:5099")
    assert config_describes({"http": {"addr": "0.0.0.0:443"}}, "registry.example")
    assert config_describes({"http": {"addr": ":80"}}, "registry.example", scheme="http")
    assert registry_port("[::1]:5001") == 5001 and registry_port("[::1]") == 443
    assert config_deletes_enabled(config) and not config_deletes_enabled({"storage": {"delete": {"enabled": False}}})
    assert not config_deletes_enabled({}) and not config_deletes_enabled({"storage": {"delete": {"enabled": "yes"}}})
    assert config_storage_root(config) == "/srv/reg" and config_storage_root(None) is None
