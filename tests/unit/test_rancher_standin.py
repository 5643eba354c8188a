"""The Rancher API stand-in (tests/rancher_standin): it answers berth's Rancher calls
in Rancher's shapes over real HTTPS, refuses undocumented ones, and its
system-agent-install.sh records a registration without installing anything.

The client side is plain urllib; the CA and server certificate are throwaway ones
made with the openssl CLI.
"""

import base64
import hashlib
import importlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections import namedtuple

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
standin = importlib.import_module("rancher_standin")

BOOTSTRAP = "bootstrap-secret"
NEW_PASSWORD = "a-much-longer-admin-password"
CLUSTERS = "/v1/provisioning.cattle.io.clusters"
MUST_AUTHENTICATE = {"type": "error", "status": "401", "message": "Unauthorized 401: must authenticate"}
Reply = namedtuple("Reply", "status headers body")
Certs = namedtuple("Certs", "ca cert key")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (d / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    for command in (
        ["req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=berth test CA"]
        + ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "2", "-days", "2"]
        + ["-out", "server.pem", "-extfile", "server.ext"],
    ):
        subprocess.run(["openssl", *command], cwd=d, check=True, capture_output=True)
    return Certs(str(d / "ca.pem"), str(d / "server.pem"), str(d / "server.key"))


@pytest.fixture
def rancher(certs):
    with standin.RancherStandIn(BOOTSTRAP, certfile=certs.cert, keyfile=certs.key, cafile=certs.ca) as server:
        server.client_context = ssl.create_default_context(cafile=certs.ca)
        yield server


def call(rancher, method, path, body=None, token=None, basic=None, headers=None, data=None, content_type="application/json"):
    data = json.dumps(body).encode() if body is not None else data
    request = urllib.request.Request(rancher.url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    if token:
        request.add_header("Authorization", "Bearer " + token)
    if basic:
        request.add_header("Authorization", "Basic " + base64.b64encode(basic.encode()).decode())
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, context=getattr(rancher, "client_context", None), timeout=10) as response:
            status, reply_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, reply_headers, raw = exc.code, exc.headers, exc.read()
    parsed = json.loads(raw) if raw and reply_headers.get("Content-Type", "").startswith("application/json") else raw
    return Reply(status, reply_headers, parsed)


def login(rancher, password, **extra):
    return call(
        rancher,
        "POST",
        "/v3-public/localProviders/local?action=login",
        {"username": "admin", "password": password, "responseType": "token", **extra},
    )


def admin_token(rancher):
    reply = login(rancher, BOOTSTRAP)
    assert reply.status == 201, reply
    return reply.body["token"]


def norman_error(reply, status, code):
    assert reply.status == status, reply
    assert reply.body["type"] == "error" and reply.body["baseType"] == "error", reply.body
    assert reply.body["status"] == status and reply.body["code"] == code and reply.body["message"], reply.body
    return reply.body["message"]


def steve_error(reply, status, code):
    assert reply.status == status, reply
    assert reply.body["type"] == "error" and reply.body["status"] == status and reply.body["code"] == code, reply.body
    return reply.body["message"]


def cluster_body(name="lab", version="v1.30.4+rke2r1"):
    return {
        "type": "provisioning.cattle.io.cluster",
        "metadata": {"name": name, "namespace": "fleet-default"},
        "spec": {"kubernetesVersion": version, "rkeConfig": {}},
    }


def registered_cluster(rancher, token):
    """Create a cluster, let the "controller" assign its id, return (cluster id, registration token)."""
    assert call(rancher, "POST", CLUSTERS, cluster_body(), token).status == 201
    cluster_id = call(rancher, "GET", CLUSTERS + "/fleet-default/lab", token=token).body["status"]["clusterName"]
    tokens = call(rancher, "GET", "/v3/clusterregistrationtokens?clusterId=" + cluster_id, token=token).body["data"]
    return cluster_id, tokens[0]


# -- the API -------------------------------------------------------------------------------------------
def test_ping_health_and_cacerts_need_no_auth(rancher, certs):
    assert rancher.url.startswith("https://127.0.0.1:")
    ping = call(rancher, "GET", "/ping")
    assert (ping.status, ping.body, ping.headers["Content-Type"].split(";")[0]) == (200, b"pong", "text/plain")
    assert call(rancher, "GET", "/healthz").status == 200
    with open(certs.ca, "rb") as handle:
        pem = handle.read()
    cacerts = call(rancher, "GET", "/cacerts")
    # A node's --ca-checksum is the sha256 of exactly these bytes.
    assert cacerts.body == pem and hashlib.sha256(cacerts.body).hexdigest() == rancher.ca_checksum
    assert rancher.violations == []


