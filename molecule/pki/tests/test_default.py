"""Verify of the pki scenario: a TLS client that trusts only the CA accepts
the host's server certificate, for the names it was issued for."""

import os

TLS = "/etc/berth/tls"


def test_the_key_never_left_the_host_and_is_not_world_readable(host):
    key = host.file("%s/molecule-server.key" % TLS)
    assert key.exists and key.mode == 0o640 and key.user == "root"
    # The CA key is nowhere on the host.
    assert host.run("grep -rl 'PRIVATE KEY' /etc/docker/certs.d").rc != 0


def test_the_certificate_verifies_against_the_installed_ca(host):
    result = host.run("openssl verify -CAfile %s/ca.crt %s/molecule-server.crt" % (TLS, TLS))
    assert result.rc == 0, result.stderr
    names = host.check_output("openssl x509 -noout -ext subjectAltName -in %s/molecule-server.crt" % TLS)
    assert "DNS:molecule.berth.test" in names and "IP Address:127.0.0.1" in names


def test_a_tls_handshake_with_the_ca_alone_succeeds_for_the_issued_name(host):
    server = f"openssl s_server -quiet -accept 8443 -cert {TLS}/molecule-server.crt -key {TLS}/molecule-server.key"
    host.run("(setsid %s >/dev/null 2>&1 &) ; sleep 1" % server)
    try:
        client = "openssl s_client -connect 127.0.0.1:8443 -CAfile {0}/ca.crt -verify_return_error -verify_hostname {1} </dev/null"
        good = host.run(client.format(TLS, "molecule.berth.test"))
        assert good.rc == 0 and "Verify return code: 0 (ok)" in good.stdout, good.stdout + good.stderr
        wrong = host.run(client.format(TLS, "other.berth.test"))
        assert wrong.rc != 0
    finally:
        host.run("pkill -f 'openssl s_server'")


def test_docker_trusts_the_same_ca_for_the_endpoint(host):
    trusted = host.file("/etc/docker/certs.d/registry.berth.test:5000/ca.crt").content_string
    assert trusted == host.file("%s/ca.crt" % TLS).content_string


def test_the_ca_is_kept_encrypted_in_the_inventory_not_in_plain_files():
    secrets = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "berth_secrets.vault.yml")
    with open(secrets, encoding="utf-8") as stream:
        assert stream.readline().startswith("$ANSIBLE_VAULT;1.1;AES256")
