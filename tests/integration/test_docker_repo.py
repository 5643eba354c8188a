"""The docker role's upstream (docker-ce) repository definition, rendered by
Ansible from the role's template and defaults."""

import pytest
from labtools import ansible_playbook


def render(tmp_path, *extra):
    dest = tmp_path / "docker.sources"
    run = ansible_playbook("tests/integration/playbooks/render-docker-repo.yml", "-e", "render_dest=%s" % dest, *extra, timeout=120)
    assert run.returncode == 0, run.explain()
    fields = {}
    for line in dest.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(": ")
            fields[key] = value
    return fields


def test_default_definition_is_a_signed_deb822_stanza(tmp_path):
    assert render(tmp_path) == {
        "Types": "deb",
        "URIs": "https://download.docker.com/linux/debian",
        "Suites": "bookworm",
        "Components": "stable",
        "Signed-By": "/etc/apt/keyrings/docker.asc",
    }


@pytest.mark.parametrize(
    ("extra", "key", "value"),
    [
        ("docker_upstream_repo_suite=trixie", "Suites", "trixie"),
        ("docker_upstream_repo_channel=test", "Components", "test"),
        ("docker_upstream_repo_url=https://mirror.example/docker-ce", "URIs", "https://mirror.example/docker-ce"),
    ],
)
def test_overrides_reach_the_definition(tmp_path, extra, key, value):
    assert render(tmp_path, "-e", extra)[key] == value
