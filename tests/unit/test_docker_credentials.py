"""Registry credentials resolved as the docker CLI does, through the Docker
SDK: a credential helper (a real executable on PATH) and plain auths."""

import base64
import json
import os
import stat

from ansible_collections.berth.ops.plugins.module_utils.berth_registry_client import docker_credentials

HELPER = """#!/bin/sh
# A docker credential helper: `get` reads the server on stdin.
read server
case "$server" in
  registry.bldg-a.test:5000) printf '{"ServerURL":"%s","Username":"robot$ci","Secret":"from-the-helper"}' "$server" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"""


def write(tmp_path, config):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


def install_helper(tmp_path, monkeypatch, name):
    binary = tmp_path / "bin" / ("docker-credential-" + name)
    binary.parent.mkdir()
    binary.write_text(HELPER)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", "%s:%s" % (binary.parent, os.environ["PATH"]))


def test_a_credential_helper_for_the_registry_is_used(tmp_path, monkeypatch):
    install_helper(tmp_path, monkeypatch, "berthtest")
    config = write(tmp_path, {"credHelpers": {"registry.bldg-a.test:5000": "berthtest"}})
    assert docker_credentials("registry.bldg-a.test:5000", config) == ("robot$ci", "from-the-helper")


def test_a_creds_store_is_used(tmp_path, monkeypatch):
    install_helper(tmp_path, monkeypatch, "berthstore")
    config = write(tmp_path, {"credsStore": "berthstore"})
    assert docker_credentials("registry.bldg-a.test:5000", config) == ("robot$ci", "from-the-helper")


def test_plain_auths_still_work(tmp_path):
    encoded = base64.b64encode(b"ci:s3cret").decode()
    config = write(tmp_path, {"auths": {"10.77.1.11:5000": {"auth": encoded}}})
    assert docker_credentials("10.77.1.11:5000", config) == ("ci", "s3cret")


def test_nothing_known_is_no_credentials(tmp_path, monkeypatch):
    install_helper(tmp_path, monkeypatch, "berthstore")
    config = write(tmp_path, {"credsStore": "berthstore"})
    assert docker_credentials("elsewhere.test:5000", config) == (None, None)
    assert docker_credentials("elsewhere.test:5000", str(tmp_path / "missing.json")) == (None, None)
