#!/usr/bin/env python3
"""`make bench`: every figure the issues ask for, measured side by side in
one run on this machine. Absolute times on shared 2-core machines are noisy;
the ratios are what to compare."""

import argparse
import configparser
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace
from urllib.error import HTTPError, URLError

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from harbor_standin import HarborStandIn  # noqa: E402
from labtools import (  # noqa: E402
    ROOT,
    Background,
    Load,
    ansible_playbook,
    lab_exec,
    lab_hosts,
    populate_images,
    registry_tags,
    seed_registry,
    task_results,
    throwaway_tls,
)

sys.path.insert(0, os.path.join(ROOT, "collections"))
from ansible.module_utils.urls import open_url  # noqa: E402
from ansible_collections.berth.ops.plugins.module_utils.berth_env_spec import LABEL_ENV, LABEL_SERVICE, building_network  # noqa: E402
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_client import client_for  # noqa: E402
from ansible_collections.berth.ops.plugins.module_utils.berth_harbor_objects import project_errors  # noqa: E402
from ansible_collections.berth.ops.plugins.module_utils.berth_http import HttpError  # noqa: E402
from ansible_collections.berth.ops.plugins.module_utils.berth_lab import cgroup_paths, lab_inventory, lab_plan  # noqa: E402
from ansible_collections.berth.ops.plugins.module_utils.berth_retention import Candidate, plan  # noqa: E402
from ansible_collections.berth.ops.plugins.modules import harbor_project  # noqa: E402

BENCH_LAB = {"BERTH_LAB_NAME": "berth-bench", "BERTH_LAB_CAMPUS": "10.79.0.0/16"}


def timed(label, *args, env=None):
    start = time.monotonic()
    run = ansible_playbook(*args, env=env)
    elapsed = time.monotonic() - start
    if run.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (label, run.explain()))
    return elapsed, run


class BenchLab:
    """A lab of its own for the benches, removed again at the end."""

    def __init__(self):
        self.inventory = os.path.join(ROOT, ".lab", BENCH_LAB["BERTH_LAB_NAME"], "inventory", "hosts.yml")
        self.hosts = {}

    def __enter__(self):
        ansible_playbook("playbooks/lab_down.yml", env=BENCH_LAB)
        return self

    def __exit__(self, *exc):
        ansible_playbook("playbooks/lab_down.yml", env=BENCH_LAB)

    def playbook(self, label, *args, env=None):
        return timed(label, "-i", self.inventory, *args, env=env)

    def host(self, suffix):
        return next(name for name in self.hosts if name.endswith(suffix))


def bench_lab(lab):
    """Lab bring-up, first converge of site.yml, idempotent re-run."""
    up, _ = timed("lab-up", "playbooks/lab_up.yml", env=BENCH_LAB)
    lab.hosts = lab_hosts(lab.inventory)
    first, _ = lab.playbook("first converge", "playbooks/site.yml")
    again, rerun = lab.playbook("re-run", "playbooks/site.yml")
    return [
        ("lab up (%d hosts, 3 buildings)" % len(lab.hosts), "%.1f s" % up),
        ("site.yml, first converge", "%.1f s" % first),
        ("site.yml, idempotent re-run (changed=%d)" % rerun.total_changed(), "%.1f s" % again),
        ("re-run / first converge", "%.2f" % (again / first)),
    ]


# Mitogen's strategy plugins, installed for the bench only (berth's own
# runs use Ansible's ssh connection); the version read to support
# ansible-core 2.19.
MITOGEN = "mitogen==0.3.54"


def host_cpu_seconds(lab):
    """CPU the lab's host containers used so far (their cgroups: every
    module, engine and service on them)."""
    total = 0
    for name in lab.hosts:
        cid = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", name], capture_output=True, text=True, check=True).stdout.strip()
        path = next((p for p in cgroup_paths(cid, ("cpuacct", "cpuacct.usage"), "cpu.stat") if os.path.exists(p)), None)
        if path:
            with open(path, encoding="ascii") as stream:
                text = stream.read()
            # cgroup v1 counts nanoseconds, v2 microseconds (usage_usec).
            total += int(text) / 1e9 if path.endswith("usage") else int(text.split()[1]) / 1e6
    return total


def mitogen_path():
    """Mitogen's strategy directory, installed under .cache for the bench; or
    why it could not be."""
    target = os.path.join(ROOT, ".cache", "bench-mitogen")
    strategy = os.path.join(target, "ansible_mitogen", "plugins", "strategy")
    if not os.path.isdir(strategy):
        run = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, MITOGEN],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            return None, "pip could not install %s: %s" % (MITOGEN, run.stderr.strip().splitlines()[-1:])
    return target, strategy


