"""The build pool's rules (issue 15, section 4): builds start in arrival
order within a builder's slots, a dead build frees its slot, and builds that
arrive together spread over the pool with cache affinity first."""

import multiprocessing
import os
import signal
import time

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_build_queue import (
    is_live,
    may_start,
    option_errors,
    pick,
    pick_builder,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_build_queue_client import BuildQueueClient, hold
from hypothesis import given, settings
from hypothesis import strategies as st
from modrun import run_module


def ticket(ticket_id, created, state="reserved", key=None, affinity=False, lease_until=1e12):
    return {"id": ticket_id, "created": created, "state": state, "key": key or ticket_id, "affinity": affinity, "lease_until": lease_until}


def test_builds_start_in_arrival_order_within_the_slots():
    queue = [ticket("c", 3, state="waiting"), ticket("a", 1, state="waiting"), ticket("b", 2, state="waiting")]
    assert may_start("a", queue, 2) == (True, None)
    assert may_start("b", queue, 2) == (True, None)
    allowed, why = may_start("c", queue, 2)
    assert not allowed and "2 ahead" in why


def test_builds_queue_in_the_order_they_were_sent_here():
    early = dict(ticket("early", 1, state="waiting"), sent=9)
    late = dict(ticket("late", 2, state="waiting"), sent=5)
    assert may_start("late", [early, late], 1) == (True, None)
    assert may_start("early", [early, late], 1)[0] is False


def test_a_reservation_that_may_go_elsewhere_holds_nobody_back():
    # "gone" reserved on every builder, and its control node died.
    queue = [ticket("gone", 1, key="app-web"), ticket("mine", 2, state="waiting", key="app-web")]
    assert may_start("mine", queue, 1) == (True, None)


def test_a_running_build_holds_its_slot_whenever_it_arrived():
    queue = [ticket("a", 1, state="waiting"), ticket("late", 9, state="running")]
    assert may_start("a", queue, 1)[0] is False
    assert may_start("a", queue, 2)[0] is True


def test_two_builds_of_one_context_never_run_together():
    queue = [ticket("a", 1, state="running", key="app-web"), ticket("b", 2, state="waiting", key="app-web")]
    allowed, why = may_start("b", queue, 4)
    assert not allowed and "app-web" in why


def test_a_ticket_lives_by_its_lease_or_its_lock():
    assert is_live({"id": "a", "lease_until": 20}, now=10, held=set())
    assert not is_live({"id": "a", "lease_until": 5}, now=10, held=set())
    assert is_live({"id": "a", "lease_until": 0}, now=10, held={"a"})


@pytest.mark.parametrize(
    "options, message",
    [
        ({"state": "reserve", "ticket": None}, "ticket: required"),
        ({"state": "status", "ticket": "Web 1"}, "ticket 'Web 1'"),
        ({"state": "status", "max_concurrent": 0}, "max_concurrent: 0 is out of range (1 to 64)"),
        ({"state": "status", "max_concurrent": 65}, "max_concurrent: 65"),
        ({"state": "status", "lease": 5}, "lease: 5 is out of range"),
        ({"state": "status", "poll": 30.0}, "poll: 30.0"),
    ],
)
def test_bad_options_are_named(options, message):
    assert any(message in error for error in option_errors(options))


def reserved_everywhere(count, hosts=("b1", "b2", "b3"), affinity=()):
    return {
        host: {"max_concurrent": 2, "tickets": [ticket("t%02d" % n, n, affinity=host in affinity) for n in range(count)]} for host in hosts
    }


def test_builds_that_arrive_together_spread_over_the_pool():
    pool = reserved_everywhere(12)
    chosen = [pick(pool, "t%02d" % n)[0] for n in range(12)]
    assert {host: chosen.count(host) for host in pool} == {"b1": 4, "b2": 4, "b3": 4}


def test_the_builder_with_the_cache_fills_its_slots_first():
    pool = reserved_everywhere(4, affinity=("b3",))
    host, why = pick(pool, "t00")
    assert host == "b3" and "base image" in why
    assert pick(pool, "t01")[0] == "b3"
    # b3 is full: the next go to the least loaded.
    assert [pick(pool, "t02")[0], pick(pool, "t03")[0]] == ["b1", "b2"]


def test_a_build_still_reserving_counts_on_its_whole_pool():
    # t00 has reached b1's queue only; its pool is all three.
    pool = reserved_everywhere(2)
    pool["b2"]["tickets"] = [t for t in pool["b2"]["tickets"] if t["id"] != "t00"]
    pool["b3"]["tickets"] = [t for t in pool["b3"]["tickets"] if t["id"] != "t00"]
    for host in pool:
        for t in pool[host]["tickets"]:
            t["pool"] = ["b1", "b2", "b3"]
    pool["b1"]["max_concurrent"] = pool["b2"]["max_concurrent"] = pool["b3"]["max_concurrent"] = 1
    assert [pick(pool, "t00")[0], pick(pool, "t01")[0]] == ["b1", "b2"]


def test_a_build_sent_to_a_builder_waits_there():
    pool = reserved_everywhere(1)
    pool["b3"]["tickets"].append(ticket("early", 0, state="waiting"))
    assert pick(pool, "early") == ("b3", "waits there")
    assert pick(pool, "t00")[0] == "b1"


def test_running_builds_count_as_load():
    pool = reserved_everywhere(1)
    pool["b1"]["tickets"].append(ticket("x", 0, state="running"))
    pool["b2"]["tickets"].append(ticket("y", 0, state="running"))
    assert pick(pool, "t00")[0] == "b3"


def test_builds_of_one_context_go_to_different_builders():
    pool = {host: {"max_concurrent": 2, "tickets": [ticket("a", 1, key="web"), ticket("b", 2, key="web")]} for host in ("b1", "b2")}
    assert {pick(pool, "a")[0], pick(pool, "b")[0]} == {"b1", "b2"}


def test_a_builder_that_did_not_answer_is_left_out():
    answered = reserved_everywhere(1, hosts=("b2",))
    hostvars = {"b1": {"build_queue": {"failed": True, "msg": "unreachable"}}, "b2": {"build_queue": dict(answered["b2"])}}
    assert pick_builder(["b1", "b2"], hostvars, "t00") == {
        "host": "b2",
        "why": "the only builder of its pool that answered",
        "answered": ["b2"],
    }
    with pytest.raises(ValueError, match="no builder of the pool"):
        pick_builder(["b1"], hostvars, "t00")


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=30),
    st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=5),
    st.sets(st.integers(min_value=0, max_value=4)),
)
def test_a_simultaneous_burst_never_leaves_a_builder_idle_while_another_queues(count, slots, cached):
    hosts = ["h%d" % n for n in range(len(slots))]
    pool = {
        host: {"max_concurrent": slots[n], "tickets": [ticket("t%02d" % i, i, affinity=n in cached) for i in range(count)]}
        for n, host in enumerate(hosts)
    }
    chosen = [pick(pool, "t%02d" % i)[0] for i in range(count)]
    load = {host: chosen.count(host) for host in hosts}
    # Nobody waits for a slot while a builder has one free.
    if any(load[h] > pool[h]["max_concurrent"] for h in hosts):
        assert all(load[h] >= pool[h]["max_concurrent"] for h in hosts)
    # Every build decides alike: asking again gives the same answer.
    assert chosen == [pick(pool, "t%02d" % i)[0] for i in range(count)]


