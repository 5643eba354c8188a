"""Decisions for berth's Harbor object modules: validating what the user asked
for, turning it into Harbor's request bodies and paths, and comparing it with
what Harbor holds. No I/O here; the requests are made by
berth_harbor_client and the modules in library/."""

import re
from collections import namedtuple

from ansible.module_utils.six.moves.urllib.parse import quote
from ansible_collections.berth.ops.plugins.module_utils.berth_images import parse_reference

# A project (and robot) name as Harbor accepts it: lower case, digits and
# separators not at the ends, 1-255 characters.
PROJECT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
REPOSITORY_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
UNLIMITED = -1

# What a robot may be granted, per permission kind (Harbor 2.15's RBAC table),
# written as "resource: actions" so it reads like Harbor's documentation.
_ROBOT_ACCESS_TABLE = {
    "system": """
        audit-log: list
        catalog: read
        garbage-collection: create list read stop update
        jobservice-monitor: list stop
        label: create delete read update
        preheat-instance: create delete list read update
        project: create list
        purge-audit: create list read stop update
        quota: list read
        registry: create delete list read update
        replication: create list read
        replication-adapter: list
        replication-policy: create delete list read update
        scan-all: create read stop update
        scanner: create delete list read update
        security-hub: list read
        system-volumes: read
    """,
    "project": """
        accessory: list
        artifact: create delete list read
        artifact-addition: read
        artifact-label: create delete
        immutable-tag: create delete list update
        label: create delete list read update
        log: list
        metadata: create delete list read update
        notification-policy: create delete list read update
        preheat-policy: create delete list read update
        project: delete read update
        quota: read
        repository: delete list pull push read update
        scan: create read stop
        scanner: create read
        tag: create delete list
        tag-retention: create delete list read update
    """,
}
ROBOT_ACCESS = {
    kind: {line.split(":")[0].strip(): set(line.split(":")[1].split()) for line in table.strip().splitlines()}
    for kind, table in _ROBOT_ACCESS_TABLE.items()
}

RETENTION_TEMPLATES = ("latestPushedK", "latestPulledN", "nDaysSinceLastPush", "nDaysSinceLastPull", "always")
RETENTION_PARAM_MAX = 32766  # Harbor's bound for the counting templates
RETENTION_MAX_RULES = 15
GC_SCHEDULES = {"none": "None", "hourly": "Hourly", "daily": "Daily", "weekly": "Weekly", "custom": "Custom"}
GC_PRESET_CRON = {"hourly": "0 0 * * * *", "daily": "0 0 0 * * *", "weekly": "0 0 0 * * 0"}
REGISTRY_TYPES = (
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
)
REPLICATION_TRIGGERS = ("manual", "scheduled", "event_based")


def project_path(name):
    return "/projects/%s" % quote(name, safe="")


def repository_path(name):
    """Harbor wants a repository name with slashes encoded twice in paths."""
    return quote(quote(name, safe=""), safe="")


# -- converging one object -------------------------------------------------------------------------
PAST = {"create": "created", "update": "updated", "delete": "deleted"}


class ObjectPlan(namedtuple("ObjectPlan", "action changes diff")):
    """What converging one object takes: action is "create", "update",
    "delete" or None; changes what the comparison found (update only); diff
    the object before and after, or None when nothing changes."""

    __slots__ = ()

    @property
    def changed(self):
        return self.action is not None

    @property
    def verb(self):
        """How modules word the change (created, updated, deleted); None when nothing changes."""
        return PAST.get(self.action)


def differs(current, desired):
    """The usual comparison: both sides are reduced to what berth sets, so any
    inequality is a change."""
    return current != desired


