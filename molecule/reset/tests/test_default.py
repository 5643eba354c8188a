"""Verify of the reset scenario: the host after playbooks/reset.yml -e
reset_engine=true, compared with the snapshot taken before berth's first
converge. Every difference left must be one the README lists as deliberate
(the names below, each with its reason); anything else is something the
reset left behind."""

import fnmatch

import pytest

SNAPSHOTS = "/var/tmp/berth-snapshot"

# Packages berth's roles install besides the engine, which a reset leaves
# installed (one may have been the admin's before berth, and removing one
# can take others with it): nginx (proxy), and the Python libraries
# Ansible's modules use on the host (registry, pki).
KEPT_PACKAGES = {"nginx", "python3-yaml", "python3-passlib", "python3-bcrypt", "python3-cryptography"}

# Files a reset leaves besides those of the kept packages, with the reason.
DELIBERATE_FILES = {
    # nginx stays, enabled, serving its package's default site again: its
    # boot links, its default site's link, its runtime directory.
    "/etc/rc[0-6].d/[SK][0-9][0-9]nginx": "nginx stays",
    "/etc/systemd/system/multi-user.target.wants/nginx.service": "nginx stays",
    "/etc/nginx/sites-enabled/default": "nginx stays",
    "/var/lib/nginx": "nginx stays",
    "/var/lib/nginx/*": "nginx stays",
}
# Accounts the registry's package made: Debian leaves a package's system
# account when it is purged (files may still belong to it), and so does berth.
DELIBERATE_USERS = {"docker-registry"}


def sections(text):
    found, current = {}, None
    for line in text.splitlines():
        if line.startswith("== "):
            current = found.setdefault(line[3:], [])
        elif current is not None and line:
            current.append(line)
    return found


@pytest.fixture(scope="module")
def snapshots(host):
    return tuple(sections(host.file("%s/%s" % (SNAPSHOTS, name)).content_string) for name in ("before", "after"))


def difference(before, after, key):
    return sorted(set(before.get(key, [])) ^ set(after.get(key, [])))


def shown(lines):
    return "\n  " + "\n  ".join(lines)


def test_only_the_packages_berth_leaves_are_new(snapshots):
    before, after = snapshots
    removed = set(before["packages"]) - set(after["packages"])
    assert removed == set(), "the reset removed packages that were there before berth: %s" % sorted(removed)
    manual = set(after["manual"]) - set(before["manual"])
    assert manual <= KEPT_PACKAGES, "installed by berth and left: %s" % sorted(manual - KEPT_PACKAGES)


def test_no_file_is_left_or_changed_but_the_deliberate_ones(host, snapshots):
    before, after = snapshots
    owned = set()
    for package in set(after["packages"]) - set(before["packages"]):
        owned.update(host.run("dpkg -L %s" % package).stdout.split())
    data_root = host.run("mountpoint -q /var/lib/docker").rc == 0
    left = []
    for line in difference(before, after, "files"):
        path = line.split()[0]
        if path in owned or any(fnmatch.fnmatchcase(path, pattern) for pattern in DELIBERATE_FILES):
            continue
        # A data root that is a volume of its own is emptied, not removed; it
        # keeps the mode Docker gave it.
        if data_root and path == "/var/lib/docker":
            continue
        left.append(line)
    assert left == [], "left or changed by berth:" + shown(left)


def test_accounts_are_as_before_but_the_registry_packages(snapshots):
    before, after = snapshots
    users = [name for name in difference(before, after, "users") if name not in DELIBERATE_USERS]
    groups = [line for line in difference(before, after, "groups") if line.split(":")[0] not in DELIBERATE_USERS]
    assert users == [] and groups == [], "accounts:" + shown(users + groups)


def test_units_are_as_before_but_nginx(snapshots):
    before, after = snapshots
    left = [line for line in difference(before, after, "unit-files") if not line.startswith("nginx.service ")]
    assert left == [], "unit files:" + shown(left)
    # Targets the services pulled in stay reached until the next boot.
    left = [unit for unit in difference(before, after, "active") if unit != "nginx.service" and not unit.endswith(".target")]
    assert left == [], "active units:" + shown(left)


def tables(lines):
    """iptables-save by table, without a table that holds no rule and only
    built-in chains at ACCEPT: the same as one never loaded."""
    found, table = {}, None
    for line in lines:
        if line.startswith("*"):
            table = found.setdefault(line[1:], [])
        elif line != "COMMIT" and table is not None:
            table.append(line)
    return {
        name: sorted(body) for name, body in found.items() if not all(line.startswith(":") and line.split()[1] == "ACCEPT" for line in body)
    }


@pytest.mark.parametrize("family", ["iptables", "ip6tables"])
def test_iptables_is_as_before(snapshots, family):
    before, after = snapshots
    assert tables(after.get(family, [])) == tables(before.get(family, []))


def test_no_link_or_docker_object_is_left(snapshots):
    before, after = snapshots
    assert difference(before, after, "links") == []
    assert difference(before, after, "docker") == []
