#!/usr/bin/python
"""Restart Docker Engine while nginx keeps serving the apps behind it."""

DOCUMENTATION = r"""
---
module: docker_engine_restart
short_description: Restart Docker Engine without a gap in the apps nginx serves
description:
  - Restarts the engine's systemd unit, for a changed C(daemon.json) or drop-in (after C(systemctl daemon-reload)
    when I(daemon_reload) is set).
  - With C(live-restore) the containers keep running through the restart, but C(docker-proxy), which carries the
    loopback ports that nginx sends each app's traffic to (M(berth.ops.docker_rollout)), goes down with the daemon.
    So before the restart, each app upstream that berth wrote, with one server that is a port a running container
    publishes, gets that container's own address as a C(backup) server, in one graceful nginx reload; the module
    waits (at most 10 s) until nginx's old workers have finished. nginx tries the published port first and, while it
    refuses, the container itself.
  - After the restart the module waits until the engine answers and every such port accepts connections again,
    then writes the upstream files without the backups, in a second reload.
  - It holds the rollout lock of each app it bridges, so that app's rollout on the host waits for the restart, and
    the other way round; all locks share one I(lock_timeout). An app whose lock stays taken is not bridged.
  - A request already inside C(docker-proxy) when the daemon stops is cut; nginx sends an idempotent one (GET, HEAD)
    again to the container, not a POST, and a long-lived stream through the port ends.
  - If the engine does not come back within I(wait_timeout), the module fails and leaves the backups in place, so
    nginx keeps serving from the running containers. The next run of M(berth.ops.docker_rollout) for an app, or
    the next engine restart, removes its backup.
  - The restart is plain, without backups, where nginx does not run or the engine is down already, and with a
    warning where the backups cannot be made (live-restore off in the running engine or in the new C(daemon.json),
    no Docker SDK, nginx refusing its configuration, a rollout holding the lock). It never skips the restart for
    that, since the new C(daemon.json) is already written.
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.attributes
  - berth.ops.attributes.host
  - berth.ops.docker
attributes:
  check_mode:
    details: Reads the upstreams and the containers and reports what it would bridge; restarts nothing.
  diff_mode:
    details: The diff names the restart and, for each app, the address nginx uses while the port is down.
options:
  service:
    description: The engine's systemd unit.
    type: str
    default: docker
  daemon_reload:
    description: Have systemd read changed unit files (a drop-in) before the restart.
    type: bool
    default: false
  daemon_json:
    description: The C(daemon.json) the engine starts with, read for C(live-restore).
    type: path
    default: /etc/docker/daemon.json
  switch_dir:
    description: nginx upstream directory (the proxy role's C(proxy_upstream_dir)).
    type: path
    default: /etc/nginx/berth/upstreams
  state_dir:
    description: Where M(berth.ops.docker_rollout) keeps its locks.
    type: path
    default: /var/lib/berth/rollout
  wait_timeout:
    description: Seconds the engine and the published ports get to come back, 5 to 600.
    type: int
    default: 60
  lock_timeout:
    description: Seconds to wait, for all apps together, for rollouts that hold their locks, 0 to 3600.
    type: int
    default: 600
"""

EXAMPLES = r"""
- name: Restart docker
  berth.ops.docker_engine_restart:
    daemon_reload: true
"""

RETURN = r"""
bridged:
  description: The apps nginx could reach through their container's own address during the restart.
  returned: always
  type: list
  elements: str
  sample: [demo]
backups:
  description: For each bridged app, its published port and the container address used as the backup.
  returned: always
  type: dict
  sample: {demo: {server: '127.0.0.1:20001', backup: '172.17.0.2:8080'}}
restarted:
  description: Whether the engine was restarted (never in check mode).
  returned: always
  type: bool
  sample: true
timings:
  description: Seconds spent bridging, restarting, waiting for the ports and restoring (empty in check mode).
  returned: always
  type: dict
  sample: {bridge: 0.21, restart: 1.8, wait: 0.4, restore: 0.2}
why_plain:
  description: In check mode, why the restart would be plain (no backups), or empty.
  returned: check mode
  type: str
  sample: 'live-restore is off: the containers stop with the engine'
"""