def plan_object(current, desired, compare=differs, after=None):
    """Decide how to converge one Harbor object, before any request.

    current: the object as Harbor holds it, reduced to what berth compares; None when missing.
    desired: the object as the task asks for it; None for state absent.
    compare(current, desired): what differs, falsy when nothing does.
    after(current, changes): the object after an update, for the diff; by default desired
    (a module that sets only some fields shows the rest as Harbor keeps them)."""
    if desired is None:
        if current is None:
            return ObjectPlan(None, None, None)
        return ObjectPlan("delete", None, {"before": current, "after": {}})
    if current is None:
        return ObjectPlan("create", None, {"before": {}, "after": desired})
    changes = compare(current, desired)
    if not changes:
        return ObjectPlan(None, changes, None)
    return ObjectPlan("update", changes, {"before": current, "after": after(current, changes) if after else desired})


def combined_diff(parts):
    """One diff for a module that converges several objects: (key, diff)
    pairs, each object under its key on the sides where it exists."""
    diffs = [(key, diff) for key, diff in parts if diff]
    if not diffs:
        return None
    return {side: {key: diff[side] for key, diff in diffs if diff[side]} for side in ("before", "after")}


def as_flag(value):
    """Harbor keeps project metadata as the strings "true"/"false"."""
    return "true" if value else "false"


def cron_errors(cron, what):
    if not isinstance(cron, str) or len(cron.split()) != 6:
        return ["%s: %r is not a six-field cron string (seconds first, as Harbor's scheduler wants)" % (what, cron)]
    return []


def key_paths(data, prefix=""):
    """Dotted paths of every mapping key in nested data (lists are leaves)."""
    paths = []
    for key, value in (data or {}).items():
        path = prefix + str(key)
        paths.append(path)
        if isinstance(value, dict):
            paths.extend(key_paths(value, path + "."))
    return sorted(paths)


def harbor_endpoints(hostvars, names):
    """host[:port] of each Harbor whose certificate berth issues from its CA."""
    endpoints = []
    for name in names:
        other = hostvars[name]
        if not other.get("harbor_tls", True) or other.get("harbor_tls_cert_file"):
            continue
        port = int(other.get("harbor_https_port", 443))
        endpoints.append(other.get("harbor_hostname", name) + ("" if port == 443 else ":%d" % port))
    return endpoints


# -- projects --------------------------------------------------------------------------------------
def project_errors(params):
    errors = []
    name = params.get("name") or ""
    if not PROJECT_NAME.match(name) or len(name) > 255:
        errors.append("name: %r is not a valid Harbor project name (lower-case letters, digits and . _ - between them, at most 255)" % name)
    quota = params.get("storage_quota")
    if quota is not None and quota != UNLIMITED and quota <= 0:
        errors.append("storage_quota: %r must be -1 (unlimited) or a positive number of bytes" % quota)
    return errors


def project_desired(params):
    """The project's settings in Harbor's terms, only those the user set."""
    desired = {"metadata": {}}
    for option, key in (("public", "public"), ("auto_scan", "auto_scan"), ("prevent_vulnerable", "prevent_vul")):
        if params.get(option) is not None:
            desired["metadata"][key] = as_flag(params[option])
    if params.get("severity"):
        desired["metadata"]["severity"] = params["severity"]
    if params.get("storage_quota") is not None:
        desired["storage_quota"] = params["storage_quota"]
    return desired


def project_current(project, quota):
    metadata = project.get("metadata") or {}
    current = {"metadata": {k: metadata[k] for k in ("public", "auto_scan", "prevent_vul", "severity") if k in metadata}}
    if quota is not None:
        current["storage_quota"] = quota
    return current


def project_after(current, changes):
    """The project as the diff shows it after an update: what Harbor keeps, with the changes."""
    after = dict(current, metadata=dict(current["metadata"], **changes.get("metadata", {})))
    if "storage_quota" in changes:
        after["storage_quota"] = changes["storage_quota"]
    return after


