"""Content-hash builds and the registry on the test lab: a building's host
builds and pushes over TLS, hosts in other buildings pull."""

import json
import os
import shutil
import uuid

import pytest
from labtools import ROOT, lab_exec, task_results


@pytest.fixture(scope="module")
def build(lab):
    hosts = sorted(lab.hosts)
    builder = next(h for h in hosts if h.endswith("-a2"))
    registry = "%s:5000" % lab.hosts[next(h for h in hosts if h.endswith("-a1"))]
    base = lab.playbook("playbooks/build_base.yml", "-e", "build_host=%s" % builder)
    assert base.returncode == 0, base.explain()
    # A fresh app name per session: the first build of it is really the first.
    app = "web%s" % uuid.uuid4().hex[:6]
    return {"lab": lab, "builder": builder, "registry": registry, "middleware": "%s/base/middleware:1" % registry, "app": app}


@pytest.fixture
def artifact(tmp_path):
    path = tmp_path / "artifact"
    shutil.copytree(os.path.join(ROOT, "images", "example", "app"), path)
    return path


def build_app(build, artifact, *extra, app=None):
    run = build["lab"].playbook(
        "playbooks/build.yml",
        "-v",
        "-e",
        "build_host=%s" % build["builder"],
        "-e",
        "app=%s" % (app or build["app"]),
        "-e",
        "artifact=%s" % artifact,
        "-e",
        "middleware_image=%s" % build["middleware"],
        *extra,
    )
    assert run.returncode == 0, run.explain()
    return run, module_result(run.output)


def module_result(output):
    return next(iter(task_results(output, "Build and push").values()))


def test_first_build_pushes_and_a_rerun_does_nothing(build, artifact):
    _, result = build_app(build, artifact, "-e", "version=1.0.0")
    assert result["built"] and result["pushed"]
    again, result = build_app(build, artifact, "-e", "version=1.0.0")
    assert result["built"] is False and result["pushed"] is False
    assert again.total_changed() == 0, again.explain()
    assert "berth-image: %s/lab/%s:1.0.0@sha256:" % (build["registry"], build["app"]) in again.output


def test_one_changed_app_file_rebuilds_and_pushes_only_the_app_layer(build, artifact):
    build_app(build, artifact, "-e", "version=1.1.0")
    (artifact / "version").write_text("changed\n")
    _, result = build_app(build, artifact, "-e", "version=1.1.0")
    assert result["built"] and result["pushed"]
    assert result["layers_built"] == 1
    assert result["layers_reused"] >= 4
    assert len(result["pushed_layers"]) == 1
    assert result["pushed_bytes"] < result["image_bytes"] / 100
    assert result["reasons"] == ["context changed: artifact/version"]


def test_a_changed_build_arg_alone_triggers_a_rebuild(build, artifact):
    build_app(build, artifact, "-e", "version=1.2.0", "-e", '{"build_args": {"APP_FLAVOR": "plain"}}')
    _, result = build_app(build, artifact, "-e", "version=1.2.0", "-e", '{"build_args": {"APP_FLAVOR": "spicy"}}')
    assert result["built"]
    assert result["reasons"] == ["build args changed"]


def test_a_timestamp_tag_is_made_only_when_something_was_built(build, artifact):
    first, _ = build_app(build, artifact, app=build["app"] + "-stamped")
    again, result = build_app(build, artifact, app=build["app"] + "-stamped")
    assert result["built"] is False
    ref = lambda run: run.output.split("berth-image: ", 1)[1].split("@")[0]  # noqa: E731
    assert ref(first) == ref(again)
    assert ref(first).rsplit(":", 1)[1].count("-") == 1 and len(ref(first).rsplit(":", 1)[1]) == 18


@pytest.mark.parametrize("suffix", ["-b1", "-c1"])
def test_hosts_in_other_buildings_pull_over_tls(build, artifact, suffix):
    build_app(build, artifact, "-e", "version=2.0.0")
    puller = next(h for h in build["lab"].hosts if h.endswith(suffix))
    assert lab_exec(puller, "test -s /etc/docker/certs.d/%s/ca.crt" % build["registry"]).returncode == 0
    ref = "%s/lab/%s:2.0.0" % (build["registry"], build["app"])
    pulled = lab_exec(puller, "docker pull %s" % ref)
    assert pulled.returncode == 0, pulled.stderr
    assert lab_exec(puller, "docker run --rm %s cat /srv/app/version" % ref).stdout.strip() == "v1"


def module_run(build, options):
    return build["lab"].playbook(
        "tests/integration/playbooks/image-build.yml", "-e", "target=%s" % build["builder"], "-e", json.dumps({"build": options})
    )


def image_ids(build):
    return lab_exec(build["builder"], "docker images -aq --no-trunc | sort").stdout


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"path": "/nonexistent", "name": "REG/lab/x"}, "path: build context /nonexistent does not exist"),
        ({"path": "/var/lib/berth/build/middleware", "name": "REG/lab/x", "tags": ["not a tag"]}, "'not a tag' is not a valid tag"),
        (
            {"path": "/var/lib/berth/build/middleware", "name": "REG/lab/x", "build_args": {"BASE": ["a", "b"]}},
            "build_args.BASE: a list is not a valid build argument value",
        ),
        (
            {
                "path": "/var/lib/berth/build/middleware",
                "name": "127.0.0.1:5999/lab/x",
                "build_args": {"BASE": "REG/base/os:1"},
                "push": True,
                "push_retries": 2,
                "retry_delay": 0.2,
            },
            "failed after 3 attempt(s) against registry 127.0.0.1:5999",
        ),
    ],
    ids=["missing-context", "bad-tag", "build-arg-type", "unreachable-registry"],
)
def test_bad_input_fails_clearly_and_builds_nothing(build, options, message):
    options = json.loads(json.dumps(options).replace("REG", build["registry"]))
    before = image_ids(build)
    run = module_run(build, options)
    assert run.returncode != 0
    assert message in run.output, run.explain()
    assert image_ids(build) == before


def test_check_mode_reports_why_it_would_build_and_builds_nothing(build, artifact):
    build_app(build, artifact, "-e", "version=3.0.0")
    context = "/var/lib/berth/build/app-%s" % build["app"]
    lab_exec(build["builder"], "echo changed > %s/artifact/index.html" % context, check=True)
    before = image_ids(build)
    options = {"path": context, "name": "%s/lab/%s" % (build["registry"], build["app"]), "tags": ["3.0.0"], "push": True}
    run = build["lab"].playbook(
        "tests/integration/playbooks/image-build.yml",
        *("--check", "--diff", "-e", "target=%s" % build["builder"], "-e", json.dumps({"build": options})),
    )
    assert run.returncode == 0, run.explain()
    result = task_results(run.output, "Show the result")[build["builder"]]["build_result"]
    assert result["changed"] is True and result["built"] is False
    assert result["reasons"] == ["context changed: artifact/index.html"]
    # The diff: the tag stands for the built input hash now, for the new one after.
    tag = "%s:3.0.0" % options["name"]
    diff = result["diff"]
    assert diff["before"]["input_hash"] and diff["before"]["input_hash"] != result["input_hash"] == diff["after"]["input_hash"]
    assert tag in diff["before"]["tags"] and diff["after"]["tags"] == [tag]
    assert image_ids(build) == before
