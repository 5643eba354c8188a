"""Rancher API stand-in: an in-process HTTP(S) test double for berth's tests.

It is not Rancher. It answers the Rancher v2.x API calls berth's rancher role
makes from in-memory state, in Rancher's request and response shapes, and serves
a system-agent-install.sh that records its invocation instead of installing
(see README.md and server.py).
"""

from .server import RancherStandIn

__all__ = ["RancherStandIn"]
