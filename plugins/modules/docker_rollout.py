#!/usr/bin/python
"""Start-first rollout of one app on one host, behind a graceful proxy switch."""

DOCUMENTATION = r"""
---
module: docker_rollout
short_description: Start-first, health-checked rollout of an app container on one host
description:
  - Starts the new version next to the old one (published on a loopback port of its own),
    waits until it is healthy (Docker HEALTHCHECK and/or an HTTP or TCP probe, within a
    deadline), points the host's proxy at it with a graceful reload (waiting until nginx's
    new workers serve), waits until the old workers have exited and the old container has
    no connections left (or C(drain_timeout)), stops it, and keeps the last
    C(retain) stopped versions for an instant rollback.
  - Any failure before the switch removes the new container and leaves the old one serving;
    the message carries the health output and the last log lines.
  - C(action=activate) makes an existing container (a retained version) serve again: the
    fleet rollback.
  - Check mode says what would be replaced; diff shows the old and new deployment.
requirements:
  - Docker SDK for Python (python3-docker); nginx when C(switch=nginx).
options:
  action: {description: C(deploy) a version or C(activate) an existing container., type: str, choices: [deploy, activate], default: deploy}
  app: {description: App name., type: str, required: true}
  version: {description: Version (the image tag for deploy)., type: str}
  image: {description: Image reference to deploy., type: str}
  container: {description: With C(activate), the container to make serve., type: str}
  container_port: {description: Port the app listens on inside the container., type: int, default: 8080}
  port_range: {description: Loopback ports for the app's containers., type: list, elements: int, default: [20000, 29999]}
  env: {description: Environment (C(RUN_CMD), C(INI_CMD), ...)., type: dict, default: {}}
  labels: {description: Extra labels., type: dict, default: {}}
  environment: {description: Environment name for the berth.environment label., type: str, default: ""}
  building: {description: Building for the berth.building label., type: str, default: ""}
  cpus: {description: CPU limit., type: float}
  memory: {description: Memory limit like C(512m)., type: str}
  init: {description: Run an init as PID 1 (reaps zombies, forwards signals)., type: bool, default: true}
  log_driver: {description: Log driver., type: str, default: json-file}
  log_options: {description: Log options., type: dict, default: {max-size: 10m, max-file: "3"}}
  volumes: {description: "Binds or volumes, C(source:target[:mode]).", type: list, elements: str, default: []}
  networks: {description: Extra networks to attach., type: list, elements: str, default: []}
  command: {description: Command override., type: list, elements: str}
  restart_policy: {description: Restart policy., type: str, default: unless-stopped}
  health_http: {description: HTTP path probed on the new container (2xx/3xx is healthy)., type: str}
  health_tcp: {description: Probe a TCP connect to the new container., type: bool, default: false}
  health_interval: {description: Seconds between probes., type: float, default: 0.5}
  health_timeout: {description: Seconds a probe may take., type: float, default: 2}
  health_retries: {description: Consecutive failed probes (once Docker's check passed) that fail the rollout., type: int, default: 10}
  deadline: {description: Seconds the new container has to become healthy., type: float, default: 120}
  switch: {description: How traffic moves., type: str, choices: [nginx, command], default: nginx}
  switch_dir: {description: nginx upstream directory., type: path, default: /etc/nginx/berth/upstreams}
  switch_command: {description: Command of C(switch=command) (a gateway API hook)., type: path}
  drain_timeout: {description: Seconds to wait for the old container's connections to end., type: float, default: 30}
  stop_timeout: {description: Seconds between SIGTERM and SIGKILL for the old container., type: int, default: 10}
  retain: {description: Stopped versions kept for an instant rollback., type: int, default: 2}
  docker_host: {description: Docker daemon URL., type: str, default: "unix:///var/run/docker.sock"}
"""

RETURN = r"""
old: {description: The container that served before (name, image, version, port)., returned: always, type: dict}
new: {description: The container that serves now., returned: always, type: dict}
switched: {description: Whether traffic moved., returned: always, type: bool}
timings: {description: Seconds per phase (pull, start, health, switch, drain, stop, cleanup)., returned: always, type: dict}
health: {description: The health result of the new container., returned: always, type: dict}
removed: {description: Old versions removed beyond C(retain)., returned: always, type: list}
"""

import contextlib
import http.client
import socket
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.berth_images import parse_reference
from ansible.module_utils.berth_rollout import (
    LABEL_APP,
    LABEL_BUILDING,
    LABEL_CONFIG,
    LABEL_ENVIRONMENT,
    LABEL_PORT,
    LABEL_VERSION,
    config_digest,
    container_name,
    describe,
    free_port,
    memory_bytes,
    spec_errors,
    to_retain,
)
from ansible.module_utils.berth_switch import SwitchError, make_switch

DRAIN_GRACE = 3.0

try:
    import docker

    HAS_DOCKER = True
except ImportError:
    HAS_DOCKER = False


