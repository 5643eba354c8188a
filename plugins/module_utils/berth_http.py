"""The HTTP(S) session under berth's API clients (registry, Harbor, Rancher).

`open_url` opens a new connection, and for HTTPS a new TLS handshake, for
every request. A session keeps its connections alive instead, one set per
thread (registry_prune deletes from a thread pool), and retries what is safe
to repeat: idempotent requests after a connection error or a 5xx answer,
with a bounded exponential backoff. A DELETE or POST is never sent twice by
the session: whether it took effect is the caller's question to ask.
"""

import http.client
import socket
import ssl
import threading
import time
from urllib.parse import urljoin, urlsplit
from urllib.request import getproxies, proxy_bypass

SAFE_TO_REPEAT = frozenset(("GET", "HEAD", "OPTIONS", "PUT"))
RETRY_STATUSES = frozenset((500, 502, 503, 504))
REDIRECTS = frozenset((301, 302, 303, 307, 308))
# After a whole round of attempts got no answer, the host counts as down for
# this long: a thread pool's other requests fail at once instead of each
# waiting out its own backoff.
DOWN_FOR = 10.0
# A kept-alive connection idle this long may have been closed by the server;
# a request that must not be repeated gets a fresh one instead.
STALE_AFTER = 2.0


class HttpError(Exception):
    """No HTTP answer: refused, reset, timed out, TLS failure. `sent` says
    whether the request may have reached the server."""

    def __init__(self, message, sent=False):
        super().__init__(message)
        self.sent = sent


def backoff_delays(retries, base):
    """The waits between attempts: base, 2*base, 4*base, ..."""
    return [base * (2**attempt) for attempt in range(retries)]


def should_retry(method, status=None, error=None, sent=False):
    """Whether an attempt that ended with `status` (an answer) or `error`
    (none) may be repeated."""
    if method not in SAFE_TO_REPEAT:
        # Only when it surely never left: a failed connect.
        return error is not None and not sent
    if error is not None:
        return True
    return status in RETRY_STATUSES


class HttpSession:
    def __init__(self, ca_path=None, validate_certs=True, timeout=30, retries=3, backoff=0.5, sleep=time.sleep):
        self.ca_path = ca_path
        self.validate_certs = validate_certs
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._local = threading.local()
        self._all = []
        self._lock = threading.Lock()
        self._context = None
        self._down = {}
        self.connections_opened = 0

    # -- connections ---------------------------------------------------------
    def _ssl_context(self):
        if self._context is None:
            if self.validate_certs:
                # A given CA is the only trust, as with open_url: the
                # system's store is not loaded (about 40 ms per session).
                context = ssl.create_default_context(cafile=self.ca_path or None)
            else:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._context = context
        return self._context

    def _proxy(self, scheme, host):
        proxy = getproxies().get(scheme)
        if not proxy or proxy_bypass(host):
            return None
        return urlsplit(proxy if "://" in proxy else "http://" + proxy)

    def _connect(self, scheme, host, port):
        proxy = self._proxy(scheme, host)
        if scheme == "https":
            if proxy:
                connection = http.client.HTTPSConnection(
                    proxy.hostname, proxy.port or 3128, timeout=self.timeout, context=self._ssl_context()
                )
                connection.set_tunnel(host, port)
            else:
                connection = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl_context())
        elif proxy:
            connection = http.client.HTTPConnection(proxy.hostname, proxy.port or 3128, timeout=self.timeout)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        connection.berth_proxied = bool(proxy) and scheme == "http"
        connection.berth_used = None
        with self._lock:
            self._all.append(connection)
            self.connections_opened += 1
        return connection

    def _connection(self, scheme, host, port, fresh):
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        key = (scheme, host, port)
        connection = pool.get(key)
        if connection is not None and fresh:
            connection.close()
            connection = None
        if connection is None:
            connection = pool[key] = self._connect(scheme, host, port)
        return connection

    def _drop(self, scheme, host, port):
        connection = getattr(self._local, "pool", {}).pop((scheme, host, port), None)
        if connection is not None:
            connection.close()

    def close(self):
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all = []
        self._local = threading.local()

    # -- requests ------------------------------------------------------------
    def _once(self, method, url, headers, body):
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            port = None
        if scheme not in ("http", "https") or not parts.hostname or port is None:
            raise HttpError("not an http(s) URL: %s" % url)
        host = parts.hostname
        pool = getattr(self._local, "pool", {})
        current = pool.get((scheme, host, port))
        stale = current is not None and current.berth_used is not None and time.monotonic() - current.berth_used > STALE_AFTER
        connection = self._connection(scheme, host, port, fresh=method not in SAFE_TO_REPEAT and stale)
        target = url if connection.berth_proxied else (parts.path or "/") + ("?" + parts.query if parts.query else "")
        sent = False
        try:
            if connection.sock is None:
                connection.connect()
                # Small requests on a kept-alive connection: no Nagle delay.
                connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sent = True
            connection.request(method, target, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            self._drop(scheme, host, port)
            reason = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else exc
            raise HttpError("%s %s: %s" % (method, parts.netloc, reason or type(exc).__name__), sent=sent) from None
        connection.berth_used = time.monotonic()
        if response.will_close:
            self._drop(scheme, host, port)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def request(self, method, url, headers=None, body=None, follow_redirects=True):
        """(status, headers with lower-case names, body bytes). Raises
        HttpError when no answer came after the allowed attempts."""
        method = method.upper()
        headers = dict(headers or {})
        for _hop in range(6):
            status, response_headers, data = self._attempts(method, url, headers, body)
            location = response_headers.get("location")
            if not (follow_redirects and status in REDIRECTS and location and method in ("GET", "HEAD")):
                return status, response_headers, data
            target = urljoin(url, location)
            if urlsplit(target).netloc != urlsplit(url).netloc:
                # Credentials stay with the host they were meant for.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            url = target
        raise HttpError("%s %s: too many redirects" % (method, url))

    def _attempts(self, method, url, headers, body):
        delays = backoff_delays(self.retries, self.backoff)
        netloc = urlsplit(url).netloc
        with self._lock:
            down = self._down.get(netloc)
        if down is not None and time.monotonic() < down[0]:
            raise HttpError("%s %s: %s (no answer moments ago; not tried again yet)" % (method, netloc, down[1]))
        for attempt in range(self.retries + 1):
            try:
                status, response_headers, data = self._once(method, url, headers, body)
            except HttpError as exc:
                if attempt < self.retries and should_retry(method, error=exc, sent=exc.sent):
                    self._sleep(delays[attempt])
                    continue
                if not exc.sent or attempt > 0:
                    with self._lock:
                        self._down[netloc] = (time.monotonic() + DOWN_FOR, str(exc).split(": ", 1)[-1])
                raise
            if attempt < self.retries and should_retry(method, status=status):
                self._sleep(delays[attempt])
                continue
            with self._lock:
                self._down.pop(netloc, None)
            return status, response_headers, data
        raise HttpError("%s %s: no answer" % (method, url))  # not reached