import contextlib
import json
import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.berth.ops.plugins.module_utils.berth_switch import (
    engine_bridges,
    live_restore_kept,
    published_addresses,
    restart_option_errors,
    upstream_backups,
    upstream_servers,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_switch_client import (
    LockTimeout,
    SwitchError,
    app_lock,
    nginx_workers,
    rewrite_upstreams,
)

try:
    import docker

    HAS_DOCKER = True
except ImportError:
    HAS_DOCKER = False

# How long old nginx workers (without the backups) get to finish before the
# engine stops.
SETTLE_SECONDS = 10


def upstreams(directory):
    """{app: text} of the upstream files in the directory."""
    found = {}
    if not os.path.isdir(directory):
        return found
    for entry in sorted(os.listdir(directory)):
        if entry.endswith(".conf") and not entry.startswith("."):
            with open(os.path.join(directory, entry), encoding="utf-8") as stream:
                found[entry[: -len(".conf")]] = stream.read()
    return found


def engine_client(url):
    """The engine, or None when it does not answer (nothing to bridge)."""
    if not HAS_DOCKER:
        return None
    try:
        client = docker.APIClient(base_url=url, version="auto", timeout=30)
        client.ping()
        return client
    except (docker.errors.DockerException, OSError):
        return None


def engine_answers(url):
    client = engine_client(url)
    if client is not None:
        client.close()
    return client is not None


def daemon_json(path):
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return {}


def accepts(server):
    host, _sep, port = server.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def plan(module):
    """The bridged upstreams and the same after the restart, {app: text}
    each, and why there are none when there are none."""
    p = module.params
    if not nginx_workers():
        return {}, {}, ""  # nginx does not run: nothing to serve meanwhile
    if not HAS_DOCKER:
        return {}, {}, missing_required_lib("docker (python3-docker)")
    client = engine_client(p["docker_host"])
    if client is None:
        return {}, {}, ""  # the engine is down already: no container runs behind it
    try:
        if not live_restore_kept(client.info(), daemon_json(p["daemon_json"])):
            return {}, {}, "live-restore is off: the containers stop with the engine"
        containers = []
        for listed in client.containers(filters={"status": "running"}):
            # One a rollout removes meanwhile is not there to bridge to.
            with contextlib.suppress(docker.errors.NotFound):
                containers.append(client.inspect_container(listed["Id"]))
    except docker.errors.DockerException as exc:
        return {}, {}, "the engine did not list its containers: %s" % exc
    finally:
        client.close()
    bridges = engine_bridges(upstreams(p["switch_dir"]), published_addresses(containers))
    return {app: texts[0] for app, texts in bridges.items()}, {app: texts[1] for app, texts in bridges.items()}, ""


def wait_back(module, servers, deadline):
    """Until the engine answers and each published port accepts; the ports
    still down at the deadline."""
    while True:
        # Without the SDK the ports alone say the engine is back.
        engine_up = not HAS_DOCKER or engine_answers(module.params["docker_host"])
        down = [server for server in servers if not accepts(server)]
        if engine_up and not down:
            return []
        if time.monotonic() >= deadline:
            return down or ["the engine at %s" % module.params["docker_host"]]
        time.sleep(0.2)


def wait_settled(switch, seconds):
    """Until nginx's workers from before the backups have finished their
    requests (they still send to the published port alone), at most
    `seconds`."""
    deadline = time.monotonic() + seconds
    while switch is not None and not switch.settled() and time.monotonic() < deadline:
        time.sleep(0.1)


class Restart:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.result = {"changed": False, "restarted": False, "bridged": [], "backups": {}, "timings": {}}

    def describe(self, bridges):
        backups = {app: upstream_backups(text) for app, text in bridges.items()}
        self.result["bridged"] = sorted(app for app in bridges if backups[app])
        self.result["backups"] = {
            app: {"server": upstream_servers(bridges[app])[0], "backup": backups[app][0]} for app in self.result["bridged"]
        }
        if self.module._diff:
            during = "".join(
                "nginx sends %s to %s while the port is down\n" % (app, b["backup"]) for app, b in sorted(self.result["backups"].items())
            )
            self.result["diff"] = {
                "before": "%s: running\n" % self.p["service"],
                "after": "%s: restarted\n%s" % (self.p["service"], during),
            }

    def fail(self, msg):
        self.result["changed"] = self.result["restarted"]
        self.module.fail_json(msg=msg, **self.result)

    def plain(self, why):
        self.module.warn(
            "restarting %s without backups for nginx (%s): the apps it serves get 502 for about a second" % (self.p["service"], why)
        )

    def take_locks(self, stack, apps):
        """Each bridged app's rollout lock, within one lock_timeout for all;
        the apps whose lock another run holds are not bridged."""
        deadline = time.monotonic() + self.p["lock_timeout"]
        locked = set()
        for app in sorted(apps):
            try:
                stack.enter_context(app_lock(self.p["state_dir"], app, max(0, deadline - time.monotonic())))
                locked.add(app)
            except LockTimeout as exc:
                self.plain(str(exc))
        return locked

    def run(self, systemctl):
        p, timings = self.p, self.result["timings"]
        if p["daemon_reload"]:
            rc, out, err = self.module.run_command([systemctl, "daemon-reload"])
            if rc != 0:
                self.fail("systemctl daemon-reload failed: %s; the engine was not restarted" % (err or out).strip())
        with contextlib.ExitStack() as locks:
            started = time.monotonic()
            bridges, _restored, why = plan(self.module)
            locked = self.take_locks(locks, bridges)
            # A rollout may have moved an app while this run waited for its
            # lock; an app deployed meanwhile has no lock here and is left alone.
            bridges, restored, why = plan(self.module)
            bridges = {app: text for app, text in bridges.items() if app in locked}
            restored = {app: text for app, text in restored.items() if app in locked}
            if why:
                self.plain(why)
            try:
                settling = rewrite_upstreams(p["switch_dir"], bridges)
            except SwitchError as exc:
                self.plain("nginx did not take them: %s" % exc)
                bridges = restored = {}
                settling = None
            self.describe(bridges)
            wait_settled(settling, SETTLE_SECONDS)
            timings["bridge"] = round(time.monotonic() - started, 3)
            kept = (
                "; nginx keeps serving %s from the containers' own addresses" % ", ".join(self.result["bridged"])
                if self.result["bridged"]
                else ""
            )
            mark = time.monotonic()
            rc, out, err = self.module.run_command([systemctl, "restart", p["service"]])
            self.result["restarted"] = rc == 0
            if rc != 0:
                self.fail("systemctl restart %s failed: %s%s" % (p["service"], (err or out).strip(), kept))
            timings["restart"] = round(time.monotonic() - mark, 3)
            mark = time.monotonic()
            down = wait_back(
                self.module, [self.result["backups"][app]["server"] for app in self.result["bridged"]], mark + p["wait_timeout"]
            )
            timings["wait"] = round(time.monotonic() - mark, 3)
            if down:
                self.fail("%s did not come back within %ds of the restart%s" % (", ".join(down), p["wait_timeout"], kept))
            mark = time.monotonic()
            try:
                rewrite_upstreams(p["switch_dir"], restored)
            except SwitchError as exc:
                self.fail("the engine is back, but nginx did not take the upstreams without backups: %s%s" % (exc, kept))
            timings["restore"] = round(time.monotonic() - mark, 3)
        self.result["changed"] = True


def main():
    module = AnsibleModule(
        argument_spec={
            "service": {"type": "str", "default": "docker"},
            "daemon_reload": {"type": "bool", "default": False},
            "daemon_json": {"type": "path", "default": "/etc/docker/daemon.json"},
            "switch_dir": {"type": "path", "default": "/etc/nginx/berth/upstreams"},
            "state_dir": {"type": "path", "default": "/var/lib/berth/rollout"},
            "wait_timeout": {"type": "int", "default": 60},
            "lock_timeout": {"type": "int", "default": 600},
            "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
        },
        supports_check_mode=True,
    )
    errors = restart_option_errors(module.params)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)
    restart = Restart(module)
    if module.check_mode:
        bridges, _restored, why = plan(module)
        restart.describe(bridges)
        restart.result.update(changed=True, why_plain=why)
        module.exit_json(**restart.result)
    restart.run(module.get_bin_path("systemctl", required=True))
    module.exit_json(**restart.result)


if __name__ == "__main__":
    main()
