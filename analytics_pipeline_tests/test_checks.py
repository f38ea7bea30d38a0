"""Asset checks: every check fails on a violation inside the run's scope and passes on the same
violation outside it (another integration, the day before, the day after); the scope comes from
the partition keys, or is yesterday and today of every tracked integration without them; the
queries are served by indexes; and one real `dg.materialize` run reports a failing check.

Every test taking `engine` or `warehouse_url` runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.assets import social_ingestion
from analytics_pipeline.defs.checks import (
    CHECK_SPECS,
    CHECKS,
    SHOWN_INTEGRATIONS,
    run_checks,
    scope_of,
)
from analytics_pipeline.defs.partitions import INTEGRATIONS_PARTITIONS_NAME, range_run_tags
from analytics_pipeline.defs.resources import PlatformsResource, WarehouseResource
from analytics_pipeline.records import METRIC_FIELDS, ContentPartition, PartitionKeyError
from analytics_pipeline.warehouse import CheckScope, checks_sql
from analytics_pipeline.warehouse import tables as t
from analytics_pipeline_tests.helpers import track_facebook_pages
from analytics_sandbox.server import SandboxServer

ORG = "org-1"
IID = "acme-fb"
OTHER = "acme-fb-2"  # same organization and platform: only the integration id tells them apart
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
FEB28 = dt.date(2026, 2, 28)
MAR1, MAR2, MAR3, MAR4, MAR5 = (dt.date(2026, 3, d) for d in range(1, 6))
ALL_DAYS = [FEB28, MAR1, MAR2, MAR3, MAR4, MAR5]
ITEMS = ("post-a", "post-b")
# The run under test: IID on MAR2..MAR3.
RUN_KEYS = [ContentPartition(day, IID).key for day in (MAR2, MAR3)]
OUTSIDE = [
    pytest.param(OTHER, MAR2, id="another-integration"),
    pytest.param(IID, MAR1, id="day-before"),
    pytest.param(IID, MAR4, id="day-after"),
]


# --- a clean warehouse ---------------------------------------------------------------------------


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _item_row(integration_id: str, content_id: str, published_at: dt.datetime, **changes: Any):
    row: dict[str, Any] = {
        "organization_id": ORG,
        "integration_id": integration_id,
        "platform": "facebook",
        "external_content_id": content_id,
        "format": "POST",
        "hashtags": [],
        "published_at": published_at,
        "first_seen_at": T0,
        "updated_at": T0,
    }
    row.update(changes)
    return row


def _metric_row(integration_id: str, content_id: str, day: dt.date, **values: Any):
    row: dict[str, Any] = {
        "organization_id": ORG,
        "integration_id": integration_id,
        "external_content_id": content_id,
        "metric_date": day,
        "value_kind": "lifetime_snapshot",
        "observed_at": T0,
    }
    row.update(values)
    return row


def _add_integration(conn: sa.Connection, integration_id: str) -> None:
    wh.add_integration(
        conn,
        organization_id=ORG,
        integration_id=integration_id,
        platform="facebook",
        external_account_id=str(
            int(hashlib.sha256(integration_id.encode()).hexdigest()[:15], 16) + 1
        ),
        display_name=integration_id,
        credential_env="ACME_TOKEN",
        now=T0,
    )


def _write_clean_data(engine: sa.Engine) -> None:
    """Two tracked integrations, each with two items published on FEB28 (and one each day), a
    growing lifetime snapshot per item per day and an account row per day."""
    with engine.begin() as conn:
        for integration_id in (IID, OTHER):
            _add_integration(conn, integration_id)
            items = [_item_row(integration_id, c, _midnight(FEB28)) for c in ITEMS]
            items += [_item_row(integration_id, f"daily-{d}", _midnight(d)) for d in ALL_DAYS]
            conn.execute(sa.insert(t.content_items), items)
            conn.execute(
                sa.insert(t.content_metrics_daily),
                [
                    _metric_row(integration_id, content_id, day, likes=10 + n, views=100 + n)
                    for n, day in enumerate(ALL_DAYS)
                    for content_id in ITEMS
                ],
            )
            conn.execute(
                sa.insert(t.account_metrics_daily),
                [
                    {
                        "organization_id": ORG,
                        "integration_id": integration_id,
                        "metric_date": day,
                        "followers_total": 500 + n,
                        "followers_observed_at": T0,
                        "new_followers": 0,
                        "observed_at": T0,
                    }
                    for n, day in enumerate(ALL_DAYS)
                ],
            )


@pytest.fixture
def warehouse(engine: sa.Engine) -> sa.Engine:
    _write_clean_data(engine)
    return engine


# --- one way to break each check -----------------------------------------------------------------

Violation = Callable[[sa.Connection, str, dt.date], None]


def _content_of_another_organization(conn: sa.Connection, integration_id: str, day: dt.date):
    row = _item_row(integration_id, f"moved-{day}", _midnight(day), organization_id="org-2")
    conn.execute(sa.insert(t.content_items).values(row))


def _content_of_another_platform(conn: sa.Connection, integration_id: str, day: dt.date):
    row = _item_row(integration_id, f"mislabelled-{day}", _midnight(day), platform="x")
    conn.execute(sa.insert(t.content_items).values(row))


def _metrics_without_item(conn: sa.Connection, integration_id: str, day: dt.date):
    conn.execute(
        sa.insert(t.content_metrics_daily).values(_metric_row(integration_id, "ghost", day))
    )


def _metrics_of_another_integrations_item(conn: sa.Connection, integration_id: str, day: dt.date):
    """The item exists, but only under the other integration: still no item for this row."""
    elsewhere = OTHER if integration_id == IID else IID
    conn.execute(
        sa.insert(t.content_items).values(_item_row(elsewhere, "shared", _midnight(FEB28)))
    )
    conn.execute(
        sa.insert(t.content_metrics_daily).values(_metric_row(integration_id, "shared", day))
    )


def _update_metrics(conn: sa.Connection, integration_id: str, day: dt.date, **values: Any):
    m = t.content_metrics_daily
    conn.execute(
        sa.update(m)
        .where(
            m.c.integration_id == integration_id,
            m.c.external_content_id == ITEMS[0],
            m.c.metric_date == day,
        )
        .values(**values)
    )


def _negative_count(conn: sa.Connection, integration_id: str, day: dt.date):
    _update_metrics(conn, integration_id, day, shares=-2)


def _two_value_kinds(conn: sa.Connection, integration_id: str, day: dt.date):
    _update_metrics(conn, integration_id, day, value_kind="daily")


def _decreased_counter(conn: sa.Connection, integration_id: str, day: dt.date):
    _update_metrics(conn, integration_id, day, likes=1)  # the day before holds 10 or more


def _update_account(conn: sa.Connection, integration_id: str, day: dt.date, **values: Any):
    a = t.account_metrics_daily
    conn.execute(
        sa.update(a)
        .where(a.c.integration_id == integration_id, a.c.metric_date == day)
        .values(**values)
    )


def _negative_account_value(conn: sa.Connection, integration_id: str, day: dt.date):
    _update_account(conn, integration_id, day, new_followers=-3, website_clicks=-1)


def _followers_without_observed_at(conn: sa.Connection, integration_id: str, day: dt.date):
    _update_account(conn, integration_id, day, followers_observed_at=None)


VIOLATIONS: list[tuple[str, Violation]] = [
    ("content_matches_integration", _content_of_another_organization),
    ("content_matches_integration", _content_of_another_platform),
    ("metrics_have_content_item", _metrics_without_item),
    ("metrics_have_content_item", _metrics_of_another_integrations_item),
    ("no_negative_counts", _negative_count),
    ("one_value_kind_per_integration_day", _two_value_kinds),
    ("no_decreased_lifetime_counters", _decreased_counter),
    ("no_negative_account_values", _negative_account_value),
    ("followers_total_has_observed_at", _followers_without_observed_at),
]
VIOLATION_PARAMS = [pytest.param(name, write, id=write.__name__[1:]) for name, write in VIOLATIONS]
BY_NAME = {check.name: check for check in CHECKS}


def _check(
    engine: sa.Engine,
    name: str,
    partition_keys: Sequence[str] | None = RUN_KEYS,
    today: dt.date | None = None,
) -> dg.AssetCheckResult:
    (result,) = run_checks(engine, [BY_NAME[name].key], partition_keys, today=today)
    return result


def _meta(result: dg.AssetCheckResult) -> dict[str, Any]:
    return {name: value.value for name, value in result.metadata.items()}


# --- the registry --------------------------------------------------------------------------------


def test_every_check_has_a_violation_test_and_a_spec():
    assert {name for name, _ in VIOLATIONS} == set(BY_NAME)
    assert [spec.name for spec in CHECK_SPECS] == [check.name for check in CHECKS]
    assert len(BY_NAME) == len(CHECKS)
    severities = {check.name: check.severity for check in CHECKS}
    assert severities.pop("no_decreased_lifetime_counters") == dg.AssetCheckSeverity.WARN
    assert set(severities.values()) == {dg.AssetCheckSeverity.ERROR}
    for spec in CHECK_SPECS:
        assert "without partitions, yesterday and today" in (spec.description or "")


def test_no_check_looks_for_what_a_unique_key_forbids():
    assert not [name for name in BY_NAME if "duplicate" in name]


@pytest.mark.parametrize(
    ("table", "row"),
    [
        (t.content_items, _item_row(IID, ITEMS[0], _midnight(FEB28), caption="again")),
        (t.content_metrics_daily, _metric_row(IID, ITEMS[0], MAR1, likes=99)),
        (
            t.account_metrics_daily,
            {"organization_id": ORG, "integration_id": IID, "metric_date": MAR1, "observed_at": T0},
        ),
    ],
    ids=["content_items", "content_metrics_daily", "account_metrics_daily"],
)
def test_unique_keys_refuse_duplicates(warehouse: sa.Engine, table: sa.Table, row: dict) -> None:
    """Why the duplicate-key checks were dropped: the database refuses a second row per key
    (and test_warehouse compares a migrated database's unique keys with tables.py)."""
    with pytest.raises(sa.exc.IntegrityError), warehouse.begin() as conn:
        conn.execute(sa.insert(table).values(row))


# --- each check, inside and outside the scope ----------------------------------------------------


def test_clean_data_passes_every_check(warehouse: sa.Engine) -> None:
    for keys in (RUN_KEYS, [ContentPartition(d, i).key for d in ALL_DAYS for i in (IID, OTHER)]):
        results = list(run_checks(warehouse, [c.key for c in CHECKS], keys))
        assert [r.check_name for r in results] == [c.name for c in CHECKS]
        assert all(r.passed for r in results), [r.check_name for r in results if not r.passed]
        assert all(_meta(r)["violations"] == 0 for r in results)


@pytest.mark.parametrize("day", [MAR2, MAR3], ids=["first-day", "last-day"])
@pytest.mark.parametrize(("name", "write"), VIOLATION_PARAMS)
def test_a_violation_inside_the_scope_fails_the_check(
    warehouse: sa.Engine, name: str, write: Violation, day: dt.date
) -> None:
    with warehouse.begin() as conn:
        write(conn, IID, day)
    result = _check(warehouse, name)
    assert not result.passed
    assert result.severity == BY_NAME[name].severity
    meta = _meta(result)
    assert meta["violations"] == 1
    (example,) = meta["examples"]
    assert example["integration_id"] == IID
    assert example.get("metric_date", day.isoformat()) == day.isoformat()
    assert (meta["scope_days"], meta["scope_integrations"]) == ("2026-03-02..2026-03-03", [IID])
    # The other checks are not disturbed by this violation.
    others = [c.key for c in CHECKS if c.name != name]
    assert all(r.passed for r in run_checks(warehouse, others, RUN_KEYS))


@pytest.mark.parametrize(("integration_id", "day"), OUTSIDE)
@pytest.mark.parametrize(("name", "write"), VIOLATION_PARAMS)
def test_the_same_violation_outside_the_scope_passes(
    warehouse: sa.Engine, name: str, write: Violation, integration_id: str, day: dt.date
) -> None:
    with warehouse.begin() as conn:
        write(conn, integration_id, day)
    result = _check(warehouse, name)
    assert result.passed and _meta(result)["violations"] == 0
    # ...and it is a real violation: a run over its partition finds it.
    found = _check(warehouse, name, [ContentPartition(day, integration_id).key])
    assert not found.passed and _meta(found)["violations"] == 1


def test_violations_are_counted_by_row_with_examples_in_key_order(warehouse: sa.Engine) -> None:
    with warehouse.begin() as conn:
        for day in (MAR3, MAR2):
            conn.execute(
                sa.insert(t.content_metrics_daily),
                [_metric_row(IID, f"ghost-{n}", day) for n in range(4)],
            )
        _negative_account_value(conn, IID, MAR2)  # two negative columns, one row
    orphans = _meta(_check(warehouse, "metrics_have_content_item"))
    assert orphans["violations"] == 8
    # Key order: (integration, content id, day), the first five.
    assert [(e["external_content_id"], e["metric_date"]) for e in orphans["examples"]] == [
        ("ghost-0", "2026-03-02"),
        ("ghost-0", "2026-03-03"),
        ("ghost-1", "2026-03-02"),
        ("ghost-1", "2026-03-03"),
        ("ghost-2", "2026-03-02"),
    ]
    assert _meta(_check(warehouse, "no_negative_account_values"))["violations"] == 1


def test_a_content_mismatch_names_both_sides(warehouse: sa.Engine) -> None:
    with warehouse.begin() as conn:
        _content_of_another_organization(conn, IID, MAR2)
    (example,) = _meta(_check(warehouse, "content_matches_integration"))["examples"]
    assert example == {
        "integration_id": IID,
        "external_content_id": "moved-2026-03-02",
        "organization_id": "org-2",
        "platform": "facebook",
        "tracked_organization_id": ORG,
        "tracked_platform": "facebook",
    }


def test_mixed_value_kinds_are_reported_per_integration_day(warehouse: sa.Engine) -> None:
    with warehouse.begin() as conn:
        _two_value_kinds(conn, IID, MAR2)
        m = t.content_metrics_daily
        conn.execute(  # every row of MAR3 daily: one kind again
            sa.update(m)
            .where(m.c.integration_id == IID, m.c.metric_date == MAR3)
            .values(value_kind="daily")
        )
    meta = _meta(_check(warehouse, "one_value_kind_per_integration_day"))
    assert meta["violations"] == 1
    assert meta["examples"] == [
        {
            "integration_id": IID,
            "metric_date": "2026-03-02",
            "a_value_kind": "daily",
            "another_value_kind": "lifetime_snapshot",
        }
    ]


def test_a_decreased_counter_is_a_warning_and_not_a_negative_count(warehouse: sa.Engine) -> None:
    """A counter revised down is kept as observed: the WARN check counts it, the stored values
    are still non-negative, and the next day's difference is not flagged again."""
    with warehouse.begin() as conn:
        _decreased_counter(conn, IID, MAR2)
    decreased = _check(warehouse, "no_decreased_lifetime_counters")
    assert not decreased.passed
    assert decreased.severity == dg.AssetCheckSeverity.WARN
    assert _meta(decreased)["examples"] == [
        {"integration_id": IID, "external_content_id": ITEMS[0], "metric_date": "2026-03-02"}
    ]
    assert _check(warehouse, "no_negative_counts").passed


# --- the scope -----------------------------------------------------------------------------------


def test_the_scope_of_partition_keys_is_their_integrations_and_day_range():
    keys = [ContentPartition(d, i).key for d in (MAR3, MAR1, MAR2) for i in ("b", "a", "b")]
    assert scope_of(keys) == CheckScope(("a", "b"), MAR1, MAR3)
    assert scope_of([]) is None
    with pytest.raises(PartitionKeyError):
        scope_of(["2026-03-01"])
    with pytest.raises(ValueError, match="empty day range"):
        CheckScope.of(["a"], MAR2, MAR1)


@pytest.mark.parametrize("partition_keys", [None, []], ids=["none", "empty"])
def test_without_partitions_a_check_reads_yesterday_and_today_of_every_integration(
    warehouse: sa.Engine, partition_keys: list[str] | None
) -> None:
    with warehouse.begin() as conn:
        _negative_count(conn, OTHER, MAR1)  # the day before yesterday
    result = _check(warehouse, "no_negative_counts", partition_keys, today=MAR3)
    assert result.passed
    meta = _meta(result)
    assert meta["scope_days"] == "2026-03-02..2026-03-03"
    assert meta["scope_integrations"] == [IID, OTHER]
    assert meta["scope_source"].startswith("no partitions")
    with warehouse.begin() as conn:
        _negative_count(conn, OTHER, MAR2)  # yesterday, of an integration not in any run
    assert not _check(warehouse, "no_negative_counts", partition_keys, today=MAR3).passed


def test_without_tracked_integrations_every_check_passes_on_an_empty_scope(
    engine: sa.Engine,
) -> None:
    results = list(run_checks(engine, [c.key for c in CHECKS], None, today=MAR3))
    assert len(results) == len(CHECKS)
    for result in results:
        assert result.passed
        assert _meta(result)["scope_integration_count"] == 0


def test_the_scope_metadata_lists_at_most_a_few_integrations(warehouse: sa.Engine) -> None:
    ids = [f"int-{n:03d}" for n in range(SHOWN_INTEGRATIONS + 5)]
    meta = _meta(_check(warehouse, "no_negative_counts", [f"2026-03-02|{i}" for i in ids]))
    assert meta["scope_integration_count"] == len(ids)
    assert meta["scope_integrations"] == [*ids[:SHOWN_INTEGRATIONS], "... and 5 more"]
    assert meta["scope_days"] == "2026-03-02"
    assert meta["scope_source"] == "the run's partitions"


def test_only_the_selected_checks_run(warehouse: sa.Engine) -> None:
    assert list(run_checks(warehouse, [], RUN_KEYS)) == []
    keys = [BY_NAME["no_negative_counts"].key, BY_NAME["followers_total_has_observed_at"].key]
    results = list(run_checks(warehouse, keys, RUN_KEYS))
    assert [r.check_name for r in results] == [
        "no_negative_counts",
        "followers_total_has_observed_at",
    ]


# --- query plans ---------------------------------------------------------------------------------

# What a full read of a big table looks like in each dialect's plan text ("cur"/"prev" are the
# change view's aliases of content_metrics_daily).
_BIG_TABLES = r"(content_items|content_metrics_daily|account_metrics_daily|cur|prev)\b"
_FULL_SCAN = {
    "postgresql": re.compile(r"Seq Scan on " + _BIG_TABLES),
    "sqlite": re.compile(r"^SCAN " + _BIG_TABLES),
}
_QUERIES = [
    checks_sql.content_integration_mismatches,
    checks_sql.orphan_metric_rows,
    checks_sql.negative_metric_values,
    checks_sql.mixed_value_kinds,
    checks_sql.decreased_counters,
    checks_sql.negative_account_values,
    checks_sql.followers_without_observed_at,
]


def _plan(conn: sa.Connection, statement: sa.Select[Any]) -> list[str]:
    compiled = statement.compile(conn, compile_kwargs={"render_postcompile": True})
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).all()
    else:
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params).all()
    return [str(row[-1]).strip() for row in rows]