class Rollout:
    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.p = module.params
        self.switch = make_switch(self.p["switch"], self.p["app"], self.p["switch_dir"], self.p["switch_command"])
        self.timings = {}

    def timed(self, phase, function, *args):
        started = time.monotonic()
        try:
            return function(*args)
        finally:
            self.timings[phase] = round(self.timings.get(phase, 0) + time.monotonic() - started, 3)

    # -- what is there ----------------------------------------------------------------
    def app_containers(self):
        return [
            self.client.inspect_container(c["Id"])
            for c in self.client.containers(all=True, filters={"label": "%s=%s" % (LABEL_APP, self.p["app"])})
        ]

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

    def serving(self, containers):
        servers = set(self.switch.current())
        found = [c for c in containers if c["State"]["Running"] and "127.0.0.1:%d" % self.port_of(c) in servers]
        return found[0] if found else None

    # -- the new container ----------------------------------------------------------------
    def image_id(self):
        try:
            return self.client.inspect_image(self.p["image"])["Id"]
        except docker.errors.ImageNotFound:
            if self.module.check_mode:
                return "not pulled yet"
            ref = parse_reference(self.p["image"])
            try:
                self.timed("pull", self.client.pull, ref.name, ref.tag or "latest")
                return self.client.inspect_image(self.p["image"])["Id"]
            except docker.errors.APIError as exc:
                self.module.fail_json(msg="cannot pull %s: %s" % (self.p["image"], exc))

    def create(self, name, digest, port):
        p = self.p
        env = dict(p["env"])
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
            restart_policy={"Name": p["restart_policy"]} if p["restart_policy"] != "no" else None,
        )
        created = self.client.create_container(
            p["image"],
            name=name,
            command=p["command"],
            environment={k: str(v) for k, v in env.items()},
            labels=labels,
            ports=[p["container_port"]],
            host_config=host_config,
        )
        for network in p["networks"]:
            self.client.connect_container_to_network(created["Id"], network)
        return created["Id"]

    # -- health ---------------------------------------------------------------------------------
    def probe(self, port):
        p = self.p
        try:
            if p["health_http"]:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=p["health_timeout"])
                connection.request("GET", p["health_http"])
                status = connection.getresponse().status
                connection.close()
                return status < 400, "HTTP %d from %s" % (status, p["health_http"])
            if p["health_tcp"]:
                with socket.create_connection(("127.0.0.1", port), timeout=p["health_timeout"]):
                    return True, "TCP connect ok"
        except (OSError, http.client.HTTPException) as exc:
            return False, "probe failed: %s" % exc
        return True, "no probe configured"

    def wait_healthy(self, container_id, port):
        p = self.p
        deadline = time.monotonic() + p["deadline"]
        failures, probe_result = 0, None
        while True:
            state = self.client.inspect_container(container_id)["State"]
            health = state.get("Health")
            docker_status = health["Status"] if health else "none"
            if not state["Running"]:
                return False, {
                    "docker": docker_status,
                    "reason": "the container exited with code %s" % state.get("ExitCode"),
                    "log": health_log(health),
                }
            if docker_status == "unhealthy":
                return False, {"docker": docker_status, "reason": "Docker's health check reports unhealthy", "log": health_log(health)}
            if docker_status in ("healthy", "none"):
                ok, probe_result = self.probe(port)
                if ok:
                    return True, {"docker": docker_status, "probe": probe_result, "log": health_log(health)}
                failures += 1
                if failures >= p["health_retries"]:
                    return False, {"docker": docker_status, "reason": probe_result, "log": health_log(health)}
            if time.monotonic() > deadline:
                return False, {
                    "docker": docker_status,
                    "reason": "not healthy within the %ss deadline (Docker health: %s)" % (p["deadline"], docker_status),
                    "probe": probe_result,
                    "log": health_log(health),
                }
            time.sleep(p["health_interval"])

    def logs(self, container_id):
        try:
            return self.client.logs(container_id, tail=20).decode(errors="replace").splitlines()
        except docker.errors.APIError:
            return []

    def abandon(self, container_id, health, stage):
        """Before the switch: remove the new container; the old one keeps serving."""
        log_lines = self.logs(container_id)
        with contextlib.suppress(docker.errors.APIError):
            self.client.remove_container(container_id, force=True)
        self.module.fail_json(
            msg="rollout of %s %s failed while %s, the old version keeps serving: %s; health output: %s; last log lines: %s"
            % (
                self.p["app"],
                self.p.get("version") or "",
                stage,
                health.get("reason"),
                " | ".join(health.get("log") or []),
                " | ".join(log_lines),
            ),
            health=health,
            logs=log_lines,
            timings=self.timings,
            switched=False,
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

    def drain(self, container):
        started = time.monotonic()
        deadline = started + self.p["drain_timeout"]
        # The proxy's old workers may still open a connection for a request they
        # had half read; give them a short grace to exit. They can live on for a
        # long-lived connection of another app, so past the grace only this
        # container's connections count.
        grace = started + min(DRAIN_GRACE, self.p["drain_timeout"])
        while time.monotonic() < deadline:
            if self.connections(container) == 0 and (time.monotonic() >= grace or self.switch.settled()):
                break
            time.sleep(0.1)

    def cleanup(self, keep_ids):
        stopped = [
            {"id": c["Id"], "name": c["Name"].lstrip("/"), "created": c["Created"]}
            for c in self.app_containers()
            if not c["State"]["Running"] and c["Id"] not in keep_ids
        ]
        _, remove = to_retain(stopped, self.p["retain"])
        for container in remove:
            self.client.remove_container(container["id"], force=True)
        return [c["name"] for c in remove]

    def make_serve(self, new_id, port, old, result):
        """Health, switch, drain, stop: shared by deploy and activate."""
        ok, health = self.timed("health", self.wait_healthy, new_id, port)
        result["health"] = health
        if not ok:
            self.abandon(new_id, health, "waiting for health")
        try:
            self.timed("switch", self.switch.point_to, ["127.0.0.1:%d" % port])
        except SwitchError as exc:
            self.abandon(new_id, dict(health, reason=str(exc)), "switching traffic")
        result["switched"] = True
        if old:
            self.timed("drain", self.drain, old)
            self.timed("stop", self.client.stop, old["Id"], self.p["stop_timeout"])
        result["removed"] = self.timed("cleanup", self.cleanup, {new_id})
        result["new"] = self.summary(self.client.inspect_container(new_id))
        result["changed"] = True
        return result

    # -- actions -----------------------------------------------------------------------------------
    def deploy(self):
        p = self.p
        containers = self.app_containers()
        old = self.serving(containers)
        image_id = self.image_id()
        digest = config_digest(p, image_id)
        name = container_name(p["app"], p["version"], digest)
        result = {
            "changed": False,
            "old": self.summary(old),
            "new": self.summary(old),
            "switched": False,
            "health": {},
            "removed": [],
            "timings": self.timings,
        }
        if old and old["Config"]["Labels"].get(LABEL_CONFIG) == digest:
            return result
        if self.module._diff:
            result["diff"] = {"before": describe_container(old) if old else {}, "after": describe(p, p["image"], image_id)}
        if self.module.check_mode:
            result.update(changed=True, new={"name": name, "image": p["image"], "version": p["version"]})
            return result
        existing = next((c for c in containers if c["Name"].lstrip("/") == name), None)
        if existing:
            new_id, port = existing["Id"], self.port_of(existing)
        else:
            taken = {self.port_of(c) for c in self.client_containers_with_ports()}
            port = free_port(tuple(p["port_range"]), taken)
            new_id = self.timed("start", self.create, name, digest, port)
        self.timed("start", self.client.start, new_id)
        return self.make_serve(new_id, port, old, result)

    def client_containers_with_ports(self):
        return [self.client.inspect_container(c["Id"]) for c in self.client.containers(all=True, filters={"label": LABEL_PORT})]

    def activate(self):
        containers = self.app_containers()
        old = self.serving(containers)
        target = next((c for c in containers if c["Name"].lstrip("/") == self.p["container"]), None)
        if target is None:
            self.module.fail_json(msg="app %s has no container %s to activate" % (self.p["app"], self.p["container"]))
        result = {
            "changed": False,
            "old": self.summary(old),
            "new": self.summary(target),
            "switched": False,
            "health": {},
            "removed": [],
            "timings": self.timings,
        }
        if old and old["Id"] == target["Id"]:
            return result
        if self.module.check_mode:
            result["changed"] = True
            return result
        self.timed("start", self.client.start, target["Id"])
        return self.make_serve(target["Id"], self.port_of(target), old, result)


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
            "action": {"type": "str", "choices": ["deploy", "activate"], "default": "deploy"},
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
            "init": {"type": "bool", "default": True},
            "log_driver": {"type": "str", "default": "json-file"},
            "log_options": {"type": "dict", "default": {"max-size": "10m", "max-file": "3"}},
            "volumes": {"type": "list", "elements": "str", "default": []},
            "networks": {"type": "list", "elements": "str", "default": []},
            "command": {"type": "list", "elements": "str"},
            "restart_policy": {"type": "str", "default": "unless-stopped"},
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
            "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
        },
        required_if=[
            ("action", "deploy", ["version", "image"]),
            ("action", "activate", ["container"]),
            ("switch", "command", ["switch_command"]),
        ],
        supports_check_mode=True,
    )
    p = module.params
    spec = dict(p, port_range=tuple(p["port_range"]) if len(p["port_range"]) == 2 else None, version=p["version"] or "activate")
    errors = spec_errors(spec)
    if p["action"] == "deploy":
        try:
            parse_reference(p["image"])
        except ValueError as exc:
            errors.append("image: %s" % exc)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker (python3-docker)"))
    try:
        client = docker.APIClient(base_url=p["docker_host"], version="auto", timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        module.fail_json(msg="cannot reach the Docker engine at %s: %s" % (p["docker_host"], exc))
    rollout = Rollout(module, client)
    try:
        rollout.switch.check()
    except SwitchError as exc:
        module.fail_json(msg=str(exc))
    try:
        result = rollout.deploy() if p["action"] == "deploy" else rollout.activate()
    except (docker.errors.APIError, ValueError) as exc:
        module.fail_json(msg="rollout of %s failed: %s" % (p["app"], exc), timings=rollout.timings)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
