import datetime
import fnmatch
import random

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_retention import (
    FLEET_SPEC,
    GRACE,
    IN_USE,
    NEWEST,
    PATTERN,
    POLICY_SPEC,
    PROTECTED,
    SHARED,
    Candidate,
    arrival_times,
    concurrency_errors,
    decide,
    fleet_digests,
    fleet_errors,
    fleet_missing,
    glob_errors,
    is_prerelease,
    order_key,
    parse_duration,
    parse_time,
    pattern_errors,
    plan,
    plan_diff,
    policy_errors,
    policy_option_errors,
    policy_plan,
    semver_key,
    time_or_none,
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
    assert ordered == ["v2.0", "1.10.0", "1.9.0", "1.10.0-rc.2"]
    assert semver_key("1.0.0-rc.10") > semver_key("1.0.0-rc.9")
    assert semver_key("latest") is None


def test_other_tags_order_by_arrival_not_build_time():
    tags = [
        tag("app", "20261101-101010000", created=9, arrived=1),
        tag("app", "20261102-101010000", created=8, arrived=2),
        tag("app", "abc123", created=1, arrived=3),
    ]
    assert [c.tag for c in sorted(tags, key=order_key, reverse=True)] == ["abc123", "20261102-101010000", "20261101-101010000"]
    # Rebuilt long ago, pushed last: it is the newest tag, so keep=1 keeps it.
    reasons = decide(tags, keep=1)
    assert [c.tag for c in tags if reasons[c.key()]] == ["abc123"]


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
        (3, ["release-[0-9"], 0, "has a [ with no closing ]"),
        (3, ["]a["], 0, "has a ] with no opening ["),
        (3, ["rel[]"], 0, "has an empty []"),
        (3, ["[!]x"], 0, "has an empty []"),
        (3, [":latest"], 0, "empty repository side"),
        (3, ["lab/*:"], 0, "empty tag side"),
        (3, ["10.0.0.1:5000/app"], 0, "characters no tag has"),
        (3, ["v[9-1]"], 0, "reversed range 9-1"),
        (1001, [], 0, "from 0 to 1000"),
        (3, [], "3651d", "more than ten years"),
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


# -- versions and the keep slots -------------------------------------------------
def test_v_prefixed_majors_are_versions_bare_numbers_are_not():
    assert semver_key("v2") == semver_key("2.0.0") == semver_key("v2.0")
    assert semver_key("v10") > semver_key("v9") > semver_key("1.9.9")
    assert semver_key("2") is None and semver_key("20261101") is None and semver_key("v") is None
    ordered = [c.tag for c in sorted([tag("a", "v2"), tag("a", "v10"), tag("a", "v1.5")], key=order_key, reverse=True)]
    assert ordered == ["v10", "v2", "v1.5"]


def test_a_pre_release_never_pushes_a_release_out():
    # 1.10.0-rc1 is the highest version, but 1.9.0 is the rollback target.
    tags = [tag("app", "1.10.0-rc1", arrived=9), tag("app", "1.9.0", arrived=5), tag("app", "1.8.0", arrived=1)]
    reasons = decide(tags, keep=2)
    assert {c.tag for c in tags if reasons[c.key()]} == {"1.9.0", "1.8.0"}
    # A free slot still goes to the pre-release.
    reasons = decide(tags, keep=3)
    assert all(reasons[c.key()] == [NEWEST] for c in tags)
    assert is_prerelease("1.10.0-rc1") and not is_prerelease("1.10.0") and not is_prerelease("latest")


# -- time ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2026-01-01T00:00:00Z", 1767225600.0),
        ("2026-01-01T07:00:00+07:00", 1767225600.0),  # the offset is honoured, not dropped
        ("2025-12-31T19:30:00-04:30", 1767225600.0),
        ("2026-01-01T00:00:00.5Z", 1767225600.5),
        ("2026-01-01T00:00:00.123456789+00:00", 1767225600.123457),  # Docker's nanoseconds
        ("2026-01-01T00:00:00", 1767225600.0),  # no offset: UTC
        ("2026-01-01 00:00:00+0000", 1767225600.0),
    ],
)
def test_times_parse_with_their_offsets(text, epoch):
    assert parse_time(text) == pytest.approx(epoch, abs=1e-6)


