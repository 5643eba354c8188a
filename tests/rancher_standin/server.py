"""HTTP(S) server of the Rancher API stand-in.

A test double for berth's tests, not Rancher: it answers the handful of Rancher
v2.x API calls berth's rancher role makes (see README.md beside this file) with
Rancher's request and response shapes, keeps state in memory, and serves a
system-agent-install.sh that records how it was called instead of installing.
A request that breaks the documented shape (unknown endpoint or field, missing
field, wrong content type) is refused and recorded in .violations.

From a test:

    with RancherStandIn("bootstrap-pw", certfile=..., keyfile=..., cafile=...) as rancher:
        ...  # talk to rancher.url, trusting the CA in cafile
    assert rancher.violations == []

As a process (stdlib only, also from a copy of this directory):
    python3 server.py --host 0.0.0.0 --port 8443 --bootstrap-password PW --cert C --key K --ca CA [--state-file F]
prints "listening on https://HOST:PORT" and serves until killed; violations go to stderr.
"""

import argparse
import base64
import binascii
import hashlib
import importlib
import json
import os
import re
import socket
import ssl
import sys
import threading
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from . import norman, steve
    from .common import NORMAN, STEVE, ApiError, Call, must_authenticate, violation
    from .state import State
except ImportError:  # run as a script: import this directory as a package, whatever a copy of it is called
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(_here))
    _package = os.path.basename(_here)
    norman = importlib.import_module(_package + ".norman")
    steve = importlib.import_module(_package + ".steve")
    _common = importlib.import_module(_package + ".common")
    NORMAN, STEVE, ApiError, Call = _common.NORMAN, _common.STEVE, _common.ApiError, _common.Call
    must_authenticate, violation = _common.must_authenticate, _common.violation
    State = importlib.import_module(_package + ".state").State

HERE = os.path.dirname(os.path.abspath(__file__))
INSTALL_SCRIPT = os.path.join(HERE, "system-agent-install.sh")


# -- endpoints outside the APIs --------------------------------------------------------------------
def _text(body, status=200):
    return status, body if isinstance(body, bytes) else body.encode(), {"Content-Type": "text/plain; charset=utf-8"}


def ping(call):
    return _text("pong")


def healthz(call):
    return _text("ok")


def cacerts(call):
    """The CA PEM, byte for byte: nodes pin its sha256 with --ca-checksum."""
    return _text(call.standin.ca_pem)


def install_script(call):
    with open(INSTALL_SCRIPT, "rb") as handle:
        return _text(handle.read())


def post_agent(call):
    """Stand-in only: the install script reports what it was called with."""
    record = call.json_body()
    call.state.agents.append(record)
    call.state.changed()
    return 201, record


def list_agents(call):
    return 200, {"type": "collection", "data": list(call.state.agents)}


def dump_state(call):
    return 200, call.state.snapshot()


PLAIN_ROUTES = [
    ("GET", "/ping", ping),
    ("GET", "/healthz", healthz),
    ("GET", "/cacerts", cacerts),
    ("GET", "/system-agent-install.sh", install_script),
    ("POST", "/standin/agents", post_agent),
    ("GET", "/standin/agents", list_agents),
    ("GET", "/standin/state", dump_state),
]


def _routes():
    """(method, compiled pattern, handler, needs an API token)."""
    table = []
    for method, pattern, handler in norman.ROUTES:
        table.append((method, re.compile(pattern), handler, not pattern.startswith("/v3-public/")))
    for method, pattern, handler in norman.AGENT_ROUTES:  # they check a registration token themselves
        table.append((method, re.compile(pattern), handler, False))
    for method, pattern, handler in steve.ROUTES:
        table.append((method, re.compile(pattern), handler, True))
    for method, pattern, handler in PLAIN_ROUTES:
        table.append((method, re.compile(re.escape(pattern)), handler, False))
    return table


ROUTES = _routes()


