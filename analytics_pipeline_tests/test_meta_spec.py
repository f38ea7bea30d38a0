"""Facebook and Instagram requests against Meta's own node descriptions (`specs/meta/`).

The real clients run over the sandbox on every code path (listing with paging, post and reel
metrics in batches, the invalid-metric probe, media type reads, stories, account metrics) and
every read they send, plain or as a batch item, is checked: each field of `fields=` (nested
`{...}` and `.modifier(...)` included) is a field or GET edge of its node, each query
parameter is a parameter of its edge, and each value of an enum-typed parameter (Instagram's
metric, period, metric_type; Facebook's period) is in `enum_types.json`.

Where the spec is silent the test does not pass quietly: `UNCHECKED` lists each such item and
why, and the test fails if that list changes (a new gap, or a gap the spec now fills).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import pytest

from analytics_pipeline.platforms.base import Account, Secret
from analytics_pipeline.platforms.facebook import FacebookClient, FacebookSettings
from analytics_pipeline.platforms.facebook import create_session as facebook_session
from analytics_pipeline.platforms.http import RetryConfig
from analytics_pipeline.platforms.instagram import InstagramClient, InstagramSettings
from analytics_pipeline.platforms.instagram import create_session as instagram_session
from analytics_pipeline_tests.spec_support import Exchange, MetaNode, MetaSpec, recording_session
from analytics_sandbox import FixedClock, SandboxConfig, SandboxServer
from analytics_sandbox.data import VIDEO_ID_PREFIX, is_ig_user_id

NOW = dt.datetime(2026, 11, 20, 23, 0, tzinfo=dt.UTC)
PAGE = "1000001"
IG = "17841400000000001"
TOKEN = "sandbox-meta-spec-token"
CONFIG = SandboxConfig(posts_per_day=(2, 6))
FAST = RetryConfig(backoff_base_s=0.001, backoff_max_s=0.002, max_attempts=4)
# Graph's own parameters, valid on every cursor-paged edge and not described per edge:
# https://developers.facebook.com/docs/graph-api/results (cursor and time-based pagination).
PAGING = frozenset({"limit", "after", "before", "since", "until"})
# Graph's field-expansion modifiers that are not parameters of the edge they modify.
EXPANSION_MODIFIERS = frozenset({"summary", "limit"})

# What the spec cannot check, and why. The test fails when this changes in either direction.
UNCHECKED = {
    (
        "PagePost",
        "attachments{media_type,type,target{id}}",
        "edge of StoryAttachment, a node the spec does not describe",
    ),
    (
        "PagePost",
        "attachments{media_type,type,url,target,subattachments}",
        "edge of StoryAttachment, a node the spec does not describe",
    ),
    ("PagePost", "insights.metric", "typed list<Object>: metric names not in the spec"),
    ("PagePost", "comments.summary", "a field-expansion modifier, not an edge parameter"),
    ("PagePost", "comments.limit", "a field-expansion modifier, not an edge parameter"),
    ("AdVideo", "video_insights?metric", "typed list<Object>: metric names not in the spec"),
    ("Page", "insights?metric", "typed list<Object>: metric names not in the spec"),
    ("Page", "posts?since", "Graph's time-based paging, not described per edge"),
    ("Page", "posts?until", "Graph's time-based paging, not described per edge"),
    ("Page", "posts?after", "Graph's cursor paging, not described per edge"),
    ("IGUser", "media?limit", "Graph's cursor paging, not described per edge"),
    ("IGUser", "media?after", "Graph's cursor paging, not described per edge"),
    ("IGUser", "stories?limit", "Graph's cursor paging, not described per edge"),
}


@dataclass(frozen=True)
class Read:
    """One GET the client made, directly or as a batch item."""

    object_id: str
    edge: str | None
    params: tuple[tuple[str, str], ...]


def reads(exchanges: list[Exchange]) -> Iterator[Read]:
    for exchange in exchanges:
        if exchange.method == "POST":
            items = json.loads(dict(parse_qsl(exchange.body or ""))["batch"])
            for item in items:
                assert item["method"] == "GET"
                yield parse_read("/" + item["relative_url"])
        else:
            parts = urlsplit(exchange.url)
            path = "/".join(parts.path.split("/")[2:])  # drop the version
            yield parse_read(f"/{path}?{parts.query}")


def parse_read(relative: str) -> Read:
    parts = urlsplit(relative)
    segments = parts.path.strip("/").split("/")
    assert 1 <= len(segments) <= 2, relative
    params = tuple(parse_qsl(parts.query, keep_blank_values=True))
    assert "access_token" not in dict(params)
    return Read(segments[0], segments[1] if len(segments) == 2 else None, params)


def node_of(object_id: str) -> str:
    """Which Graph node an id of the sandbox's world is."""
    if object_id == PAGE:
        return "Page"
    if "_" in object_id:
        return "PagePost"
    if is_ig_user_id(object_id):
        return "IGUser"
    if object_id.startswith("18"):
        return "IGMedia"
    assert object_id.startswith(VIDEO_ID_PREFIX), object_id
    return "AdVideo"


