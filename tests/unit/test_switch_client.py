"""The traffic switches (berth_switch_client): nginx's upstream file written,
reloaded and restored, its workers watched, and staleness after a killed
run. nginx itself is stood in for by `true` and `false`."""

import os

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_switch import upstream_config
from ansible_collections.berth.ops.plugins.module_utils.berth_switch_client import (
    LockTimeout,
    NginxSwitch,
    SwitchError,
    app_lock,
    nginx_workers,
    rewrite_upstreams,
)

WORKER = "nginx: worker process"
RETIRING = "nginx: worker process is shutting down"


class ReloadingNginx:
    """Worker tables as nginx shows them around one reload: unchanged at
    first, then the new generation, then the old one gone."""

    def __init__(self, *tables):
        self.tables = list(tables)

    def __call__(self):
        return self.tables.pop(0) if len(self.tables) > 1 else self.tables[0]


def reloading():
    return ReloadingNginx({1: WORKER}, {1: WORKER}, {1: RETIRING, 2: WORKER}, {2: WORKER})


def test_nginx_switch_writes_and_reads_its_upstream(tmp_path):
    switch = NginxSwitch("web", str(tmp_path), nginx="true", workers=reloading())
    assert switch.current() == []
    switch.point_to(["127.0.0.1:20001"])
    assert switch.current() == ["127.0.0.1:20001"]
    assert "upstream berth_web {" in (tmp_path / "web.conf").read_text()
    assert switch.settled()


def test_nginx_switch_is_settled_only_after_the_old_workers_exit(tmp_path):
    workers = ReloadingNginx({1: WORKER}, {1: RETIRING, 2: WORKER}, {1: RETIRING, 2: WORKER}, {2: WORKER})
    switch = NginxSwitch("web", str(tmp_path), nginx="true", workers=workers)
    switch.point_to(["127.0.0.1:20001"])
    assert not switch.settled()
    assert switch.settled()


def test_a_reload_nginx_never_applies_fails_and_restores_the_old_upstream(tmp_path):
    switch = NginxSwitch("web", str(tmp_path), nginx="true", workers=reloading())
    switch.point_to(["127.0.0.1:20001"])
    stuck = NginxSwitch("web", str(tmp_path), nginx="true", workers=lambda: {2: WORKER}, reload_timeout=0.2)
    with pytest.raises(SwitchError, match="nginx did not start new workers"):
        stuck.point_to(["127.0.0.1:20002"])
    assert switch.current() == ["127.0.0.1:20001"]


def test_nginx_switch_restores_the_old_upstream_when_nginx_refuses(tmp_path):
    switch = NginxSwitch("web", str(tmp_path), nginx="true", workers=reloading())
    switch.point_to(["127.0.0.1:20001"])
    refusing = NginxSwitch("web", str(tmp_path), nginx="false")
    with pytest.raises(SwitchError, match="nginx rejected"):
        refusing.point_to(["127.0.0.1:20002"])
    assert switch.current() == ["127.0.0.1:20001"]
    # No temporary file left; only the record of what nginx serves.
    assert [f for f in os.listdir(tmp_path) if f.startswith(".")] == [".web.applied"]
    # nginx never took the refused file, so it still serves the restored one.
    assert not refusing.stale()


def test_a_missing_proxy_path_is_named():
    with pytest.raises(SwitchError, match="proxy config path /nonexistent/upstreams does not exist"):
        NginxSwitch("web", "/nonexistent/upstreams").check()