def bench_fanout(lab):
    """An idempotent site.yml under each fan-out setting, side by side: wall
    time, controller CPU and the lab hosts' CPU."""
    variants = [
        ("ansible.cfg as shipped (linear, pipelining, ControlPersist, fact cache)", {}),
        ("pipelining off", {"ANSIBLE_PIPELINING": "false"}),
        ("no ControlPersist (a new SSH connection per task)", {"ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ServerAliveInterval=15"}),
        # playbooks/facts.yml gathers where no cached facts exist.
        ("no fact cache (facts gathered every run)", {"ANSIBLE_CACHE_PLUGIN": "memory"}),
        ("strategy free", {"ANSIBLE_STRATEGY": "free"}),
    ]
    target, strategy = mitogen_path()
    if target:
        variants.append(
            (
                "Mitogen (%s, mitogen_linear)" % MITOGEN,
                {"PYTHONPATH": target, "ANSIBLE_STRATEGY_PLUGINS": strategy, "ANSIBLE_STRATEGY": "mitogen_linear"},
            )
        )
    rows = []
    base = None
    for label, env in variants:
        host_before = host_cpu_seconds(lab)
        usage = os.times()
        start = time.monotonic()
        run = ansible_playbook("-i", lab.inventory, "playbooks/site.yml", env=env)
        wall = time.monotonic() - start
        after = os.times()
        controller = (after.children_user + after.children_system) - (usage.children_user + usage.children_system)
        hosts = host_cpu_seconds(lab) - host_before
        if run.returncode != 0:
            rows.append((label, "failed: %s" % run.output.strip().splitlines()[-1:]))
            continue
        cpu = controller + hosts
        base = base or cpu
        rows.append(
            (
                label,
                "%.1f s, CPU %.1f s (controller %.1f, hosts %.1f), %.2fx the shipped CPU, changed=%d"
                % (wall, cpu, controller, hosts, cpu / base, run.total_changed()),
            )
        )
    if not target:
        rows.append(("Mitogen", "not measured: %s" % strategy))
    return rows


def module_seconds(result):
    return sum(result["durations"].values())


def bench_build(lab):
    """Cold three-layer build and push versus an app-only rebuild (module time)."""
    builder = lab.host("-a2")
    registry = "%s:5000" % lab.hosts[lab.host("-a1")]
    artifact = tempfile.mkdtemp(prefix="berth-bench-app-")
    shutil.copytree(os.path.join(ROOT, "images", "example", "app"), artifact, dirs_exist_ok=True)
    try:
        app = ("playbooks/build.yml", "-v", "-e", "build_host=" + builder, "-e", "app=bench", "-e", "artifact=" + artifact)
        app += ("-e", "middleware_image=%s/base/middleware:1" % registry, "-e", "version=1")
        _, base = lab.playbook("base and middleware", "playbooks/build_base.yml", "-v", "-e", "build_host=" + builder)
        _, first = lab.playbook("app, cold", *app)
        with open(os.path.join(artifact, "version"), "w", encoding="utf-8") as stream:
            stream.write("v2\n")
        _, second = lab.playbook("app only", *app)
    finally:
        shutil.rmtree(artifact)
    layers = [
        task_results(base.output, name)[builder] for name in ("Build and push the base OS image", "Build and push the middleware image")
    ]
    cold_app = task_results(first.output, "Build and push")[builder]
    rebuild = task_results(second.output, "Build and push")[builder]
    cold = sum(module_seconds(result) for result in [*layers, cold_app])
    pushed_cold = sum(result["pushed_bytes"] for result in [*layers, cold_app])
    return [
        ("cold build + push, base + middleware + app", "%.2f s" % cold),
        (
            "app-only rebuild + push",
            "%.2f s (layers built %d, reused %d)" % (module_seconds(rebuild), rebuild["layers_built"], rebuild["layers_reused"]),
        ),
        ("app-only / cold (goal <= 0.2)", "%.3f" % (module_seconds(rebuild) / cold)),
        ("bytes pushed, cold (whole image)", "%d" % pushed_cold),
        ("bytes pushed, app-only rebuild", "%d (%d layer)" % (rebuild["pushed_bytes"], len(rebuild["pushed_layers"]))),
        ("app-only bytes / whole image bytes", "%.5f" % (rebuild["pushed_bytes"] / rebuild["image_bytes"])),
    ]


POOL_APPS, POOL_VERSIONS = 3, 4


