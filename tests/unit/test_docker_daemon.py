"""The docker role's checks: its variables by name, daemon.json by key, and
which validator an engine gets."""

import ipaddress
import json

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_docker import (
    DAEMON_OPTIONS,
    MANAGED_KEYS,
    daemon_config_errors,
    engine_version,
    render,
    role_errors,
    size_error,
    validator,
)
from hypothesis import given
from hypothesis import strategies as st

DEFAULTS = {
    "docker_daemon_log_driver": "json-file",
    "docker_daemon_log_max_size": "10m",
    "docker_daemon_log_max_file": 3,
    "docker_daemon_default_address_pools": [{"base": "172.30.0.0/16", "size": 24}],
    "docker_registry_mirrors": [],
    "docker_insecure_registries": [],
    "docker_daemon_data_root": "",
    "docker_apt_cache_valid_time": 3600,
    "docker_daemon_extra_options": {},
}
BUILDINGS = [
    ("bldg_a.host_subnet", ipaddress.ip_network("10.83.1.0/24")),
    ("bldg_a.container_subnet", ipaddress.ip_network("10.83.101.0/24")),
]


def errors_with(**changes):
    return role_errors(dict(DEFAULTS, **changes), BUILDINGS)


def test_the_defaults_pass():
    assert errors_with() == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"docker_daemon_log_max_size": "ten megabytes"}, "docker_daemon_log_max_size: 'ten megabytes' is not a size such as 10m"),
        ({"docker_engine_version": "latest"}, "docker_engine_version: 'latest' is not a Debian package version"),
        ({"docker_engine_version": "20.10 ; rm -rf /"}, "docker_engine_version: '20.10 ; rm -rf /' is not a Debian package version"),
        ({"docker_daemon_log_max_size": "0m"}, "docker_daemon_log_max_size: '0m' must be more than 0"),
        ({"docker_daemon_log_max_file": -1}, "docker_daemon_log_max_file: -1 is below 1"),
        ({"docker_daemon_log_max_file": "-1"}, "docker_daemon_log_max_file: -1 is below 1"),
        ({"docker_daemon_log_max_file": "plenty"}, "docker_daemon_log_max_file: 'plenty' is not a whole number"),
        (
            {"docker_daemon_default_address_pools": [{"base": "172.30.0.0/16", "size": 99}]},
            "docker_daemon_default_address_pools[0].size: 99 must lie between the base's prefix /16 and 32",
        ),
        (
            {"docker_daemon_default_address_pools": [{"base": "172.30.0.0/16", "size": 8}]},
            "docker_daemon_default_address_pools[0].size: 8 must lie between",
        ),
        (
            {"docker_daemon_default_address_pools": [{"base": "172.30.0.0/16", "size": 24}, {"base": "10.83.0.0/16", "size": 24}]},
            "docker_daemon_default_address_pools[1].base 10.83.0.0/16 overlaps berth_buildings.bldg_a.host_subnet 10.83.1.0/24",
        ),
        (
            {"docker_daemon_default_address_pools": [{"base": "172.30.0.1/16", "size": 24}]},
            "docker_daemon_default_address_pools[0].base: '172.30.0.1/16' is not a network in CIDR notation",
        ),
        (
            {"docker_daemon_default_address_pools": [{"base": "172.30.0.0/16", "size": 24}, {"base": "172.30.8.0/24", "size": 26}]},
            "docker_daemon_default_address_pools[1].base 172.30.8.0/24 overlaps docker_daemon_default_address_pools[0].base",
        ),
        ({"docker_daemon_default_address_pools": [{"base": "172.30.0.0/16"}]}, "[0] must be a mapping with base and size only"),
        (
            {"docker_daemon_extra_options": {"live-restore": "yes"}},
            "docker_daemon_extra_options.live-restore: set by docker_daemon_live_restore",
        ),
        ({"docker_daemon_extra_options": {"log-opts": {"max-size": "1g"}}}, "docker_daemon_extra_options.log-opts: set by"),
        ({"docker_daemon_extra_options": {"debug": "yes"}}, "docker_daemon_extra_options.debug must be true or false, got 'yes'"),
        ({"docker_daemon_extra_options": {"mtu": 70000}}, "docker_daemon_extra_options.mtu: 70000 is above 65535"),
        ({"docker_daemon_extra_options": {"log-level": "loud"}}, "docker_daemon_extra_options.log-level: 'loud' is not one of"),
        ({"docker_registry_mirrors": ["mirror.example"]}, "docker_registry_mirrors[0]: 'mirror.example' is not an http(s) URL"),
        ({"docker_insecure_registries": ["http://reg:5000"]}, "docker_insecure_registries[0]: 'http://reg:5000' must be host[:port]"),
        ({"docker_daemon_data_root": "var/lib/docker"}, "docker_daemon_data_root: 'var/lib/docker' must be an absolute path"),
        ({"docker_apt_cache_valid_time": -5}, "docker_apt_cache_valid_time: -5 must be 0 or more seconds"),
    ],
)
def test_bad_settings_are_named_by_variable(changes, message):
    assert any(message in error for error in errors_with(**changes)), errors_with(**changes)