def test_empty_and_zero_times_are_unknown_garbage_is_an_error():
    assert parse_time(None) is None and parse_time("") is None
    assert parse_time("0001-01-01T00:00:00Z") is None  # Docker's "never"
    for bad in ("yesterday", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00+25:00", "2026-01-01"):
        with pytest.raises(ValueError):
            parse_time(bad)
        assert time_or_none(bad) is None


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime.datetime(1971, 1, 1), max_value=datetime.datetime(2200, 1, 1)),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
    st.integers(0, 999_999),
)
def test_any_offset_and_fraction_round_trip(moment, offset_minutes, micro):
    zone = datetime.timezone(datetime.timedelta(minutes=offset_minutes))
    aware = moment.replace(microsecond=micro, tzinfo=zone)
    assert parse_time(aware.isoformat()) == pytest.approx(aware.timestamp(), abs=1e-5)
    assert parse_time(aware.replace(microsecond=0).isoformat()) == pytest.approx(aware.replace(microsecond=0).timestamp())


# -- arrival on a host ------------------------------------------------------------------
def test_a_pulled_image_arrives_when_first_seen_not_when_built():
    built_a_year_ago_pulled_now = {"sha256:pulled": None}
    arrived, record = arrival_times({}, built_a_year_ago_pulled_now, now=NOW)
    assert arrived == {"sha256:pulled": NOW} and record == {"sha256:pulled": NOW}
    # The next run, a day later, counts from the first sighting.
    arrived, again = arrival_times(record, built_a_year_ago_pulled_now, now=NOW + 86400)
    assert arrived["sha256:pulled"] == NOW and again == record


def test_a_local_tag_is_an_arrival_and_gone_images_leave_the_record():
    arrived, record = arrival_times({"sha256:old": 5.0, "sha256:gone": 1.0}, {"sha256:old": 50.0, "sha256:built": 7.0}, now=NOW)
    assert arrived == {"sha256:old": 50.0, "sha256:built": 7.0}  # re-tagged at 50; built here at 7
    assert record == {"sha256:old": 5.0, "sha256:built": 7.0}
    assert arrival_times("not a dict", {"a": None}, now=3)[0] == {"a": 3}


# -- keep patterns ------------------------------------------------------------------------
def test_pattern_checks_name_the_problem():
    assert pattern_errors("release-*") == [] and pattern_errors("base/*:1.[0-9]*") == [] and pattern_errors("[!a]x") == []
    assert pattern_errors("10.0.0.1:5000/lab/*:*") == []
    assert glob_errors("lab/[ab]*") == []
    assert "has leading or trailing spaces" in pattern_errors(" latest")
    assert pattern_errors(7) == ["is not a pattern"]
    errors = policy_errors(3, ["]a["], 0, ["lab/[x"])
    assert "policy.keep_patterns[0]: ']a[' has a ] with no opening [" in errors
    assert "policy.repositories[0]: 'lab/[x' has a [ with no closing ]" in errors


def test_the_prune_modules_options_are_checked_in_one_place():
    option = {"keep": 3, "keep_patterns": ["]a["], "grace": 0, "repositories": ["lab/[x"]}
    assert policy_option_errors(option) == policy_errors(3, ["]a["], 0, ["lab/[x"])
    assert concurrency_errors(1) == concurrency_errors(64) == []
    assert concurrency_errors(0) == ["concurrency must be from 1 to 64, got 0"]
    assert concurrency_errors(65) == ["concurrency must be from 1 to 64, got 65"]


def literal_brackets(regex):
    """Brackets that a regex from fnmatch.translate matches literally,
    outside any character class: fnmatch did not read them as a class."""
    found, index, in_class = 0, 0, False
    while index < len(regex):
        char = regex[index]
        if char == "\\":
            if not in_class and regex[index + 1] in "[]":
                found += 1
            index += 2
            continue
        if not in_class and char == "[":
            in_class, start = True, index
            index += 1
            if regex[index] == "^":
                index += 1
            if regex[index] == "]":
                index += 1
            continue
        if in_class and char == "]" and index > start:
            in_class = False
        index += 1
    return found


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="ab[]!-*?", min_size=1, max_size=8))
def test_a_glob_is_accepted_exactly_when_fnmatch_reads_it_as_written(glob):
    errors = glob_errors(glob)
    literal = literal_brackets(fnmatch.translate(glob))
    if not errors:
        assert literal == 0  # every [ ] the user wrote is a class to fnmatch
    if any("no closing" in e or "no opening" in e for e in errors):
        assert literal > 0  # and a refused one really is mis-read