def build_burst(lab, label, pin=None):
    """POOL_APPS x POOL_VERSIONS builds started at once (each app version its
    own artifact, with 4 MiB of its own data); on `pin` alone, or on the
    `builders` pool. Returns (wall seconds, per-build module results)."""
    registry = "%s:5000" % lab.hosts[lab.host("-a1")]
    directory = tempfile.mkdtemp(prefix="berth-bench-pool-")
    runs = []
    try:
        for app in range(POOL_APPS):
            for version in range(1, POOL_VERSIONS + 1):
                artifact = os.path.join(directory, "%s%d-%d" % (label, app, version))
                shutil.copytree(os.path.join(ROOT, "images", "example", "app"), artifact)
                with open(os.path.join(artifact, "payload"), "wb") as stream:
                    stream.write(os.urandom(4 << 20))
                args = ("playbooks/build.yml", "-v", "-e", "app=%s%d" % (label, app), "-e", "artifact=" + artifact)
                args += ("-e", "middleware_image=%s/base/middleware:1" % registry, "-e", "version=%d" % version)
                runs.append(args + (("-e", "build_host=" + pin) if pin else ()))
        start = time.monotonic()
        started = [Background(lab, *args) for args in runs]
        finished = [run.wait(timeout=1800) for run in started]
        wall = time.monotonic() - start
    finally:
        shutil.rmtree(directory)
    results = []
    for code, output in finished:
        if code != 0:
            raise SystemExit("a %s build failed:\n%s" % (label, output[-3000:]))
        results.extend(task_results(output, "Build and push").values())
    return wall, results


def bench_pool(lab):
    """12 builds at once (3 apps, 4 versions) on one builder and on the three of the builders group (goal: 2x)."""
    one = lab.host("-a2")
    lab.playbook("base and middleware", "playbooks/build_base.yml", "-e", "build_host=" + one)
    alone, alone_results = build_burst(lab, "solo", pin=one)
    pooled, pooled_results = build_burst(lab, "pool")
    count = POOL_APPS * POOL_VERSIONS

    def pushed(results):
        values = [r["pushed_bytes"] for r in results]
        return "mean %d, max %d" % (sum(values) / len(values), max(values))

    return [
        ("%d builds on one builder (%s, 2 slots)" % (count, one), "%.1f s" % alone),
        ("%d builds on the pool (3 builders, 2 slots each)" % count, "%.1f s" % pooled),
        ("one builder / pool, wall time (goal >= 2)", "%.2f" % (alone / pooled)),
        ("bytes pushed per build, one builder", pushed(alone_results)),
        ("bytes pushed per build, pool", pushed(pooled_results)),
    ]


NAIVE_DELETE_LOOP = r"""
import json, sys, time
import requests
registry, repository, tags = sys.argv[1], sys.argv[2], json.load(sys.stdin)
session = requests.Session()
session.verify = "/etc/docker/certs.d/%s/ca.crt" % registry
accept = "application/vnd.docker.distribution.manifest.v2+json"
started = time.monotonic()
for tag in tags:
    head = session.head("https://%s/v2/%s/manifests/%s" % (registry, repository, tag), headers={"Accept": accept})
    if head.status_code == 200:
        session.delete("https://%s/v2/%s/manifests/%s" % (registry, repository, head.headers["Docker-Content-Digest"]))
print(time.monotonic() - started)
"""