def reserve(queue, ticket_id, created, lease=600, state="reserved", key=None):
    queue.write({"id": ticket_id, "key": key or ticket_id, "state": state, "created": created, "lease_until": time.time() + lease})


def test_the_client_forgets_a_ticket_whose_lease_ran_out(tmp_path):
    with BuildQueueClient(str(tmp_path)) as queue:
        reserve(queue, "old", 1, lease=-1)
        reserve(queue, "new", 2)
        assert [t["id"] for t in queue.tickets()] == ["new"]
    assert sorted(os.listdir(tmp_path)) == [".queue.lock", "new.json", "new.lock"]


def test_check_mode_reads_and_creates_nothing(tmp_path):
    missing = tmp_path / "queue"
    with BuildQueueClient(str(missing), readonly=True) as queue:
        assert queue.tickets() == []
    assert not missing.exists()


def hold_then_die(directory, ticket_id, ready):
    held = hold(directory, ticket_id)
    ready.put(held is not None)
    time.sleep(60)


def test_a_killed_build_frees_its_slot_at_once(tmp_path):
    directory = str(tmp_path)
    with BuildQueueClient(directory) as queue:
        reserve(queue, "build", 1, state="running")
    ready = multiprocessing.Queue()
    process = multiprocessing.Process(target=hold_then_die, args=(directory, "build", ready))
    process.start()
    try:
        assert ready.get(timeout=30) is True
        with BuildQueueClient(directory) as queue:
            [live] = queue.tickets()
            # The lease is over: only the lock keeps it.
            assert live["lease_until"] == 0
        os.kill(process.pid, signal.SIGKILL)
        process.join(30)
        with BuildQueueClient(directory) as queue:
            assert queue.tickets() == []
    finally:
        if process.is_alive():
            process.kill()