def test_bootstrap_flow(rancher):
    wrong = login(rancher, "not-the-password")
    assert norman_error(wrong, 401, "Unauthorized") == "authentication failed"

    reply = login(rancher, BOOTSTRAP, description="berth bootstrap")
    assert reply.status == 201
    token = reply.body
    assert token["type"] == "token" and token["token"].startswith(token["id"] + ":") and token["id"].startswith("token-")
    assert token["userId"].startswith("user-") and token["isDerived"] is False and token["description"] == "berth bootstrap"
    me = call(rancher, "GET", "/v3/users?me=true", token=token["token"]).body["data"]
    assert [(u["username"], u["id"], u["mustChangePassword"]) for u in me] == [("admin", token["userId"], True)]

    change = "/v3/users?action=changepassword"
    short = call(rancher, "POST", change, {"currentPassword": BOOTSTRAP, "newPassword": "short"}, token["token"])
    assert norman_error(short, 422, "InvalidBodyContent") == "Password must be at least 12 characters"
    wrong_current = call(rancher, "POST", change, {"currentPassword": "guess-guess-guess", "newPassword": NEW_PASSWORD}, token["token"])
    assert norman_error(wrong_current, 422, "InvalidBodyContent") == "invalid current password"
    done = call(rancher, "POST", change, {"currentPassword": BOOTSTRAP, "newPassword": NEW_PASSWORD}, token["token"])
    assert (done.status, done.body) == (200, b"")

    assert rancher.admin_password == NEW_PASSWORD
    assert norman_error(login(rancher, BOOTSTRAP), 401, "Unauthorized") == "authentication failed"
    new_token = login(rancher, NEW_PASSWORD).body["token"]
    assert call(rancher, "GET", "/v3/settings/first-login", token=new_token).body["value"] == "false"
    assert call(rancher, "GET", "/v3/users?me=true", token=new_token).body["data"][0]["mustChangePassword"] is False
    assert rancher.violations == []


def test_api_tokens(rancher):
    session = admin_token(rancher)
    created = call(rancher, "POST", "/v3/token", {"type": "token", "description": "berth automation", "ttl": 0}, session)
    assert created.status == 201
    api = created.body
    assert api["token"].startswith(api["id"] + ":") and api["isDerived"] is True and api["description"] == "berth automation"
    assert api["ttl"] == 129600 * 60_000 and api["expiresAt"]  # ttl 0 is capped at auth-token-max-ttl-minutes

    listed = call(rancher, "GET", "/v3/tokens", token=api["token"])
    assert listed.body["type"] == "collection"
    assert {t["id"] for t in listed.body["data"]} == {session.split(":")[0], api["id"]}
    assert all("token" not in t for t in listed.body["data"])  # secrets are shown once, at creation
    got = call(rancher, "GET", "/v3/tokens/" + api["id"], token=session)
    assert (got.status, got.body["description"]) == (200, "berth automation")

    # Rancher also takes the token as basic auth: name as user, key as password.
    assert call(rancher, "GET", "/v3/tokens/" + api["id"], basic=api["token"]).status == 200
    assert call(rancher, "GET", "/v3/tokens", basic=api["id"] + ":wrong").body == MUST_AUTHENTICATE

    own_session = call(rancher, "DELETE", "/v3/tokens/" + session.split(":")[0], token=session)
    assert norman_error(own_session, 400, "BadRequest").startswith("Cannot delete token for current session")
    assert call(rancher, "DELETE", "/v3/tokens/" + api["id"], token=session).status == 204
    assert norman_error(call(rancher, "GET", "/v3/tokens/" + api["id"], token=session), 404, "NotFound")
    gone = call(rancher, "GET", "/v3/tokens", token=api["token"])
    assert (gone.status, gone.body) == (401, MUST_AUTHENTICATE)
    assert rancher.violations == []


