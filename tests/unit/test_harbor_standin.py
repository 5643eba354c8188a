"""The Harbor API stand-in (tests/harbor_standin): it behaves like Harbor for the
operations berth uses, and its swagger contract check cannot pass silently.

The client side is plain urllib, as the stand-in's users talk HTTP to it.
"""

import base64
import importlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import namedtuple

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
standin = importlib.import_module("harbor_standin")
handlers = importlib.import_module("harbor_standin.handlers")
swagger = importlib.import_module("harbor_standin.swagger")

PASSWORD = "Stand-in-unit-4b2d9"
ADMIN = ("admin", PASSWORD)
D1, D2, D3 = ("sha256:" + c * 64 for c in "abc")
Reply = namedtuple("Reply", "status headers body")


def call(harbor, method, path, body=None, auth=ADMIN, headers=None, data=None, content_type="application/json"):
    data = json.dumps(body).encode() if body is not None else data
    request = urllib.request.Request(harbor.url + "/api/v2.0" + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode())
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, reply_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, reply_headers, raw = exc.code, exc.headers, exc.read()
    parsed = json.loads(raw) if raw and reply_headers.get("Content-Type", "").startswith("application/json") else raw
    return Reply(status, reply_headers, parsed)


def assert_error(reply, status, code):
    assert reply.status == status, reply
    assert list(reply.body) == ["errors"] and len(reply.body["errors"]) == 1, reply.body
    assert reply.body["errors"][0]["code"] == code and reply.body["errors"][0]["message"], reply.body


@pytest.fixture
def harbor():
    with standin.HarborStandIn(PASSWORD) as server:
        yield server


def robot_body(name, namespace="lab", access=(("repository", "pull"), ("repository", "list"))):
    permissions = [{"kind": "project", "namespace": namespace, "access": [{"resource": r, "action": a} for r, a in access]}]
    return {"name": name, "level": "project", "duration": -1, "description": "test robot", "permissions": permissions}


def retention_body(project_id, template="latestPushedK", params=None):
    rule = {
        "action": "retain",
        "template": template,
        "params": {"latestPushedK": 3} if params is None else params,
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**", "extras": '{"untagged":true}'}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
    }
    return {
        "algorithm": "or",
        "rules": [rule],
        "trigger": {"kind": "Schedule", "settings": {"cron": ""}},
        "scope": {"level": "project", "ref": project_id},
    }


def test_project_round_trip(harbor):
    created = call(harbor, "POST", "/projects", {"project_name": "lab", "metadata": {"public": "true"}})
    assert created.status == 201 and created.headers["Location"] == "/api/v2.0/projects/1"
    assert call(harbor, "HEAD", "/projects?project_name=lab").status == 200
    assert call(harbor, "HEAD", "/projects?project_name=nope").status == 404
    listed = call(harbor, "GET", "/projects")
    assert listed.status == 200 and listed.headers["X-Total-Count"] == "1" and [p["name"] for p in listed.body] == ["lab"]
    by_name, by_id = call(harbor, "GET", "/projects/lab"), call(harbor, "GET", "/projects/1")
    assert by_name.body == by_id.body and by_name.body["metadata"]["public"] == "true"
    assert_error(call(harbor, "GET", "/projects/1", headers={"X-Is-Resource-Name": "true"}), 404, "NOT_FOUND")
    assert call(harbor, "PUT", "/projects/lab", {"metadata": {"auto_scan": "true"}}).status == 200
    assert call(harbor, "GET", "/projects/lab").body["metadata"] == {"public": "true", "auto_scan": "true"}
    assert_error(call(harbor, "POST", "/projects", {"project_name": "lab"}), 409, "CONFLICT")
    assert call(harbor, "DELETE", "/projects/lab").status == 200
    assert_error(call(harbor, "GET", "/projects/lab"), 404, "NOT_FOUND")
    assert harbor.violations == []


