"""No state on the control node: what berth makes once (the CA, a robot's
secret, the Rancher token) lives in the inventory's secrets file, encrypted
with ansible-vault, and nowhere else on the control node. The test lab is
converged with a Harbor and a Rancher (the stand-ins), every file berth wrote
on the control node outside the inventory is deleted, as on a throwaway
control node, and the next converge changes nothing: the same CA on the
hosts, the same token, the same robot secret, no secret in the output."""

import json
import os
import shutil
import sys

import pytest
import yaml
from labtools import ROOT, lab_exec, lab_secrets, throwaway_tls

sys.path.insert(0, os.path.join(ROOT, "tests"))
from harbor_standin import HarborStandIn
from rancher_standin import RancherStandIn

BOOTSTRAP = "Bootstrap-4e2d-state"
ADMIN = "Rancher-admin-9c1f77"
HARBOR_ADMIN = "Harbor-admin-6b2e90"
HARBOR_DATABASE = "Harbor-db-1f8c3a"
HARBOR_NAME = "harbor-c.berth.test"
ROBOT = "robot$state+puller"


@pytest.fixture(scope="module")
def site(lab, tmp_path_factory):
    names = sorted(lab.hosts)
    harbor_host = next(n for n in names if n.endswith("-c1"))
    rancher_host = next(n for n in names if n.endswith("-a2"))
    gateway = lab_exec(rancher_host, "ip route show default", check=True).stdout.split()[2]
    work = tmp_path_factory.mktemp("nostate")
    # Rancher's own self-signed CA, as a default Docker install has.
    throwaway_tls(work, ["IP:" + gateway, "IP:127.0.0.1"], "dynamiclistener-ca")
    overlay = {"all": {"children": {"harbor": {"hosts": {harbor_host: {}}}, "rancher_server": {"hosts": {rancher_host: {}}}}}}
    (work / "overlay.yml").write_text(yaml.safe_dump(overlay))
    with (
        HarborStandIn(HARBOR_ADMIN) as harbor,
        RancherStandIn(
            BOOTSTRAP, host="0.0.0.0", certfile=str(work / "server.pem"), keyfile=str(work / "server.key"), cafile=str(work / "ca.pem")
        ) as rancher,
    ):
        settings = {
            "harbor_hostname": HARBOR_NAME,
            "harbor_tls_sans": ["DNS:" + HARBOR_NAME],
            "harbor_admin_password": HARBOR_ADMIN,
            "harbor_database_password": HARBOR_DATABASE,
            "harbor_api_url": harbor.url,
            "harbor_health_timeout": 30,
            "harbor_projects": [{"name": "state"}],
            # No pinned secret: Harbor generates it, once.
            "harbor_robots": [{"name": "puller", "permissions": [{"project": "state", "access": ["repository:pull"]}]}],
            "rancher_server_container": False,
            "rancher_url": "https://%s:%d" % (gateway, rancher.port),
            "rancher_api_ca_path": str(work / "ca.pem"),
            "rancher_bootstrap_password": BOOTSTRAP,
            "rancher_admin_password": ADMIN,
            "rancher_ping_timeout": 20,
        }
        yield {"lab": lab, "harbor": harbor, "rancher": rancher, "work": work, "settings": settings, "harbor_host": harbor_host}
        assert harbor.violations == [] and rancher.violations == []


def converge(site, *args):
    return site["lab"].playbook("-i", str(site["work"] / "overlay.yml"), "playbooks/site.yml", "-e", json.dumps(site["settings"]), *args)


def ca_fingerprint(lab):
    """The CA as a lab host has it installed: Docker's trust of the registry."""
    host = next(h for h in sorted(lab.hosts) if h.endswith("-b1"))
    command = "openssl x509 -noout -fingerprint -sha256 -in /etc/docker/certs.d/$(ls /etc/docker/certs.d | head -1)/ca.crt"
    return lab_exec(host, command, check=True).stdout.strip()


def automation_tokens(rancher):
    return sorted(name for name, token in rancher.state.tokens.items() if token["description"] == "berth automation")


def forget_the_control_node(lab):
    """What a throwaway control node never had: every file berth wrote
    outside the inventory (the old .pki, .harbor-robots and .rancher state,
    the reports and the facts cached under .cache)."""
    for name in (".pki", ".harbor-robots", ".rancher", os.path.join(".cache", "image-cleanup")):
        shutil.rmtree(os.path.join(ROOT, name), ignore_errors=True)
    facts = os.path.join(ROOT, ".cache", "facts")
    for name in os.listdir(facts) if os.path.isdir(facts) else []:
        if any(name.endswith(host) for host in lab.hosts):
            os.remove(os.path.join(facts, name))


def secret_values(lab):
    stored = lab_secrets(lab)
    key_lines = [line for line in stored["pki_ca_key"].splitlines() if line and not line.startswith("-----")]
    return key_lines + list(stored.get("harbor_robots", {}).values()) + [stored["rancher_token"], stored["rancher_token"].split(":")[1]]


def test_a_fresh_control_node_converges_with_nothing_to_do(site):
    lab, harbor, rancher = site["lab"], site["harbor"], site["rancher"]
    first = converge(site)
    assert first.returncode == 0, first.explain()
    stored = lab_secrets(lab)
    assert {"pki_ca_cert", "pki_ca_key", "rancher_token", "harbor_robots"} <= set(stored), sorted(stored)
    robot_key = "%s/%s" % (HARBOR_NAME, ROBOT)
    robot_secret = stored["harbor_robots"][robot_key]
    assert harbor.state.robot_by_full_name(ROBOT)["secret"] == robot_secret
    tokens = automation_tokens(rancher)
    assert len(tokens) == 1 and stored["rancher_token"].startswith(tokens[0] + ":")
    fingerprint = ca_fingerprint(lab)
    # Nothing of it is a plain file on the control node.
    for name in (".pki", ".harbor-robots", ".rancher"):
        assert not os.path.exists(os.path.join(ROOT, name))

    forget_the_control_node(lab)
    again = converge(site)
    assert again.returncode == 0, again.explain()
    assert again.recap and all(changed == 0 for changed in again.changed().values()), again.explain()
    assert ca_fingerprint(lab) == fingerprint
    assert automation_tokens(rancher) == tokens
    assert "(automation token %s)" % tokens[0] in " ".join(again.output.split())
    assert harbor.state.robot_by_full_name(ROBOT)["secret"] == robot_secret
    assert lab_secrets(lab) == stored
    for secret in secret_values(lab):
        assert secret not in first.output and secret not in again.output


def test_a_token_rancher_no_longer_accepts_is_rotated_not_piled_up(site):
    lab, rancher = site["lab"], site["rancher"]
    (old,) = automation_tokens(rancher)
    # Revoked in Rancher, as an admin would: the stored token stops working.
    del rancher.state.tokens[old]
    rancher.state.add_token(rancher.state.admin, "berth automation", 0, derived=True)
    leftover = [name for name in automation_tokens(rancher) if name != old]
    run = converge(site, "--tags", "rancher")
    assert run.returncode == 0, run.explain()
    (new,) = automation_tokens(rancher)
    assert new not in (old, *leftover)
    assert lab_secrets(lab)["rancher_token"].startswith(new + ":")
    assert "1 stale automation token(s) deleted, automation token created" in " ".join(run.output.split())
    for secret in secret_values(lab):
        assert secret not in run.output
