"""The image-cleanup report: what every host and registry kept and removed,
which hosts were missing, in JSON and as readable lines."""


def _summary(result):
    if not result:
        return None
    if result.get("skipped"):
        return {"status": "skipped"}
    return {
        "status": "failed" if result.get("failed") is True or (isinstance(result.get("failed"), list) and result["failed"]) else "ok",
        "kept": len(result.get("kept") or []),
        "removed": len(result.get("removed") or []),
        "untagged": len(result.get("untagged") or []),
        "deleted": len(result.get("deleted") or result.get("images_removed") or []),
        "bytes": result.get("bytes", 0),
        "failures": result.get("failed") if isinstance(result.get("failed"), list) else [],
        "message": result.get("msg", ""),
        "changed": bool(result.get("changed")),
        "gc": result.get("gc"),
        "removed_refs": result.get("removed") or [],
    }


def cleanup_report(docker_hosts, results, registries, harbors, missing, dry_run, finished):
    """`results`/`registries`: {name: module result or None}; `harbors`: [result]."""
    entries = [_summary(r) for r in [*results.values(), *registries.values(), *harbors]]
    failed = any(entry and entry.get("status") == "failed" for entry in entries)
    return {
        "finished": finished,
        "dry_run": bool(dry_run),
        "status": "refused" if missing else "failed" if failed else "ok",
        "missing_hosts": sorted(missing),
        "hosts": {host: _summary(results.get(host)) or {"status": "missing"} for host in sorted(docker_hosts)},
        "registries": {name: _summary(result) or {"status": "not run"} for name, result in sorted(registries.items())},
        "harbors": [_summary(result) for result in harbors],
    }


def _size(count):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return ("%d %s" % (count, unit)) if unit == "B" else ("%.1f %s" % (count, unit))
        count /= 1024.0
    return str(count)


def cleanup_summary(report):
    verb = "would remove" if report["dry_run"] else "removed"
    lines = ["image cleanup%s: %s" % (" (dry run)" if report["dry_run"] else "", report["status"])]
    for kind, label in (("hosts", "host"), ("registries", "registry")):
        for name, entry in report[kind].items():
            if entry.get("status") in ("missing", "not run", "skipped"):
                lines.append("  %-8s %-24s %s" % (label, name, entry["status"].upper()))
                continue
            lines.append(
                "  %-8s %-24s kept %d, %s %d (%s)%s%s"
                % (
                    label,
                    name,
                    entry["kept"],
                    verb,
                    entry["removed"],
                    _size(entry["bytes"]),
                    ", untagged %d" % entry["untagged"] if entry["untagged"] else "",
                    ", %d failed" % len(entry["failures"]) if entry["failures"] else "",
                )
            )
    if report["missing_hosts"]:
        lines.append("  registry prune refused: no in-use list from %s" % ", ".join(report["missing_hosts"]))
    return lines
