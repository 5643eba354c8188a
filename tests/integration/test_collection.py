"""berth as a collection, on the test lab that `make lab` converged from the
repo: the tarball that `make collection` builds, installed with
ansible-galaxy into a temporary path and used from outside the repo with its
own minimal ansible.cfg, in one playbook that calls roles, modules and the
collection's playbooks by FQCN; then the execution environment that
`make ee` builds, through ansible-runner: one site run that changes nothing
and the image cleanup dry run."""

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest
from ansible_collections.berth.ops.plugins.module_utils.berth_lab import lab_paths
from labtools import RECAP, ROOT, PlaybookRun

OUTSIDE = os.path.join(ROOT, "tests", "integration", "collection", "outside.yml")
# The labs' vault password (playbooks/lab_up.yml makes it).
VAULT_PASS = lab_paths(ROOT, "any")["vault_password_file"]


def run(args, cwd, env, timeout=1800):
    proc = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
    recap = {m.group("host"): {k: int(v) for k, v in m.groupdict().items() if k != "host"} for m in RECAP.finditer(proc.stdout)}
    return PlaybookRun(list(args), proc.returncode, proc.stdout, recap)


@pytest.fixture(scope="module")
def installed():
    """The built collection installed into a temporary path, and a project
    directory outside the repo with its own minimal ansible.cfg."""
    path = subprocess.run(
        [os.path.join(ROOT, "scripts", "collection.sh"), "install"], capture_output=True, text=True, check=True
    ).stdout.strip()
    project = tempfile.mkdtemp(prefix="berth-outside-")
    with open(os.path.join(project, "ansible.cfg"), "w", encoding="utf-8") as stream:
        # Pipelining, as a site's own ansible.cfg has it: one SSH exchange per task.
        stream.write(
            "[defaults]\ncollections_path = %s\ninterpreter_python = auto_silent\nhost_key_checking = true\n"
            "[ssh_connection]\npipelining = true\n" % path
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    # The lab's secrets file opens with the labs' vault password, given the
    # usual way since this project has no lab identity of its own.
    env.update(ANSIBLE_CONFIG=os.path.join(project, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_VAULT_PASSWORD_FILE=VAULT_PASS)
    yield path, project, env
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(project, ignore_errors=True)


def test_collection_is_the_one_installed_not_the_repo(installed):
    path, project, env = installed
    listed = subprocess.run(
        ["ansible-galaxy", "collection", "list", "berth.ops", "--format", "json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(listed.stdout)
    assert list(found) == [os.path.join(path, "ansible_collections")], found


# Tasks that may say "changed" on a converged lab: the cleanup plans
# (check mode reports what a real run would change, the first-seen record
# included) and the report the cleanup writes on the control host.
CLEANUP_TASKS = {
    "Plan a prune of images nobody pushed (check mode sends nothing)",
    "Prune with the retention policy",
    "Plan or prune with the fleet's digests protected",
    "Create the report directory",
    "Write the JSON report",
}
TASK = re.compile(r"^TASK \[(?:[\w.]+ : )?(?P<name>.+?)\] \*+$")
CHANGED = re.compile(r"^changed: \[(?P<host>[^\]]+)\]")


def changed_tasks(output):
    """{(task name, host)} of every result that reported a change."""
    found, task = set(), None
    for line in output.splitlines():
        match = TASK.match(line)
        if match:
            task = match.group("name")
            continue
        match = CHANGED.match(line)
        if match:
            found.add((task, match.group("host").split(" -> ")[0]))
    return found


def test_one_playbook_from_outside_the_repo(lab, installed, figures):
    """Roles docker and firewall, modules docker_image_prune and
    docker_rollout, and the playbook image_cleanup, all by FQCN, from the
    installed tarball in one run (the EE test runs site by FQCN)."""
    _, project, env = installed
    report = os.path.join(project, "cleanup-report.json")
    started = time.monotonic()
    result = run(
        ["ansible-playbook", "-i", lab.inventory, OUTSIDE, "-e", "image_cleanup_dry_run=true", "-e", "image_cleanup_report_path=" + report],
        project,
        env,
    )
    figures.append("collection from outside the repo (roles, modules, cleanup dry run): %.0f s" % (time.monotonic() - started))
    assert result.returncode == 0, result.explain()
    assert set(result.recap) >= set(lab.hosts), result.explain()
    # The lab was converged from the repo: the installed roles are the same code.
    unexpected = sorted(pair for pair in changed_tasks(result.output) if pair[0] not in CLEANUP_TASKS)
    assert unexpected == [], result.explain()
    with open(report, encoding="utf-8") as stream:
        assert json.load(stream)["dry_run"] is True


@pytest.fixture(scope="module")
def ee_image(figures):
    started = time.monotonic()
    built = subprocess.run([os.path.join(ROOT, "scripts", "ee.sh"), "build"], capture_output=True, text=True, check=False, timeout=3600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    figures.append("execution environment (scripts/ee.sh build): %.0f s, %s" % (time.monotonic() - started, built.stdout.strip()))
    # The image build made, not a second `ee.sh tag`: the other lab session
    # may change the checkout in between.
    return re.search(r"berth/ee:[0-9a-f]{12}", built.stdout).group(0)


def runner(image, inventory, playbook, *extra):
    """ansible-runner with the EE image: the playbook of the collection
    installed in the image, the lab's inventory directory as the run's
    inventory, the repo mounted at its own path (the inventory names the
    lab's SSH key, known_hosts and PKI by absolute path) and the host's
    network (the lab hosts see the same control host as from outside)."""
    private = tempfile.mkdtemp(prefix="berth-runner-")
    os.makedirs(os.path.join(private, "project"))
    os.makedirs(os.path.join(private, "env"))
    os.symlink(os.path.dirname(inventory), os.path.join(private, "inventory"))
    with open(os.path.join(private, "env", "envvars"), "w", encoding="utf-8") as stream:
        # Pipelining, as an AWX job template's environment would set it.
        stream.write(
            "---\nANSIBLE_NOCOLOR: 'true'\nANSIBLE_HOST_KEY_CHECKING: 'true'\nANSIBLE_PIPELINING: 'true'\n"
            "ANSIBLE_VAULT_PASSWORD_FILE: '%s'\n" % VAULT_PASS
        )
    args = [
        "ansible-runner", "run", private, "-p", playbook,
        "--process-isolation", "--process-isolation-executable", "docker", "--container-image", image,
        "--container-volume-mount", "%s:%s" % (ROOT, ROOT), "--container-option=--network=host",
    ]  # fmt: skip
    if extra:
        args += ["--cmdline", " ".join(extra)]
    result = run(args, ROOT, dict(os.environ))
    shutil.rmtree(private, ignore_errors=True)
    return result


def test_ee_site_on_the_converged_lab_changes_nothing(lab, ee_image, figures):
    started = time.monotonic()
    site = runner(ee_image, lab.inventory, "berth.ops.site")
    figures.append("site.yml from the execution environment, converged lab: %.0f s" % (time.monotonic() - started))
    assert site.returncode == 0, site.explain()
    assert set(site.recap) >= set(lab.hosts), site.explain()
    assert site.total_changed() == 0, site.explain()


def test_ee_image_cleanup_dry_run(lab, ee_image, figures):
    report_dir = os.path.join(ROOT, ".cache", "ee-cleanup")
    os.makedirs(report_dir, exist_ok=True)
    report = os.path.join(report_dir, "report.json")
    if os.path.exists(report):
        os.remove(report)
    started = time.monotonic()
    result = runner(
        ee_image, lab.inventory, "berth.ops.image_cleanup", "-e image_cleanup_dry_run=true", "-e image_cleanup_report_path=" + report
    )
    figures.append("image cleanup dry run from the execution environment: %.0f s" % (time.monotonic() - started))
    assert result.returncode == 0, result.explain()
    with open(report, encoding="utf-8") as stream:
        assert json.load(stream)["dry_run"] is True
    assert not glob.glob(os.path.join(report_dir, "*.tmp"))