def split_top(text: str) -> list[str]:
    """`a,b{c,d},e.m(x,y)` -> [`a`, `b{c,d}`, `e.m(x,y)`] (commas outside brackets)."""
    items, depth, current = [], 0, ""
    for char in text:
        if char in "{(":
            depth += 1
        elif char in "})":
            depth -= 1
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [item for item in items if item]


_ITEM = re.compile(r"^(?P<name>\w+)(?P<modifiers>(?:\.\w+\([^)]*\))*)(?:\{(?P<sub>.*)\})?$")
_MODIFIER = re.compile(r"\.(\w+)\(([^)]*)\)")


class Checker:
    def __init__(self, spec: MetaSpec) -> None:
        self.spec = spec
        self.problems: list[str] = []
        self.unchecked: set[tuple[str, str, str]] = set()
        self.checked = 0

    def node(self, name: str) -> MetaNode:
        node = self.spec.node(name)
        assert node is not None, f"copy specs/meta/{name}.json"
        return node

    def read(self, read: Read) -> None:
        node = self.node(node_of(read.object_id))
        target = node
        if read.edge is not None:
            if read.edge not in node.edges:
                self.problems.append(f"{node.name} has no GET edge {read.edge}")
                return
            declared = node.edge_params(read.edge)
            for name, value in read.params:
                if name == "fields":
                    continue
                self.param(node.name, f"{read.edge}?{name}", declared, name, value)
            returned = self.spec.node(str(node.edges[read.edge].get("return")))
            if returned is None:
                if dict(read.params).get("fields"):
                    self.problems.append(f"{node.name}/{read.edge}: fields of an undescribed node")
                return
            target = returned
        else:
            assert {name for name, _ in read.params} <= {"fields"}, read
        fields = dict(read.params).get("fields")
        if fields:
            self.fields(target, fields)

    def param(self, node: str, where: str, declared: dict[str, str], name: str, value: str) -> None:
        if name not in declared:
            if name in PAGING:
                reason = "time-based" if name in {"since", "until"} else "cursor"
                self.unchecked.add(
                    (node, where, f"Graph's {reason} paging, not described per edge")
                )
            else:
                self.problems.append(f"{node} {where}: no such parameter")
            return
        kind = declared[name]
        enum = self.spec.enum_of(kind)
        if enum is not None:
            values = value.split(",") if kind.startswith("list<") else [value]
            bad = [v for v in values if v not in enum]
            self.checked += len(values)
            if bad:
                self.problems.append(f"{node} {where}: {bad} not in {kind}")
        elif kind == "list<Object>":
            self.unchecked.add((node, where, "typed list<Object>: metric names not in the spec"))
        elif kind in ("datetime", "unsigned int"):
            self.checked += 1
            if not value.isdigit():
                self.problems.append(f"{node} {where}: {value!r} is not a {kind}")
        else:
            self.problems.append(f"{node} {where}: no check for type {kind}")

    def fields(self, node: MetaNode, text: str) -> None:
        for item in split_top(text):
            match = _ITEM.match(item)
            if match is None:
                self.problems.append(f"{node.name}: cannot parse field {item!r}")
                continue
            name, sub = match["name"], match["sub"]
            modifiers = _MODIFIER.findall(match["modifiers"] or "")
            if name in node.fields:
                self.checked += 1
                if modifiers or sub is not None:
                    self.problems.append(f"{node.name}.{name} is a field, not an edge: {item}")
                continue
            if name not in node.edges:
                self.problems.append(f"{node.name} has no field or edge {name!r}")
                continue
            self.checked += 1
            declared = node.edge_params(name)
            for modifier, args in modifiers:
                if modifier in declared:
                    self.param(node.name, f"{name}.{modifier}", declared, modifier, args)
                elif modifier in EXPANSION_MODIFIERS:
                    why = "a field-expansion modifier, not an edge parameter"
                    self.unchecked.add((node.name, f"{name}.{modifier}", why))
                else:
                    self.problems.append(f"{node.name}.{name}: no parameter {modifier}")
            if sub is not None:
                returned = str(node.edges[name].get("return"))
                target = self.spec.node(returned)
                if target is None:
                    why = f"edge of {returned}, a node the spec does not describe"
                    self.unchecked.add((node.name, f"{name}{{{sub}}}", why))
                else:
                    self.fields(target, sub)