def test_unauthenticated_requests_get_the_auth_filter_shape(rancher):
    for path in ("/v3/settings/server-url", "/v3/tokens", CLUSTERS, "/v3/clusterregistrationtokens"):
        for token in (None, "token-nope:secret"):
            reply = call(rancher, "GET", path, token=token)
            assert (reply.status, reply.body) == (401, MUST_AUTHENTICATE), path
    assert rancher.violations == []  # a refused credential is an outcome, not a shape error


def test_settings(rancher):
    token = admin_token(rancher)
    url = call(rancher, "GET", "/v3/settings/server-url", token=token).body
    assert (url["type"], url["id"], url["name"], url["value"], url["default"]) == ("setting", "server-url", "server-url", "", "")
    put = call(rancher, "PUT", "/v3/settings/server-url", {"name": "server-url", "value": "https://rancher.lab.example"}, token)
    assert (put.status, put.body["value"]) == (200, "https://rancher.lab.example")
    assert call(rancher, "GET", "/v3/settings/server-url", token=token).body["value"] == "https://rancher.lab.example"
    for bad in ("http://rancher.lab.example", "rancher.lab.example", "https://rancher.lab.example/dashboard", ""):
        reply = call(rancher, "PUT", "/v3/settings/server-url", {"name": "server-url", "value": bad}, token)
        assert norman_error(reply, 422, "InvalidBodyContent"), bad
    assert call(rancher, "GET", "/v3/settings/server-url", token=token).body["value"] == "https://rancher.lab.example"

    assert call(rancher, "GET", "/v3/settings/password-min-length", token=token).body["value"] == "12"
    assert call(rancher, "GET", "/v3/settings/first-login", token=token).body["value"] == "true"
    read_only = call(rancher, "PUT", "/v3/settings/cacerts", {"value": "x"}, token)
    assert norman_error(read_only, 405, "MethodNotAllow") == "cacerts is readOnly"
    assert rancher.violations == []
    assert call(rancher, "GET", "/v3/settings/no-such-setting", token=token).status == 404
    assert len(rancher.violations) == 1 and "no-such-setting" in rancher.violations[0]


