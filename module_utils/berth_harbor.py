"""A client for Harbor's REST API v2.0: the one berth uses for Harbor objects
and for registry cleanup on Harbor."""

import base64
import json

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode
from ansible.module_utils.urls import open_url

API = "/api/v2.0"


class HarborError(Exception):
    def __init__(self, message, status=None, errors=None):
        super().__init__(message)
        self.status = status
        self.errors = errors or []


def repository_path(name):
    """Harbor wants a repository name with slashes encoded twice in paths."""
    return quote(quote(name, safe=""), safe="")


class HarborClient:
    def __init__(self, url, username=None, password=None, ca_path=None, validate_certs=True, timeout=30):
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self.ca_path = ca_path
        self.validate_certs = validate_certs
        self.timeout = timeout

    def request(self, method, path, params=None, body=None, headers=None, expect=(200,)):
        """(status, headers, parsed body). Raises HarborError on unexpected status."""
        url = self.url + API + path
        if params:
            url += "?" + urlencode({k: ("true" if v is True else "false" if v is False else v) for k, v in params.items() if v is not None})
        all_headers = {"Accept": "application/json"}
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        if self.username is not None:
            raw = ("%s:%s" % (self.username, self.password or "")).encode()
            all_headers["Authorization"] = "Basic %s" % base64.b64encode(raw).decode()
        all_headers.update(headers or {})
        data = json.dumps(body).encode() if body is not None else None
        try:
            response = open_url(
                url,
                method=method,
                headers=all_headers,
                data=data,
                timeout=self.timeout,
                ca_path=self.ca_path,
                validate_certs=self.validate_certs,
            )
            status, response_headers, raw_body = response.getcode(), dict(response.headers), response.read()
        except HTTPError as exc:
            status, response_headers = exc.code, dict(exc.headers or {})
            raw_body = exc.read() if hasattr(exc, "read") else b""
        except (URLError, OSError, ValueError) as exc:
            raise HarborError("Harbor at %s is unreachable: %s" % (self.url, getattr(exc, "reason", exc))) from None
        try:
            parsed = json.loads(raw_body) if raw_body else None
        except ValueError:
            parsed = raw_body.decode(errors="replace")
        if status not in expect:
            errors = parsed.get("errors", []) if isinstance(parsed, dict) else []
            detail = "; ".join("%s: %s" % (e.get("code"), e.get("message")) for e in errors) or str(parsed)[:300]
            raise HarborError("Harbor %s %s answered HTTP %s: %s" % (method, path, status, detail), status, errors)
        return status, {k.lower(): v for k, v in response_headers.items()}, parsed

    def get(self, path, params=None, missing_ok=False):
        try:
            return self.request("GET", path, params)[2]
        except HarborError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise

    def paged(self, path, params=None, page_size=100):
        """Every item of a paginated list."""
        items, page = [], 1
        while True:
            _, headers, batch = self.request("GET", path, dict(params or {}, page=page, page_size=page_size))
            batch = batch or []
            items.extend(batch)
            total = int(headers.get("x-total-count", len(items)))
            if not batch or len(items) >= total:
                return items
            page += 1

    def created_id(self, headers):
        """The id at the end of a 201's Location header."""
        return int(headers.get("location", "").rstrip("/").rsplit("/", 1)[-1])

    # -- health ---------------------------------------------------------------
    def health(self):
        return self.get("/health")

    # -- projects, repositories, artifacts -------------------------------------
    def projects(self):
        return self.paged("/projects")

    def project(self, name):
        return self.get("/projects/%s" % quote(name, safe=""), missing_ok=True)

    def repositories(self, project):
        """Full names ("project/repo") of a project's repositories."""
        return [r["name"] for r in self.paged("/projects/%s/repositories" % quote(project, safe=""))]

    def artifacts(self, full_name):
        project, _, repository = full_name.partition("/")
        path = "/projects/%s/repositories/%s/artifacts" % (quote(project, safe=""), repository_path(repository))
        return self.paged(path, {"with_tag": True})

    def delete_artifact(self, full_name, reference):
        project, _, repository = full_name.partition("/")
        path = "/projects/%s/repositories/%s/artifacts/%s" % (
            quote(project, safe=""),
            repository_path(repository),
            quote(reference, safe=":"),
        )
        try:
            self.request("DELETE", path)
        except HarborError as exc:
            if exc.status != 404:
                raise
            return False
        return True

    # -- garbage collection ------------------------------------------------------
    def trigger_gc(self, delete_untagged=False):
        body = {"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": delete_untagged}}
        _, headers, _ = self.request("POST", "/system/gc/schedule", body=body, expect=(201,))
        return headers.get("location")

    def gc_history(self):
        return self.paged("/system/gc")
