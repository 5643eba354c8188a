"""Verify of the registry scenario: over TLS that verifies against the CA,
the API refuses anonymous requests, and the user pushes a blob and a
manifest, lists the tag and deletes the manifest (deletes are enabled)."""

import hashlib
import json
import os

import pytest

API = "https://registry.berth.test:5000/v2"
CURL = "curl -sS --resolve registry.berth.test:5000:127.0.0.1 --cacert /etc/docker/registry/tls/ca.crt"


@pytest.fixture(scope="module")
def user():
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "registry-ci"), encoding="utf-8") as stream:
        return "ci:" + stream.read().split()[0]


def status(host, args):
    return host.check_output("%s -o /dev/null -w '%%{http_code}' %s" % (CURL, args))


def test_the_service_runs_and_is_enabled(host):
    service = host.service("docker-registry")
    assert service.is_running and service.is_enabled


def test_anonymous_requests_are_refused_and_wrong_passwords_too(host):
    assert status(host, API + "/") == "401"
    assert status(host, "-u ci:wrong %s/" % API) == "401"


def test_the_certificate_is_checked_not_skipped(host):
    # Another CA (the system bundle) does not trust it.
    assert host.run("curl -sS -o /dev/null --resolve registry.berth.test:5000:127.0.0.1 %s/" % API).rc == 60


def test_push_list_and_delete(host, user):
    blob = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    auth = "-u '%s'" % user
    location = host.check_output(
        "%s %s -X POST -D - -o /dev/null %s/molecule/blobs/uploads/ | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p'" % (CURL, auth, API)
    )
    separator = "&" if "?" in location else "?"
    host.run("printf '%%s' '%s' > /tmp/config.json" % blob.decode())
    # A form content type would make the registry read the body as a form.
    blob_put = "%s -X PUT -H 'Content-Type: application/octet-stream' --data-binary @/tmp/config.json '%s%sdigest=%s'"
    assert status(host, blob_put % (auth, location, separator, digest)) == "201"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(blob), "digest": digest},
        "layers": [],
    }
    host.run("printf '%%s' '%s' > /tmp/manifest.json" % json.dumps(manifest))
    put = "%s -X PUT -H 'Content-Type: %s' --data-binary @/tmp/manifest.json %s/molecule/manifests/1" % (
        auth,
        manifest["mediaType"],
        API,
    )
    assert status(host, put) == "201"
    tags = json.loads(host.check_output("%s %s %s/molecule/tags/list" % (CURL, auth, API)))
    assert tags["tags"] == ["1"]
    manifest_digest = "sha256:" + hashlib.sha256(host.file("/tmp/manifest.json").content).hexdigest()
    assert status(host, "%s -X DELETE %s/molecule/manifests/%s" % (auth, API, manifest_digest)) == "202"
    assert status(host, "%s %s/molecule/manifests/1" % (auth, API)) == "404"