def plan_seconds():
    candidates = [Candidate("repo%03d" % (n % 200), "1.%d.0" % (n // 200), "img%d" % n, created=n, size=1) for n in range(10_000)]
    in_use = {"img%d" % n for n in range(0, 10_000, 97)}
    best = None
    for _ in range(3):
        started = time.monotonic()
        plan(candidates, keep=5, in_use=in_use, protected={"img5"}, patterns=["release-*"], grace=0, now=1e9)
        elapsed = time.monotonic() - started
        best = elapsed if best is None else min(best, elapsed)
    return best


def bench_cleanup(lab):
    """Retention plan for 10,000 images; host removal and registry prune against plain loops, same sets."""
    rows = [("plan for 10,000 images in 200 repositories (goal < 1 s)", "%.3f s" % plan_seconds())]

    host, count = lab.host("-b2"), 150
    populate_images(
        host, [("bench/rmi", "1.0.%d" % n, False) for n in range(count)] + [("bench/mod", "1.0.%d" % n, False) for n in range(count)]
    )
    loop = lab_exec(
        host,
        "s=$(date +%s.%N); for ref in $(docker images --format '{{.Repository}}:{{.Tag}}' bench/rmi); do docker rmi $ref >/dev/null; done; "
        'e=$(date +%s.%N); awk "BEGIN { print $e - $s }"',
    )
    loop_seconds = float(loop.stdout.strip())
    options = {"policy": {"keep": 0, "grace": 0, "repositories": ["bench/mod"]}, "dangling": False}
    _, run = lab.playbook(
        "prune", "tests/integration/playbooks/image-prune.yml", "-e", "target=" + host, "-e", json.dumps({"prune": options})
    )
    pruned = task_results(run.output, "Show the result")[host]["prune_result"]
    left = lab_exec(host, "docker images -q 'bench/*' | wc -l").stdout.strip()
    rows += [
        ("sequential docker rmi loop, %d images" % count, "%.2f s" % loop_seconds),
        (
            "docker_image_prune removal, same %d images" % len(pruned["images_removed"]),
            "%.2f s (%s left)" % (pruned["durations"]["remove"], left),
        ),
        ("loop / module (goal >= 1.5)", "%.2f" % (loop_seconds / pruned["durations"]["remove"])),
    ]

    seeder, server, tags = lab.host("-a2"), lab.host("-a1"), 1000
    registry = "%s:5000" % lab.hosts[server]
    images = [
        (repo, "1.%d.0" % n, "%s-%d" % (repo, n), "2026-01-01T00:00:00Z") for repo in ("bench/loop", "bench/prune") for n in range(tags)
    ]
    seed_registry(seeder, registry, images)
    naive = subprocess.run(
        ["docker", "exec", "-i", seeder, "python3", "-c", NAIVE_DELETE_LOOP, registry, "bench/loop"],
        input=json.dumps(["1.%d.0" % n for n in range(tags)]),
        capture_output=True,
        text=True,
        check=True,
    )
    naive_seconds = float(naive.stdout.strip())
    options = {
        "registry": registry,
        "policy": {"keep": 0, "grace": 0, "repositories": ["bench/prune"]},
        "gc": False,
        "ca_path": "/etc/docker/registry/tls/ca.crt",
    }
    _, run = lab.playbook(
        "registry prune", "tests/integration/playbooks/registry-prune.yml", "-e", "target=" + server, "-e", json.dumps({"prune": options})
    )
    pruned = task_results(run.output, "Show the result")[server]["prune_result"]
    module_seconds = pruned["durations"]["list"] + pruned["durations"]["delete"]
    remaining = registry_tags(seeder, registry, ["bench/loop", "bench/prune"])
    rows += [
        ("per-tag HEAD + DELETE loop, %d tags" % tags, "%.2f s" % naive_seconds),
        ("registry_prune (list + plan + delete), same %d tags" % len(pruned["removed"]), "%.2f s" % module_seconds),
        ("loop / module", "%.2f" % (naive_seconds / module_seconds)),
        ("same result (tags left: loop, module)", "%d, %d" % (len(remaining["bench/loop"]), len(remaining["bench/prune"]))),
    ]
    return rows


def build_demo(lab, versions):
    """Base, middleware and the demo app at the given versions, in the bench lab's registry."""
    builder = lab.host("-a2")
    registry = "%s:5000" % lab.hosts[lab.host("-a1")]
    lab.playbook("base and middleware", "playbooks/build_base.yml", "-e", "build_host=" + builder)
    for version in versions:
        artifact = tempfile.mkdtemp(prefix="berth-bench-demo-")
        try:
            shutil.copytree(os.path.join(ROOT, "images", "example", "app"), artifact, dirs_exist_ok=True)
            with open(os.path.join(artifact, "version"), "w", encoding="utf-8") as stream:
                stream.write(version + "\n")
            lab.playbook(
                "demo " + version,
                "playbooks/build.yml",
                *("-e", "build_host=" + builder, "-e", "app=demo", "-e", "artifact=" + artifact),
                *("-e", "middleware_image=%s/base/middleware:1" % registry, "-e", "version=" + version),
            )
        finally:
            shutil.rmtree(artifact)
    return registry


def under_load(hosts, action):
    loads = [Load(host, minimum=1000, threads=2, rate=0) for host in hosts]
    time.sleep(2)
    action()
    results = [load.stop() for load in loads]
    return sum(r["ok"] + r["failed"] for r in results), sum(r["failed"] for r in results)


def bench_rollout(lab):
    """Failed requests while every instance is replaced under load, berth versus docker_container; berth's per-host overhead."""
    registry = build_demo(lab, ["b1", "b2", "b3"])
    lab.playbook("rollout b1", "playbooks/rollout.yml", "-e", "app=demo", "-e", "version=b1")
    runs = {}

    def berth():
        runs["berth"] = lab.playbook("rollout b2", "playbooks/rollout.yml", "-v", "-e", "app=demo", "-e", "version=b2")[1]

    berth_total, berth_failed = under_load(sorted(lab.hosts), berth)
    loaded = task_results(runs["berth"].output, "rollout : Start, health-check, switch, drain, stop")
    _, quiet = lab.playbook("rollout b3", "playbooks/rollout.yml", "-v", "-e", "app=demo", "-e", "version=b3")
    unloaded = task_results(quiet.output, "rollout : Start, health-check, switch, drain, stop")

    def overhead(results):
        values = [sum(r["timings"].values()) - r["timings"].get("health", 0) for r in results.values()]
        return "max %.2f s, mean %.2f s" % (max(values), sum(values) / len(values))

    host = lab.host("-c1")
    recreate = ("tests/bench/playbooks/recreate.yml", "-e", "target=" + host)
    lab.playbook("plain b1", *recreate, "-e", "image=%s/lab/demo:b1" % registry)
    plain_total, plain_failed = under_load([host], lambda: lab.playbook("plain b2", *recreate, "-e", "image=%s/lab/demo:b2" % registry))
    return [
        ("berth rollout under load, 5 hosts: requests / failed", "%d / %d" % (berth_total, berth_failed)),
        ("docker_container recreate under load, 1 host: requests / failed", "%d / %d" % (plain_total, plain_failed)),
        ("berth per-host time minus time to healthy (goal <= 2 s)", overhead(unloaded)),
        ("the same, with the load running on every host", overhead(loaded)),
    ]


def bench_engine(lab):
    """Requests through nginx that fail while a changed daemon.json restarts the engine twice (live-restore), per Debian release."""
    build_demo(lab, ["e1"])
    lab.playbook("rollout e1", "playbooks/rollout.yml", "-e", "app=demo", "-e", "version=e1")
    rows = []
    for suffix in ("-b1", "-b2"):
        host = lab.host(suffix)
        release = lab_exec(
            host, ". /etc/os-release && echo $PRETTY_NAME; docker version --format ' Docker {{.Server.Version}}'", check=True
        )

        def restart(host=host):
            for max_file in (4, 3):
                lab.playbook(
                    "daemon.json max-file %d" % max_file,
                    "playbooks/site.yml",
                    "--limit",
                    host,
                    "--tags",
                    "docker",
                    "-e",
                    "docker_daemon_log_max_file=%d" % max_file,
                )

        total, failed = under_load([host], restart)
        rows.append(
            ("two engine restarts under load, %s: requests / failed" % " ".join(release.stdout.split()), "%d / %d" % (total, failed))
        )
    return rows


SCALE_SIZES = (5, 10, 20)
SCALE_BUILDINGS = 4
SCALE_FORKS = (5, 10)


def shipped_forks():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "ansible.cfg"))
    return config.getint("defaults", "forks", fallback=5)


def bench_scale(lab):
    """Idempotent site.yml, cleanup dry run and a fleet rollout at 5, 10 and 20 hosts in 4 buildings, per host (goal: 20 within 1.2x of 5)."""
    rows, per_host = [], {}
    for index, size in enumerate(SCALE_SIZES):
        env = dict(BENCH_LAB, BERTH_LAB_HOSTS=str(size), BERTH_LAB_BUILDINGS=str(SCALE_BUILDINGS))
        # The lab grows in place: a size's hosts are the first of the next's.
        up, _ = timed("lab-up, %d hosts" % size, "playbooks/lab_up.yml", env=env)
        lab.hosts = lab_hosts(lab.inventory)
        first, _ = lab.playbook("site.yml, %d hosts" % size, "playbooks/site.yml")
        again, rerun = lab.playbook("site.yml again, %d hosts" % size, "playbooks/site.yml")
        dry, _ = lab.playbook("cleanup dry run, %d hosts" % size, "playbooks/image_cleanup.yml", "-e", "image_cleanup_dry_run=true")
        if index == 0:
            build_demo(lab, ["s1", "s2"])
        # Every host on s1 first (new hosts get it fresh), then two timed
        # rollouts replace it everywhere: one host per batch (the default),
        # then half of each building per batch.
        lab.playbook("rollout s1, %d hosts" % size, "playbooks/rollout.yml", "-e", "app=demo", "-e", "version=s1")
        serial, _ = lab.playbook("rollout s2, %d hosts" % size, "playbooks/rollout.yml", "-e", "app=demo", "-e", "version=s2")
        halves, _ = lab.playbook(
            "rollout s1 by halves, %d hosts" % size,
            *("playbooks/rollout.yml", "-e", "app=demo", "-e", "version=s1", "-e", "rollout_batch_size=50%"),
        )
        per_host[size] = {
            "site.yml, idempotent": again / size,
            "cleanup dry run": dry / size,
            "rollout, 1 host per batch": serial / size,
            "rollout, 50% of a building per batch": halves / size,
        }
        rows += [
            ("%2d hosts: lab up, first site.yml" % size, "%.1f s, %.1f s" % (up, first)),
            (
                "%2d hosts: idempotent site.yml (changed=%d), cleanup dry run" % (size, rerun.total_changed()),
                "%.1f s, %.1f s" % (again, dry),
            ),
            ("%2d hosts: rollout 1 host per batch, 50%% of a building per batch" % size, "%.1f s, %.1f s" % (serial, halves)),
        ]
    # Forks at the largest size: the shipped 25 (above) against fewer.
    size = SCALE_SIZES[-1]
    for forks in SCALE_FORKS:
        fewer, run = lab.playbook("site.yml, %d forks" % forks, "playbooks/site.yml", env={"ANSIBLE_FORKS": str(forks)})
        rows.append(
            (
                "%2d hosts: idempotent site.yml with %d forks (changed=%d), against the shipped %d"
                % (size, forks, run.total_changed(), shipped_forks()),
                "%.1f s against %.1f s (%.2fx)"
                % (fewer, per_host[size]["site.yml, idempotent"] * size, fewer / (per_host[size]["site.yml, idempotent"] * size)),
            )
        )
    small, large = per_host[SCALE_SIZES[0]], per_host[SCALE_SIZES[-1]]
    for what in small:
        rows.append(
            (
                "%s, s per host at %s (%d vs %d: goal <= 1.2x)" % (what, ", ".join(map(str, SCALE_SIZES)), SCALE_SIZES[-1], SCALE_SIZES[0]),
                "%s (%.2fx)" % (", ".join("%.2f" % per_host[size][what] for size in SCALE_SIZES), large[what] / small[what]),
            )
        )
    return rows


def env_spec(name, building):
    """A 4-service environment: MariaDB, Redis and two app containers."""
    password = "Bench-%s-secret-1" % name
    app = {"image": "env/app:1", "env": {"DB_PASSWORD": password}, "depends_on": ["db", "cache"], "memory": "64m"}
    services = {
        "db": {"image": "env/mariadb:1", "env": {"MARIADB_ROOT_PASSWORD": password}, "volumes": ["data:/var/lib/mysql"], "memory": "256m"},
        "cache": {"image": "env/redis:1", "volumes": ["data:/var/lib/redis"], "memory": "64m"},
        "web": app,
        "worker": app,
    }
    return json.dumps({"env": {"name": name, "building": building, "services": services}})


def bench_env(lab):
    """Create and tear down a 4-service environment alone, then beside 5 others."""
    builder = lab.host("-b1")
    lab.playbook("env images", "playbooks/env_images.yml", "-e", "build_host=%s" % builder)

    def cycle(name):
        create, _ = lab.playbook("create " + name, "playbooks/env_create.yml", "-e", env_spec(name, "bldg_b"))
        again, rerun = lab.playbook("re-create " + name, "playbooks/env_create.yml", "-e", env_spec(name, "bldg_b"))
        teardown, _ = lab.playbook("teardown " + name, "playbooks/env_teardown.yml", "-e", "env_name=" + name)
        return create, again, teardown, rerun.total_changed()

    def best_of_two(name):
        # The faster of two cycles, so a passing stall on the shared machine does not decide the ratio.
        first, second = cycle(name + "-1"), cycle(name + "-2")
        return tuple(min(a, b) for a, b in zip(first[:3], second[:3])) + (max(first[3], second[3]),)

    alone = best_of_two("solo")
    others = ["other%d" % n for n in range(1, 6)]
    for name in others:
        lab.playbook("create " + name, "playbooks/env_create.yml", "-e", env_spec(name, "bldg_b"))
    beside = best_of_two("crowded")
    for name in others:
        lab.playbook("teardown " + name, "playbooks/env_teardown.yml", "-e", "env_name=" + name)
    return [
        ("create, no other environment", "%.1f s" % alone[0]),
        ("re-create (changed=%d)" % alone[3], "%.1f s" % alone[1]),
        ("teardown, no other environment", "%.1f s" % alone[2]),
        ("create, 5 other environments", "%.1f s" % beside[0]),
        ("teardown, 5 other environments", "%.1f s" % beside[2]),
        ("create with 5 others / alone", "%.2f" % (beside[0] / alone[0])),
        ("teardown with 5 others / alone", "%.2f" % (beside[2] / alone[2])),
    ]


HARBOR_PASSWORD = "Bench-harbor-admin-4e7a"


class OpenUrlSession:
    """Berth's Harbor transport before berth_http: open_url per request, so a
    new connection and TLS handshake every time. Same interface as HttpSession."""

    def __init__(self, ca_path=None, validate_certs=True, timeout=30):
        self.ca_path, self.validate_certs, self.timeout = ca_path, validate_certs, timeout
        self.connections_opened = 0

    def request(self, method, url, headers=None, body=None):
        self.connections_opened += 1
        try:
            response = open_url(
                url,
                method=method,
                headers=headers,
                data=body,
                timeout=self.timeout,
                ca_path=self.ca_path,
                validate_certs=self.validate_certs,
            )
        except HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}, exc.read()
        except (URLError, OSError, ValueError) as exc:
            raise HttpError(str(getattr(exc, "reason", exc))) from None
        with response:
            return response.getcode(), {k.lower(): v for k, v in response.headers.items()}, response.read()

    def close(self):
        pass


