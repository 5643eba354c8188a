"""berth as a collection, from outside the repo: the tarball that
`make collection` builds, installed with ansible-galaxy into a temporary
path, used by FQCN with its own minimal ansible.cfg against the test lab;
then the execution environment that `make ee` builds, run with
ansible-runner: site converges and a second run changes nothing, and the
image cleanup dry run passes."""

import glob
import json
import os
import shutil
import subprocess
import tempfile

import pytest
from labtools import RECAP, ROOT, PlaybookRun

OUTSIDE = os.path.join(ROOT, "tests", "integration", "collection", "outside.yml")


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
        stream.write("[defaults]\ncollections_path = %s\ninterpreter_python = auto_silent\nhost_key_checking = true\n" % path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=os.path.join(project, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
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


def test_roles_and_modules_by_fqcn_from_outside_the_repo(lab, installed):
    _, project, env = installed
    result = run(["ansible-playbook", "-i", lab.inventory, OUTSIDE], project, env)
    assert result.returncode == 0, result.explain()
    assert set(result.recap) >= set(lab.hosts)
    # The lab was converged from the repo: the installed roles are the same code.
    assert result.total_changed() == 0, result.explain()


def test_playbooks_by_fqcn_from_outside_the_repo(lab, installed):
    _, project, env = installed
    site = run(["ansible-playbook", "-i", lab.inventory, "berth.ops.site"], project, env)
    assert site.returncode == 0, site.explain()
    assert site.total_changed() == 0, site.explain()
    report = os.path.join(project, "cleanup-report.json")
    cleanup = run(
        [
            "ansible-playbook",
            "-i",
            lab.inventory,
            "berth.ops.image_cleanup",
            "-e",
            "image_cleanup_dry_run=true",
            "-e",
            "image_cleanup_report_path=" + report,
        ],
        project,
        env,
    )
    assert cleanup.returncode == 0, cleanup.explain()
    with open(report, encoding="utf-8") as stream:
        assert json.load(stream)["dry_run"] is True


@pytest.fixture(scope="module")
def ee_image():
    built = subprocess.run([os.path.join(ROOT, "scripts", "ee.sh"), "build"], capture_output=True, text=True, check=False, timeout=3600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return subprocess.run([os.path.join(ROOT, "scripts", "ee.sh"), "tag"], capture_output=True, text=True, check=True).stdout.strip()


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
        stream.write("---\nANSIBLE_NOCOLOR: 'true'\nANSIBLE_HOST_KEY_CHECKING: 'true'\n")
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


def test_ee_converges_site_then_changes_nothing(lab, ee_image):
    first = runner(ee_image, lab.inventory, "berth.ops.site")
    assert first.returncode == 0, first.explain()
    assert set(first.recap) >= set(lab.hosts), first.explain()
    second = runner(ee_image, lab.inventory, "berth.ops.site")
    assert second.returncode == 0, second.explain()
    assert second.total_changed() == 0, second.explain()


def test_ee_image_cleanup_dry_run(lab, ee_image):
    report_dir = os.path.join(ROOT, ".cache", "ee-cleanup")
    os.makedirs(report_dir, exist_ok=True)
    report = os.path.join(report_dir, "report.json")
    if os.path.exists(report):
        os.remove(report)
    result = runner(
        ee_image, lab.inventory, "berth.ops.image_cleanup", "-e image_cleanup_dry_run=true", "-e image_cleanup_report_path=" + report
    )
    assert result.returncode == 0, result.explain()
    with open(report, encoding="utf-8") as stream:
        assert json.load(stream)["dry_run"] is True
    assert not glob.glob(os.path.join(report_dir, "*.tmp"))
