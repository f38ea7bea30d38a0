"""Run the sandbox over real HTTP: in a background thread (tests, demo) or blocking (CLI)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import uvicorn

from analytics_sandbox.app import create_app
from analytics_sandbox.data import Clock, SandboxConfig
from analytics_sandbox.faults import FaultState
from analytics_sandbox.state import RequestRecord, SandboxState, get_state

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0


def _fault_state(faults: FaultState | Mapping[str, Any] | None) -> FaultState:
    if isinstance(faults, FaultState):
        return faults
    return FaultState(**dict(faults or {}))


class SandboxServer:
    """The sandbox on `host:port` (port 0 picks a free port) in a daemon thread.

    Use as a context manager, or call `start()` / `stop()`. Several servers may run in one
    process, one after the other or side by side; each has its own state.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultState | Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        config: SandboxConfig | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self.app = create_app(faults=_fault_state(faults), clock=clock, config=config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._bound_port: int | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        if self._thread is not None:
            raise RuntimeError("sandbox server already started")
        config = uvicorn.Config(
            self.app,
            host=self._host,
            port=self._port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self.state.closing.clear()
        thread = threading.Thread(target=server.run, name="sandbox-server", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        try:
            self._bound_port = self._wait_until_bound(server, thread)
            self._wait_until_answering()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for its thread (about 0.1-1 s)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self.state.closing.set()
        server.should_exit = True
        thread.join(_STOP_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(_STOP_TIMEOUT_S)
        self._server = self._thread = None
        self._bound_port = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_bound(self, server: uvicorn.Server, thread: threading.Thread) -> int:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"sandbox server failed to start on {self._host}:{self._port}")
            if time.monotonic() > deadline:
                raise RuntimeError("sandbox server did not start in time")
            time.sleep(0.01)
        sockets = [sock for listener in server.servers for sock in (listener.sockets or ())]
        if not sockets:
            raise RuntimeError("sandbox server has no listening socket")
        return int(sockets[0].getsockname()[1])

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                url = f"{self.base_url}/_sandbox/health"
                with urllib.request.urlopen(url, timeout=1) as reply:  # noqa: S310 (http only)
                    if reply.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.01)

    # --- access --------------------------------------------------------------------------------

    @property
    def state(self) -> SandboxState:
        return get_state(self.app)

    @property
    def base_url(self) -> str:
        """`http://host:port` without a trailing slash (Graph paths start with `/vNN.0/`)."""
        if self._bound_port is None:
            raise RuntimeError("sandbox server is not running")
        return f"http://{self._host}:{self._bound_port}"

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("sandbox server is not running")
        return self._bound_port

    @property
    def faults(self) -> FaultState:
        return self.state.faults

    def requests(self, page_id: str | None = None) -> list[RequestRecord]:
        """Platform requests served so far (admin endpoints excluded), oldest first."""
        return self.state.log.records(page_id)

    def request_count(self, page_id: str | None = None) -> int:
        return self.state.log.count(page_id)

    def reset(self) -> None:
        """Fault switches back to defaults, the request log and OAuth tokens cleared (`POST
        /_sandbox/reset`)."""
        self.state.faults.reset()
        self.state.log.clear()
        self.state.tokens.reset()


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    faults_json: str | None = None,
    config: SandboxConfig | None = None,
) -> None:
    """Serve the sandbox in the foreground until interrupted (Ctrl-C).

    `faults_json` is a JSON object of initial fault switches, e.g. `{"latency_ms": 200}`.
    """
    faults = _fault_state(json.loads(faults_json) if faults_json else None)
    app = create_app(faults=faults, config=config)
    # No access log: `paging.next` URLs followed verbatim would put tokens in it.
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False)
