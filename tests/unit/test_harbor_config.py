"""The harbor role's list of harbor.yml keys is Harbor 2.15's template, and the
template parser finds commented-out settings too."""

import hashlib
import os
import sys

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from harbor_standin.template_keys import reference_keys, shipped_passwords, template_keys

ROLE_VARS = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "harbor", "vars", "main.yml")


def test_the_roles_key_list_is_the_reference_templates():
    with open(ROLE_VARS, encoding="utf-8") as handle:
        listed = yaml.safe_load(handle)["harbor_template_keys"]
    assert sorted(listed) == sorted(reference_keys())


def test_commented_settings_count_and_prose_does_not():
    text = "a:\n  b: 1\n# c:\n#   d: 2\n#   # e: 3\n# Note: this is prose\n#   # f is prose: yes\n"
    assert template_keys(text) == {"a", "a.b", "c", "c.d", "c.e"}


def test_reference_has_the_settings_berth_renders():
    keys = reference_keys()
    for key in ("external_url", "proxy.http_proxy", "upload_purging.enabled", "jobservice.max_job_workers", "log.local.rotate_size"):
        assert key in keys


def test_the_role_refuses_the_passwords_harbors_template_ships():
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    with open(os.path.join(root, "roles", "harbor", "vars", "main.yml"), encoding="utf-8") as handle:
        refused = yaml.safe_load(handle)["harbor_refused_password_digests"]
    for password in ("", *shipped_passwords()):
        assert hashlib.sha256(password.encode()).hexdigest() in refused
