"""The engine connection of berth's Docker modules (docker_image_build,
docker_image_prune, docker_rollout): the Docker SDK they import, and their
docker_host option."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
requirements:
  - Docker SDK for Python (python3-docker) on the host the module runs on.
options:
  docker_host:
    description: Docker daemon URL.
    type: str
    default: unix:///var/run/docker.sock
"""
