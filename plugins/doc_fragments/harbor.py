"""Connection options shared by berth's Harbor modules
(module_utils/berth_harbor_client.py CONNECTION_SPEC is their argument spec)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  harbor_url:
    description: Harbor's URL, for example C(https://harbor.bldg-a.example). The API lives under C(/api/v2.0).
    type: str
    required: true
    aliases: [url]
  username:
    description: Harbor user, or a robot account (C(robot$name) or C(robot$project+name)) for robot-token access.
    type: str
    default: admin
  password:
    description: The user's password or the robot's secret. Keep it in vault.
    type: str
    required: true
  ca_path:
    description: CA bundle that signed Harbor's certificate.
    type: path
  validate_certs:
    description: Verify Harbor's TLS certificate.
    type: bool
    default: true
notes:
  - Options are validated before Harbor is contacted; bad input fails without a request.
"""
