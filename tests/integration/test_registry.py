"""The registry role on the test lab: TLS from the lab CA, optional htpasswd
auth whose password never shows in the output, refused default passwords."""

import json
import uuid

import pytest
from labtools import lab_exec


@pytest.fixture(scope="module")
def registry(lab):
    server = next(h for h in lab.hosts if h.endswith("-a1"))
    client = next(h for h in lab.hosts if h.endswith("-b1"))
    return {"lab": lab, "server": server, "client": client, "endpoint": "%s:5000" % lab.hosts[server]}


def converge(registry, extra, *args):
    return registry["lab"].playbook(
        "playbooks/site.yml", "-v", "--tags", "registry", "--limit", registry["server"], "-e", json.dumps(extra), *args
    )


def status(registry, credentials=None):
    auth = "-u %s" % credentials if credentials else ""
    command = "curl -s -o /dev/null -w '%%{http_code}' --cacert /etc/docker/certs.d/%s/ca.crt %s https://%s/v2/" % (
        registry["endpoint"],
        auth,
        registry["endpoint"],
    )
    return lab_exec(registry["client"], command).stdout


def test_tls_is_trusted_from_another_building(registry):
    assert status(registry) == "200"


def test_auth_guards_the_api_and_the_password_stays_out_of_the_output(registry):
    secret = "Berth-%s" % uuid.uuid4().hex
    users = {"registry_auth": True, "registry_users": [{"name": "ci", "password": secret}]}
    try:
        first = converge(registry, users)
        assert first.returncode == 0, first.explain()
        assert secret not in first.output
        assert status(registry) == "401"
        assert status(registry, "ci:%s" % secret) == "200"
        assert status(registry, "ci:wrong") == "401"
        again = converge(registry, users)
        assert again.returncode == 0, again.explain()
        assert again.total_changed() == 0, again.explain()
        assert secret not in again.output
    finally:
        back = converge(registry, {})
        assert back.returncode == 0, back.explain()
    assert status(registry) == "200"


@pytest.mark.parametrize("password", ["changeme", ""])
def test_shipped_default_or_empty_passwords_are_refused(registry, password):
    run = converge(registry, {"registry_auth": True, "registry_users": [{"name": "ci", "password": password}]})
    assert run.returncode != 0
    assert "not a shipped default" in run.output
    assert run.total_changed() == 0
    assert status(registry) == "200"
