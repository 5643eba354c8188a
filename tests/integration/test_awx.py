"""The AWX job templates as code. No controller can run here, so this checks
what can be checked without one: the playbook parses, every template names a
playbook that exists, and missing settings stop it before any request."""

import os

import yaml
from labtools import ROOT, ansible_playbook

PLAYBOOK = os.path.join(ROOT, "playbooks", "awx_job_templates.yml")


def run(*args):
    return ansible_playbook(PLAYBOOK, *args, env={"CONTROLLER_HOST": "https://awx.invalid"}, timeout=120)


def test_every_template_runs_a_playbook_of_the_repo():
    with open(PLAYBOOK, encoding="utf-8") as stream:
        play = yaml.safe_load(stream)[0]
    templates = play["vars"]["awx_job_templates"]
    assert {t["name"] for t in templates} == {"berth site", "berth rollout", "berth rollback", "berth image cleanup"}
    for template in templates:
        assert os.path.isfile(os.path.join(ROOT, template["playbook"])), template
    scheduled = [t for t in play["tasks"] if "awx.awx.schedule" in t]
    assert scheduled[0]["awx.awx.schedule"]["unified_job_template"] in {t["name"] for t in templates}


def test_it_parses_and_refuses_missing_settings_before_any_request():
    assert run("--syntax-check").returncode == 0
    refused = run("--check")
    assert refused.returncode != 0
    assert "Set awx_project_scm_url" in refused.output, refused.explain()
    # Stopped at the check: no task that talks to the controller ran.
    assert "TASK [The execution environment]" not in refused.output and refused.total_changed() == 0
