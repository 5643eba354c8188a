"""Moving an app's traffic from one container to another.

A switch knows where traffic goes now and can point it elsewhere. nginx on
the host is the default; a gateway API can be added as another class with
the same methods (CommandSwitch shows the shape). The decisions they act on
are in berth_switch.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
import time

from ansible_collections.berth.ops.plugins.module_utils.berth_rollout import state_files
from ansible_collections.berth.ops.plugins.module_utils.berth_switch import (
    nginx_stale,
    one_line,
    reload_applied,
    upstream_backups,
    upstream_config,
    upstream_servers,
    written_by_berth,
)

WORKER_TITLE = "nginx: worker process"


class SwitchError(Exception):
    pass


class LockTimeout(Exception):
    pass


@contextlib.contextmanager
def app_lock(state_dir, name, timeout):
    """The lock a run that moves an app's traffic holds (docker_rollout, an
    engine restart): flock on a file in the rollout's state directory,
    released by the kernel when the process ends, however it ends."""
    os.makedirs(state_dir, mode=0o755, exist_ok=True)
    fd = os.open(os.path.join(state_dir, state_files(name)["lock"]), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - started >= timeout:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                    raise LockTimeout(
                        "another run holds the %s lock on this host (%s); gave up after %ss" % (name, holder, timeout)
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, ("pid %d since %s\n" % (os.getpid(), time.strftime("%Y-%m-%dT%H:%M:%S%z"))).encode(), 0)
        yield
    finally:
        os.close(fd)


def nginx_workers(proc="/proc", pid_file="/run/nginx.pid"):
    """{pid: process title} of the workers of the host's nginx: children of
    the master in `pid_file` only, never the nginx of a container."""
    try:
        with open(pid_file, encoding="ascii") as stream:
            master = int(stream.read().strip())
    except (OSError, ValueError):
        return {}
    workers = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, "stat"), encoding="utf-8", errors="replace") as stream:
                parent = int(stream.read().rsplit(")", 1)[1].split()[1])
            if parent != master:
                continue
            with open(os.path.join(proc, entry, "cmdline"), "rb") as stream:
                title = stream.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except (OSError, IndexError, ValueError):
            continue
        if title.startswith(WORKER_TITLE):
            workers[int(entry)] = title
    return workers


def file_state(path):
    """What identifies one write of a file: its content and its mtime (a
    rewrite of the same content after a manual edit counts as new)."""
    try:
        with open(path, "rb") as stream:
            content = stream.read()
        return {"sha256": hashlib.sha256(content).hexdigest(), "mtime_ns": os.stat(path).st_mtime_ns}
    except FileNotFoundError:
        return None


class NginxSwitch:
    """Rewrites /etc/nginx/berth/upstreams/<app>.conf and reloads nginx
    gracefully: old workers finish their requests, new ones use the new
    upstream, so no request is dropped. point_to returns once the new workers
    serve; settled() tells when the old ones have finished. After each
    reload it records which write of the file nginx took (.<app>.applied),
    so a later run knows whether nginx serves the file."""

    def __init__(self, app, directory="/etc/nginx/berth/upstreams", nginx="nginx", workers=nginx_workers, reload_timeout=30):
        self.app = app
        self.path = os.path.join(directory, "%s.conf" % app)
        self.applied_path = os.path.join(directory, ".%s.applied" % app)
        self.nginx = nginx
        self.workers = workers
        self.reload_timeout = reload_timeout
        self.retiring = set()
        # Whether the last reload's workers could be seen at all.
        self.observed = True

    def check(self):
        """Raise unless the upstream directory is there to write into."""
        if not os.path.isdir(os.path.dirname(self.path)):
            raise SwitchError("proxy config path %s does not exist (is the proxy role applied?)" % os.path.dirname(self.path))

    def current(self):
        return upstream_servers(self.text() or "")

    def backups(self):
        """The backup servers an engine restart that did not finish left."""
        text = self.text()
        return upstream_backups(text) if text and written_by_berth(text) else []

    def _applied(self):
        try:
            with open(self.applied_path, encoding="utf-8") as stream:
                return json.load(stream)
        except (OSError, ValueError):
            return None

    def _mark(self):
        state = file_state(self.path)
        if state is None:
            if os.path.exists(self.applied_path):
                os.remove(self.applied_path)
            return
        handle, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".%s.applied." % self.app)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(state, stream)
        os.replace(tmp, self.applied_path)

    def stale(self):
        """True when nginx may not serve what the upstream file says."""
        current = file_state(self.path)
        ours = False
        if current is not None:
            with open(self.path, encoding="utf-8") as stream:
                ours = written_by_berth(stream.read())
        return nginx_stale(current, self._applied(), ours)

    def apply(self):
        """Make nginx take the upstream file as it is (after a run that died
        between the write and the reload)."""
        self.check()
        self._reload(None, restore=False)

    def text(self):
        """The upstream file as it is, None when there is none."""
        try:
            with open(self.path, encoding="utf-8") as stream:
                return stream.read()
        except FileNotFoundError:
            return None

    def write(self, text):
        """Replace the file at once (nginx reads it at the next reload)."""
        handle, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".%s." % self.app)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path)

    def point_to(self, servers):
        self.check()
        in_sync = not self.stale()
        previous = self.text()
        self.write(upstream_config(self.app, servers))
        self._reload(previous, restore=True, in_sync=in_sync)

    def _reload(self, previous, restore, in_sync=False):
        test = subprocess.run([self.nginx, "-t", "-q"], capture_output=True, text=True, check=False)
        if test.returncode != 0:
            if restore:
                self._restore(previous, in_sync)
            raise SwitchError("nginx rejected the configuration: %s" % one_line((test.stderr or test.stdout).strip()))
        before = self.workers()
        reload = subprocess.run([self.nginx, "-s", "reload"], capture_output=True, text=True, check=False)
        if reload.returncode != 0:
            if restore:
                self._restore(previous, in_sync)
            raise SwitchError("nginx reload failed: %s" % one_line((reload.stderr or reload.stdout).strip()))
        self.observed = bool(before)
        self.retiring |= set(before)
        deadline = time.monotonic() + self.reload_timeout
        # No workers seen (no readable pid file): the reload cannot be
        # watched; settled() then stays false and the drain waits it out.
        while before and not reload_applied(before, self.workers()):
            if time.monotonic() > deadline:
                # The master kept its old workers (a bind error, say): keep them on the old upstream.
                if restore:
                    self._restore(previous, False)
                subprocess.run([self.nginx, "-s", "reload"], capture_output=True, check=False)
                self.retiring = set()
                raise SwitchError("nginx did not start new workers within %ss of the reload" % self.reload_timeout)
            time.sleep(0.05)
        self._mark()

    def settled(self):
        """True once no worker from before the last switch is left; never
        when those workers could not be seen."""
        if not self.observed:
            return False
        self.retiring &= set(self.workers())
        return not self.retiring

    def _restore(self, previous, in_sync):
        if previous is None:
            os.remove(self.path)
        else:
            with open(self.path, "w", encoding="utf-8") as stream:
                stream.write(previous)
        # nginx never took the rejected file: it serves the restored one,
        # if it served the previous one before.
        if in_sync:
            self._mark()


def rewrite_upstreams(directory, texts, nginx="nginx", workers=nginx_workers):
    """Write several apps' upstream files ({app: text}) and have nginx take
    them in one graceful reload, and return a switch whose settled() tells
    when nginx's old workers are gone (None when there was nothing to
    write). When nginx refuses them, the files are put back as they were and
    nginx keeps what it served."""
    switches = [NginxSwitch(app, directory, nginx, workers) for app in sorted(texts)]
    if not switches:
        return None
    previous = {}
    for switch in switches:
        switch.check()
        previous[switch.app] = (switch.text(), not switch.stale())
    for switch in switches:
        switch.write(texts[switch.app])
    try:
        switches[0]._reload(None, restore=False)
    except SwitchError:
        for switch in switches:
            switch._restore(*previous[switch.app])
        subprocess.run([nginx, "-s", "reload"], capture_output=True, check=False)
        raise
    for switch in switches[1:]:
        switch._mark()
    # The one that saw the reload: settled() once the old workers are gone.
    return switches[0]


class CommandSwitch:
    """Hands the switch to an external command (a gateway API client):
    `command current APP` prints servers one per line; `command point APP
    SERVER...` moves traffic."""

    def __init__(self, app, command):
        self.app = app
        self.command = command

    def check(self):
        if not os.access(self.command, os.X_OK):
            raise SwitchError("switch command %s is not executable" % self.command)

    def current(self):
        result = subprocess.run([self.command, "current", self.app], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SwitchError("switch command failed: %s" % result.stderr.strip())
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def point_to(self, servers):
        """The command returns once the new servers take new requests."""
        result = subprocess.run([self.command, "point", self.app, *servers], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SwitchError("switch command failed: %s" % result.stderr.strip())

    def settled(self):
        return True

    observed = True

    def stale(self):
        return False

    def backups(self):
        return []

    def apply(self):
        pass


def make_switch(kind, app, nginx_dir, command):
    if kind == "nginx":
        return NginxSwitch(app, nginx_dir)
    return CommandSwitch(app, command)
