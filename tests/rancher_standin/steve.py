"""The /v1 (steve) part of the Rancher API stand-in: provisioning.cattle.io/v1
Cluster objects, the way Rancher v2.6+ creates custom RKE2/K3s clusters.

Rancher's controllers fill in a new cluster's status asynchronously. The stand-in
models that as "the controller catches up when the object is next read": the
POST answer has no status.clusterName; the first GET (of the object, or a list
holding it) assigns status.clusterName = "c-m-xxxxxxxx", creates the cluster's
default registration token and bumps metadata.resourceVersion, so a PUT built
from the POST answer gets a 409 Conflict, as it can on a real Rancher.
status.ready turns true once connected nodes cover the etcd, controlplane and
worker roles (see norman.connect_agent).
"""

import copy
import re
import time
import uuid

from .common import ApiError, violation
from .state import iso, random_name, token_key

TYPE = "provisioning.cattle.io.cluster"
API_VERSION = "provisioning.cattle.io/v1"
RESOURCE = "clusters.provisioning.cattle.io"  # how Kubernetes names it in messages
COLLECTION = "/v1/provisioning.cattle.io.clusters"

# Rancher's RKE2 and K3s release names: v1.30.4+rke2r1, v1.29.8+k3s1.
KUBERNETES_VERSION = re.compile(r"v1\.\d+\.\d+\+(?:rke2r\d+|k3s\d+)")
DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")

TOP_LEVEL = {"type", "apiVersion", "kind", "metadata", "spec", "status", "id", "links"}
METADATA = {
    "name",
    "namespace",
    "labels",
    "annotations",
    # what a GET hands back, so a client may PUT a fetched object unchanged
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "finalizers",
    "ownerReferences",
    "state",
    "relationships",
    "fields",
}
# provisioning.cattle.io/v1 ClusterSpec fields
SPEC = {
    "kubernetesVersion",
    "rkeConfig",
    "localClusterAuthEndpoint",
    "agentEnvVars",
    "cloudCredentialSecretName",
    "clusterAgentDeploymentCustomization",
    "fleetAgentDeploymentCustomization",
    "defaultPodSecurityAdmissionConfigurationTemplateName",
    "defaultClusterRoleForProjectMembers",
    "enableNetworkPolicy",
    "redeploySystemAgentGeneration",
    "clusterAPIConfig",
}
ROLES = ("etcd", "controlplane", "worker")


def not_found(name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (RESOURCE, name))


def invalid(name, message):
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (RESOURCE, name, message))