def project_task(url, ca_path, name):
    """What harbor_project's main() hands converge() for one task, every option set or None."""
    params = {
        "harbor_url": url,
        "username": "admin",
        "password": HARBOR_PASSWORD,
        "ca_path": ca_path,
        "validate_certs": True,
        "state": "present",
        "name": name,
        "public": False,
        "auto_scan": True,
        "prevent_vulnerable": True,
        "severity": "high",
        "storage_quota": harbor_project.quota_bytes("10GB"),
        "proxy_cache_registry": None,
        "purge": False,
    }
    errors = project_errors(params)
    if errors:
        raise SystemExit("; ".join(errors))
    return SimpleNamespace(params=params, check_mode=False, _diff=False)


def apply_projects(url, ca_path, count, open_url_per_request, client_per_task):
    """Two passes of `count` harbor_project tasks: changed per pass, connections opened.
    With client_per_task, a new client for every task, as each task's module run builds its own."""
    changed, sessions, client = [], [], None
    for _pass in range(2):
        changed.append(0)
        for n in range(count):
            task = project_task(url, ca_path, "bench-%03d" % n)
            if client is None or client_per_task:
                client = client_for(task)
                if open_url_per_request:
                    client.session = OpenUrlSession(client.ca_path, client.validate_certs, client.timeout)
                sessions.append(client.session)
            changed[-1] += harbor_project.converge(task, client, task.params)["changed"]
            if client_per_task:
                client.session.close()
    client.session.close()
    return changed, sum(session.connections_opened for session in sessions)


