import random

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_retention import (
    GRACE,
    IN_USE,
    NEWEST,
    PATTERN,
    PROTECTED,
    SHARED,
    Candidate,
    decide,
    order_key,
    parse_duration,
    plan,
    policy_errors,
    semver_key,
)
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = 1_000_000


def tag(repo, name, image=None, created=0, arrived=None, size=10, digests=()):
    return Candidate(repo, name, image or "%s-%s" % (repo, name), created=created, arrived=arrived, size=size, digests=digests)


def test_semver_tags_order_by_version_not_by_build_time():
    tags = [
        tag("app", "1.10.0", created=1),
        tag("app", "1.9.0", created=5),
        tag("app", "1.10.0-rc.2", created=9),
        tag("app", "v2.0", created=2),
    ]
    ordered = [c.tag for c in sorted(tags, key=order_key, reverse=True)]
    assert ordered == ["v2.0", "1.10.0", "1.10.0-rc.2", "1.9.0"]
    assert semver_key("1.0.0-rc.10") > semver_key("1.0.0-rc.9")
    assert semver_key("latest") is None


def test_other_tags_order_by_creation_time():
    tags = [tag("app", "20261101-101010000", created=1), tag("app", "20261102-101010000", created=2), tag("app", "abc123", created=3)]
    assert [c.tag for c in sorted(tags, key=order_key, reverse=True)] == ["abc123", "20261102-101010000", "20261101-101010000"]


def test_every_rule_and_its_reason():
    candidates = [
        tag("app", "1.0.0", created=1, arrived=1),
        tag("app", "1.1.0", created=2, arrived=2),
        tag("app", "1.2.0", created=3, arrived=3),
        tag("app", "release-7", created=0, arrived=0),
        tag("app", "0.9.0", image="running", created=0, arrived=0),
        tag("app", "0.8.0", created=0, arrived=0, digests=["sha256:deployed"]),
        tag("app", "0.1.0", created=0, arrived=NOW - 10),
        Candidate(None, None, "dangling", created=0, arrived=0),
    ]
    reasons = decide(candidates, keep=2, in_use={"running"}, protected={"sha256:deployed"}, patterns=["release-*"], grace=60, now=NOW)
    by_ref = {c.ref: sorted(reasons[c.key()]) for c in candidates}
    assert by_ref == {
        "app:1.0.0": [],
        "app:1.1.0": [NEWEST],
        "app:1.2.0": [NEWEST],
        "app:release-7": [PATTERN],
        "app:0.9.0": [IN_USE],
        "app:0.8.0": [PROTECTED],
        "app:0.1.0": [GRACE],
        "dangling": [],
    }


def test_grace_counts_from_arrival_not_from_build():
    # Built long ago, pulled a minute ago: docker-custodian's mistake, avoided.
    old_build_fresh_pull = tag("app", "0.0.1", created=0, arrived=NOW - 60)
    assert decide([old_build_fresh_pull], keep=0, grace="1h", now=NOW)[old_build_fresh_pull.key()] == [GRACE]


def test_repo_qualified_patterns():
    base = tag("base/os", "1")
    app = tag("lab/web", "1")
    reasons = decide([base, app], keep=0, patterns=["base/*:*"])
    assert reasons[base.key()] == [PATTERN] and reasons[app.key()] == []


def test_a_digest_shared_with_a_kept_tag_is_never_removed():
    latest = tag("app", "latest", image="sha256:a", created=5)
    old_name = tag("app", "1.0.0", image="sha256:a", created=1)
    other = tag("app", "0.9.0", image="sha256:b", created=0)
    result = plan([latest, old_name, other], untag=False, keep=0, patterns=["latest"])
    assert result["images_freed"] == ["sha256:b"]
    assert {i["ref"]: (i["action"], i["reasons"]) for i in result["items"]}["app:1.0.0"] == ("keep", [SHARED])
    assert plan([latest, old_name, other], untag=True, keep=0, patterns=["latest"])["untagged"] == ["app:1.0.0"]


def test_bytes_count_only_images_that_really_go():
    a = tag("app", "1", image="i1", size=100)
    b = tag("app", "2", image="i1", size=100)
    c = tag("app", "3", image="i2", size=7)
    assert plan([a, b, c], keep=0)["bytes"] == 107
    assert plan([a, b, c], keep=0, patterns=["1"])["bytes"] == 7


