"""A client for Harbor's REST API v2.0: the one berth uses for Harbor objects
and for registry cleanup on Harbor. Everything that talks to Harbor is here
(the client, a module's run, converging one object); what to send and whether
anything changes is decided in berth_harbor_objects, without I/O."""

import base64
import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_objects import differs, plan_object, repository_path
from ansible_collections.berth.ops.plugins.module_utils.berth_http import HttpError, HttpSession

API = "/api/v2.0"


class HarborError(Exception):
    def __init__(self, message, status=None, errors=None):
        super().__init__(message)
        self.status = status
        self.errors = errors or []


class HarborClient:
    def __init__(self, url, username=None, password=None, ca_path=None, validate_certs=True, timeout=30):
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self.ca_path = ca_path
        self.validate_certs = validate_certs
        self.timeout = timeout
        self.session = HttpSession(ca_path=ca_path, validate_certs=validate_certs, timeout=timeout)

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
            status, response_headers, raw_body = self.session.request(method, url, all_headers, data)
        except HttpError as exc:
            raise HarborError("Harbor at %s is unreachable: %s" % (self.url, exc)) from None
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
            _unused, headers, batch = self.request("GET", path, dict(params or {}, page=page, page_size=page_size))
            batch = batch or []
            items.extend(batch)
            total = int(headers.get("x-total-count", len(items)))
            if not batch or len(items) >= total:
                return items
            page += 1

    def created_id(self, headers):
        """The id at the end of a 201's Location header."""
        return int(headers.get("location", "").rstrip("/").rsplit("/", 1)[-1])

    def create(self, path, body, params=None):
        """POST a new object; its id (or name) from the Location header."""
        _unused, headers, _unused = self.request("POST", path, params=params, body=body, expect=(201,))
        location = headers.get("location", "").rstrip("/").rsplit("/", 1)[-1]
        return int(location) if location.isdigit() else location

    def put(self, path, body):
        self.request("PUT", path, body=body)

    def delete(self, path, missing_ok=True):
        """True when something was deleted."""
        try:
            self.request("DELETE", path)
        except HarborError as exc:
            if missing_ok and exc.status == 404:
                return False
            raise
        return True

    def authenticates(self, username, password):
        """Whether Harbor accepts these credentials (401 is the only "no")."""
        probe = HarborClient(self.url, username, password, self.ca_path, self.validate_certs, self.timeout)
        try:
            probe.request("GET", "/projects", {"page_size": 1}, expect=(200, 403))
        except HarborError as exc:
            if exc.status == 401:
                return False
            raise
        return True

    # -- health ---------------------------------------------------------------
    def health(self):
        return self.get("/health")

    # -- projects, repositories, artifacts -------------------------------------
    def projects(self):
        return self.paged("/projects")

    def project(self, name):
        """The project, or None. Listing by name works for robots too: Harbor
        answers a robot's GET of a missing project with 403, not 404."""
        return next((p for p in self.paged("/projects", {"name": name}) if p["name"] == name), None)

    def quota(self, project_id):
        """(quota id, hard storage limit) of a project."""
        quotas = self.request("GET", "/quotas", {"reference": "project", "reference_id": str(project_id)})[2] or []
        if not quotas:
            return None, None
        return quotas[0]["id"], quotas[0]["hard"].get("storage")

    def repositories(self, project):
        """Full names ("project/repo") of a project's repositories."""
        return [r["name"] for r in self.paged("/projects/%s/repositories" % quote(project, safe=""))]

    def artifacts(self, full_name):
        project, _unused, repository = full_name.partition("/")
        path = "/projects/%s/repositories/%s/artifacts" % (quote(project, safe=""), repository_path(repository))
        return self.paged(path, {"with_tag": True})

    @staticmethod
    def artifact_path(full_name, reference):
        """The API path of one artifact of `project/repository`, by digest or tag."""
        project, _unused, repository = full_name.partition("/")
        return "/projects/%s/repositories/%s/artifacts/%s" % (
            quote(project, safe=""),
            repository_path(repository),
            quote(reference, safe=":"),
        )

    def artifact(self, full_name, reference):
        """One artifact by digest or tag, or None when it does not exist."""
        return self.get(self.artifact_path(full_name, reference), missing_ok=True)

    def delete_artifact(self, full_name, reference):
        path = self.artifact_path(full_name, reference)
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
        _unused, headers, _unused = self.request("POST", "/system/gc/schedule", body=body, expect=(201,))
        return headers.get("location")

    def gc_history(self):
        return self.paged("/system/gc")


CONNECTION_SPEC = {
    "harbor_url": {"type": "str", "required": True, "aliases": ["url"]},
    "username": {"type": "str", "default": "admin"},
    "password": {"type": "str", "required": True, "no_log": True},
    "ca_path": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
}

# Every Harbor object module: the connection, and whether the object exists
# (the harbor and state doc fragments).
OBJECT_SPEC = dict(CONNECTION_SPEC, state={"type": "str", "choices": ["present", "absent"], "default": "present"})


def object_module(**options):
    """The AnsibleModule of a Harbor object module: OBJECT_SPEC and the
    module's own options, with check mode."""
    return AnsibleModule(argument_spec=dict(OBJECT_SPEC, **options), supports_check_mode=True)


def client_for(module):
    """The client for a module's connection options (admin or a robot account)."""
    p = module.params
    if not p["harbor_url"].startswith(("https://", "http://")):
        module.fail_json(msg="harbor_url: %r is not an http(s) URL" % p["harbor_url"])
    return HarborClient(p["harbor_url"], p["username"], p["password"], ca_path=p["ca_path"], validate_certs=p["validate_certs"])


def run_module(module, errors, converge, *args):
    """Fail on bad input before any request; otherwise converge and report."""
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)
    client = client_for(module)
    try:
        module.exit_json(**converge(module, client, *args))
    except HarborError as exc:
        module.fail_json(msg=str(exc), status=exc.status, errors=exc.errors)


class Converged:
    """One object's convergence: the plan (action, changes, changed, verb),
    its diff only when the task asked for one, whether the call ran (not in
    check mode), and `made`, what that call returned."""

    def __init__(self, plan, diff, ran, made):
        self.plan, self.diff, self.ran, self.made = plan, diff, ran, made
        self.action, self.changes, self.changed, self.verb = plan.action, plan.changes, plan.changed, plan.verb

    @property
    def created(self):
        """What create() returned when it ran (the new object or its id), else None."""
        return self.made if self.ran and self.action == "create" else None

    def result(self, **keys):
        """The module result: changed, diff when there is one, and the module's own keys."""
        result = {"changed": self.changed}
        if self.diff:
            result["diff"] = self.diff
        result.update(keys)
        return result


def converge_object(module, current, desired, create=None, update=None, delete=None, compare=differs, after=None):
    """Converge one Harbor object: plan_object() decides (current None: missing;
    desired None: state absent), then the one call it takes runs, unless in
    check mode. create() and delete() take no arguments, update(changes) gets
    what compare() found; each returns whatever the module wants back."""
    plan = plan_object(current, desired, compare, after)
    ran = plan.changed and not module.check_mode
    made = None
    if ran:
        made = create() if plan.action == "create" else update(plan.changes) if plan.action == "update" else delete()
    return Converged(plan, plan.diff if module._diff else None, ran, made)
