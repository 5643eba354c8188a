"""Harbor's vocabularies and the semantic checks Harbor makes beyond its swagger,
for the Harbor API stand-in (a test double for berth's tests, not Harbor).

Tables follow Harbor v2.15's sources: rbac.PoliciesMap (robot permissions),
the retention rule index and metadata payload, the replication adapters.
"""

import json
import re

from .swagger import ApiError

# rbac.PoliciesMap: what a robot may be granted, by permission kind.
ROBOT_ACCESS = {
    "system": {
        "audit-log": {"list"},
        "preheat-instance": {"read", "create", "delete", "list", "update"},
        "project": {"list", "create"},
        "replication-policy": {"read", "create", "delete", "list", "update"},
        "replication": {"read", "create", "list"},
        "replication-adapter": {"list"},
        "registry": {"read", "create", "delete", "list", "update"},
        "scan-all": {"read", "update", "stop", "create"},
        "system-volumes": {"read"},
        "garbage-collection": {"read", "create", "list", "update", "stop"},
        "purge-audit": {"read", "create", "list", "update", "stop"},
        "jobservice-monitor": {"list", "stop"},
        "scanner": {"read", "create", "delete", "list", "update"},
        "label": {"read", "create", "delete", "update"},
        "security-hub": {"read", "list"},
        "catalog": {"read"},
        "quota": {"read", "list"},
    },
    "project": {
        "log": {"list"},
        "project": {"read", "delete", "update"},
        "metadata": {"read", "create", "delete", "list", "update"},
        "repository": {"read", "update", "delete", "list", "pull", "push"},
        "artifact": {"read", "create", "list", "delete"},
        "scan": {"create", "read", "stop"},
        "tag": {"create", "list", "delete"},
        "accessory": {"list"},
        "artifact-addition": {"read"},
        "artifact-label": {"create", "delete"},
        "scanner": {"create", "read"},
        "preheat-policy": {"read", "create", "delete", "list", "update"},
        "immutable-tag": {"create", "delete", "list", "update"},
        "notification-policy": {"read", "create", "delete", "list", "update"},
        "tag-retention": {"read", "create", "delete", "list", "update"},
        "label": {"read", "create", "delete", "list", "update"},
        "quota": {"read"},
    },
}

# The retention handler's metadata payload, verbatim.
RETENTION_METADATA = {
    "templates": [
        {
            "rule_template": "latestPushedK",
            "display_text": "the most recently pushed # artifacts",
            "action": "retain",
            "params": [{"type": "int", "unit": "COUNT", "required": True}],
        },
        {
            "rule_template": "latestPulledN",
            "display_text": "the most recently pulled # artifacts",
            "action": "retain",
            "params": [{"type": "int", "unit": "COUNT", "required": True}],
        },
        {
            "rule_template": "nDaysSinceLastPush",
            "display_text": "pushed within the last # days",
            "action": "retain",
            "params": [{"type": "int", "unit": "DAYS", "required": True}],
        },
        {
            "rule_template": "nDaysSinceLastPull",
            "display_text": "pulled within the last # days",
            "action": "retain",
            "params": [{"type": "int", "unit": "DAYS", "required": True}],
        },
        {"rule_template": "always", "display_text": "always", "action": "retain", "params": []},
    ],
    "scope_selectors": [{"display_text": "Repositories", "kind": "doublestar", "decorations": ["repoMatches", "repoExcludes"]}],
    "tag_selectors": [{"display_text": "Tags", "kind": "doublestar", "decorations": ["matches", "excludes"]}],
}
# Template -> upper bound of its one parameter (named like the template), from the rule validators.
RETENTION_PARAM_MAX = {
    "latestPushedK": 32766,
    "latestPulledN": 32766,
    "nDaysSinceLastPush": 20190904,
    "nDaysSinceLastPull": 20190904,
    "always": None,
}
TAG_DECORATIONS = {"matches", "excludes"}
REPO_DECORATIONS = {"repoMatches", "repoExcludes"}
TAG_EXTRAS = {"untagged"}

# Replication adapters, and those a proxy-cache project may use.
REGISTRY_TYPES = {
    "harbor",
    "docker-hub",
    "docker-registry",
    "huawei-SWR",
    "google-gcr",
    "aws-ecr",
    "azure-acr",
    "ali-acr",
    "jfrog-artifactory",
    "quay",
    "gitlab",
    "dtr",
    "tencent-tcr",
    "github-ghcr",
    "volcengine-cr",
}
PROXY_CACHE_TYPES = {
    "harbor",
    "docker-hub",
    "docker-registry",
    "google-gcr",
    "aws-ecr",
    "azure-acr",
    "quay",
    "github-ghcr",
    "jfrog-artifactory",
}
TRIGGER_TYPES = {"manual", "scheduled", "event_based"}
FILTER_TYPES = {"name", "tag", "label", "resource"}
RESOURCE_TYPES = {"image", "artifact"}
REPOSITORY_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
ROBOT_SECRET = re.compile(r"(?=.*[a-z])(?=.*[A-Z])(?=.*\d).{8,128}", re.S)


