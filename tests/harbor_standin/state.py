"""In-memory state of the Harbor API stand-in, a test double for berth's tests
(not Harbor). One lock guards everything; ids count up from 1 per kind; times are
ISO-8601 UTC strings the way Harbor writes them ("2026-11-23T10:00:00.000Z").

Artifacts cannot be created through Harbor's REST API (they arrive by registry
pushes), so tests seed them with add_artifact().
"""

import re
import threading
from datetime import UTC, datetime

PROJECT_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
UNLIMITED = -1


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def now():
    return iso(datetime.now(UTC))


def valid_time(value):
    """Normalise a caller's ISO-8601 time to Harbor's form; raises ValueError."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("time %r has no timezone; use UTC like 2026-11-23T10:00:00.000Z" % value)
    return iso(moment.astimezone(UTC))


def valid_project_name(name):
    return isinstance(name, str) and 0 < len(name) <= 255 and bool(PROJECT_NAME.fullmatch(name))


class State:
    def __init__(self):
        self.lock = threading.RLock()
        self._counters = {}
        self.projects = {}
        self.quotas = {}
        self.repositories = {}
        self.artifacts = {}
        self.robots = {}
        self.registries = {}
        self.replication_policies = {}
        self.retentions = {}
        self.immutable_rules = {}
        self.gc_runs = []  # triggered GC executions, oldest first
        self.gc_schedule = None

    def next_id(self, kind):
        with self.lock:
            self._counters[kind] = self._counters.get(kind, 0) + 1
            return self._counters[kind]

    # -- lookups -----------------------------------------------------------------------
    def project_by_name(self, name):
        return next((p for p in self.projects.values() if p["name"] == name), None)

    def repositories_of(self, project_id):
        return [r for r in self.repositories.values() if r["project_id"] == project_id]

    def repository(self, full_name):
        return next((r for r in self.repositories.values() if r["name"] == full_name), None)

    def artifacts_of(self, repository_id):
        return [a for a in self.artifacts.values() if a["repository_id"] == repository_id]

    def quota_of(self, project_id):
        return next((q for q in self.quotas.values() if q["project_id"] == project_id), None)

    def used_storage(self, project_id):
        return sum(a["size"] for a in self.artifacts.values() if a["project_id"] == project_id)

    def robot_by_full_name(self, full_name):
        return next((r for r in self.robots.values() if "robot$" + r["name"] == full_name), None)

    # -- changes -----------------------------------------------------------------------
    def add_project(self, name, public=False, registry_id=None, storage_limit=UNLIMITED, metadata=None):
        if not valid_project_name(name):
            raise ValueError("invalid project name %r" % name)
        with self.lock:
            if self.project_by_name(name):
                raise ValueError("project %r exists" % name)
            stamp = now()
            project = {
                "project_id": self.next_id("project"),
                "name": name,
                "registry_id": registry_id,
                "creation_time": stamp,
                "update_time": stamp,
                "metadata": dict(metadata or {}, public="true" if public else "false"),
                "cve_allowlist": {"items": [], "creation_time": stamp, "update_time": stamp},
            }
            self.projects[project["project_id"]] = project
            quota_id = self.next_id("quota")
            self.quotas[quota_id] = {
                "id": quota_id,
                "project_id": project["project_id"],
                "storage": storage_limit,
                "creation_time": stamp,
                "update_time": stamp,
            }
            return project

    def delete_project(self, project_id):
        with self.lock:
            self.projects.pop(project_id, None)
            for table in (self.quotas, self.immutable_rules):
                for key in [k for k, v in table.items() if v["project_id"] == project_id]:
                    del table[key]
            for key in [k for k, r in self.robots.items() if r["project_id"] == project_id]:
                del self.robots[key]
            for key in [k for k, p in self.retentions.items() if p["scope"].get("ref") == project_id]:
                del self.retentions[key]

    def ensure_repository(self, project, name):
        with self.lock:
            full_name = "%s/%s" % (project["name"], name)
            found = self.repository(full_name)
            if found:
                return found
            stamp = now()
            repo = {
                "id": self.next_id("repository"),
                "project_id": project["project_id"],
                "name": full_name,
                "pull_count": 0,
                "creation_time": stamp,
                "update_time": stamp,
            }
            self.repositories[repo["id"]] = repo
            return repo

    def add_artifact(self, project, repository, digest, tags=(), push_time=None, size=0, created=None, pull_time=None):
        """Seed an artifact as if pushed; a tag already in the repository moves to it, as on a push."""
        if not DIGEST.fullmatch(digest or ""):
            raise ValueError("digest %r is not sha256:<64 hex>" % digest)
        push_time = valid_time(push_time) if push_time else now()
        with self.lock:
            owner = self.project_by_name(project)
            if owner is None:
                raise ValueError("project %r does not exist; add_project() it first" % project)
            repo = self.ensure_repository(owner, repository)
            artifact = next((a for a in self.artifacts_of(repo["id"]) if a["digest"] == digest), None)
            if artifact is None:
                artifact = {
                    "id": self.next_id("artifact"),
                    "project_id": owner["project_id"],
                    "repository_id": repo["id"],
                    "digest": digest,
                    "size": int(size),
                    "push_time": push_time,
                    "pull_time": valid_time(pull_time) if pull_time else None,
                    "created": valid_time(created) if created else push_time,
                    "tags": [],
                }
                self.artifacts[artifact["id"]] = artifact
            for tag in tags:
                self.tag_artifact(artifact, tag, push_time)
            repo["update_time"] = now()
            return artifact

    def tag_artifact(self, artifact, name, push_time=None):
        with self.lock:
            for other in self.artifacts_of(artifact["repository_id"]):
                other["tags"] = [t for t in other["tags"] if t["name"] != name]
            artifact["tags"].append({"id": self.next_id("tag"), "name": name, "push_time": push_time or now(), "pull_time": None})

    def delete_repository(self, repository_id):
        with self.lock:
            self.repositories.pop(repository_id, None)
            for artifact in self.artifacts_of(repository_id):
                del self.artifacts[artifact["id"]]

    def seed(self, data):
        """Load {"projects": [...], "artifacts": [...]}; a project is a name or {"name", "public"}."""
        for item in data.get("projects", []):
            item = {"name": item} if isinstance(item, str) else item
            self.add_project(item["name"], public=bool(item.get("public", False)))
        for item in data.get("artifacts", []):
            self.add_artifact(**item)
