"""Partitions: UTC day x tracked integration.

Multi-partition keys read "<date>|<integration_id>" (Dagster sorts dimensions by name). The
integration dimension is dynamic: `sensors.tracked_integrations_sensor` keeps it in step with the
`tracked_integrations` table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import dagster as dg

from analytics_pipeline.settings import PipelineSettings, load_pipeline_settings

INTEGRATIONS_PARTITIONS_NAME = "tracked_integrations"

integration_partitions = dg.DynamicPartitionsDefinition(name=INTEGRATIONS_PARTITIONS_NAME)


def build_content_partitions(settings: PipelineSettings) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            # end_offset=1: today's (still incomplete) day is a partition too, so content that
            # expires within a day can be captured the same day (intraday schedule).
            "date": dg.DailyPartitionsDefinition(
                start_date=settings.partitions_start_date, timezone="UTC", end_offset=1
            ),
            "integration": integration_partitions,
        }
    )


def build_lookback_mapping(lookback_days: int) -> dg.MultiPartitionMapping:
    """Maps metrics partition D|x to metadata partitions D-(lookback-1)..D of the same x."""
    return dg.MultiPartitionMapping(
        {
            "date": dg.DimensionPartitionMapping(
                "date",
                dg.TimeWindowPartitionMapping(
                    start_offset=-(lookback_days - 1),
                    allow_nonexistent_upstream_partitions=True,
                ),
            ),
            "integration": dg.DimensionPartitionMapping(
                "integration", dg.IdentityPartitionMapping()
            ),
        }
    )


SETTINGS = load_pipeline_settings()
content_partitions = build_content_partitions(SETTINGS)


class PartitionKeyError(ValueError):
    """A partition key that is not "<YYYY-MM-DD>|<integration_id>"."""


@dataclass(frozen=True, order=True)
class ContentPartition:
    day: dt.date
    integration_id: str

    @property
    def key(self) -> str:
        return f"{self.day.isoformat()}|{self.integration_id}"


def parse_partition_key(key: str) -> ContentPartition:
    day_text, sep, integration_id = key.partition("|")
    if not sep or not integration_id or "|" in integration_id:
        raise PartitionKeyError(
            f"Partition key {key!r} is not of the form 'YYYY-MM-DD|<integration_id>'."
        )
    try:
        day = dt.date.fromisoformat(day_text)
    except ValueError:
        raise PartitionKeyError(f"Partition key {key!r} does not start with a date.") from None
    return ContentPartition(day, integration_id)


def group_by_integration(keys: Iterable[str]) -> dict[str, list[dt.date]]:
    """Partition keys grouped per integration, dates ascending (the order lookback needs)."""
    grouped: dict[str, set[dt.date]] = {}
    for key in keys:
        partition = parse_partition_key(key)
        grouped.setdefault(partition.integration_id, set()).add(partition.day)
    return {integration: sorted(days) for integration, days in grouped.items()}


def date_range(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    """Days from start to end, both inclusive."""
    day = start
    while day <= end:
        yield day
        day += dt.timedelta(days=1)


def contiguous_segments(ordered: Sequence[str], chosen: Iterable[str]) -> list[list[str]]:
    """Split `chosen` integrations into runs that each span only chosen ones: a range run covers
    every integration between its first and last key in partition (added) order."""
    wanted = set(chosen)
    segments: list[list[str]] = [[]]
    for key in ordered:
        if key in wanted:
            segments[-1].append(key)
        elif segments[-1]:
            segments.append([])
    return [segment for segment in segments if segment]


def range_run_tags(start: dt.date, end: dt.date, integration_ids: Sequence[str]) -> dict[str, str]:
    """Tags that make one run cover days start..end for the given integrations.

    Dagster expands a multi-partition range into the cross product of the date range and the
    integrations between the first and last key in the order the integrations were added, so
    callers pass integrations in that order (see `tracked_integrations` ordering).
    """
    if not integration_ids:
        raise ValueError("A range run needs at least one integration.")
    return {
        "dagster/asset_partition_range_start": f"{start.isoformat()}|{integration_ids[0]}",
        "dagster/asset_partition_range_end": f"{end.isoformat()}|{integration_ids[-1]}",
    }