def test_robot_round_trip_and_authentication(harbor):
    harbor.state.add_project("lab")
    harbor.state.add_project("other")
    created = call(harbor, "POST", "/robots", robot_body("puller"))
    assert created.status == 201 and created.headers["Location"] == "/api/v2.0/robots/%d" % created.body["id"]
    assert created.body["name"] == "robot$lab+puller" and created.body["expires_at"] == -1
    robot_id, secret = created.body["id"], created.body["secret"]
    listed = call(harbor, "GET", "/robots?q=" + urllib.parse.quote("Level=project,ProjectID=1"))
    assert [r["name"] for r in listed.body] == ["robot$lab+puller"] and "secret" not in listed.body[0]
    assert call(harbor, "GET", "/robots").body == []  # without Level, Harbor lists system robots
    fetched = call(harbor, "GET", "/robots/%d" % robot_id)
    assert fetched.status == 200 and "secret" not in fetched.body and fetched.body["permissions"][0]["namespace"] == "lab"

    robot = ("robot$lab+puller", secret)
    assert call(harbor, "GET", "/projects/lab/repositories", auth=robot).status == 200
    assert_error(call(harbor, "GET", "/projects/other/repositories", auth=robot), 403, "FORBIDDEN")
    assert_error(call(harbor, "GET", "/registries", auth=robot), 403, "FORBIDDEN")

    refreshed = call(harbor, "PATCH", "/robots/%d" % robot_id, {})
    assert refreshed.status == 200 and refreshed.body["secret"] != secret
    assert_error(call(harbor, "GET", "/projects/lab/repositories", auth=robot), 401, "UNAUTHORIZED")
    robot = ("robot$lab+puller", refreshed.body["secret"])
    assert call(harbor, "GET", "/projects/lab/repositories", auth=robot).status == 200

    update = dict(fetched.body, description="changed", disable=True)
    assert call(harbor, "PUT", "/robots/%d" % robot_id, update).status == 200
    assert call(harbor, "GET", "/robots/%d" % robot_id).body["description"] == "changed"
    assert_error(call(harbor, "GET", "/projects/lab/repositories", auth=robot), 401, "UNAUTHORIZED")  # disabled
    assert call(harbor, "DELETE", "/robots/%d" % robot_id).status == 200
    assert_error(call(harbor, "GET", "/robots/%d" % robot_id), 404, "NOT_FOUND")
    assert harbor.violations == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"project_name": "lab", "public": 1}, "project.public"),
        ({"project_name": "lab", "metadata": {"public": True}}, "project.metadata.public"),
        ({"project_name": 7}, "project.project_name"),
    ],
)
def test_body_of_the_wrong_type_is_rejected(harbor, body, field):
    reply = call(harbor, "POST", "/projects", body)
    assert_error(reply, 400, "BAD_REQUEST")
    assert field in reply.body["errors"][0]["message"]
    assert call(harbor, "GET", "/projects").body == []


