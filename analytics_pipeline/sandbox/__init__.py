"""A local imitation of the platform APIs (Facebook Graph so far) for tests and the demo.

Production code never imports this package: clients only see a base URL. Typical use::

    with SandboxServer(clock=FixedClock(now)) as sandbox:
        client = FacebookClient(base_url=sandbox.base_url, ...)
        sandbox.faults.fail_next("1000001", 2)
"""

from __future__ import annotations

from analytics_pipeline.sandbox.app import RequestRecord, create_app
from analytics_pipeline.sandbox.data import Clock, FixedClock, SandboxConfig
from analytics_pipeline.sandbox.faults import FaultState, TransientKind
from analytics_pipeline.sandbox.server import SandboxServer, serve

__all__ = [
    "Clock",
    "FaultState",
    "FixedClock",
    "RequestRecord",
    "SandboxConfig",
    "SandboxServer",
    "TransientKind",
    "create_app",
    "serve",
]
