"""The sandbox's shared state: fault switches, clock, config and the request log.

The platform route modules read it from the running app (`get_state`); `app.py` assembles the
routes and creates the state. Kept apart from `app.py` so that the route modules never import
the module that imports them.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette

from analytics_sandbox.data import DEFAULT_CONFIG, Clock, SandboxConfig, utc_now
from analytics_sandbox.faults import FaultState
from analytics_sandbox.tokens import TokenAuthority

_REDACTED = "***"
_SECRET_PARAMS = frozenset({"access_token", "input_token"})


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
    # OAuth tokens issued for X and LinkedIn (analytics_sandbox/oauth.py).
    tokens: TokenAuthority = field(default_factory=TokenAuthority)
    # Set while the server shuts down: artificial latency ends early so stop() stays quick.
    closing: threading.Event = field(default_factory=threading.Event)


def get_state(app: Starlette) -> SandboxState:
    state: SandboxState = app.state.sandbox
    return state


def redact_query(query: str) -> str:
    """The query string with secret parameter values replaced (safe to log)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, _REDACTED if k in _SECRET_PARAMS else v) for k, v in pairs])
