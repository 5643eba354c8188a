"""Decisions that keep a rollout in a known, serving state (issue 12,
section 2): health waits, drain, what a failed run removes, retention and
the rollback target, stale nginx, the fleet's verdict and the summary."""

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_rollout import (
    HealthWatch,
    abandon_action,
    app_errors,
    docker_time,
    drain_done,
    fleet_verdict,
    host_status,
    last_served,
    listening_ports,
    probe_address,
    probe_kind,
    pull_failure,
    reusable,
    revert_target,
    rollback_target,
    rollout_plan,
    rollout_summary,
    settings_errors,
    spec_errors,
    to_retain,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_switch import (
    engine_bridges,
    live_restore_kept,
    nginx_stale,
    published_addresses,
    restart_option_errors,
    upstream_backups,
    upstream_config,
    upstream_servers,
    written_by_berth,
)
from hypothesis import given
from hypothesis import strategies as st


# -- 2.2 health: before the first success only the deadline ends the wait --------------------
def test_without_a_healthcheck_failed_probes_wait_for_the_deadline():
    watch = HealthWatch(started=0, deadline=120, retries=10)
    # An app that needs 30 s to listen: 60 failed probes, none of them fatal.
    for tick in range(60):
        assert watch.observe(tick * 0.5, True, None, "none", (False, "probe failed: refused")) == ("wait", None)
    assert watch.observe(30.5, True, None, "none", (True, "HTTP 200 from /health")) == ("healthy", "HTTP 200 from /health")


def test_the_deadline_ends_the_wait_and_names_the_last_probe():
    watch = HealthWatch(started=0, deadline=6.0, retries=10)
    assert watch.observe(1, True, None, "starting", None) == ("wait", None)
    verdict, reason = watch.observe(6.0, True, None, "starting", None)
    assert verdict == "failed"
    assert reason == "not healthy within the 6.0s deadline (Docker health: starting)"
    watch = HealthWatch(started=0, deadline=5, retries=3)
    watch.observe(1, True, None, "none", (False, "probe failed: refused"))
    assert watch.observe(5, True, None, "none", (False, "probe failed: refused"))[1].endswith("; last probe: probe failed: refused")


def test_retries_count_only_once_dockers_check_passed():
    watch = HealthWatch(started=0, deadline=120, retries=3)
    assert watch.observe(1, True, None, "healthy", (False, "HTTP 404 from /health"))[0] == "wait"
    assert watch.observe(2, True, None, "healthy", (False, "HTTP 404 from /health"))[0] == "wait"
    verdict, reason = watch.observe(3, True, None, "healthy", (False, "HTTP 404 from /health"))
    assert verdict == "failed" and reason.startswith("HTTP 404 from /health (3 probes in a row")


def test_an_exit_or_an_unhealthy_verdict_fails_at_once():
    assert HealthWatch(0, 120, 10).observe(1, False, 3, "none", None) == ("failed", "the container exited with code 3")
    assert HealthWatch(0, 120, 10).observe(1, True, None, "unhealthy", None)[0] == "failed"


# -- 2.11 a probe proves that the app answers ---------------------------------------------------
def test_probes_go_to_the_containers_own_address():
    networks = {"berth-env-x": {"IPAddress": "172.20.0.5"}, "bridge": {"IPAddress": "172.17.0.3"}}
    assert probe_address(networks, 20001, 8080) == ("172.17.0.3", 8080)
    assert probe_address({"berth-env-x": {"IPAddress": "172.20.0.5"}}, 20001, 8080) == ("172.20.0.5", 8080)
    # Only without any address the published port (docker-proxy) is left.
    assert probe_address({"none": {"IPAddress": ""}}, 20001, 8080) == ("127.0.0.1", 20001)


def test_without_any_check_a_tcp_probe_proves_the_app_listens():
    assert probe_kind(None, False, "none") == "tcp"
    assert probe_kind(None, False, "healthy") is None
    assert probe_kind("/health", False, "none") == "http"
    assert probe_kind(None, True, "healthy") == "tcp"


# -- 2.8 drain ---------------------------------------------------------------------------------
def test_unobserved_workers_make_the_drain_wait_until_its_timeout():
    # Zero connections and past the grace, but the workers were never seen.
    assert not drain_done(now=10, deadline=30, grace_end=3, connections=0, observed=False, settled=False)
    assert drain_done(now=30, deadline=30, grace_end=3, connections=0, observed=False, settled=False)
    assert drain_done(now=1, deadline=30, grace_end=3, connections=0, observed=True, settled=True)
    assert not drain_done(now=1, deadline=30, grace_end=3, connections=2, observed=True, settled=True)
    assert drain_done(now=3, deadline=30, grace_end=3, connections=0, observed=True, settled=False)


# -- 2.3 and 2.6: what a failed run leaves -----------------------------------------------------
def test_a_failed_run_never_removes_a_container_it_reused():
    assert abandon_action(created_here=False) == "stop"
    assert abandon_action(created_here=True) == "remove"


def test_a_container_whose_start_failed_is_not_reused():
    zero = "0001-01-01T00:00:00Z"
    assert not reusable({"Status": "created", "StartedAt": zero})
    assert not reusable({"Status": "exited", "StartedAt": zero})
    assert reusable({"Status": "exited", "StartedAt": "2026-03-01T10:00:00.5Z"})
    assert reusable({"Status": "running", "StartedAt": "2026-03-01T10:00:00.5Z"})


def test_ports_something_listens_on_are_taken():
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:4E20 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n"
        "   1: 0100007F:4E21 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n"
    )
    assert listening_ports(table) == {20000}


