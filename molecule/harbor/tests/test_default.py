"""Verify of the harbor scenario: the stand-in's API (as admin, and as the
robot with the secret berth kept) holds the site's objects, harbor.yml on
the host is private and uses only keys of Harbor's template, the certificate
serves TLS that verifies against the CA, and no password or secret reached
a log."""

import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY") or os.path.join(os.path.dirname(__file__), "..", "..", "..")
sys.path.insert(0, os.path.join(PROJECT, "tests"))
from harbor_standin.template_keys import reference_keys  # noqa: E402

NAME = "harbor.berth.test"
TLS = "/etc/berth/harbor"
ROBOT = "robot$test+ci"


def read(name):
    with open(os.path.join(EPHEMERAL, name), encoding="utf-8") as stream:
        return stream.read()


@pytest.fixture(scope="module")
def admin():
    return "admin", read("harbor-admin").split()[0]


@pytest.fixture(scope="module")
def kept():
    """berth_secrets as the role stored it, decrypted with the run's vault password."""
    vault = VaultLib([("default", VaultSecret(read("vault-pass").strip().encode()))])
    with open(os.path.join(EPHEMERAL, "berth_secrets.vault.yml"), "rb") as stream:
        return yaml.safe_load(vault.decrypt(stream.read()))["berth_secrets"]


def api(path, auth=None):
    """(status, JSON body) of a GET on the stand-in's Harbor API."""
    request = urllib.request.Request(read("harbor-standin.url").strip() + "/api/v2.0" + path)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
            return answer.status, json.loads(body) if body else None
    except urllib.error.HTTPError as error:
        return error.code, None


def project(name, auth):
    status, body = api("/projects/" + name, auth)
    assert status == 200
    return body


def test_the_install_steps_were_reported_as_not_run(host):
    assert "were not run: no offline installer was given" in " ".join(read("ansible.log").split())
    assert not host.file("/etc/systemd/system/harbor.service").exists
    assert not host.file("/opt/harbor/.berth-release.json").exists


def test_harbor_is_healthy_and_only_the_generated_admin_password_logs_in(admin):
    status, health = api("/health")
    assert status == 200 and health["status"] == "healthy"
    assert api("/projects", admin)[0] == 200
    assert api("/projects", ("admin", "not-the-password"))[0] == 401


def test_the_projects_have_their_settings_and_quota(admin):
    test, prod = project("test", admin), project("prod", admin)
    assert test["metadata"]["auto_scan"] == "true" and test["metadata"]["public"] == "false"
    assert prod["metadata"]["public"] == "false"
    status, quotas = api("/quotas?reference=project&reference_id=%d" % test["project_id"], admin)
    assert status == 200 and [q["hard"]["storage"] for q in quotas] == [20 * 1024**3]


def test_retention_immutability_gc_and_replication_are_applied(admin):
    test = project("test", admin)
    status, retention = api("/retentions/" + test["metadata"]["retention_id"], admin)
    assert status == 200
    assert [(r["template"], r["params"]) for r in retention["rules"]] == [("latestPushedK", {"latestPushedK": 10})]
    assert retention["trigger"]["settings"]["cron"] == "0 0 3 * * *"
    status, rules = api("/projects/test/immutabletagrules", admin)
    assert status == 200 and [r["tag_selectors"][0]["pattern"] for r in rules] == ["release-*"]
    status, gc = api("/system/gc/schedule", admin)
    assert status == 200 and gc["schedule"]["type"] == "Weekly"
    status, policies = api("/replication/policies?name=test-to-prod", admin)
    assert status == 200 and len(policies) == 1
    policy = policies[0]
    assert policy["dest_registry"]["name"] == "prod-harbor" and policy["dest_registry"]["url"] == "https://harbor.prod.example"
    assert policy["dest_namespace"] == "prod" and policy["trigger"]["type"] == "event_based"
    assert {f["type"]: f["value"] for f in policy["filters"]} == {"name": "test/**", "tag": "release-*"}


