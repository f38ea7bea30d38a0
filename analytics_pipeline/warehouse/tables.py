"""The warehouse tables as the code reads and writes them today.

Table and column names are a contract with the dashboards: rename nothing. The schema in a
database is created and changed only by the Alembic revisions in `migrations/versions/`; tests
check that a freshly migrated database matches the definitions here (Alembic's autogenerate
comparison, plus CHECK constraint names and views, which it does not compare), so a change here
needs a new revision too. `metadata` is also the autogenerate target for drafting one.

Conventions:
- No nullable column is part of a unique key (NULLs never conflict, so duplicates would slip in).
- Every timestamp is `UTCDateTime`: TIMESTAMP WITH TIME ZONE on PostgreSQL; on SQLite (which has
  no time zones) the value is stored as UTC and comes back as an aware UTC datetime.
- Metric columns are nullable: NULL means the platform did not say, 0 means it said zero.
- Column order follows the migrations (a column added later comes last), so that the code's view
  and a migrated database list columns alike.

Besides the tables, the migrations create one view, `content_metrics_daily_change` (described at
its definition below); it lives in its own `views_metadata` so that `metadata.create_all` and
the table-shape checks never mistake it for a table. Alembic's own bookkeeping table,
`alembic_version`, is not described here either.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from analytics_pipeline.records import (
    ACCOUNT_METRIC_FIELDS,
    CAPTION_EXCERPT_CHARS,
    INTEGRATION_STATUSES,
    METRIC_FIELDS,
    PLATFORMS,
    REFERENCE_TYPES,
    ContentFormat,
    ErrorClass,
    TotalsBasis,
    ValueKind,
)

CONTENT_FORMATS: tuple[str, ...] = tuple(f.value for f in ContentFormat)
VALUE_KINDS: tuple[str, ...] = tuple(k.value for k in ValueKind)
ERROR_CLASSES: tuple[str, ...] = tuple(e.value for e in ErrorClass)
# `content_metrics_daily_change.change_source`, by the value_kind of the row it comes from.
CHANGE_SOURCES: tuple[str, ...] = ("platform_daily", "snapshot_difference")

NAMING_CONVENTION: dict[str, str] = {
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "uq": "uq_%(table_name)s_%(constraint_name)s",
    "ix": "ix_%(table_name)s_%(constraint_name)s",
}


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """A timezone-aware timestamp that is always written and read as UTC.

    Naive datetimes are refused on write: their meaning depends on the machine's clock settings.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: the warehouse needs timezone-aware datetimes (UTC)")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        return as_utc(value)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """An aware UTC datetime; naive values (SQLite) are taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def json_type() -> sa.types.TypeEngine[Any]:
    """JSON, stored as JSONB on PostgreSQL so that equality comparisons work there."""
    return sa.JSON().with_variant(JSONB(), "postgresql")


def in_check(column: str, values: tuple[str, ...]) -> str:
    """SQL text of `column IN ('a', 'b')` for a CHECK constraint (constants only, no user input)."""
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return f"{column} IN ({quoted})"


metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