def test_cluster_lifecycle(rancher):
    token = admin_token(rancher)
    created = call(rancher, "POST", CLUSTERS, cluster_body(), token)
    assert created.status == 201
    obj = created.body
    assert (obj["id"], obj["type"], obj["spec"]["kubernetesVersion"]) == (
        "fleet-default/lab",
        "provisioning.cattle.io.cluster",
        "v1.30.4+rke2r1",
    )
    assert obj["metadata"]["uid"] and obj["metadata"]["resourceVersion"] and "status" in obj
    assert "clusterName" not in obj["status"]  # assigned by the "controller" on the first read

    got = call(rancher, "GET", CLUSTERS + "/fleet-default/lab", token=token).body
    cluster_id = got["status"]["clusterName"]
    assert cluster_id.startswith("c-m-") and len(cluster_id) == 12
    assert got["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]
    assert call(rancher, "GET", CLUSTERS + "/fleet-default/lab", token=token).body["status"]["clusterName"] == cluster_id

    duplicate = call(rancher, "POST", CLUSTERS, cluster_body(), token)
    assert steve_error(duplicate, 409, "AlreadyExists") == 'clusters.provisioning.cattle.io "lab" already exists'
    for version in ("1.30.4", "v1.30.4", "v1.30.4+rke2", "v1.30.4-rke2r1", "v1.30.4+k3s"):
        assert steve_error(call(rancher, "POST", CLUSTERS, cluster_body("other", version), token), 422, "Invalid"), version
    assert call(rancher, "POST", CLUSTERS, cluster_body("k3s", "v1.29.8+k3s1"), token).status == 201
    missing = call(rancher, "GET", CLUSTERS + "/fleet-default/nope", token=token)
    assert steve_error(missing, 404, "NotFound") == 'clusters.provisioning.cattle.io "nope" not found'

    stale = dict(obj, spec={"kubernetesVersion": "v1.31.1+rke2r1", "rkeConfig": {}})
    assert steve_error(call(rancher, "PUT", CLUSTERS + "/fleet-default/lab", stale, token), 409, "Conflict")
    fresh = dict(got, spec={"kubernetesVersion": "v1.31.1+rke2r1", "rkeConfig": {}})
    updated = call(rancher, "PUT", CLUSTERS + "/fleet-default/lab", fresh, token)
    assert (updated.status, updated.body["spec"]["kubernetesVersion"], updated.body["metadata"]["generation"]) == (200, "v1.31.1+rke2r1", 2)

    listed = call(rancher, "GET", CLUSTERS, token=token).body
    assert listed["type"] == "collection" and [c["id"] for c in listed["data"]] == ["fleet-default/k3s", "fleet-default/lab"]
    assert call(rancher, "DELETE", CLUSTERS + "/fleet-default/lab", token=token).status == 200
    assert call(rancher, "GET", CLUSTERS + "/fleet-default/lab", token=token).status == 404
    assert call(rancher, "GET", "/v3/clusterregistrationtokens?clusterId=" + cluster_id, token=token).body["data"] == []
    assert rancher.violations == []


def test_registration_tokens(rancher):
    token = admin_token(rancher)
    cluster_id, registration = registered_cluster(rancher, token)
    assert (registration["type"], registration["clusterId"], registration["name"]) == (
        "clusterRegistrationToken",
        cluster_id,
        "default-token",
    )
    command = registration["nodeCommand"]
    assert command.startswith("curl -fL %s/system-agent-install.sh | " % rancher.url)
    assert "--server %s " % rancher.url in command and "--token %s " % registration["token"] in command
    assert command.endswith("--ca-checksum " + rancher.ca_checksum)
    assert registration["insecureNodeCommand"].startswith("curl --insecure -fL ")
    assert registration["command"] and registration["insecureCommand"] and registration["manifestUrl"]

    more = call(rancher, "POST", "/v3/clusterregistrationtokens", {"type": "clusterRegistrationToken", "clusterId": cluster_id}, token)
    assert more.status == 201 and more.body["clusterId"] == cluster_id and more.body["token"] != registration["token"]
    assert len(call(rancher, "GET", "/v3/clusterregistrationtokens?clusterId=" + cluster_id, token=token).body["data"]) == 2
    unknown = call(rancher, "POST", "/v3/clusterregistrationtokens", {"type": "clusterRegistrationToken", "clusterId": "c-m-nope"}, token)
    assert norman_error(unknown, 422, "InvalidReference")

    # With server-url set, commands point nodes there rather than at the URL the caller used.
    call(rancher, "PUT", "/v3/settings/server-url", {"name": "server-url", "value": "https://rancher.lab.example:8443"}, token)
    again = call(rancher, "GET", "/v3/clusterregistrationtokens?clusterId=" + cluster_id, token=token).body["data"][0]
    assert "--server https://rancher.lab.example:8443 " in again["nodeCommand"]
    assert rancher.violations == []


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "status"),
    [
        ("GET", "/v3/clusters", None, None, 404),  # real Rancher, but not modelled: berth should not need it
        ("GET", "/v3-public/authProviders", None, None, 404),
        ("PATCH", "/v3/settings/server-url", {"value": "https://x"}, "application/json", 405),
        ("PUT", "/v3/settings/server-url", {"value": "https://x"}, "text/plain", 415),
        ("PUT", "/v3/settings/server-url", {"name": "server-url"}, "application/json", 422),
        ("POST", "/v3/token", {"type": "token", "descripton": "typo"}, "application/json", 422),
        ("POST", CLUSTERS, {"metadata": {"name": "x"}, "spec": {"kubernetesVersion": "v1.30.4+rke2r1"}}, "application/json", 422),
        ("POST", CLUSTERS, {"metadata": {"name": "x", "namespace": "fleet-default"}, "spec": {"rkeConfig": {}}}, "application/json", 422),
        ("POST", CLUSTERS, dict(cluster_body(), spec={"kubernetesVersion": "v1.30.4+rke2r1", "rkeconfig": {}}), "application/json", 422),
    ],
)
def test_undocumented_requests_are_violations(rancher, method, path, body, content_type, status):
    token = admin_token(rancher)
    reply = call(rancher, method, path, body, token, content_type=content_type or "application/json")
    assert reply.status == status and reply.body["type"] == "error", reply
    assert len(rancher.violations) == 1 and rancher.violations[0].startswith("%s %s -> %d" % (method, path, status))
    assert rancher.requests[-1] == (method, path, status)


