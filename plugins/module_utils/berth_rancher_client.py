"""The client of Rancher's API that the rancher modules share. The decisions
on what it sends and returns are in berth_rancher."""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.parse import quote
from ansible_collections.berth.ops.plugins.module_utils.berth_http import HttpError, HttpSession
from ansible_collections.berth.ops.plugins.module_utils.berth_rancher import FLEET_NAMESPACE


class RancherError(Exception):
    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class RancherClient:
    def __init__(self, url, token=None, ca_path=None, validate_certs=True, timeout=30):
        self.url = url.rstrip("/")
        self.token = token
        self.ca_path = ca_path
        self.validate_certs = validate_certs
        self.timeout = timeout
        self.session = HttpSession(ca_path=ca_path, validate_certs=validate_certs, timeout=timeout)

    def request(self, method, path, body=None, expect=(200,), token=None, raw=False):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        bearer = token or self.token
        if bearer:
            headers["Authorization"] = "Bearer %s" % bearer
        try:
            status, _unused, data = self.session.request(
                method, self.url + path, headers, json.dumps(body).encode() if body is not None else None
            )
        except HttpError as exc:
            raise RancherError("Rancher at %s is unreachable: %s" % (self.url, exc)) from None
        if status not in expect:
            try:
                detail = json.loads(data).get("message") or data.decode(errors="replace")
            except ValueError:
                detail = data.decode(errors="replace")[:300]
            raise RancherError("Rancher %s %s answered HTTP %s: %s" % (method, path.split("?")[0], status, detail), status)
        if raw:
            return status, data
        return status, json.loads(data) if data else None

    def login(self, password):
        """A session token for admin, or None when Rancher refuses the password."""
        try:
            _unused, token = self.request(
                "POST",
                "/v3-public/localProviders/local?action=login",
                {"username": "admin", "password": password, "responseType": "token", "description": "berth bootstrap", "ttl": 600000},
                expect=(200, 201),
            )
        except RancherError as exc:
            if exc.status in (401, 403):
                return None
            raise
        return token["token"]

    def cacerts(self):
        return self.request("GET", "/cacerts", raw=True)[1]

    def setting(self, name):
        return self.request("GET", "/v3/settings/%s" % quote(name, safe=""))[1]

    def cluster(self, name):
        try:
            return self.request("GET", "/v1/provisioning.cattle.io.clusters/%s/%s" % (FLEET_NAMESPACE, name))[1]
        except RancherError as exc:
            if exc.status == 404:
                return None
            raise

    def registration_token(self, cluster_id, create=True):
        """(token, whether it had to be created); (None, True) when one is missing and create is off."""
        tokens = self.request("GET", "/v3/clusterregistrationtokens?clusterId=%s" % quote(cluster_id, safe=""))[1]["data"]
        if tokens:
            return tokens[0]["token"], False
        if not create:
            return None, True
        created = self.request(
            "POST", "/v3/clusterregistrationtokens", {"type": "clusterRegistrationToken", "clusterId": cluster_id}, expect=(200, 201)
        )[1]
        return created["token"], True


# The connection options of every Rancher module (the rancher doc fragment);
# each module adds its own token option, which differs between them.
CONNECTION_SPEC = {
    "url": {"type": "str", "required": True},
    "ca_path": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
}


def rancher_module(required_if=None, **options):
    """The AnsibleModule of a Rancher module: CONNECTION_SPEC and the
    module's own options, with check mode."""
    return AnsibleModule(argument_spec=dict(CONNECTION_SPEC, **options), required_if=required_if, supports_check_mode=True)


def client_for(module, token=None):
    """The client for a module's connection options."""
    p = module.params
    return RancherClient(p["url"], token=token, ca_path=p["ca_path"], validate_certs=p["validate_certs"])
