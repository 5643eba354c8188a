"""Handlers of the Harbor API stand-in, one per supported operationId: health and
system info, projects, quotas, repositories and artifacts here; robots, tag
retention, immutable rules, GC, registries and replication in sibling modules,
which this module imports so that HANDLERS holds every operation.

A test double for berth's tests, not Harbor: handlers mimic what Harbor v2.15's
handlers do (statuses, messages, Location and X-Total-Count headers, RBAC) on
the in-memory state. The server validates their input and output against the
swagger; a handler only adds the semantic checks Harbor makes on top.
"""

import re
import urllib.parse

from . import (
    robots,  # noqa: F401  (registers the robot operations)
    vocab,
)
from .base import (
    HANDLERS,
    NEVER,
    Call,
    Principal,
    Response,
    allowed,
    as_text,
    created,
    find_project,
    op,
    require_project,
    require_system,
    select,
    visible,
)
from .policies import store_retention
from .registries import registry_out
from .state import UNLIMITED, now, valid_project_name
from .swagger import ApiError

__all__ = ["HANDLERS", "Call", "Principal", "Response"]

HARBOR_VERSION = "v2.15.2"
IMAGE_ICON = "sha256:0048162a053eef4d4ce3fe7518615bef084403614f8bca43b40ae2e762e11e06"
COMPONENTS = ("core", "database", "jobservice", "portal", "redis", "registry", "registryctl")
PROXY_ONLY_METADATA = ("proxy_speed_kb", "max_upstream_conn")


# -- health and system ------------------------------------------------------------------
@op("getHealth")
def get_health(call):
    return Response(200, {"status": "healthy", "components": [{"name": c, "status": "healthy"} for c in COMPONENTS]})


@op("getSystemInfo")
def get_system_info(call):
    return Response(
        200,
        {
            "auth_mode": "db_auth",
            "primary_auth_mode": False,
            "self_registration": False,
            "harbor_version": HARBOR_VERSION,
            "current_time": now(),
        },
    )


@op("getPing")
def get_ping(call):
    return Response(200, "Pong")


# -- projects ---------------------------------------------------------------------------------
def project_out(call, project):
    st, pid = call.state, project["project_id"]
    allowlist = project["cve_allowlist"]
    out = {
        "project_id": pid,
        "name": project["name"],
        "owner_id": 1,
        "owner_name": "admin",
        "creation_time": project["creation_time"],
        "update_time": project["update_time"],
        "repo_count": len(st.repositories_of(pid)),
        "metadata": dict(project["metadata"]),
        "cve_allowlist": dict({"id": pid, "project_id": pid}, **allowlist),
    }
    if project["registry_id"]:
        out["registry_id"] = project["registry_id"]
    if call.user.is_admin:
        out.update(current_user_role_id=1, current_user_role_ids=[1])
    return out


@op("listProjects")
def list_projects(call):
    keywords = {}
    if call.params.get("name"):
        keywords["name"] = ("fuzzy", call.params["name"])
    if call.params.get("owner"):
        keywords["owner"] = ("exact", call.params["owner"])
    if "public" in call.params:
        keywords["public"] = ("exact", as_text(call.params["public"]))
    rows = [
        ({"public": p["metadata"]["public"], "owner": "admin"}, project_out(call, p))
        for p in call.state.projects.values()
        if visible(call.user, p)
    ]
    return select(call, rows, keywords)


@op("headProject")
def head_project(call):
    find_project(call, None, "read", param="project_name")
    return Response(200)


@op("getProject")
def get_project(call):
    return Response(200, project_out(call, find_project(call, None, "read")))


def _check_public(metadata):
    if metadata.get("public") not in (None, "true", "false"):
        raise ApiError(400, "metadata.public should only be 'true' or 'false', but got: '%s'" % metadata["public"])


