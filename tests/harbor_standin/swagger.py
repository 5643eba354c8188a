"""Harbor's Swagger 2.0 file for the Harbor API stand-in: loading, routing, and
the contract checks on requests and responses.

The stand-in is a test double for berth's tests, not Harbor. What makes it
worth trusting is that every request and every response it handles is checked
against Harbor's own published API description.
"""

import functools
import json
import os
import re
import urllib.parse
from dataclasses import dataclass, field

import jsonschema
import yaml

SWAGGER_NAME = "swagger-v2.15.2.yaml"
REFERENCE_ENV = "BERTH_HARBOR_REFERENCE"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Harbor's error codes (src/lib/errors) by HTTP status; 415/501 follow the same naming.
CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    412: "PRECONDITION",
    415: "UNSUPPORTED_MEDIA_TYPE",
    500: "UNKNOWN",
    501: "UNSUPPORTED",
}

# Harbor's handlers send errors through a generic path (lib/http SendError) that
# bypasses the swagger responders, so some operations answer with statuses their
# swagger entry omits. Only these pairs are tolerated, and the body must still be
# an Errors document. 401/403 (authentication, RBAC) are tolerated everywhere.
UNDECLARED_ERRORS = {
    "getProject": {404},
    "CreateRobot": {409},
    "createRetention": {409},
    "getRetention": {404},
    "updateRetention": {400, 404, 409},
    "deleteRetention": {400},
    "ListImmuRules": {404},
    "UpdateImmuRule": {404},
    "DeleteImmuRule": {404},
    "getReplicationPolicy": {404},
}
ALWAYS_TOLERATED = {401, 403}

# go-swagger writes nothing for a nil object payload; Harbor does that here when
# no GC schedule exists.
EMPTY_PAYLOAD_OK = {"getGCSchedule"}

ERRORS_SCHEMA = {"$ref": "#/definitions/Errors"}
DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time")
def _date_time(value):
    return not isinstance(value, str) or bool(DATE_TIME.fullmatch(value))


@FORMATS.checks("int32")
def _int32(value):
    return not isinstance(value, int) or -(2**31) <= value < 2**31


@FORMATS.checks("int64")
def _int64(value):
    return not isinstance(value, int) or -(2**63) <= value < 2**63


class ApiError(Exception):
    """An answer in Harbor's error shape; handlers raise it."""

    def __init__(self, status, message, code=None):
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "UNKNOWN")
        self.message = message


def error_body(code, message):
    return {"errors": [{"code": code, "message": message}]}


def reference_file():
    """The swagger file: $BERTH_HARBOR_REFERENCE, then ../shared next to the repo, then /work/shared."""
    env = os.environ.get(REFERENCE_ENV)
    if env:
        path = os.path.join(env, SWAGGER_NAME)
        if not os.path.isfile(path):
            raise FileNotFoundError("%s=%s does not hold %s" % (REFERENCE_ENV, env, SWAGGER_NAME))
        return path
    candidates = [os.path.join(REPO_ROOT, "..", "shared", "reference", "harbor"), "/work/shared/reference/harbor"]
    for directory in candidates:
        path = os.path.join(directory, SWAGGER_NAME)
        if os.path.isfile(path):
            return os.path.normpath(path)
    raise FileNotFoundError(
        "Harbor's swagger (%s) was not found; set %s to the directory holding it (looked in %s)"
        % (SWAGGER_NAME, REFERENCE_ENV, ", ".join(os.path.normpath(c) for c in candidates))
    )


def _prepare(node, strict):
    """Turn swagger schema dialect into JSON Schema draft 4.

    x-nullable becomes a null alternative. With strict (responses), objects may not
    carry undeclared properties (go-swagger models cannot emit them) and
    x-omitempty: false properties are required (go-swagger always writes them).
    """
    if isinstance(node, list):
        return [_prepare(item, strict) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _prepare(schema, strict) for name, schema in value.items()}
        elif key != "example":
            out[key] = _prepare(value, strict)
    if strict and "properties" in node:
        out.setdefault("additionalProperties", False)
        always = [name for name, schema in node["properties"].items() if schema.get("x-omitempty") is False]
        if always:
            out["required"] = sorted(set(out.get("required", [])) | set(always))
    if out.get("type") == "object" and not {"properties", "additionalProperties", "$ref"} & set(out):
        # go-swagger turns a bare object schema into interface{} and checks nothing;
        # Harbor sends and takes scalars there (rule params, extra_attrs, GC parameters).
        del out["type"]
    if node.get("x-nullable") or node.get("x-isnullable"):
        if "$ref" in out:
            return {"anyOf": [{"$ref": out["$ref"]}, {"type": "null"}]}
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
    return out


