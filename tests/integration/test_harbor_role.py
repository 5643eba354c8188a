"""The harbor role on the test lab. A lab host of building B becomes B's Harbor:
berth issues its certificate from the lab CA, renders harbor.yml, reports the
install steps as not run (no offline installer here), waits for health and
applies the site's objects through the Harbor stand-in on the control host.
Building B's Docker hosts trust the Harbor with the same CA that signs the lab
registry; other buildings are left alone."""

import json
import os
import sys

import pytest
import yaml
from labtools import ROOT, lab_exec

sys.path.insert(0, os.path.join(ROOT, "tests"))
from harbor_standin import HarborStandIn
from harbor_standin.template_keys import reference_keys, shipped_passwords

ADMIN = "Harbor-admin-3d7f1a"
DATABASE = "Harbor-db-9e2b44"
ROBOT_SECRET = "Deployer-Secret-51c0"
NAME = "harbor-b.berth.test"

OBJECTS = {
    "harbor_projects": [
        {
            "name": "test",
            "auto_scan": True,
            "storage_quota": "20GB",
            "retention": {"schedule": "0 0 3 * * *", "rules": [{"template": "latestPushedK", "count": 10}]},
            "immutable_rules": [{"tag_matches": "release-*"}],
        },
        {"name": "prod", "public": False},
    ],
    "harbor_robots": [{"name": "deployer", "permissions": [{"project": "test", "access": ["repository:pull"]}], "secret": ROBOT_SECRET}],
    "harbor_gc": {"schedule": "weekly"},
    "harbor_replications": [
        {
            "name": "test-to-prod",
            "registry": {
                "name": "prod-harbor",
                "url": "https://harbor.prod.example",
                "access_key": "robot$promoter",
                "access_secret": "Promoter-77x",
            },
            "name_filter": "test/**",
            "tag_filter": "release-*",
            "dest_namespace": "prod",
            "trigger": "event_based",
        }
    ],
}


@pytest.fixture(scope="module")
def site(lab, tmp_path_factory):
    harbor_host = next(h for h in sorted(lab.hosts) if h.endswith("-b2"))
    overlay = tmp_path_factory.mktemp("harbor") / "harbor.yml"
    overlay.write_text(yaml.safe_dump({"all": {"children": {"harbor": {"hosts": {harbor_host: {}}}}}}))
    return {
        "lab": lab,
        "overlay": str(overlay),
        "host": harbor_host,
        "same": next(h for h in lab.hosts if h.endswith("-b1")),
        "other": next(h for h in lab.hosts if h.endswith("-a2")),
    }


def converge(site, api_url, *args, **overrides):
    settings = {
        "harbor_building": "bldg_b",
        "harbor_hostname": NAME,
        "harbor_tls_sans": ["DNS:" + NAME, "IP:127.0.0.1"],
        "harbor_admin_password": ADMIN,
        "harbor_database_password": DATABASE,
        "harbor_api_url": api_url,
        "harbor_health_timeout": 30,
        **OBJECTS,
    }
    settings.update(overrides)
    return site["lab"].playbook("-i", site["overlay"], "tests/integration/playbooks/harbor.yml", "-e", json.dumps(settings), *args)


def test_install_renders_trusts_and_applies_objects_idempotently(site):
    with HarborStandIn(ADMIN) as harbor:
        first = converge(site, harbor.url)
        assert first.returncode == 0, first.explain()
        assert "were not run: no offline installer was given" in " ".join(first.output.split())
        state = harbor.state
        assert {p["name"] for p in state.projects.values()} >= {"test", "prod"}
        assert state.robot_by_full_name("robot$test+deployer")["secret"] == ROBOT_SECRET
        assert len(state.retentions) == 1 and len(state.immutable_rules) == 1 and len(state.replication_policies) == 1
        assert state.gc_schedule["type"] == "Weekly"

        again = converge(site, harbor.url)
        assert again.returncode == 0, again.explain()
        assert again.total_changed() == 0, again.explain()
        assert harbor.violations == []
    for run in (first, again):
        for secret in (ADMIN, DATABASE, ROBOT_SECRET, "Promoter-77x"):
            assert secret not in run.output


def test_harbor_yml_on_the_host_uses_only_template_keys(site):
    rendered = lab_exec(site["host"], "stat -c %a /opt/harbor/harbor.yml && cat /opt/harbor/harbor.yml", check=True).stdout
    mode, _, text = rendered.partition("\n")
    assert mode == "600"
    config = yaml.safe_load(text)
    assert config["hostname"] == NAME
    assert config["https"]["certificate"] == "/etc/berth/harbor/%s.crt" % NAME
    assert config["harbor_admin_password"] == ADMIN and config["database"]["password"] == DATABASE
    assert set(flatten(config)) <= reference_keys()


def flatten(data, prefix=""):
    for key, value in data.items():
        yield prefix + key
        if isinstance(value, dict):
            yield from flatten(value, prefix + key + ".")