def harbor_run(tls, count, open_url_per_request, client_per_task):
    """One timed run against a fresh stand-in over TLS: (seconds, changed per pass, connections, requests, projects)."""
    ca_path, certfile, keyfile = tls
    with HarborStandIn(HARBOR_PASSWORD, certfile=certfile, keyfile=keyfile) as harbor:
        started = time.monotonic()
        changed, connections = apply_projects(harbor.url, ca_path, count, open_url_per_request, client_per_task)
        elapsed = time.monotonic() - started
        if harbor.violations:
            raise SystemExit("the Harbor stand-in saw answers that break the swagger:\n" + "\n".join(harbor.violations))
        state = harbor.state
        with state.lock:
            projects = sorted(
                (p["name"], tuple(sorted(p["metadata"].items())), state.quota_of(p["project_id"])["storage"])
                for p in state.projects.values()
            )
        return elapsed, changed, connections, len(harbor.requests), projects


def bench_harbor(count=50, rounds=3):
    """50 harbor_project tasks run twice (create, no change) over TLS on loopback: open_url per request versus HttpSession. No lab."""
    ways = {"one client": False, "a client per task": True}
    runs = {(way, side): [] for way in ways for side in ("before", "after")}
    with tempfile.TemporaryDirectory(prefix="berth-bench-tls-") as directory:
        tls = throwaway_tls(directory, ["IP:127.0.0.1"], "berth bench CA")
        for _round in range(rounds):
            # Sides alternate, so a stall of the shared machine does not hit one side only.
            for way, per_task in ways.items():
                runs[way, "before"].append(harbor_run(tls, count, open_url_per_request=True, client_per_task=per_task))
                runs[way, "after"].append(harbor_run(tls, count, open_url_per_request=False, client_per_task=per_task))
    best = {key: min(values) for key, values in runs.items()}
    every = [run for values in runs.values() for run in values]
    rows = []
    for way in ways:
        before, after = best[way, "before"], best[way, "after"]
        rows += [
            ("%s: seconds before / after (best of %d)" % (way, rounds), "%.3f s / %.3f s" % (before[0], after[0])),
            ("%s: before / after" % way, "%.2f" % (before[0] / after[0])),
            ("%s: connections opened, before / after" % way, "%d / %d" % (before[2], after[2])),
        ]
    requests = sorted({run[3] for run in every})
    changed = sorted({tuple(run[1]) for run in every})
    same = len(every[0][4]) == count and all(run[4] == every[0][4] for run in every)
    return rows + [
        ("requests per run, every run", " / ".join(str(n) for n in requests)),
        ("changed per pass (create, again), every run", " / ".join(str(list(c)) for c in changed)),
        ("same %d projects in the stand-in after every run" % count, ("yes (%d)" % len(every[0][4])) if same else "NO"),
    ]


