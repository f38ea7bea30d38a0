"""Scripted HTTP fakes, a fake platform client and recorded-payload helpers shared by the tests.

`Reply`, `ScriptedAdapter` and `scripted_session` make a `requests` transport adapter that
answers from a script and records every request, so no socket is opened. `FakeClient` is a
`PlatformClient` that answers with nothing and records its calls. `Payloads` reads the recorded
API responses under `payloads/<platform>/`.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import pathlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from analytics_pipeline.platforms.base import (
    Account,
    AccountDescription,
    PlatformClient,
    days_between,
)
from analytics_pipeline.records import AccountMetrics, ContentItem, MetricsBatch

PAYLOAD_ROOT = pathlib.Path(__file__).parent / "payloads"


# --------------------------------------------------------------------------- test transport


@dataclass
class Reply:
    """A scripted HTTP reply: a JSON `body`, or raw `text`."""

    status: int = 200
    body: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_recording(cls, recording: dict[str, Any], **overrides: Any) -> Reply:
        """A reply from a recorded payload file (`status`, `headers`, `body` or `body_text`)."""
        reply = cls(
            status=recording["status"],
            body=recording.get("body"),
            text=recording.get("body_text"),
            headers=dict(recording.get("headers", {})),
        )
        for name, value in overrides.items():
            setattr(reply, name, value)
        return reply

    def to_response(self, request: requests.PreparedRequest) -> requests.Response:
        response = requests.Response()
        response.status_code = self.status
        text = self.text if self.text is not None else json.dumps(self.body)
        response._content = text.encode()
        response.encoding = "utf-8"
        response.headers = CaseInsensitiveDict(self.headers)
        response.url = request.url or ""
        response.request = request
        response.reason = "scripted"
        return response


Step = Reply | Exception | Callable[[requests.PreparedRequest], "Reply | Exception"]


class ScriptedAdapter(BaseAdapter):
    """Answers each request with the next script step and records what was sent."""

    def __init__(self, steps: list[Step]) -> None:
        super().__init__()
        self.steps: collections.deque[Step] = collections.deque(steps)
        self.requests: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        self.requests.append(request)
        self.timeouts.append(timeout)
        if not self.steps:
            raise AssertionError(f"unexpected extra request #{len(self.requests)}")
        step = self.steps.popleft()
        if callable(step) and not isinstance(step, Reply):
            step = step(request)
        if isinstance(step, Exception):
            raise step
        return step.to_response(request)

    def close(self) -> None:
        pass


def scripted_session(*steps: Step) -> tuple[requests.Session, ScriptedAdapter]:
    adapter = ScriptedAdapter(list(steps))
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session, adapter


def sent_text(request: requests.PreparedRequest) -> str:
    """Everything of a request that could leak a token, except the Authorization header."""
    body = request.body or ""
    body_text = body.decode() if isinstance(body, bytes) else str(body)
    headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
    return f"{request.url}\n{headers}\n{body_text}"


# --------------------------------------------------------------------------- fake client


class FakeClient(PlatformClient):
    """A client of `account`'s platform that finds nothing, sends nothing and records each call
    as `(method name, day)` (the first day, for a range). Its metrics are daily values, so
    every day records them whatever the clock says."""

    content_metrics_are_lifetime = False

    def __init__(self, account: Account) -> None:
        self.platform = account.platform
        super().__init__(account)
        self.calls: list[tuple[str, dt.date]] = []

    def list_content_between(self, start: dt.date, end: dt.date) -> Iterator[ContentItem]:
        self.calls.append(("list_content_between", start))
        return iter(())

    def fetch_content_metrics(
        self,
        content_ids: Sequence[str],
        day: dt.date,
        *,
        permalinks: Mapping[str, str | None] | None = None,
    ) -> MetricsBatch:
        self.calls.append(("fetch_content_metrics", day))
        return MetricsBatch(metrics=())

    def fetch_account_metrics_between(
        self, start: dt.date, end: dt.date, *, snapshot_day: dt.date | None
    ) -> dict[dt.date, AccountMetrics]:
        self.calls.append(("fetch_account_metrics_between", start))
        return {day: AccountMetrics() for day in days_between(start, end)}

    def describe_account(self) -> AccountDescription:
        self.calls.append(("describe_account", dt.date.min))
        return AccountDescription(self.account.external_account_id, "Fake account")

    @property
    def api_calls(self) -> int:
        return 0


# --------------------------------------------------------------------------- recorded payloads


class Payloads:
    """The recorded responses of one platform (`payloads/<platform>/<name>.json`)."""

    def __init__(self, platform: str) -> None:
        self.folder = PAYLOAD_ROOT / platform

    def load(self, name: str) -> dict[str, Any]:
        recording: dict[str, Any] = json.loads((self.folder / name).read_text())
        return recording

    def reply(self, name: str, **overrides: Any) -> Reply:
        return Reply.from_recording(self.load(name), **overrides)


def response_of(reply: Reply, url: str) -> requests.Response:
    """What `reply` looks like as the answer to a GET of `url`."""
    return reply.to_response(requests.Request("GET", url).prepare())


# --------------------------------------------------------------------------- assertions


def assert_token_only_in_header(
    adapter: ScriptedAdapter, token: str, *, require_requests: bool = True
) -> None:
    """Every recorded request carried `token` as a bearer header and nowhere else."""
    if require_requests:
        assert adapter.requests
    for request in adapter.requests:
        assert request.headers["Authorization"] == f"Bearer {token}"
        assert token not in sent_text(request)


# --------------------------------------------------------------------------- Graph batches


def graph_batch_items(request: requests.PreparedRequest) -> list[dict[str, str]]:
    """The items of a Graph batch POST (which must not ask for per-item headers)."""
    form = parse_qs(str(request.body))
    assert form["include_headers"] == ["false"]
    items: list[dict[str, str]] = json.loads(form["batch"][0])
    return items


def ok_item(body: dict[str, Any]) -> dict[str, Any]:
    """One successful item of a Graph batch answer."""
    return {"code": 200, "body": json.dumps(body)}
