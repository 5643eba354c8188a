#!/usr/bin/python
"""Restart Docker Engine while nginx keeps serving the apps behind it."""

DOCUMENTATION = r"""
---
module: docker_engine_restart
short_description: Restart Docker Engine without a gap in the apps nginx serves
description:
  - Restarts the engine's systemd unit, for a changed C(daemon.json) or drop-in.
  - With C(live-restore) the containers keep running through the restart, but C(docker-proxy), which carries the
    loopback ports that nginx sends each app's traffic to (M(berth.ops.docker_rollout)), goes down with the daemon.
    So before the restart, each app upstream that berth wrote, with one server that is a port a running container
    publishes, gets that container's own address as a C(backup) server, in one graceful nginx reload. nginx tries
    the published port first and, while it fails, the container itself.
  - After the restart the module waits until the engine answers and every such port accepts connections again,
    then writes the upstream files without the backups, in a second reload.
  - Each app's rollout lock is held throughout, so a rollout on the host waits for the restart, and the other way
    round.
  - If the engine does not come back within I(wait_timeout), the module fails and leaves the backups in place, so
    nginx keeps serving from the running containers. The next run of M(berth.ops.docker_rollout) for an app, or
    the next engine restart, removes its backup.
  - Hosts without berth's upstreams, or whose nginx does not run, get a plain restart.
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
    description: Seconds to wait for a rollout that holds an app's lock, 0 to 3600.
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
  description: Seconds spent bridging, restarting, waiting for the ports and restoring.
  returned: when restarted
  type: dict
  sample: {bridge: 0.21, restart: 1.8, wait: 0.4, restore: 0.2}
"""

import contextlib
import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.berth.ops.plugins.module_utils.berth_switch import (
    engine_bridges,
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


def running_containers(client):
    if client is None:
        return []
    return [client.inspect_container(c["Id"]) for c in client.containers(filters={"status": "running"})]


def accepts(server):
    host, _sep, port = server.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def plan(module):
    """The bridged upstreams and the same after the restart, {app: text} each."""
    p = module.params
    if not nginx_workers():
        return {}, {}  # nginx does not run: it has nothing to serve meanwhile
    bridges = engine_bridges(upstreams(p["switch_dir"]), published_addresses(running_containers(engine_client(p["docker_host"]))))
    return {app: texts[0] for app, texts in bridges.items()}, {app: texts[1] for app, texts in bridges.items()}


def wait_back(module, servers, deadline):
    """Until the engine answers and each published port accepts; the ports
    still down at the deadline."""
    while True:
        # Without the SDK the ports alone say the engine is back.
        engine_up = not HAS_DOCKER or engine_client(module.params["docker_host"]) is not None
        down = [server for server in servers if not accepts(server)]
        if engine_up and not down:
            return []
        if time.monotonic() >= deadline:
            return down or ["the engine at %s" % module.params["docker_host"]]
        time.sleep(0.2)


def main():
    module = AnsibleModule(
        argument_spec={
            "service": {"type": "str", "default": "docker"},
            "daemon_reload": {"type": "bool", "default": False},
            "switch_dir": {"type": "path", "default": "/etc/nginx/berth/upstreams"},
            "state_dir": {"type": "path", "default": "/var/lib/berth/rollout"},
            "wait_timeout": {"type": "int", "default": 60},
            "lock_timeout": {"type": "int", "default": 600},
            "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
        },
        supports_check_mode=True,
    )
    p = module.params
    errors = restart_option_errors(p)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)
    if not HAS_DOCKER:
        module.warn(
            "%s: no backups for nginx, whose apps get 502 while docker-proxy is down" % missing_required_lib("docker (python3-docker)")
        )
    systemctl = module.get_bin_path("systemctl", required=True)
    bridges, restored = plan(module)
    result = {"changed": True, "restarted": False, "bridged": sorted(bridges), "backups": {}, "timings": {}}

    def describe(texts):
        result["bridged"] = sorted(texts)
        result["backups"] = {app: {"server": upstream_servers(text)[0], "backup": upstream_backups(text)[0]} for app, text in texts.items()}

    describe(bridges)
    if module._diff:
        during = "".join(
            "nginx sends %s to %s while the port is down\n" % (app, b["backup"]) for app, b in sorted(result["backups"].items())
        )
        result["diff"] = {"before": "%s: running\n" % p["service"], "after": "%s: restarted\n%s" % (p["service"], during)}
    if module.check_mode:
        module.exit_json(**result)
    timings = result["timings"]
    started = time.monotonic()
    with contextlib.ExitStack() as locks:
        try:
            for app in sorted(bridges):
                locks.enter_context(app_lock(p["state_dir"], app, p["lock_timeout"]))
        except LockTimeout as exc:
            module.fail_json(msg="engine not restarted: %s" % exc, **result)
        # A rollout may have moved an app while this run waited for its lock;
        # an app deployed meanwhile has no lock here and is left alone.
        locked = set(bridges)
        bridges, restored = plan(module)
        bridges = {app: text for app, text in bridges.items() if app in locked}
        restored = {app: text for app, text in restored.items() if app in locked}
        describe(bridges)
        try:
            rewrite_upstreams(p["switch_dir"], bridges)
        except SwitchError as exc:
            module.fail_json(msg="engine not restarted: nginx did not take the backups: %s" % exc, **result)
        timings["bridge"] = round(time.monotonic() - started, 3)
        kept = "; nginx keeps serving %s from the containers' own addresses" % ", ".join(sorted(bridges)) if bridges else ""
        mark = time.monotonic()
        if p["daemon_reload"]:
            rc, out, err = module.run_command([systemctl, "daemon-reload"])
            if rc != 0:
                module.fail_json(msg="systemctl daemon-reload failed: %s%s" % ((err or out).strip(), kept), **result)
        rc, out, err = module.run_command([systemctl, "restart", p["service"]])
        result["restarted"] = rc == 0
        if rc != 0:
            module.fail_json(msg="systemctl restart %s failed: %s%s" % (p["service"], (err or out).strip(), kept), **result)
        timings["restart"] = round(time.monotonic() - mark, 3)
        mark = time.monotonic()
        down = wait_back(module, sorted({upstream_servers(text)[0] for text in bridges.values()}), mark + p["wait_timeout"])
        timings["wait"] = round(time.monotonic() - mark, 3)
        if down:
            module.fail_json(msg="%s did not come back within %ds of the restart%s" % (", ".join(down), p["wait_timeout"], kept), **result)
        mark = time.monotonic()
        try:
            rewrite_upstreams(p["switch_dir"], restored)
        except SwitchError as exc:
            module.fail_json(msg="the engine is back, but nginx did not take the upstreams without backups: %s%s" % (exc, kept), **result)
        timings["restore"] = round(time.monotonic() - mark, 3)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
