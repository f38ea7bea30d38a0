from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from analytics_pipeline.platforms.redact import RedactingFilter, redact, strip_access_token

TOKEN = "EAAGsecret+token/with=chars"


def test_known_secrets_are_removed_raw_and_percent_encoded() -> None:
    text = f"raw {TOKEN} quoted EAAGsecret%2Btoken%2Fwith%3Dchars end"
    cleaned = redact(text, [TOKEN])
    assert cleaned == "raw *** quoted *** end"


def test_longer_secret_is_masked_whole_even_when_it_contains_another() -> None:
    assert redact("abc123456789", ["abc", "abc123456789"]) == "***"


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("GET /v25.0/1/posts?after=x&access_token=EAAunknown123&limit=5", "EAAunknown123"),
        ("https://g/x?ACCESS_TOKEN=EAAupper", "EAAupper"),
        ("next=https%3A%2F%2Fg%2Fx%3Faccess_token%3DEAAencoded%26a%3D1", "EAAencoded"),
        ("appsecret_proof=deadbeef42&x=1", "deadbeef42"),
        ('{"access_token": "EAAjson", "expires_in": 5}', "EAAjson"),
        ("Authorization: Bearer EAAbearer.x-y_z", "EAAbearer"),
    ],
)
def test_token_shaped_values_are_removed_without_knowing_them(text: str, leak: str) -> None:
    cleaned = redact(text)
    assert leak not in cleaned
    assert "***" in cleaned


def test_pattern_values_are_masked_even_when_a_known_secret_overlaps_the_name() -> None:
    cleaned = redact("x?access_token=EAAother&y=1", ["tok"])
    assert "EAAother" not in cleaned and "y=1" in cleaned


def test_ordinary_text_is_untouched() -> None:
    text = "(#190) Invalid OAuth access token. after=QVFI&limit=100"
    assert redact(text, ["unrelated-secret"]) == text


def test_strip_access_token_keeps_every_other_parameter_byte_for_byte() -> None:
    url = (
        "https://graph.facebook.com/v25.0/1/posts?access_token=EAAx&fields=id%2Cmessage"
        "&limit=25&after=QVFIUnh5%3D&appsecret_proof=abc"
    )
    assert strip_access_token(url) == (
        "https://graph.facebook.com/v25.0/1/posts?fields=id%2Cmessage&limit=25&after=QVFIUnh5%3D"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/x", "https://h/x"),
        ("https://h/x?access_token=T", "https://h/x"),
        ("https://h/x?Access_Token=T&a=1#frag", "https://h/x?a=1#frag"),
        ("https://h/x?access%5Ftoken=T&a=1", "https://h/x?a=1"),
        ("https://h/x?a=1&&b=", "https://h/x?a=1&b="),
    ],
)
def test_strip_access_token_edge_cases(url: str, expected: str) -> None:
    assert strip_access_token(url) == expected


@pytest.fixture
def filtered_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    logger = logging.getLogger("analytics_pipeline_tests.redact")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.addFilter(RedactingFilter(secrets=[TOKEN]))
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.filters.clear()


def test_filter_redacts_messages_args_and_tracebacks(
    filtered_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = filtered_logger
    logger.info("calling %s with %s", "https://g/x?access_token=EAAunknown", TOKEN)
    try:
        raise RuntimeError(f"failed with Bearer {TOKEN}")
    except RuntimeError:
        logger.exception("boom")
    output = stream.getvalue()
    assert "EAAunknown" not in output and TOKEN not in output
    assert "calling https://g/x?access_token=*** with ***" in output
    assert "RuntimeError: failed with Bearer ***" in output