# -- validation ------------------------------------------------------------------------------
def _checked_object(call, url_namespace, for_update):
    body = call.json_body(required=("metadata", "spec"), allowed=TOP_LEVEL)
    for key, expected in (("type", TYPE), ("apiVersion", API_VERSION), ("kind", "Cluster")):
        if key in body and body[key] != expected:
            raise violation(422, "InvalidBodyContent", "%s must be %r, got %r" % (key, expected, body[key]), field=key)
    metadata, spec = body["metadata"], body["spec"]
    if not isinstance(metadata, dict) or not isinstance(spec, dict):
        raise violation(422, "InvalidBodyContent", "metadata and spec must be objects")
    unknown = sorted(set(metadata) - METADATA) + sorted("spec." + key for key in set(spec) - SPEC)
    if unknown:
        raise violation(422, "InvalidBodyContent", "strict decoding error: unknown field(s) %s" % ", ".join(unknown))
    name = metadata.get("name")
    if not name:
        raise violation(422, "MissingRequired", "metadata.name is required", field="metadata.name")
    namespace = metadata.get("namespace") or url_namespace
    if not namespace:
        raise violation(422, "MissingRequired", "metadata.namespace is required (Rancher's custom clusters live in fleet-default)")
    if url_namespace and namespace != url_namespace:
        raise violation(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
    for key in ("labels", "annotations"):
        value = metadata.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise violation(422, "InvalidBodyContent", "metadata.%s must map strings to strings" % key)
    if not DNS_LABEL.fullmatch(name):
        raise invalid(name, "metadata.name: Invalid value: %r: a lowercase RFC 1123 label of at most 63 characters" % name)
    if "kubernetesVersion" not in spec:
        raise violation(
            422, "MissingRequired", "spec.kubernetesVersion is required for an RKE2/K3s cluster", field="spec.kubernetesVersion"
        )
    version = spec["kubernetesVersion"]
    if not isinstance(version, str) or not KUBERNETES_VERSION.fullmatch(version):
        raise invalid(
            name, "spec.kubernetesVersion: Invalid value: %r: must be an RKE2 or K3s release like v1.30.4+rke2r1 or v1.30.4+k3s1" % version
        )
    if not isinstance(spec.get("rkeConfig", {}), dict):
        raise violation(422, "InvalidBodyContent", "spec.rkeConfig must be an object")
    if for_update and not metadata.get("resourceVersion"):
        raise violation(422, "Invalid", "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update")
    return name, namespace, metadata, spec


# -- the "controller" --------------------------------------------------------------------------
def _conditions(ready):
    now = iso(time.time())
    return [
        {"type": "Created", "status": "True", "lastUpdateTime": now},
        {"type": "Provisioned", "status": "True" if ready else "Unknown", "lastUpdateTime": now},
        {"type": "Ready", "status": "True" if ready else "False", "lastUpdateTime": now},
    ]


def observe(state, cluster):
    """What Rancher's controllers would have done by now (see the module docstring)."""
    status, metadata = cluster["status"], cluster["metadata"]
    dirty = False
    if not status.get("clusterName"):
        cluster_id = random_name("c-m-", 8)
        while state.cluster_by_id(cluster_id) is not None:
            cluster_id = random_name("c-m-", 8)
        status.update(clusterName=cluster_id, fleetWorkspaceName=metadata["namespace"], clientSecretName=metadata["name"] + "-kubeconfig")
        status["conditions"] = _conditions(False)
        add_registration_token(state, cluster_id, "default-token")
        dirty = True
    if status.get("observedGeneration") != metadata["generation"]:
        status["observedGeneration"] = metadata["generation"]
        dirty = True
    if dirty:
        metadata["resourceVersion"] = state.next_resource_version()
        state.changed()
    return cluster


def update_readiness(state, cluster):
    cluster_id = cluster["status"].get("clusterName")
    covered = {role for m in state.machines.values() if m["clusterId"] == cluster_id for role in m["roles"]}
    ready = covered >= set(ROLES)
    if cluster["status"].get("ready") != ready:
        cluster["status"]["ready"] = ready
        cluster["status"]["conditions"] = _conditions(ready)
        cluster["metadata"]["resourceVersion"] = state.next_resource_version()
        state.changed()


def add_registration_token(state, cluster_id, name):
    key = "%s:%s" % (cluster_id, name)
    # Rancher's registration tokens are random keys like API token keys.
    state.registration_tokens[key] = {
        "id": key,
        "name": name,
        "clusterId": cluster_id,
        "token": token_key(),
        "created": time.time(),
        "uuid": str(uuid.uuid4()),
    }
    state.changed()
    return state.registration_tokens[key]


# -- rendering ---------------------------------------------------------------------------------
def render(call, cluster):
    data = copy.deepcopy(cluster)
    metadata = data["metadata"]
    object_id = "%s/%s" % (metadata["namespace"], metadata["name"])
    self_url = call.url("%s/%s" % (COLLECTION, object_id))
    data["id"] = object_id
    data["type"] = TYPE
    data["links"] = {
        "self": self_url,
        "update": self_url,
        "remove": self_url,
        "view": call.url("/apis/provisioning.cattle.io/v1/namespaces/%s/clusters/%s" % (metadata["namespace"], metadata["name"])),
    }
    ready = data["status"].get("ready", False)
    metadata["state"] = {"name": "active" if ready else "waiting", "error": False, "transitioning": not ready, "message": ""}
    return data


def _collection(call, clusters):
    return {
        "type": "collection",
        "links": {"self": call.url(call.path)},
        "createTypes": {TYPE: call.url(COLLECTION)},
        "actions": {},
        "resourceType": TYPE,
        "revision": call.state.resource_version,
        "count": len(clusters),
        "data": [render(call, c) for c in clusters],
    }


# -- handlers ------------------------------------------------------------------------------------
def list_clusters(call):
    namespace = call.params.get("namespace")
    clusters = [c for (ns, _), c in sorted(call.state.clusters.items()) if namespace in (None, ns)]
    for cluster in clusters:
        observe(call.state, cluster)
    return 200, _collection(call, clusters)


def create_cluster(call):
    name, namespace, metadata, spec = _checked_object(call, call.params.get("namespace"), for_update=False)
    state = call.state
    if (namespace, name) in state.clusters:
        raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (RESOURCE, name))
    cluster = {
        "apiVersion": API_VERSION,
        "kind": "Cluster",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": state.next_resource_version(),
            "generation": 1,
            "creationTimestamp": iso(time.time()),
            "labels": dict(metadata.get("labels", {})),
            "annotations": dict(metadata.get("annotations", {})),
        },
        "spec": copy.deepcopy(spec),
        "status": {"ready": False},
    }
    state.clusters[(namespace, name)] = cluster
    state.changed()
    return 201, render(call, cluster)


