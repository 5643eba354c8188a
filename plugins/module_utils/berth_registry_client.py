"""A small client for the Docker Registry HTTP API v2 (CNCF Distribution, and
the registry inside Harbor): catalog, tags, manifests, configs, deletes.
Basic and bearer-token authentication, the CA from Docker's certs.d. Also
the reader of a Distribution registry's filesystem storage, and the
credentials `docker login` stored. The decisions on what they return are
in berth_registry."""

import base64
import json
import os
import re
import shutil

from ansible.module_utils.six.moves.urllib.parse import urlencode, urljoin
from ansible_collections.berth.ops.plugins.module_utils.berth_http import HttpError, HttpSession
from ansible_collections.berth.ops.plugins.module_utils.berth_registry import platform_entry

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
INDEX_TYPES = MANIFEST_TYPES[1], MANIFEST_TYPES[3]
CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')


class RegistryError(Exception):
    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def docker_credentials(registry, config_path=None):
    """(user, password) that `docker login` stored for `registry`, or (None,
    None). The Docker SDK resolves them as the docker CLI does: credHelpers,
    credsStore, then auths. Without the SDK, only auths is read."""
    try:
        from docker import auth as docker_auth  # noqa: PLC0415 (optional on the host)
        from docker.errors import DockerException  # noqa: PLC0415
    except ImportError:
        docker_auth = None
    if docker_auth is not None:
        try:
            found = docker_auth.resolve_authconfig(docker_auth.load_config(config_path=config_path), registry) or {}
        except (DockerException, OSError, ValueError):  # a broken helper: none, as for the CLI
            found = {}
        user = found.get("username") or found.get("Username")
        password = found.get("password") or found.get("Password")
        return (user, password) if user else (None, None)
    path = config_path or os.path.expanduser("~/.docker/config.json")
    try:
        with open(path, encoding="utf-8") as stream:
            auths = json.load(stream).get("auths", {})
    except (OSError, ValueError):
        return None, None
    for key in (registry, "https://" + registry, "http://" + registry):
        encoded = auths.get(key, {}).get("auth")
        if encoded:
            user, _unused, password = base64.b64decode(encoded).decode().partition(":")
            return user, password
    return None, None


def docker_ca_path(registry):
    """The CA Docker itself trusts for `registry`, when there is one."""
    path = "/etc/docker/certs.d/%s/ca.crt" % registry
    return path if os.path.exists(path) else None


