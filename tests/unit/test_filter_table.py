"""The filter plugin imports each filter's module_utils on first use: its table
must name functions that exist, and a filter must still turn a ValueError
into the error Ansible shows."""

import importlib

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.berth.ops.plugins.filter import berth


@pytest.mark.parametrize(("name", "target"), sorted(berth.FILTERS.items()))
def test_every_filter_names_a_function_of_module_utils(name, target):
    module, function = target
    assert callable(getattr(importlib.import_module(berth.PACKAGE + module), function)), name


def test_the_plugin_offers_exactly_the_table():
    assert sorted(berth.FilterModule().filters()) == sorted(berth.FILTERS)


def test_a_value_error_becomes_a_filter_error():
    owned = berth.FilterModule().filters()["berth_owned_labels"]
    with pytest.raises(AnsibleFilterError, match="images"):
        owned("images")