# -- 2.9 retention by when a container last served -------------------------------------------
def test_docker_times():
    assert docker_time("0001-01-01T00:00:00Z") is None
    assert docker_time("1970-01-01T00:01:00.500000000Z") == 60.5
    assert docker_time("1970-01-01T01:00:00+01:00") == 0
    assert docker_time("garbage") is None


def test_after_a_rollback_the_version_that_served_last_is_kept():
    # v1 served until 100, v2 (created later) from 100 to 200, then a
    # rollback made v1 serve until 300, when v3 came.
    stopped = [
        {"name": "v1", "created": "2026-01-01T00:00:00Z", "last_served": 300.0},
        {"name": "v2", "created": "2026-01-02T00:00:00Z", "last_served": 200.0},
    ]
    keep, remove = to_retain(stopped, 1)
    assert [c["name"] for c in keep] == ["v1"] and [c["name"] for c in remove] == ["v2"]
    # One that never served goes first.
    keep, _ = to_retain([*stopped, {"name": "v4", "created": "2026-01-04T00:00:00Z", "last_served": None}], 2)
    assert [c["name"] for c in keep] == ["v1", "v2"]


def test_when_a_container_last_served():
    state = {"StartedAt": "1970-01-01T00:00:10Z", "FinishedAt": "1970-01-01T00:01:00Z"}
    assert last_served("a", {"a": 500.0}, state) == 500.0
    assert last_served("a", {"a": None}, state) is None  # recorded as never served
    assert last_served("b", {}, state) == 60.0  # from before the record: when it stopped
    assert last_served("c", {}, {"StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"}) is None


def test_retain_zero_is_refused():
    assert "retain: 0 must be a whole number within 1-100" in spec_errors({"retain": 0})


# -- 2.13 the rollback target ------------------------------------------------------------------
def test_a_rollback_goes_to_the_version_that_served_last():
    stopped = [
        {"name": "web-v1", "version": "v1", "created": "1", "last_served": 100.0},
        {"name": "web-v2", "version": "v2", "created": "2", "last_served": 50.0},
        {"name": "web-v3", "version": "v3", "created": "3", "last_served": None},
    ]
    assert rollback_target(stopped)["name"] == "web-v1"
    assert rollback_target(stopped, "v2")["name"] == "web-v2"
    assert rollback_target(stopped, "v3") is None  # never served: not guessed
    assert rollback_target([]) is None


