"""Moving an app's traffic from one container to another.

A switch knows where traffic goes now and can point it elsewhere. nginx on
the host is the default; a gateway API can be added as another class with
the same three methods (CommandSwitch shows the shape).
"""

import os
import re
import subprocess
import tempfile

SERVER_LINE = re.compile(r"^\s*server\s+(\S+?)(?:\s+[^;]*)?;", re.MULTILINE)


class SwitchError(Exception):
    pass


class NginxSwitch:
    """Rewrites /etc/nginx/berth/upstreams/<app>.conf and reloads nginx
    gracefully: old workers finish their requests, new ones use the new
    upstream, so no request is dropped."""

    def __init__(self, app, directory="/etc/nginx/berth/upstreams", nginx="nginx"):
        self.app = app
        self.path = os.path.join(directory, "%s.conf" % app)
        self.nginx = nginx

    def check(self):
        """Raise unless the upstream directory is there to write into."""
        if not os.path.isdir(os.path.dirname(self.path)):
            raise SwitchError("proxy config path %s does not exist (is the proxy role applied?)" % os.path.dirname(self.path))

    def current(self):
        try:
            with open(self.path, encoding="utf-8") as stream:
                return [s for s in SERVER_LINE.findall(stream.read()) if not s.startswith("unix:")]
        except FileNotFoundError:
            return []

    def render(self, servers):
        lines = ["# Written by berth's docker_rollout; the live servers of app %s." % self.app, "upstream berth_%s {" % self.app]
        lines += ["    server %s max_fails=0;" % server for server in servers]
        lines += ["    keepalive 16;", "}", ""]
        return "\n".join(lines)

    def point_to(self, servers):
        self.check()
        previous = None
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as stream:
                previous = stream.read()
        handle, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".%s." % self.app)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(self.render(servers))
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path)
        test = subprocess.run([self.nginx, "-t", "-q"], capture_output=True, text=True, check=False)
        if test.returncode != 0:
            self._restore(previous)
            raise SwitchError("nginx rejected the new upstream: %s" % (test.stderr or test.stdout).strip())
        reload = subprocess.run([self.nginx, "-s", "reload"], capture_output=True, text=True, check=False)
        if reload.returncode != 0:
            self._restore(previous)
            raise SwitchError("nginx reload failed: %s" % (reload.stderr or reload.stdout).strip())

    def _restore(self, previous):
        if previous is None:
            os.remove(self.path)
        else:
            with open(self.path, "w", encoding="utf-8") as stream:
                stream.write(previous)


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
        result = subprocess.run([self.command, "point", self.app, *servers], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SwitchError("switch command failed: %s" % result.stderr.strip())


def make_switch(kind, app, nginx_dir, command):
    if kind == "nginx":
        return NginxSwitch(app, nginx_dir)
    return CommandSwitch(app, command)
