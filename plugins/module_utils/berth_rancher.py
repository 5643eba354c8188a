"""Rancher for berth: the decisions behind the rancher role and modules
(cluster definitions from inventory groups, node roles, install arguments,
firewall sources, token rotation). Plain functions without I/O; the API
client the rancher modules share is in berth_rancher_client."""

import hashlib
import re

from ansible.module_utils.six.moves.urllib.parse import urlsplit

KUBERNETES_VERSION = re.compile(r"^v1\.\d+\.\d+\+(?:rke2r\d+|k3s\d+)$")
CLUSTER_NAME = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^(?:[a-z0-9.-]+/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
NODE_ROLES = ("etcd", "controlplane", "worker")
FLEET_NAMESPACE = "fleet-default"
PASSWORD_MIN_LENGTH = 12  # Rancher's default password-min-length
# Where the system agent keeps its connection once a node has registered.
AGENT_CONNECTION_FILE = "/var/lib/rancher/agent/rancher2_connection_info.json"


def server_url_error(url):
    parts = urlsplit(url or "")
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return "server-url %r must be an https URL of the server alone, e.g. https://rancher.example" % (url,)
    return None


def censor(text, secrets):
    """`text` with every secret (and the secret part of a name:secret
    token) replaced by asterisks, longest first."""
    words = set()
    for secret in secrets or []:
        if secret:
            words.add(str(secret))
            words.update(part for part in str(secret).split(":")[1:] if part)
    for word in sorted(words, key=len, reverse=True):
        text = text.replace(word, "********")
    return text


def bootstrap_failure(step, message, status, secrets):
    """What a failed bootstrap says: the step, Rancher's HTTP status and its
    answer, with the run's passwords and tokens removed."""
    answer = "HTTP %s" % status if status is not None else "no HTTP answer"
    return "Rancher bootstrap failed to %s (%s): %s" % (step, answer, censor(message, secrets))


def token_id(token):
    """The ID of an API token (token-xxxxx), the part before its secret."""
    return (token or "").split(":", 1)[0] or None


def stale_tokens(tokens, description, keep=None):
    """IDs of the automation tokens (by `description`) to delete before a new
    one is made: all of them but `keep`, never a login session's own."""
    found = []
    for token in tokens or []:
        name = token.get("id") or token.get("name")
        if token.get("description") != description or name == keep or token.get("current"):
            continue
        found.append(name)
    return sorted(found)


def kubernetes_version_error(version):
    if not isinstance(version, str) or not KUBERNETES_VERSION.match(version):
        return "kubernetes_version %r is not an RKE2 or K3s version such as v1.30.4+rke2r1" % (version,)
    return None


def password_errors(bootstrap_password, admin_password):
    errors = []
    if not bootstrap_password:
        errors.append("rancher_bootstrap_password is missing; put it in vault")
    if not admin_password:
        errors.append("rancher_admin_password is missing; put it in vault")
    elif len(admin_password) < PASSWORD_MIN_LENGTH:
        errors.append("rancher_admin_password must have at least %d characters (Rancher's minimum)" % PASSWORD_MIN_LENGTH)
    elif admin_password in ("admin", bootstrap_password):
        errors.append("rancher_admin_password must differ from the bootstrap password and from 'admin'")
    return errors


def cluster_errors(clusters, groups, node_group="rancher_nodes"):
    """Problems in the declared clusters; `groups` maps group name to hosts."""
    errors = []
    seen = set()
    for index, cluster in enumerate(clusters or []):
        where = "rancher_clusters[%d]" % index
        name = cluster.get("name")
        if not isinstance(name, str) or not CLUSTER_NAME.match(name):
            errors.append("%s.name: %r must be a lower-case DNS label" % (where, name))
        elif name in seen:
            errors.append("%s.name: cluster %s is declared twice" % (where, name))
        seen.add(name)
        error = kubernetes_version_error(cluster.get("kubernetes_version"))
        if error:
            errors.append("%s.%s" % (where, error))
        for role in NODE_ROLES:
            for group in cluster.get(role) or []:
                if group not in groups:
                    errors.append("%s.%s: no inventory group %r" % (where, role, group))
        members = cluster_roles(cluster, groups)
        if not any("etcd" in roles for roles in members.values()):
            errors.append("%s: no etcd node" % where)
        if not any("controlplane" in roles for roles in members.values()):
            errors.append("%s: no controlplane node" % where)
        for key in cluster.get("labels") or {}:
            if not LABEL_KEY.match(str(key)):
                errors.append("%s.labels: %r is not a Kubernetes label key" % (where, key))
    # Every node host must have a role in exactly one cluster.
    owners = {}
    for cluster in clusters or []:
        for host in cluster_roles(cluster, groups):
            owners.setdefault(host, []).append(cluster.get("name"))
    for host in sorted(groups.get(node_group) or []):
        if host not in owners:
            errors.append("%s is in %s but in no etcd, controlplane or worker group of any cluster" % (host, node_group))
    for host, names in sorted(owners.items()):
        if len(names) > 1:
            errors.append("%s has roles in several clusters: %s" % (host, ", ".join(names)))
    return errors


def cluster_roles(cluster, groups):
    """{host: [roles]} of one cluster, roles in Rancher's order."""
    found = {}
    for role in NODE_ROLES:
        for group in cluster.get(role) or []:
            for host in groups.get(group) or []:
                found.setdefault(host, [])
                if role not in found[host]:
                    found[host].append(role)
    return {host: [r for r in NODE_ROLES if r in roles] for host, roles in found.items()}


def node_membership(clusters, groups, host):
    """(cluster, roles) of a host, or (None, [])."""
    for cluster in clusters or []:
        roles = cluster_roles(cluster, groups).get(host)
        if roles:
            return cluster, roles
    return None, []


def membership(clusters, groups, host):
    """{"cluster": name or None, "roles": [...]} of a host, for playbooks."""
    cluster, roles = node_membership(clusters, groups, host)
    return {"cluster": cluster["name"] if cluster else None, "roles": roles}


def node_firewall(clusters, groups, hostvars, host):
    """firewall_sources with every cluster node's address from the inventory."""
    members = {name for cluster in clusters or [] for name in cluster_roles(cluster, groups)}
    addresses = {name: hostvars[name].get("ansible_host", name) for name in members}
    return firewall_sources(clusters, groups, addresses, host)


def cluster_body(cluster):
    """The provisioning.cattle.io cluster object for a custom (RKE2/K3s) cluster."""
    return {
        "type": "provisioning.cattle.io.cluster",
        "metadata": {"name": cluster["name"], "namespace": FLEET_NAMESPACE, "labels": dict(cluster.get("labels") or {})},
        "spec": {"kubernetesVersion": cluster["kubernetes_version"], "rkeConfig": {}},
    }


def install_arguments(server, token, ca_checksum, roles, labels, node_name=None, address=None):
    """Arguments of system-agent-install.sh for one node. Never --insecure:
    the node trusts the server through the CA checksum."""
    args = ["--server", server, "--token", token, "--ca-checksum", ca_checksum]
    args += ["--" + role for role in NODE_ROLES if role in roles]
    if node_name:
        args += ["--node-name", node_name]
    address = address or None
    if address:
        args += ["--address", address, "--internal-address", address]
    for key in sorted(labels or {}):
        args += ["--label", "%s=%s" % (key, labels[key])]
    return args


def firewall_sources(clusters, groups, addresses, host):
    """Port sets a cluster node opens and who may reach them: the cluster's
    own node addresses only (RKE2's supervisor, API, etcd peers, kubelet,
    overlay). {"port_sets": [...], "allow": {set: {"cidrs": [...]}}}."""
    cluster, roles = node_membership(clusters, groups, host)
    if cluster is None:
        return {"port_sets": [], "allow": {}}
    members = cluster_roles(cluster, groups)
    peers = sorted({"%s/32" % addresses[name] for name in members if name in addresses})
    sets = ["rke2_agent"] + (["rke2_server"] if set(roles) & {"etcd", "controlplane"} else [])
    return {"port_sets": sets, "allow": {name: {"cidrs": peers} for name in sets}}


def ca_checksum(pem):
    """What --ca-checksum is: the sha256 of /cacerts exactly as served."""
    data = pem.encode() if isinstance(pem, str) else pem
    return hashlib.sha256(data).hexdigest()