@op("createProject")
def create_project(call):
    st, req, user = call.state, call.body, call.user
    if not user.is_admin and (not user.robot or user.robot["level"] != "system" or not allowed(user, "system", "project", "create")):
        raise ApiError(403, "Only system level robot can create project")
    name = req.get("project_name")
    if not valid_project_name(name):
        raise ApiError(400, "project name %r is not in lower case or contains illegal characters" % name)
    metadata = {k: v for k, v in (req.get("metadata") or {}).items() if v is not None}
    if req.get("public") is not None and not metadata.get("public"):
        metadata["public"] = as_text(req["public"])
    metadata["public"] = metadata.get("public") or "false"
    _check_public(metadata)
    if metadata.pop("retention_id", ""):
        raise ApiError(
            400,
            "the retention_id in the request's payload when creating a project should be omitted, alternatively passing an empty string",
        )
    registry_id = req.get("registry_id")
    if registry_id is None:
        for key in PROXY_ONLY_METADATA:
            metadata.pop(key, None)
    else:
        if not user.is_admin:
            raise ApiError(403, "Only system admin can create proxy cache project")
        registry = st.registries.get(registry_id)
        if registry_id <= 0 or registry is None:
            raise ApiError(400, "%d is an invalid registry_id: no such registry endpoint" % registry_id)
        if registry["type"] not in vocab.PROXY_CACHE_TYPES:
            raise ApiError(400, "unsupported registry type %s" % registry["type"])
        metadata.pop("enable_content_trust", None)
        for key in PROXY_ONLY_METADATA:
            if key in metadata and not re.fullmatch(r"-?\d+", metadata[key]):
                raise ApiError(400, "metadata.%s should be an int, but got: '%s'" % (key, metadata[key]))
    storage = req.get("storage_limit")
    storage = UNLIMITED if storage in (None, 0) or not user.is_admin else storage
    if storage != UNLIMITED and storage <= 0:
        raise ApiError(400, "storage_limit must be -1 (unlimited) or positive, got %d" % storage)
    if st.project_by_name(name):
        raise ApiError(409, "The project named %s already exists" % name)
    project = st.add_project(name, public=metadata["public"] == "true", registry_id=registry_id, storage_limit=storage, metadata=metadata)
    if req.get("cve_allowlist"):
        project["cve_allowlist"]["items"] = req["cve_allowlist"].get("items") or []
    if registry_id is not None:
        # Harbor gives every proxy-cache project a 7-day "pulled within" retention policy.
        selectors = {
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
        }
        rule = dict(id=1, priority=1, action="retain", template="nDaysSinceLastPull", params={"nDaysSinceLastPull": 7}, **selectors)
        store_retention(
            st,
            {
                "algorithm": "or",
                "rules": [rule],
                "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 0 * * *"}},
                "scope": {"level": "project", "ref": project["project_id"]},
            },
        )
    return created(call, name if call.params.get("X-Resource-Name-In-Location") else project["project_id"])


@op("updateProject")
def update_project(call):
    project, req = find_project(call, "project", "update"), call.body
    metadata = {k: v for k, v in (req.get("metadata") or {}).items() if v not in (None, "")}
    _check_public(metadata)
    for key in ("enable_content_trust",) if project["registry_id"] else PROXY_ONLY_METADATA:
        metadata.pop(key, None)
    if "retention_id" in metadata and metadata["retention_id"] != project["metadata"].get("retention_id"):
        raise ApiError(
            400,
            "the retention_id in the request's payload when updating a project should be omitted, alternatively passing the one that has already been associated to this project",
        )
    allowlist = req.get("cve_allowlist")
    if allowlist:
        if allowlist.get("project_id") not in (None, 0, project["project_id"]):
            raise ApiError(400, "project_id in cve_allowlist must be %d but it's %d" % (project["project_id"], allowlist["project_id"]))
        project["cve_allowlist"].update(items=allowlist.get("items") or [], update_time=now())
        if allowlist.get("expires_at") is not None:
            project["cve_allowlist"]["expires_at"] = allowlist["expires_at"]
    project["metadata"].update(metadata)
    project["update_time"] = now()
    return Response(200)


@op("deleteProject")
def delete_project(call):
    project = find_project(call, "project", "delete")
    if call.state.repositories_of(project["project_id"]):
        raise ApiError(412, "the project contains repositories, can not be deleted")
    call.state.delete_project(project["project_id"])
    return Response(200)