def test_nginx_workers_are_the_children_of_the_hosts_master_only(tmp_path):
    proc = tmp_path / "proc"
    # 7 is the host's master; 30 is a container's nginx master with its own worker 31.
    table = {
        7: (1, b"nginx: master process /usr/sbin/nginx\0"),
        8: (7, b"nginx: worker process\0"),
        9: (7, b"nginx: worker process is shutting down\0"),
        12: (1, b"sshd\0"),
        30: (29, b"nginx: master process nginx -g daemon off;\0"),
        31: (30, b"nginx: worker process\0"),
    }
    for pid, (parent, title) in table.items():
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(title)
        (proc / str(pid) / "stat").write_text("%d (nginx: a) b) S %d 1 1 0\n" % (pid, parent))
    (proc / "self").mkdir()
    (tmp_path / "nginx.pid").write_text("7\n")
    assert nginx_workers(str(proc), str(tmp_path / "nginx.pid")) == {8: WORKER, 9: RETIRING}
    assert nginx_workers(str(proc), str(tmp_path / "missing.pid")) == {}


def test_without_a_visible_master_the_switch_is_never_settled(tmp_path):
    # Issue 12, 2.8: no readable pid file means the old workers were never
    # seen, so nothing proves they are gone: the drain must wait it out.
    switch = NginxSwitch("web", str(tmp_path), nginx="true", workers=dict, reload_timeout=0.2)
    switch.point_to(["127.0.0.1:20001"])
    assert switch.current() == ["127.0.0.1:20001"]
    assert not switch.observed
    assert not switch.settled()


def test_a_file_written_without_a_reload_is_stale_until_applied(tmp_path):
    switch = NginxSwitch("web", str(tmp_path), nginx="true", reload_timeout=0.5)
    switch.workers = ReloadedWorkers()
    switch.point_to(["127.0.0.1:20001"])
    assert not switch.stale()
    # A run killed between the write and the reload leaves the file ahead of nginx.
    path = tmp_path / "web.conf"
    text = path.read_text()
    path.write_text(text.replace("20001", "20002"))
    assert switch.stale()
    # A hand edit back to the same text still counts: nginx took neither write.
    path.write_text(text)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1000))
    assert switch.stale()
    switch.workers = ReloadedWorkers()
    switch.apply()
    assert not switch.stale()


class ReloadedWorkers:
    """One worker before the reload, a new one after."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {1: WORKER} if self.calls == 1 else {2: WORKER}


def test_several_upstreams_are_rewritten_in_one_reload(tmp_path):
    for app in ("api", "web"):
        NginxSwitch(app, str(tmp_path), nginx="true", workers=reloading()).point_to(["127.0.0.1:20001"])
    texts = {app: upstream_config(app, ["127.0.0.1:20001"], ["172.17.0.2:8080"]) for app in ("api", "web")}
    rewrite_upstreams(str(tmp_path), texts, nginx="true", workers=reloading())
    for app, text in texts.items():
        switch = NginxSwitch(app, str(tmp_path), nginx="true")
        assert switch.text() == text and not switch.stale()
        assert switch.current() == ["127.0.0.1:20001"]


def test_upstreams_nginx_refuses_are_all_put_back(tmp_path):
    before = {}
    for app in ("api", "web"):
        switch = NginxSwitch(app, str(tmp_path), nginx="true", workers=reloading())
        switch.point_to(["127.0.0.1:20001"])
        before[app] = switch.text()
    texts = {app: upstream_config(app, ["127.0.0.1:20001"], ["172.17.0.2:8080"]) for app in before}
    with pytest.raises(SwitchError, match="nginx rejected"):
        rewrite_upstreams(str(tmp_path), texts, nginx="false")
    for app, text in before.items():
        switch = NginxSwitch(app, str(tmp_path), nginx="true")
        assert switch.text() == text and not switch.stale()


def test_the_app_lock_is_exclusive_and_names_its_holder(tmp_path):
    with app_lock(str(tmp_path), "web", 5):
        held = pytest.raises(LockTimeout, match=r"web lock on this host \(pid %d since" % os.getpid())
        with held, app_lock(str(tmp_path), "web", 0.3):
            pass
        with app_lock(str(tmp_path), "api", 0):
            pass
    with app_lock(str(tmp_path), "web", 0):
        pass