def project_changes(current, desired):
    """Metadata keys and quota that differ; missing metadata counts as false."""
    have = current.get("metadata") or {}
    metadata = {k: v for k, v in desired["metadata"].items() if have.get(k, "false" if v in ("true", "false") else "") != v}
    changes = {}
    if metadata:
        changes["metadata"] = metadata
    if "storage_quota" in desired and current.get("storage_quota") != desired["storage_quota"]:
        changes["storage_quota"] = desired["storage_quota"]
    return changes


# -- robots ----------------------------------------------------------------------------------------
def robot_errors(params):
    errors = []
    if not PROJECT_NAME.match(params.get("name") or ""):
        errors.append("name: %r is not a valid robot name (lower-case letters, digits and . _ -)" % params.get("name"))
    if params.get("state", "present") == "absent":
        return errors
    permissions = params.get("permissions") or []
    if not permissions:
        errors.append("permissions: a robot needs at least one permission")
    for index, perm in enumerate(permissions):
        where = "permissions[%d]" % index
        kind = "system" if perm.get("project") is None else "project"
        if kind == "project" and perm["project"] != "*" and not PROJECT_NAME.match(perm["project"]):
            errors.append("%s.project: %r is not a valid project name" % (where, perm["project"]))
        if not perm.get("access"):
            errors.append("%s.access: empty" % where)
        for item in perm.get("access") or []:
            resource, _unused, action = str(item).partition(":")
            allowed = ROBOT_ACCESS[kind]
            if resource not in allowed:
                errors.append("%s.access: unknown %s resource %r (known: %s)" % (where, kind, resource, ", ".join(sorted(allowed))))
            elif action not in allowed[resource]:
                errors.append(
                    "%s.access: %r cannot be granted on %s resource %r (actions: %s)"
                    % (where, action, kind, resource, ", ".join(sorted(allowed[resource])))
                )
    level = robot_level(params)
    if level == "project" and len(permissions) != 1:
        errors.append("level: a project robot has exactly one permission entry, on its project")
    if level == "project" and permissions and permissions[0].get("project") in (None, "*"):
        errors.append("level: a project robot's permission names its project")
    duration = params.get("duration")
    if duration is not None and duration != -1 and duration <= 0:
        errors.append("duration: %r must be -1 (never expires) or a positive number of days" % duration)
    secret = params.get("secret")
    if secret and not re.match(r"(?=.*[a-z])(?=.*[A-Z])(?=.*\d).{8,128}$", secret, re.S):
        errors.append("secret: must be 8-128 characters with an upper-case letter, a lower-case letter and a digit")
    return errors


def robot_level(params):
    if params.get("level"):
        return params["level"]
    permissions = params.get("permissions") or []
    return "project" if len(permissions) == 1 and permissions[0].get("project") not in (None, "*") else "system"


def robot_permissions(permissions):
    """Harbor's permission list, in a stable order for comparing."""
    out = []
    for perm in permissions:
        kind = "system" if perm.get("project") is None else "project"
        access = sorted({tuple(str(item).split(":", 1)) for item in perm["access"]})
        out.append(
            {
                "kind": kind,
                "namespace": "/" if kind == "system" else perm["project"],
                "access": [{"resource": r, "action": a} for r, a in access],
            }
        )
    return sorted(out, key=lambda p: (p["kind"], p["namespace"]))


def robot_full_name(params):
    """The name Harbor shows: robot$project+name or robot$name."""
    if robot_level(params) == "project":
        return "robot$%s+%s" % (params["permissions"][0]["project"], params["name"])
    return "robot$%s" % params["name"]


def robot_desired(params, current=None):
    desired = {
        "name": params["name"],
        "description": params.get("description") or "",
        "level": robot_level(params),
        "disable": bool(params.get("disable")),
        "duration": params["duration"] if params.get("duration") is not None else (current or {}).get("duration", -1),
        "permissions": robot_permissions(params["permissions"]),
    }
    return desired


