"""Registry endpoint and replication policy handlers of the Harbor API stand-in
(a test double for berth's tests, not Harbor). Endpoints are never contacted:
any well-formed URL of a known adapter type is healthy.
"""

import copy
import urllib.parse

from . import vocab
from .base import (
    NEVER,
    Response,
    created,
    op,
    require_system,
    select,
)
from .state import now
from .swagger import ApiError

LOCAL_REGISTRY = {
    "id": 0,
    "name": "Local",
    "type": "harbor",
    "url": "http://core:8080",
    "insecure": True,
    "status": "healthy",
    "creation_time": NEVER,
    "update_time": NEVER,
}


# -- registries (endpoints) ----------------------------------------------------------------------------
def registry_out(registry):
    out = {k: registry[k] for k in ("id", "name", "url", "type", "description", "insecure", "status", "creation_time", "update_time")}
    credential = registry["credential"]
    if credential:
        out["credential"] = {"type": credential.get("type", ""), "access_key": credential.get("access_key", "")}
        if credential.get("access_secret"):
            out["credential"]["access_secret"] = "*****"
    return out


def _check_endpoint(registry):
    url = registry.get("url") or ""
    url = url if "://" in url else "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(400, "invalid url %r" % registry.get("url"))
    registry["url"] = url.rstrip("/")
    if registry.get("type") not in vocab.REGISTRY_TYPES:
        raise ApiError(400, "adapter factory for %s not found" % registry.get("type"))


def _check_registry(st, registry, ident=None):
    name = registry.get("name") or ""
    if not name:
        raise ApiError(400, "name cannot be empty")
    if len(name) > 64:
        raise ApiError(400, "the max length of name is 64")
    _check_endpoint(registry)
    if any(r["name"] == name and r["id"] != ident for r in st.registries.values()):
        raise ApiError(409, "registry %s already exists" % name)


def find_registry(call, action):
    require_system(call, "registry", action)
    registry = call.state.registries.get(call.params["id"])
    if registry is None:
        raise ApiError(404, "registry %d not found" % call.params["id"])
    return registry


@op("listRegistries")
def list_registries(call):
    require_system(call, "registry", "list")
    keywords = {"name": ("fuzzy", call.params["name"])} if call.params.get("name") else {}
    return select(call, [({}, registry_out(r)) for r in call.state.registries.values()], keywords)


@op("createRegistry")
def create_registry(call):
    require_system(call, "registry", "create")
    st, req = call.state, dict(call.body)
    _check_registry(st, req)
    stamp = now()
    registry = {
        "id": st.next_id("registry"),
        "name": req["name"],
        "url": req["url"],
        "type": req["type"],
        "description": req.get("description", ""),
        "insecure": bool(req.get("insecure", False)),
        "credential": dict(req.get("credential") or {}),
        "status": "healthy",
        "creation_time": stamp,
        "update_time": stamp,
    }
    st.registries[registry["id"]] = registry
    return created(call, registry["id"])


@op("getRegistry")
def get_registry(call):
    return Response(200, registry_out(find_registry(call, "read")))


@op("updateRegistry")
def update_registry(call):
    registry, req = find_registry(call, "update"), call.body
    changed = copy.deepcopy(registry)
    for key in ("name", "description", "url", "insecure"):
        if req.get(key) is not None:
            changed[key] = req[key]
    for key, target in (("credential_type", "type"), ("access_key", "access_key"), ("access_secret", "access_secret")):
        if req.get(key) is not None:
            changed["credential"][target] = req[key]
    _check_registry(call.state, changed, registry["id"])
    registry.update(changed, update_time=now())
    return Response(200)


@op("deleteRegistry")
def delete_registry(call):
    st, registry = call.state, find_registry(call, "delete")
    ident = registry["id"]
    if any(ident in (p["src_registry_id"], p["dest_registry_id"]) for p in st.replication_policies.values()):
        raise ApiError(412, "the registry %d is referenced by replication policies, cannot delete it" % ident)
    if any(p["registry_id"] == ident for p in st.projects.values()):
        raise ApiError(412, "the registry %d is referenced by proxy cache project, cannot delete it" % ident)
    del st.registries[ident]
    return Response(200)


