"""The per-request plumbing every platform of the sandbox shares.

`sandbox_call` runs one platform request: the artificial latency (cut short when the server
shuts down), the request's sequence number and sandbox-clock time, the platform's own answer,
then one `RequestRecord` in the request log (query redacted, no token value). The platform
modules keep everything about their wire format: checks, error bodies, headers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from analytics_sandbox.state import RequestRecord, SandboxState, get_state, redact_query


@dataclass(frozen=True)
class CallStart:
    """What every platform answer starts from."""

    state: SandboxState
    seq: int
    now: dt.datetime  # the sandbox clock, read once per request


@dataclass(frozen=True)
class Outcome:
    """A platform's answer and what the request log says about it."""

    response: Response
    error_code: int | None = None
    fault: str | None = None


async def sandbox_call(
    request: Request,
    answer: Callable[[CallStart], Outcome],
    *,
    page_ids: tuple[str, ...],
    batch_size: int | None = None,
    token_params: Collection[str] = ("access_token",),
    body_param_names: Collection[str] = (),
) -> Response:
    """Latency, then `answer`, then the request log record.

    `token_params` are the names of parameters that carry a token: the log flags a request that
    sends one in its query string or in its form body (`body_param_names`), never the value.
    """
    state = get_state(request.app)
    latency_ms = state.faults.latency_ms
    if latency_ms:
        await sleep_unless_closing(latency_ms / 1000, state)
    seq = state.log.next_seq()
    now = state.clock()
    outcome = answer(CallStart(state, seq, now))
    state.log.append(
        RequestRecord(
            seq=seq,
            timestamp=now,
            method=request.method,
            path=request.url.path,
            query=redact_query(request.url.query),
            page_ids=page_ids,
            authorization_present="authorization" in request.headers,
            access_token_in_query=any(
                name in request.query_params or name in body_param_names for name in token_params
            ),
            status=outcome.response.status_code,
            latency_ms=latency_ms,
            error_code=outcome.error_code,
            fault=outcome.fault,
            batch_size=batch_size,
        )
    )
    return outcome.response


async def sleep_unless_closing(seconds: float, state: SandboxState) -> None:
    """Sleep `seconds`, waking early once the server starts closing (so stop() stays quick)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not state.closing.is_set():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, 0.05))


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; query parameters never count."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
