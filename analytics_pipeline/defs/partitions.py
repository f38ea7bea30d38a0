"""Partitions: UTC day x tracked integration, and how a run covers a range of them.

Multi-partition keys read "<date>|<integration_id>" (`records.ContentPartition.key`). The
integration dimension is dynamic: `automation.tracked_integrations_sensor` keeps it in step with
the `tracked_integrations` table.

`SETTINGS` is read here, once, when the definitions are imported: the start date, the lookback
window and the retry policy shape the definitions themselves (see `settings.py`).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import dagster as dg

from analytics_pipeline.records import ContentPartition
from analytics_pipeline.settings import DefinitionSettings, load_definition_settings

T = TypeVar("T")

INTEGRATIONS_PARTITIONS_NAME = "tracked_integrations"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Runs that touch one platform only carry its name here; dagster.yaml limits concurrent runs
# per value (run_queue.tag_concurrency_limits), so concurrent runs cannot gang up on one API.
PLATFORM_TAG = "analytics/platform"

SETTINGS = load_definition_settings()

integration_partitions = dg.DynamicPartitionsDefinition(name=INTEGRATIONS_PARTITIONS_NAME)


def build_content_partitions(settings: DefinitionSettings) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            # end_offset=1: today's (still incomplete) day is a partition too, so content that
            # expires within a day can be captured the same day (refresh schedule).
            "date": dg.DailyPartitionsDefinition(
                start_date=settings.partitions_start_date.isoformat(),
                timezone="UTC",
                end_offset=1,
            ),
            "integration": integration_partitions,
        }
    )


content_partitions = build_content_partitions(SETTINGS)


def step_partition_keys(context: dg.AssetExecutionContext) -> Sequence[str] | None:
    """The partition keys a step works on; None when the run has no partition.

    Range tags win over single-partition tags: a job backfill launched from the job's page
    (through its partition set) creates range runs that also carry one partition's
    per-dimension tags, and Dagster 1.13 reads those first (`context.partition_keys` would be
    that one partition). A step that selects only checks has no partitioned asset to expand
    the range for it either."""
    tags = context.run.tags
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        key_range = dg.PartitionKeyRange(tags[RANGE_START_TAG], tags[RANGE_END_TAG])
        return content_partitions.get_partition_keys_in_range(
            key_range, dynamic_partitions_store=context.instance
        )
    if context.has_partition_key:
        return [context.partition_key]
    return None


def group_by_integration(keys: Iterable[str]) -> dict[str, list[dt.date]]:
    """Partition keys grouped per integration, dates ascending (the order lookback needs)."""
    grouped: dict[str, set[dt.date]] = {}
    for key in keys:
        partition = ContentPartition.parse(key)
        grouped.setdefault(partition.integration_id, set()).add(partition.day)
    return {integration: sorted(days) for integration, days in grouped.items()}


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


@dataclass(frozen=True)
class RunBatch:
    """The integrations one run covers: contiguous in partition order, all of one platform."""

    platform: str | None
    integration_ids: tuple[str, ...]


def plan_run_batches(
    ordered: Sequence[str],
    chosen: Iterable[str],
    platform_of: Mapping[str, str],
    max_per_run: int,
) -> list[RunBatch]:
    """Split the `chosen` integrations into runs: each spans only chosen ones of ONE platform
    (so the run carries a platform tag the run queue can limit) and at most `max_per_run`.

    Every chosen integration that has a partition lands in exactly one batch; integrations
    without a platform in `platform_of` form batches with `platform=None`."""
    if max_per_run < 1:
        raise ValueError("max_per_run must be at least 1.")
    wanted = set(chosen)
    batches: list[RunBatch] = []
    current: list[str] = []
    platform: str | None = None
    for key in ordered:
        this = platform_of.get(key)
        breaks = key not in wanted or this != platform or len(current) == max_per_run
        if breaks and current:
            batches.append(RunBatch(platform, tuple(current)))
            current = []
        if key in wanted:
            current.append(key)
            platform = this
    if current:
        batches.append(RunBatch(platform, tuple(current)))
    return batches


def batch_run_tags(start: dt.date, end: dt.date, batch: RunBatch) -> dict[str, str]:
    """Range tags of `batch` plus its platform tag (what the run queue limits per platform)."""
    tags = range_run_tags(start, end, batch.integration_ids)
    if batch.platform:
        tags[PLATFORM_TAG] = batch.platform
    return tags


def range_run_tags(start: dt.date, end: dt.date, integration_ids: Sequence[str]) -> dict[str, str]:
    """Tags that make one run cover days start..end for the given integrations.

    Dagster expands a multi-partition range into the cross product of the date range and the
    integrations between the first and last key in the order the integrations were added, so
    callers pass integrations in that order (see `tracked_integrations` ordering).
    """
    if not integration_ids:
        raise ValueError("A range run needs at least one integration.")
    return {
        RANGE_START_TAG: ContentPartition(start, integration_ids[0]).key,
        RANGE_END_TAG: ContentPartition(end, integration_ids[-1]).key,
    }


def without_beta_warning(build: Callable[[], T]) -> T:
    """`build()` (a Dagster object whose class or parameter is beta in 1.13) without its
    BetaWarning, which would reach the output of every command that loads the definitions
    (the demo, the CLI), and those must print none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return build()


# A daily (KPI, report) asset's day D depends on the ingestion partitions D|every integration.
BY_DATE = without_beta_warning(
    lambda: dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="date")
)
