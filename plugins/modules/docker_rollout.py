#!/usr/bin/python
"""Start-first rollout of one app on one host, behind a graceful proxy switch."""

DOCUMENTATION = r"""
---
module: docker_rollout
short_description: Start-first, health-checked rollout of an app container on one host
description:
  - Starts the new version next to the old one (published on a loopback port of its own), waits until
    it is healthy (Docker HEALTHCHECK and/or an HTTP or TCP probe of the container's own address, within
    a deadline), points the host's proxy at it with a graceful reload (waiting until nginx's new workers
    serve), waits until the old workers have exited and the old container has no connections left (or
    C(drain_timeout)), stops it, and keeps the C(retain) stopped versions that served last for an instant
    rollback.
  - Every result, failed or not, says where traffic is (C(serving)) and whether it moved in this run (C(switched)).
    A failure before the switch removes the container it created (never one it reused) and leaves the
    old one serving.
  - One run per app per host at a time (a lock the kernel releases when the process dies). Each run first
    reconciles what an interrupted run left behind, an upstream file that nginx has not loaded, a backup server
    left by an engine restart that did not finish (M(berth.ops.docker_engine_restart)), and running app
    containers no upstream points to.
  - C(action=activate) makes a named existing container serve again (the fleet rollback); C(action=rollback)
    makes the retained version that served last (or of C(version)) serve again; C(action=pull) and C(action=inspect)
    only report what serves and pull the image, or name the rollback target.
  - Check mode says what would be replaced; diff shows the old and new deployment.
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.attributes
  - berth.ops.attributes.host
  - berth.ops.docker
requirements:
  - nginx when C(switch=nginx).
options:
  action:
    description: C(deploy) a version, C(activate) a named container, C(rollback) to the previous version,
      C(pull) the image, C(inspect).
    type: str
    choices:
      - deploy
      - activate
      - rollback
      - pull
      - inspect
    default: deploy
  app:
    description: App name.
    type: str
    required: true
  version:
    description: Version (the image tag for deploy; with rollback and inspect the version to go back to).
    type: str
  image:
    description: Image reference to deploy or pull.
    type: str
  container:
    description: With C(activate), the container to make serve.
    type: str
  container_port:
    description: Port the app listens on inside the container.
    type: int
    default: 8080
  port_range:
    description: Loopback ports for the app's containers.
    type: list
    elements: int
    default:
      - 20000
      - 29999
  env:
    description: Environment (C(RUN_CMD), C(INI_CMD), ...).
    type: dict
    default: {}
  labels:
    description: Extra labels.
    type: dict
    default: {}
  environment:
    description: Environment name for the berth.environment label.
    type: str
    default: ''
  building:
    description: Building for the berth.building label.
    type: str
    default: ''
  cpus:
    description: CPU limit.
    type: float
  memory:
    description: Memory limit like C(512m).
    type: str
  init:
    description: Run an init as PID 1 (reaps zombies, forwards signals).
    type: bool
    default: true
  log_driver:
    description: Log driver; must be one the engine has.
    type: str
    default: json-file
  log_options:
    description: Log options.
    type: dict
    default:
      max-size: 10m
      max-file: '3'
  volumes:
    description: Binds or volumes, C(source:target[:mode]).
    type: list
    elements: str
    default: []
  networks:
    description: Extra networks to attach.
    type: list
    elements: str
    default: []
  command:
    description: Command override.
    type: list
    elements: str
  restart_policy:
    description: 'Restart policy: C(no), C(always), C(unless-stopped), C(on-failure[:N]).'
    type: str
    default: unless-stopped
  health_http:
    description: HTTP path probed on the new container's own address (2xx/3xx is healthy).
    type: str
  health_tcp:
    description: Probe a TCP connect to the new container's own address.
    type: bool
    default: false
  health_interval:
    description: Seconds between probes.
    type: float
    default: 0.5
  health_timeout:
    description: Seconds a probe may take.
    type: float
    default: 2
  health_retries:
    description: Consecutive failed probes, once Docker's own check passed, that fail the rollout before
      the deadline.
    type: int
    default: 10
  deadline:
    description: Seconds the new container has to become healthy.
    type: float
    default: 120
  switch:
    description: How traffic moves.
    type: str
    choices:
      - nginx
      - command
    default: nginx
  switch_dir:
    description: nginx upstream directory.
    type: path
    default: /etc/nginx/berth/upstreams
  switch_command:
    description: Command of C(switch=command) (a gateway API hook).
    type: path
  drain_timeout:
    description: Seconds to wait for the old container's connections to end.
    type: float
    default: 30
  stop_timeout:
    description: Seconds between SIGTERM and SIGKILL for the old container.
    type: int
    default: 10
  retain:
    description: Stopped versions kept for an instant rollback (1 or more).
    type: int
    default: 2
  state_dir:
    description: Where the per-app lock and the record of when each container last served live.
    type: path
    default: /var/lib/berth/rollout
  lock_timeout:
    description: Seconds to wait for another run of the same app on this host.
    type: float
    default: 600
"""

