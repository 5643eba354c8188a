import datetime

import pytest
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
    layer_bytes,
    name_error,
    needs_git_sha,
    new_layers,
    parse_build_stream,
    parse_push_stream,
    permanent_push_error,
    registry_scheme,
    render_tags,
    scan_order,
    template_errors,
    timestamp_tag,
)

DOCKERFILE = """ARG BASE=reg:5000/base/os:1
FROM ${BASE} AS builder
RUN make
FROM reg:5000/base/middleware:1
COPY --from=builder /out /srv/app
"""


def components(**overrides):
    args = {
        "files": {"a": "1"},
        "dockerfile_text": DOCKERFILE,
        "build_args": {},
        "target": None,
        "platform": None,
        "labels": {},
        "base_ids": {},
    }
    args.update(overrides)
    return input_components(**args)


def test_from_images_resolves_args_and_skips_stages():
    assert from_images(DOCKERFILE) == ["reg:5000/base/os:1", "reg:5000/base/middleware:1"]
    assert from_images(DOCKERFILE, {"BASE": "other/os:2"})[0] == "other/os:2"
    assert from_images("FROM scratch\nCOPY x /x\n") == []


def test_every_input_moves_the_hash():
    base = input_hash(components())
    variants = [
        components(files={"a": "2"}),
        components(files={"a": "1", "b": "1"}),
        components(dockerfile_text=DOCKERFILE + "ENV X=1\n"),
        components(build_args={"V": "1"}),
        components(target="builder"),
        components(platform="linux/arm64"),
        components(labels={"team": "x"}),
        components(base_ids={"reg:5000/base/middleware:1": "sha256:1"}),
    ]
    hashes = {input_hash(c) for c in variants}
    assert base not in hashes
    assert len(hashes) == len(variants)


def test_the_hash_ignores_dict_order_and_number_types():
    assert input_hash(components(build_args={"A": 1, "B": "x"})) == input_hash(components(build_args={"B": "x", "A": "1"}))


def test_reasons_name_the_changed_input_and_files():
    old = components(files={"app/a.jar": "1", "app/b.cfg": "1"})
    labels = component_labels(old, input_hash(old))
    new = components(files={"app/a.jar": "2", "app/b.cfg": "1", "app/c.txt": "1"})
    assert change_reasons(labels, new, {"app/a.jar": "1", "app/b.cfg": "1"}, {"app/a.jar": "2", "app/b.cfg": "1", "app/c.txt": "1"}) == [
        "context changed: app/a.jar, app/c.txt"
    ]
    assert change_reasons(labels, components(files={"app/a.jar": "1", "app/b.cfg": "1"}, build_args={"X": "1"})) == ["build args changed"]
    assert change_reasons({}, new) == ["no earlier image of this name carries an input hash"]
    assert HASH_LABEL in labels


@pytest.mark.parametrize(
    ("build_args", "errors"),
    [
        ({"A": "x", "B": 1, "C": 1.5, "D": True, "E": None}, []),
        ({"A": ["x"]}, ["build_args.A: a list is not a valid build argument value (use a string or number)"]),
        ({"A": {"k": "v"}}, ["build_args.A: a dict is not a valid build argument value (use a string or number)"]),
        ("A=x", ["build_args must be a mapping of name to value"]),
    ],
)
def test_build_arg_types(build_args, errors):
    assert build_arg_errors(build_args) == errors


def test_tag_templates():
    now = datetime.datetime(2026, 11, 23, 9, 5, 7, 123456)
    assert timestamp_tag(now) == "20261123-090507123"
    assert render_tags(["{timestamp}", "sha-{git_sha}", "h{hash}", "latest"], now, "abcdef0123456789", "f" * 64) == [
        "20261123-090507123",
        "sha-abcdef012345",
        "hffffffffffff",
        "latest",
    ]
    assert template_errors(["{timestamp}", "v1.2"]) == []
    assert "unknown field build" in template_errors(["{build}"])[0]
    assert "not a valid tag" in template_errors(["bad tag"])[0]


def test_names_carry_no_tag():
    assert name_error("reg:5000/lab/web") is None
    assert "must not carry a tag" in name_error("reg:5000/lab/web:1")
    assert "not a valid image reference" in name_error("Reg/Web")


def test_build_stream():
    events = [
        {"stream": "Step 1/3 : FROM base\n"},
        {"stream": " ---> 1234\n"},
        {"stream": "Step 2/3 : RUN make\n"},
        {"stream": " ---> Using cache\n"},
        {"stream": "Step 3/3 : COPY . /app\n"},
        {"aux": {"ID": "sha256:abc"}},
        {"stream": "Successfully built abc\n"},
    ]
    outcome = parse_build_stream(events)
    assert (outcome["steps"], outcome["steps_cached"], outcome["error"]) == (3, 1, None)
    assert parse_build_stream([{"error": "boom", "errorDetail": {"message": "boom"}}])["error"] == "boom"


