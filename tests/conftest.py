"""Shared test set-up: the repo is the collection berth.ops, and
collections/ansible_collections/berth/ops links back to it, so tests import
module_utils by the same collection path that modules and filters use. Also
the test lab: a second lab beside `make lab`'s, with its own name, campus
network and inventory, brought up once per session (integration and fault
tests share it) and torn down by the last test, which also proves that
nothing is left behind."""

import os
import sys
from dataclasses import dataclass, field

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

import subprocess  # noqa: E402

from ansible_collections.berth.ops.plugins.module_utils.berth_lab import lab_paths  # noqa: E402
from labtools import PlaybookRun, ansible_playbook, docker_objects, lab_exec, lab_hosts, parse_recap, project_files  # noqa: E402

# BERTH_TEST_LAB_NAME / BERTH_TEST_LAB_CAMPUS give a developer a lab of their
# own beside another one on the same engine.
LAB_ENV = {
    "BERTH_LAB_NAME": os.environ.get("BERTH_TEST_LAB_NAME", "berth-test"),
    "BERTH_LAB_CAMPUS": os.environ.get("BERTH_TEST_LAB_CAMPUS", "10.78.0.0/16"),
}


@dataclass
class Lab:
    name: str
    inventory: str
    env: dict
    before: tuple
    first_converge: object = None
    # The README's own re-converge (test_readme), when it ran: test_lab checks
    # its recap instead of converging once more.
    second_converge: object = None
    make_output: str = None
    served_after_make: dict = None
    torn_down: bool = False
    hosts: dict = field(default_factory=dict)

    def playbook(self, *args, **kwargs):
        return ansible_playbook("-i", self.inventory, *args, **kwargs)

    def release(self, host):
        """The Debian release a lab host runs (bookworm, trixie)."""
        return lab_exec(host, ". /etc/os-release && echo $VERSION_CODENAME", check=True).stdout.strip()


# What a new user runs first runs first: `make lab`'s own output, then the
# README's commands, on the lab exactly as `make lab` left it.
FIRST = ("test_make_lab.py", "test_readme.py")


def pytest_collection_modifyitems(items):
    # The teardown test ends the shared lab, so it runs after everything else;
    # a test that changes the fleet for good (lab_changes_fleet) just before.
    def order(item):
        name = os.path.basename(str(item.fspath))
        last = item.get_closest_marker("lab_teardown") is not None
        fleet = item.get_closest_marker("lab_changes_fleet") is not None
        return (last, fleet, FIRST.index(name) if name in FIRST else len(FIRST))

    items.sort(key=order)


FIGURES = []