class RegistryClient:
    def __init__(self, registry, scheme="https", ca_path=None, username=None, password=None, timeout=30, validate_certs=True):
        self.registry = registry
        self.base = "%s://%s" % (scheme, registry)
        self.ca_path = ca_path
        self.username = username
        self.password = password
        self.timeout = timeout
        self.validate_certs = validate_certs
        self._tokens = {}
        self._basic = False
        self.session = HttpSession(ca_path=ca_path, validate_certs=validate_certs, timeout=timeout)

    # -- transport ---------------------------------------------------------
    def _auth_header(self, scope):
        if scope in self._tokens:
            return {"Authorization": "Bearer %s" % self._tokens[scope]}
        if self._basic and self.username is not None:
            raw = ("%s:%s" % (self.username, self.password or "")).encode()
            return {"Authorization": "Basic %s" % base64.b64encode(raw).decode()}
        return {}

    def _open(self, method, url, headers=None, data=None, follow="safe"):
        try:
            return self.session.request(method, url, headers, data, follow_redirects=follow not in (None, False, "none"))
        except HttpError as exc:
            raise RegistryError("registry %s is unreachable: %s" % (self.registry, exc)) from None

    def _authenticate(self, challenge, scope):
        kind = challenge.split(" ", 1)[0].lower()
        if kind == "basic":
            if self.username is None:
                raise RegistryError("registry %s requires credentials" % self.registry, 401)
            self._basic = True
            return
        params = dict(CHALLENGE.findall(challenge))
        query = {"service": params.get("service", "")}
        if scope:
            query["scope"] = scope
        headers = {}
        if self.username is not None:
            raw = ("%s:%s" % (self.username, self.password or "")).encode()
            headers["Authorization"] = "Basic %s" % base64.b64encode(raw).decode()
        status, _unused, body = self._open("GET", params["realm"] + "?" + urlencode(query), headers)
        if status != 200:
            raise RegistryError("registry %s refused a token for %s (HTTP %s)" % (self.registry, scope or "the API", status), status)
        payload = json.loads(body)
        self._tokens[scope] = payload.get("token") or payload.get("access_token")

    def request(self, method, path, headers=None, scope=None, data=None, follow="safe"):
        url = path if path.startswith("http") else self.base + path
        for _attempt in range(2):
            all_headers = dict(headers or {}, **self._auth_header(scope))
            status, response_headers, body = self._open(method, url, all_headers, data, follow)
            challenge = {k.lower(): v for k, v in response_headers.items()}.get("www-authenticate")
            if status != 401 or not challenge or all_headers.get("Authorization"):
                return status, {k.lower(): v for k, v in response_headers.items()}, body
            self._authenticate(challenge, scope)
        raise RegistryError("registry %s: authentication failed for %s" % (self.registry, path), 401)

    def _json(self, method, path, scope=None, expect=(200,)):
        status, headers, body = self.request(method, path, {"Accept": "application/json"}, scope)
        if status not in expect:
            raise RegistryError("registry %s: %s %s answered HTTP %s" % (self.registry, method, path, status), status)
        return headers, json.loads(body or b"{}")

    def _paginated(self, path, key, scope):
        items, url = [], path
        while url:
            headers, payload = self._json("GET", url, scope)
            items.extend(payload.get(key) or [])
            link = NEXT_LINK.search(headers.get("link", ""))
            url = urljoin(self.base + "/", link.group(1)) if link else None
        return items

    # -- API ---------------------------------------------------------------
    def ping(self):
        """Raise unless the registry answers the v2 API (with our credentials)."""
        status, _unused, _unused = self.request("GET", "/v2/")
        if status != 200:
            raise RegistryError("registry %s: /v2/ answered HTTP %s" % (self.registry, status), status)

    def catalog(self):
        return sorted(self._paginated("/v2/_catalog?n=1000", "repositories", "registry:catalog:*"))

    def tags(self, repository):
        try:
            return sorted(self._paginated("/v2/%s/tags/list?n=1000" % repository, "tags", "repository:%s:pull" % repository))
        except RegistryError as exc:
            if exc.status == 404:
                return []
            raise

    def _manifest_request(self, method, repository, reference):
        """(headers, body) of a manifest GET or HEAD, or None when it does not exist."""
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        status, response_headers, body = self.request(
            method, "/v2/%s/manifests/%s" % (repository, reference), headers, "repository:%s:pull" % repository
        )
        if status == 404:
            return None
        if status != 200:
            raise RegistryError("registry %s: manifest %s:%s answered HTTP %s" % (self.registry, repository, reference, status), status)
        return response_headers, body

    def manifest(self, repository, reference):
        """(digest, media type, parsed manifest) or None when it does not exist."""
        found = self._manifest_request("GET", repository, reference)
        if found is None:
            return None
        response_headers, body = found
        document = json.loads(body)
        media_type = response_headers.get("content-type", document.get("mediaType", "")).split(";")[0]
        return response_headers.get("docker-content-digest"), media_type, document

    def manifest_digest(self, repository, reference):
        found = self._manifest_request("HEAD", repository, reference)
        return None if found is None else found[0].get("docker-content-digest")

    def image_config(self, repository, reference):
        """The image config (labels, created, ...) behind a tag or digest."""
        found = self.manifest(repository, reference)
        if not found:
            return None
        _unused, media_type, document = found
        if media_type in INDEX_TYPES:
            chosen = platform_entry(document.get("manifests"))
            if not chosen:
                return None
            return self.image_config(repository, chosen["digest"])
        digest = document["config"]["digest"]
        status, _unused, body = self.request(
            "GET", "/v2/%s/blobs/%s" % (repository, digest), None, "repository:%s:pull" % repository, follow="all"
        )
        if status != 200:
            raise RegistryError("registry %s: config blob %s answered HTTP %s" % (self.registry, digest, status), status)
        return json.loads(body)

    def delete_manifest(self, repository, digest):
        status, _unused, body = self.request(
            "DELETE", "/v2/%s/manifests/%s" % (repository, digest), None, "repository:%s:delete" % repository
        )
        if status == 405:
            raise RegistryError("registry %s does not allow deletes (storage.delete.enabled is off)" % self.registry, status)
        if status not in (202, 200, 404):
            raise RegistryError(
                "registry %s: delete %s@%s answered HTTP %s: %s" % (self.registry, repository, digest, status, body[:200]), status
            )
        return status != 404


