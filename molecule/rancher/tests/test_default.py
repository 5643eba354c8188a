"""Verify of the rancher scenario: the stand-in's API holds the bootstrap, the
cluster and one automation token; the host registered once, through the
served installer, with its roles, labels and the CA checksum; the token is
kept encrypted in the secrets file and in no plain file."""

import hashlib
import json
import os
import ssl
import urllib.request

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
SECRETS = os.path.join(EPHEMERAL, "berth_secrets.vault.yml")
RECORD = "/var/lib/rancher-standin/agent-install.json"
INSTALL_DIR = "/var/lib/berth/rancher"


def ephemeral(name):
    with open(os.path.join(EPHEMERAL, name), "rb") as stream:
        return stream.read()


URL = ephemeral("rancher-url").decode().strip()
CA = ephemeral("ca.pem")


def state():
    return json.loads(ephemeral("standin-state.json"))


def api(path, token):
    request = urllib.request.Request(URL + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, context=ssl.create_default_context(cadata=CA.decode()), timeout=10) as response:
        return response.status, json.load(response)


@pytest.fixture(scope="module")
def token():
    """The automation token, opened from the secrets file as an operator would.
    Tests assert on its ID or on booleans only, so a failure never shows it."""
    password = ephemeral("vault-pass").strip()
    plain = VaultLib([("default", VaultSecret(password))]).decrypt(ephemeral("berth_secrets.vault.yml"))
    return yaml.safe_load(plain)["berth_secrets"]["rancher_token"]


def token_parts(token):
    """(ID, key) of a token-xxxxx:key API token."""
    token_id, _, key = token.partition(":")
    return token_id, key


@pytest.fixture(scope="module")
def record(host):
    return json.loads(host.file(RECORD).content_string)


def automation_tokens():
    return [t["id"] for t in state()["tokens"] if t["description"] == "berth automation"]


def test_every_api_call_had_a_documented_shape():
    # The stand-in refuses and logs calls Rancher would not understand.
    violations = [line for line in ephemeral("rancher-standin.log").decode().splitlines() if line.startswith("violation:")]
    assert violations == []


def test_rancher_was_bootstrapped_with_the_server_url():
    current = state()
    (admin,) = current["users"]
    assert admin["passwordChanged"] and not admin["mustChangePassword"]
    assert current["settings"]["server-url"] == URL


def test_one_automation_token_and_it_is_the_stored_one(token):
    (token_id,) = automation_tokens()
    stored_id, _ = token_parts(token)
    assert stored_id == token_id
    # Rancher accepts it: the API shows the same single automation token.
    status, listed = api("/v3/tokens", token)
    assert status == 200
    assert [t["id"] for t in listed["data"] if t.get("description") == "berth automation"] == [token_id]


def test_the_cluster_exists_and_is_ready_with_its_one_node(token):
    status, cluster = api("/v1/provisioning.cattle.io.clusters/fleet-default/molecule", token)
    assert status == 200
    assert cluster["spec"]["kubernetesVersion"] == "v1.30.4+rke2r1"
    assert cluster["metadata"]["labels"]["berth.io/scenario"] == "molecule"
    assert cluster["status"]["clusterName"].startswith("c-m-")
    # Ready once connected nodes cover etcd, controlplane and worker.
    assert cluster["status"]["ready"] is True
    (machine,) = state()["machines"]
    assert machine["clusterId"] == cluster["status"]["clusterName"]
    assert machine["roles"] == ["etcd", "controlplane", "worker"]


def test_the_node_ran_the_installer_once(host, record):
    (agent,) = state()["agents"]  # one run over two converges
    assert agent["cattle_id"] == record["cattle_id"] == host.file("/etc/rancher/agent/cattle-id").content_string.strip()
    assert record["node_name"] == host.backend.get_hostname()
    assert record["systemd"] == "started"
    service = host.service("rancher-system-agent")
    assert service.is_running and service.is_enabled
    connection = host.file("/var/lib/rancher/agent/rancher2_connection_info.json")
    assert connection.mode == 0o600 and connection.user == "root"


def test_the_installer_got_the_roles_labels_and_ca_checksum(record):
    assert record["server"] == URL
    assert record["roles"] == ["etcd", "controlplane", "worker"]
    assert {"--etcd", "--controlplane", "--worker"} <= set(record["args"])
    assert record["ca_checksum"] == hashlib.sha256(CA).hexdigest()
    assert "--insecure" not in record["args"] and "-k" not in record["args"]
    assert sorted(record["labels"]) == ["berth.io/building=bldg_molecule", "berth.io/environment=molecule", "berth.io/rack=r1"]


def test_the_node_trusts_rancher_by_its_ca_only(host):
    assert host.file("%s/ca.pem" % INSTALL_DIR).content == CA
    pinned = host.run("curl -sS --cacert %s/ca.pem %s/ping" % (INSTALL_DIR, URL))
    assert pinned.rc == 0 and pinned.stdout == "pong", pinned.stderr
    # The system's trust store does not know Rancher's CA.
    assert host.run("curl -sS -o /dev/null %s/ping" % URL).rc == 60


def test_the_token_is_kept_encrypted(token):
    with open(SECRETS, encoding="utf-8") as stream:
        assert stream.readline().startswith("$ANSIBLE_VAULT;1.1;AES256")
    token_id, key = token_parts(token)
    assert token_id.startswith("token-")
    has_key = len(key) > 0
    assert has_key


def test_the_token_is_in_no_plain_file_on_the_controller(token):
    key = token_parts(token)[1].encode()
    leaked = []
    for top in (EPHEMERAL, PROJECT):
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not (folder == PROJECT and d in (".venv", ".git"))]
            for name in files:
                path = os.path.join(folder, name)
                if path == SECRETS or not os.path.isfile(path):
                    continue
                try:
                    with open(path, "rb") as stream:
                        if key in stream.read():
                            leaked.append(path)
                except OSError:
                    continue  # gone since the walk listed it
    assert leaked == []


def test_the_token_never_reached_the_node(host, record, token):
    # The node registered with the cluster's registration token, not this one.
    token_id, key = token_parts(token)
    key_in_record = key in json.dumps(record)
    assert not key_in_record
    # The token's ID is not secret: searched for on the node, it is nowhere.
    found = host.run("grep -rlF -- %s /etc /var/lib /root /tmp /opt /srv" % token_id)
    assert found.rc == 1, found.stdout