class RancherStandIn:
    def __init__(self, bootstrap_password, host="127.0.0.1", port=0, certfile=None, keyfile=None, cafile=None, state_file=None):
        if bool(certfile) != bool(keyfile):
            raise ValueError("give both certfile and keyfile, or neither")
        self.host = host
        self._requested_port = port
        self.certfile, self.keyfile = certfile, keyfile
        self.ca_pem = b""
        if cafile:
            with open(cafile, "rb") as handle:
                self.ca_pem = handle.read()
        # What a node passes as --ca-checksum; None when there is no CA to pin (Rancher then leaves it out too).
        self.ca_checksum = hashlib.sha256(self.ca_pem).hexdigest() if self.ca_pem else None
        self.state = State(bootstrap_password, self.ca_pem.decode())
        self.state_file = state_file
        self.requests = []  # (method, path, status) of everything received
        self.violations = []  # one line per request refused for breaking the documented shape
        self.violation_log = None  # a file to echo violations to (the CLI uses stderr)
        self._dumped_revision = None
        self._server = None
        self._thread = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self):
        if self._server is None:
            server = _Server((self.host, self._requested_port), _RequestHandler)
            if self.certfile:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(self.certfile, self.keyfile)
                server.ssl_context = context
            server.standin = self
            self._server = server
            self._dump_state()
            # A short poll interval keeps stop() quick; tests start and stop many servers.
            self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), name="rancher-standin", daemon=True)
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
            raise RuntimeError("the Rancher stand-in is not started")
        return self._server.server_address[1]

    @property
    def tls(self):
        return bool(self.certfile)

    @property
    def url(self):
        return "%s://%s:%d" % ("https" if self.tls else "http", self.host, self.port)

    @property
    def admin_password(self):
        """The admin's current password (the bootstrap one until changepassword)."""
        return self.state.admin["password"]

    def base_url_for(self, headers):
        host = headers.get("Host") or "%s:%d" % (self.host, self.port)
        return "%s://%s" % ("https" if self.tls else "http", host)

    # -- one request -----------------------------------------------------------------------------------
    def handle(self, method, target, headers, body):
        """(status, headers, body bytes) for one request."""
        parts = urllib.parse.urlsplit(target)
        path = parts.path
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        family = STEVE if path.startswith("/v1/") else NORMAN
        # One request at a time, serialised too: answers share the state's dicts.
        with self.state.lock:
            out_headers = {}
            try:
                status, payload, out_headers = self._answer(method, path, query, headers, body)
            except ApiError as exc:
                family = exc.family or family
                if exc.violation:
                    self._violation(method, path, exc.status, exc.message)
                status, payload, out_headers = exc.status, exc.body(family), exc.headers
            except Exception:
                self._violation(method, path, 500, "the stand-in raised:\n" + traceback.format_exc())
                status, payload = 500, ApiError(500, "ServerError", "internal error in the stand-in").body(family)
            self.requests.append((method, path, status))
            self._dump_state()
            if payload is None:
                return status, out_headers, b""
            if isinstance(payload, bytes):
                return status, out_headers, payload
            return status, dict(out_headers, **{"Content-Type": "application/json"}), json.dumps(payload).encode()

    def _answer(self, method, path, query, headers, body):
        matches = [(m, pattern.fullmatch(path), handler, auth) for m, pattern, handler, auth in ROUTES]
        matches = [entry for entry in matches if entry[1]]
        if not matches:
            raise violation(404, "NotFound", "the stand-in has no endpoint %s (berth should call documented Rancher endpoints only)" % path)
        chosen = next((entry for entry in matches if entry[0] == method), None)
        if chosen is None:
            allowed = ", ".join(sorted({entry[0] for entry in matches}))
            error = violation(405, "MethodNotAllow", "method %s is not allowed on %s, but %s are" % (method, path, allowed))
            error.headers = {"Allow": allowed}
            raise error
        _, match, handler, needs_token = chosen
        call = Call(self, method, path, query, headers, body, match.groupdict())
        if needs_token:
            call.token = self.authenticate(headers.get("Authorization"))
            if call.token is None:
                raise must_authenticate()
        answer = handler(call)
        status, payload = answer[0], answer[1]
        return status, payload, answer[2] if len(answer) > 2 else {}

    def authenticate(self, header):
        """Rancher takes an API token as "Bearer token-xxxxx:key", or as basic auth with
        the token name as user and the key as password."""
        scheme, _, value = (header or "").strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                # Rancher decodes the URL-safe alphabet; this decoder takes the standard one too.
                value = base64.urlsafe_b64decode(value).decode()
            except (binascii.Error, ValueError):
                return None
        elif scheme.lower() != "bearer":
            return None
        return self.state.token_for(value)

    def _violation(self, method, path, status, problem):
        line = "%s %s -> %s: %s" % (method, path, status, problem)
        self.violations.append(line)
        if self.violation_log is not None:
            print("violation: " + line, file=self.violation_log, flush=True)

    def _dump_state(self):
        """Rewrite --state-file after every change, atomically, for readers outside the process."""
        if not self.state_file or self._dumped_revision == self.state.revision:
            return
        snapshot = self.state.snapshot()
        temporary = self.state_file + ".tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(snapshot, handle, indent=2, sort_keys=True)
        os.replace(temporary, self.state_file)
        self._dumped_revision = snapshot["revision"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    ssl_context = None
    standin = None

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a client that
        # stalls or refuses the certificate cannot hold up the accept loop.
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(10)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            self.shutdown_request(tls)

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError, TimeoutError)):
            return  # clients hanging up are no news
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rancher-standin"
    timeout = 30

    def setup(self):
        super().setup()
        # Like Rancher's own server, no Nagle delay on kept-alive connections.
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
    parser = argparse.ArgumentParser(description="Rancher API stand-in for tests (a test double, not Rancher).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    # Or STANDIN_PASSWORD in the environment: off the command line.
    password = os.environ.get("STANDIN_PASSWORD")
    parser.add_argument("--bootstrap-password", required=password is None, default=password)
    parser.add_argument("--cert", help="server certificate (PEM); with --key, serve HTTPS")
    parser.add_argument("--key", help="the certificate's private key (PEM)")
    parser.add_argument("--ca", help="the CA that signed --cert (PEM), served at /cacerts")
    parser.add_argument("--state-file", help="rewrite this JSON file with the state after every change")
    args = parser.parse_args(argv)
    standin = RancherStandIn(args.bootstrap_password, args.host, args.port, args.cert, args.key, args.ca, state_file=args.state_file)
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
