"""The build pool on the test lab (issue 15, section 4): builds go to the
`builders` group (a2, b1, c1), the one holding the middleware first; each
builder runs at most build_max_concurrent builds, the rest wait in arrival
order; a failed build gives its slot back; the CI job gets the reference
whichever builder ran it."""

import itertools
import os
import shutil
import uuid

import pytest
from labtools import ROOT, Background, docker, lab_exec, reachable, task_results, wait_for

QUEUE = "/run/berth/build-queue"


@pytest.fixture(scope="module")
def pool(lab):
    hosts = sorted(lab.hosts)
    registry = "%s:5000" % lab.hosts[next(h for h in hosts if h.endswith("-a1"))]
    base = lab.playbook("playbooks/build_base.yml", "-e", "build_host=%s" % next(h for h in hosts if h.endswith("-a2")))
    assert base.returncode == 0, base.explain()
    builders = [h for h in hosts if h.endswith(("-a2", "-b1", "-c1"))]
    return {"lab": lab, "registry": registry, "middleware": "%s/base/middleware:1" % registry, "builders": builders}


def artifact_of(tmp_path, name):
    path = tmp_path / name
    shutil.copytree(os.path.join(ROOT, "images", "example", "app"), path)
    (path / "version").write_text(name + "\n")
    return path


def build_args(pool, app, artifact, *extra):
    return (
        "playbooks/build.yml",
        "-v",
        *("-e", "app=%s" % app, "-e", "artifact=%s" % artifact, "-e", "middleware_image=%s" % pool["middleware"]),
        *("-e", "version=1"),
        *extra,
    )


def builder_of(output):
    return output.split("berth-builder: ", 1)[1].split()[0]


def slot_times(output):
    """(ticket sent to the builder, slot taken, slot freed) on the builder's
    clock: the slot is freed when the build module, which holds it, ends."""
    [acquired] = task_results(output, "Wait for a build slot").values()
    [built] = task_results(output, "Build and push").values()
    return acquired["ticket"]["sent"], acquired["at"], built["slot"]["held_to"]


def run_together(pool, runs):
    started = [Background(pool["lab"], *args) for args in runs]
    try:
        return [run.wait() for run in started]
    finally:
        for run in started:
            run.close()


def test_the_builder_that_holds_the_middleware_is_chosen(pool, tmp_path):
    holder = next(h for h in pool["builders"] if h.endswith("-a2"))
    for other in pool["builders"]:
        if other != holder:
            lab_exec(other, "docker image rm %s || true" % pool["middleware"], check=True)
    run = pool["lab"].playbook(*build_args(pool, "pool%s" % uuid.uuid4().hex[:6], artifact_of(tmp_path, "one")))
    assert run.returncode == 0, run.explain()
    assert "berth-builder: %s (holds the base image and has a free slot" % holder in run.output, run.explain()
    # The places on the other builders were given back: every queue is empty.
    for builder in pool["builders"]:
        assert lab_exec(builder, "ls %s/*.json 2>/dev/null | wc -l" % QUEUE).stdout.strip() == "0"


def test_a_burst_spreads_over_the_pool_within_each_builders_limit(pool, tmp_path):
    apps = ["burst%s%d" % (uuid.uuid4().hex[:4], n) for n in range(6)]
    runs = [build_args(pool, app, artifact_of(tmp_path, app), "-e", "build_max_concurrent=1") for app in apps]
    results = run_together(pool, runs)
    for code, output in results:
        assert code == 0, output[-3000:]
    chosen = {}
    for _, output in results:
        chosen.setdefault(builder_of(output), []).append(slot_times(output))
    assert len(chosen) >= 2, chosen
    for builder, times in chosen.items():
        # One slot: the builds on a builder never overlap, and start in the order they were sent there.
        ordered = sorted(times)
        for (_, _, freed), (_, taken, _) in itertools.pairwise(ordered):
            assert taken >= freed, (builder, ordered)
    # Every run printed its reference, whichever builder made it.
    for app, (_, output) in zip(apps, results):
        assert "berth-image: %s/lab/%s:1@sha256:" % (pool["registry"], app) in output