def robot_comparable(robot):
    """A robot as Harbor lists it, reduced to what robot_desired says."""
    return {
        "name": robot["name"].rsplit("+", 1)[-1].replace("robot$", "", 1),
        "description": robot.get("description") or "",
        "level": robot["level"],
        "disable": bool(robot.get("disable")),
        "duration": robot.get("duration", -1),
        "permissions": sorted(
            (
                {
                    "kind": p["kind"],
                    "namespace": p["namespace"],
                    "access": sorted(
                        ({"resource": a["resource"], "action": a["action"]} for a in p.get("access") or []),
                        key=lambda a: (a["resource"], a["action"]),
                    ),
                }
                for p in robot.get("permissions") or []
            ),
            key=lambda p: (p["kind"], p["namespace"]),
        ),
    }


# -- tag selectors (retention and immutability) -----------------------------------------------------
def selector_errors(rule, where, allow_untagged):
    errors = []
    if "tag_matches" in rule and "tag_excludes" in rule:
        errors.append("%s: give tag_matches or tag_excludes, not both" % where)
    if "repo_matches" in rule and "repo_excludes" in rule:
        errors.append("%s: give repo_matches or repo_excludes, not both" % where)
    for key in ("tag_matches", "tag_excludes", "repo_matches", "repo_excludes"):
        if key in rule and not (isinstance(rule[key], str) and rule[key]):
            errors.append("%s.%s: a non-empty doublestar pattern" % (where, key))
    if "untagged" in rule and not allow_untagged:
        errors.append("%s.untagged: only retention rules select untagged artifacts" % where)
    return errors


def selectors(rule, untagged=None):
    """Harbor's tag_selectors and scope_selectors for a rule written berth's way."""
    tag_decoration, tag_pattern = (
        ("excludes", rule["tag_excludes"]) if "tag_excludes" in rule else ("matches", rule.get("tag_matches", "**"))
    )
    repo_decoration, repo_pattern = (
        ("repoExcludes", rule["repo_excludes"]) if "repo_excludes" in rule else ("repoMatches", rule.get("repo_matches", "**"))
    )
    tag = {"kind": "doublestar", "decoration": tag_decoration, "pattern": tag_pattern}
    if untagged is not None:
        tag["extras"] = '{"untagged":%s}' % ("true" if untagged else "false")
    return {
        "tag_selectors": [tag],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": repo_decoration, "pattern": repo_pattern}]},
    }


def _extras(selector):
    text = (selector.get("extras") or "").replace(" ", "")
    return text or None


def selector_key(rule):
    """What identifies a rule's selection, as comparable data."""
    tags = [(s.get("decoration"), s.get("pattern"), _extras(s)) for s in rule.get("tag_selectors") or []]
    repos = [(s.get("decoration"), s.get("pattern")) for s in (rule.get("scope_selectors") or {}).get("repository") or []]
    return (tuple(tags), tuple(repos))


# -- retention ------------------------------------------------------------------------------------
RULE_KEYS = {"template", "count", "days", "tag_matches", "tag_excludes", "repo_matches", "repo_excludes", "untagged", "disabled"}


def retention_errors(rules, schedule):
    errors = []
    if len(rules) > RETENTION_MAX_RULES:
        errors.append("rules: Harbor allows at most %d rules per project" % RETENTION_MAX_RULES)
    for index, rule in enumerate(rules):
        where = "rules[%d]" % index
        unknown = sorted(set(rule) - RULE_KEYS)
        if unknown:
            errors.append("%s: unknown keys %s (known: %s)" % (where, ", ".join(unknown), ", ".join(sorted(RULE_KEYS))))
        template = rule.get("template")
        if template not in RETENTION_TEMPLATES:
            errors.append("%s.template: unknown retention template %r (known: %s)" % (where, template, ", ".join(RETENTION_TEMPLATES)))
            continue
        wants = {"latestPushedK": "count", "latestPulledN": "count", "nDaysSinceLastPush": "days", "nDaysSinceLastPull": "days"}.get(
            template
        )
        for key in ("count", "days"):
            if key in rule and key != wants:
                errors.append("%s.%s: template %s takes %s" % (where, key, template, wants or "no parameter"))
        if wants:
            value = rule.get(wants)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= RETENTION_PARAM_MAX:
                errors.append(
                    "%s.%s: template %s needs a whole number 0..%d, got %r" % (where, wants, template, RETENTION_PARAM_MAX, value)
                )
        errors.extend(selector_errors(rule, where, allow_untagged=True))
    seen = {}
    for index, rule in enumerate(rules):
        if rule.get("template") in RETENTION_TEMPLATES:
            key = repr(sorted(retention_rule(rule).items()))
            if key in seen:
                errors.append("rules[%d]: the same rule as rules[%d]" % (index, seen[key]))
            seen.setdefault(key, index)
    if schedule:
        errors.extend(cron_errors(schedule, "schedule"))
    return errors


