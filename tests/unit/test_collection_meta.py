"""The collection's metadata agrees with itself: requirements.yml pins what
the pinned ansible package bundles, the execution environment pins what
requirements.txt pins, galaxy.yml's dependencies admit those versions, and
the changelog knows galaxy.yml's version."""

import json
import os
import re

import ansible_collections
import yaml
from ansible.module_utils.compat.version import LooseVersion

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def pins():
    found = {}
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as stream:
        for line in stream:
            if "==" in line and not line.startswith("#"):
                name, version = line.strip().split("==")
                found[name.lower().replace("_", "-")] = version
    return found


def bundled(fqcn):
    namespace, name = fqcn.split(".")
    for root in ansible_collections.__path__:
        manifest = os.path.join(root, namespace, name, "MANIFEST.json")
        if os.path.exists(manifest):
            with open(manifest, encoding="utf-8") as stream:
                return json.load(stream)["collection_info"]["version"]
    return None


def test_requirements_yml_pins_what_the_ansible_package_bundles():
    for entry in load("requirements.yml")["collections"]:
        assert bundled(entry["name"]) == entry["version"], entry


def test_galaxy_dependencies_admit_the_pinned_versions():
    pinned = {entry["name"]: entry["version"] for entry in load("requirements.yml")["collections"]}
    for name, spec in load("galaxy.yml")["dependencies"].items():
        assert name in pinned, name
        for clause in spec.split(","):
            op, version = re.match(r"(>=|<=|==|<|>)?(.+)", clause.strip()).groups()
            have, want = LooseVersion(pinned[name]), LooseVersion(version)
            assert {">=": have >= want, "<": have < want, "<=": have <= want, ">": have > want, "==": have == want, None: have == want}[
                op
            ], (name, clause)


def test_execution_environment_pins_what_requirements_txt_pins():
    ee = load("execution-environment.yml")["dependencies"]
    wanted = [*ee["python"], ee["ansible_core"]["package_pip"], ee["ansible_runner"]["package_pip"]]
    pinned = pins()
    for requirement in wanted:
        name, version = requirement.split("==")
        assert pinned[name.lower().replace("_", "-")] == version, requirement


def test_changelog_has_the_galaxy_version():
    version = load("galaxy.yml")["version"]
    assert version in load("changelogs/changelog.yaml")["releases"]
    with open(os.path.join(ROOT, "CHANGELOG.rst"), encoding="utf-8") as stream:
        assert "v%s\n" % version in stream.read()
