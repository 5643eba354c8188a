"""The cleanup report says what the modules did, from their own results,
whatever the run was asked to do."""

from ansible_collections.berth.ops.plugins.module_utils.berth_cleanup import cleanup_report, cleanup_summary

HOSTS = ["lab-a1", "lab-b2"]


def host_result(check_mode, removed=("r:1",), images=("sha256:i1",)):
    return {
        "check_mode": check_mode,
        "changed": True,
        "kept": ["r:2"],
        "removed": list(removed),
        "untagged": [],
        "planned": list(images),
        "planned_bytes": 300,
        "images_removed": [] if check_mode else list(images),
        "bytes": 0 if check_mode else 300,
        "failures": [],
    }


def registry_result(check_mode, deleted=()):
    return {
        "check_mode": check_mode,
        "changed": bool(deleted) or check_mode,
        "kept": ["lab/web:3"],
        "removed": ["lab/web:1", "lab/web:2"],
        "planned": ["lab/web@sha256:1", "lab/web@sha256:2"],
        "planned_bytes": 2048,
        "deleted": list(deleted),
        "bytes": 1024 * len(deleted),
        "failures": [],
        "unknown": [],
        "refused": False,
        "missing_hosts": [],
    }


def test_deletes_that_happened_are_reported_even_when_a_dry_run_was_asked_for():
    # The bug: "-e image_cleanup_dry_run=false" was read as a dry run by the report.
    deleted = ["lab/web@sha256:1", "lab/web@sha256:2"]
    report = cleanup_report(
        HOSTS, {"lab-a1": host_result(False)}, {"lab-a1": registry_result(False, deleted)}, [], ["lab-b2"], "false", "now"
    )
    assert report["dry_run"] is False and report["deleted"] == 3
    assert report["registries"]["lab-a1"]["deleted_refs"] == deleted
    assert report["status"] == "refused"
    assert (
        report["message"] == "registry prune refused (fail closed): no in-use list from lab-b2; 2 manifest(s) were deleted from registries"
    )
    lines = cleanup_summary(report)
    assert lines[0] == "image cleanup: refused"
    assert "removed 2 (2.0 KiB)" in lines[3]


def test_a_dry_run_is_one_only_when_every_module_planned_only():
    results = {h: host_result(True) for h in HOSTS}
    report = cleanup_report(HOSTS, results, {"lab-a1": registry_result(True)}, [], [], True, "now")
    assert report["dry_run"] is True and report["deleted"] == 0 and report["status"] == "ok"
    lines = cleanup_summary(report)
    assert lines[0] == "image cleanup (dry run): ok"
    assert "would remove 2 (2.0 KiB)" in lines[-1]
    mixed = cleanup_report(HOSTS, results, {"lab-a1": registry_result(False, ["lab/web@sha256:1"])}, [], [], True, "now")
    assert mixed["dry_run"] is False and cleanup_summary(mixed)[0] == "image cleanup: ok"


def test_the_module_refusal_names_the_hosts_and_nothing_deleted():
    refused = dict(registry_result(False), refused=True, missing_hosts=["lab-b2"], failed=True, msg="registry prune refused ...")
    refused["deleted"] = []
    report = cleanup_report(HOSTS, {h: host_result(False) for h in HOSTS}, {"lab-a1": refused}, [], [], False, "now")
    assert report["status"] == "refused" and report["missing_hosts"] == ["lab-b2"]
    assert report["message"].endswith("no in-use list from lab-b2; nothing was deleted from any registry")


def test_failures_unknowns_and_missing_results_are_visible():
    partial = dict(
        registry_result(False, ["lab/web@sha256:1"]), failed=True, failures=[{"ref": "lab/web@sha256:2", "error": "unreachable"}]
    )
    partial["msg"] = "1 delete(s) failed"
    report = cleanup_report(HOSTS, {"lab-a1": host_result(False)}, {"lab-a1": partial}, [], [], False, "now", {"lab-a1": {}})
    assert report["status"] == "failed" and report["registries"]["lab-a1"]["deleted"] == 1
    assert "registry lab-a1: 1 delete(s) failed" in report["message"]
    assert "1 failed" in cleanup_summary(report)[-2]
    assert report["hosts"]["lab-b2"]["status"] == "missing"
    not_run = cleanup_report(["lab-a1"], {"lab-a1": host_result(False)}, {"lab-a1": None}, [], [], False, "now")
    assert not_run["status"] == "failed" and "NOT RUN" in cleanup_summary(not_run)[-2]


def test_idle_hosts_report_how_much_they_run():
    in_use = {"lab-a1": {"containers": 0, "digests": []}, "lab-b2": {"containers": 2, "digests": ["r@sha256:1"]}}
    report = cleanup_report(HOSTS, {h: host_result(True) for h in HOSTS}, {}, [], [], True, "now", in_use)
    assert report["hosts"]["lab-a1"]["in_use"] == {"containers": 0, "digests": 0}
    assert report["hosts"]["lab-b2"]["in_use"] == {"containers": 2, "digests": 1}
