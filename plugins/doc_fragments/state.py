"""The state option of berth's object modules (the Harbor ones, whose
argument spec is OBJECT_SPEC in module_utils/berth_harbor_client.py, and
rancher_cluster). Each module gives the option its own description."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  state:
    description: Whether the object exists.
    type: str
    choices:
      - present
      - absent
    default: present
"""
