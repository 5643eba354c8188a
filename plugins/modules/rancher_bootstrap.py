#!/usr/bin/python
"""First-run bootstrap of a Rancher server through its API."""

DOCUMENTATION = r"""
---
module: rancher_bootstrap
short_description: Bootstrap a Rancher server, once
description:
  - Logs in with the bootstrap password and sets the admin password, creates an automation token, and sets C(server-url).
    On later runs the admin password already works, a given I(token) (from vault) is checked and reused, and nothing
    changes.
  - When no I(token) is given, or Rancher no longer accepts it, the automation tokens with I(token_description) are
    deleted and one new token is made, so tokens never pile up.
  - A new token is returned; run the task with C(no_log) and keep the token in vault, as the
    rancher role does.
  - Passwords and the URL are validated before Rancher is contacted.
author:
  - berth maintainers (!UNKNOWN)
extends_documentation_fragment:
  - berth.ops.rancher
  - berth.ops.attributes
  - berth.ops.attributes.api
options:
  bootstrap_password:
    description: CATTLE_BOOTSTRAP_PASSWORD the server was started with.
    type: str
    required: true
  admin_password:
    description: The admin password to set (at least 12 characters).
    type: str
    required: true
  server_url:
    description: The C(server-url) setting nodes register against; https only.
    type: str
    required: true
  token:
    description: The automation token of an earlier run, from vault; reused while Rancher accepts it.
    type: str
  token_description:
    description: "Description that marks berth's automation tokens: the stale ones are deleted before a new one is made."
    type: str
    default: berth automation
notes:
  - Supports check mode (what would be done) and diff (the server-url setting).
"""

EXAMPLES = r"""
- name: Bootstrap Rancher
  berth.ops.rancher_bootstrap:
    url: https://rancher.bldg-a.example
    bootstrap_password: "{{ vault_rancher_bootstrap_password }}"
    admin_password: "{{ vault_rancher_admin_password }}"
    server_url: https://rancher.bldg-a.example
  register: rancher_bootstrap
  no_log: true
"""

RETURN = r"""
token:
  description: The new automation token.
  returned: when one was created (not in check mode)
  type: str
  sample: token-abcde:0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefgh
token_created:
  description: Whether a new token was (or would be) created; otherwise the given I(token) still works.
  returned: always
  type: bool
  sample: true
token_id:
  description: The automation token's ID (C(token-xxxxx)), the one kept or the new one.
  returned: always except a new token in check mode
  type: str
  sample: token-abcde
tokens_deleted:
  description: IDs of the stale automation tokens deleted (or that would be) before the new one was made.
  returned: always
  type: list
  elements: str
  sample:
    - token-x1y2z
changes:
  description: What was done.
  returned: always
  type: list
  elements: str
  sample:
    - admin password set
    - server-url set
bootstrapped:
  description: Whether this run took the server from its bootstrap password.
  returned: always
  type: bool
  sample: true
step:
  description: The step that failed, for example C(set the admin password).
  returned: on failure
  type: str
  sample: set the admin password
status:
  description: Rancher's HTTP status of the failed step (none when Rancher could not be reached).
  returned: on failure
  type: int
  sample: 401
"""

from ansible_collections.berth.ops.plugins.module_utils.berth_rancher import (
    bootstrap_failure,
    password_errors,
    server_url_error,
    stale_tokens,
    token_id,
)
from ansible_collections.berth.ops.plugins.module_utils.berth_rancher_client import RancherError, client_for, rancher_module


