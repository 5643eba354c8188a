"""The rancher role on the test lab against the Rancher stand-in, which serves
HTTPS with its own CA on the control host, where every lab host can reach it.
Server side: bootstrap through the API and a custom cluster. Node side: every
node of the cluster runs the served system-agent installer (a recorder) with
its role flags and the CA checksum, once. The cluster's port sets open to
the cluster's own nodes only, proven with real packets."""

import json
import os
import sys

import pytest
import yaml
from labtools import ROOT, can_connect, lab_exec, lab_secrets, throwaway_tls

sys.path.insert(0, os.path.join(ROOT, "tests"))
from rancher_standin import RancherStandIn

BOOTSTRAP = "Bootstrap-7a1c-pass"
ADMIN = "Rancher-admin-5e9b02"
VERSION = "v1.30.4+rke2r1"
CLUSTER = {
    "name": "lab",
    "kubernetes_version": VERSION,
    "etcd": ["rancher_etcd"],
    "controlplane": ["rancher_etcd"],
    "worker": ["rancher_workers"],
}


@pytest.fixture(scope="module")
def rancher(lab, tmp_path_factory):
    names = sorted(lab.hosts)
    pick = {suffix: next(n for n in names if n.endswith(suffix)) for suffix in ("-a1", "-a2", "-b1", "-b2", "-c1")}
    gateway = lab_exec(pick["-a1"], "ip route show default", check=True).stdout.split()[2]
    work = tmp_path_factory.mktemp("rancher")
    # Rancher's own self-signed CA, as a default Docker install has.
    throwaway_tls(work, ["IP:" + gateway, "IP:127.0.0.1"], "dynamiclistener-ca")
    # Host vars, so they outrank the lab's group_vars/all (inline group vars would not).
    node_firewall = {
        "rancher_node_firewall": "{{ rancher_clusters | berth.ops.berth_rancher_firewall(groups, hostvars, inventory_hostname) }}",
        "firewall_extra_port_sets": "{{ rancher_node_firewall.port_sets }}",
        "firewall_allow": "{{ {'ssh': {'buildings': ['all']}, 'registry': {'buildings': ['all']}} | combine(rancher_node_firewall.allow) }}",
    }
    overlay = {
        "all": {
            "children": {
                "rancher_server": {"hosts": {pick["-a2"]: {}}},
                "rancher_etcd": {"hosts": {pick["-b1"]: node_firewall}},
                "rancher_workers": {"hosts": {pick["-b2"]: node_firewall, pick["-a1"]: node_firewall}},
                "rancher_nodes": {"children": {"rancher_etcd": {}, "rancher_workers": {}}},
            }
        }
    }
    (work / "rancher.yml").write_text(yaml.safe_dump(overlay))
    with RancherStandIn(
        BOOTSTRAP, host="0.0.0.0", certfile=str(work / "server.pem"), keyfile=str(work / "server.key"), cafile=str(work / "ca.pem")
    ) as server:
        url = "https://%s:%d" % (gateway, server.port)
        yield {"lab": lab, "server": server, "url": url, "work": work, "hosts": pick}
        assert server.violations == []


def converge(rancher, *args, **overrides):
    settings = {
        "rancher_server_container": False,
        "rancher_url": rancher["url"],
        "rancher_api_ca_path": str(rancher["work"] / "ca.pem"),
        "rancher_bootstrap_password": BOOTSTRAP,
        "rancher_admin_password": ADMIN,
        "rancher_clusters": [CLUSTER],
        "rancher_ping_timeout": 20,
    }
    settings.update(overrides)
    return rancher["lab"].playbook(
        "-i", str(rancher["work"] / "rancher.yml"), "playbooks/site.yml", "--tags", "rancher", "-e", json.dumps(settings), *args
    )


def secrets(rancher):
    token = lab_secrets(rancher["lab"]).get("rancher_token")
    found = [BOOTSTRAP, ADMIN] + ([token] if token else [])
    found += [t["token"] for t in rancher["server"].state.registration_tokens.values()]
    return found


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"rancher_clusters": [dict(CLUSTER, worker=["rancher_etcd"])]},
            "is in rancher_nodes but in no etcd, controlplane or worker group",
        ),
        ({"rancher_clusters": [dict(CLUSTER, kubernetes_version="1.30")]}, "is not an RKE2 or K3s version"),
        ({"rancher_bootstrap_password": ""}, "rancher_bootstrap_password is missing"),
        ({"rancher_server_url": "http://rancher.example"}, "must be an https URL"),
    ],
)
def test_bad_input_fails_clearly_and_changes_nothing(rancher, overrides, message):
    before = len(rancher["server"].requests)
    run = converge(rancher, **overrides)
    assert run.returncode != 0
    assert message in " ".join(run.output.split()), run.explain()
    assert run.total_changed() == 0, run.explain()
    assert rancher["server"].requests[before:] == []