def fleet_inventory(directory, buildings=10, per_building=100):
    """A generated fleet with no connections: `buildings` buildings of
    `per_building` Docker hosts, laid out by berth_lab like the lab, each
    host as if it had reported its digests (image_cleanup_in_use) and listed
    its environment containers (env_existing, two per host in the first
    building, on that building's fixed-IP network)."""
    names = ["bldg_%02d" % n for n in range(1, buildings + 1)]
    topology = {
        "registry": {"host": "h0101", "port": 5000},
        "buildings": {
            name: {"index": n, "hosts": {"h%02d%02d" % (n, k): ["docker_hosts"] for k in range(1, per_building + 1)}}
            for n, name in enumerate(names, 1)
        },
    }
    inventory = lab_inventory(lab_plan(topology, "plan", "10.120.0.0/16"), str(directory), "", str(directory))
    first = inventory["all"]["vars"]["berth_buildings"][names[0]]
    subnet = first["container_subnet"].rsplit(".", 1)[0]
    for building in names:
        for index, host in enumerate(sorted(inventory["all"]["children"][building]["hosts"])):
            containers = []
            if building == names[0]:
                for offset, service in enumerate(("db", "cache")):
                    address = "%s.%d" % (subnet, 20 + 2 * index + offset)
                    containers.append(
                        {
                            "Labels": {LABEL_ENV: "e%03d" % index, LABEL_SERVICE: service},
                            "NetworkSettings": {"Networks": {building_network(building): {"IPAddress": address}}},
                        }
                    )
            digests = ["%s/lab/app%d@sha256:%064x" % (first["registry"], k % 7, index * 3 + k) for k in range(3)]
            inventory["all"]["children"][building]["hosts"][host].update(
                {"image_cleanup_in_use": {"digests": digests}, "env_existing": {"containers": containers}}
            )
    inventory["all"]["vars"]["berth_apps"] = {
        "demo": {"hosts": "docker_hosts", "image": "lab/demo", "container_port": 8080, "listen": 80, "health_http": "/health"}
    }
    path = os.path.join(str(directory), "hosts.yml")
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(inventory, stream)
    return path


