"""The /v3 and /v3-public (norman) part of the Rancher API stand-in: local login,
the admin's password, API tokens, settings, cluster registration tokens and the
endpoint the system-agent installer fetches its connection info from.

Shapes follow Rancher v2.8/v2.9: resources carry "type", "baseType", "id",
"links"; collections are {"type": "collection", "data": [...]}; TTLs are in
milliseconds; errors are norman's (see common.py).
"""

import base64
import hashlib
import time
import urllib.parse

from . import steve
from .common import ApiError, must_authenticate, violation
from .state import READ_ONLY_SETTINGS, SETTING_DEFAULTS, iso, random_name

# Echoed fields a client may send back unchanged in a setting PUT (norman ignores them).
SETTING_ECHO = {
    "type",
    "baseType",
    "id",
    "links",
    "actions",
    "default",
    "customized",
    "source",
    "created",
    "createdTS",
    "creatorId",
    "uuid",
    "labels",
    "annotations",
}


def _ms(epoch):
    return int(epoch * 1000)


def _collection(call, resource_type, data):
    return {
        "type": "collection",
        "resourceType": resource_type,
        "links": {"self": call.url(call.path)},
        "actions": {},
        "pagination": {"limit": 1000, "total": len(data)},
        "data": data,
    }


def _clamped_ttl(state, ttl_ms):
    """Rancher caps every token's TTL at auth-token-max-ttl-minutes (0: no cap)."""
    max_ms = int(state.setting_value("auth-token-max-ttl-minutes")) * 60_000
    if max_ms and (ttl_ms == 0 or ttl_ms > max_ms):
        return max_ms
    return ttl_ms


def _ttl(body):
    ttl = body.get("ttl", 0)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
        raise violation(422, "InvalidType", "ttl must be a non-negative integer of milliseconds", field="ttl")
    return ttl


def root_url(call):
    """Where nodes reach Rancher: the server-url setting, else the URL this request came to."""
    server_url = call.state.setting_value("server-url")
    if server_url:
        parts = urllib.parse.urlsplit(server_url)
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    return call.base_url


# -- tokens --------------------------------------------------------------------------------------
def token_resource(call, record, value=None):
    current = call.token is not None and call.token["name"] == record["name"] and not record["isDerived"]
    user_id = record["userId"]
    self_url = call.url("/v3/tokens/" + record["name"])
    data = {
        "type": "token",
        "baseType": "token",
        "id": record["name"],
        "name": record["name"],
        "authProvider": "local",
        "userId": user_id,
        "userPrincipal": "local://" + user_id,
        "description": record["description"],
        "ttl": record["ttl"],
        "expiresAt": iso(record["expiresAt"]) if record["expiresAt"] else "",
        "expired": False,
        "enabled": True,
        "isDerived": record["isDerived"],
        "current": current,
        "clusterId": record.get("clusterId"),
        "created": iso(record["created"]),
        "createdTS": _ms(record["created"]),
        "creatorId": None,
        "lastUpdateTime": "",
        "labels": {"authn.management.cattle.io/token-userId": user_id, "cattle.io/creator": "norman"},
        "links": {"self": self_url, "remove": self_url},
        "uuid": record["uuid"],
    }
    if value is not None:
        data["token"] = value  # only the creating answer carries the secret
    return data


def login(call):
    if call.arg("action") != "login":
        raise violation(422, "InvalidAction", "the local provider supports action=login only")
    body = call.json_body(required=("username", "password"), allowed=("description", "responseType", "ttl"))
    if body.get("responseType", "token") not in ("token", "json"):
        raise violation(
            422,
            "InvalidBodyContent",
            "the stand-in models responseType token (cookie and kubeconfig logins are not modelled)",
            field="responseType",
        )
    ttl = _ttl(body)
    user = call.state.check_password(str(body["username"]), str(body["password"]))
    if user is None:
        raise ApiError(401, "Unauthorized", "authentication failed")
    if not ttl:
        ttl = int(call.state.setting_value("auth-user-session-ttl-minutes")) * 60_000
    record, value = call.state.add_token(user, body.get("description", ""), _clamped_ttl(call.state, ttl), derived=False)
    return 201, token_resource(call, record, value)


