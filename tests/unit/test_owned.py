import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_env_spec import LABEL_BUILDING, LABEL_ENV, env_names
from ansible_collections.berth.ops.plugins.module_utils.berth_owned import owned_labels
from ansible_collections.berth.ops.plugins.module_utils.berth_rollout import LABEL_APP


def test_a_reset_finds_every_kind_of_object_berth_labels():
    assert owned_labels("containers") == [LABEL_ENV, LABEL_APP]
    assert owned_labels("networks") == [LABEL_ENV, LABEL_BUILDING]
    assert owned_labels("volumes") == [LABEL_ENV]


def test_an_environments_own_label_is_one_the_reset_looks_for():
    # Teardown finds an environment by key=value; reset by the key alone.
    assert env_names("alpha")["label"].split("=")[0] in owned_labels("containers")


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="images"):
        owned_labels("images")