@pytest.mark.parametrize(
    ("keep", "patterns", "grace", "message"),
    [
        (-1, [], 0, "keep must be a whole number"),
        (True, [], 0, "keep must be a whole number"),
        (3, ["release-[0-9"], 0, "unbalanced"),
        (3, [""], 0, "is not a pattern"),
        (3, [], "soon", "grace: 'soon' is not a duration"),
        (3, [], -5, "grace: -5 is negative"),
    ],
)
def test_bad_policy_is_named(keep, patterns, grace, message):
    assert message in "; ".join(policy_errors(keep, patterns, grace))
    with pytest.raises(ValueError):
        decide([], keep=keep, patterns=patterns, grace=grace)


def test_durations():
    assert parse_duration("90") == 90
    assert parse_duration("15m") == 900
    assert parse_duration("1.5h") == 5400
    assert parse_duration(7) == 7


# -- properties ---------------------------------------------------------------
repos = st.sampled_from(["app", "web", "base/os"])
tag_names = st.one_of(
    st.builds(lambda a, b, c: "%d.%d.%d" % (a, b, c), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
    st.sampled_from(["latest", "release-1", "release-2", "stable", "abc", "20261101-000000000"]),
)
images = st.sampled_from(["i%d" % n for n in range(12)])
candidate = st.builds(
    lambda repo, name, image, created, age: Candidate(
        repo if name else None, name, image, created=created, arrived=NOW - age, size=1, digests=("d-" + image,)
    ),
    repos,
    st.one_of(st.none(), tag_names),
    images,
    st.integers(0, 1000),
    st.integers(0, 10_000),
)
# A tag names one image; an untagged image appears once.
candidate_lists = st.lists(candidate, max_size=40, unique_by=lambda c: (c.repository, c.tag) if c.tag else (None, c.image))
policies = st.fixed_dictionaries(
    {
        "keep": st.integers(0, 4),
        "in_use": st.sets(images, max_size=3),
        "protected": st.sets(st.one_of(images.map(lambda i: "d-" + i), st.just("app:latest")), max_size=3),
        "patterns": st.lists(st.sampled_from(["release-*", "latest", "base/*:*"]), max_size=2),
        "grace": st.sampled_from([0, 60, "1h"]),
    }
)


@settings(max_examples=300, deadline=None)
@given(candidate_lists, policies)
def test_in_use_or_protected_is_never_removed(candidates, policy):
    result = plan(candidates, now=NOW, **policy)
    going = set(result["images_freed"])
    for c in candidates:
        guarded = c.image in policy["in_use"] or set(c.digests) & policy["protected"] or c.ref in policy["protected"]
        if guarded:
            assert c.image not in going
            assert c.ref not in result["removed"] and c.ref not in result["untagged"]


@settings(max_examples=300, deadline=None)
@given(candidate_lists, policies)
def test_keep_n_always_holds(candidates, policy):
    result = plan(candidates, now=NOW, **policy)
    for repository in {c.repository for c in candidates if c.tag is not None}:
        tags = sorted((c for c in candidates if c.repository == repository and c.tag is not None), key=order_key, reverse=True)
        for c in tags[: policy["keep"]]:
            assert c.ref in result["kept"]
            assert c.image not in result["images_freed"]


@settings(max_examples=200, deadline=None)
@given(candidate_lists, policies, st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_input_order(candidates, policy, rnd):
    shuffled = list(candidates)
    rnd.shuffle(shuffled)
    assert plan(shuffled, now=NOW, **policy) == plan(candidates, now=NOW, **policy)


def test_ten_thousand_images_plan_quickly_enough_to_run_often():
    # Functional check only: the timing figure lives in `make bench`.
    rnd = random.Random(7)
    candidates = [Candidate("repo%d" % (n % 200), "1.%d.%d" % (n // 200, n % 7), "img%d" % n, created=n, size=1) for n in range(10_000)]
    result = plan(candidates, keep=5, in_use={"img1"}, now=NOW)
    assert len(result["kept"]) >= 200 * 5
    rnd.shuffle(candidates)