@pytest.fixture(scope="session")
def figures():
    """Lines of measured figures (requests, failures, digests lost per fault
    scenario), printed together at the end of the run."""
    return FIGURES


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("measured figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


def pytest_runtest_logreport(report):
    # Each phase's time as it ends, so a run cut short (a CI time limit)
    # still shows where its time went (scripts/lab-tests.sh prints it).
    path = os.environ.get("BERTH_TEST_TIMES")
    if path and report.duration >= 1:
        with open(path, "a", encoding="utf-8") as stream:
            stream.write("%8.1f %-8s %s %s\n" % (report.duration, report.when, report.outcome, report.nodeid))


def pytest_configure(config):
    config.addinivalue_line("markers", "lab_teardown: tears the test lab down; runs last")
    config.addinivalue_line("markers", "lab_changes_fleet: adds a host to the test lab for good; runs before the teardown")


@pytest.fixture(scope="session")
def lab():
    """The test lab, made by `make lab` itself: the path a new user runs
    first (lab hosts, site.yml, the cleanup dry run on an empty registry, the
    demo build and rollout). BERTH_KEEP_LAB=1 keeps the lab between runs
    while developing; a kept lab is only converged again."""
    env = dict(LAB_ENV)
    name = env["BERTH_LAB_NAME"]
    keep = os.environ.get("BERTH_KEEP_LAB")
    paths = lab_paths(ROOT, name)
    reuse = keep and os.path.exists(paths["inventory"])
    # make test's second session: the first one runs `make lab` itself; this
    # one needs only a converged fleet, not the cleanup dry run and the demo.
    converge_only = reuse or os.environ.get("BERTH_TEST_LAB_CONVERGE_ONLY") == "1"
    if not keep:
        # A lab kept by an earlier run on the same engine is not ours to
        # count as "before"; start from nothing so the teardown test is exact.
        stale = ansible_playbook("playbooks/lab_down.yml", env=env)
        assert stale.returncode == 0, stale.explain()
    before = (docker_objects(name), project_files(name))
    lab = Lab(name=name, inventory=paths["inventory"], env=env, before=before)
    if converge_only:
        if not os.environ.get("BERTH_HOST_IMAGE"):
            pytest.fail("BERTH_HOST_IMAGE is not set: run the integration tests through `make test`")
        up = ansible_playbook("playbooks/lab_up.yml", env=env)
        assert up.returncode == 0, up.explain()
        lab.first_converge = lab.playbook("playbooks/site.yml")
    else:
        made = subprocess.run(
            ["make", "--no-print-directory", "lab"],
            cwd=ROOT,
            env=dict(os.environ, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=3600,
            check=False,
        )
        lab.make_output = made.stdout
        assert made.returncode == 0, "make lab exited %d:\n%s" % (made.returncode, made.stdout[-8000:])
        with open(os.path.join(paths["state_dir"], "site.log"), encoding="utf-8") as stream:
            site = stream.read()
        lab.first_converge = PlaybookRun(["playbooks/site.yml"], 0, site, parse_recap(site))
        # What the demo serves right after make lab, before any test changes it.
        lab.served_after_make = {
            host: lab_exec(host, "curl -s http://127.0.0.1/version").stdout.strip() for host in lab_hosts(lab.inventory)
        }
    assert lab.first_converge.returncode == 0, lab.first_converge.explain()
    lab.hosts = lab_hosts(lab.inventory)
    yield lab
    # BERTH_KEEP_LAB=1 keeps the lab for the next run while developing.
    if not lab.torn_down and not keep:
        ansible_playbook("playbooks/lab_down.yml", env=env)


@pytest.fixture(scope="session")
def rollout_images(lab, tmp_path_factory):
    """The demo app's images for rollout tests (integration and faults),
    built once per session on the lab: base OS and middleware, versions r1,
    r2 and r3, `nohc` (r2's content without a HEALTHCHECK, answering
    "nohc") and `stuck` (a HEALTHCHECK that stays in "starting")."""
    import json  # noqa: PLC0415 (a fixture added at the end of this file)
    import shutil  # noqa: PLC0415

    from labtools import lab_exec  # noqa: PLC0415

    builder = next(h for h in sorted(lab.hosts) if h.endswith("-a2"))
    registry = "%s:5000" % lab.hosts[next(h for h in sorted(lab.hosts) if h.endswith("-a1"))]
    base = lab.playbook("playbooks/build_base.yml", "-e", "build_host=%s" % builder)
    assert base.returncode == 0, base.explain()
    middleware = "%s/base/middleware:1" % registry
    for version in ("r1", "r2", "r3"):
        artifact = tmp_path_factory.mktemp(version)
        shutil.copytree(os.path.join(ROOT, "images", "example", "app"), artifact, dirs_exist_ok=True)
        (artifact / "version").write_text(version + "\n")
        built = lab.playbook(
            "playbooks/build.yml",
            *("-e", "build_host=%s" % builder, "-e", "app=demo", "-e", "artifact=%s" % artifact),
            *("-e", "middleware_image=%s" % middleware, "-e", "version=%s" % version),
        )
        assert built.returncode == 0, built.explain()
    variants = {
        "stuck": "FROM %s\nHEALTHCHECK --interval=1s --start-period=600s CMD false\n" % middleware,
        "nohc": "FROM %s/lab/demo:r2\nHEALTHCHECK NONE\nRUN echo nohc > /srv/app/version\n" % registry,
    }
    for tag, dockerfile in variants.items():
        context = "/var/lib/berth/build/%s" % tag
        lab_exec(builder, "mkdir -p %s && printf '%%s' '%s' > %s/Dockerfile" % (context, dockerfile, context), check=True)
        build = {"build": {"path": context, "name": "%s/lab/demo" % registry, "tags": [tag], "push": True}}
        made = lab.playbook("tests/integration/playbooks/image-build.yml", "-e", "target=%s" % builder, "-e", json.dumps(build))
        assert made.returncode == 0, made.explain()
    return {"registry": registry, "builder": builder}