EXAMPLES = r"""
- name: Roll out version r2 of the demo app behind the host's nginx
  berth.ops.docker_rollout:
    app: demo
    version: r2
    image: registry.bldg-a.example:5000/lab/demo:r2
    health_http: /health
    deadline: 120
  register: rollout

- name: Say which retained version a rollback would make serve
  berth.ops.docker_rollout:
    action: inspect
    app: demo
  register: rollback_target

- name: Make the version that served last serve again
  berth.ops.docker_rollout:
    action: rollback
    app: demo
"""

RETURN = r"""
old:
  description: The container that served before (name, image, version, port).
  returned: always
  type: dict
  sample:
    name: demo-r1-3f9a2c
    image: 10.77.1.11:5000/lab/demo:r1
    version: r1
    port: 20412
    running: true
new:
  description: The container this run made serve (or would have).
  returned: always
  type: dict
  sample:
    name: demo-r2-b71e04
    image: 10.77.1.11:5000/lab/demo:r2
    version: r2
serving:
  description: The container traffic goes to now, also after a failure.
  returned: always
  type: dict
  sample:
    name: demo-r2-b71e04
    image: 10.77.1.11:5000/lab/demo:r2
    version: r2
    port: 20413
    running: true
switched:
  description: Whether traffic moved in this run, also after a failure.
  returned: always
  type: bool
  sample: true
reason:
  description: One line on why the run failed.
  returned: failure
  type: str
  sample: 'not healthy within the 120s deadline (Docker health: healthy); last probe: HTTP 503 from /health'
stage:
  description: What the run was doing when it failed.
  returned: failure
  type: str
  sample: waiting for health
target:
  description: With inspect, the container a rollback would make serve.
  returned: when action is inspect
  type: dict
  sample:
    name: demo-r1-3f9a2c
    image: 10.77.1.11:5000/lab/demo:r1
    version: r1
    port: 20412
    running: false
reconciled:
  description: What an interrupted run had left and this run put right.
  returned: always
  type: list
  elements: str
  sample:
    - 'demo-r0-5d60aa ran with no upstream pointing to it: stopped'
would_switch:
  description: In check mode, that a real run would move traffic.
  returned: check mode
  type: bool
  sample: true
timings:
  description: Seconds per phase (lock, pull, start, health, switch, drain, stop, cleanup).
  returned: always
  type: dict
  sample:
    lock: 0.001
    pull: 1.204
    start: 0.612
    health: 2.55
    switch: 0.43
    drain: 1.02
    stop: 0.31
    cleanup: 0.08
health:
  description: The health result of the new container.
  returned: always
  type: dict
  sample:
    docker: healthy
    reason: HTTP 200 from /health
    probe: HTTP 200 from /health
    log: []
removed:
  description: Old versions removed beyond C(retain).
  returned: always
  type: list
  elements: str
  sample:
    - demo-r0-5d60aa
logs:
  description: The new container's last log lines, when it was abandoned before the switch.
  returned: failure before the switch
  type: list
  elements: str
  sample:
    - listening on :8080
    - 'health file missing: /srv/app/healthy'
"""

