"""The warning before a Meta token stops working, from a debug_token reply (parsed at the
boundary by `graph_token.parse_debug_token`)."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics_pipeline.credentials.meta import meta_expiry_warning as _warning
from analytics_pipeline.platforms.base import PlatformError, TokenStatus
from analytics_pipeline.platforms.graph_token import parse_debug_token

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _epoch(delta: dt.timedelta) -> int:
    return int((NOW + delta).timestamp())


def _status(data: dict[str, object]) -> TokenStatus:
    return parse_debug_token({"data": {"is_valid": True, **data}}, platform="facebook")


def meta_expiry_warning(
    integration_id: str, reply: dict[str, object], now: dt.datetime, days: int
) -> str | None:
    """The warning for a debug_token reply's `data` (or the `data` members themselves)."""
    data = reply.get("data", reply)
    assert isinstance(data, dict)
    return _warning(integration_id, _status(data), now, days)


def test_a_token_that_never_expires_and_far_data_access_is_quiet() -> None:
    data = {
        "data": {
            "is_valid": True,
            "expires_at": 0,
            "data_access_expires_at": _epoch(dt.timedelta(days=80)),
        }
    }
    assert meta_expiry_warning("acme-fb", data, NOW, 7) is None


def test_data_access_ending_within_the_window_is_announced_with_its_date() -> None:
    data = {
        "data": {
            "is_valid": True,
            "expires_at": 0,
            "data_access_expires_at": _epoch(dt.timedelta(days=5, hours=1)),
        }
    }
    assert meta_expiry_warning("acme-fb", data, NOW, 7) == (
        "The Meta token of integration 'acme-fb' loses data access on 2026-12-06 13:00 UTC "
        "(in 5 days): re-authorize it before then."
    )
    assert meta_expiry_warning("acme-fb", data, NOW, 3) is None  # configurable window


def test_the_earliest_limit_wins_and_a_past_one_is_said_so() -> None:
    data = {
        "expires_at": _epoch(-dt.timedelta(hours=1)),
        "data_access_expires_at": _epoch(dt.timedelta(days=1)),
    }
    assert meta_expiry_warning("acme-ig", data, NOW, 7) == (
        "The Meta token of integration 'acme-ig' expired on 2026-12-01 11:00 UTC: re-authorize it."
    )


def test_within_a_day_and_invalid_tokens() -> None:
    soon = {"data": {"expires_at": _epoch(dt.timedelta(hours=3))}}
    message = meta_expiry_warning("acme-fb", soon, NOW, 7)
    assert message is not None and "(within a day)" in message
    assert "is no longer valid" in (
        meta_expiry_warning("acme-fb", {"data": {"is_valid": False}}, NOW, 7) or ""
    )


@pytest.mark.parametrize("value", [None, "soon", True, -5, 0])
def test_malformed_or_absent_limits_are_ignored(value: object) -> None:
    assert meta_expiry_warning("acme-fb", {"data": {"expires_at": value}}, NOW, 7) is None
    assert _status({"expires_at": value}).expires_at is None


def test_the_reply_is_parsed_into_a_frozen_status() -> None:
    status = parse_debug_token(
        {
            "data": {
                "app_id": "138483919580948",
                "type": "PAGE",
                "is_valid": True,
                "expires_at": 0,
                "data_access_expires_at": _epoch(dt.timedelta(days=90)),
                "scopes": ["pages_show_list", "pages_read_engagement", 7],
            }
        },
        platform="facebook",
    )
    assert status == TokenStatus(
        is_valid=True,
        expires_at=None,
        data_access_expires_at=NOW + dt.timedelta(days=90),
        scopes=("pages_show_list", "pages_read_engagement"),
    )
    with pytest.raises(AttributeError):
        status.is_valid = False  # type: ignore[misc]


@pytest.mark.parametrize("body", [{}, {"data": []}, {"data": {"expires_at": 0}}])
def test_a_reply_without_data_is_valid_is_an_invalid_response(body: dict[str, object]) -> None:
    with pytest.raises(PlatformError) as info:
        parse_debug_token(body, platform="instagram")
    assert info.value.error_class.value == "invalid_response"