# -- section 3: log driver and restart policy, checked before the host is touched ----------
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"log_driver": "JSON File"}, "log_driver: 'JSON File' is not a log driver name"),
        ({"log_driver": "json-file", "log_options": {"max-size": "ten"}}, "log_options.max-size: 'ten' is not a size"),
        ({"log_driver": "json-file", "log_options": {"max-file": "0"}}, "log_options.max-file: '0' must be a whole number within 1-1000"),
        ({"restart_policy": "sometimes"}, "restart_policy: 'sometimes' is not one of no, always, unless-stopped, on-failure[:N]"),
    ],
)
def test_log_driver_and_restart_policy_are_checked(override, message):
    assert any(message in error for error in spec_errors(override)), spec_errors(override)


def test_good_log_and_restart_settings_pass():
    assert (
        spec_errors({"log_driver": "json-file", "log_options": {"max-size": "10m", "max-file": "3"}, "restart_policy": "on-failure:5"})
        == []
    )
    assert spec_errors({"log_driver": "journald", "restart_policy": "no"}) == []


# -- 2.12 numbers range-checked before any pull, naming the field -----------------------------
def test_role_numbers_name_the_variable_also_from_extra_vars():
    errors = settings_errors({"deadline": "-5", "max_fail_percentage": 150, "batch_size": "x", "retain": "2"})
    assert "rollout_deadline: '-5' must be a number within 1-86400 seconds" in errors
    assert "rollout_max_fail_percentage: 150 must be a whole number within 0-100 percent" in errors
    assert "rollout_batch_size: 'x' must be a whole number within 0-10000 or a percentage of a building within 1%-100%" in errors
    assert not any("retain" in e for e in errors)


@pytest.mark.parametrize("value", ["0%", "101%", "-5", "50 percent", "1.5"])
def test_a_batch_size_is_a_count_or_a_percentage_in_range(value):
    assert settings_errors({"batch_size": value}) == [
        "rollout_batch_size: %r must be a whole number within 0-10000 or a percentage of a building within 1%%-100%%" % value
    ]
    assert settings_errors({"batch_size": "25%"}) == settings_errors({"batch_size": "3"}) == []


def test_app_numbers_name_the_field():
    errors = app_errors({"web": {"hosts": "g", "image": "x", "deadline": -5, "retain": 0, "container_port": 0}})
    assert "berth_apps.web.deadline: -5 must be a number within 1-86400 seconds" in errors
    assert "berth_apps.web.retain: 0 must be a whole number within 1-100" in errors
    assert "berth_apps.web.container_port: 0 must be a whole number within 1-65535" in errors


def test_replicas_are_refused_clearly():
    (error,) = app_errors({"web": {"hosts": "g", "image": "x", "replicas": 2}})
    assert error.startswith("berth_apps.web.replicas: berth runs one container per app per host")


# -- 2.12 pull failures as the summary says them --------------------------------------------------
@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            'Get "https://10.82.1.11:5000/v2/": dial tcp 10.82.1.11:5000: connect: connection refused',
            "pull failed: 10.82.1.11:5000 unreachable",
        ),
        ("Get https://reg.example:5000/v2/: dial tcp: lookup reg.example: no such host", "pull failed: reg.example:5000 unreachable"),
        (
            "manifest for 10.82.1.11:5000/lab/demo:v9 not found: manifest unknown: manifest unknown",
            "pull failed: 10.82.1.11:5000/lab/demo:v9 not found in 10.82.1.11:5000",
        ),
        ("unauthorized: authentication required", "pull failed: unauthorized: authentication required"),
    ],
)
def test_pull_failures_name_the_registry(message, reason):
    image = "10.82.1.11:5000/lab/demo:v9" if "10.82" in message or "unauth" in message else "reg.example:5000/lab/demo:v9"
    assert pull_failure(message, image) == reason


# -- 2.1 and 2.4: the fleet's verdict and who goes back ------------------------------------------
def test_a_host_that_switched_and_then_failed_goes_back():
    failed_after_switch = {"failed": True, "switched": True, "old": {"name": "web-v1"}, "serving": {"name": "web-v2"}}
    assert revert_target(failed_after_switch) == "web-v1"
    assert revert_target({"failed": True, "switched": False, "old": {"name": "web-v1"}, "serving": {"name": "web-v1"}}) is None
    assert revert_target({"changed": True, "switched": True, "old": {}, "serving": {"name": "web-v2"}}) is None  # first deploy
    assert revert_target({"unreachable": True, "msg": "ssh: connect"}) is None


