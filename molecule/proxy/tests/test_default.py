"""Verify of the proxy scenario: nginx passes an app's port to the upstream
docker_rollout wrote, keeps the changed setting, and a removed app's port
is closed."""


def test_nginx_is_running_enabled_and_its_configuration_is_valid(host):
    nginx = host.service("nginx")
    assert nginx.is_running and nginx.is_enabled
    assert host.run("nginx -t").rc == 0


def test_the_app_port_serves_the_backend(host):
    assert host.check_output("curl -sf http://127.0.0.1:8080/") == "backend v1"


def test_the_default_site_is_gone(host):
    assert host.run("curl -s -o /dev/null http://127.0.0.1:80/").rc != 0


def test_the_changed_setting_is_live(host):
    site = host.file("/etc/nginx/berth/sites/web.conf").content_string
    assert "proxy_read_timeout 90s;" in site
    assert "proxy_read_timeout 90s;" in host.check_output("nginx -T 2>/dev/null")


def test_the_removed_app_has_no_site_upstream_or_port(host):
    assert not host.file("/etc/nginx/berth/sites/old.conf").exists
    assert not host.file("/etc/nginx/berth/upstreams/old.conf").exists
    assert host.run("curl -s -o /dev/null http://127.0.0.1:8090/").rc == 7  # connection refused