def create_token(call):
    body = call.json_body(allowed=("type", "description", "ttl", "clusterId"))
    if body.get("type", "token") != "token":
        raise violation(422, "InvalidType", "type must be token", field="type")
    user = call.state.user(call.token["userId"])
    record, value = call.state.add_token(user, body.get("description", ""), _clamped_ttl(call.state, _ttl(body)), derived=True)
    record["clusterId"] = body.get("clusterId")
    return 201, token_resource(call, record, value)


def list_tokens(call):
    mine = [t for t in call.state.tokens.values() if t["userId"] == call.token["userId"]]
    return 200, _collection(call, "token", [token_resource(call, t) for t in mine])


def _own_token(call):
    record = call.state.tokens.get(call.params["id"])
    if record is None or record["userId"] != call.token["userId"]:
        raise ApiError(404, "NotFound", "%s not found" % call.params["id"])
    return record


def get_token(call):
    return 200, token_resource(call, _own_token(call))


def delete_token(call):
    record = _own_token(call)
    if record["name"] == call.token["name"] and not record["isDerived"]:
        raise ApiError(400, "BadRequest", "Cannot delete token for current session. Use logout instead")
    del call.state.tokens[record["name"]]
    call.state.changed()
    return 204, None


# -- users -----------------------------------------------------------------------------------------
def user_resource(call, user):
    self_url = call.url("/v3/users/" + user["id"])
    return {
        "type": "user",
        "baseType": "user",
        "id": user["id"],
        "username": user["username"],
        "name": user["name"],
        "description": "",
        "enabled": True,
        "me": call.token is not None and call.token["userId"] == user["id"],
        "mustChangePassword": user["mustChangePassword"],
        "principalIds": ["local://" + user["id"]],
        "state": "active",
        "created": iso(user["created"]),
        "createdTS": _ms(user["created"]),
        "creatorId": None,
        "uuid": user["uuid"],
        "links": {"self": self_url},
        "actions": {"setpassword": self_url + "?action=setpassword"},
    }


def list_users(call):
    users = [call.state.admin]
    if call.arg("me") == "true":
        users = [u for u in users if u["id"] == call.token["userId"]]
    data = _collection(call, "user", [user_resource(call, u) for u in users])
    data["actions"] = {"changepassword": call.url("/v3/users", action="changepassword")}
    return 200, data


def change_password(call):
    if call.arg("action") != "changepassword":
        raise violation(422, "InvalidAction", "the stand-in models POST /v3/users?action=changepassword only")
    body = call.json_body(required=("currentPassword", "newPassword"), allowed=())
    current, new = str(body["currentPassword"]), str(body["newPassword"])
    if not current:
        raise ApiError(422, "InvalidBodyContent", "must specify current password")
    user = call.state.user(call.token["userId"])
    # Rancher checks the new password's rules before the current password.
    min_length = int(call.state.setting_value("password-min-length"))
    if len(new) < min_length:
        raise ApiError(422, "InvalidBodyContent", "Password must be at least %d characters" % min_length)
    if new == user["username"]:
        raise ApiError(422, "InvalidBodyContent", "Password cannot be the same as username")
    if new == current:
        raise ApiError(422, "InvalidBodyContent", "The new password must not be the same as the current password")
    if call.state.check_password(user["username"], current) is None:
        raise ApiError(422, "InvalidBodyContent", "invalid current password")
    user.update(password=new, mustChangePassword=False, passwordChanged=True)
    call.state.settings["first-login"]["value"] = "false"
    call.state.changed()
    return 200, None


# -- settings ----------------------------------------------------------------------------------------
def _setting(call):
    name = call.params["name"]
    if name not in call.state.settings:
        raise violation(404, "NotFound", "the stand-in does not model setting %s" % name)
    return name, call.state.settings[name]


def setting_resource(call, name, setting):
    self_url = call.url("/v3/settings/" + name)
    links = {"self": self_url}
    if name not in READ_ONLY_SETTINGS:
        links["update"] = self_url
    return {
        "type": "setting",
        "baseType": "setting",
        "id": name,
        "name": name,
        "value": setting["value"],
        "default": SETTING_DEFAULTS[name],
        "customized": False,
        "source": "",
        "created": iso(setting["created"]),
        "createdTS": _ms(setting["created"]),
        "creatorId": None,
        "uuid": setting["uuid"],
        "links": links,
    }


def list_settings(call):
    return 200, _collection(call, "setting", [setting_resource(call, n, s) for n, s in sorted(call.state.settings.items())])


