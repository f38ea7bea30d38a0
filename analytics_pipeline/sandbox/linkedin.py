"""Sandbox routes of the linkedin API (filled in by the linkedin platform work)."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