def bad(message, *args):
    return ApiError(400, message % args if args else message)


def check_cron(cron, what):
    """Harbor's scheduler takes six-field cron strings (seconds first)."""
    if not isinstance(cron, str) or len(cron.split()) != 6:
        raise bad("invalid cron string for %s: %r (six fields, seconds first)", what, cron)


def check_robot_permissions(level, permissions):
    if level not in ("system", "project"):
        raise bad("bad request error level input: %s", level)
    if not permissions:
        raise bad("bad request empty permission")
    if level == "project" and len(permissions) > 1:
        raise bad("bad request permission")
    for perm in permissions:
        if not perm or not perm.get("access"):
            raise bad("bad request empty access")
        kind = perm.get("kind")
        if kind not in ROBOT_ACCESS:
            raise bad("bad request permission level: %s", kind)
        if kind == "system" and perm.get("namespace") != "/":
            raise bad("unknown namespace")
        for access in perm["access"]:
            resource, action = (access or {}).get("resource"), (access or {}).get("action")
            if action not in ROBOT_ACCESS[kind].get(resource, ()):
                raise bad("bad request permission: %s:%s", resource, action)


def check_selector(selector, decorations, what):
    if selector.get("kind") != "doublestar":
        raise bad("%s kind must be doublestar, not %r", what, selector.get("kind"))
    if selector.get("decoration") not in decorations:
        raise bad("%s decoration %r is not one of %s", what, selector.get("decoration"), sorted(decorations))
    if not selector.get("pattern"):
        raise bad("%s pattern cannot be empty", what)
    if selector.get("extras"):
        try:
            extras = json.loads(selector["extras"])
        except ValueError:
            raise bad("%s extras is not JSON: %r", what, selector["extras"]) from None
        if not isinstance(extras, dict) or set(extras) - TAG_EXTRAS or not all(isinstance(v, bool) for v in extras.values()):
            raise bad("%s extras may only hold %s as booleans: %r", what, sorted(TAG_EXTRAS), selector["extras"])


def check_selectors(rule, what):
    if not rule.get("tag_selectors"):
        raise bad("%s needs tag_selectors", what)
    for selector in rule["tag_selectors"]:
        check_selector(selector, TAG_DECORATIONS, what + " tag selector")
    scopes = rule.get("scope_selectors") or {}
    if set(scopes) - {"repository"} or not scopes.get("repository"):
        raise bad("%s scope_selectors must hold repository selectors only", what)
    for selector in scopes["repository"]:
        check_selector(selector, REPO_DECORATIONS, what + " repository selector")
        if selector.get("extras"):
            raise bad("%s repository selector takes no extras", what)


def check_retention(policy):
    if policy.get("algorithm") != "or":
        raise bad("algorithm must be 'or', not %r", policy.get("algorithm"))
    trigger = policy.get("trigger") or {}
    if not trigger.get("kind"):
        raise bad("Trigger: Can not be empty")
    if trigger["kind"] == "Schedule" and "cron" not in (trigger.get("settings") or {}):
        raise bad("Trigger.Settings.cron: Can not be empty")
    rules = policy.get("rules") or []
    if len(rules) > 15:
        raise bad("only 15 rules are allowed at most")
    for index, rule in enumerate(rules):
        template = rule.get("template")
        if template not in RETENTION_PARAM_MAX:
            raise bad("rule evaluator %s is not registered", template)
        if rule.get("action") != "retain":
            raise bad("rule %d: action must be 'retain', not %r", index, rule.get("action"))
        limit = RETENTION_PARAM_MAX[template]
        if limit is not None:
            value = (rule.get("params") or {}).get(template)
            if value is None:
                raise bad("missing required parameter %s for rule %s", template, template)
            if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise bad("%s type error", template)
            if value < 0 or value > limit:
                raise bad("%s is out of range (0..%d)", template, limit)
        check_selectors(rule, "rule %d" % index)
    seen = {}
    for index, rule in enumerate(rules):
        key = json.dumps({k: v for k, v in rule.items() if k != "id"}, sort_keys=True)
        if key in seen:
            raise ApiError(409, "rule %d is conflict with rule %d" % (index, seen[key]))
        seen[key] = index


def check_filters(filters):
    for item in filters or []:
        kind, value, decoration = item.get("type"), item.get("value"), item.get("decoration") or ""
        if kind not in FILTER_TYPES:
            raise bad("invalid filter type %r", kind)
        if kind in ("name", "tag") and not isinstance(value, str):
            raise bad("the value of %s filter must be a string", kind)
        if kind == "label" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise bad("the value of label filter must be a list of strings")
        if kind == "resource" and value not in RESOURCE_TYPES:
            raise bad("invalid resource filter value %r", value)
        if decoration and (kind not in ("tag", "label") or decoration not in TAG_DECORATIONS):
            raise bad("invalid decoration %r for %s filter", decoration, kind)