def _existing(call):
    key = (call.params["namespace"], call.params["name"])
    cluster = call.state.clusters.get(key)
    if cluster is None:
        raise not_found(key[1])
    return key, cluster


def get_cluster(call):
    _, cluster = _existing(call)
    return 200, render(call, observe(call.state, cluster))


def update_cluster(call):
    key, cluster = _existing(call)
    name, _, metadata, spec = _checked_object(call, key[0], for_update=True)
    if name != key[1]:
        raise violation(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)" % (name, key[1]))
    if metadata["resourceVersion"] != cluster["metadata"]["resourceVersion"]:
        raise ApiError(
            409,
            "Conflict",
            'Operation cannot be fulfilled on %s "%s": the object has been modified; please apply your changes to the latest version and try again'
            % (RESOURCE, name),
        )
    current = cluster["metadata"]
    if spec != cluster["spec"]:
        cluster["spec"] = copy.deepcopy(spec)
        current["generation"] += 1
    current["labels"] = dict(metadata.get("labels", {}))
    current["annotations"] = dict(metadata.get("annotations", {}))
    current["resourceVersion"] = call.state.next_resource_version()
    call.state.changed()
    return 200, render(call, cluster)


def delete_cluster(call):
    """Gone at once: the stand-in has no finalizers to wait for."""
    key, cluster = _existing(call)
    state = call.state
    del state.clusters[key]
    cluster_id = cluster["status"].get("clusterName")
    if cluster_id:
        for token_id in [t for t, r in state.registration_tokens.items() if r["clusterId"] == cluster_id]:
            del state.registration_tokens[token_id]
        for cattle_id in [c for c, m in state.machines.items() if m["clusterId"] == cluster_id]:
            del state.machines[cattle_id]
    cluster["metadata"]["deletionTimestamp"] = iso(time.time())
    state.changed()
    return 200, render(call, cluster)


NAME = r"[^/]+"
_COLLECTION = re.escape(COLLECTION)
ROUTES = [
    ("GET", _COLLECTION, list_clusters),
    ("POST", _COLLECTION, create_cluster),
    ("GET", _COLLECTION + r"/(?P<namespace>%s)" % NAME, list_clusters),
    ("POST", _COLLECTION + r"/(?P<namespace>%s)" % NAME, create_cluster),
    ("GET", _COLLECTION + r"/(?P<namespace>%s)/(?P<name>%s)" % (NAME, NAME), get_cluster),
    ("PUT", _COLLECTION + r"/(?P<namespace>%s)/(?P<name>%s)" % (NAME, NAME), update_cluster),
    ("DELETE", _COLLECTION + r"/(?P<namespace>%s)/(?P<name>%s)" % (NAME, NAME), delete_cluster),
]
