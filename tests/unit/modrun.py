"""Run one of berth's modules as Ansible would: its own Python process,
with its arguments in a file, the collection on the path."""

import json
import os
import subprocess
import sys

COLLECTIONS = os.path.join(os.path.dirname(__file__), "..", "..", "collections")


def run_module(name, tmp_path, args, check=False):
    module = os.path.join(COLLECTIONS, "ansible_collections", "berth", "ops", "plugins", "modules", "%s.py" % name)
    path = tmp_path / ("%s-args.json" % name)
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check)}))
    run = subprocess.run(
        [sys.executable, module, str(path)], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=COLLECTIONS), check=False
    )
    return json.loads(run.stdout)