@op("getProjectSummary")
def get_project_summary(call):
    st, project = call.state, find_project(call, None, "read")
    pid, quota = project["project_id"], call.state.quota_of(project["project_id"])
    out = {
        "repo_count": len(st.repositories_of(pid)),
        "project_admin_count": 1,
        "quota": {"hard": {"storage": quota["storage"]}, "used": {"storage": st.used_storage(pid)}},
    }
    if project["registry_id"]:
        out["registry"] = registry_out(st.registries[project["registry_id"]])
    return Response(200, out)


# -- quotas --------------------------------------------------------------------------------------
def quota_out(st, quota):
    project = st.projects[quota["project_id"]]
    return {
        "id": quota["id"],
        "ref": {"id": project["project_id"], "name": project["name"], "owner_name": "admin"},
        "hard": {"storage": quota["storage"]},
        "used": {"storage": st.used_storage(project["project_id"])},
        "creation_time": quota["creation_time"],
        "update_time": quota["update_time"],
    }


@op("listQuotas")
def list_quotas(call):
    require_system(call, "quota", "list")
    quotas = list(call.state.quotas.values())
    if call.params.get("reference") is not None:
        quotas = [q for q in quotas if call.params["reference"] == "project"]
    if call.params.get("reference_id") is not None:
        quotas = [q for q in quotas if str(q["project_id"]) == call.params["reference_id"]]
    return select(call, [({}, quota_out(call.state, q)) for q in quotas])


def find_quota(call):
    quota = call.state.quotas.get(call.params["id"])
    if quota is None:
        raise ApiError(404, "quota %d not found" % call.params["id"])
    return quota


@op("getQuota")
def get_quota(call):
    require_system(call, "quota", "read")
    return Response(200, quota_out(call.state, find_quota(call)))


@op("updateQuota")
def update_quota(call):
    require_system(call, "quota", "update")
    quota, hard = find_quota(call), (call.body or {}).get("hard") or {}
    if not hard:
        raise ApiError(400, "hard in body is required")
    for resource, value in hard.items():
        if resource != "storage":
            raise ApiError(400, "resource %s not support" % resource)
        if value != UNLIMITED and value <= 0:
            raise ApiError(400, "invalid hard limit %d for storage: -1 (unlimited) or positive" % value)
    quota.update(storage=hard["storage"], update_time=now())
    return Response(200)


# -- repositories and artifacts ---------------------------------------------------------------
def repo_out(st, repo):
    return {
        "id": repo["id"],
        "project_id": repo["project_id"],
        "name": repo["name"],
        "artifact_count": len(st.artifacts_of(repo["id"])),
        "pull_count": repo["pull_count"],
        "creation_time": repo["creation_time"],
        "update_time": repo["update_time"],
    }


def find_repository(call, resource, action, missing_ok=False):
    project = find_project(call, resource, action, param="project_name")
    full_name = "%s/%s" % (project["name"], call.params["repository_name"])
    repo = call.state.repository(full_name)
    if repo is None and not missing_ok:
        raise ApiError(404, "repository %s not found" % full_name)
    return project, repo, full_name


@op("listRepositories")
def list_repositories(call):
    project = find_project(call, "repository", "list", param="project_name")
    return select(call, [({}, repo_out(call.state, r)) for r in call.state.repositories_of(project["project_id"])])


@op("getRepository")
def get_repository(call):
    return Response(200, repo_out(call.state, find_repository(call, "repository", "read")[1]))


@op("deleteRepository")
def delete_repository(call):
    call.state.delete_repository(find_repository(call, "repository", "delete")[1]["id"])
    return Response(200)


