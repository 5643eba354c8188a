"""Shared pieces of the Rancher API stand-in: errors in Rancher's shapes and the
context one request is handled with.

Rancher answers errors in three shapes, depending on which layer refused:
  - norman (/v3, /v3-public): {"baseType": "error", "type": "error", "status": 422,
    "code": "InvalidBodyContent", "message": "...", "fieldName": "..."}
  - steve (/v1): {"type": "error", "links": {}, "status": 404, "code": "NotFound", "message": "..."}
  - the authentication filter in front of both: {"type": "error", "status": "401",
    "message": "Unauthorized 401: must authenticate"} (status is a string there).
"""

import json
import urllib.parse

NORMAN, STEVE, AUTH_FILTER = "norman", "steve", "auth-filter"


class ApiError(Exception):
    """An answer other than success. violation=True marks a request that broke the
    documented request shape (berth's bug, not a legitimate API outcome)."""

    def __init__(self, status, code, message, field=None, violation=False, headers=None, family=None):
        super().__init__(message)
        self.family = family  # None: the shape of the API the path belongs to
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.violation = violation
        self.headers = headers or {}

    def body(self, family):
        if family == AUTH_FILTER:
            return {"type": "error", "status": str(self.status), "message": "%s %d: %s" % (self.code, self.status, self.message)}
        if family == STEVE:
            return {"type": "error", "links": {}, "status": self.status, "code": self.code, "message": self.message}
        body = {"baseType": "error", "type": "error", "status": self.status, "code": self.code, "message": self.message}
        if self.field:
            body["fieldName"] = self.field
        return body


def must_authenticate():
    return ApiError(401, "Unauthorized", "must authenticate", family=AUTH_FILTER)


def violation(status, code, message, field=None):
    return ApiError(status, code, message, field=field, violation=True)


class Call:
    """One request as the handlers see it."""

    def __init__(self, standin, method, path, query, headers, body, params):
        self.standin = standin
        self.state = standin.state
        self.method = method
        self.path = path
        self.query = query  # dict of lists, as parse_qs gives it
        self.headers = headers
        self.raw_body = body
        self.params = params  # named groups of the route's pattern
        self.token = None  # the API token the caller authenticated with
        self.base_url = standin.base_url_for(headers)

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default

    def json_body(self, required=(), allowed=None):
        """The body as a JSON object. Rancher's clients send application/json; anything
        else, unknown fields (when allowed is given) or missing fields are violations."""
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise violation(415, "UnsupportedMediaType", "Content-Type must be application/json, got %r" % content_type)
        try:
            data = json.loads(self.raw_body or b"null")
        except ValueError as exc:
            raise violation(422, "InvalidFormat", "the body is not JSON: %s" % exc) from exc
        if not isinstance(data, dict):
            raise violation(422, "InvalidFormat", "the body must be a JSON object")
        if allowed is not None:
            unknown = sorted(set(data) - set(allowed) - set(required))
            if unknown:
                raise violation(422, "InvalidBodyContent", "unknown field(s) %s" % ", ".join(unknown), field=unknown[0])
        for name in required:
            if data.get(name) is None:
                raise violation(422, "MissingRequired", "field %s is required" % name, field=name)
        return data

    def url(self, path, **query):
        suffix = "?" + urllib.parse.urlencode(query) if query else ""
        return self.base_url + path + suffix