def test_a_failed_bootstrap_says_which_step_and_status_but_no_secret(rancher):
    before = len(rancher["server"].requests)
    wrong = {"rancher_bootstrap_password": "Wrong-bootstrap-55", "rancher_admin_password": "Wrong-admin-pass-77"}
    run = converge(rancher, **wrong)
    assert run.returncode != 0
    text = " ".join(run.output.split())
    assert (
        "Rancher bootstrap failed to log in with the bootstrap password (HTTP 401): "
        "Rancher accepts neither the admin password nor the bootstrap password" in text
    ), run.explain()
    assert run.total_changed() == 0, run.explain()
    for secret in [*wrong.values(), *secrets(rancher)]:
        assert secret not in run.output
    # Only logins were tried; nothing was changed in Rancher.
    tried = rancher["server"].requests[before:]
    assert tried and all(method == "GET" or path == "/v3-public/localProviders/local" for method, path, _ in tried), tried


def test_bootstrap_cluster_and_node_registration_then_nothing_to_do(rancher):
    server = rancher["server"]
    first = converge(rancher)
    assert first.returncode == 0, first.explain()
    assert "Rancher bootstrap: admin password set, automation token created, server-url set" in " ".join(first.output.split())
    assert server.admin_password == ADMIN
    assert server.state.settings["server-url"]["value"] == rancher["url"]
    (cluster,) = server.state.clusters.values()
    assert cluster["spec"]["kubernetesVersion"] == VERSION
    agents = {record["node_name"]: record for record in server.state.agents}
    hosts = rancher["hosts"]
    assert {name: sorted(record["roles"]) for name, record in agents.items()} == {
        hosts["-b1"]: ["controlplane", "etcd"],
        hosts["-b2"]: ["worker"],
        hosts["-a1"]: ["worker"],
    }
    for name, record in agents.items():
        assert record["ca_checksum"] == server.ca_checksum
        assert record["server"] == rancher["url"]
        assert "--insecure" not in record["args"] and "-k" not in record["args"]
        building = "bldg_b" if name.endswith(("-b1", "-b2")) else "bldg_a"
        assert "berth.io/building=%s" % building in record["labels"]
    assert lab_exec(hosts["-c1"], "test -e /var/lib/rancher/agent/rancher2_connection_info.json").returncode != 0

    again = converge(rancher)
    assert again.returncode == 0, again.explain()
    assert again.total_changed() == 0, again.explain()
    assert "Rancher bootstrap: nothing to do" in " ".join(again.output.split())
    assert len(server.state.agents) == 3  # registered nodes are skipped
    for secret in secrets(rancher):
        assert secret not in first.output and secret not in again.output


def test_cluster_ports_open_to_the_clusters_nodes_only(rancher):
    lab, hosts = rancher["lab"], rancher["hosts"]
    target = hosts["-b1"]
    address = lab.hosts[target]
    extra = json.dumps({"rancher_clusters": [CLUSTER]})
    run = lab.playbook(
        "-i", str(rancher["work"] / "rancher.yml"), "playbooks/site.yml", "--tags", "firewall", "--limit", target, "-e", extra
    )
    assert run.returncode == 0, run.explain()
    lab_exec(target, "systemctl stop rke2-standin 2>/dev/null; systemd-run --unit rke2-standin python3 -m http.server 9345", check=True)
    try:
        lab_exec(target, "for i in $(seq 20); do nc -z 127.0.0.1 9345 && break; sleep 0.2; done")
        assert can_connect(hosts["-b2"], address, 9345)  # worker, same building
        assert can_connect(hosts["-a1"], address, 9345)  # worker, another building
        assert not can_connect(hosts["-c1"], address, 9345)  # not in the cluster
        assert not can_connect(hosts["-a2"], address, 9345)  # the Rancher server is no cluster node
    finally:
        lab_exec(target, "systemctl stop rke2-standin")
        back = lab.playbook("playbooks/site.yml", "--tags", "firewall", "--limit", target)
        assert back.returncode == 0, back.explain()