class StorageReader:
    """Reads a Distribution registry's filesystem storage directly: on the
    registry host, listing thousands of tags costs file reads, not requests.
    Deletes still go through the API."""

    def __init__(self, root):
        self.base = os.path.join(root, "docker", "registry", "v2")

    def available(self):
        return os.path.isdir(os.path.join(self.base, "repositories"))

    def repositories(self):
        top = os.path.join(self.base, "repositories")
        found = []
        for directory, dirs, _unused in os.walk(top):
            if "_manifests" in dirs:
                found.append(os.path.relpath(directory, top))
            dirs[:] = [d for d in dirs if not d.startswith("_")]
        return sorted(found)

    def revisions(self, repository):
        """{digest: push time} of every manifest in the repository, tagged or
        not (the index's per-platform manifests too)."""
        top = os.path.join(self.base, "repositories", repository, "_manifests", "revisions")
        found = {}
        for algorithm in os.listdir(top) if os.path.isdir(top) else []:
            for hexdigest in os.listdir(os.path.join(top, algorithm)):
                link = os.path.join(top, algorithm, hexdigest, "link")
                try:
                    found["%s:%s" % (algorithm, hexdigest)] = os.stat(link).st_mtime
                except OSError:
                    continue
        return found

    def has_revision(self, repository, digest):
        """Whether the repository still holds the manifest: a delete through
        the API removes this link first, so it is the ground truth."""
        algorithm, _unused, hexdigest = digest.partition(":")
        return os.path.exists(os.path.join(self.base, "repositories", repository, "_manifests", "revisions", algorithm, hexdigest, "link"))

    def untag(self, repository, digests):
        """Remove the tags that still name deleted manifests, as the registry
        itself does right after a delete (a registry stopped in between
        leaves them behind, and a tag without its manifest never pulls)."""
        removed = []
        for tag, (target, _unused) in sorted(self.tags(repository).items()):
            if target in digests and not self.has_revision(repository, target):
                shutil.rmtree(os.path.join(self.base, "repositories", repository, "_manifests", "tags", tag), ignore_errors=True)
                removed.append("%s:%s" % (repository, tag))
        return removed

    def untag_doomed(self, repository, digests, kept_tags=()):
        """Before the manifests in `digests` are deleted through the API,
        remove the tags that point at them. Distribution's delete looks up
        every tag of the repository to untag it, so with thousands of tags
        each delete reads thousands of links; without the doomed tags it
        reads only the kept ones. Each link is read again right before its
        tag goes, so a tag pushed over meanwhile stays."""
        removed = []
        for tag, (target, _unused) in sorted(self.tags(repository).items()):
            if target not in digests or tag in kept_tags:
                continue
            tag_dir = os.path.join(self.base, "repositories", repository, "_manifests", "tags", tag)
            try:
                with open(os.path.join(tag_dir, "current", "link"), encoding="utf-8") as stream:
                    if stream.read().strip() != target:
                        continue
            except OSError:
                continue
            shutil.rmtree(tag_dir, ignore_errors=True)
            removed.append("%s:%s" % (repository, tag))
        return removed

    def tags(self, repository):
        """{tag: (digest, push time)} from the tags' current links."""
        tags_dir = os.path.join(self.base, "repositories", repository, "_manifests", "tags")
        found = {}
        for tag in os.listdir(tags_dir) if os.path.isdir(tags_dir) else []:
            link = os.path.join(tags_dir, tag, "current", "link")
            try:
                with open(link, encoding="utf-8") as stream:
                    found[tag] = (stream.read().strip(), os.stat(link).st_mtime)
            except OSError:
                continue
        return found

    def blob(self, digest):
        algorithm, _unused, hexdigest = digest.partition(":")
        path = os.path.join(self.base, "blobs", algorithm, hexdigest[:2], hexdigest, "data")
        with open(path, "rb") as stream:
            return stream.read()

    def manifest(self, digest):
        try:
            return json.loads(self.blob(digest))
        except (OSError, ValueError):
            return None

    def image_config(self, digest):
        document = self.manifest(digest) or {}
        entries = document.get("manifests")
        if entries:
            chosen = platform_entry(entries)
            return self.image_config(chosen["digest"])
        try:
            return json.loads(self.blob(document["config"]["digest"]))
        except (KeyError, OSError, ValueError):
            return None