def test_an_unreachable_host_counts_as_failed_in_its_batch():
    statuses = {
        "a1": host_status({"prepare": {"serving": {"version": "v2"}}, "result": {"changed": True, "switched": True}}),
        "b2": host_status({"prepare": {"serving": {"version": "v2"}}, "result": {"unreachable": True, "msg": "ssh: no route"}}),
    }
    assert statuses["b2"]["failed"] and statuses["b2"]["result"] == "unreachable"
    assert fleet_verdict(statuses, [["a1"], ["b2"]], 0) == "1 of 1 hosts failed in the batch (b2), more than 0%"
    assert fleet_verdict(statuses, [["a1", "b2"]], 50) is None


def test_a_failure_known_before_the_start_stops_the_run_before_it_begins():
    statuses = {h: host_status({"prepare": {"serving": {"version": "v2"}}}) for h in ("a1", "a2", "b1", "c1")}
    statuses["b2"] = host_status({"prepare": {"unreachable": True, "msg": "Failed to connect to the host via ssh"}})
    assert fleet_verdict(statuses, [["a1"], ["a2"], ["b1"], ["b2"], ["c1"]], 0).startswith("1 of 1 hosts failed in the batch (b2)")


PLAN = {"app": "demo", "mode": "deploy", "version": "v1", "hosts": ["a1", "a2", "b1", "b2", "c1"]}
PLAN["batch_hosts"] = [[h] for h in PLAN["hosts"]]


def entry(building, before, result=None, revert=None, prepare=None):
    return {
        "building": building,
        "prepare": prepare or {"serving": {"name": "demo-" + before, "version": before}},
        "result": result,
        "revert": revert,
    }


def test_the_summary_of_a_stopped_rollout():
    switched = {"changed": True, "switched": True, "old": {"name": "demo-v2", "version": "v2"}, "serving": {"version": "v1"}}
    entries = {
        "a1": entry("bldg_a", "v2", switched, {"changed": True, "serving": {"version": "v2"}}),
        "a2": entry("bldg_a", "v2", switched, {"changed": True, "serving": {"version": "v2"}}),
        "b1": entry(
            "bldg_b",
            "v2",
            {
                "failed": True,
                "switched": False,
                "reason": "health: HTTP 404 from /health",
                "msg": "long\nmessage",
                "old": {"name": "demo-v2", "version": "v2"},
                "serving": {"name": "demo-v2", "version": "v2"},
            },
        ),
        "b2": entry("bldg_b", "v2"),
        "c1": entry("bldg_c", "v2"),
    }
    summary = rollout_summary(entries, PLAN)
    assert summary["stop"] == "1 of 1 hosts failed in the batch (b1), more than 0%"
    assert summary["revert"] == {"a1": "demo-v2", "a2": "demo-v2"}
    rows = {r["host"]: (r["old"], r["new"], r["result"], r["reason"]) for r in summary["hosts"]}
    assert rows == {
        "a1": ("v2", "v2", "rolled back", ""),
        "a2": ("v2", "v2", "rolled back", ""),
        "b1": ("v2", "v2", "failed", "health: HTTP 404 from /health"),
        "b2": ("v2", "v2", "not started", ""),
        "c1": ("v2", "v2", "not started", ""),
    }
    b1 = next(line for line in summary["lines"] if "b1" in line)
    assert "v2" in b1 and "-> v2" in b1 and b1.endswith("health: HTTP 404 from /health")
    assert summary["message"].startswith("rollout of demo v1 stopped: 1 of 1 hosts failed")


def test_the_summary_when_the_registry_is_down():
    pull = {"failed": True, "reason": "pull failed: 10.82.1.11:5000 unreachable", "serving": {"name": "demo-v2", "version": "v2"}}
    entries = {h: entry("bldg_a", "v2", prepare=pull) for h in PLAN["hosts"]}
    summary = rollout_summary(entries, PLAN)
    assert summary["stop"] and summary["revert"] == {}
    for line in summary["lines"][1:-1]:
        assert "v2         -> v2" in line and line.endswith("pull failed: 10.82.1.11:5000 unreachable"), line


