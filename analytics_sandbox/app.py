"""Assembly of the sandbox ASGI app: shared state, the request log and the admin endpoints.

Platform modules (Graph for Facebook and Instagram, LinkedIn, X) contribute their routes; the
admin endpoints live under `/_sandbox/` and are never recorded in the request log:

- `GET /_sandbox/health` -> `{"status": "ok"}`
- `GET /_sandbox/faults` -> the fault switches; `POST /_sandbox/faults` (JSON object) replaces
  the given switches and answers the new state (400 with `{"error": ...}` on a bad switch)
- `POST /_sandbox/reset` -> fault switches back to defaults, request log and OAuth tokens cleared
- `GET /_sandbox/requests[?page_id=...]` -> the request log, oldest first
- `GET /_sandbox/requests/count[?page_id=...]` -> `{"count": n}`, the size of that log
- `POST /_sandbox/oauth/grant` -> X / LinkedIn OAuth tokens, as after an authorization
  (see oauth.py, which also serves the platforms' token and revocation endpoints)
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from analytics_sandbox import facebook, linkedin, oauth, x
from analytics_sandbox.data import DEFAULT_CONFIG, Clock, SandboxConfig, utc_now
from analytics_sandbox.faults import FaultState
from analytics_sandbox.state import SandboxState, get_state


def create_app(
    *,
    faults: FaultState | None = None,
    clock: Clock | None = None,
    config: SandboxConfig | None = None,
) -> Starlette:
    """A fresh sandbox app; the state is reachable through `get_state(app)`."""
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
    routes.extend(oauth.routes())
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
    state.tokens.reset()
    return JSONResponse({"status": "reset", "faults": state.faults.snapshot()})


async def _requests(request: Request) -> JSONResponse:
    page_id = request.query_params.get("page_id")
    records = get_state(request.app).log.records(page_id)
    return JSONResponse([record.to_dict() for record in records])


async def _request_count(request: Request) -> JSONResponse:
    page_id = request.query_params.get("page_id")
    return JSONResponse({"count": get_state(request.app).log.count(page_id)})