def retention_rule(rule):
    template = rule["template"]
    value = rule.get("count", rule.get("days"))
    body = {
        "disabled": bool(rule.get("disabled", False)),
        "action": "retain",
        "template": template,
        "params": {} if value is None else {template: value},
    }
    body.update(selectors(rule, untagged=rule.get("untagged", True)))
    return body


def retention_policy(project_id, rules, schedule):
    trigger = {"kind": "Schedule", "settings": {"cron": schedule or ""}, "references": {}}
    return {
        "algorithm": "or",
        "rules": [dict(retention_rule(rule), priority=index + 1) for index, rule in enumerate(rules)],
        "trigger": trigger,
        "scope": {"level": "project", "ref": project_id},
    }


def retention_comparable(policy):
    """A policy reduced to what berth sets: rules in order, and the schedule."""
    rules = []
    for rule in policy.get("rules") or []:
        params = {k: int(v) if isinstance(v, str) and v.lstrip("-").isdigit() else v for k, v in (rule.get("params") or {}).items()}
        tags, repos = selector_key(rule)
        rules.append(
            {
                "template": rule.get("template"),
                "params": params,
                "disabled": bool(rule.get("disabled")),
                "tags": [list(t) for t in tags],
                "repositories": [list(r) for r in repos],
            }
        )
    return {"rules": rules, "schedule": ((policy.get("trigger") or {}).get("settings") or {}).get("cron") or ""}


# -- immutability -----------------------------------------------------------------------------------
def immutable_errors(params):
    return selector_errors(params, "rule", allow_untagged=False)


def immutable_rule(params):
    return dict(selectors(params), disabled=bool(params.get("disabled")), action="immutable", template="immutable_template")


def find_immutable(rules, params):
    key = selector_key(immutable_rule(params))
    return next((rule for rule in rules if selector_key(rule) == key), None)


# -- garbage collection -----------------------------------------------------------------------------
def gc_errors(params):
    errors = []
    schedule = params.get("schedule")
    if schedule == "custom":
        errors.extend(cron_errors(params.get("cron"), "cron"))
    elif params.get("cron"):
        errors.append("cron: only with schedule: custom (the others have Harbor's fixed times)")
    if params.get("workers") is not None and not 1 <= params["workers"] <= 5:
        errors.append("workers: Harbor runs 1 to 5 GC workers")
    return errors


def gc_desired(params):
    if params.get("state") == "absent" or params.get("schedule") == "none":
        return {"type": "None"}
    schedule = params["schedule"]
    desired = {
        "type": GC_SCHEDULES[schedule],
        "cron": params["cron"] if schedule == "custom" else GC_PRESET_CRON[schedule],
        "delete_untagged": bool(params.get("delete_untagged")),
    }
    if params.get("workers") is not None:
        desired["workers"] = params["workers"]
    return desired


def gc_comparable(schedule, parameters):
    if not schedule or schedule.get("type") in (None, "", "None"):
        return {"type": "None"}
    current = {"type": schedule["type"], "cron": schedule.get("cron") or "", "delete_untagged": bool(parameters.get("delete_untagged"))}
    if "workers" in parameters:
        current["workers"] = parameters["workers"]
    return current


