"""Connection options shared by berth's Rancher modules
(module_utils/berth_rancher_client.py CONNECTION_SPEC is their argument spec)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description: Rancher's URL, for example C(https://rancher.bldg-a.example).
    type: str
    required: true
  ca_path:
    description: CA bundle for Rancher's certificate.
    type: path
  validate_certs:
    description: Verify Rancher's certificate.
    type: bool
    default: true
"""