def _write_other_integrations(engine: sa.Engine, integrations: int, items: int, days: int) -> None:
    with engine.begin() as conn:
        for n in range(integrations):
            integration_id = f"big-{n}"
            _add_integration(conn, integration_id)
            conn.execute(
                sa.insert(t.content_items),
                [
                    _item_row(integration_id, f"c{k}", _midnight(MAR2) + dt.timedelta(minutes=k))
                    for k in range(items)
                ],
            )
            conn.execute(
                sa.insert(t.content_metrics_daily),
                [
                    _metric_row(integration_id, f"c{k}", MAR5 - dt.timedelta(days=d), likes=k)
                    for k in range(items)
                    for d in range(days)
                ],
            )
            conn.execute(
                sa.insert(t.account_metrics_daily),
                [
                    {
                        "organization_id": ORG,
                        "integration_id": integration_id,
                        "metric_date": MAR5 - dt.timedelta(days=d),
                        "observed_at": T0,
                    }
                    for d in range(items * days)
                ],
            )
        conn.exec_driver_sql("ANALYZE")


def test_check_queries_do_not_scan_other_integrations_rows(warehouse: sa.Engine) -> None:
    """50 other integrations x 100 items x 10 days = 50,000 metrics rows (and 50,000 account
    rows, 5,000 items): the run's queries reach their rows through indexes only."""
    _write_other_integrations(warehouse, integrations=50, items=100, days=10)
    full_scan = _FULL_SCAN[warehouse.dialect.name]
    scope = CheckScope.of([IID, OTHER], MAR2, MAR3)
    with warehouse.connect() as conn:
        # The pattern does catch a full scan: an unscoped count of negative values needs one.
        m = t.content_metrics_daily
        unscoped = sa.select(sa.func.count()).where(sa.or_(*(m.c[c] < 0 for c in METRIC_FIELDS)))
        assert any(full_scan.search(line) for line in _plan(conn, unscoped))
        for query in _QUERIES:
            statement = query(scope)
            count = sa.select(sa.func.count()).select_from(statement.subquery())
            examples = statement.order_by(*statement.selected_columns).limit(5)
            for shown in (count, examples):
                plan = _plan(conn, shown)
                assert not [line for line in plan if full_scan.search(line)], (query, plan)
            assert checks_sql.find_violations(conn, statement).count == 0