# -- the fleet -----------------------------------------------------------------------------
def test_the_fleet_is_complete_only_when_every_host_reported():
    fleet = {"hosts": ["a1", "b2", "c1"], "in_use": {"a1": ["r/x@sha256:1"], "c1": []}}
    assert fleet_missing(fleet) == ["b2"]
    assert fleet_missing({"hosts": ["a1"], "in_use": {"a1": None}}) == ["a1"]  # no list is no report
    assert fleet_missing({"hosts": [], "in_use": {}}) == []
    assert fleet_digests(fleet) == ["r/x@sha256:1"]
    assert fleet_errors(fleet) == []
    assert fleet_errors({"hosts": "a1"}) == ["fleet.hosts must be a list of host names"]
    assert fleet_errors({"hosts": [], "in_use": {"a1": "sha256:1"}}) == ["fleet.in_use[a1] must be a list of image references or digests"]


def test_the_shared_spec_is_the_documented_one():
    assert set(POLICY_SPEC) == {"keep", "keep_patterns", "grace", "repositories"}
    assert FLEET_SPEC["hosts"]["required"] is True


# -- more properties of the keep slots ------------------------------------------------------
versions = st.one_of(
    st.builds(lambda a, b, c: "%d.%d.%d" % (a, b, c), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
    st.builds(lambda a, b, p: "%d.%d.0-%s" % (a, b, p), st.integers(0, 3), st.integers(0, 3), st.sampled_from(["rc1", "rc.2", "beta"])),
    st.builds(lambda a: "v%d" % a, st.integers(0, 12)),
    st.builds(str, st.integers(0, 99)),
    st.sampled_from(["latest", "stable", "abc", "main-1"]),
)
one_repo = st.lists(
    st.builds(lambda name, age: tag("app", name, arrived=NOW - age), versions, st.integers(0, 1000)),
    max_size=15,
    unique_by=lambda c: c.tag,
)


@settings(max_examples=400, deadline=None)
@given(one_repo, st.integers(0, 6))
def test_no_release_loses_its_slot_to_a_pre_release_or_other_tag(tags, keep):
    reasons = decide(tags, keep=keep)
    newest = [c for c in tags if NEWEST in reasons[c.key()]]
    dropped = [c for c in tags if NEWEST not in reasons[c.key()]]
    releases_dropped = [c for c in dropped if semver_key(c.tag) is not None and not is_prerelease(c.tag)]
    if releases_dropped:
        assert all(semver_key(c.tag) is not None and not is_prerelease(c.tag) for c in newest)
        if newest:
            assert max(semver_key(c.tag) for c in releases_dropped) <= min(semver_key(c.tag) for c in newest)


@settings(max_examples=400, deadline=None)
@given(one_repo, st.integers(0, 6))
def test_other_tags_keep_the_latest_arrivals(tags, keep):
    reasons = decide(tags, keep=keep)
    others = [c for c in tags if semver_key(c.tag) is None]
    kept = [c.arrived for c in others if NEWEST in reasons[c.key()]]
    dropped = [c.arrived for c in others if NEWEST not in reasons[c.key()]]
    if kept and dropped:
        assert min(kept) >= max(dropped)
    assert all(semver_key(c.tag) is None for c in others if c.tag.isdigit())


def test_the_diff_shows_what_goes_as_removed_lines():
    diff = plan_diff(["app:1.2", "app:1.1"], ["app:1.0", "app@sha256:aa"], "registry r:5000")
    assert diff["before"] == "app:1.0\napp:1.1\napp:1.2\napp@sha256:aa\n"
    assert diff["after"] == "app:1.1\napp:1.2\n"
    assert diff["before_header"] == "registry r:5000 (before)"
    assert plan_diff([], [], "x")["before"] == ""


def test_the_policy_option_reaches_plan_as_its_rules():
    now = 1_700_000_000
    found = [Candidate("web", str(n), "sha256:%d" % n, created=now - 86400 * n) for n in range(1, 6)]
    policy = {"keep": 2, "keep_patterns": ["3"], "grace": 0, "repositories": []}
    assert policy_plan(found, policy, untag=False, now=now) == plan(found, untag=False, keep=2, patterns=["3"], grace=0, now=now)
    kept = [item["ref"] for item in policy_plan(found, policy, untag=False, now=now)["items"] if item["action"] == "keep"]
    assert sorted(kept) == ["web:1", "web:2", "web:3"]