def test_the_summary_of_an_unreachable_host():
    entries = {h: entry("bldg_a", "v2") for h in PLAN["hosts"]}
    entries["b2"]["prepare"] = {"unreachable": True, "msg": "Failed to connect to the host via ssh: no route to host"}
    summary = rollout_summary(entries, PLAN)
    b2 = next(r for r in summary["hosts"] if r["host"] == "b2")
    assert (b2["result"], b2["reason"]) == ("unreachable", "Failed to connect to the host via ssh: no route to host")


def test_check_mode_says_what_a_real_run_would_do():
    would = {"changed": True, "switched": False, "would_switch": True, "serving": {"version": "v2"}}
    assert host_status(entry("a", "v2", would)) == {"old": "v2", "new": "v2", "reason": "", "failed": False, "result": "would deploy"}
    assert host_status(entry("a", "v2", would), mode="rollback")["result"] == "would roll back"


def test_a_skipped_task_counts_as_not_run():
    assert host_status(entry("a", "v2", {"skipped": True, "changed": False}))["result"] == "not started"


def test_the_summary_of_a_rollback_run():
    plan = dict(PLAN, mode="rollback", version="")
    entries = {h: entry("bldg_a", "v2", {"changed": True, "switched": True, "serving": {"version": "v1"}}) for h in PLAN["hosts"]}
    entries["c1"]["prepare"] = {"failed": True, "reason": "no retained version: nothing that served here before is kept"}
    entries["c1"]["result"] = None
    summary = rollout_summary(entries, plan)
    assert summary["lines"][0] == "rollback of demo"
    assert [r["result"] for r in summary["hosts"]] == ["rolled back"] * 4 + ["failed"]
    assert summary["hosts"][-1]["reason"].startswith("no retained version")


@given(
    st.lists(st.sampled_from(["ok", "failed", "unreachable", "none"]), min_size=1, max_size=12),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=0, max_value=100),
)
def test_the_verdict_stops_exactly_at_the_first_batch_over_the_limit(outcomes, size, percentage):
    hosts = ["h%d" % i for i in range(len(outcomes))]
    results = {
        "ok": {"changed": True, "switched": True, "old": {"name": "old"}, "serving": {"name": "new"}},
        "failed": {"failed": True, "switched": False, "reason": "x"},
        "unreachable": {"unreachable": True, "msg": "x"},
        "none": None,
    }
    entries = {h: {"building": "b", "prepare": {}, "result": results[o]} for h, o in zip(hosts, outcomes)}
    batches = [hosts[i : i + size] for i in range(0, len(hosts), size)]
    plan = {"app": "a", "version": "v", "hosts": hosts, "batch_hosts": batches, "max_fail_percentage": percentage}
    summary = rollout_summary(entries, plan)
    over = [
        b for b in batches if sum(o in ("failed", "unreachable") for h, o in zip(hosts, outcomes) if h in b) * 100 > percentage * len(b)
    ]
    assert bool(summary["stop"]) == bool(over)
    # Only hosts whose result says they switched ever go back, and only when the run stopped.
    for host in summary["revert"]:
        assert outcomes[hosts.index(host)] == "ok" and summary["stop"]


# -- the plan -------------------------------------------------------------------------------------
APPS = {"demo": {"hosts": "docker_hosts", "image": "lab/demo"}}
GROUPS = {h: ["docker_hosts", "bldg_" + h[0]] for h in ("a1", "a2", "b1", "b2", "c1")}
BUILDING = {h: "bldg_" + h[0] for h in GROUPS}
REGISTRIES = {"bldg_a": "10.0.1.11:5000", "bldg_b": "10.0.1.11:5000", "bldg_c": "10.0.1.11:5000"}


def test_a_plan_checks_every_number_before_anything_starts():
    with pytest.raises(ValueError, match="rollout_deadline: -5 must be a number within 1-86400 seconds"):
        rollout_plan("demo", APPS, list(GROUPS), GROUPS, BUILDING, REGISTRIES, {"deadline": -5}, "v2")
    with pytest.raises(ValueError, match="version is required"):
        rollout_plan("demo", APPS, list(GROUPS), GROUPS, BUILDING, REGISTRIES, {}, "")