def test_a_pool_is_named_by_its_index_not_only_its_cidr():
    (error,) = errors_with(docker_daemon_default_address_pools=[{"base": "10.83.0.0/16", "size": 24}])[:1]
    assert error.startswith("docker_daemon_default_address_pools[0].base ")


def test_rotation_settings_are_ignored_for_drivers_without_rotation():
    assert errors_with(docker_daemon_log_driver="journald", docker_daemon_log_max_size="whatever") == []


def test_every_key_the_role_writes_is_guarded_from_extra_options():
    written = {"log-driver", "log-opts", "live-restore", "default-address-pools", "registry-mirrors", "insecure-registries"}
    written |= {"storage-driver", "exec-opts", "data-root"}
    assert set(MANAGED_KEYS) == written
    assert set(MANAGED_KEYS) <= set(DAEMON_OPTIONS)


def test_unknown_options_are_refused_for_engines_without_validate_only():
    config = {"live-restore": True, "no-such-option": 1}
    assert daemon_config_errors(config, (20, 10)) == ["daemon.json no-such-option: not an option Docker 20.10 knows"]
    assert daemon_config_errors(config, None) == ["daemon.json no-such-option: not an option Docker 20.10 knows"]
    assert daemon_config_errors(config, (26, 1)) == []


def test_known_options_are_type_checked_for_every_engine():
    config = {"live-restore": "yes", "log-opts": {"max-file": 3, "max-size": "10m"}}
    expected = [
        "daemon.json live-restore must be true or false, got 'yes'",
        'daemon.json log-opts must be a mapping of strings (quote numbers: "3")',
    ]
    assert daemon_config_errors(config, (20, 10)) == expected
    assert daemon_config_errors(config, (26, 1)) == expected


@pytest.mark.parametrize(
    ("text", "version", "checker"),
    [
        ("Docker version 20.10.24+dfsg1, build 5d6db84", (20, 10), "berth"),
        ("Docker version 26.1.5+dfsg1, build 411e817", (26, 1), "dockerd"),
        ("Docker version 23.0.0, build e92dd87", (23, 0), "dockerd"),
        ("", None, "berth"),
    ],
)
def test_the_validator_follows_the_installed_engine(text, version, checker):
    assert engine_version(text) == version
    assert validator(version) == checker


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["", "k", "m", "g", "K", "M", "G", "kb", "MiB"]))
def test_every_positive_size_with_a_unit_passes(number, unit):
    assert size_error("%d%s" % (number, unit), "x") is None


@given(st.text(alphabet=st.characters(blacklist_categories=["Nd"]), min_size=1))
def test_a_size_without_digits_never_passes(text):
    assert size_error(text, "x") is not None


@given(st.integers(max_value=0))
def test_a_max_file_below_one_never_passes(number):
    assert any(error.startswith("docker_daemon_log_max_file") for error in errors_with(docker_daemon_log_max_file=number))


@given(st.integers(min_value=0, max_value=40))
def test_an_ipv4_pool_size_passes_exactly_between_its_prefix_and_32(size):
    errors = errors_with(docker_daemon_default_address_pools=[{"base": "172.30.0.0/16", "size": size}])
    assert (errors == []) == (16 <= size <= 32)


def test_render_matches_to_nice_json():
    config = {"log-opts": {"max-size": "10m", "max-file": "3"}, "live-restore": True}
    assert render(config) == json.dumps(config, indent=2, sort_keys=True, separators=(",", ": ")) + "\n"
    assert render(config).startswith('{\n  "live-restore": true,\n  "log-opts": {\n    "max-file": "3",')


@pytest.mark.parametrize("version", ["20.10.24+dfsg1-1+deb12u1+b6", "5:26.1.4-1~debian.12~bookworm", "26.1.5+dfsg1-9"])
def test_real_engine_versions_pass(version):
    assert errors_with(docker_engine_version=version) == []