def main():
    module = rancher_module(
        bootstrap_password={"type": "str", "required": True, "no_log": True},
        admin_password={"type": "str", "required": True, "no_log": True},
        server_url={"type": "str", "required": True},
        token={"type": "str", "no_log": True},
        token_description={"type": "str", "default": "berth automation", "no_log": False},
    )
    p = module.params
    errors = password_errors(p["bootstrap_password"], p["admin_password"])
    for url in (p["url"], p["server_url"]):
        error = server_url_error(url)
        if error:
            errors.append(error)
    if errors:
        module.fail_json(msg="; ".join(errors), errors=errors)
    client = client_for(module)
    progress = {"step": "log in", "secrets": [p["bootstrap_password"], p["admin_password"], p["token"]]}
    try:
        module.exit_json(**bootstrap(module, client, p, progress))
    except RancherError as exc:
        # The role runs this with no_log (a new token is in the result) and
        # shows only msg, so msg carries the step and status, never a secret.
        msg = bootstrap_failure(progress["step"], str(exc), exc.status, progress["secrets"])
        module.fail_json(msg=msg, step=progress["step"], status=exc.status)


def bootstrap(module, client, p, progress):
    result = {"changed": False, "changes": [], "bootstrapped": False, "tokens_deleted": []}
    progress["step"] = "log in with the admin password"
    session = client.login(p["admin_password"])
    if session is None:
        progress["step"] = "log in with the bootstrap password"
        first = client.login(p["bootstrap_password"])
        if first is None:
            raise RancherError("Rancher accepts neither the admin password nor the bootstrap password", 401)
        progress["secrets"].append(first)
        result["changes"].append("admin password set")
        result["bootstrapped"] = True
        if module.check_mode:
            return dict(result, changed=True, changes=result["changes"] + ["automation token created", "server-url set"])
        progress["step"] = "set the admin password"
        client.request(
            "POST",
            "/v3/users?action=changepassword",
            {"currentPassword": p["bootstrap_password"], "newPassword": p["admin_password"]},
            token=first,
        )
        progress["step"] = "log in with the new admin password"
        session = client.login(p["admin_password"])
        if session is None:
            raise RancherError("Rancher refuses the admin password it has just been given", 401)
    progress["secrets"].append(session)

    token = p["token"]
    progress["step"] = "check the saved automation token"
    if not token or not token_works(client, token):
        # Rotation: the stale tokens of this description go, one new one comes.
        progress["step"] = "list the automation tokens"
        listed = (client.request("GET", "/v3/tokens", token=session)[1] or {}).get("data") or []
        stale = stale_tokens(listed, p["token_description"], keep=token_id(session))
        result["tokens_deleted"] = stale
        if stale:
            result["changes"].append("%d stale automation token(s) deleted" % len(stale))
        result["changes"].append("automation token created")
        if not module.check_mode:
            for name in stale:
                progress["step"] = "delete the stale automation token %s" % name
                client.request("DELETE", "/v3/tokens/%s" % name, expect=(200, 204, 404), token=session)
            progress["step"] = "create an automation token"
            created = client.request(
                "POST", "/v3/token", {"type": "token", "description": p["token_description"], "ttl": 0}, expect=(200, 201), token=session
            )[1]
            token = created["token"]
            progress["secrets"].append(token)

    progress["step"] = "read the server-url setting"
    current = (client.request("GET", "/v3/settings/server-url", token=session)[1] or {}).get("value") or ""
    if current != p["server_url"]:
        result["changes"].append("server-url set")
        if module._diff:
            result["diff"] = {"before": {"server-url": current}, "after": {"server-url": p["server_url"]}}
        if not module.check_mode:
            progress["step"] = "set the server-url setting"
            client.request("PUT", "/v3/settings/server-url", {"name": "server-url", "value": p["server_url"]}, token=session)
    result["changed"] = bool(result["changes"])
    # A reused token is the caller's own (Ansible masks it in results anyway).
    result["token_created"] = token != p["token"]
    if result["token_created"] and not module.check_mode:
        result["token"] = token
    if token and not (result["token_created"] and module.check_mode):
        result["token_id"] = token_id(token)
    return result


def token_works(client, token):
    try:
        client.request("GET", "/v3/settings/server-url", token=token)
    except RancherError as exc:
        if exc.status in (401, 403):
            return False
        raise
    return True


if __name__ == "__main__":
    main()