def test_missing_or_unreadable_body_is_rejected(harbor):
    assert_error(call(harbor, "POST", "/projects"), 400, "BAD_REQUEST")
    assert_error(call(harbor, "POST", "/projects", data=b"{not json"), 400, "BAD_REQUEST")
    assert_error(
        call(harbor, "POST", "/projects", data=b'{"project_name": "lab"}', content_type="text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE"
    )
    assert_error(call(harbor, "GET", "/projects?page_size=101"), 400, "BAD_REQUEST")
    assert_error(call(harbor, "GET", "/projects?public=yes"), 400, "BAD_REQUEST")


def test_routing_and_authentication_errors(harbor):
    assert_error(call(harbor, "GET", "/no/such/thing"), 404, "NOT_FOUND")
    reply = call(harbor, "DELETE", "/projects")
    assert_error(reply, 405, "METHOD_NOT_ALLOWED")
    assert reply.headers["Allow"] == "GET, HEAD, POST"
    assert_error(call(harbor, "GET", "/projects", auth=None), 401, "UNAUTHORIZED")
    assert_error(call(harbor, "GET", "/projects", auth=("admin", "wrong")), 401, "UNAUTHORIZED")
    assert_error(call(harbor, "GET", "/users"), 501, "UNSUPPORTED")  # in the swagger, not in the stand-in
    assert call(harbor, "GET", "/health", auth=None).body["status"] == "healthy"
    assert call(harbor, "GET", "/systeminfo", auth=None).body["harbor_version"] == "v2.15.2"
    assert harbor.requests[:3] == [
        ("GET", "/api/v2.0/no/such/thing", 404),
        ("DELETE", "/api/v2.0/projects", 405),
        ("GET", "/api/v2.0/projects", 401),
    ]


@pytest.mark.parametrize("name", ["Lab", "-lab", "lab_", "a..b", "la b", "a" * 256])
def test_invalid_project_name_is_rejected(harbor, name):
    assert_error(call(harbor, "POST", "/projects", {"project_name": name}), 400, "BAD_REQUEST")


@pytest.mark.parametrize("access", [(("helm-chart", "read"),), (("repository", "fly"),), (("robot", "create"),)])
def test_unknown_robot_permission_is_rejected(harbor, access):
    harbor.state.add_project("lab")
    assert_error(call(harbor, "POST", "/robots", robot_body("bad", access=access)), 400, "BAD_REQUEST")
    assert call(harbor, "POST", "/robots", robot_body("good")).status == 201  # the control


def test_retention_rule_checks(harbor):
    project = harbor.state.add_project("lab")
    assert_error(call(harbor, "POST", "/retentions", retention_body(1, template="keepEverything", params={})), 400, "BAD_REQUEST")
    assert_error(call(harbor, "POST", "/retentions", retention_body(1, params={})), 400, "BAD_REQUEST")  # latestPushedK needs its count
    templates = [t["rule_template"] for t in call(harbor, "GET", "/retentions/metadatas").body["templates"]]
    assert templates == ["latestPushedK", "latestPulledN", "nDaysSinceLastPush", "nDaysSinceLastPull", "always"]
    created = call(harbor, "POST", "/retentions", retention_body(1))
    assert created.status == 201 and created.headers["Location"] == "/api/v2.0/retentions/1"
    assert project["metadata"]["retention_id"] == "1"
    assert call(harbor, "GET", "/retentions/1").body["rules"][0]["params"] == {"latestPushedK": 3}
    assert harbor.violations == []


def test_a_handler_breaking_the_swagger_is_a_violation(harbor, monkeypatch):
    harbor.state.add_project("lab")
    monkeypatch.setitem(
        handlers.HANDLERS, "getProject", lambda call: handlers.Response(200, {"project_id": "one", "name": "lab", "repo_count": 0})
    )
    assert_error(call(harbor, "GET", "/projects/lab"), 500, "UNKNOWN")
    assert len(harbor.violations) == 1 and "getProject" in harbor.violations[0] and "project_id" in harbor.violations[0]

    monkeypatch.setitem(
        handlers.HANDLERS, "getProject", lambda call: handlers.Response(200, {"project_id": 1, "repo_count": 0, "nickname": "x"})
    )
    assert_error(call(harbor, "GET", "/projects/lab"), 500, "UNKNOWN")  # a property Harbor's model does not have
    monkeypatch.setitem(handlers.HANDLERS, "deleteProject", lambda call: handlers.Response(204))
    assert_error(call(harbor, "DELETE", "/projects/lab"), 500, "UNKNOWN")  # a status the swagger does not declare
    monkeypatch.setitem(handlers.HANDLERS, "listProjects", lambda call: handlers.Response(200, []))
    assert_error(call(harbor, "GET", "/projects"), 500, "UNKNOWN")  # the declared X-Total-Count header is missing
    assert len(harbor.violations) == 4


def test_seeded_artifacts_are_listed_deleted_and_garbage_collected(harbor):
    harbor.state.add_project("lab")
    harbor.state.add_artifact(
        "lab", "web", D1, tags=["1.0", "latest"], push_time="2026-11-20T10:00:00.000Z", size=100, created="2026-11-19T08:00:00Z"
    )
    harbor.state.add_artifact("lab", "web", D2, tags=["0.9"], push_time="2026-11-01T10:00:00Z", size=50)
    harbor.state.add_artifact("lab", "team/app", D3)
    listed = call(harbor, "GET", "/projects/lab/repositories/web/artifacts?with_tag=true")
    assert listed.status == 200 and listed.headers["X-Total-Count"] == "2"
    first = next(a for a in listed.body if a["digest"] == D1)
    assert first["push_time"] == "2026-11-20T10:00:00.000Z" and first["extra_attrs"]["created"] == "2026-11-19T08:00:00.000Z"
    assert {(t["name"], t["push_time"]) for t in first["tags"]} == {
        ("1.0", "2026-11-20T10:00:00.000Z"),
        ("latest", "2026-11-20T10:00:00.000Z"),
    }
    assert [a["digest"] for a in call(harbor, "GET", "/projects/lab/repositories/team%252Fapp/artifacts").body] == [D3]

    assert call(harbor, "DELETE", "/projects/lab/repositories/web/artifacts/" + D2).status == 200
    assert_error(call(harbor, "DELETE", "/projects/lab/repositories/web/artifacts/" + D2), 404, "NOT_FOUND")
    assert [a["digest"] for a in call(harbor, "GET", "/projects/lab/repositories/web/artifacts").body] == [D1]
    assert call(harbor, "DELETE", "/projects/lab/repositories/web/artifacts/latest").status == 200  # by tag: the whole artifact
    assert call(harbor, "GET", "/projects/lab/repositories/web/artifacts").body == []

    gc = call(harbor, "POST", "/system/gc/schedule", {"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": True}})
    assert gc.status == 201 and gc.headers["Location"] == "/api/v2.0/system/gc/1"
    history = call(harbor, "GET", "/system/gc").body
    assert [(h["id"], h["job_kind"], h["job_status"]) for h in history] == [(1, "MANUAL", "Success")]
    assert json.loads(history[0]["job_parameters"])["delete_untagged"] is True
    assert len(harbor.state.gc_runs) == 1
    assert call(harbor, "GET", "/system/gc/schedule").body == b""  # no schedule: Harbor's empty 200
    assert harbor.violations == []


