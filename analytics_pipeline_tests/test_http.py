"""ApiSession: retries, waits, token handling and redaction, against scripted transports
(`analytics_pipeline_tests.fakes`); one test also runs against a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import collections
import http.server
import logging
import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from analytics_pipeline.platforms.base import PlatformError, Secret
from analytics_pipeline.platforms.http import (
    ApiSession,
    Pacer,
    RetryConfig,
    RunStopped,
    WaitBudgetSpent,
    backoff_delay,
    parse_retry_after,
    safe_url,
)
from analytics_pipeline.records import ErrorClass
from analytics_pipeline_tests.fakes import Reply, ScriptedAdapter, Step, scripted_session, sent_text

TOKEN = "EAAGtestTOKEN0123456789abcdef"


# --------------------------------------------------------------------------- fixtures


def simple_classify(response: requests.Response) -> PlatformError | None:
    """A stand-in platform classifier: 5xx/429 transient, other 4xx permanent."""
    if response.status_code < 400:
        return None
    payload = response.json() if response.text.startswith("{") else {}
    message = str(payload.get("message", f"HTTP {response.status_code}"))
    retryable = response.status_code >= 500 or response.status_code == 429
    return PlatformError(
        ErrorClass.TRANSIENT if retryable else ErrorClass.PERMANENT_CREDENTIAL,
        message,
        platform="test",
        code=str(response.status_code),
        retry_after=payload.get("retry_after"),
    )


@pytest.fixture
def waits() -> list[float]:
    return []


def make_session(
    waits: list[float], *steps: Step, retry: RetryConfig | None = None, **kwargs: Any
) -> tuple[ApiSession, ScriptedAdapter]:
    http, adapter = scripted_session(*steps)
    session = ApiSession(
        "test",
        simple_classify,
        retry or RetryConfig(),
        sleep=waits.append,
        session=http,
        rng=random.Random(7),
        **kwargs,
    )
    return session, adapter


URL = "https://api.example.com/v1/things"


# --------------------------------------------------------------------------- retries


def test_transient_then_success_retries_with_bounded_backoff(waits: list[float]) -> None:
    session, adapter = make_session(
        waits,
        Reply(503),
        Reply(502),
        Reply(200, {"ok": True}),
        retry=RetryConfig(backoff_base_s=1.0, backoff_max_s=60.0),
    )
    response = session.request("GET", URL, token=Secret(TOKEN), params={"q": "x"})
    assert response.json() == {"ok": True}
    assert len(adapter.requests) == 3
    assert (session.calls, session.retries) == (3, 2)
    assert len(waits) == 2
    assert 0 <= waits[0] <= 1.0 and 0 <= waits[1] <= 2.0  # full jitter under base * 2**n
    assert session.waited_s == pytest.approx(sum(waits))


def test_permanent_error_is_raised_after_exactly_one_call(waits: list[float]) -> None:
    session, adapter = make_session(waits, Reply(401, {"message": "token revoked"}))
    with pytest.raises(PlatformError) as raised:
        session.request("GET", URL, token=Secret(TOKEN))
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert raised.value.http_status == 401
    assert len(adapter.requests) == 1 and session.calls == 1
    assert waits == []


def test_max_attempts_bounds_the_retries(waits: list[float]) -> None:
    session, adapter = make_session(waits, *[Reply(503)] * 3, retry=RetryConfig(max_attempts=3))
    with pytest.raises(PlatformError) as raised:
        session.request("GET", URL, token=Secret(TOKEN))
    assert raised.value.error_class is ErrorClass.TRANSIENT
    assert len(adapter.requests) == 3
    assert len(waits) == 2  # no sleep after the last attempt


def test_retry_after_seconds_is_honoured(waits: list[float]) -> None:
    session, _ = make_session(
        waits, Reply(429, headers={"Retry-After": "7"}), Reply(200, {"ok": 1})
    )
    session.request("GET", URL, token=Secret(TOKEN))
    assert waits == [7.0]


def test_retry_after_from_the_classifier_is_honoured(waits: list[float]) -> None:
    session, _ = make_session(waits, Reply(503, {"retry_after": 12.5}), Reply(200, {}))
    session.request("GET", URL, token=Secret(TOKEN))
    assert waits == [12.5]


def test_too_long_retry_after_raises_at_once(waits: list[float]) -> None:
    session, adapter = make_session(
        waits,
        Reply(429, headers={"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"}),
        Reply(200, {}),
        retry=RetryConfig(max_wait_s=300),
    )
    with pytest.raises(PlatformError) as raised:
        session.request("GET", URL, token=Secret(TOKEN))
    assert raised.value.error_class is ErrorClass.TRANSIENT
    assert raised.value.retry_after is not None and raised.value.retry_after > 300
    assert len(adapter.requests) == 1
    assert waits == []


def test_connection_errors_and_timeouts_are_retried(waits: list[float]) -> None:
    session, adapter = make_session(
        waits,
        requests.ConnectionError("connection reset"),
        requests.ReadTimeout("read timed out"),
        Reply(200, {"ok": True}),
    )
    assert session.request("GET", URL, token=Secret(TOKEN)).json() == {"ok": True}
    assert len(adapter.requests) == 3 and len(waits) == 2


def test_connection_error_message_has_no_query_and_no_token(waits: list[float]) -> None:
    leaky = requests.ConnectionError(
        f"HTTPSConnectionPool: Max retries exceeded with url: /v1/things?after=CURSOR42 "
        f"(Authorization: Bearer {TOKEN})"
    )
    session, _ = make_session(waits, leaky, leaky, retry=RetryConfig(max_attempts=2))
    with pytest.raises(PlatformError) as raised:
        session.request("GET", URL, token=Secret(TOKEN), params={"after": "CURSOR42"})
    error = raised.value
    assert error.error_class is ErrorClass.TRANSIENT
    for text in (str(error), repr(error), error.message):
        assert "CURSOR42" not in text and TOKEN not in text
    assert "api.example.com/v1/things" in error.message
    # No chained requests exception (its text quotes the URL with the query) either.
    assert error.__cause__ is None and error.__context__ is None


def test_invalid_url_is_not_retried(waits: list[float]) -> None:
    session, adapter = make_session(waits, requests.exceptions.InvalidURL("bad url"))
    with pytest.raises(PlatformError) as raised:
        session.request("GET", URL, token=Secret(TOKEN))
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE
    assert len(adapter.requests) == 1


# --------------------------------------------------------------------------- token handling


def test_token_is_sent_only_in_the_authorization_header(waits: list[float]) -> None:
    session, adapter = make_session(waits, Reply(503), Reply(200, {}), Reply(200, {}))
    session.request("GET", URL, token=Secret(TOKEN), params={"fields": "id,name"})
    session.request("POST", URL + "/", token=Secret(TOKEN), data={"batch": "[]"})
    assert len(adapter.requests) == 3
    for request in adapter.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert TOKEN not in sent_text(request)
    assert adapter.timeouts == [(5.0, 30.0)] * 3


@pytest.mark.parametrize(
    ("url", "params", "data"),
    [
        (URL, {"access_token": TOKEN}, None),
        (URL, [("fields", "id"), ("ACCESS_TOKEN", TOKEN)], None),
        (URL + "?access_token=" + TOKEN, None, None),
        (URL, None, {"access_token": TOKEN}),
    ],
)
def test_access_token_in_url_params_or_body_is_refused(
    waits: list[float], url: str, params: Any, data: Any
) -> None:
    session, adapter = make_session(waits, Reply(200, {}))
    with pytest.raises(ValueError, match="Authorization header") as raised:
        session.request("GET", url, token=Secret(TOKEN), params=params, data=data)
    assert TOKEN not in str(raised.value)
    assert adapter.requests == [] and session.calls == 0


def test_error_messages_echoing_the_token_are_redacted(waits: list[float]) -> None:
    session, _ = make_session(
        waits, Reply(400, {"message": f"bad token {TOKEN} in access_token={TOKEN}"})
    )
    with pytest.raises(PlatformError) as raised:
        session.request("GET", URL, token=Secret(TOKEN))
    for text in (str(raised.value), repr(raised.value), raised.value.message):
        assert TOKEN not in text
    assert "bad token ***" in raised.value.message


def test_attempts_are_logged_without_query_values_or_token(
    waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    session, _ = make_session(waits, Reply(503), Reply(200, {}))
    with caplog.at_level(logging.DEBUG, logger="analytics_pipeline.http"):
        session.request("GET", URL, token=Secret(TOKEN), params={"after": "CURSOR42"})
    lines = [r.getMessage() for r in caplog.records if r.name == "analytics_pipeline.http"]
    assert lines == [
        "GET https://api.example.com/v1/things?after -> HTTP 503 (attempt 1)",
        "GET https://api.example.com/v1/things?after -> HTTP 200 (attempt 2)",
    ]
    assert TOKEN not in caplog.text


# --------------------------------------------------------------------------- throttle


def test_throttle_pauses_before_the_next_request(waits: list[float]) -> None:
    pauses = iter([2.5, 0.0])
    session, adapter = make_session(
        waits, Reply(200, {}), Reply(200, {}), throttle=lambda _r: next(pauses)
    )
    session.request("GET", URL, token=Secret(TOKEN))
    assert waits == []  # paused lazily, before the NEXT request only
    session.request("GET", URL, token=Secret(TOKEN))
    assert waits == [2.5] and len(adapter.requests) == 2
    assert session.waited_s == 2.5


def test_throttle_longer_than_max_wait_raises_instead_of_sleeping(waits: list[float]) -> None:
    session, adapter = make_session(
        waits,
        Reply(200, {}),
        Reply(200, {}),
        throttle=lambda _r: 3600.0,
        retry=RetryConfig(max_wait_s=300),
    )
    session.request("GET", URL, token=Secret(TOKEN))
    with pytest.raises(PlatformError) as raised:
        session.request("GET", URL, token=Secret(TOKEN))
    assert raised.value.error_class is ErrorClass.TRANSIENT
    assert raised.value.retry_after == 3600.0
    assert len(adapter.requests) == 1 and waits == []


def test_throttle_pause_is_folded_into_a_retry_wait(waits: list[float]) -> None:
    session, _ = make_session(
        waits, Reply(503, {"retry_after": 1.0}), Reply(200, {}), throttle=lambda _r: 20.0
    )
    session.request("GET", URL, token=Secret(TOKEN))
    assert waits == [20.0]  # one wait (the longer), not 1 s then 20 s


def test_a_broken_throttle_does_not_lose_the_response(waits: list[float]) -> None:
    def broken(_response: requests.Response) -> float:
        raise KeyError("boom")

    session, _ = make_session(waits, Reply(200, {"ok": 1}), throttle=broken)
    assert session.request("GET", URL, token=Secret(TOKEN)).json() == {"ok": 1}


# --------------------------------------------------------------------------- helpers


def test_parse_retry_after() -> None:
    import datetime as dt

    now = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Fri, 20 Nov 2026 12:01:30 GMT", now) == 90.0
    assert parse_retry_after("Fri, 20 Nov 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-5") == 0.0


def test_backoff_delay_stays_under_the_exponential_ceiling() -> None:
    retry = RetryConfig(backoff_base_s=1.0, backoff_max_s=10.0)
    rng = random.Random(1)
    for n in range(8):
        ceiling = min(10.0, 2.0**n)
        delays = [backoff_delay(retry, n, rng) for _ in range(50)]
        assert all(0.0 <= d <= ceiling for d in delays)
    assert max(backoff_delay(retry, 20, rng) for _ in range(50)) > 5.0  # capped, not zero


def test_safe_url_keeps_parameter_names_only() -> None:
    assert (
        safe_url("https://h.example:8443/v1/x?fields=a,b&after=CUR&access_token=T")
        == "https://h.example:8443/v1/x?fields&after&access_token"
    )


def test_retry_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryConfig(max_attempts=0)


# --------------------------------------------------------------------------- real socket


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []
    replies: collections.deque[tuple[int, bytes]] = collections.deque()

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        status, body = type(self).replies.popleft()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"seen": [], "replies": collections.deque()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_against_a_real_local_server(
    waits: list[float], local_server: tuple[str, type[_Handler]]
) -> None:
    base, handler = local_server
    handler.replies.extend([(503, b'{"message":"busy"}'), (200, b'{"data":[1,2]}')])
    with ApiSession("test", simple_classify, sleep=waits.append) as session:
        response = session.request("GET", f"{base}/v1/items", token=Secret(TOKEN), params={"a": 1})
    assert response.json() == {"data": [1, 2]}
    assert handler.seen == [("/v1/items?a=1", f"Bearer {TOKEN}")] * 2
    assert session.calls == 2 and len(waits) == 1


# --------------------------------------------------------------------------- run pacing


def _paced_session(pacer: Pacer, *steps: Step, **kwargs: Any) -> tuple[ApiSession, ScriptedAdapter]:
    http, adapter = scripted_session(*steps)
    session = ApiSession("test", simple_classify, sleep=pacer, session=http, **kwargs)
    return session, adapter


def test_a_stop_wakes_a_long_pause_and_no_further_request_is_sent() -> None:
    stop = threading.Event()
    pacer = Pacer(stop)
    session, adapter = _paced_session(
        pacer, Reply(200, {}), Reply(200, {}), throttle=lambda _r: 250.0
    )
    session.request("GET", URL, token=Secret(TOKEN))  # asks for a 250 s pause before the next
    outcome: list[BaseException] = []

    def second_request() -> None:
        try:
            session.request("GET", URL, token=Secret(TOKEN))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=second_request)
    worker.start()
    stop.set()
    worker.join(timeout=60)  # hang guard: the pause is 250 s
    assert not worker.is_alive()
    assert [type(exc) for exc in outcome] == [RunStopped]
    assert len(adapter.requests) == 1


def test_pauses_beyond_the_run_budget_are_refused_as_deferred() -> None:
    pacer = Pacer(threading.Event(), wait_budget_s=0.0)
    session, adapter = _paced_session(
        pacer, Reply(200, {}), Reply(200, {}), throttle=lambda _r: 5.0
    )
    session.request("GET", URL, token=Secret(TOKEN))
    with pytest.raises(WaitBudgetSpent) as raised:
        session.request("GET", URL, token=Secret(TOKEN))
    assert raised.value.error_class is ErrorClass.TRANSIENT
    assert "ANALYTICS_MAX_RATE_LIMIT_WAIT_S" in raised.value.message
    assert len(adapter.requests) == 1 and pacer.waited_s == 0


def test_the_budget_is_shared_by_every_session_of_the_run() -> None:
    pacer = Pacer(threading.Event(), wait_budget_s=0.02)
    assert pacer.reserve(0.015)
    assert not pacer.reserve(0.01)  # a second session's pause no longer fits
    assert pacer.reserve(0.005)
