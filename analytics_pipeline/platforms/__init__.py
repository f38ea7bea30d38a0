"""Platform clients, each created for one account (the registry picks its platform's class).

Adding a platform = a member of `records.Platform`, one module implementing `PlatformClient`
(with a frozen settings dataclass whose defaults work), one line in `_REGISTRY` and its
configuration section in `defs/resources.py`. Modules are imported lazily, so importing this
package (or `platforms.base`) does not pull in every client's dependencies.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from analytics_pipeline.platforms.base import Account, PlatformClient
from analytics_pipeline.records import PLATFORMS

__all__ = ["SUPPORTED_PLATFORMS", "create_client", "settings_type"]


@dataclass(frozen=True)
class _Registration:
    module: str
    client_class: str
    settings_class: str


_REGISTRY: dict[str, _Registration] = {
    "facebook": _Registration(
        "analytics_pipeline.platforms.facebook", "FacebookClient", "FacebookSettings"
    ),
    "instagram": _Registration(
        "analytics_pipeline.platforms.instagram", "InstagramClient", "InstagramSettings"
    ),
    "linkedin": _Registration(
        "analytics_pipeline.platforms.linkedin", "LinkedInClient", "LinkedInSettings"
    ),
    "x": _Registration("analytics_pipeline.platforms.x", "XClient", "XSettings"),
}

SUPPORTED_PLATFORMS: tuple[str, ...] = PLATFORMS
if set(_REGISTRY) != set(PLATFORMS):  # records.Platform is the one list of platforms
    raise ImportError(f"platform registry {sorted(_REGISTRY)} != records.PLATFORMS {PLATFORMS}")


def _registration(platform: str) -> _Registration:
    try:
        return _REGISTRY[platform]
    except KeyError:
        raise ValueError(
            f"unknown platform {platform!r}; supported: {', '.join(SUPPORTED_PLATFORMS)}"
        ) from None


def settings_type(platform: str) -> type[Any]:
    """The settings dataclass of `platform` (e.g. FacebookSettings)."""
    entry = _registration(platform)
    return cast(type[Any], getattr(importlib.import_module(entry.module), entry.settings_class))


def client_class(platform: str) -> type[PlatformClient]:
    """The client class of `platform`, for its declared capabilities (no instance needed)."""
    entry = _registration(platform)
    cls = getattr(importlib.import_module(entry.module), entry.client_class)
    return cast(type[PlatformClient], cls)


def create_client(
    account: Account, settings: Any, *, sleep: Callable[[float], None] | None = None
) -> PlatformClient:
    """A new client for `account` on its platform, with `settings` (that platform's settings
    dataclass) and its own HTTP session and counters. Every call of the client is about this
    account. `sleep` replaces the session's `time.sleep` (a run's `http.Pacer`: stop and wait
    budget). Unknown platform -> ValueError listing the supported ones."""
    entry = _registration(account.platform)
    module = importlib.import_module(entry.module)
    extra = {} if sleep is None else {"sleep": sleep}
    client = getattr(module, entry.client_class)(settings, account, **extra)
    if not isinstance(client, PlatformClient):
        raise TypeError(f"{entry.client_class} is not a PlatformClient")
    return client
