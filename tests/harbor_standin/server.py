"""HTTP server of the Harbor API stand-in.

A test double for berth's tests, not Harbor: it answers like Harbor v2.15's REST
API for the operations in handlers.py, keeps state in memory, and checks every
request and every response against Harbor's own swagger. A response that breaks
the swagger is recorded in .violations and reaches the client as a 500.

From a test:

    with HarborStandIn("Stand-in-admin-pw1") as harbor:
        ...  # talk to harbor.url with basic auth admin/Stand-in-admin-pw1
    assert harbor.violations == []

As a process: python tests/harbor_standin/server.py --port 0 --admin-password PW [--seed seed.json]
prints "listening on http://127.0.0.1:PORT" and serves until killed; violations go to stderr.
"""

import argparse
import base64
import hmac
import json
import os
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from . import swagger as contract
    from .handlers import HANDLERS, Call, Principal, Response
    from .state import State
except ImportError:  # run as a script: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from harbor_standin import swagger as contract
    from harbor_standin.handlers import HANDLERS, Call, Principal, Response
    from harbor_standin.state import State

# Harbor serves these without authentication; the stand-in requires it everywhere else.
PUBLIC = {"getHealth", "getSystemInfo", "getPing"}


class HarborStandIn:
    def __init__(self, admin_password, host="127.0.0.1", port=0, certfile=None, keyfile=None):
        self.swagger = contract.load()
        self.state = State()
        self.admin_password = admin_password
        self.host = host
        self._requested_port = port
        self.certfile, self.keyfile = certfile, keyfile
        self.violations = []  # one line per response that broke the swagger
        self.requests = []  # (method, path, status) of everything received
        self.violation_log = None  # a file to echo violations to (the CLI uses stderr)
        self._server = None
        self._thread = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self):
        if self._server is None:
            self._server = ThreadingHTTPServer((self.host, self._requested_port), _RequestHandler)
            self._server.daemon_threads = True
            self._server.standin = self
            if self.certfile:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(self.certfile, self.keyfile)
                self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            # A short poll interval keeps stop() quick; tests start and stop many servers.
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="harbor-standin", daemon=True)
            self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        if self._server is None:
            raise RuntimeError("the Harbor stand-in is not started")
        return self._server.server_address[1]

    @property
    def url(self):
        return "%s://%s:%d" % ("https" if self.certfile else "http", self.host, self.port)

    # -- one request -------------------------------------------------------------------------
    def handle(self, method, target, headers, body):
        """(status, headers, body bytes) for one request."""
        parts = urllib.parse.urlsplit(target)
        status, out_headers, payload, produces = self._answer(method, parts.path, parts.query, headers, body)
        self.requests.append((method, parts.path, status))
        out_headers = dict(out_headers, **{"X-Request-Id": headers.get("X-Request-Id") or str(uuid.uuid4())})
        if payload is None:
            return status, out_headers, b""
        if isinstance(payload, str) and "text/plain" in produces:
            return status, dict(out_headers, **{"Content-Type": "text/plain"}), payload.encode()
        return status, dict(out_headers, **{"Content-Type": "application/json"}), json.dumps(payload).encode()

    def _error(self, status, message, code=None, headers=None):
        code = code or contract.CODES.get(status, "UNKNOWN")
        return status, headers or {}, contract.error_body(code, message), ["application/json"]

    def _answer(self, method, path, query_string, headers, body):
        base = self.swagger.base_path
        route, path_values = self.swagger.match(path[len(base) :]) if path.startswith(base + "/") else (None, None)
        if route is None:
            return self._error(404, "path %s was not found" % path)
        op = route.operations.get(method)
        if op is None:
            allow = ", ".join(sorted(route.operations))
            return self._error(405, "method %s is not allowed, but [%s] are" % (method, allow), headers={"Allow": allow})
        user = None
        if op.op_id not in PUBLIC:
            user = self.authenticate(headers.get("Authorization"))
            if user is None:
                return self._error(401, "unauthorized")
        handler = HANDLERS.get(op.op_id)
        if handler is None:
            return self._error(501, "the Harbor stand-in does not implement %s (%s %s)" % (op.op_id, method, op.template))
        query = urllib.parse.parse_qs(query_string, keep_blank_values=True)
        try:
            params, payload = self.swagger.parse_request(op, path_values, query, headers, body)
        except contract.ApiError as exc:
            return self._error(exc.status, exc.message, exc.code)
        links = {k: v[0] for k, v in query.items() if k not in ("page", "page_size")}
        call = Call(self.state, user or Principal("anonymous"), params, payload, urllib.parse.unquote(path), links)
        try:
            with self.state.lock:
                response = handler(call)
        except contract.ApiError as exc:
            response = Response(exc.status, contract.error_body(exc.code, exc.message))
        except Exception:
            self._violation(method, path, op, 500, "the handler raised:\n" + traceback.format_exc())
            return self._error(500, "internal server error")
        problems = self.swagger.check_response(op, response.status, response.body, response.headers)
        if problems:
            self._violation(method, path, op, response.status, "; ".join(problems))
            return self._error(500, "the stand-in's answer breaks Harbor's swagger: " + "; ".join(problems))
        return response.status, response.headers, response.body, op.produces

    def _violation(self, method, path, op, status, problem):
        line = "%s %s (%s) -> %s: %s" % (method, path, op.op_id, status, problem)
        self.violations.append(line)
        if self.violation_log is not None:
            print("violation: " + line, file=self.violation_log, flush=True)

    def authenticate(self, header):
        """Basic auth as admin, robot$name (system robot) or robot$project+name (project robot)."""
        if not header or not header.startswith("Basic "):
            return None
        try:
            username, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except ValueError:
            return None
        if username == "admin":
            return Principal("admin", admin=True) if hmac.compare_digest(password.encode(), self.admin_password.encode()) else None
        with self.state.lock:
            robot = self.state.robot_by_full_name(username)
            if robot is None or robot["disable"] or not hmac.compare_digest(password.encode(), robot["secret"].encode()):
                return None
            if robot["expires_at"] != -1 and robot["expires_at"] <= time.time():
                return None
            return Principal(username, robot=robot)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "harbor-standin"

    def setup(self):
        super().setup()
        # Headers and body go out as two writes; like Harbor's nginx, no Nagle
        # delay, or each answer on a kept-alive connection waits ~40 ms for the
        # client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.server.standin.handle(self.command, self.path, self.headers, body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve

    def log_message(self, format, *args):  # quiet: tests read .requests instead
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description="Harbor API stand-in for tests (a test double, not Harbor).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    # Or STANDIN_PASSWORD in the environment: off the command line.
    password = os.environ.get("STANDIN_PASSWORD")
    parser.add_argument("--admin-password", required=password is None, default=password)
    parser.add_argument("--seed", help='JSON file: {"projects": [...], "artifacts": [...]}')
    args = parser.parse_args(argv)
    standin = HarborStandIn(args.admin_password, args.host, args.port)
    if args.seed:
        with open(args.seed, encoding="utf-8") as handle:
            standin.state.seed(json.load(handle))
    standin.violation_log = sys.stderr
    standin.start()
    print("listening on %s" % standin.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()


if __name__ == "__main__":
    main()