def bench_plan(hosts=1000, rounds=2):
    """Controller-side planning over a generated 1,000-host inventory with no connections (goal < 5 s each). No lab."""
    directory = tempfile.mkdtemp(prefix="berth-plan-")
    try:
        inventory = fleet_inventory(directory, per_building=hosts // 10)
        env = {"env": {"name": "bench", "building": "bldg_01", "services": {
            "db": {"image": "env/mariadb:1", "ports": [3306]},
            "cache": {"image": "env/redis:1", "ports": [6379]},
            "app": {"image": "env/app:1", "ports": [8080], "depends_on": ["db", "cache"]},
        }}}  # fmt: skip
        runs = {
            "start-up and the inventory alone": ("tests/bench/playbooks/plan_baseline.yml",),
            "inventory validation (playbooks/validate.yml)": ("playbooks/validate.yml",),
            "the rollout plan (role rollout, plan)": ("tests/bench/playbooks/plan_rollout.yml",),
            "the fleet's deployed digests (image_cleanup)": ("tests/bench/playbooks/plan_digests.yml",),
            "environment address allocation (env create's plan)": ("tests/bench/playbooks/plan_env.yml", "-e", json.dumps(env)),
        }
        best = {}
        for label, args in runs.items():
            for _ in range(rounds):
                elapsed, _run = timed(label, "-i", inventory, *args)
                best[label] = min(best.get(label, elapsed), elapsed)
        base = best.pop("start-up and the inventory alone")
        rows = [("start-up and the inventory alone (%d hosts)" % hosts, "%.1f s" % base)]
        rows += [(label + ", beyond start-up", "%.1f s" % max(0.0, seconds - base)) for label, seconds in best.items()]
        return rows
    finally:
        shutil.rmtree(directory, ignore_errors=True)


BENCHES = {
    "lab": bench_lab,
    "build": bench_build,
    "pool": bench_pool,
    "cleanup": bench_cleanup,
    "rollout": bench_rollout,
    "engine": bench_engine,
    "env": bench_env,
    "harbor": bench_harbor,
    "plan": bench_plan,
    "fanout": bench_fanout,
    "scale": bench_scale,
}
# These run on the stand-ins alone: no bench lab is made for them.
WITHOUT_LAB = {"harbor", "plan"}
# These size the bench lab themselves, so each gets a lab of its own.
OWN_LAB = {"scale"}


def report(name, rows):
    print("\n[%s] %s" % (name, BENCHES[name].__doc__))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print("  %s  %s" % (label.ljust(width), value), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benches to run: %s (default: all)" % ", ".join(BENCHES))
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BENCHES))
    if unknown:
        parser.error("unknown bench: %s" % ", ".join(unknown))
    print("berth bench on %s, %d cores, Python %s" % (platform.node() or "?", os.cpu_count(), platform.python_version()))
    names = args.names or list(BENCHES)
    for name in names:
        if name in WITHOUT_LAB:
            report(name, BENCHES[name]())
    on_lab = [name for name in names if name not in WITHOUT_LAB | OWN_LAB]
    if on_lab:
        with BenchLab() as lab:
            if "lab" not in on_lab:
                bench_lab(lab)  # the other benches need a converged lab
            for name in on_lab:
                report(name, BENCHES[name](lab))
    for name in (name for name in names if name in OWN_LAB):
        with BenchLab() as lab:
            report(name, BENCHES[name](lab))


if __name__ == "__main__":
    main()