def test_the_building_trusts_its_harbor_with_the_registry_ca(site):
    trusted = "/etc/docker/certs.d/%s/ca.crt" % NAME
    registry = lab_exec(site["same"], "ls /etc/docker/certs.d", check=True).stdout.split()
    registry_ca = "/etc/docker/certs.d/%s/ca.crt" % next(r for r in registry if r != NAME)
    # The same lab CA signs the registry and Harbor, and it verifies Harbor's certificate.
    assert lab_exec(site["same"], "cmp %s %s" % (trusted, registry_ca)).returncode == 0
    certificate = lab_exec(site["host"], "cat /etc/berth/harbor/%s.crt" % NAME, check=True).stdout
    verify = lab_exec(
        site["same"], "cat > /tmp/harbor.crt <<'EOF'\n%sEOF\nopenssl verify -CAfile %s /tmp/harbor.crt" % (certificate, trusted)
    )
    assert verify.returncode == 0 and ": OK" in verify.stdout, verify.stdout + verify.stderr
    # A TLS server with Harbor's certificate on its port is trusted through Docker's certs.d entry.
    serve = "systemctl stop harbor-tls 2>/dev/null; systemd-run --unit harbor-tls openssl s_server -quiet -www -accept 443 -cert {0}.crt -key {0}.key"
    lab_exec(site["host"], serve.format("/etc/berth/harbor/" + NAME), check=True)
    try:
        address = site["lab"].hosts[site["host"]]
        probe = "curl -sS --max-time 5 -o /dev/null -w '%%{http_code}' --cacert %s --resolve %s:443:%s https://%s/" % (
            trusted,
            NAME,
            address,
            NAME,
        )
        result = lab_exec(site["same"], "for i in 1 2 3 4 5; do %s && break; sleep 1; done" % probe)
        assert result.stdout.strip().endswith("200"), result.stdout + result.stderr
    finally:
        lab_exec(site["host"], "systemctl stop harbor-tls")
    assert lab_exec(site["other"], "test -e %s" % trusted).returncode != 0


def test_api_calls_verify_the_issued_certificate(site, tmp_path):
    # The key never leaves the Harbor host; the stand-in borrows it from there.
    issued = str(tmp_path / NAME)
    for suffix in (".crt", ".key"):
        text = lab_exec(site["host"], "cat /etc/berth/harbor/%s%s" % (NAME, suffix), check=True).stdout
        with open(issued + suffix, "w", encoding="utf-8") as stream:
            stream.write(text)
    with HarborStandIn(ADMIN, certfile=issued + ".crt", keyfile=issued + ".key") as harbor:
        run = converge(site, harbor.url)
        assert run.returncode == 0, run.explain()
        assert harbor.state.project_by_name("test") is not None
        assert harbor.violations == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"harbor_admin_password": shipped_passwords()[0]}, "harbor_admin_password: must be set (from vault) and must not be one of"),
        ({"harbor_database_password": shipped_passwords()[1]}, "harbor_database_password: must be set (from vault) and must not be one of"),
        ({"harbor_admin_password": ""}, "harbor_admin_password: must be set"),
        ({"harbor_https_port": 70000}, "harbor_https_port: 70000 is not a port (1-65535)"),
        ({"harbor_http_port": 0}, "harbor_http_port: 0 is not a port (1-65535)"),
        ({"harbor_jobservice_workers": 0}, "harbor_jobservice_workers: 0 must be 1 or more"),
        ({"harbor_log_rotate_count": -1}, "harbor_log_rotate_count: -1 must be 0 or more"),
        ({"harbor_log_rotate_size": "lots"}, "harbor_log_rotate_size: lots is not a size such as 200M"),
        ({"harbor_config_extra": {"trivy": {"enabled": True}}}, "does not know: trivy.enabled"),
        ({"harbor_projects": [{"name": "Bad Name"}]}, "harbor_projects[0]: name: 'Bad Name' is not a valid Harbor project name"),
        ({"harbor_robots": [{"name": "x", "permissions": [{"project": "test", "access": ["repository:fly"]}]}]}, "'fly' cannot be granted"),
        ({"harbor_projects": [{"name": "test", "retention": {"rules": [{"template": "keepAll"}]}}]}, "unknown retention template"),
    ],
)
def test_bad_input_fails_clearly_and_changes_nothing(site, overrides, message):
    with HarborStandIn(ADMIN) as harbor:
        before = len(harbor.requests)
        run = converge(site, harbor.url, **overrides)
        assert run.returncode != 0
        assert " ".join(message.split()) in " ".join(run.output.split()), run.explain()
        assert run.total_changed() == 0, run.explain()
        assert not any(r[0] != "GET" for r in harbor.requests[before:])
    for secret in (ADMIN, DATABASE, *shipped_passwords()):
        assert secret not in run.output


def test_a_wrong_password_is_named_alone(site):
    with HarborStandIn(ADMIN) as harbor:
        run = converge(site, harbor.url, harbor_database_password="")
    text = " ".join(run.output.split())
    assert run.returncode != 0
    assert "harbor_database_password: must be set" in text, run.explain()
    assert "harbor_admin_password" not in text
    assert run.total_changed() == 0, run.explain()


def test_the_role_runs_with_its_own_defaults(site):
    # Only what has no default (the passwords), where the API answers (the
    # stand-in), and the test's glue; harbor_tls_sans and the rest are the
    # role's own defaults, so the certificate names the host's address too.
    host = site["host"]
    settings = {
        "harbor_building": "bldg_b",
        "harbor_hostname": host,  # the role's default (the inventory name), also needed by the glue play
        "harbor_admin_password": ADMIN,
        "harbor_database_password": DATABASE,
        "harbor_api_url": None,
    }
    with HarborStandIn(ADMIN) as harbor:
        settings["harbor_api_url"] = harbor.url
        run = site["lab"].playbook("-i", site["overlay"], "tests/integration/playbooks/harbor.yml", "-e", json.dumps(settings))
        assert run.returncode == 0, run.explain()
        assert harbor.violations == []
    sans = lab_exec(site["host"], "openssl x509 -noout -ext subjectAltName -in /etc/berth/harbor/%s.crt" % host, check=True).stdout
    assert "DNS:%s" % host in sans and "IP Address:%s" % site["lab"].hosts[host] in sans, sans
