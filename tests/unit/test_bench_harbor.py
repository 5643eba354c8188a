"""The harbor bench's request sequence on a few projects: counts and the end
state only, never times (the shared machine makes those noisy)."""

import importlib.util
import os

import pytest

RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "run.py")
spec = importlib.util.spec_from_file_location("bench_run", RUN)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return bench.throwaway_tls(tmp_path_factory.mktemp("tls"), ["IP:127.0.0.1"])


@pytest.mark.parametrize(
    "open_url_per_request, client_per_task, connections",
    [(True, False, 15), (True, True, 15), (False, False, 1), (False, True, 6)],
)
def test_both_transports_send_the_same_requests_and_leave_the_same_projects(tls, open_url_per_request, client_per_task, connections):
    _seconds, changed, opened, requests, projects = bench.harbor_run(tls, 3, open_url_per_request, client_per_task)
    # Create: look up, POST, read back; again: look up and quota. A connection each, or one per client.
    assert changed == [3, 0] and requests == 15 and opened == connections
    assert [name for name, _metadata, _quota in projects] == ["bench-000", "bench-001", "bench-002"]
    assert all(quota == 10 * 1024**3 and ("auto_scan", "true") in metadata for _name, metadata, quota in projects)