def test_login_body_is_checked(rancher):
    reply = call(
        rancher, "POST", "/v3-public/localProviders/local?action=login", {"username": "admin", "password": BOOTSTRAP, "remember": True}
    )
    assert norman_error(reply, 422, "InvalidBodyContent") == "unknown field(s) remember"
    reply = call(rancher, "POST", "/v3-public/localProviders/local?action=login", {"username": "admin"})
    assert norman_error(reply, 422, "MissingRequired")
    assert len(rancher.violations) == 2


def test_plain_http_without_a_ca():
    with standin.RancherStandIn(BOOTSTRAP) as rancher:
        assert rancher.url.startswith("http://") and rancher.ca_checksum is None
        assert call(rancher, "GET", "/cacerts").body == b""
        token = admin_token(rancher)
        _, registration = registered_cluster(rancher, token)
        assert "--ca-checksum" not in registration["nodeCommand"]  # Rancher omits it without a CA


def test_state_file_holds_no_secrets(certs, tmp_path):
    state_file = tmp_path / "state.json"
    with standin.RancherStandIn(BOOTSTRAP, certfile=certs.cert, keyfile=certs.key, cafile=certs.ca, state_file=str(state_file)) as rancher:
        rancher.client_context = ssl.create_default_context(cafile=certs.ca)
        token = admin_token(rancher)
        registered_cluster(rancher, token)
        api = call(rancher, "POST", "/v3/token", {"type": "token", "description": "berth"}, token).body["token"]
        state = json.loads(state_file.read_text())
    assert [c["metadata"]["name"] for c in state["clusters"]] == ["lab"] and state["clusters"][0]["status"]["clusterName"]
    assert {t["description"] for t in state["tokens"]} == {"", "berth"} and state["settings"]["server-url"] == ""
    text = state_file.read_text()
    assert BOOTSTRAP not in text and token.split(":")[1] not in text and api.split(":")[1] not in text


def test_cli_runs_from_a_copied_directory_with_the_stdlib_only(certs, tmp_path):
    copy = tmp_path / "rancher-standin-copy"  # not an importable package name on purpose
    shutil.copytree(os.path.join(TESTS, "rancher_standin"), copy, ignore=shutil.ignore_patterns("__pycache__"))
    state_file = tmp_path / "state.json"
    command = [sys.executable, "-I", "-S", str(copy / "server.py"), "--port", "0", "--bootstrap-password", BOOTSTRAP]
    command += ["--cert", certs.cert, "--key", certs.key, "--ca", certs.ca, "--state-file", str(state_file)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on https://127.0.0.1:"), line
        running = namedtuple("Running", "url client_context")(line.split()[-1], ssl.create_default_context(cafile=certs.ca))
        assert admin_token(running)
        assert json.loads(state_file.read_text())["tokens"]
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- the served install script ----------------------------------------------------------------------------
@pytest.fixture
def node(rancher, tmp_path):
    """A registered cluster plus a way to run the served install script as a node would,
    with STANDIN_ROOT so its files land in a temporary root."""
    token = admin_token(rancher)
    cluster_id, registration = registered_cluster(rancher, token)
    script = tmp_path / "system-agent-install.sh"
    script.write_bytes(call(rancher, "GET", "/system-agent-install.sh").body)
    root = tmp_path / "root"
    # python3 from this interpreter's directory: fast, and the one the script will find.
    env = dict(os.environ, STANDIN_ROOT=str(root), PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])

    def run(*args, stdin_script=False, **extra_env):
        command = ["sh", "-s", "-", *args] if stdin_script else ["sh", str(script), *args]
        return subprocess.run(
            command,
            check=False,
            input=script.read_text() if stdin_script else None,
            env=dict(env, **extra_env),
            capture_output=True,
            text=True,
            timeout=60,
        )

    base = ["--server", rancher.url, "--token", registration["token"], "--ca-checksum", rancher.ca_checksum]
    return namedtuple("Node", "run root base cluster_id token")(run, root, base, cluster_id, token)