def test_pagination(harbor):
    for index in range(12):
        harbor.state.add_project("p%02d" % index)
    first = call(harbor, "GET", "/projects?page=1&page_size=10")
    assert len(first.body) == 10 and first.headers["X-Total-Count"] == "12" and 'rel="next"' in first.headers["Link"]
    second = call(harbor, "GET", "/projects?page=2&page_size=10")
    assert [p["name"] for p in second.body] == ["p10", "p11"]
    assert [p["name"] for p in call(harbor, "GET", "/projects?q=" + urllib.parse.quote("name=~p1")).body] == ["p10", "p11"]
    assert harbor.violations == []


def test_reference_file_location(monkeypatch, tmp_path):
    monkeypatch.setenv(swagger.REFERENCE_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=swagger.REFERENCE_ENV):
        swagger.reference_file()
    monkeypatch.delenv(swagger.REFERENCE_ENV)
    assert os.path.basename(swagger.reference_file()) == swagger.SWAGGER_NAME


def test_command_line_serves_a_seed(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps({"projects": ["lab"], "artifacts": [{"project": "lab", "repository": "web", "digest": D1, "tags": ["1.0"]}]})
    )
    script = os.path.join(TESTS, "harbor_standin", "server.py")
    process = subprocess.Popen(
        [sys.executable, script, "--port", "0", "--admin-password", PASSWORD, "--seed", str(seed)], stdout=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
        running = namedtuple("Running", "url")(line.split()[-1])
        assert [a["tags"][0]["name"] for a in call(running, "GET", "/projects/lab/repositories/web/artifacts").body] == ["1.0"]
    finally:
        process.terminate()
        process.wait(timeout=10)