import contextlib
import http.client
import json
import os
import socket
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.berth.ops.plugins.module_utils.berth_images import parse_reference
from ansible_collections.berth.ops.plugins.module_utils.berth_rollout import (
    CONTAINER_DEFAULTS,
    LABEL_APP,
    LABEL_BUILDING,
    LABEL_CONFIG,
    LABEL_ENVIRONMENT,
    LABEL_PORT,
    LABEL_VERSION,
    HealthWatch,
    abandon_action,
    config_digest,
    container_name,
    describe,
    drain_done,
    free_port,
    last_served,
    listening_ports,
    memory_bytes,
    one_line,
    probe_address,
    probe_kind,
    pull_failure,
    reusable,
    rollback_target,
    spec_errors,
    state_files,
    to_retain,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_switch_client import LockTimeout, SwitchError, app_lock, make_switch

DRAIN_GRACE = 3.0
ENGINE_WAIT = 30

try:
    import docker

    HAS_DOCKER = True
except ImportError:
    HAS_DOCKER = False


class Failed(Exception):
    """A failure with a one-line reason; the result still says where traffic is."""

    def __init__(self, stage, reason, details=""):
        super().__init__(reason)
        self.stage = stage
        self.reason = reason
        self.details = details


class Rollout:
    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.p = module.params
        self.switch = make_switch(self.p["switch"], self.p["app"], self.p["switch_dir"], self.p["switch_command"])
        self.timings = {}
        self.stage = "reading the host"
        self.result = {
            "changed": False,
            "old": {},
            "new": {},
            "serving": {},
            "switched": False,
            "health": {},
            "removed": [],
            "reconciled": [],
            "timings": self.timings,
        }

    def timed(self, phase, function, *args):
        started = time.monotonic()
        try:
            return function(*args)
        finally:
            self.timings[phase] = round(self.timings.get(phase, 0) + time.monotonic() - started, 3)

    # -- the lock and the record of who served when --------------------------------------------
    @contextlib.contextmanager
    def locked(self, name):
        """The app's lock, held for the whole run (berth_switch_client.app_lock)."""
        started = time.monotonic()
        try:
            with app_lock(self.p["state_dir"], name, self.p["lock_timeout"]):
                self.timings["lock"] = round(self.timings.get("lock", 0) + time.monotonic() - started, 3)
                yield
        except LockTimeout as exc:
            raise Failed("waiting for the lock", str(exc)) from None

    def history_path(self):
        return os.path.join(self.p["state_dir"], state_files(self.p["app"])["history"])

    def history(self):
        try:
            with open(self.history_path(), encoding="utf-8") as stream:
                data = json.load(stream)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def record(self, served):
        """Note when containers last served ({name: epoch or None for never});
        names of removed containers drop out."""
        history = self.history()
        history.update(served)
        names = {c["Name"].lstrip("/") for c in self.app_containers()}
        history = {name: when for name, when in history.items() if name in names}
        os.makedirs(self.p["state_dir"], mode=0o755, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=self.p["state_dir"], prefix=".%s.served." % self.p["app"])
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(history, stream, sort_keys=True)
        os.replace(tmp, self.history_path())

    # -- what is there ----------------------------------------------------------------
    def app_containers(self):
        return [
            self.client.inspect_container(c["Id"])
            for c in self.client.containers(all=True, filters={"label": "%s=%s" % (LABEL_APP, self.p["app"])})
        ]

    @staticmethod
    def name_of(container):
        return container["Name"].lstrip("/")

    @staticmethod
    def port_of(container):
        return int(container["Config"]["Labels"].get(LABEL_PORT, 0))

    @staticmethod
    def summary(container):
        if not container:
            return {}
        labels = container["Config"]["Labels"]
        return {
            "name": container["Name"].lstrip("/"),
            "image": container["Config"]["Image"],
            "version": labels.get(LABEL_VERSION),
            "port": int(labels.get(LABEL_PORT, 0)),
            "running": container["State"]["Running"],
        }

    def servers(self):
        """The upstream's servers; more than one is refused, as berth runs
        one container per app per host and would leave the others behind."""
        try:
            servers = self.switch.current()
        except SwitchError as exc:
            raise Failed("reading the upstream", str(exc)) from None
        if len(servers) > 1:
            raise Failed(
                "reading the upstream",
                "the upstream of %s lists %d servers (%s): berth runs one container per app per host; "
                "point it at one of them (or remove the file) and run again" % (self.p["app"], len(servers), ", ".join(servers)),
            )
        return servers

    def serving(self, containers, servers):
        found = [c for c in containers if c["State"]["Running"] and "127.0.0.1:%d" % self.port_of(c) in servers]
        return found[0] if found else None

    def stopped(self, containers, exclude=()):
        history = self.history()
        return [
            {
                "id": c["Id"],
                "name": self.name_of(c),
                "version": c["Config"]["Labels"].get(LABEL_VERSION),
                "created": c["Created"],
                "last_served": last_served(self.name_of(c), history, c["State"]),
                "container": c,
            }
            for c in containers
            if not c["State"]["Running"] and c["Id"] not in exclude
        ]

    def observe(self, old):
        self.result["old"] = self.summary(old)
        self.result["new"] = self.summary(old)
        self.result["serving"] = self.summary(old)

    # -- the image ----------------------------------------------------------------------
    def image_id(self):
        try:
            return self.client.inspect_image(self.p["image"])["Id"]
        except docker.errors.ImageNotFound:
            if self.module.check_mode:
                return "not pulled yet"
        self.stage = "pulling the image"
        ref = parse_reference(self.p["image"])
        try:
            for event in self.timed("pull", lambda: list(self.client.pull(ref.name, tag=ref.tag or "latest", stream=True, decode=True))):
                if isinstance(event, dict) and event.get("error"):
                    raise Failed(self.stage, pull_failure(event["error"], self.p["image"]), event["error"])
            return self.client.inspect_image(self.p["image"])["Id"]
        except docker.errors.APIError as exc:
            raise Failed(self.stage, pull_failure(str(exc.explanation or exc), self.p["image"]), str(exc)) from None

    # -- the new container ----------------------------------------------------------------
    def taken_ports(self):
        taken = {self.port_of(c) for c in self.labelled()}
        tables = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table, encoding="ascii") as stream:
                    tables.append(stream.read())
            except OSError:
                continue
        return taken | listening_ports(*tables)

    def labelled(self):
        return [self.client.inspect_container(c["Id"]) for c in self.client.containers(all=True, filters={"label": LABEL_PORT})]

    def create(self, name, digest):
        p = self.p
        # Not a valid app name, so never an app's own lock.
        with self.locked(".ports"):
            port = free_port(tuple(p["port_range"]), self.taken_ports())
            labels = dict(p["labels"])
            labels.update(
                {
                    LABEL_APP: p["app"],
                    LABEL_VERSION: p["version"],
                    LABEL_CONFIG: digest,
                    LABEL_PORT: str(port),
                    LABEL_ENVIRONMENT: p["environment"],
                    LABEL_BUILDING: p["building"],
                }
            )
            host_config = self.client.create_host_config(
                port_bindings={p["container_port"]: ("127.0.0.1", port)},
                init=p["init"],
                nano_cpus=int(p["cpus"] * 1e9) if p["cpus"] else None,
                mem_limit=memory_bytes(p["memory"]),
                log_config={"type": p["log_driver"], "config": {k: str(v) for k, v in p["log_options"].items()}},
                binds=p["volumes"] or None,
                restart_policy=restart_policy(p["restart_policy"]),
            )
            created = self.client.create_container(
                p["image"],
                name=name,
                command=p["command"],
                environment={k: str(v) for k, v in p["env"].items()},
                labels=labels,
                ports=[p["container_port"]],
                host_config=host_config,
            )
        try:
            for network in p["networks"]:
                self.client.connect_container_to_network(created["Id"], network)
        except docker.errors.APIError as exc:
            self.abandon(created["Id"], True, "attaching networks", "cannot attach a network: %s" % one_line(str(exc)), {})
        return created["Id"], port

    # -- health ---------------------------------------------------------------------------------
    def probe(self, kind, address):
        p = self.p
        host, port = address
        try:
            if kind == "http":
                connection = http.client.HTTPConnection(host, port, timeout=p["health_timeout"])
                connection.request("GET", p["health_http"])
                status = connection.getresponse().status
                connection.close()
                return status < 400, "HTTP %d from %s" % (status, p["health_http"])
            with socket.create_connection((host, port), timeout=p["health_timeout"]) as sock:
                if host == "127.0.0.1":
                    # Only the published port: docker-proxy accepts even when
                    # nothing listens behind it, and then closes at once.
                    sock.settimeout(0.3)
                    try:
                        if sock.recv(1) == b"":
                            return False, "TCP connection to %s:%d closed at once (nothing listens behind it)" % address
                    except TimeoutError:
                        pass
                return True, "TCP connect to %s:%d ok" % address
        except (OSError, http.client.HTTPException) as exc:
            return False, "probe of %s:%d failed: %s" % (host, port, exc)

    def wait_healthy(self, container_id, port):
        p = self.p
        watch = HealthWatch(time.monotonic(), p["deadline"], p["health_retries"])
        while True:
            container = self.client.inspect_container(container_id)
            state = container["State"]
            health = state.get("Health")
            docker_status = health["Status"] if health else "none"
            kind = probe_kind(p["health_http"], p["health_tcp"], docker_status) if state["Running"] else None
            result = None
            if state["Running"] and docker_status in ("healthy", "none") and kind:
                address = probe_address(container["NetworkSettings"].get("Networks"), port, p["container_port"])
                result = self.probe(kind, address)
            verdict, reason = watch.observe(time.monotonic(), state["Running"], state.get("ExitCode"), docker_status, result)
            if verdict != "wait":
                return verdict == "healthy", {
                    "docker": docker_status,
                    "reason": reason,
                    "probe": watch.last_probe,
                    "log": health_log(health),
                }
            time.sleep(p["health_interval"])

    def logs(self, container_id):
        try:
            return self.client.logs(container_id, tail=20).decode(errors="replace").splitlines()
        except docker.errors.APIError:
            return []

    def abandon(self, container_id, created_here, stage, reason, health):
        """Before the switch: the old version keeps serving. A container made
        by this run goes; a reused one (a retained version) only stops."""
        log_lines = self.logs(container_id)
        action = abandon_action(created_here)
        with contextlib.suppress(docker.errors.APIError):
            if action == "remove":
                self.client.remove_container(container_id, force=True)
            else:
                self.client.stop(container_id, self.p["stop_timeout"])
        self.result["health"] = health
        self.result["logs"] = log_lines
        raise Failed(
            stage,
            reason,
            "health output: %s; last log lines: %s" % (" | ".join(health.get("log") or []), " | ".join(log_lines)),
        )

    # -- after the switch -------------------------------------------------------------------------
    def connections(self, container):
        """Established TCP connections to the app port inside a container."""
        pid = self.client.inspect_container(container["Id"])["State"].get("Pid")
        if not pid:
            return 0
        port = "%04X" % self.p["container_port"]
        count = 0
        for table in ("tcp", "tcp6"):
            try:
                with open("/proc/%d/net/%s" % (pid, table), encoding="ascii") as stream:
                    for line in list(stream)[1:]:
                        fields = line.split()
                        if fields[1].rsplit(":", 1)[1] == port and fields[3] == "01":
                            count += 1
            except OSError:
                continue
        return count

    def drain(self, containers):
        started = time.monotonic()
        deadline = started + self.p["drain_timeout"]
        grace_end = started + min(DRAIN_GRACE, self.p["drain_timeout"])
        while True:
            connections = sum(self.connections(c) for c in containers)
            settled = self.switch.settled() if not connections else False
            if drain_done(time.monotonic(), deadline, grace_end, connections, self.switch.observed, settled):
                return
            time.sleep(0.1)

    def retire(self, containers):
        """Drain and stop containers that no longer get traffic."""
        if not containers:
            return
        self.stage = "draining the old version"
        self.timed("drain", self.drain, containers)
        self.stage = "stopping the old version"
        for container in containers:
            self.timed("stop", self.client.stop, container["Id"], self.p["stop_timeout"])

    def cleanup(self, keep_ids):
        self.stage = "removing versions beyond retain"
        _unused, remove = to_retain(self.stopped(self.app_containers(), keep_ids), self.p["retain"])
        for container in remove:
            self.client.remove_container(container["id"], force=True)
        self.result["removed"] = [c["name"] for c in remove]

    # -- what an interrupted run left ----------------------------------------------------------------
    def reconcile(self, containers, old, target_name):
        """nginx made to serve its upstream file, and the running containers
        that no upstream points to (besides the one this run will make
        serve): returned, to stop once traffic is settled."""
        stale = self.switch.stale()
        # An engine restart that did not finish left the container's own
        # address as a backup; another container may get that address.
        backups = self.switch.backups()
        orphans = [c for c in containers if c["State"]["Running"] and c is not old and self.name_of(c) != target_name]
        if stale:
            self.result["reconciled"].append("nginx did not serve its upstream file: reloaded")
        if backups:
            self.result["reconciled"].append("the upstream kept an engine restart's backup %s: removed" % ", ".join(backups))
        for orphan in orphans:
            self.result["reconciled"].append("%s ran with no upstream pointing to it: stopped" % self.name_of(orphan))
        if self.module.check_mode:
            self.result["changed"] = self.result["changed"] or bool(stale or backups or orphans)
            return []
        if stale or backups:
            self.stage = "reloading nginx to serve its upstream file"
            try:
                if backups:
                    self.timed("reconcile", self.switch.point_to, self.switch.current())
                else:
                    self.timed("reconcile", self.switch.apply)
            except SwitchError as exc:
                raise Failed(self.stage, str(exc)) from None
            self.result["changed"] = True
        if orphans:
            self.result["changed"] = True
            history = self.history()
            # One that nginx may have served until the reload above served
            # until now; one never pointed to never served.
            self.record({self.name_of(c): time.time() if stale else history.get(self.name_of(c)) for c in orphans})
        return orphans

    def make_serve(self, target, port, old, orphans, created_here):
        """Health, switch, drain, stop: shared by deploy, activate and rollback."""
        target_id = target["Id"]
        self.stage = "starting the new container"
        if not target["State"]["Running"]:
            try:
                self.timed("start", self.client.start, target_id)
            except docker.errors.APIError as exc:
                self.abandon(target_id, created_here, self.stage, "cannot start: %s" % one_line(str(exc.explanation or exc)), {})
        self.result["changed"] = True
        self.stage = "waiting for health"
        ok, health = self.timed("health", self.wait_healthy, target_id, port)
        self.result["health"] = health
        if not ok:
            self.abandon(target_id, created_here, self.stage, "health: %s" % health.get("reason"), health)
        self.stage = "switching traffic"
        try:
            self.timed("switch", self.switch.point_to, ["127.0.0.1:%d" % port])
        except SwitchError as exc:
            self.abandon(target_id, created_here, self.stage, str(exc), health)
        # Said before anything else can fail: traffic has moved.
        now = dict(self.summary(target), running=True)
        self.result.update(switched=True, new=now, serving=now)
        self.stage = "recording the switch"
        served = {self.name_of(target): time.time()}
        if old:
            served[self.name_of(old)] = time.time()
        self.record(served)
        self.retire(([old] if old else []) + list(orphans))
        self.timed("cleanup", self.cleanup, {target_id})

    # -- actions -----------------------------------------------------------------------------------
    def deploy(self):
        p = self.p
        containers = self.app_containers()
        old = self.serving(containers, self.servers())
        self.observe(old)
        image_id = self.image_id()
        self.stage = "reading the host"
        digest = config_digest(p, image_id)
        name = container_name(p["app"], p["version"], digest)
        self.result["new"] = {"name": name, "image": p["image"], "version": p["version"]}
        orphans = self.reconcile(containers, old, name)
        if old and old["Config"]["Labels"].get(LABEL_CONFIG) == digest:
            self.result["new"] = self.summary(old)
            self.retire(orphans)
            return
        if self.module._diff:
            self.result["diff"] = {"before": describe_container(old) if old else {}, "after": describe(p, p["image"], image_id)}
        if self.module.check_mode:
            self.result.update(changed=True, would_switch=True)
            return
        existing = next((c for c in containers if self.name_of(c) == name), None)
        if existing and reusable(existing["State"]):
            target, port, created_here = existing, self.port_of(existing), False
        else:
            if existing:
                # A start that failed in an earlier run left it: it holds the name.
                self.client.remove_container(existing["Id"], force=True)
                self.result["reconciled"].append("%s was left by a failed start: removed" % name)
            self.stage = "creating the new container"
            new_id, port = self.timed("start", self.create, name, digest)
            target, created_here = self.client.inspect_container(new_id), True
        self.make_serve(target, port, old, orphans, created_here)

    def activate(self, target_name=None, version=None):
        containers = self.app_containers()
        old = self.serving(containers, self.servers())
        self.observe(old)
        if target_name:
            target = next((c for c in containers if self.name_of(c) == target_name), None)
            if target is None:
                raise Failed("finding the container", "app %s has no container %s to activate" % (self.p["app"], target_name))
        else:
            chosen = rollback_target(self.stopped(containers, {old["Id"]} if old else set()), version)
            if chosen is None:
                raise Failed("finding the previous version", no_target(version))
            target = chosen["container"]
        self.result["new"] = self.summary(target)
        orphans = self.reconcile(containers, old, self.name_of(target))
        if old and old["Id"] == target["Id"]:
            self.retire(orphans)
            return
        if self.module.check_mode:
            self.result.update(changed=True, would_switch=True)
            return
        self.make_serve(target, self.port_of(target), old, orphans, False)

    def prepare(self):
        """What serves, and the image pulled (pull) or the rollback target
        named (inspect): nothing else changes."""
        containers = self.app_containers()
        old = self.serving(containers, self.servers())
        self.observe(old)
        if self.p["action"] == "pull":
            present = self.image_present()
            if not present and not self.module.check_mode:
                self.image_id()
                self.result["changed"] = True
            return
        chosen = rollback_target(self.stopped(containers, {old["Id"]} if old else set()), self.p["version"])
        if chosen is None:
            raise Failed("finding the previous version", no_target(self.p["version"]))
        self.result["target"] = self.summary(chosen["container"])

    def image_present(self):
        try:
            self.client.inspect_image(self.p["image"])
            return True
        except docker.errors.ImageNotFound:
            return False


