"""Which Docker objects on a host are berth's: found by label, never by name.
A reset (playbooks/reset.yml) removes exactly these."""

from ansible_collections.berth.ops.plugins.module_utils.berth_env_spec import LABEL_BUILDING, LABEL_ENV
from ansible_collections.berth.ops.plugins.module_utils.berth_rollout import LABEL_APP

OWNED_LABELS = {
    # An environment's services, and the apps docker_rollout runs.
    "containers": (LABEL_ENV, LABEL_APP),
    # An environment's own network, and a building's fixed-IP network.
    "networks": (LABEL_ENV, LABEL_BUILDING),
    "volumes": (LABEL_ENV,),
}


def owned_labels(kind):
    """The label keys that mark a Docker object of `kind` (containers,
    networks, volumes) as berth's."""
    if kind not in OWNED_LABELS:
        raise ValueError("berth_owned_labels: %r is not one of %s" % (kind, ", ".join(sorted(OWNED_LABELS))))
    return list(OWNED_LABELS[kind])