@dataclass
class Operation:
    op_id: str
    method: str
    template: str
    params: list
    responses: dict
    produces: list = field(default_factory=list)

    def param(self, location):
        return [p for p in self.params if p["in"] == location]


@dataclass
class Route:
    template: str
    segments: list
    operations: dict

    @property
    def literals(self):
        return sum(1 for s in self.segments if not s.startswith("{"))


class Swagger:
    def __init__(self, path):
        with open(path, encoding="utf-8") as handle:
            self.doc = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        self.base_path = self.doc["basePath"]
        definitions = self.doc["definitions"]
        self._definitions = {strict: _prepare(definitions, strict) for strict in (False, True)}
        self._validators = {}
        self.routes = []
        self.operations = {}
        for template, item in self.doc["paths"].items():
            shared = item.get("parameters", [])
            operations = {}
            for method, spec in item.items():
                if method == "parameters":
                    continue
                params = [self.resolve(p) for p in shared + spec.get("parameters", [])]
                responses = {code: self.resolve(r) for code, r in spec.get("responses", {}).items()}
                op = Operation(spec["operationId"], method.upper(), template, params, responses, spec.get("produces", self.doc["produces"]))
                operations[op.method] = op
                self.operations[op.op_id] = op
            self.routes.append(Route(template, template[1:].split("/"), operations))
        # The most literal template wins: /system/gc/schedule over /system/gc/{gc_id}.
        self.routes.sort(key=lambda r: -r.literals)

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/") and not node["$ref"].startswith("#/definitions/"):
            target = self.doc
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            node = target
        return node

    # -- routing -------------------------------------------------------------------
    def match(self, relative_path):
        """(route, raw path params) for a path below basePath, segments still percent-encoded."""
        segments = relative_path[1:].split("/")
        for route in self.routes:
            if len(route.segments) != len(segments):
                continue
            values = {}
            for pattern, raw in zip(route.segments, segments):
                if pattern.startswith("{"):
                    if not raw:
                        break
                    values[pattern[1:-1]] = raw
                elif pattern != urllib.parse.unquote(raw):
                    break
            else:
                return route, values
        if relative_path.endswith("/") and len(relative_path) > 1:
            return self.match(relative_path[:-1])
        return None, None

    # -- schemas ---------------------------------------------------------------------
    def validator(self, schema, strict):
        key = (id(schema), strict)
        if key not in self._validators:
            root = dict(_prepare(schema, strict), definitions=self._definitions[strict])
            self._validators[key] = (schema, jsonschema.Draft4Validator(root, format_checker=FORMATS))
        return self._validators[key][1]

    def schema_errors(self, schema, value, strict):
        errors = sorted(self.validator(schema, strict).iter_errors(value), key=lambda e: list(e.absolute_path))
        return ["%s: %s" % (".".join(str(p) for p in e.absolute_path) or "(body)", e.message) for e in errors]

    # -- requests --------------------------------------------------------------------
    def parse_request(self, op, path_values, query, headers, body):
        """Validated, typed parameters by swagger name, plus the parsed body (or None)."""
        params = {}
        for spec in op.params:
            name, where = spec["name"], spec["in"]
            if where == "body":
                continue
            if where == "path":
                raw = urllib.parse.unquote(path_values[name])
                # Harbor unescapes repository names once more (a%252Fb -> a%2Fb -> a/b).
                raw = urllib.parse.unquote(raw) if name == "repository_name" else raw
            elif where == "query":
                raw = query[name][0] if name in query else None
            elif where == "header":
                raw = headers.get(name)
            else:
                raise ApiError(400, "unsupported parameter location %s" % where)
            if raw is None:
                if spec.get("required"):
                    raise ApiError(400, "%s in %s is required" % (name, where))
                if "default" in spec:
                    params[name] = spec["default"]
                continue
            params[name] = _coerce(spec, name, where, raw)
        payload = None
        for spec in op.param("body"):
            if not body:
                if spec.get("required"):
                    raise ApiError(400, "%s in body is required" % spec["name"])
                continue
            content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type != "application/json":
                raise ApiError(415, "unsupported media type %r: the body must be application/json" % content_type)
            try:
                payload = json.loads(body)
            except ValueError as exc:
                raise ApiError(400, "parsing %s body failed: %s" % (spec["name"], exc)) from None
            problems = self.schema_errors(spec["schema"], payload, strict=False)
            if problems:
                raise ApiError(400, "validation failure list: " + "; ".join("%s.%s" % (spec["name"], p) for p in problems))
            payload = self.prune(spec["schema"], payload)
        return params, payload

    def prune(self, schema, value):
        """Drop properties the schema does not declare, as Go's JSON unmarshalling into go-swagger models does."""
        while "$ref" in schema:
            schema = self.doc["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
        if isinstance(value, dict) and "properties" in schema:
            props = schema["properties"]
            return {k: self.prune(props[k], v) for k, v in value.items() if k in props}
        if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
            return {k: self.prune(schema["additionalProperties"], v) for k, v in value.items()}
        if isinstance(value, list) and "items" in schema:
            return [self.prune(schema["items"], v) for v in value]
        return value

    # -- responses -------------------------------------------------------------------
    def check_response(self, op, status, body, headers):
        """Problems with a handler's response; an empty list when it honours the contract."""
        declared = op.responses.get(str(status))
        if declared is None:
            tolerated = ALWAYS_TOLERATED | UNDECLARED_ERRORS.get(op.op_id, set())
            if op_has_query(op):
                tolerated = tolerated | {400}  # Harbor's q parser (BuildQuery) answers 400 for any operation with q
            if status not in tolerated:
                return ["status %s is not declared for %s" % (status, op.op_id)]
            declared = {"schema": ERRORS_SCHEMA}
        schema = declared.get("schema")
        problems = []
        if schema is None and body is not None:
            problems.append("status %s declares no body but one was sent" % status)
        elif schema is not None and body is None and not (op.op_id in EMPTY_PAYLOAD_OK or op.method == "HEAD"):
            problems.append("status %s declares a body but none was sent" % status)
        elif schema is not None and body is not None:
            problems += self.schema_errors(schema, body, strict=True)
        for name in ("Location", "X-Total-Count"):
            if name in declared.get("headers", {}) and name not in headers:
                problems.append("header %s is declared for status %s but missing" % (name, status))
        return problems


def op_has_query(op):
    return any(p["name"] == "q" and p["in"] == "query" for p in op.params)


def _coerce(spec, name, where, raw):
    kind = spec.get("type", "string")
    where_name = "%s in %s" % (name, where)
    if kind == "array":
        return [_coerce(dict(spec["items"], name=name), name, where, item) for item in raw.split(",") if item != ""]
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d+", raw):
            raise ApiError(400, "%s must be of type integer: %r" % (where_name, raw))
        value = int(raw)
    elif kind == "number":
        try:
            value = float(raw)
        except ValueError:
            raise ApiError(400, "%s must be of type number: %r" % (where_name, raw)) from None
    elif kind == "boolean":
        if raw not in ("true", "false"):
            raise ApiError(400, "%s must be of type boolean (true or false): %r" % (where_name, raw))
        value = raw == "true"
    else:
        value = raw
        if "minLength" in spec and len(value) < spec["minLength"]:
            raise ApiError(400, "%s should be at least %s chars long" % (where_name, spec["minLength"]))
        if "maxLength" in spec and len(value) > spec["maxLength"]:
            raise ApiError(400, "%s should be at most %s chars long" % (where_name, spec["maxLength"]))
        if "pattern" in spec and not re.search(spec["pattern"], value):
            raise ApiError(400, "%s should match %r" % (where_name, spec["pattern"]))
    if "enum" in spec and value not in spec["enum"]:
        raise ApiError(400, "%s should be one of %s" % (where_name, spec["enum"]))
    if "minimum" in spec and value < spec["minimum"]:
        raise ApiError(400, "%s should be greater than or equal to %s" % (where_name, spec["minimum"]))
    if "maximum" in spec and value > spec["maximum"]:
        raise ApiError(400, "%s should be less than or equal to %s" % (where_name, spec["maximum"]))
    return value


def load():
    return _load(reference_file())


@functools.lru_cache(maxsize=4)
def _load(path):
    # Cached: parsing the file takes a moment and it never changes.
    return Swagger(path)