def gc_request(desired):
    schedule = {"type": desired["type"]}
    if desired["type"] != "None":
        schedule["cron"] = desired["cron"]
    parameters = {"delete_untagged": desired.get("delete_untagged", False)}
    if "workers" in desired:
        parameters["workers"] = desired["workers"]
    return {"schedule": schedule, "parameters": parameters}


# -- replication --------------------------------------------------------------------------------------
def replication_errors(params):
    errors = []
    registry = params.get("registry") or {}
    if params.get("state", "present") == "present":
        if not registry.get("name"):
            errors.append("registry.name: required")
        if registry.get("type", "harbor") not in REGISTRY_TYPES:
            errors.append("registry.type: unknown adapter %r (known: %s)" % (registry.get("type"), ", ".join(REGISTRY_TYPES)))
        url = registry.get("url") or ""
        if not re.match(r"^https?://[^/\s]+", url):
            errors.append("registry.url: %r is not an http(s) URL" % url)
    trigger = params.get("trigger") or "manual"
    if trigger not in REPLICATION_TRIGGERS:
        errors.append("trigger: %r is not one of %s" % (trigger, ", ".join(REPLICATION_TRIGGERS)))
    if trigger == "scheduled":
        errors.extend(cron_errors(params.get("cron"), "cron"))
    elif params.get("cron"):
        errors.append("cron: only with trigger: scheduled")
    if trigger == "event_based" and params.get("direction") == "pull":
        errors.append("trigger: event_based replication pushes; Harbor has no events for a remote registry")
    if params.get("dest_namespace") and not REPOSITORY_NAME.match(params["dest_namespace"]):
        errors.append("dest_namespace: %r is not a valid namespace" % params["dest_namespace"])
    for key in ("name_filter", "tag_filter"):
        if params.get(key) is not None and not params[key]:
            errors.append("%s: an empty pattern; leave it out to select everything" % key)
    return errors


def registry_desired(registry):
    return {
        "name": registry["name"],
        "type": registry.get("type", "harbor"),
        "url": registry["url"].rstrip("/"),
        "insecure": bool(registry.get("insecure", False)),
        "description": registry.get("description") or "",
        "access_key": registry.get("access_key") or "",
    }


def registry_comparable(registry):
    credential = registry.get("credential") or {}
    return {
        "name": registry["name"],
        "type": registry["type"],
        "url": registry["url"].rstrip("/"),
        "insecure": bool(registry.get("insecure")),
        "description": registry.get("description") or "",
        "access_key": credential.get("access_key") or "",
    }


def registry_request(registry):
    body = {
        "name": registry["name"],
        "type": registry.get("type", "harbor"),
        "url": registry["url"].rstrip("/"),
        "insecure": bool(registry.get("insecure", False)),
        "description": registry.get("description") or "",
    }
    if registry.get("access_key"):
        body["credential"] = {"type": "basic", "access_key": registry["access_key"], "access_secret": registry.get("access_secret") or ""}
    return body


def replication_filters(params):
    filters = []
    if params.get("name_filter"):
        filters.append({"type": "name", "value": params["name_filter"]})
    if params.get("tag_filter"):
        filters.append({"type": "tag", "value": params["tag_filter"], "decoration": "matches"})
    if params.get("resource_filter"):
        filters.append({"type": "resource", "value": params["resource_filter"]})
    return filters