def no_target(version):
    if version:
        return "no retained version %s that served here" % version
    return "no retained version: nothing that served here before is kept"


def restart_policy(text):
    if text == "no":
        return None
    name, _unused, count = text.partition(":")
    return {"Name": name, "MaximumRetryCount": int(count)} if count else {"Name": name}


def describe_container(container):
    """A running deployment, in the shape berth_rollout.describe gives a planned one."""
    config, host = container["Config"], container["HostConfig"]
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    return {
        "image": config["Image"],
        "image_id": container["Image"],
        "version": config["Labels"].get(LABEL_VERSION),
        "env": env,
        "cpus": (host.get("NanoCpus") or 0) / 1e9 or None,
        "memory": host.get("Memory") or None,
        "init": host.get("Init"),
        "volumes": host.get("Binds") or [],
        "networks": sorted(container["NetworkSettings"]["Networks"]),
        "log": {"driver": host["LogConfig"]["Type"], "options": host["LogConfig"].get("Config") or {}},
    }


def health_log(health):
    return [entry.get("Output", "").strip() for entry in (health or {}).get("Log") or []][-3:]


def main():
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "choices": ["deploy", "activate", "rollback", "pull", "inspect"], "default": "deploy"},
            "app": {"type": "str", "required": True},
            "version": {"type": "str"},
            "image": {"type": "str"},
            "container": {"type": "str"},
            "container_port": {"type": "int", "default": 8080},
            "port_range": {"type": "list", "elements": "int", "default": [20000, 29999]},
            "env": {"type": "dict", "default": {}},
            "labels": {"type": "dict", "default": {}},
            "environment": {"type": "str", "default": ""},
            "building": {"type": "str", "default": ""},
            "cpus": {"type": "float"},
            "memory": {"type": "str"},
            "init": {"type": "bool", "default": CONTAINER_DEFAULTS["init"]},
            "log_driver": {"type": "str", "default": CONTAINER_DEFAULTS["log_driver"]},
            "log_options": {"type": "dict", "default": dict(CONTAINER_DEFAULTS["log_options"])},
            "volumes": {"type": "list", "elements": "str", "default": []},
            "networks": {"type": "list", "elements": "str", "default": []},
            "command": {"type": "list", "elements": "str"},
            "restart_policy": {"type": "str", "default": CONTAINER_DEFAULTS["restart_policy"]},
            "health_http": {"type": "str"},
            "health_tcp": {"type": "bool", "default": False},
            "health_interval": {"type": "float", "default": 0.5},
            "health_timeout": {"type": "float", "default": 2},
            "health_retries": {"type": "int", "default": 10},
            "deadline": {"type": "float", "default": 120},
            "switch": {"type": "str", "choices": ["nginx", "command"], "default": "nginx"},
            "switch_dir": {"type": "path", "default": "/etc/nginx/berth/upstreams"},
            "switch_command": {"type": "path"},
            "drain_timeout": {"type": "float", "default": 30},
            "stop_timeout": {"type": "int", "default": 10},
            "retain": {"type": "int", "default": 2},
            "state_dir": {"type": "path", "default": "/var/lib/berth/rollout"},
            "lock_timeout": {"type": "float", "default": 600},
            "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
        },
        required_if=[
            ("action", "deploy", ["version", "image"]),
            ("action", "pull", ["image"]),
            ("action", "activate", ["container"]),
            ("switch", "command", ["switch_command"]),
        ],
        supports_check_mode=True,
    )
    p = module.params
    spec = {key: value for key, value in p.items() if value is not None and key not in ("image", "container")}
    spec["port_range"] = tuple(p["port_range"])
    errors = spec_errors(spec)
    if p["image"] is not None:
        try:
            parse_reference(p["image"])
        except ValueError as exc:
            errors.append("image: %s" % exc)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker (python3-docker)"))
    client, log_drivers = connect(module, p["docker_host"])
    if p["action"] in ("deploy", "pull") and log_drivers and p["log_driver"] not in log_drivers:
        module.fail_json(msg="log_driver: %r is not a log driver of this engine (%s)" % (p["log_driver"], ", ".join(sorted(log_drivers))))
    rollout = Rollout(module, client)
    try:
        rollout.switch.check()
    except SwitchError as exc:
        module.fail_json(msg=str(exc), reason=str(exc), **rollout.result)
    try:
        if p["action"] in ("pull", "inspect"):
            rollout.prepare()
        elif module.check_mode:
            run(rollout)
        else:
            with rollout.locked(p["app"]):
                run(rollout)
    except Failed as exc:
        fail(module, rollout, exc.stage, exc.reason, exc.details)
    except Exception as exc:
        # Whatever broke (the engine gone mid-drain, say): the result still
        # says where traffic is.
        fail(module, rollout, rollout.stage, one_line("%s: %s" % (type(exc).__name__, exc)), "")
    module.exit_json(**rollout.result)