def test_the_robot_has_its_permissions_and_the_kept_secret_logs_in(admin, kept):
    test = project("test", admin)
    query = urllib.parse.quote("Level=project,ProjectID=%d" % test["project_id"])
    status, robots = api("/robots?q=" + query, admin)
    assert status == 200
    robot = next(r for r in robots if r["name"] == ROBOT)
    assert robot["permissions"] == [{"kind": "project", "namespace": "test", "access": [{"resource": "repository", "action": "pull"}]}]
    # Harbor generated the secret; berth kept it in the inventory's secrets file.
    secret = kept["harbor_robots"]["%s/%s" % (NAME, ROBOT)]
    assert api("/projects/test", (ROBOT, secret))[0] == 200
    assert api("/projects/prod", (ROBOT, secret))[0] == 403
    assert api("/projects/test", (ROBOT, secret + "x"))[0] == 401


def test_the_stand_in_saw_no_request_or_answer_outside_harbors_swagger():
    assert "violation" not in read("harbor-standin.log")


def flatten(data, prefix=""):
    for key, value in data.items():
        yield prefix + key
        if isinstance(value, dict):
            yield from flatten(value, prefix + key + ".")


def test_harbor_yml_is_private_and_uses_only_template_keys(host, admin):
    rendered = host.file("/opt/harbor/harbor.yml")
    assert rendered.user == "root" and rendered.mode == 0o600
    config = yaml.safe_load(rendered.content_string)
    assert set(flatten(config)) <= reference_keys()
    assert config["hostname"] == NAME
    assert config["https"] == {"port": 443, "certificate": "%s/%s.crt" % (TLS, NAME), "private_key": "%s/%s.key" % (TLS, NAME)}
    # Compared, never shown.
    passwords_match = config["harbor_admin_password"] == admin[1] and config["database"]["password"] == read("harbor-database").split()[0]
    assert passwords_match


def test_the_certificate_verifies_against_the_ca_and_serves_tls(host):
    result = host.run(f"openssl verify -CAfile {TLS}/ca.crt {TLS}/{NAME}.crt")
    assert result.rc == 0 and ": OK" in result.stdout, result.stdout + result.stderr
    names = host.check_output("openssl x509 -noout -ext subjectAltName -in %s/%s.crt" % (TLS, NAME))
    assert "DNS:%s" % NAME in names and "IP Address:127.0.0.1" in names
    # The API calls from the control host trust the same CA.
    assert host.file("%s/ca.crt" % TLS).content_string == read("inventory/berth-ca.crt")
    # Harbor's own server does not run here; openssl serves the same pair.
    server = "systemd-run --unit harbor-tls-probe openssl s_server -quiet -accept 8443 -cert {0}/{1}.crt -key {0}/{1}.key"
    host.check_output(server.format(TLS, NAME))
    try:
        client = "openssl s_client -connect 127.0.0.1:8443 -CAfile {0}/ca.crt -verify_return_error -verify_hostname {1} </dev/null"
        good = host.run("for i in 1 2 3 4 5; do %s && break; sleep 1; done" % client.format(TLS, NAME))
        assert good.rc == 0 and "Verify return code: 0 (ok)" in good.stdout, good.stdout + good.stderr
        assert host.run(client.format(TLS, "other.berth.test")).rc != 0
    finally:
        host.run("systemctl stop harbor-tls-probe")


def test_no_password_or_secret_reached_a_log(host, admin, kept):
    secrets = {
        "admin password": admin[1],
        "database password": read("harbor-database").split()[0],
        "replication secret": read("harbor-promoter").split()[0],
        "robot secret": kept["harbor_robots"]["%s/%s" % (NAME, ROBOT)],
    }
    logs = {name: read(name).encode() for name in ("ansible.log", "harbor-standin.log")}
    # The log is this run's: converge applied the robots.
    assert b"Robot accounts" in logs["ansible.log"]
    logs["host journal"] = host.run("journalctl --no-pager -o cat").stdout_bytes
    logs["host log files"] = host.run("find /var/log /run/log -type f -exec cat {} + 2>/dev/null").stdout_bytes
    leaks = sorted(
        "%s in %s" % (what, where) for what, secret in secrets.items() for where, text in logs.items() if secret.encode() in text
    )
    assert leaks == []
