"""The image-cleanup report: what every host and registry kept and removed,
which hosts were missing, in JSON and as readable lines.

Everything in it comes from the modules' own results: whether a module ran
in check mode, what it really removed or deleted. Nothing is inferred from
how the run was asked to behave."""


def _failed(result):
    return result.get("failed") is True or bool(result.get("failures"))


def _summary(result):
    if not result:
        return None
    if result.get("skipped"):
        return {"status": "skipped"}
    refused = bool(result.get("refused"))
    check_mode = result.get("check_mode")
    done = result.get("deleted") if "deleted" in result else result.get("images_removed")
    done = list(done or [])
    return {
        "status": "refused" if refused else "failed" if _failed(result) else "ok",
        # A result without check_mode never got far enough to act.
        "check_mode": bool(check_mode) if check_mode is not None else None,
        "kept": len(result.get("kept") or []),
        "removed": len(result.get("removed") or []),
        "untagged": len(result.get("untagged") or []),
        "planned": len(result.get("planned") or []),
        "planned_bytes": result.get("planned_bytes", 0),
        "deleted": len(done),
        "deleted_refs": sorted(done),
        "bytes": result.get("bytes", 0),
        "failures": result.get("failures") or [],
        "unknown": result.get("unknown") or [],
        "missing_hosts": result.get("missing_hosts") or [],
        "message": result.get("msg", ""),
        "changed": bool(result.get("changed")),
        "gc": result.get("gc"),
        "removed_refs": result.get("removed") or [],
        "empty": bool(result.get("empty")),
    }


def cleanup_report(docker_hosts, results, registries, harbors, missing, requested_dry_run, finished, in_use=None):
    """`results`/`registries`: {name: module result or None}; `harbors`: [result];
    `in_use`: {host: the in-use facts it reported}."""
    in_use = in_use or {}
    hosts = {}
    for host in sorted(docker_hosts):
        entry = _summary(results.get(host)) or {"status": "missing"}
        facts = in_use.get(host)
        entry["in_use"] = {"containers": facts.get("containers"), "digests": len(facts.get("digests") or [])} if facts else None
        hosts[host] = entry
    registry_entries = {name: _summary(result) or {"status": "not run"} for name, result in sorted(registries.items())}
    harbor_entries = [_summary(result) or {"status": "not run"} for result in harbors]
    ran = [e for e in [*hosts.values(), *registry_entries.values(), *harbor_entries] if e.get("check_mode") is not None]
    deleted = sum(e.get("deleted", 0) for e in ran)
    registry_deleted = sum(e.get("deleted", 0) for e in [*registry_entries.values(), *harbor_entries])
    refusals = sorted({h for e in [*registry_entries.values(), *harbor_entries] for h in e.get("missing_hosts") or []})
    missing = sorted(set(missing) | set(refusals))
    statuses = {e.get("status") for e in [*hosts.values(), *registry_entries.values(), *harbor_entries]}
    status = "refused" if missing or "refused" in statuses else "failed" if statuses & {"failed", "not run"} else "ok"
    if missing:
        message = "registry prune refused (fail closed): no in-use list from %s; %s" % (
            ", ".join(missing),
            "nothing was deleted from any registry"
            if not registry_deleted
            else "%d manifest(s) were deleted from registries" % registry_deleted,
        )
    elif status != "ok":
        message = (
            "; ".join(
                "%s %s: %s" % (kind, name, e.get("message") or e.get("status"))
                for kind, entries in (("host", hosts), ("registry", registry_entries))
                for name, e in entries.items()
                if e.get("status") in ("failed", "refused", "not run")
            )
            or "see the failures in the report"
        )
    else:
        message = ""
    return {
        "finished": finished,
        "requested_dry_run": bool(requested_dry_run),
        # From the modules: a dry run only if every module that ran planned only.
        "dry_run": bool(ran) and all(e["check_mode"] for e in ran),
        "deleted": deleted,
        "status": status,
        "message": message,
        "missing_hosts": missing,
        "hosts": hosts,
        "registries": registry_entries,
        "harbors": harbor_entries,
    }


def _size(count):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return ("%d %s" % (count, unit)) if unit == "B" else ("%.1f %s" % (count, unit))
        count /= 1024.0
    return str(count)


def _line(label, name, entry):
    if entry.get("check_mode"):
        done = "would remove %d (%s)" % (entry["removed"], _size(entry.get("planned_bytes", 0)))
    else:
        done = "removed %d (%s)" % (entry["deleted"], _size(entry["bytes"]))
    if entry.get("empty"):
        return "  %-8s %-24s empty, nothing to prune" % (label, name)
    return "  %-8s %-24s kept %d, %s%s%s%s" % (
        label,
        name,
        entry["kept"],
        done,
        ", untagged %d" % entry["untagged"] if entry["untagged"] else "",
        ", %d failed" % len(entry["failures"]) if entry["failures"] else "",
        ", %d unknown" % len(entry["unknown"]) if entry.get("unknown") else "",
    )


def cleanup_summary(report):
    dry_run = report["dry_run"] and not report.get("deleted")
    lines = ["image cleanup%s: %s" % (" (dry run)" if dry_run else "", report["status"])]
    for kind, label in (("hosts", "host"), ("registries", "registry")):
        for name, entry in report[kind].items():
            if entry.get("status") in ("missing", "not run", "skipped") or entry.get("check_mode") is None:
                lines.append("  %-8s %-24s %s" % (label, name, entry["status"].upper()))
                continue
            lines.append(_line(label, name, entry))
    for index, entry in enumerate(report.get("harbors") or []):
        if entry.get("check_mode") is None:
            lines.append("  %-8s %-24s %s" % ("harbor", "#%d" % index, entry["status"].upper()))
        else:
            lines.append(_line("harbor", "#%d" % index, entry))
    if report["message"]:
        lines.append("  " + report["message"])
    return lines


def report_from_hostvars(docker_hosts, hostvars, registry_hosts, dry_run, finished):
    """cleanup_report from what every host registered (in-use lists, module
    results). `dry_run` is only what was asked; the report says what the
    modules did."""
    results, registries, missing, in_use = {}, {}, [], {}
    for host in docker_hosts:
        facts = hostvars[host]
        if "image_cleanup_in_use" not in facts:
            missing.append(host)
        else:
            in_use[host] = facts["image_cleanup_in_use"]
        results[host] = facts.get("image_cleanup_host_result")
    for host in registry_hosts:
        registries[host] = hostvars[host].get("image_cleanup_registry_result")
    harbor = (hostvars["localhost"].get("image_cleanup_harbor_result") or {}).get("results") or [] if "localhost" in hostvars else []
    return cleanup_report(docker_hosts, results, registries, harbor, missing, dry_run, finished, in_use)
