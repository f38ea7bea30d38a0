"""Sandbox routes of the x API (filled in by the x platform work)."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