def test_a_plan_has_its_batches_as_host_lists():
    plan = rollout_plan("demo", APPS, sorted(GROUPS, reverse=True), GROUPS, BUILDING, REGISTRIES, {"batch_size": 0}, "v2")
    assert plan["hosts"] == ["a1", "a2", "b1", "b2", "c1"]
    assert plan["batches"] == [2, 2, 1]
    assert plan["batch_hosts"] == [["a1", "a2"], ["b1", "b2"], ["c1"]]


def test_a_percentage_batch_keeps_the_number_of_batches_as_buildings_grow():
    def batches(per_building, size):
        groups = {"%s%d" % (b, n): ["docker_hosts", "bldg_" + b] for b in "abc" for n in range(per_building)}
        building = {h: "bldg_" + h[0] for h in groups}
        return rollout_plan("demo", APPS, list(groups), groups, building, REGISTRIES, {"batch_size": size}, "v2")["batches"]

    assert batches(2, "50%") == [1, 1, 1, 1, 1, 1]
    assert batches(8, "50%") == [4, 4, 4, 4, 4, 4]
    # Rounded up: a building of 3 at 50% goes 2 then 1; never an empty batch.
    assert batches(3, "50%") == [2, 1, 2, 1, 2, 1]
    assert batches(1, "1%") == [1, 1, 1]
    assert batches(4, 1) == [1] * 12


def test_a_rollback_plan_takes_no_version_or_an_optional_one():
    assert rollout_plan("demo", APPS, list(GROUPS), GROUPS, BUILDING, {}, {}, "", "rollback")["version"] == ""
    assert rollout_plan("demo", APPS, list(GROUPS), GROUPS, BUILDING, {}, {}, "v1", "rollback")["version"] == "v1"
    with pytest.raises(ValueError, match="not a valid tag"):
        rollout_plan("demo", APPS, list(GROUPS), GROUPS, BUILDING, {}, {}, "bad version", "rollback")


# -- 2.5 nginx that does not serve its upstream file ---------------------------------------------
def test_nginx_staleness():
    written = {"sha256": "a", "mtime_ns": 1}
    assert not nginx_stale(written, written, ours=True)
    assert nginx_stale(written, None, ours=True)  # written, never seen applied
    assert not nginx_stale(written, None, ours=False)  # the proxy role's placeholder
    assert nginx_stale({"sha256": "a", "mtime_ns": 2}, written, ours=True)  # rewritten, same text


def test_an_upstream_file_lists_what_it_was_written_with():
    text = upstream_config("web", ["127.0.0.1:20001"])
    assert upstream_servers(text) == ["127.0.0.1:20001"] and written_by_berth(text)
    assert upstream_servers("upstream x {\n    server unix:/run/x.sock;\n    server 10.0.0.1:80 weight=2;\n}\n") == ["10.0.0.1:80"]
    assert not written_by_berth("# the proxy role's placeholder\n")


# -- issue 15, 2: an engine restart under load -----------------------------------------------
def inspected(running=True, ports=None, networks=None):
    return {"State": {"Running": running}, "NetworkSettings": {"Ports": ports or {}, "Networks": networks or {}}}


