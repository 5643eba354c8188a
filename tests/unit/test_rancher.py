"""The decisions behind the rancher role: cluster definitions from inventory
groups, node roles, the installer's arguments and the firewall sources."""

from ansible_collections.berth.ops.plugins.module_utils.berth_rancher import (
    bootstrap_failure,
    ca_checksum,
    censor,
    cluster_body,
    cluster_errors,
    cluster_roles,
    firewall_sources,
    install_arguments,
    kubernetes_version_error,
    node_membership,
    password_errors,
    server_url_error,
    stale_tokens,
    token_id,
)
from hypothesis import given
from hypothesis import strategies as st

GROUPS = {
    "etcd": ["n1", "n2", "n3"],
    "workers": ["w1", "w2", "n3"],
    "rancher_nodes": ["n1", "n2", "n3", "w1", "w2"],
}
CLUSTER = {"name": "lab", "kubernetes_version": "v1.30.4+rke2r1", "etcd": ["etcd"], "controlplane": ["etcd"], "worker": ["workers"]}


def test_roles_come_from_groups_and_may_combine():
    roles = cluster_roles(CLUSTER, GROUPS)
    assert roles["n1"] == ["etcd", "controlplane"]
    assert roles["n3"] == ["etcd", "controlplane", "worker"]
    assert roles["w1"] == ["worker"]
    assert node_membership([CLUSTER], GROUPS, "w2") == (CLUSTER, ["worker"])
    assert node_membership([CLUSTER], GROUPS, "elsewhere") == (None, [])


def test_valid_clusters_have_no_errors():
    assert cluster_errors([CLUSTER], GROUPS) == []


def test_cluster_errors_name_the_problem():
    groups = dict(GROUPS, rancher_nodes=GROUPS["rancher_nodes"] + ["lost"])
    bad = dict(CLUSTER, name="Lab_1", kubernetes_version="1.30", worker=["missing"])
    errors = cluster_errors([bad], groups)
    joined = "; ".join(errors)
    assert "must be a lower-case DNS label" in joined
    assert "is not an RKE2 or K3s version" in joined
    assert "no inventory group 'missing'" in joined
    assert "lost is in rancher_nodes but in no etcd, controlplane or worker group" in joined


def test_a_cluster_needs_etcd_and_controlplane_and_a_node_one_cluster():
    assert "no etcd node" in cluster_errors([dict(CLUSTER, etcd=[])], GROUPS)[0]
    other = dict(CLUSTER, name="other")
    assert any("several clusters" in e for e in cluster_errors([CLUSTER, other], GROUPS))


def test_versions_urls_and_passwords():
    assert kubernetes_version_error("v1.31.1+k3s1") is None
    assert kubernetes_version_error("v1.30") and kubernetes_version_error(None)
    assert server_url_error("https://rancher.example") is None
    for bad in ("http://rancher.example", "https://rancher.example/dashboard", "rancher.example", ""):
        assert server_url_error(bad)
    assert password_errors("boot", "Long-enough-12") == []
    assert "missing" in password_errors("", "Long-enough-12")[0]
    assert "at least 12" in password_errors("boot", "short")[0]
    assert "differ" in password_errors("Same-password-12", "Same-password-12")[0]


def test_install_arguments_are_secure_and_complete():
    args = install_arguments("https://r", "tok", "abc", ["etcd", "worker"], {"b": "2", "a": "1"}, "n1", "10.0.0.5")
    assert args == [
        "--server", "https://r", "--token", "tok", "--ca-checksum", "abc", "--etcd", "--worker",
        "--node-name", "n1", "--address", "10.0.0.5", "--internal-address", "10.0.0.5",
        "--label", "a=1", "--label", "b=2",
    ]  # fmt: skip
    assert "--insecure" not in args
    assert "--address" not in install_arguments("https://r", "t", "c", ["worker"], {}, "n", "")


def test_firewall_sources_are_the_clusters_nodes():
    addresses = {name: "10.0.0.%d" % n for n, name in enumerate(sorted(GROUPS["rancher_nodes"]), start=1)}
    server_node = firewall_sources([CLUSTER], GROUPS, addresses, "n1")
    assert server_node["port_sets"] == ["rke2_agent", "rke2_server"]
    assert server_node["allow"]["rke2_server"]["cidrs"] == sorted("%s/32" % a for a in addresses.values())
    assert firewall_sources([CLUSTER], GROUPS, addresses, "w1")["port_sets"] == ["rke2_agent"]
    assert firewall_sources([CLUSTER], GROUPS, addresses, "stranger") == {"port_sets": [], "allow": {}}


def test_cluster_object_and_checksum():
    body = cluster_body(CLUSTER)
    assert body["metadata"] == {"name": "lab", "namespace": "fleet-default", "labels": {}}
    assert body["spec"]["kubernetesVersion"] == "v1.30.4+rke2r1"
    assert ca_checksum("x") == ca_checksum(b"x") == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"


def test_a_failed_bootstrap_names_its_step_and_status_without_secrets():
    message = "Rancher POST /v3/users answered HTTP 422: newPassword Bootstrap-pass-1 must differ from token-abc12:s3cr3t-part"
    failure = bootstrap_failure("set the admin password", message, 422, ["Bootstrap-pass-1", "token-abc12:s3cr3t-part", None])
    assert failure.startswith("Rancher bootstrap failed to set the admin password (HTTP 422): Rancher POST /v3/users")
    assert "Bootstrap-pass-1" not in failure and "s3cr3t-part" not in failure
    assert bootstrap_failure("log in", "Rancher at https://r is unreachable: refused", None, []).endswith(
        "(no HTTP answer): Rancher at https://r is unreachable: refused"
    )


@given(st.text(min_size=1).filter(lambda text: "*" not in text), st.text(), st.text())
def test_censor_leaves_no_secret_behind(secret, before, after):
    assert secret not in censor(before + secret + after, [secret])


@given(st.text(alphabet="abcdef0123456789-", min_size=4), st.text(alphabet="abcdef0123456789", min_size=4))
def test_censor_hides_the_secret_part_of_a_token_on_its_own(name, key):
    assert key not in censor("saw %s in the answer" % key, ["token-%s:%s" % (name, key)])


def test_a_tokens_id_is_the_part_before_its_secret():
    assert token_id("token-abcde:s3cr3t") == "token-abcde"
    assert token_id("") is None and token_id(None) is None


def test_rotation_deletes_every_automation_token_but_the_session():
    tokens = [
        {"id": "token-aaaaa", "description": "berth automation"},
        {"id": "token-bbbbb", "description": "berth automation"},
        {"id": "token-ccccc", "description": "someone else's"},
        {"id": "token-ddddd", "description": "berth automation", "current": True},
        {"id": "token-eeeee", "description": "berth automation"},
    ]
    assert stale_tokens(tokens, "berth automation", keep="token-eeeee") == ["token-aaaaa", "token-bbbbb"]
    assert stale_tokens(tokens, "nobody") == []
    assert stale_tokens([], "berth automation") == []
