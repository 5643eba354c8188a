#!/usr/bin/python
"""Write Docker's daemon.json, checked by the engine that will read it."""

DOCUMENTATION = r"""
---
module: docker_daemon_json
short_description: Write daemon.json, checked before it replaces the old one
description:
  - Renders I(config) as JSON and writes it to I(dest) (root, mode 0644) only when it differs.
  - The new file is checked before it replaces the old one. An engine of Docker 23 or later checks it
    itself (C(dockerd --validate --config-file)). An older engine (Debian 12's 20.10 has no C(--validate)),
    or none yet, gets berth's own check, which knows the options of Docker 20.10 with their types and
    ranges and refuses any other option.
  - The engine is found as C(dockerd) on the host and its version read from C(dockerd --version).
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.attributes
  - berth.ops.attributes.host
attributes:
  check_mode:
    details: The check still runs in check mode; nothing is written.
options:
  config:
    description: The whole daemon.json as a mapping.
    type: dict
    required: true
  dest:
    description: Where the engine reads its configuration.
    type: path
    default: /etc/docker/daemon.json
"""

EXAMPLES = r"""
- name: Write daemon.json with rotated logs
  berth.ops.docker_daemon_json:
    config:
      live-restore: true
      log-driver: json-file
      log-opts:
        max-size: 10m
        max-file: "3"
  notify: Restart docker
"""

RETURN = r"""
engine:
  description: The engine's version (major.minor) or null when none is installed.
  returned: always
  type: str
  sample: '20.10'
checked_by:
  description: C(dockerd --validate) or C(berth), whichever checked the file.
  returned: always
  type: str
  sample: berth
errors:
  description: Every problem berth found in I(config), when it refused it.
  returned: failure
  type: list
  elements: str
  sample:
    - 'daemon.json log-opts must be a mapping of strings (quote numbers: "3")'
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.berth.ops.plugins.module_utils.berth_docker import daemon_config_errors, engine_version, render, validator


def main():
    module = AnsibleModule(
        argument_spec={
            "config": {"type": "dict", "required": True},
            "dest": {"type": "path", "default": "/etc/docker/daemon.json"},
        },
        supports_check_mode=True,
    )
    config, dest = module.params["config"], module.params["dest"]
    dockerd = module.get_bin_path("dockerd", opt_dirs=["/usr/sbin", "/usr/bin"])
    version = None
    if dockerd:
        rc, out, _unused = module.run_command([dockerd, "--version"])
        version = engine_version(out) if rc == 0 else None
    checker = validator(version)
    result = {"changed": False, "engine": "%d.%d" % version if version else None, "checked_by": "berth"}

    errors = daemon_config_errors(config, version)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors, **result)
    content = render(config)
    before = None
    if os.path.exists(dest):
        with open(dest, encoding="utf-8") as stream:
            before = stream.read()

    if before != content:
        if checker == "dockerd":
            check_with_dockerd(module, dockerd, content, result)
        result["changed"] = True
        result["diff"] = {"before": before or "", "after": content, "before_header": dest, "after_header": dest}
        if not module.check_mode:
            handle, staged = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".daemon.json.")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(content)
            module.atomic_move(staged, dest)
    attributes = module.load_file_common_arguments({"path": dest, "owner": "root", "group": "root", "mode": "0644"})
    if os.path.exists(dest):
        result["changed"] = module.set_fs_attributes_if_different(attributes, result["changed"])
    module.exit_json(**result)


def check_with_dockerd(module, dockerd, content, result):
    """`dockerd --validate` on the new text, in the module's own temp dir."""
    path = os.path.join(module.tmpdir, "daemon.json")
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(content)
    rc, out, err = module.run_command([dockerd, "--validate", "--config-file", path])
    result["checked_by"] = "dockerd --validate"
    if rc != 0:
        detail = (err or out).strip().replace(path, "daemon.json")
        module.fail_json(msg="daemon.json refused by dockerd --validate: %s" % detail, **result)


if __name__ == "__main__":
    main()
