"""Harbor API stand-in: an in-process HTTP test double for berth's tests.

It is not Harbor. It answers a chosen set of Harbor v2.15 REST operations from
in-memory state and validates every request and response against Harbor's own
Swagger 2.0 file (see server.py for usage).
"""

from .server import HarborStandIn

__all__ = ["HarborStandIn"]
