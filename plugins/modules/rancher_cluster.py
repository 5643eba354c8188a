#!/usr/bin/python
"""A Rancher custom (RKE2/K3s) cluster and what nodes need to join it."""

DOCUMENTATION = r"""
---
module: rancher_cluster
short_description: Create a Rancher custom cluster and fetch its registration details
description:
  - Creates the cluster through the v1 provisioning API when it is missing, updates its Kubernetes version when
    it differs, waits for Rancher to name it (C(status.clusterName)), and returns its registration token and the
    checksum of Rancher's CA that nodes pass as C(--ca-checksum).
  - The registration token is returned; run the task with C(no_log).
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.rancher
  - berth.ops.state
  - berth.ops.attributes
  - berth.ops.attributes.api
options:
  token:
    description: An API token (the rancher role's automation token).
    type: str
    required: true
  name:
    description: Cluster name (a lower-case DNS label).
    type: str
    required: true
  kubernetes_version:
    description: RKE2 or K3s version, e.g. C(v1.30.4+rke2r1).
    type: str
  labels:
    description: Labels of the cluster object.
    type: dict
    default: {}
  state:
    description: Whether the cluster exists.
  wait_timeout:
    description: Seconds to wait for Rancher to name a new cluster.
    type: int
    default: 120
notes:
  - Supports check mode and diff.
"""

EXAMPLES = r"""
- name: The lab cluster
  berth.ops.rancher_cluster:
    url: https://rancher.bldg-a.example
    token: "{{ rancher_api_token }}"
    name: lab
    kubernetes_version: v1.30.4+rke2r1
  register: lab_cluster
  no_log: true
"""

RETURN = r"""
cluster_id:
  description: Rancher's management id (C(c-m-...)).
  returned: when present and not in check mode
  type: str
  sample: c-m-7xk2p9qz
registration_token:
  description: The token nodes register with.
  returned: when present and not in check mode
  type: str
  sample: r7k2v9xq5t8wzm4n6b3c1d0f2g5h8j9k1l3m5n7p9q2s4t6v8w
ca_checksum:
  description: sha256 of Rancher's C(/cacerts).
  returned: when present
  type: str
  sample: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
ca_pem:
  description: Rancher's CA as served on C(/cacerts).
  returned: when present
  type: str
  sample: '-----BEGIN CERTIFICATE-----

    MIIB...

    -----END CERTIFICATE-----

    '
changes:
  description: What was done.
  returned: always
  type: list
  elements: str
  sample:
    - cluster created
"""

import time

from ansible_collections.berth.ops.plugins.module_utils.berth_rancher import (
    CLUSTER_NAME,
    FLEET_NAMESPACE,
    ca_checksum,
    cluster_body,
    kubernetes_version_error,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_rancher_client import RancherError, client_for, rancher_module


def main():
    module = rancher_module(
        required_if=[("state", "present", ["kubernetes_version"])],
        token={"type": "str", "required": True, "no_log": True},
        name={"type": "str", "required": True},
        kubernetes_version={"type": "str"},
        labels={"type": "dict", "default": {}},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        wait_timeout={"type": "int", "default": 120},
    )
    p = module.params
    errors = []
    if not CLUSTER_NAME.match(p["name"]):
        errors.append("name: %r must be a lower-case DNS label" % p["name"])
    if p["state"] == "present":
        error = kubernetes_version_error(p["kubernetes_version"])
        if error:
            errors.append(error)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)
    client = client_for(module, token=p["token"])
    try:
        module.exit_json(**converge(module, client, p))
    except RancherError as exc:
        module.fail_json(msg=str(exc), status=exc.status)


def converge(module, client, p):
    path = "/v1/provisioning.cattle.io.clusters/%s/%s" % (FLEET_NAMESPACE, p["name"])
    cluster = client.cluster(p["name"])
    result = {"changed": False, "changes": []}
    if p["state"] == "absent":
        if cluster is not None:
            result.update(changed=True, changes=["deleted"])
            if not module.check_mode:
                client.request("DELETE", path, expect=(200, 202, 204))
        return result

    desired = cluster_body({"name": p["name"], "kubernetes_version": p["kubernetes_version"], "labels": p["labels"]})
    if cluster is None:
        result["changes"].append("created")
        if module._diff:
            result["diff"] = {"before": {}, "after": {"kubernetesVersion": p["kubernetes_version"], "labels": p["labels"]}}
        if module.check_mode:
            return dict(result, changed=True)
        client.request("POST", "/v1/provisioning.cattle.io.clusters", desired, expect=(200, 201))
    else:
        have = {
            "kubernetesVersion": cluster["spec"].get("kubernetesVersion"),
            "labels": {k: v for k, v in (cluster["metadata"].get("labels") or {}).items() if k in p["labels"]},
        }
        want = {"kubernetesVersion": p["kubernetes_version"], "labels": p["labels"]}
        if have != want:
            result["changes"].append("updated")
            if module._diff:
                result["diff"] = {"before": have, "after": want}
            if not module.check_mode:
                cluster["spec"]["kubernetesVersion"] = p["kubernetes_version"]
                cluster["metadata"]["labels"] = dict(cluster["metadata"].get("labels") or {}, **p["labels"])
                client.request("PUT", path, cluster)
    result["changed"] = bool(result["changes"])
    pem = client.cacerts()
    result["ca_pem"] = pem.decode()
    result["ca_checksum"] = ca_checksum(pem)
    if module.check_mode and cluster is not None and not (cluster.get("status") or {}).get("clusterName"):
        return result
    cluster_id = wait_for_name(client, p["name"], p["wait_timeout"])
    token, created = client.registration_token(cluster_id, create=not module.check_mode)
    if created:
        result.update(changed=True, changes=result["changes"] + ["registration token created"])
    result.update(cluster_id=cluster_id, registration_token=token)
    return result


def wait_for_name(client, name, timeout):
    deadline = time.monotonic() + timeout
    while True:
        cluster = client.cluster(name) or {}
        cluster_id = (cluster.get("status") or {}).get("clusterName")
        if cluster_id:
            return cluster_id
        if time.monotonic() > deadline:
            raise RancherError("Rancher did not name cluster %s within %ds" % (name, timeout))
        time.sleep(1)


if __name__ == "__main__":
    main()
