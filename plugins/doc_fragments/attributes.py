"""Attributes shared by berth's modules: every module supports check mode
(which sends no mutating request) and diff; the platform depends on where
the module works."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Check mode reads and plans only; it sends no mutating request.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
"""

    # Modules that change the managed host itself.
    HOST = r"""
attributes:
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: debian
"""

    # Modules that talk to an HTTP API (Harbor, Rancher) from where they run.
    API = r"""
attributes:
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
    details: Works over the product's HTTPS API; run it where that API is reachable, usually the control host.
"""