def test_published_loopback_ports_lead_to_the_containers_own_address():
    bridge = {"bridge": {"IPAddress": "172.17.0.2"}}
    containers = [
        inspected(
            ports={"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "20001"}], "9000/udp": [{"HostIp": "", "HostPort": "9000"}]},
            networks=bridge,
        ),
        inspected(ports={"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "20002"}]}, networks={"env-x": {"IPAddress": "10.200.0.5"}}),
        inspected(ports={"80/tcp": [{"HostIp": "10.77.1.11", "HostPort": "20003"}]}, networks=bridge),  # not on loopback
        inspected(ports={"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "20004"}]}, networks={"host": {"IPAddress": ""}}),
        inspected(running=False, ports={"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "20005"}]}, networks=bridge),
        inspected(ports={"80/tcp": None}, networks=bridge),  # exposed, not published
    ]
    assert published_addresses(containers) == {"127.0.0.1:20001": "172.17.0.2:8080", "127.0.0.1:20002": "10.200.0.5:80"}


def test_an_engine_restart_bridges_only_berths_single_published_upstreams():
    published = {"127.0.0.1:20001": "172.17.0.2:8080", "127.0.0.1:20002": "172.17.0.3:8080"}
    upstreams = {
        "web": upstream_config("web", ["127.0.0.1:20001"]),
        "api": upstream_config("api", ["127.0.0.1:20009"]),  # no running container publishes it
        "old": upstream_config("old", ["127.0.0.1:20002"], ["172.17.0.9:8080"]),  # a bridge left by a killed run
        "two": upstream_config("two", ["127.0.0.1:20001", "127.0.0.1:20002"]),
        "hand": "upstream berth_hand {\n    server 127.0.0.1:20002;\n}\n",  # not berth's
        "new": "# Placeholder until docker_rollout deploys new.\nupstream berth_new {\n    server 127.0.0.1:9 down;\n}\n",
    }
    bridges = engine_bridges(upstreams, published)
    assert sorted(bridges) == ["old", "web"]
    # A left backup whose port nothing publishes now is removed, none added.
    gone = engine_bridges({"old": upstreams["old"]}, {})
    assert gone == {"old": (upstream_config("old", ["127.0.0.1:20002"]),) * 2}
    bridged, restored = bridges["web"]
    assert upstream_servers(bridged) == ["127.0.0.1:20001"]
    assert upstream_backups(bridged) == ["172.17.0.2:8080"]
    assert "server 172.17.0.2:8080 max_fails=0 backup;" in bridged
    assert restored == upstreams["web"]
    # The left bridge gets the address the container has now, and goes after.
    assert upstream_backups(bridges["old"][0]) == ["172.17.0.3:8080"]
    assert bridges["old"][1] == upstream_config("old", ["127.0.0.1:20002"])


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True),
        st.tuples(
            st.lists(st.integers(20000, 20010).map(lambda port: "127.0.0.1:%d" % port), min_size=0, max_size=2),
            st.lists(st.ip_addresses(v=4).map(lambda ip: "%s:8080" % ip), max_size=1),
        ),
        max_size=6,
    ),
    st.dictionaries(st.integers(20000, 20010).map(lambda port: "127.0.0.1:%d" % port), st.ip_addresses(v=4).map(lambda ip: "%s:8080" % ip)),
)
def test_a_bridge_keeps_the_primary_and_adds_only_its_own_containers_address(servers_of, published):
    upstreams = {app: upstream_config(app, servers, backups) for app, (servers, backups) in servers_of.items()}
    bridges = engine_bridges(upstreams, published)
    for app, (bridged, restored) in bridges.items():
        # nginx still tries the published port first: a rollout reads the same server.
        assert upstream_servers(bridged) == upstream_servers(restored) == upstream_servers(upstreams[app])
        primary = upstream_servers(bridged)[0]
        # Only ever the address behind that very port; a left one whose port is gone just goes.
        assert upstream_backups(bridged) == ([published[primary]] if primary in published else [])
        assert upstream_backups(restored) == []
    assert set(bridges) == {
        app for app, (servers, backups) in servers_of.items() if len(servers) == 1 and (servers[0] in published or backups)
    }


def test_backups_only_where_the_containers_run_on_through_the_restart():
    assert live_restore_kept({"LiveRestoreEnabled": True}, {"live-restore": True})
    assert not live_restore_kept({"LiveRestoreEnabled": True}, {"live-restore": False})  # turned off by this change
    assert not live_restore_kept({"LiveRestoreEnabled": False}, {"live-restore": True})  # the running engine stops them
    assert not live_restore_kept({}, {})


def test_engine_restart_options_are_range_checked():
    good = {"wait_timeout": 60, "lock_timeout": 600, "service": "docker"}
    assert restart_option_errors(good) == []
    errors = restart_option_errors({"wait_timeout": 0, "lock_timeout": 4000, "service": "docker; reboot"})
    assert len(errors) == 3
    assert "wait_timeout must be between 5 and 600 seconds, got 0" in errors