def facebook_exchanges(sandbox: SandboxServer) -> list[Exchange]:
    http, exchanges = recording_session()
    settings = FacebookSettings(base_url=sandbox.base_url, retry=FAST, page_size=2)
    session = facebook_session(settings, sleep=lambda _s: None, http=http)
    account = Account("org-1", "int-fb", "facebook", PAGE, Secret(TOKEN))
    client = FacebookClient(settings, account, session=session)
    days = [NOW.date() - dt.timedelta(days=n) for n in range(1, 8)]
    items = [item for day in days for item in client.list_content(day)]
    assert len({i.format for i in items}) >= 4
    ids = [i.external_content_id for i in items]
    assert client.fetch_content_metrics(ids, NOW.date()).metrics
    # A fresh client: reels recognised only in the metrics reply (one more batch), and an
    # invalid metric pinned down with one-metric probes.
    sandbox.faults.update(invalid_metrics=["post_clicks"])
    fresh = FacebookClient(settings, account, session=session)
    batch = fresh.fetch_content_metrics(ids, NOW.date())
    assert batch.rejected_metrics == ("post_clicks",)
    sandbox.faults.update(invalid_metrics=[])
    assert client.fetch_account_metrics(days[0], include_snapshot=True).followers_total
    assert any(r.edge == "video_insights" for r in reads(exchanges))
    return exchanges


def instagram_exchanges(sandbox: SandboxServer, clock: FixedClock) -> list[Exchange]:
    http, exchanges = recording_session()
    settings = InstagramSettings(base_url=sandbox.base_url, retry=FAST, page_size=3)
    session = instagram_session(settings, sleep=lambda _s: None, http=http)
    account = Account("org-1", "int-ig", "instagram", IG, Secret(TOKEN))
    client = InstagramClient(settings, account, session=session, clock=clock)
    days = [NOW.date() - dt.timedelta(days=n) for n in range(0, 6)]
    items = [item for day in days for item in client.list_content(day)]
    assert {i.format.value for i in items} >= {"STORY", "REEL"}
    ids = [i.external_content_id for i in items]
    assert client.fetch_content_metrics(ids, NOW.date()).metrics
    fresh = InstagramClient(settings, account, session=session, clock=clock)
    assert fresh.fetch_content_metrics(ids, NOW.date()).metrics  # media types read first
    for day in (days[1], NOW.date() - dt.timedelta(days=40)):
        client.fetch_account_metrics(day, include_snapshot=True)
    return exchanges


@pytest.fixture(scope="module")
def meta_spec() -> MetaSpec:
    return MetaSpec()


def test_every_graph_read_of_the_clients_is_in_the_node_specs(
    sandbox: SandboxServer, clock: FixedClock, meta_spec: MetaSpec
) -> None:
    checker = Checker(meta_spec)
    exchanges = facebook_exchanges(sandbox) + instagram_exchanges(sandbox, clock)
    assert any(e.method == "POST" for e in exchanges)  # batches were read item by item
    all_reads = list(reads(exchanges))
    for read in all_reads:
        checker.read(read)
    assert checker.problems == []
    assert {(node_of(r.object_id), r.edge) for r in all_reads} == {
        ("Page", "posts"),
        ("Page", None),
        ("Page", "insights"),
        ("PagePost", None),
        ("AdVideo", "video_insights"),
        ("IGUser", "media"),
        ("IGUser", "stories"),
        ("IGUser", None),
        ("IGUser", "insights"),
        ("IGMedia", None),
        ("IGMedia", "insights"),
    }
    assert checker.checked > 100
    assert checker.unchecked == UNCHECKED


def test_the_configured_metric_defaults_are_in_the_enums(meta_spec: MetaSpec) -> None:
    """Instagram's metric lists (defaults) are checkable value by value; Facebook's are not
    (list<Object>, see UNCHECKED): they are at least names the clients map to columns."""
    ig_user, ig_media = meta_spec.node("IGUser"), meta_spec.node("IGMedia")
    assert ig_user is not None and ig_media is not None
    account = meta_spec.enum_of(ig_user.edge_params("insights")["metric"])
    media = meta_spec.enum_of(ig_media.edge_params("insights")["metric"])
    assert account is not None and media is not None
    settings = InstagramSettings()
    assert set(settings.account_metrics) <= account
    for family in ("FEED", "REEL", "STORY"):
        assert set(settings.metrics_of(family)) <= media, family
    for node, edge in (
        ("Page", "insights"),
        ("PagePost", "insights"),
        ("AdVideo", "video_insights"),
    ):
        spec_node = meta_spec.node(node)
        assert spec_node is not None
        assert spec_node.edge_params(edge)["metric"] == "list<Object>", (node, edge)


def test_the_checker_is_not_vacuous(meta_spec: MetaSpec) -> None:
    checker = Checker(meta_spec)
    checker.read(Read(PAGE, "posts", (("fields", "id,impressions,attachments{x}"),)))
    checker.read(Read(IG, "insights", (("metric", "reach,impressions_total"), ("period", "day"))))
    checker.read(Read(PAGE + "_1", None, (("fields", "insights.metrics(a)"),)))
    checker.read(Read(IG, "feed", ()))
    assert checker.problems == [
        "PagePost has no field or edge 'impressions'",
        "IGUser insights?metric: ['impressions_total'] not in "
        "list<shadowiguserinsights_metric_enum_param>",
        "PagePost.insights: no parameter metrics",
        "IGUser has no GET edge feed",
    ]
