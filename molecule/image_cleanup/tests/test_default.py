"""Verify of the image_cleanup scenario: the timer, the service, no overlap."""

import time

SERVICE = "/etc/systemd/system/berth-image-cleanup.service"


def test_the_timer_is_enabled_and_scheduled(host):
    timer = host.service("berth-image-cleanup.timer")
    assert timer.is_enabled and timer.is_running
    assert "OnCalendar=*-*-* 03:30:00" in host.file("/etc/systemd/system/berth-image-cleanup.timer").content_string
    assert "berth-image-cleanup.timer" in host.check_output("systemctl list-timers --all --no-legend")


def test_the_units_verify(host):
    result = host.run("systemd-analyze verify %s /etc/systemd/system/berth-image-cleanup.timer" % SERVICE)
    assert result.rc == 0, result.stderr


def test_the_service_runs_the_playbook_with_the_report_path(host):
    host.run("rm -f /var/lib/berth/image-cleanup/calls")
    assert host.run("systemctl start berth-image-cleanup.service").rc == 0
    calls = host.file("/var/lib/berth/image-cleanup/calls").content_string.splitlines()
    assert calls == [
        "-i /opt/berth/inventories/prod /opt/berth/playbooks/image_cleanup.yml -e image_cleanup_report_path=/var/lib/berth/image-cleanup/report.json"
    ]


def test_runs_never_overlap(host):
    command = host.check_output("systemctl show -p ExecStart --value berth-image-cleanup.service").split("argv[]=")[1].split(" ;")[0]
    host.run("rm -f /var/lib/berth/image-cleanup/calls")
    host.run("systemctl start --no-block berth-image-cleanup.service")
    time.sleep(1)
    started = time.monotonic()
    second = host.run(command)
    assert second.rc == 75
    assert time.monotonic() - started < 2
    time.sleep(4)
    assert len(host.file("/var/lib/berth/image-cleanup/calls").content_string.splitlines()) == 1