def artifact_out(repo, artifact, with_tag=True):
    project, _, name = repo["name"].partition("/")
    base = "/api/v2.0/projects/%s/repositories/%s/artifacts/%s" % (
        project,
        urllib.parse.quote(urllib.parse.quote(name, safe=""), safe=""),
        artifact["digest"],
    )
    out = {
        "id": artifact["id"],
        "type": "IMAGE",
        "media_type": "application/vnd.oci.image.config.v1+json",
        "manifest_media_type": "application/vnd.oci.image.manifest.v1+json",
        "project_id": artifact["project_id"],
        "repository_id": artifact["repository_id"],
        "repository_name": repo["name"],
        "digest": artifact["digest"],
        "size": artifact["size"],
        "icon": IMAGE_ICON,
        "push_time": artifact["push_time"],
        "pull_time": artifact["pull_time"] or NEVER,
        "extra_attrs": {"architecture": "amd64", "os": "linux", "author": "", "config": {}, "created": artifact["created"]},
        "addition_links": {"build_history": {"absolute": False, "href": base + "/additions/build_history"}},
    }
    if with_tag and artifact["tags"]:
        out["tags"] = [
            {
                "id": t["id"],
                "repository_id": repo["id"],
                "artifact_id": artifact["id"],
                "name": t["name"],
                "push_time": t["push_time"],
                "pull_time": t["pull_time"] or NEVER,
                "immutable": False,
            }
            for t in artifact["tags"]
        ]
    return out


def find_artifact(call, repo, full_name, reference):
    artifacts = call.state.artifacts_of(repo["id"]) if repo else []
    key = "digest" if reference.startswith("sha256:") else "tag"
    found = next((a for a in artifacts if a["digest"] == reference or (key == "tag" and reference in [t["name"] for t in a["tags"]])), None)
    if found is None:
        raise ApiError(404, "artifact %s%s%s not found" % (full_name, "@" if key == "digest" else ":", reference))
    return found


@op("listArtifacts")
def list_artifacts(call):
    # Harbor lists by repository name without checking it exists: an unknown one is an empty list.
    _, repo, _ = find_repository(call, "artifact", "list", missing_ok=True)
    artifacts = call.state.artifacts_of(repo["id"]) if repo else []
    rows = [
        ({"tags": " ".join(t["name"] for t in a["tags"]) or "nil"}, artifact_out(repo, a, call.params.get("with_tag", True)))
        for a in artifacts
    ]
    rows.reverse()  # newest first, Harbor's default order
    return select(call, rows)


@op("getArtifact")
def get_artifact(call):
    _, repo, full_name = find_repository(call, "artifact", "read", missing_ok=True)
    artifact = find_artifact(call, repo, full_name, call.params["reference"])
    return Response(200, artifact_out(repo, artifact, call.params.get("with_tag", True)))


@op("deleteArtifact")
def delete_artifact(call):
    _, repo, full_name = find_repository(call, "artifact", "delete", missing_ok=True)
    # By tag or digest, Harbor deletes the whole artifact with all its tags.
    del call.state.artifacts[find_artifact(call, repo, full_name, call.params["reference"])["id"]]
    repo["update_time"] = now()
    return Response(200)


@op("CopyArtifact")
def copy_artifact(call):
    st = call.state
    project = find_project(call, "artifact", "create", param="project_name")
    if project["registry_id"]:
        raise ApiError(405, "the operation isn't supported for a proxy cache project")
    source = re.fullmatch(
        r"([a-z0-9]+(?:[._-][a-z0-9]+)*)/([a-z0-9]+(?:[._/-][a-z0-9]+)*)(?::([\w][\w.-]{0,127})|@(sha256:[0-9a-f]{64}))",
        call.params["from"],
    )
    if not source:
        raise ApiError(400, "invalid input: %s" % call.params["from"])
    src_project_name, src_repo_name, tag, digest = source.groups()
    src_project = st.project_by_name(src_project_name)
    require_project(call, src_project, "artifact", "read")
    src_repo = st.repository("%s/%s" % (src_project_name, src_repo_name))
    artifact = find_artifact(call, src_repo, "%s/%s" % (src_project_name, src_repo_name), tag or digest)
    repo = st.ensure_repository(project, call.params["repository_name"])
    duplicate = st.add_artifact(
        project["name"], call.params["repository_name"], artifact["digest"], size=artifact["size"], created=artifact["created"]
    )
    if tag:
        st.tag_artifact(duplicate, tag)
    repo["update_time"] = now()
    return created(call, tag or digest)
