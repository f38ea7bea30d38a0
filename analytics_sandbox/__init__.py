"""A local imitation of the four platform APIs (Facebook and Instagram Graph, LinkedIn REST,
X API v2) for development, tests, benchmarks and the demo (`analytics-sandbox serve|demo`).

`analytics_pipeline` never imports this package: clients only see a base URL. Typical use::

    with SandboxServer(clock=FixedClock(now)) as sandbox:
        settings = FacebookSettings(base_url=sandbox.base_url)
        client = FacebookClient(settings, account)  # account: the page, with its token
        sandbox.faults.fail_next("1000001", 2)
"""

from __future__ import annotations

from analytics_sandbox.app import create_app
from analytics_sandbox.data import Clock, FixedClock, SandboxConfig
from analytics_sandbox.faults import FaultState, TransientKind
from analytics_sandbox.server import SandboxServer, serve
from analytics_sandbox.state import RequestRecord

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