def test_install_script_registers_a_node(rancher, node):
    extra = ["--etcd", "--controlplane", "--worker", "--node-name", "n1"] + [
        "--label",
        "tier=web",
        "--label",
        "b=2",
        "--taint",
        "t=1:NoSchedule",
    ]
    result = node.run(*node.base, *extra)
    assert result.returncode == 0, result.stderr
    record = json.loads((node.root / "var/lib/rancher-standin/agent-install.json").read_text())
    assert record["args"] == node.base + extra
    assert (record["roles"], record["labels"], record["taints"]) == (
        ["etcd", "controlplane", "worker"],
        ["tier=web", "b=2"],
        ["t=1:NoSchedule"],
    )
    assert record["node_name"] == "n1"
    assert (record["server"], record["ca_checksum"], record["systemd"]) == (rancher.url, rancher.ca_checksum, "skipped-standin-root")
    assert rancher.state.agents == [record] and call(rancher, "GET", "/standin/agents").body["data"] == [record]

    # What the real installer leaves behind, so "already registered" checks work as on a real node.
    config = (node.root / "etc/rancher/agent/config.yaml").read_text()
    assert "connectionInfoFile: /var/lib/rancher/agent/rancher2_connection_info.json\n" in config
    assert "workDirectory: /var/lib/rancher/agent/work\n" in config and "localPlanDirectory: /var/lib/rancher/agent/plans\n" in config
    info = json.loads((node.root / "var/lib/rancher/agent/rancher2_connection_info.json").read_text())
    assert set(info) == {"kubeConfig", "namespace", "secretName"} and info["namespace"] == "fleet-default"
    unit = (node.root / "etc/systemd/system/rancher-system-agent.service").read_text()
    assert (
        "ExecStart=/bin/sh -c 'exec sleep infinity'\n" in unit
        and "Environment=CATTLE_AGENT_CONFIG=/etc/rancher/agent/config.yaml\n" in unit
    )
    for path, mode in (
        ("etc/rancher/agent", 0o700),
        ("etc/rancher/agent/config.yaml", 0o600),
        ("var/lib/rancher/agent/rancher2_connection_info.json", 0o600),
    ):
        assert (node.root / path).stat().st_mode & 0o777 == mode, path

    # Rancher's side: the node connected with its roles, so the cluster became ready.
    cattle_id = (node.root / "etc/rancher/agent/cattle-id").read_text().strip()
    machine = rancher.state.machines[cattle_id]
    assert (machine["clusterId"], machine["roles"], machine["nodeName"]) == (node.cluster_id, ["etcd", "controlplane", "worker"], "n1")
    assert call(rancher, "GET", CLUSTERS + "/fleet-default/lab", token=node.token).body["status"]["ready"] is True

    # Piped into sh as Rancher's nodeCommand does; a second run keeps the node's identity.
    again = node.run(*node.base, "--worker", stdin_script=True)
    assert again.returncode == 0, again.stderr
    assert len(rancher.state.agents) == 2 and rancher.state.agents[1]["cattle_id"] == cattle_id == record["cattle_id"]
    assert rancher.violations == []


def test_install_script_refuses_a_wrong_ca_checksum(rancher, node):
    wrong = ["--server", rancher.url, "--token", node.base[3], "--ca-checksum", "0" * 64]
    result = node.run(*wrong, "--worker")
    assert result.returncode != 0 and "does not match given --ca-checksum" in result.stderr
    assert not (node.root / "var/lib/rancher/agent/rancher2_connection_info.json").exists()
    assert not (node.root / "var/lib/rancher-standin/agent-install.json").exists() and rancher.state.agents == []


@pytest.mark.parametrize(
    ("drop", "extra", "message"),
    [
        ("--token", [], "CATTLE_TOKEN was not set"),
        ("--server", [], "CATTLE_SERVER was not set"),
        ("--ca-checksum", [], "--ca-checksum is required"),
        (None, ["--insecure"], "Refusing --insecure"),
        (None, ["-k"], "Refusing -k"),
        (None, ["--bogus"], "Unknown argument passed in (--bogus)"),
    ],
)
def test_install_script_refuses_bad_arguments(rancher, node, drop, extra, message):
    args = list(node.base)
    if drop:
        index = args.index(drop)
        del args[index : index + 2]
    result = node.run(*args, *extra, "--worker")
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert rancher.state.agents == [] and not (node.root / "etc/rancher/agent/config.yaml").exists()


def test_install_script_needs_a_role_and_a_valid_registration_token(rancher, node):
    no_role = node.run(*node.base)
    assert no_role.returncode != 0 and "You must select at least one role." in no_role.stderr
    bad = list(node.base)
    bad[3] = "not-a-registration-token"
    result = node.run(*bad, "--worker")
    assert result.returncode != 0 and "401 received while downloading Rancher connection information" in result.stderr
    assert rancher.state.machines == {} and rancher.state.agents == []
