"""RegistryClient's manifest reads against a small HTTP registry on loopback:
GET and HEAD share one request path, a 404 is "missing", anything else but
200 is an error naming the reference."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_registry_client import RegistryClient, RegistryError

DIGEST = "sha256:" + "ab" * 32
MANIFEST = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "layers": []}


class Registry(BaseHTTPRequestHandler):
    def answer(self, body):
        status = {"/v2/web/manifests/1": 200, "/v2/web/manifests/broken": 500}.get(self.path, 404)
        data = json.dumps(MANIFEST).encode() if status == 200 else b"{}"
        self.send_response(status)
        self.send_header("Content-Type", MANIFEST["mediaType"] + "; charset=utf-8")
        self.send_header("Docker-Content-Digest", DIGEST)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self):
        self.answer(True)

    def do_HEAD(self):
        self.answer(False)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def client():
    server = HTTPServer(("127.0.0.1", 0), Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield RegistryClient("127.0.0.1:%d" % server.server_port, scheme="http")
    server.shutdown()


def test_get_and_head_read_the_same_manifest(client):
    assert client.manifest("web", "1") == (DIGEST, MANIFEST["mediaType"], MANIFEST)
    assert client.manifest_digest("web", "1") == DIGEST


def test_a_missing_manifest_is_none_and_a_server_error_names_the_reference(client):
    assert client.manifest("web", "2") is None
    assert client.manifest_digest("web", "2") is None
    for read in (client.manifest, client.manifest_digest):
        with pytest.raises(RegistryError, match="manifest web:broken answered HTTP 500"):
            read("web", "broken")