def get_setting(call):
    return 200, setting_resource(call, *_setting(call))


def _https_url(value):
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a malformed port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and bool(parts.hostname)
        and parts.path in ("", "/")
        and not (parts.query or parts.fragment or parts.username)
    )


def _int_between(value, low, high):
    return value.isdigit() and low <= int(value) <= high


VALIDATORS = {
    "server-url": (_https_url, "server-url must be an https URL with a host and no path, like https://rancher.example.com"),
    "password-min-length": (lambda v: _int_between(v, 2, 256), "password-min-length must be an integer from 2 to 256"),
    "first-login": (lambda v: v in ("true", "false"), "first-login must be true or false"),
    "telemetry-opt": (lambda v: v in ("in", "out", "prompt"), "telemetry-opt must be in, out or prompt"),
    "auth-token-max-ttl-minutes": (lambda v: _int_between(v, 0, 10**9), "must be a non-negative integer of minutes"),
    "auth-user-session-ttl-minutes": (lambda v: _int_between(v, 1, 10**9), "must be a positive integer of minutes"),
}


def update_setting(call):
    name, setting = _setting(call)
    body = call.json_body(required=("value",), allowed={"name"} | SETTING_ECHO)
    if body.get("name", name) != name:
        raise violation(
            422, "InvalidBodyContent", "name %r does not match the setting in the URL (%s)" % (body["name"], name), field="name"
        )
    value = body["value"]
    if not isinstance(value, str):
        raise violation(422, "InvalidType", "value must be a string", field="value")
    if name in READ_ONLY_SETTINGS or name == "server-version":
        raise ApiError(405, "MethodNotAllow", "%s is readOnly" % name)
    check, message = VALIDATORS.get(name, (lambda v: True, ""))
    if not check(value):
        raise ApiError(422, "InvalidBodyContent", message, field="value")
    setting["value"] = value
    call.state.changed()
    return 200, setting_resource(call, name, setting)


# -- cluster registration tokens ----------------------------------------------------------------------
def registration_token_resource(call, record):
    root = root_url(call)
    token, cluster_id = record["token"], record["clusterId"]
    checksum = call.standin.ca_checksum
    pin = " --ca-checksum " + checksum if checksum else ""
    manifest = "%s/v3/import/%s_%s.yaml" % (root, token, cluster_id)
    script = root + "/system-agent-install.sh"
    node_args = "--server %s --label 'cattle.io/os=linux' --token %s%s" % (root, token, pin)
    return {
        "type": "clusterRegistrationToken",
        "baseType": "clusterRegistrationToken",
        "id": record["id"],
        "name": record["name"],
        "namespaceId": cluster_id,
        "clusterId": cluster_id,
        "token": token,
        "state": "active",
        "manifestUrl": manifest,
        "command": "kubectl apply -f " + manifest,
        "insecureCommand": "curl --insecure -sfL %s | kubectl apply -f -" % manifest,
        "nodeCommand": "curl -fL %s | sudo  sh -s - %s" % (script, node_args),
        "insecureNodeCommand": "curl --insecure -fL %s | sudo  sh -s - %s" % (script, node_args),
        "created": iso(record["created"]),
        "createdTS": _ms(record["created"]),
        "creatorId": None,
        "uuid": record["uuid"],
        "links": {"self": call.url("/v3/clusterregistrationtokens/" + record["id"])},
    }


def list_registration_tokens(call):
    cluster_id = call.arg("clusterId")
    records = [r for r in call.state.registration_tokens.values() if cluster_id in (None, r["clusterId"])]
    return 200, _collection(call, "clusterRegistrationToken", [registration_token_resource(call, r) for r in records])


def get_registration_token(call):
    record = call.state.registration_tokens.get(urllib.parse.unquote(call.params["id"]))
    if record is None:
        raise ApiError(404, "NotFound", "clusterRegistrationToken %s not found" % call.params["id"])
    return 200, registration_token_resource(call, record)


