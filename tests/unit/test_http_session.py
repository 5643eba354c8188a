"""The HTTP session under the API clients, against a real local HTTP/1.1
server: kept-alive connections, retries only where a repeat is safe,
redirects that drop credentials across hosts."""

import http.server
import itertools
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_http import (
    SAFE_TO_REPEAT,
    HttpError,
    HttpSession,
    backoff_delays,
    should_retry,
)
from hypothesis import given
from hypothesis import strategies as st


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body go out as two writes; without this each answer
        # waits for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self):
        server = self.server
        with server.lock:
            server.seen.append((self.command, self.path, self.headers.get("Authorization")))
            plan = server.plans.get(self.path)
            status = plan.pop(0) if plan else 200
        if status == "hang up":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = b"ok"
        self.send_response(status)
        if status in (301, 302, 307) and self.path in server.redirects:
            self.send_header("Location", server.redirects[self.path])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_DELETE = do_POST = do_PUT = _serve


@pytest.fixture
def server():
    made = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    made.lock, made.seen, made.plans, made.redirects = threading.Lock(), [], {}, {}
    thread = threading.Thread(target=made.serve_forever, daemon=True)
    thread.start()
    made.url = "http://127.0.0.1:%d" % made.server_address[1]
    yield made
    made.shutdown()
    made.server_close()


def session(**kwargs):
    waits = []
    return HttpSession(sleep=waits.append, **kwargs), waits


def test_one_connection_serves_many_requests(server):
    client, _ = session()
    for _ in range(50):
        assert client.request("GET", server.url + "/v2/")[0] == 200
    assert client.connections_opened == 1 and len(server.seen) == 50


def test_a_thread_pool_keeps_one_connection_per_thread(server):
    client, _ = session()
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda _: client.request("HEAD", server.url + "/x")[0], range(80)))
    assert statuses == [200] * 80
    assert client.connections_opened <= 4


def test_a_get_is_retried_after_5xx_with_backoff(server):
    server.plans["/flaky"] = [503, 502]
    client, waits = session(backoff=0.25)
    assert client.request("GET", server.url + "/flaky")[0] == 200
    assert waits == [0.25, 0.5] and len(server.seen) == 3


def test_retries_are_bounded(server):
    server.plans["/down"] = [503] * 10
    client, waits = session(retries=2)
    assert client.request("GET", server.url + "/down")[0] == 503
    assert len(server.seen) == 3 and len(waits) == 2


def test_a_delete_is_never_repeated_after_an_answer(server):
    server.plans["/v2/r/manifests/sha256:a"] = [503]
    client, waits = session()
    assert client.request("DELETE", server.url + "/v2/r/manifests/sha256:a")[0] == 503
    assert len(server.seen) == 1 and waits == []


def test_a_delete_cut_off_after_sending_is_not_repeated(server):
    server.plans["/v2/r/manifests/sha256:b"] = ["hang up"]
    client, _ = session()
    with pytest.raises(HttpError) as raised:
        client.request("DELETE", server.url + "/v2/r/manifests/sha256:b")
    assert raised.value.sent is True
    assert [s[0] for s in server.seen] == ["DELETE"]


def test_a_get_cut_off_is_repeated_on_a_new_connection(server):
    server.plans["/cut"] = ["hang up"]
    client, _ = session()
    assert client.request("GET", server.url + "/cut")[0] == 200
    assert len(server.seen) == 2 and client.connections_opened == 2


def test_a_refused_connection_is_retried_then_reported():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client, waits = session(retries=2, backoff=0.1)
    with pytest.raises(HttpError) as raised:
        client.request("DELETE", "http://127.0.0.1:%d/v2/" % port)
    assert raised.value.sent is False and waits == [0.1, 0.2]
    assert "127.0.0.1:%d" % port in str(raised.value)
    # The pool's next request fails at once: no second round of backoff.
    with pytest.raises(HttpError, match="not tried again yet"):
        client.request("GET", "http://127.0.0.1:%d/v2/" % port)
    assert waits == [0.1, 0.2]


def test_a_redirect_to_another_host_drops_the_credentials(server):
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    other.lock, other.seen, other.plans, other.redirects = threading.Lock(), [], {}, {}
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        server.plans["/blob"] = [307]
        server.redirects["/blob"] = "http://127.0.0.1:%d/storage/blob" % other.server_address[1]
        client, _ = session()
        assert client.request("GET", server.url + "/blob", {"Authorization": "Bearer t"})[0] == 200
        assert server.seen[0][2] == "Bearer t" and other.seen == [("GET", "/storage/blob", None)]
    finally:
        other.shutdown()
        other.server_close()


def test_a_delete_is_not_redirected(server):
    server.plans["/gone"] = [307]
    server.redirects["/gone"] = "/elsewhere"
    client, _ = session()
    assert client.request("DELETE", server.url + "/gone")[0] == 307
    assert len(server.seen) == 1


def test_a_bad_url_is_an_error_not_a_crash():
    client, _ = session()
    for url in ("ftp://host/x", "http://host:notaport/x", "http:///x"):
        with pytest.raises(HttpError):
            client.request("GET", url)


@given(method=st.sampled_from(["GET", "HEAD", "PUT", "OPTIONS", "DELETE", "POST", "PATCH"]), status=st.integers(100, 599))
def test_nothing_that_changes_state_is_repeated_once_sent(method, status):
    sent_error = HttpError("reset", sent=True)
    if method not in SAFE_TO_REPEAT:
        assert not should_retry(method, status=status)
        assert not should_retry(method, error=sent_error, sent=True)
        assert should_retry(method, error=HttpError("refused"), sent=False)
    else:
        assert should_retry(method, error=sent_error, sent=True)
        assert should_retry(method, status=status) == (status in (500, 502, 503, 504))


@given(retries=st.integers(0, 8), base=st.floats(0.01, 5))
def test_backoff_doubles_and_is_bounded_by_the_retries(retries, base):
    delays = backoff_delays(retries, base)
    assert len(delays) == retries
    assert all(later == pytest.approx(2 * earlier) for earlier, later in itertools.pairwise(delays))