# --- through Dagster -----------------------------------------------------------------------------

TOKEN_ENV = "ANALYTICS_TEST_CHECKS_FB_TOKEN"
PAGES = {"fb-1": "1000001", "fb-2": "1000002"}
END = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
START = END - dt.timedelta(days=1)


@pytest.fixture(scope="module")
def facebook_sandbox():
    with SandboxServer() as server:
        yield server


@pytest.fixture
def pipeline(facebook_sandbox, warehouse_url, monkeypatch):
    facebook_sandbox.reset()
    monkeypatch.setenv(TOKEN_ENV, "tok-checks")
    engine = wh.make_engine(warehouse_url)
    wh.migrate(engine)
    track_facebook_pages(engine, PAGES, TOKEN_ENV, organization_id="org-e2e")
    platforms = PlatformsResource.from_env(
        {
            "ANALYTICS_FACEBOOK_BASE_URL": facebook_sandbox.base_url,
            "ANALYTICS_HTTP_BACKOFF_BASE_S": "0.001",
            "ANALYTICS_HTTP_BACKOFF_MAX_S": "0.01",
        }
    )
    resources = {"warehouse": WarehouseResource(url=warehouse_url), "platforms": platforms}
    try:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, list(PAGES))
            yield engine, resources, instance
    finally:
        engine.dispose()


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_run_reports_a_failing_check_for_its_own_partitions_only(pipeline) -> None:
    engine, resources, instance = pipeline
    with engine.begin() as conn:  # a metrics row of fb-1 whose item was never stored
        conn.execute(
            sa.insert(t.content_metrics_daily).values(
                _metric_row("fb-1", "ghost-post", END, organization_id="org-e2e")
            )
        )

    def materialize(integration_id: str, **kwargs: Any) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [social_ingestion],
            instance=instance,
            resources=resources,
            tags=range_run_tags(START, END, [integration_id]),
            raise_on_error=False,
            **kwargs,
        )

    other = materialize("fb-2")
    assert other.success
    checks = _evaluations(other)
    assert set(checks) == set(BY_NAME)  # the sandbox's real data passes every check
    assert all(e.passed for e in checks.values()), [n for n, e in checks.items() if not e.passed]
    assert checks["metrics_have_content_item"].metadata["scope_integrations"].value == ["fb-2"]

    own = materialize("fb-1")
    assert own.success  # a failing check is reported, it does not fail the run
    checks = _evaluations(own)
    orphans = checks.pop("metrics_have_content_item")
    assert not orphans.passed
    assert orphans.severity == dg.AssetCheckSeverity.ERROR
    assert orphans.metadata["violations"].value == 1
    assert orphans.metadata["examples"].value == [
        {"integration_id": "fb-1", "external_content_id": "ghost-post", "metric_date": str(END)}
    ]
    assert orphans.metadata["scope_days"].value == f"{START}..{END}"
    assert all(e.passed for e in checks.values())
    assert {m.partition for m in own.asset_materializations_for_node("social_ingestion")} >= {
        ContentPartition(END, "fb-1").key
    }

    # The check alone: with the run's partition tags, then without any partition.
    alone = dg.AssetSelection.checks(BY_NAME["metrics_have_content_item"].key)
    tagged = _evaluations(materialize("fb-2", selection=alone))
    assert tagged["metrics_have_content_item"].passed
    untagged = dg.materialize(
        [social_ingestion], instance=instance, resources=resources, selection=alone
    )
    (default,) = untagged.get_asset_check_evaluations()
    assert not default.passed  # yesterday (END) of every tracked integration
    assert default.metadata["scope_integrations"].value == ["fb-1", "fb-2"]
    assert default.metadata["scope_source"].value.startswith("no partitions")
