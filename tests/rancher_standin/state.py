"""In-memory state of the Rancher API stand-in, a test double for berth's tests
(not Rancher). One lock guards everything; every change bumps .revision so the
server knows when to rewrite the --state-file.

Secrets (passwords, token keys) stay in memory only: snapshot() leaves them out.
"""

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime

# Kubernetes' generateName suffixes and Rancher's token keys both draw from this
# alphabet (no vowels, no look-alike characters).
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
TOKEN_KEY_LENGTH = 54

# Settings berth may read or write, with Rancher's defaults (v2.8+ for the TTLs).
SETTING_DEFAULTS = {
    "server-url": "",
    "first-login": "true",
    "password-min-length": "12",
    "cacerts": "",
    "server-version": "v2.9.3",
    "telemetry-opt": "prompt",
    "eula-agreed": "",
    "auth-token-max-ttl-minutes": "129600",
    "auth-user-session-ttl-minutes": "960",
}
READ_ONLY_SETTINGS = {"cacerts"}


def random_name(prefix, length=5):
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))


def token_key():
    return "".join(secrets.choice(ALPHABET) for _ in range(TOKEN_KEY_LENGTH))


def digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def iso(epoch):
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class State:
    def __init__(self, bootstrap_password, ca_pem=""):
        self.lock = threading.RLock()
        self.revision = 0
        self._resource_version = 1000
        now = time.time()
        admin_id = random_name("user-")
        self.admin = {
            "id": admin_id,
            "username": "admin",
            "name": "Default Admin",
            "password": bootstrap_password,
            "mustChangePassword": True,
            "passwordChanged": False,
            "created": now,
            "uuid": str(uuid.uuid4()),
        }
        self.tokens = {}  # name -> token record (key kept as a sha256 digest)
        self.settings = {name: {"value": value, "created": now, "uuid": str(uuid.uuid4())} for name, value in SETTING_DEFAULTS.items()}
        self.settings["cacerts"]["value"] = ca_pem
        self.clusters = {}  # (namespace, name) -> provisioning.cattle.io/v1 Cluster object
        self.registration_tokens = {}  # "c-m-xxxxxxxx:default-token" -> record
        self.machines = {}  # cattle id -> what /v3/connect/agent learnt about a node
        self.agents = []  # records the stand-in install script posted, oldest first

    def changed(self):
        self.revision += 1

    @property
    def resource_version(self):
        return str(self._resource_version)

    def next_resource_version(self):
        self._resource_version += 1
        return str(self._resource_version)

    # -- users and tokens -----------------------------------------------------------------
    def check_password(self, username, password):
        user = self.admin
        same_user = hmac.compare_digest(username.encode(), user["username"].encode())
        same_password = hmac.compare_digest(password.encode(), user["password"].encode())
        return user if same_user and same_password else None

    def user(self, user_id):
        return self.admin if user_id == self.admin["id"] else None

    def add_token(self, user, description, ttl_ms, derived):
        name = random_name("token-")
        while name in self.tokens:
            name = random_name("token-")
        key = token_key()
        now = time.time()
        self.tokens[name] = {
            "name": name,
            "key_sha256": digest(key),
            "userId": user["id"],
            "description": description,
            "ttl": ttl_ms,
            "created": now,
            "expiresAt": now + ttl_ms / 1000 if ttl_ms else None,
            "isDerived": derived,
            "uuid": str(uuid.uuid4()),
        }
        self.changed()
        return self.tokens[name], "%s:%s" % (name, key)

    def token_for(self, value):
        """The live token record for "token-xxxxx:key", or None."""
        name, _, key = value.partition(":")
        record = self.tokens.get(name)
        if record is None or not key or not hmac.compare_digest(record["key_sha256"], digest(key)):
            return None
        if record["expiresAt"] is not None and record["expiresAt"] <= time.time():
            return None
        return record

    # -- settings -----------------------------------------------------------------------------
    def setting_value(self, name):
        return self.settings[name]["value"]

    # -- clusters -----------------------------------------------------------------------------
    def cluster_by_id(self, cluster_id):
        for cluster in self.clusters.values():
            if cluster["status"].get("clusterName") == cluster_id:
                return cluster
        return None

    def registration_token_by_value(self, value):
        for record in self.registration_tokens.values():
            if hmac.compare_digest(record["token"].encode(), value.encode()):
                return record
        return None

    # -- export ---------------------------------------------------------------------------------
    def snapshot(self):
        """Everything a test may want to read from outside, without secrets."""
        with self.lock:
            admin = self.admin
            return {
                "revision": self.revision,
                "users": [{key: admin[key] for key in ("id", "username", "mustChangePassword", "passwordChanged")}],
                "tokens": [
                    {
                        "id": t["name"],
                        "userId": t["userId"],
                        "description": t["description"],
                        "ttl": t["ttl"],
                        "isDerived": t["isDerived"],
                        "created": iso(t["created"]),
                        "expiresAt": iso(t["expiresAt"]) if t["expiresAt"] else "",
                    }
                    for t in self.tokens.values()
                ],
                "settings": {name: s["value"] for name, s in self.settings.items() if name != "cacerts"},
                "clusters": list(self.clusters.values()),
                "registration_tokens": [
                    {"id": r["id"], "name": r["name"], "clusterId": r["clusterId"], "created": iso(r["created"])}
                    for r in self.registration_tokens.values()
                ],
                "machines": list(self.machines.values()),
                "agents": list(self.agents),
            }