def test_builds_over_a_pinned_builders_limit_wait_in_order(pool, tmp_path):
    builder = pool["builders"][0]
    apps = ["queue%s%d" % (uuid.uuid4().hex[:4], n) for n in range(3)]
    runs = [
        build_args(pool, app, artifact_of(tmp_path, app), "-e", "build_host=" + builder, "-e", "build_max_concurrent=1") for app in apps
    ]
    results = run_together(pool, runs)
    for code, output in results:
        assert code == 0, output[-3000:]
    times = sorted(slot_times(output) for _, output in results)
    assert [t[1] for t in times] == sorted(t[1] for t in times), "slots were taken out of arrival order: %s" % times
    for (_, _, freed), (_, taken, _) in itertools.pairwise(times):
        assert taken >= freed, times
    waited = [task_results(output, "Wait for a build slot")[builder]["waited"] for _, output in results]
    assert sum(1 for seconds in waited if seconds > 0) >= 1, waited


def test_an_unreachable_builder_is_left_out(pool, tmp_path):
    down = next(h for h in pool["builders"] if h.endswith("-c1"))
    docker("stop", "-t", "5", down)
    try:
        app = "down%s" % uuid.uuid4().hex[:6]
        run = pool["lab"].playbook(*build_args(pool, app, artifact_of(tmp_path, app)))
        assert run.returncode == 0, run.explain()
        assert builder_of(run.output) != down
        assert "berth-image: %s/lab/%s:1@sha256:" % (pool["registry"], app) in run.output
    finally:
        docker("start", down)
        assert wait_for(lambda: lab_exec(down, "systemctl is-system-running").stdout.strip() in ("running", "degraded"), timeout=120)
        assert wait_for(lambda: reachable(pool["lab"], down), timeout=120)


def test_a_failed_build_gives_its_slot_back(pool, tmp_path):
    builder = pool["builders"][0]
    app = "fail%s" % uuid.uuid4().hex[:6]
    args = build_args(pool, app, artifact_of(tmp_path, app), "-e", "build_host=" + builder, "-e", "build_max_concurrent=1")
    broken = [a.replace(pool["middleware"], "%s/base/absent:1" % pool["registry"]) for a in args]
    run = pool["lab"].playbook(*broken)
    assert run.returncode != 0
    assert lab_exec(builder, "ls %s/*.json 2>/dev/null | wc -l" % QUEUE).stdout.strip() == "0"
    again = pool["lab"].playbook(*args)
    assert again.returncode == 0, again.explain()
    assert task_results(again.output, "Wait for a build slot")[builder]["waited"] < 5


def test_the_ci_job_gets_the_reference_in_a_file(pool, tmp_path):
    app = "ci%s" % uuid.uuid4().hex[:6]
    output = tmp_path / "image.ref"
    run = pool["lab"].playbook(*build_args(pool, app, artifact_of(tmp_path, app), "-e", "build_output=%s" % output))
    assert run.returncode == 0, run.explain()
    ref = output.read_text().strip()
    assert ref.startswith("%s/lab/%s:1@sha256:" % (pool["registry"], app))
    assert "berth-image: %s" % ref in run.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("-e", "build_max_concurrent=0"), "build_max_concurrent of"),
        (("-e", "building=bldg_z"), "no builder matches builders:&bldg_z"),
    ],
    ids=["zero-slots", "no-builders"],
)
def test_bad_pool_input_fails_clearly_and_queues_nothing(pool, tmp_path, extra, message):
    run = pool["lab"].playbook(*build_args(pool, "bad", artifact_of(tmp_path, "bad"), *extra))
    assert run.returncode != 0
    assert message in run.output, run.explain()
    for builder in pool["builders"]:
        assert lab_exec(builder, "ls %s/*.json 2>/dev/null | wc -l" % QUEUE).stdout.strip() == "0"


def test_check_mode_goes_through_the_queue_and_leaves_nothing(pool, tmp_path):
    app = "check%s" % uuid.uuid4().hex[:6]
    args = build_args(pool, app, artifact_of(tmp_path, app), "-e", "build_host=" + pool["builders"][0])
    # The build context exists once the app was built there.
    first = pool["lab"].playbook(*args)
    assert first.returncode == 0, first.explain()
    run = pool["lab"].playbook(*args, "--check")
    assert run.returncode == 0, run.explain()
    assert "berth-builder: " in run.output
    for builder in pool["builders"]:
        assert lab_exec(builder, "ls %s/*.json 2>/dev/null | wc -l" % QUEUE).stdout.strip() == "0"
