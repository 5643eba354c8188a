"""StorageReader on a real directory laid out as Distribution's filesystem
storage: the doomed tags go before the deletes, nothing else does."""

import os
import tempfile

from ansible_collections.berth.ops.plugins.module_utils.berth_registry_client import StorageReader
from hypothesis import given, settings
from hypothesis import strategies as st

DIGESTS = ["sha256:%064x" % n for n in range(6)]


def lay_out(root, repository, tags):
    top = os.path.join(root, "docker", "registry", "v2", "repositories", repository, "_manifests")
    for digest in set(tags.values()):
        revision = os.path.join(top, "revisions", "sha256", digest.split(":", 1)[1])
        os.makedirs(revision, exist_ok=True)
        with open(os.path.join(revision, "link"), "w", encoding="utf-8") as stream:
            stream.write(digest)
    for tag, digest in tags.items():
        current = os.path.join(top, "tags", tag, "current")
        os.makedirs(current, exist_ok=True)
        with open(os.path.join(current, "link"), "w", encoding="utf-8") as stream:
            stream.write(digest)
    return StorageReader(root)


def test_only_the_tags_of_doomed_manifests_go(tmp_path):
    storage = lay_out(str(tmp_path), "team/app", {"1.0": DIGESTS[0], "1.1": DIGESTS[1], "latest": DIGESTS[1], "2.0": DIGESTS[2]})
    removed = storage.untag_doomed("team/app", {DIGESTS[1], DIGESTS[3]})
    assert removed == ["team/app:1.1", "team/app:latest"]
    assert storage.tags("team/app").keys() == {"1.0", "2.0"}
    # The manifests themselves stay: their delete is the API's.
    assert storage.has_revision("team/app", DIGESTS[1])


def test_a_kept_tag_is_never_removed(tmp_path):
    storage = lay_out(str(tmp_path), "app", {"stable": DIGESTS[0], "0.9": DIGESTS[0]})
    assert storage.untag_doomed("app", {DIGESTS[0]}, kept_tags={"stable"}) == ["app:0.9"]
    assert storage.tags("app").keys() == {"stable"}


tag_maps = st.dictionaries(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,8}", fullmatch=True), st.sampled_from(DIGESTS), max_size=12)


@settings(max_examples=60, deadline=None)
@given(tags=tag_maps, doomed=st.sets(st.sampled_from(DIGESTS)), kept=st.sets(st.sampled_from(["1", "a", "latest", "stable"])))
def test_every_other_tag_keeps_its_link(tags, doomed, kept):
    with tempfile.TemporaryDirectory() as base:
        storage = lay_out(base, "r", tags)
        removed = storage.untag_doomed("r", doomed, kept_tags=kept)
        expected = {t for t, d in tags.items() if d in doomed and t not in kept}
        assert {ref.split(":", 1)[1] for ref in removed} == expected
        assert {t: d for t, (d, _) in storage.tags("r").items()} == {t: d for t, d in tags.items() if t not in expected}
