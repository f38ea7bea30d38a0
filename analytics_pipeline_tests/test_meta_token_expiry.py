"""The warning before a Meta token stops working, from a debug_token reply."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics_pipeline.credentials.meta import meta_expiry_warning

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _epoch(delta: dt.timedelta) -> int:
    return int((NOW + delta).timestamp())


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
