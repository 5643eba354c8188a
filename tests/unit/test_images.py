import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_images import hub_name, parse_reference, registry_error, tag_error
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", None, "busybox", None, None),
        ("busybox:1.36", None, "busybox", "1.36", None),
        ("team/app:v2", None, "team/app", "v2", None),
        ("localhost/app", "localhost", "app", None, None),
        ("10.77.1.11:5000/test/web:20261123-101500123", "10.77.1.11:5000", "test/web", "20261123-101500123", None),
        ("harbor.bldg-a.example/prod/api@sha256:" + "a" * 64, "harbor.bldg-a.example", "prod/api", None, "sha256:" + "a" * 64),
        ("reg:5000/a/b:c@sha256:" + "b" * 64, "reg:5000", "a/b", "c", "sha256:" + "b" * 64),
        ("my_org/my__app", None, "my_org/my__app", None, None),
    ],
)
def test_valid_references(text, registry, repository, tag, digest):
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert str(ref) == text


@pytest.mark.parametrize(
    "text",
    ["", "UPPER/case", "app:", "app:-tag", "app@sha256:short", "reg:port/app", "a//b", "app:" + "t" * 129, "-app", "app/"],
)
def test_invalid_references(text):
    with pytest.raises(ValueError):
        parse_reference(text)


def test_require_tag():
    with pytest.raises(ValueError, match="has no tag"):
        parse_reference("reg:5000/app", require_tag=True)


def test_tags_and_registries():
    assert tag_error("v1.2.3_rc-1") is None
    assert "not a valid tag" in tag_error("bad tag")
    assert "not a valid tag" in tag_error(".hidden")
    assert registry_error("10.77.1.11:5000") is None
    assert registry_error("harbor.example") is None
    assert "not a registry address" in registry_error("http://harbor.example")


def test_hub_names_get_library():
    assert hub_name(parse_reference("busybox:1")) == "library/busybox"
    assert hub_name(parse_reference("team/app")) == "team/app"
    assert hub_name(parse_reference("reg:5000/app")) == "reg:5000/app"


components = st.from_regex(r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8})?", fullmatch=True)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
registries = st.sampled_from([None, "localhost", "reg.example", "10.0.0.1:5000", "reg.example:443"])


@given(registries, st.lists(components, min_size=1, max_size=3), st.one_of(st.none(), tags))
def test_round_trip(registry, path, tag):
    text = "/".join(([registry] if registry else []) + path) + (":" + tag if tag else "")
    ref = parse_reference(text)
    assert str(ref) == text
    assert parse_reference(str(ref)) == ref