tracked_integrations = sa.Table(
    "tracked_integrations",
    metadata,
    sa.Column("organization_id", sa.String(64), nullable=False),
    sa.Column("integration_id", sa.String(64), primary_key=True),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("external_account_id", sa.String(255), nullable=False),
    sa.Column("display_name", sa.String(255), nullable=False),
    sa.Column("credential_env", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_reason", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint(in_check("platform", PLATFORMS), name="platform"),
    sa.CheckConstraint(in_check("status", INTEGRATION_STATUSES), name="status"),
    # Added by 0006: an organization tracks one account of a platform once.
    sa.UniqueConstraint("organization_id", "platform", "external_account_id", name="account"),
)

content_items = sa.Table(
    "content_items",
    metadata,
    sa.Column("organization_id", sa.String(64), nullable=False),
    sa.Column("integration_id", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("external_content_id", sa.String(255), nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("caption", sa.Text, nullable=True),
    sa.Column("hashtags", json_type(), nullable=False),
    sa.Column("permalink", sa.Text, nullable=True),
    sa.Column("published_at", UTCDateTime(), nullable=False),
    sa.Column("first_seen_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # Added by 0002. NULL = original content (and every row loaded before 0002).
    sa.Column("reference_type", sa.String(16), nullable=True),
    sa.UniqueConstraint("organization_id", "integration_id", "external_content_id", name="key"),
    sa.CheckConstraint(in_check("platform", PLATFORMS), name="platform"),
    sa.CheckConstraint(in_check("format", CONTENT_FORMATS), name="format"),
    sa.CheckConstraint(in_check("reference_type", REFERENCE_TYPES), name="reference_type"),
    sa.Index("integration_published", "integration_id", "published_at"),
)

content_metrics_daily = sa.Table(
    "content_metrics_daily",
    metadata,
    sa.Column("organization_id", sa.String(64), nullable=False),
    sa.Column("integration_id", sa.String(64), nullable=False),
    sa.Column("external_content_id", sa.String(255), nullable=False),
    sa.Column("metric_date", sa.Date, nullable=False),
    sa.Column("value_kind", sa.String(32), nullable=False),
    *(sa.Column(name, sa.BigInteger, nullable=True) for name in METRIC_FIELDS),
    sa.Column("observed_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint(
        "organization_id", "integration_id", "external_content_id", "metric_date", name="key"
    ),
    sa.CheckConstraint(in_check("value_kind", VALUE_KINDS), name="value_kind"),
)

ingestion_failures = sa.Table(
    "ingestion_failures",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("organization_id", sa.String(64), nullable=False),
    sa.Column("integration_id", sa.String(64), nullable=False),
    sa.Column("asset", sa.String(255), nullable=False),
    sa.Column("partition_key", sa.String(255), nullable=False),
    sa.Column("error_class", sa.String(32), nullable=False),
    sa.Column("platform_code", sa.String(64), nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint(in_check("error_class", ERROR_CLASSES), name="error_class"),
    sa.Index("partition", "integration_id", "asset", "partition_key"),
)

partition_loads = sa.Table(
    "partition_loads",
    metadata,
    sa.Column("integration_id", sa.String(64), nullable=False),
    sa.Column("asset", sa.String(255), nullable=False),
    sa.Column("partition_date", sa.Date, nullable=False),
    sa.Column("loaded_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("rows_written", sa.Integer, nullable=False),
    sa.Column("details", json_type(), nullable=False),
    sa.UniqueConstraint("integration_id", "asset", "partition_date", name="key"),
)

# Account-level numbers per UTC day (added by 0002). Every metric column is the platform's own
# value FOR that day, except `followers_total`: a snapshot of the total taken at
# `followers_observed_at` (platforms cannot tell it for a past day). A later backfill of the day
# without a snapshot keeps the stored one (see account_metrics.py).
account_metrics_daily = sa.Table(
    "account_metrics_daily",
    metadata,
    sa.Column("organization_id", sa.String(64), nullable=False),
    sa.Column("integration_id", sa.String(64), nullable=False),
    sa.Column("metric_date", sa.Date, nullable=False),
    *(sa.Column(name, sa.BigInteger, nullable=True) for name in ACCOUNT_METRIC_FIELDS),
    sa.Column("followers_observed_at", UTCDateTime(), nullable=True),
    sa.Column("observed_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("organization_id", "integration_id", "metric_date", name="key"),
)

# The encrypted credential store (added by 0007; see warehouse/credentials.py). The ciphertext
# is a Fernet token made by `analytics_pipeline.credentials`; the expiry columns are not secret.
integration_credentials = sa.Table(
    "integration_credentials",
    metadata,
    sa.Column("integration_id", sa.String(64), primary_key=True),
    sa.Column("secret_ciphertext", sa.Text, nullable=False),
    sa.Column("access_expires_at", UTCDateTime(), nullable=True),
    sa.Column("refresh_expires_at", UTCDateTime(), nullable=True),
    sa.Column("refreshed_at", UTCDateTime(), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

CONTENT_KEY: tuple[str, ...] = ("organization_id", "integration_id", "external_content_id")
METRICS_KEY: tuple[str, ...] = (*CONTENT_KEY, "metric_date")
ACCOUNT_METRICS_KEY: tuple[str, ...] = ("organization_id", "integration_id", "metric_date")

# --- views ------------------------------------------------------------------------------------
# Read-only: created by the migrations (the SQL body is frozen in revision 0002), described here
# so that code can query them with typed columns. Never passed to create_all.
views_metadata = sa.MetaData()

# What each content item got ON each day, for every platform, whatever its platform reports:
# "what did post P get on day D" is `SELECT likes_on_day ... WHERE external_content_id = P AND
# metric_date = D`. One row per content_metrics_daily row, same key:
# - value_kind 'daily' rows (the platform's own per-day value): `<metric>_on_day` is the value
#   itself; change_source = 'platform_daily'.
# - value_kind 'lifetime_snapshot' rows (cumulative totals): `<metric>_on_day` is this snapshot
#   minus the 'lifetime_snapshot' row of the SAME item on metric_date - 1 day; NULL when that row
#   is missing (a gap day, the first day observed) or either value is NULL: never estimated.
#   change_source = 'snapshot_difference'.
# - counter_decreased: true when any difference is negative. Platforms revise counters (spam
#   likes removed, a view recount): the difference is kept as observed and flagged, never
#   clipped to 0. Always false for 'daily' rows. (A 0/1 integer on SQLite, read back as bool.)
content_metrics_daily_change = sa.Table(
    "content_metrics_daily_change",
    views_metadata,
    sa.Column("organization_id", sa.String(64)),
    sa.Column("integration_id", sa.String(64)),
    sa.Column("external_content_id", sa.String(255)),
    sa.Column("metric_date", sa.Date),
    sa.Column("value_kind", sa.String(32)),
    *(sa.Column(f"{name}_on_day", sa.BigInteger) for name in METRIC_FIELDS),
    sa.Column("change_source", sa.String(32)),
    sa.Column("counter_decreased", sa.Boolean),
    info={"is_view": True},
)

# --- KPI tables (added by 0008; written by warehouse/kpis.py, computed in kpis/) ----------------
# Recomputed from the tables above, one UTC day at a time (all integrations of the day in one
# transaction); every value is derived, nothing here is an observation of its own. NULL means an
# input was unknown or a denominator unknown or not positive: never 0 for unknown.

# One row per content item per UTC day it has a metrics row: what the item got ON that day (per-day
# changes: LinkedIn's daily values, or the difference of two lifetime snapshots; on the day an item
# was published its first snapshot is that day's change, as it had nothing before). `engagements`
# is the sum of the platform's engagement inputs that were reported (kpis/definitions.py);
# `engagement_inputs_known` of `engagement_inputs_expected` were.
content_performance_daily = sa.Table(
    "content_performance_daily",
    metadata,
    sa.Column("organization_id", sa.String(64), nullable=False),
    sa.Column("integration_id", sa.String(64), nullable=False),
    sa.Column("external_content_id", sa.String(255), nullable=False),
    sa.Column("metric_date", sa.Date, nullable=False),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("published_at", UTCDateTime(), nullable=False),
    sa.Column("engagements", sa.BigInteger, nullable=True),
    sa.Column("engagement_inputs_known", sa.Integer, nullable=False),
    sa.Column("engagement_inputs_expected", sa.Integer, nullable=False),
    sa.Column("reach", sa.BigInteger, nullable=True),
    sa.Column("impressions", sa.BigInteger, nullable=True),
    sa.Column("views", sa.BigInteger, nullable=True),
    sa.Column("engagement_rate_on_reach", sa.Double, nullable=True),
    sa.Column("engagement_rate_on_impressions", sa.Double, nullable=True),
    sa.Column("counter_decreased", sa.Boolean, nullable=False),
    sa.Column("computed_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint(
        "organization_id", "integration_id", "external_content_id", "metric_date", name="key"
    ),
    sa.Index("date", "metric_date"),
)

# One row per integration per UTC day that has account or content metrics. `follower_growth` is
# followers_total(day) - followers_total(day before), NULL when either snapshot is missing;
# `engagements` sums the day's content_performance_daily engagements that are known
# (`items_with_engagements` of `items_measured` items); `reach`/`impressions` are the
# platform's own account values for the day, the denominator of `engagement_rate`.
account_kpis_daily = sa.Table(
    "account_kpis_daily",
    metadata,
    sa.Column("organization_id", sa.String(64), nullable=False),
    sa.Column("integration_id", sa.String(64), nullable=False),
    sa.Column("metric_date", sa.Date, nullable=False),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("followers_total", sa.BigInteger, nullable=True),
    sa.Column("follower_growth", sa.BigInteger, nullable=True),
    sa.Column("new_followers", sa.BigInteger, nullable=True),
    sa.Column("items_published", sa.Integer, nullable=False),
    sa.Column("items_measured", sa.Integer, nullable=False),
    sa.Column("items_with_engagements", sa.Integer, nullable=False),
    sa.Column("engagements", sa.BigInteger, nullable=True),
    sa.Column("reach", sa.BigInteger, nullable=True),
    sa.Column("impressions", sa.BigInteger, nullable=True),
    sa.Column("engagement_rate", sa.Double, nullable=True),
    sa.Column("computed_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("organization_id", "integration_id", "metric_date", name="key"),
    sa.Index("date", "metric_date"),
)

CONTENT_PERFORMANCE_KEY: tuple[str, ...] = METRICS_KEY
ACCOUNT_KPIS_KEY: tuple[str, ...] = ACCOUNT_METRICS_KEY

ROLLUP_GRAINS: tuple[str, ...] = ("week", "month")
ROLLUP_SCOPES: tuple[str, ...] = ("integration", "organization", "platform")


def _rollup_stat_columns() -> list[sa.Column[Any]]:
    columns: list[sa.Column[Any]] = []
    for name in ("engagements", "reach", "impressions"):
        columns += [
            sa.Column(f"days_with_{name}", sa.Integer, nullable=False),
            sa.Column(f"{name}_total", sa.BigInteger, nullable=True),
            sa.Column(f"{name}_avg", sa.Double, nullable=True),
            sa.Column(f"{name}_min", sa.BigInteger, nullable=True),
            sa.Column(f"{name}_max", sa.BigInteger, nullable=True),
        ]
    return columns


# Weekly (ISO weeks, Monday to Sunday) and monthly rollups of account_kpis_daily, in ONE table so
# a dashboard filters rather than unions: `period_grain` (week|month) and `period_start` name the
# period (`period_end` is its last day), `scope` (integration|organization|platform) and
# `scope_key` (the integration id, the organization id, or the platform) the row's subject,
# always within `organization_id`. Definitions: kpis/rollup.py; `platform` is NULL for an
# organization row (it mixes platforms).
kpi_rollups = sa.Table(
    "kpi_rollups",
    metadata,
    sa.Column("period_grain", sa.String(8), nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("organization_id", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("scope_key", sa.String(64), nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("platform", sa.String(16), nullable=True),
    sa.Column("integrations", sa.Integer, nullable=False),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("items_published", sa.Integer, nullable=False),
    sa.Column("new_followers_total", sa.BigInteger, nullable=True),
    *_rollup_stat_columns(),
    sa.Column("engagement_rate", sa.Double, nullable=True),
    sa.Column("followers_start", sa.BigInteger, nullable=True),
    sa.Column("followers_end", sa.BigInteger, nullable=True),
    sa.Column("followers_end_date", sa.Date, nullable=True),
    sa.Column("follower_growth", sa.BigInteger, nullable=True),
    sa.Column("integrations_with_follower_growth", sa.Integer, nullable=False),
    sa.Column("top_content_integration_id", sa.String(64), nullable=True),
    sa.Column("top_content", sa.String(255), nullable=True),
    sa.Column("top_content_engagements", sa.BigInteger, nullable=True),
    sa.Column("computed_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint(in_check("period_grain", ROLLUP_GRAINS), name="period_grain"),
    sa.CheckConstraint(in_check("scope", ROLLUP_SCOPES), name="scope"),
    sa.UniqueConstraint(
        "period_grain", "period_start", "organization_id", "scope", "scope_key", name="key"
    ),
)

KPI_ROLLUPS_KEY: tuple[str, ...] = (
    "period_grain",
    "period_start",
    "organization_id",
    "scope",
    "scope_key",
)


# --- the report table (added by 0010; written by warehouse/social_report.py) -------------------
# One row per content item across all platforms: the table a dashboard reads. Each row holds the
# item's LATEST totals (not per-day values), rewritten by the KPI refresh of any day the item has
# a metrics row (see kpis/social_report.py for the per-platform definition of its totals):
# - totals_basis 'latest_snapshot' (Facebook, Instagram, X: lifetime counters): the values of the
#   item's newest 'lifetime_snapshot' row; 'sum_of_daily' (LinkedIn: per-day values): the sum of
#   its 'daily' rows (`days_summed` of them), reach NULL (unique members per day do not add up);
# - engagements, coverage and rates: the content_performance_daily definitions applied to the
#   totals (NULL when unknown, never 0); as_of_date: the date of the newest metrics row.
SOCIAL_MEDIA_REPORT_TOTALS: tuple[str, ...] = tuple(n for n in METRIC_FIELDS if n != "video_views")
TOTALS_BASES: tuple[str, ...] = tuple(basis.value for basis in TotalsBasis)

social_media_report = sa.Table(
    "social_media_report",
    metadata,
    sa.Column("organization_id", sa.String(64), nullable=False),
    sa.Column("integration_id", sa.String(64), nullable=False),
    sa.Column("external_content_id", sa.String(255), nullable=False),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("account_name", sa.String(255), nullable=True),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("caption_excerpt", sa.String(CAPTION_EXCERPT_CHARS), nullable=True),
    sa.Column("hashtags", json_type(), nullable=False),
    sa.Column("permalink", sa.Text, nullable=True),
    sa.Column("published_at", UTCDateTime(), nullable=False),
    sa.Column("as_of_date", sa.Date, nullable=False),
    sa.Column("totals_basis", sa.String(16), nullable=False),
    sa.Column("days_summed", sa.Integer, nullable=True),
    *(sa.Column(name, sa.BigInteger, nullable=True) for name in SOCIAL_MEDIA_REPORT_TOTALS),
    sa.Column("engagements", sa.BigInteger, nullable=True),
    sa.Column("engagement_inputs_known", sa.Integer, nullable=False),
    sa.Column("engagement_inputs_expected", sa.Integer, nullable=False),
    sa.Column("engagement_rate_on_reach", sa.Double, nullable=True),
    sa.Column("engagement_rate_on_impressions", sa.Double, nullable=True),
    sa.Column("computed_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("organization_id", "integration_id", "external_content_id", name="key"),
    sa.CheckConstraint(in_check("totals_basis", TOTALS_BASES), name="totals_basis"),
    sa.Index("as_of", "as_of_date"),
)

SOCIAL_MEDIA_REPORT_KEY: tuple[str, ...] = CONTENT_KEY

# The shared limiter of runs fetching from one platform at once (added by 0011; see slots.py):
# one row per slot held, keyed (platform, slot number below the limit), by `holder` (a run id),
# kept alive by `heartbeat_at`. A free slot has no row; a stale heartbeat marks a slot whose run
# died, which the next run takes over.
platform_slots = sa.Table(
    "platform_slots",
    metadata,
    sa.Column("platform", sa.String(16), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("acquired_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    sa.Index("holder", "holder"),
)
