"""Shared machinery of the Harbor API stand-in's handlers: the operation registry,
principals, access control as Harbor's RBAC applies it, and Harbor's q / sort /
pagination conventions. A test double for berth's tests, not Harbor.
"""

import re
import urllib.parse
from dataclasses import dataclass, field

from .swagger import ApiError

NEVER = "0001-01-01T00:00:00.000Z"  # Go's zero time, as Harbor writes it

HANDLERS = {}


def op(op_id):
    def register(function):
        HANDLERS[op_id] = function
        return function

    return register


@dataclass
class Principal:
    name: str
    robot: dict | None = None  # the robot's record, for robot accounts
    admin: bool = False

    @property
    def is_admin(self):
        return self.admin


@dataclass
class Call:
    state: object
    user: Principal
    params: dict
    body: object
    path: str  # decoded request path, the base of Location headers
    query: dict = field(default_factory=dict)


@dataclass
class Response:
    status: int = 200
    body: object = None
    headers: dict = field(default_factory=dict)


def created(call, ident):
    return Response(201, None, {"Location": "%s/%s" % (call.path.rstrip("/"), ident)})


# -- access control -------------------------------------------------------------------
def allowed(user, kind, resource, action, project=None):
    if user.is_admin:
        return True
    for perm in user.robot["permissions"] if user.robot else ():
        if perm["kind"] != kind or (kind == "project" and perm["namespace"] not in ("*", project["name"])):
            continue
        if resource is None or any(a.get("resource") == resource and a.get("action") == action for a in perm["access"]):
            return True
    return False


def require_system(call, resource, action):
    if not allowed(call.user, "system", resource, action):
        raise ApiError(403, "forbidden")


def require_project(call, project, resource, action):
    """Robots need a permission entry for the project (and the access, when one is named).

    A missing project is 403 for robots and passes for admin (who then gets 404),
    as Harbor answers.
    """
    if call.user.is_admin:
        return
    if project is not None:
        if project["metadata"].get("public") == "true" and action in ("read", "list", "pull"):
            return
        if allowed(call.user, "project", resource, action, project):
            return
    raise ApiError(403, "forbidden")


def find_project(call, resource, action, param="project_name_or_id"):
    raw = call.params[param]
    if param == "project_name_or_id" and not call.params.get("X-Is-Resource-Name") and re.fullmatch(r"-?\d+", raw):
        project = call.state.projects.get(int(raw))
    else:
        project = call.state.project_by_name(raw)
    require_project(call, project, resource, action)
    if project is None:
        raise ApiError(404, "project %s not found" % raw)
    return project


def visible(user, project):
    if user.is_admin or project["metadata"].get("public") == "true":
        return True
    return user.robot is not None and any(
        p["kind"] == "project" and p["namespace"] in ("*", project["name"]) for p in user.robot["permissions"]
    )


# -- q, sort and pagination --------------------------------------------------------------
def _key(name):
    return name.lower().replace("_", "")


def parse_q(raw):
    """Harbor's q: k=v exact, k=~v fuzzy, k=[a~b] range, k={a b} any, k=(a b) all."""
    keywords = {}
    if not raw:
        return keywords
    for part in urllib.parse.unquote_plus(raw).split(","):
        key, _, value = part.partition("=")
        if not key or not value:
            raise ApiError(400, 'the query string must contain "=" and the key/value cannot be empty')
        if value[0] == "~":
            if len(value) < 2:
                raise ApiError(400, "invalid query string value: %s" % value)
            keywords[_key(key)] = ("fuzzy", value[1:])
        elif value[0] == "[":
            low, sep, high = value[1:-1].partition("~")
            if value[-1] != "]" or not sep or not (low.strip() or high.strip()):
                raise ApiError(400, "invalid query string value: %s" % value)
            keywords[_key(key)] = ("range", low.strip().strip("\"'"), high.strip().strip("\"'"))
        elif value[0] in "{(":
            if value[-1] != {"{": "}", "(": ")"}[value[0]]:
                raise ApiError(400, "invalid query string value: %s" % value)
            keywords[_key(key)] = ("any" if value[0] == "{" else "all", [v.strip("\"'") for v in value[1:-1].split()])
        else:
            keywords[_key(key)] = ("exact", value[1:] if value.startswith("\\") else value)
    return keywords


def as_text(value):
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _number_or_text(value):
    return int(value) if re.fullmatch(r"-?\d+", str(value)) else str(value)


def matches(value, pattern):
    kind, *args = pattern
    if kind == "exact":
        return as_text(value) == args[0]
    if kind == "fuzzy":
        return args[0].lower() in as_text(value).lower()
    if kind == "any":
        return as_text(value) in args[0]
    if kind == "all":
        return all(as_text(value) == v for v in args[0])
    low, high = args
    number = _number_or_text(value)
    try:
        return (not low or number >= _number_or_text(low)) and (not high or number <= _number_or_text(high))
    except TypeError:
        return False


def _sort_key(value):
    number = _number_or_text(as_text(value)) if value is not None else ""
    return (value is None, isinstance(number, str), number if isinstance(number, int) else 0, number if isinstance(number, str) else "")


def select(call, rows, keywords=None):
    """Filter [(fields, item)] by q (unknown keys are ignored, as Harbor does), sort, paginate."""
    keywords = dict(parse_q(call.params.get("q")), **(keywords or {}))
    rows = [(dict({_key(k): v for k, v in item.items()}, **fields), item) for fields, item in rows]
    rows = [r for r in rows if all(k not in r[0] or matches(r[0][k], p) for k, p in keywords.items())]
    for key in reversed([k for k in (call.params.get("sort") or "").split(",") if k]):
        name = _key(key.lstrip("-"))
        rows.sort(key=lambda r, n=name: _sort_key(r[0].get(n)), reverse=key.startswith("-"))
    return paginate(call, [item for _, item in rows])


def paginate(call, items):
    total, page, size = len(items), max(call.params.get("page", 1), 1), call.params.get("page_size", 10)
    headers = {"X-Total-Count": str(total)}
    if size > 0:
        items = items[(page - 1) * size : page * size]
        links = []
        for number, rel in ((page - 1, "prev"), (page + 1, "next")):
            if (rel == "prev" and page > 1 and number * size < total) or (rel == "next" and page * size < total):
                query = urllib.parse.urlencode(dict(call.query, page=number, page_size=size), safe="=~,{}[]()")
                links.append('<%s?%s>; rel="%s"' % (call.path, query, rel))
        if links:
            headers["Link"] = ", ".join(links)
    return Response(200, items, headers)
