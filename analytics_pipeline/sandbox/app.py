"""Assembly of the sandbox ASGI app: shared state, the request log and the admin endpoints.

Platform modules (Graph for Facebook and Instagram, LinkedIn, X) contribute their routes; the
admin endpoints live under `/_sandbox/` and are never recorded in the request log:

- `GET /_sandbox/health` -> `{"status": "ok"}`
- `GET /_sandbox/faults` -> the fault switches; `POST /_sandbox/faults` (JSON object) replaces
  the given switches and answers the new state (400 with `{"error": ...}` on a bad switch)
- `POST /_sandbox/reset` -> fault switches back to defaults, request log cleared
- `GET /_sandbox/requests[?page_id=...]` -> the request log, oldest first
- `GET /_sandbox/requests/count[?page_id=...]` -> `{"count": n}`, the size of that log
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from analytics_pipeline.sandbox.data import DEFAULT_CONFIG, Clock, SandboxConfig, utc_now
from analytics_pipeline.sandbox.faults import FaultState

_REDACTED = "***"
_SECRET_PARAMS = frozenset({"access_token"})


@dataclass(frozen=True)
class RequestRecord:
    """One platform request as the sandbox saw it. Never holds a token value."""

    seq: int
    timestamp: dt.datetime  # from the sandbox clock
    method: str
    path: str
    query: str  # the query string with every access_token value replaced by ***
    page_ids: tuple[str, ...]  # pages the request touched (listing page, batch items' pages)
    authorization_present: bool  # an `Authorization: Bearer ...` header was sent
    # An access_token was sent as a query or form parameter (our client must never do that).
    access_token_in_query: bool
    status: int
    latency_ms: int  # artificial latency applied before answering
    error_code: int | None = None  # Graph error code of a failed request, if any
    fault: str | None = None  # which fault switch shaped the reply, e.g. "transient:page_limit"
    batch_size: int | None = None  # number of items of a batch request

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["timestamp"] = self.timestamp.isoformat()
        out["page_ids"] = list(self.page_ids)
        return out


class RequestLog:
    """Thread-safe append-only log (cleared by reset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._seq = 0

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self, page_id: str | None = None) -> list[RequestRecord]:
        with self._lock:
            records = list(self._records)
        if page_id is None:
            return records
        return [record for record in records if page_id in record.page_ids]

    def count(self, page_id: str | None = None) -> int:
        return len(self.records(page_id))

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._seq = 0


@dataclass
class SandboxState:
    faults: FaultState = field(default_factory=FaultState)
    clock: Clock = utc_now
    config: SandboxConfig = DEFAULT_CONFIG
    log: RequestLog = field(default_factory=RequestLog)
    # Set while the server shuts down: artificial latency ends early so stop() stays quick.
    closing: threading.Event = field(default_factory=threading.Event)


def get_state(app: Starlette) -> SandboxState:
    state: SandboxState = app.state.sandbox
    return state


def redact_query(query: str) -> str:
    """The query string with secret parameter values replaced (safe to log)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, _REDACTED if k in _SECRET_PARAMS else v) for k, v in pairs])


def create_app(
    *,
    faults: FaultState | None = None,
    clock: Clock | None = None,
    config: SandboxConfig | None = None,
) -> Starlette:
    """A fresh sandbox app; the state is reachable through `get_state(app)`."""
    # Imported here: the platform modules import this module's state and log types.
    from analytics_pipeline.sandbox import facebook, linkedin, x

    routes: list[BaseRoute] = [
        Route("/_sandbox/health", _health, methods=["GET"]),
        Route("/_sandbox/faults", _get_faults, methods=["GET"]),
        Route("/_sandbox/faults", _set_faults, methods=["POST"]),
        Route("/_sandbox/reset", _reset, methods=["POST"]),
        Route("/_sandbox/requests", _requests, methods=["GET"]),
        Route("/_sandbox/requests/count", _request_count, methods=["GET"]),
    ]
    # Platform routes go last: Facebook's paths start with a `vNN.0` segment (a custom
    # convertor), so future `/rest/...` (LinkedIn) or `/2/...` (X) routes cannot clash.
    routes.extend(linkedin.routes())
    routes.extend(x.routes())
    routes.extend(facebook.routes())
    app = Starlette(routes=routes)
    app.state.sandbox = SandboxState(
        faults=faults if faults is not None else FaultState(),
        clock=clock if clock is not None else utc_now,
        config=config if config is not None else DEFAULT_CONFIG,
    )
    return app


# --- admin endpoints ---------------------------------------------------------------------------


async def _health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _get_faults(request: Request) -> JSONResponse:
    return JSONResponse(get_state(request.app).faults.snapshot())


async def _set_faults(request: Request) -> JSONResponse:
    state = get_state(request.app)
    try:
        changes = json.loads(await request.body() or b"{}")
        if not isinstance(changes, dict):
            raise ValueError("the body must be a JSON object of fault switches")
        state.faults.update(**changes)
    except ValueError as err:  # json.JSONDecodeError is a ValueError
        return JSONResponse({"error": str(err)}, status_code=400)
    return JSONResponse(state.faults.snapshot())


async def _reset(request: Request) -> JSONResponse:
    state = get_state(request.app)
    state.faults.reset()
    state.log.clear()
    return JSONResponse({"status": "reset", "faults": state.faults.snapshot()})


async def _requests(request: Request) -> JSONResponse:
    page_id = request.query_params.get("page_id")
    records = get_state(request.app).log.records(page_id)
    return JSONResponse([record.to_dict() for record in records])


async def _request_count(request: Request) -> JSONResponse:
    page_id = request.query_params.get("page_id")
    return JSONResponse({"count": get_state(request.app).log.count(page_id)})