def connect(module, url):
    """The engine and its log drivers. An engine that is restarting gets
    ENGINE_WAIT seconds to answer."""
    deadline = time.monotonic() + ENGINE_WAIT
    while True:
        try:
            client = docker.APIClient(base_url=url, version="auto", timeout=120)
            client.ping()
            return client, (client.info().get("Plugins") or {}).get("Log") or []
        except (docker.errors.DockerException, OSError) as exc:
            if time.monotonic() >= deadline:
                module.fail_json(msg="cannot reach the Docker engine at %s: %s" % (url, exc))
            time.sleep(1)


def run(rollout):
    p = rollout.p
    if p["action"] == "deploy":
        rollout.deploy()
    elif p["action"] == "activate":
        rollout.activate(target_name=p["container"])
    else:
        rollout.activate(version=p["version"])


def fail(module, rollout, stage, reason, details):
    result = rollout.result
    serving = result.get("serving") or {}
    where = "traffic goes to %s" % serving["name"] if serving.get("name") else "no container of the app serves"
    msg = "%s of %s %s failed while %s: %s; %s" % (
        module.params["action"],
        module.params["app"],
        module.params.get("version") or module.params.get("container") or "",
        stage,
        reason,
        where,
    )
    if details:
        msg += "; " + details
    result["changed"] = bool(result["changed"] or result["switched"])
    module.fail_json(msg=msg, reason=reason, stage=stage, **result)


if __name__ == "__main__":
    main()