def test_only_a_running_ticket_can_be_held(tmp_path):
    directory = str(tmp_path)
    with BuildQueueClient(directory) as queue:
        reserve(queue, "waiting", 1)
    assert hold(directory, "waiting") is None
    assert hold(directory, "absent") is None


def build_slot(tmp_path, check=False, **args):
    """Run the build_slot module itself on a queue in tmp_path."""
    args = dict(args, queue_dir=str(tmp_path / "queue"), docker_host="unix:///nonexistent.sock")
    return run_module("build_slot", tmp_path, args, check=check)


def test_the_module_in_check_mode_writes_nothing_and_does_not_wait(tmp_path):
    reserved = build_slot(tmp_path, check=True, state="reserve", ticket="web-1", pool=["b1", "b2"])
    assert reserved["queued"] is True and reserved["changed"] is False
    acquired = build_slot(tmp_path, check=True, state="acquire", ticket="web-1", max_concurrent=1)
    assert acquired["acquired"] is True and not acquired.get("failed")
    assert not (tmp_path / "queue").exists()


def test_the_module_waits_its_turn_and_keeps_its_place(tmp_path):
    for ticket_id in ("first", "second"):
        build_slot(tmp_path, state="reserve", ticket=ticket_id, pool=["b1"])
    assert build_slot(tmp_path, state="acquire", ticket="first", max_concurrent=1)["acquired"] is True
    second = build_slot(tmp_path, state="acquire", ticket="second", max_concurrent=1, wait_timeout=1, poll=0.2)
    assert second["acquired"] is False and "1 running" in second["would_wait"]
    assert [(t["id"], t["state"], t["pool"]) for t in second["tickets"]] == [("first", "running", ["b1"]), ("second", "waiting", ["b1"])]
    assert build_slot(tmp_path, state="release", ticket="first")["released"] is True
    assert build_slot(tmp_path, state="acquire", ticket="second", max_concurrent=1, wait_timeout=1)["acquired"] is True
    # Asked again, a running ticket still holds its slot.
    assert build_slot(tmp_path, state="acquire", ticket="second", max_concurrent=1)["acquired"] is True


def test_the_module_refuses_bad_options_before_touching_the_queue(tmp_path):
    result = build_slot(tmp_path, state="reserve", ticket="Web 1", max_concurrent=0)
    assert result["failed"] and "max_concurrent: 0 is out of range (1 to 64)" in result["msg"]
    assert not (tmp_path / "queue").exists()
