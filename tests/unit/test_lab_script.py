"""The `make lab` driver: failures read from ansible-playbook's output, so
the terminal shows the failing task and its message, and where labs live."""

import importlib.util
import os

from ansible_collections.berth.ops.plugins.module_utils.berth_lab import lab_paths

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = importlib.util.spec_from_file_location("berth_lab_script", os.path.join(ROOT, "scripts", "lab.py"))
lab_script = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(lab_script)

YAML_OUTPUT = """
TASK [docker : Write daemon.json] **********************************************
ok: [berth-lab-a2]
fatal: [berth-lab-a1]: FAILED! =>
    changed: false
    msg: 'Task failed: log-opts.max-size: ''ten'' is not a size'
fatal: [berth-lab-b1]: FAILED! =>
    changed: false
    msg: 'Task failed: log-opts.max-size: ''ten'' is not a size'

TASK [image_cleanup : Fail the run] ********************************************
failed: [localhost -> berth-lab-a1] (item=berth-lab-a1) =>
    ansible_loop_var: item
    msg: |-
      registry prune refused (fail closed):
      no in-use list from berth-lab-b2
fatal: [berth-lab-c1]: UNREACHABLE! =>
    changed: false
    msg: 'Failed to connect to the host via ssh: connect to host 10.77.3.11 port 22: No route to host'
    unreachable: true

PLAY RECAP *********************************************************************
"""

JSON_OUTPUT = """TASK [Check the request] ***
fatal: [localhost]: FAILED! => {"assertion": "app is defined", "changed": false, "msg": "rollout.yml needs -e app=NAME"}
"""


def test_failures_name_the_task_host_and_message():
    found = lab_script.failures(YAML_OUTPUT)
    assert found[0] == ("docker : Write daemon.json", "berth-lab-a1", "Task failed: log-opts.max-size: 'ten' is not a size")
    assert found[2] == (
        "image_cleanup : Fail the run",
        "localhost (item=berth-lab-a1)",
        "registry prune refused (fail closed): no in-use list from berth-lab-b2",
    )
    assert found[3][0] == "image_cleanup : Fail the run" and "No route to host" in found[3][2]
    assert lab_script.failures(JSON_OUTPUT) == [("Check the request", "localhost", "rollout.yml needs -e app=NAME")]


def test_the_trailing_space_ansible_prints_after_the_arrow_changes_nothing():
    assert lab_script.failures(YAML_OUTPUT.replace("=>\n", "=> \n")) == lab_script.failures(YAML_OUTPUT)


def test_failures_of_one_task_and_message_are_grouped():
    groups = lab_script.grouped(lab_script.failures(YAML_OUTPUT))
    assert groups[("docker : Write daemon.json", "Task failed: log-opts.max-size: 'ten' is not a size")] == ["berth-lab-a1", "berth-lab-b1"]
    assert len(groups) == 3


def test_output_without_failures_has_none():
    assert lab_script.failures("PLAY RECAP ***\nberth-lab-a1 : ok=3 changed=0 unreachable=0 failed=0\n") == []


def test_make_labs_lab_writes_the_repo_inventory_and_others_their_own():
    assert lab_paths("/r", "berth-lab") == {
        "state_dir": "/r/.lab/berth-lab",
        "inventory_dir": "/r/inventories/lab",
        "inventory": "/r/inventories/lab/hosts.yml",
        "inventory_written": ["/r/inventories/lab/berth_secrets.vault.yml", "/r/inventories/lab/berth-ca.crt"],
        "vault_password_file": "/r/.lab/vault-pass",
    }
    test = lab_paths("/r", "berth-test")
    assert test["inventory"] == "/r/.lab/berth-test/inventory/hosts.yml"
    assert test["inventory_written"][0] == "/r/.lab/berth-test/inventory/berth_secrets.vault.yml"
    assert test["vault_password_file"] == "/r/.lab/vault-pass"  # one for every lab of the checkout