def create_registration_token(call):
    body = call.json_body(required=("clusterId",), allowed=("type", "name", "namespaceId"))
    if body.get("type", "clusterRegistrationToken") != "clusterRegistrationToken":
        raise violation(422, "InvalidType", "type must be clusterRegistrationToken", field="type")
    cluster_id = body["clusterId"]
    if call.state.cluster_by_id(cluster_id) is None:
        raise ApiError(422, "InvalidReference", "Not found type: cluster id: %s" % cluster_id, field="clusterId")
    name = body.get("name") or random_name("crt-")
    if "%s:%s" % (cluster_id, name) in call.state.registration_tokens:
        raise ApiError(409, "AlreadyExists", "clusterRegistrationToken %s:%s already exists" % (cluster_id, name))
    record = steve.add_registration_token(call.state, cluster_id, name)
    return 201, registration_token_resource(call, record)


# -- what the system-agent installer calls --------------------------------------------------------------
def connect_agent(call):
    """GET /v3/connect/agent: the installer trades a registration token (as Bearer) and
    the node's X-Cattle-* headers for the agent's connection info."""
    header = call.headers.get("Authorization") or ""
    scheme, _, value = header.partition(" ")
    record = call.state.registration_token_by_value(value.strip()) if scheme.lower() == "bearer" and value.strip() else None
    if record is None:
        raise must_authenticate()
    cluster = call.state.cluster_by_id(record["clusterId"])
    cattle_id = call.headers.get("X-Cattle-Id") or ""
    if not cattle_id:
        raise violation(422, "MissingRequired", "the X-Cattle-Id header is required")

    def flag(name):
        return (call.headers.get(name) or "").lower() == "true"

    def items(name):
        return [item for item in (call.headers.get(name) or "").split(",") if item]

    roles = [
        role
        for role, header_name in zip(steve.ROLES, ("X-Cattle-Role-Etcd", "X-Cattle-Role-Control-Plane", "X-Cattle-Role-Worker"))
        if flag(header_name)
    ]
    machine_name = "custom-" + hashlib.sha256(cattle_id.encode()).hexdigest()[:12]
    namespace = cluster["metadata"]["namespace"]
    call.state.machines[cattle_id] = {
        "name": machine_name,
        "namespace": namespace,
        "cluster": cluster["metadata"]["name"],
        "clusterId": record["clusterId"],
        "cattleId": cattle_id,
        "roles": roles,
        "nodeName": call.headers.get("X-Cattle-Node-Name") or "",
        "address": call.headers.get("X-Cattle-Address") or "",
        "internalAddress": call.headers.get("X-Cattle-Internal-Address") or "",
        "labels": items("X-Cattle-Labels"),
        "taints": items("X-Cattle-Taints"),
        "connectedAt": iso(time.time()),
    }
    call.state.changed()
    steve.update_readiness(call.state, cluster)
    ca = base64.b64encode(call.standin.ca_pem).decode()
    kubeconfig = (
        "apiVersion: v1\nkind: Config\n"
        "clusters:\n- name: agent\n  cluster:\n    server: %s\n    certificate-authority-data: %s\n"
        "contexts:\n- name: agent\n  context:\n    cluster: agent\n    user: agent\n"
        "current-context: agent\n"
        "users:\n- name: agent\n  user:\n    token: standin-not-a-credential\n"
    ) % (root_url(call), ca)
    return 200, {"kubeConfig": kubeconfig, "namespace": namespace, "secretName": machine_name + "-machine-plan"}


TOKEN_ID = r"(?P<id>[^/]+)"
ROUTES = [
    ("POST", r"/v3-public/localProviders/local", login),
    ("GET", r"/v3/users", list_users),
    ("POST", r"/v3/users", change_password),
    ("POST", r"/v3/token", create_token),
    ("POST", r"/v3/tokens", create_token),
    ("GET", r"/v3/tokens", list_tokens),
    ("GET", r"/v3/tokens/" + TOKEN_ID, get_token),
    ("DELETE", r"/v3/tokens/" + TOKEN_ID, delete_token),
    ("GET", r"/v3/settings", list_settings),
    ("GET", r"/v3/settings/(?P<name>[^/]+)", get_setting),
    ("PUT", r"/v3/settings/(?P<name>[^/]+)", update_setting),
    ("GET", r"/v3/clusterregistrationtokens", list_registration_tokens),
    ("POST", r"/v3/clusterregistrationtokens", create_registration_token),
    ("GET", r"/v3/clusterregistrationtokens/(?P<id>[^/]+)", get_registration_token),
]
# Authenticated by a registration token, not an API token.
AGENT_ROUTES = [("GET", r"/v3/connect/agent", connect_agent)]