@op("pingRegistry")
def ping_registry(call):
    require_system(call, "registry", "read")
    req, registry = call.body, {}
    if req.get("id") is not None:
        if req["id"] not in call.state.registries:
            raise ApiError(404, "registry %d not found" % req["id"])
        registry = copy.deepcopy(call.state.registries[req["id"]])
    for key in ("type", "url"):
        if req.get(key) is not None:
            registry[key] = req[key]
    if not registry.get("type") or not registry.get("url"):
        raise ApiError(400, "type or url cannot be empty")
    # The stand-in contacts nothing: any well-formed endpoint is healthy.
    _check_endpoint(registry)
    return Response(200)


# -- replication policies ---------------------------------------------------------------------------
def policy_out(st, policy):
    out = {k: v for k, v in policy.items() if k not in ("src_registry_id", "dest_registry_id") and v is not None}
    out["replicate_deletion"] = policy["deletion"]
    for side in ("src", "dest"):
        ident = policy[side + "_registry_id"]
        out[side + "_registry"] = registry_out(st.registries[ident]) if ident else dict(LOCAL_REGISTRY)
    return out


def _policy_body(call, ident=None):
    st, req = call.state, call.body
    name = req.get("name") or ""
    if not name:
        raise ApiError(400, "empty name")
    src, dest = ((req.get(side) or {}).get("id") or 0 for side in ("src_registry", "dest_registry"))
    if bool(src) == bool(dest):
        raise ApiError(400, "either src_registry or dest_registry should be empty and the other one shouldn't be empty")
    if (src or dest) not in st.registries:
        raise ApiError(400, "registry %d not found" % (src or dest))
    vocab.check_filters(req.get("filters"))
    if req.get("dest_namespace") and not vocab.REPOSITORY_NAME.fullmatch(req["dest_namespace"]):
        raise ApiError(400, "invalid destination namespace: %s" % req["dest_namespace"])
    trigger = req.get("trigger")
    if trigger:
        if trigger.get("type") not in vocab.TRIGGER_TYPES:
            raise ApiError(400, "invalid trigger type")
        if trigger["type"] == "scheduled":
            vocab.check_cron((trigger.get("trigger_settings") or {}).get("cron"), "scheduled trigger")
    if any(p["name"] == name and p["id"] != ident for p in st.replication_policies.values()):
        raise ApiError(409, "policy %s already exists" % name)
    replace_count = req.get("dest_namespace_replace_count")
    return {
        "name": name,
        "description": req.get("description", ""),
        "src_registry_id": src,
        "dest_registry_id": dest,
        "dest_namespace": req.get("dest_namespace", ""),
        "dest_namespace_replace_count": -1 if replace_count is None else replace_count,
        "trigger": trigger,
        "filters": req.get("filters") or [],
        "deletion": bool(req.get("deletion", False)),
        "override": bool(req.get("override", False)),
        "enabled": bool(req.get("enabled", False)),
        "speed": max(req.get("speed") or 0, 0),
        "copy_by_chunk": bool(req.get("copy_by_chunk") or False),
    }


def find_policy(call, action):
    require_system(call, "replication-policy", action)
    policy = call.state.replication_policies.get(call.params["id"])
    if policy is None:
        raise ApiError(404, "policy %d not found" % call.params["id"])
    return policy


@op("listReplicationPolicies")
def list_replication_policies(call):
    require_system(call, "replication-policy", "list")
    keywords = {"name": ("fuzzy", call.params["name"])} if call.params.get("name") else {}
    return select(call, [({}, policy_out(call.state, p)) for p in call.state.replication_policies.values()], keywords)


@op("createReplicationPolicy")
def create_replication_policy(call):
    require_system(call, "replication-policy", "create")
    st, stamp = call.state, now()
    policy = dict(_policy_body(call), id=st.next_id("replication_policy"), creation_time=stamp, update_time=stamp)
    st.replication_policies[policy["id"]] = policy
    return created(call, policy["id"])


@op("getReplicationPolicy")
def get_replication_policy(call):
    return Response(200, policy_out(call.state, find_policy(call, "read")))


@op("updateReplicationPolicy")
def update_replication_policy(call):
    policy = find_policy(call, "update")
    policy.update(_policy_body(call, policy["id"]), update_time=now())
    return Response(200)


@op("deleteReplicationPolicy")
def delete_replication_policy(call):
    del call.state.replication_policies[find_policy(call, "delete")["id"]]
    return Response(200)