def test_push_stream_and_layer_bytes():
    events = [
        {"status": "Preparing", "id": "aaaaaaaaaaaa"},
        {"status": "Layer already exists", "id": "bbbbbbbbbbbb"},
        {"status": "Pushed", "id": "aaaaaaaaaaaa"},
        {"aux": {"Tag": "1", "Digest": "sha256:d", "Size": 5}},
    ]
    assert parse_push_stream(events) == {"pushed": ["aaaaaaaaaaaa"], "existing": ["bbbbbbbbbbbb"], "digest": "sha256:d", "error": None}
    sizes = layer_bytes(["sha256:" + "b" * 64, "sha256:" + "a" * 64], {"layers": [{"size": 10}, {"size": 3}]})
    assert sizes == {"bbbbbbbbbbbb": 10, "aaaaaaaaaaaa": 3}


def test_new_layers_are_those_no_earlier_image_had():
    assert new_layers(["l1", "l2", "l3"], ["l1", "l2", "x"]) == ["l3"]


def test_build_diff_shows_hash_and_tags_before_and_after():
    diff = build_diff("old", ["r/a:2", "r/a:1"], "new", ["r/a:3"], pushed=["r/a:3"])
    assert diff == {
        "before": {"input_hash": "old", "tags": ["r/a:1", "r/a:2"]},
        "after": {"input_hash": "new", "tags": ["r/a:3"], "pushed": ["r/a:3"]},
    }
    assert "pushed" not in build_diff(None, [], "new", ["r/a:3"])["after"]


# -- what a run does once it knows what exists (docker_image_build's phases) ---------------------
NAME = "reg:5000/lab/web"


def test_an_image_here_with_the_hash_is_tagged_not_built():
    local = {"Id": "sha256:i", "RepoTags": [NAME + ":latest", NAME + ":0.9", "other/x:1"]}
    decision = decide(NAME, ["1.0", "latest"], local, {"tag": "t", "digest": "sha256:r"})
    assert decision == {
        "action": "tag",
        "image_id": "sha256:i",
        # The requested tags first (callers print the first), then the ones it had.
        "tags": [NAME + ":1.0", NAME + ":latest", NAME + ":0.9"],
        "retag": [NAME + ":1.0"],
        "had": [NAME + ":latest", NAME + ":0.9"],
    }
    assert decide(NAME, ["latest"], {"Id": "sha256:i", "RepoTags": None}, None)["retag"] == [NAME + ":latest"]


def test_else_the_registrys_image_is_taken_else_a_build_runs():
    assert decide(NAME, ["1.0"], None, {"tag": "20260101-000000000", "digest": "sha256:r"}) == {
        "action": "found",
        "tags": [NAME + ":20260101-000000000"],
        "digest": "sha256:r",
    }
    assert decide(NAME, ["1.0"], None, None) == {"action": "build"}


def test_the_registry_is_searched_under_the_literal_tags_then_the_newest_others():
    tags = ["20250101-000000000", "20260101-000000000", "latest", "1.0", "old"]
    assert scan_order(["1.0", "missing"], tags, 2) == ["1.0", "old", "latest"]
    assert scan_order([], tags, 0) == []


def test_pushes_skip_what_the_registry_has_and_stop_on_what_a_retry_cannot_fix():
    assert already_pushed(NAME, "sha256:d", [NAME + "@sha256:d"])
    assert not already_pushed(NAME, "sha256:d", ["other/x@sha256:d"]) and not already_pushed(NAME, None, [])
    assert permanent_push_error("unauthorized: authentication required") and permanent_push_error("x509: certificate signed by unknown")
    assert not permanent_push_error("connection reset by peer")
    assert needs_git_sha(["latest", "git-{git_sha}"]) and not needs_git_sha(["{timestamp}"])


def test_the_registry_is_reached_as_the_engine_reaches_it():
    insecure = {"IndexConfigs": {"reg:5000": {"Secure": False}}}
    assert registry_scheme(insecure, "reg:5000") == "http"
    assert registry_scheme(insecure, "other:5000") == "https"
    assert registry_scheme({}, "localhost:5000") == "http" and registry_scheme({}, "127.0.0.2:5000") == "http"
    assert registry_scheme({}, "[::1]:5000") == "http" and registry_scheme({}, "[fd00::1]:5000") == "https"
