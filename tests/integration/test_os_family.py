"""The seam per OS family (roles/berth_os): each role's vars/<os_family>.yml
is loaded, a distribution's file only changes what differs, and a family a
role has no file for is refused by name. Runs on the control host alone:
the facts are set, not gathered. Debian 12 itself is converged on the lab."""

import json
import os

import pytest
from labtools import ROOT, local_playbook

ROLES = sorted(name for name in os.listdir(os.path.join(ROOT, "roles")) if os.path.isdir(os.path.join(ROOT, "roles", name, "tasks")))


def read(role, task_file):
    with open(os.path.join(ROOT, "roles", role, "tasks", task_file), encoding="utf-8") as stream:
        return stream.read()


def os_vars(tmp_path, role, os_family, distribution, major):
    out = tmp_path / ("%s-%s-%s.json" % (role, distribution, major))
    run = local_playbook(
        "tests/integration/playbooks/os-family.yml",
        "-e",
        json.dumps({"role": role, "os_family": os_family, "distribution": distribution, "major": major, "out": str(out)}),
        timeout=120,
    )
    return run, json.loads(out.read_text()) if out.exists() else None


def test_every_role_with_a_setup_file_has_its_familys_vars_and_the_reverse():
    for role in ROLES:
        tasks = os.listdir(os.path.join(ROOT, "roles", role, "tasks"))
        families = {name[len("setup-") : -len(".yml")] for name in tasks if name.startswith("setup-")}
        vars_dir = os.path.join(ROOT, "roles", role, "vars")
        files = set(os.listdir(vars_dir)) if os.path.isdir(vars_dir) else set()
        assert {family + ".yml" for family in families} <= files, role
        if families:
            main = read(role, "main.yml" if role != "pki" else "issue.yml")
            assert "name: berth_os" in main and "setup-{{ ansible_facts.os_family }}.yml" in main, role
    # Only the roles with a setup file name a package manager.
    for role in ROLES:
        for name in os.listdir(os.path.join(ROOT, "roles", role, "tasks")):
            text = read(role, name)
            if "ansible.builtin.apt:" in text:
                # setup- installs, reset- (playbooks/reset.yml) purges.
                assert name.startswith(("setup-Debian", "reset-Debian")) or name == "repository-upstream.yml", (role, name)


@pytest.mark.parametrize("role", ["docker", "firewall", "proxy", "registry", "pki"])
def test_debian_12_loads_the_familys_file(tmp_path, role):
    run, found = os_vars(tmp_path, role, "Debian", "Debian", "12")
    assert run.returncode == 0, run.explain()
    assert found and all(name.startswith(role + "_os_") for name in found), run.output[-3000:]


def test_ubuntu_changes_only_what_its_file_says(tmp_path):
    run, debian = os_vars(tmp_path, "docker", "Debian", "Debian", "12")
    assert run.returncode == 0, run.explain()
    run, ubuntu = os_vars(tmp_path, "docker", "Debian", "Ubuntu", "24")
    assert run.returncode == 0, run.explain()
    assert ubuntu["docker_os_upstream_repo_url"] == "https://download.docker.com/linux/ubuntu"
    assert debian["docker_os_upstream_repo_url"] == "https://download.docker.com/linux/debian"
    assert {k: v for k, v in ubuntu.items() if k != "docker_os_upstream_repo_url"} == {
        k: v for k, v in debian.items() if k != "docker_os_upstream_repo_url"
    }


def test_a_family_without_a_file_is_refused_by_name(tmp_path):
    run, found = os_vars(tmp_path, "proxy", "RedHat", "Rocky", "9")
    assert run.returncode != 0 and found is None
    assert "the proxy role has no vars/RedHat.yml" in run.output, run.output[-3000:]
    assert "runs Rocky (family RedHat)" in " ".join(run.output.split())
