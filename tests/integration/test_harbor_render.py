"""harbor.yml as the harbor role renders it, for several variable sets, checked
against the keys of Harbor 2.15's own template (commented settings included)."""

import json
import os
import sys

import pytest
import yaml
from labtools import ROOT, local_playbook

sys.path.insert(0, os.path.join(ROOT, "tests"))
from harbor_standin.template_keys import reference_keys

PASSWORDS = {"harbor_admin_password": "Render-admin-1", "harbor_database_password": "Render-db-2"}
SETS = {
    "defaults": {},
    "behind a proxy, no tls, no trivy": {
        "harbor_tls": False,
        "harbor_http_port": 8080,
        "harbor_trivy": False,
        "harbor_proxy_http": "http://proxy.bldg-a.example:3128",
        "harbor_proxy_https": "http://proxy.bldg-a.example:3128",
        "harbor_proxy_no_proxy": "127.0.0.1,localhost,.bldg-a.example",
        "harbor_external_url": "https://registry.example.com",
    },
    "big site": {
        "harbor_https_port": 8443,
        "harbor_data_volume": "/srv/harbor",
        "harbor_jobservice_workers": 20,
        "harbor_log_rotate_count": 10,
        "harbor_log_rotate_size": "1G",
        "harbor_config_extra": {"metric": {"enabled": True, "port": 9090, "path": "/metrics"}, "cache": {"enabled": True}},
    },
}


def render(tmp_path, settings):
    variables = dict(PASSWORDS, harbor_hostname="harbor.bldg-a.example", harbor_install_dir=str(tmp_path), **settings)
    run = local_playbook(
        "tests/integration/playbooks/harbor-render.yml",
        "-e",
        json.dumps(variables),
    )
    path = tmp_path / "harbor.yml"
    return run, (yaml.safe_load(path.read_text()) if path.exists() else None)


def keys_of(data, prefix=""):
    for key, value in data.items():
        yield prefix + key
        if isinstance(value, dict):
            yield from keys_of(value, prefix + key + ".")


@pytest.mark.parametrize("name", sorted(SETS))
def test_rendered_keys_are_a_subset_of_harbors_template(tmp_path, name):
    run, config = render(tmp_path, SETS[name])
    assert run.returncode == 0, run.explain()
    assert set(keys_of(config)) <= reference_keys()
    assert config["_version"] == "2.15.0"
    for secret in PASSWORDS.values():
        assert secret not in run.output
    settings = SETS[name]
    assert ("https" in config) == settings.get("harbor_tls", True)
    if "harbor_external_url" in settings:
        assert config["external_url"] == settings["harbor_external_url"]
        assert config["proxy"]["http_proxy"] == settings["harbor_proxy_http"]
    if "harbor_https_port" in settings:
        assert config["https"]["port"] == 8443 and config["jobservice"]["max_job_workers"] == 20
        assert config["log"]["local"] == {"rotate_count": 10, "rotate_size": "1G", "location": "/var/log/harbor"}
        assert config["metric"]["port"] == 9090 and config["data_volume"] == "/srv/harbor"


def test_unknown_keys_fail_before_anything_is_written(tmp_path):
    run, config = render(tmp_path, {"harbor_config_extra": {"trivy": {"enabled": True}, "registry": {"port": 5000}}})
    assert run.returncode != 0
    assert "does not know: registry, registry.port, trivy.enabled" in " ".join(run.output.split())
    assert config is None