def replication_desired(params):
    trigger = {"type": params.get("trigger") or "manual"}
    if trigger["type"] == "scheduled":
        trigger["trigger_settings"] = {"cron": params["cron"]}
    return {
        "name": params["name"],
        "description": params.get("description") or "",
        "direction": params.get("direction") or "push",
        "registry": params["registry"]["name"],
        "dest_namespace": params.get("dest_namespace") or "",
        "dest_namespace_replace_count": params["dest_namespace_replace_count"]
        if params.get("dest_namespace_replace_count") is not None
        else -1,
        "trigger": trigger,
        "filters": replication_filters(params),
        "deletion": bool(params.get("deletion")),
        "override": bool(params.get("override", True)),
        "enabled": bool(params.get("enabled", True)),
    }


def replication_comparable(policy):
    source, destination = policy.get("src_registry") or {}, policy.get("dest_registry") or {}
    pushes = bool(destination.get("id"))
    trigger = {"type": (policy.get("trigger") or {}).get("type") or "manual"}
    if trigger["type"] == "scheduled":
        trigger["trigger_settings"] = {"cron": ((policy.get("trigger") or {}).get("trigger_settings") or {}).get("cron", "")}
    filters = []
    for item in policy.get("filters") or []:
        entry = {"type": item["type"], "value": item["value"]}
        if item.get("decoration"):
            entry["decoration"] = item["decoration"]
        filters.append(entry)
    return {
        "name": policy["name"],
        "description": policy.get("description") or "",
        "direction": "push" if pushes else "pull",
        "registry": (destination if pushes else source).get("name"),
        "dest_namespace": policy.get("dest_namespace") or "",
        "dest_namespace_replace_count": policy.get("dest_namespace_replace_count", -1),
        "trigger": trigger,
        "filters": filters,
        "deletion": bool(policy.get("deletion", policy.get("replicate_deletion"))),
        "override": bool(policy.get("override")),
        "enabled": bool(policy.get("enabled")),
    }


def replication_request(desired, registry_id):
    body = {k: v for k, v in desired.items() if k not in ("direction", "registry")}
    side = "dest_registry" if desired["direction"] == "push" else "src_registry"
    body[side] = {"id": registry_id}
    return body


# -- artifacts ------------------------------------------------------------------------------------------
def artifact_reference(text):
    """(project, repository, tag, digest) of "project/repo:tag" or "project/repo@sha256:...",
    parsed by berth's one image-reference parser; a registry prefix is refused."""
    reference = parse_reference(text, require_tag=True)
    if reference.registry:
        raise ValueError("%r: name the artifact inside Harbor (project/repository), without the registry" % text)
    project, _unused, repository = reference.repository.partition("/")
    if not repository or not PROJECT_NAME.match(project):
        raise ValueError("%r is not project/repository[:tag|@digest]" % text)
    if reference.tag and reference.digest:
        raise ValueError("%r: give a tag or a digest, not both" % text)
    return project, repository, reference.tag, reference.digest


# -- a site's objects, as declared in the inventory -----------------------------------------------------
def site_errors(projects, robots, replications, gc):
    """Every problem in a site's declared Harbor objects, found before any request."""
    errors = []
    for index, project in enumerate(projects or []):
        where = "harbor_projects[%d]" % index
        errors += ["%s: %s" % (where, e) for e in project_errors({"name": project.get("name") or ""})]
        retention = project.get("retention") or {}
        errors += ["%s.retention: %s" % (where, e) for e in retention_errors(retention.get("rules") or [], retention.get("schedule") or "")]
        for number, rule in enumerate(project.get("immutable_rules") or []):
            errors += ["%s.immutable_rules[%d]: %s" % (where, number, e) for e in immutable_errors(rule)]
    for index, robot in enumerate(robots or []):
        errors += ["harbor_robots[%d]: %s" % (index, e) for e in robot_errors(robot)]
    for index, replication in enumerate(replications or []):
        if not replication.get("name"):
            errors.append("harbor_replications[%d]: a name is required" % index)
        errors += ["harbor_replications[%d]: %s" % (index, e) for e in replication_errors(replication)]
    if gc:
        errors += ["harbor_gc: %s" % e for e in gc_errors(dict({"schedule": "weekly"}, **gc))]
    return errors
