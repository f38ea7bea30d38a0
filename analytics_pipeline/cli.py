"""`analytics-pipeline`: warehouse set-up, tracked integrations and backfills.

Every command honours ANALYTICS_WAREHOUSE_URL and DAGSTER_HOME. Bad input exits with status 2
and one line that says what to change; nothing is written in that case.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from analytics_pipeline.records import PLATFORMS, AssetName, IntegrationStatus
from analytics_pipeline.settings import SettingsError

if TYPE_CHECKING:
    from analytics_pipeline.defs import runs
    from analytics_pipeline.warehouse import TrackedIntegration


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit status 2."""


def _engine():
    from analytics_pipeline.warehouse import default_warehouse_url, make_engine

    return make_engine(default_warehouse_url())


def cmd_init_db(args: argparse.Namespace) -> int:
    from analytics_pipeline.warehouse import default_warehouse_url, make_engine
    from analytics_pipeline.warehouse.migrations import migrate

    url = default_warehouse_url()
    engine = make_engine(url)
    applied = migrate(engine)
    where = engine.url.render_as_string(hide_password=True)
    done = f"applied revisions {', '.join(applied)}" if applied else "up to date"
    print(f"Warehouse {where}: {done}")
    return 0


def cmd_integrations(args: argparse.Namespace) -> int:
    from analytics_pipeline import warehouse as wh

    engine = _engine()
    now = dt.datetime.now(dt.UTC)
    try:
        with engine.begin() as conn:
            if args.action == "add":
                added = wh.add_integration(
                    conn,
                    organization_id=args.org,
                    integration_id=args.id,
                    platform=args.platform,
                    external_account_id=args.account,
                    display_name=args.name or args.id,
                    credential_env=args.token_env,
                    now=now,
                )
                print(
                    f"Added {added.integration_id} ({added.platform} {added.external_account_id})."
                )
            elif args.action == "list":
                _print_integrations(wh.list_integrations(conn), as_json=args.json)
            elif args.action == "pause":
                wh.set_integration_status(conn, args.id, IntegrationStatus.PAUSED, args.reason, now)
                print(f"Paused {args.id}.")
            elif args.action == "resume":
                wh.set_integration_status(conn, args.id, IntegrationStatus.ACTIVE, None, now)
                print(f"Resumed {args.id}.")
            elif args.action == "remove":
                wh.remove_integration(conn, args.id)
                print(f"Removed {args.id}; its rows stay, the sensor drops its partition.")
    except (wh.IntegrationExistsError, wh.UnknownIntegrationError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    return 0


_LISTED_FIELDS = (
    "integration_id",
    "organization_id",
    "platform",
    "external_account_id",
    "status",
    "status_reason",
    "credential_env",
)


def _print_integrations(integrations: Sequence[TrackedIntegration], *, as_json: bool) -> None:
    rows = [{name: getattr(i, name) for name in _LISTED_FIELDS} for i in integrations]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("No tracked integrations. Add one with `analytics-pipeline integrations add`.")
        return
    for row in rows:
        reason = f" ({row['status_reason']})" if row["status_reason"] else ""
        print(
            f"{row['integration_id']:<24} {row['platform']:<10} {row['external_account_id']:<20} "
            f"{row['status']}{reason}"
        )


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def cmd_backfill(args: argparse.Namespace) -> int:
    from analytics_pipeline import warehouse as wh
    from analytics_pipeline.defs import runs

    if args.end < args.start:
        raise UsageError(f"--end {args.end} is before --start {args.start}.")
    today = dt.datetime.now(dt.UTC).date()
    if args.end > today:
        raise UsageError(f"--end {args.end} is in the future (latest: today, {today}).")
    runs.ensure_dagster_home()
    with _engine().connect() as conn:
        integrations = wh.list_integrations(conn)
    known = [i.integration_id for i in integrations]
    platform_of = {i.integration_id: i.platform for i in integrations}
    chosen = args.integration or known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise UsageError(
            f"Unknown integration(s): {', '.join(unknown)}. Known: {', '.join(known)}."
        )
    backfill = runs.run_backfill(args.start, args.end, known, chosen, platform_of=platform_of)
    # The process ends after the summary: spare it the interpreter's final garbage collection
    # of Dagster's heap, measured at 4-5 s (a stop must end the command promptly).
    gc.freeze()
    per_integration = len(AssetName) * ((args.end - args.start).days + 1)
    _print_inactive([i for i in integrations if i.integration_id in chosen], per_integration)
    paused = {i.integration_id for i in integrations if i.status == IntegrationStatus.PAUSED}
    for summary in backfill.runs:
        _print_summary(summary, paused)
    for partitions in backfill.not_started:
        print(f"not started (stopped first): {partitions}")
    if backfill.stopped_by is not None:
        name = signal.Signals(backfill.stopped_by).name
        print(f"stopped by {name}: exit {128 + backfill.stopped_by}")
        return 128 + backfill.stopped_by
    return 0 if all(_clean(summary) for summary in backfill.runs) else 1


def _print_inactive(integrations: Sequence[TrackedIntegration], per_integration: int) -> None:
    """Say which chosen integrations were not fetched, and why (paused, needs re-auth)."""
    for integration in integrations:
        reason = f" ({integration.status_reason})" if integration.status_reason else ""
        if integration.status == IntegrationStatus.PAUSED:
            print(
                f"{per_integration} partitions skipped: {integration.integration_id} paused{reason}"
            )
        elif integration.status == IntegrationStatus.NEEDS_REAUTH:
            print(
                f"{per_integration} partitions failed without a request: "
                f"{integration.integration_id} needs re-authorization{reason}"
            )


def _print_summary(summary: runs.RunSummary, paused: set[str]) -> None:
    """One line per run, then every partition that failed (with its class) or did neither."""
    by_class: dict[str, int] = {}
    for partition in summary.partitions_failed:
        name = summary.failure_classes.get(partition, "unknown")
        by_class[name] = by_class.get(name, 0) + 1
    if _clean(summary):
        state = "ok"
    elif summary.partitions_failed:
        classes = ", ".join(f"{count} {name}" for name, count in sorted(by_class.items()))
        state = f"{len(summary.partitions_failed)} FAILED ({classes})"
    else:
        state = f"run {summary.status} (see the run in the Dagster UI)"
    stopped = "STOPPED, " if summary.stopped else ""
    print(
        f"run {summary.run_id}: {summary.partitions_materialized} partitions materialized, "
        f"{summary.api_calls} API calls, {summary.seconds:.1f}s, {stopped}{state}"
    )
    for partition in summary.partitions_failed:
        print(f"  failed ({summary.failure_classes.get(partition, 'unknown')}): {partition}")
    for partition in summary.not_materialized:
        if partition.rsplit("|", 1)[-1] not in paused:  # already said: skipped
            print(f"  not materialized: {partition}")
    for partition in summary.without_failure_row:
        print(f"  no ingestion_failures row (warehouse unreachable): {partition}")


def _clean(summary: runs.RunSummary) -> bool:
    return summary.success and not summary.partitions_failed and not summary.stopped


def cmd_init_dagster_home(args: argparse.Namespace) -> int:
    from analytics_pipeline.defs import runs

    home = runs.ensure_dagster_home()
    print(f"Dagster home {home}: storage initialized.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="analytics-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("init-db", help="Create or migrate the warehouse schema (idempotent).")
    sub.add_parser(
        "init-dagster-home",
        help="Create $DAGSTER_HOME's storage once (run before starting the webserver and "
        "daemon on a fresh home).",
    )

    integrations = sub.add_parser("integrations", help="Manage tracked integrations.")
    isub = integrations.add_subparsers(dest="action", required=True)
    add = isub.add_parser("add", help="Track a new page/account.")
    add.add_argument("--org", required=True, help="Organization id.")
    add.add_argument("--id", required=True, help="Integration id (a-z, 0-9, _ and -).")
    add.add_argument("--platform", required=True, choices=PLATFORMS)
    add.add_argument("--account", required=True, help="Page id, IG user id, org URN or X id.")
    add.add_argument("--name", help="Display name.")
    add.add_argument(
        "--token-env", required=True, help="NAME of the environment variable holding the token."
    )
    listing = isub.add_parser("list", help="List tracked integrations.")
    listing.add_argument("--json", action="store_true")
    for action in ("pause", "resume", "remove"):
        p = isub.add_parser(action, help=f"{action.capitalize()} an integration.")
        p.add_argument("id")
        if action == "pause":
            p.add_argument("--reason", default="paused by an operator")

    backfill = sub.add_parser(
        "backfill",
        help="Materialize a date range: runs launched through the Dagster instance (queued "
        "when a daemon runs), waited for and reported.",
    )
    backfill.add_argument("--start", required=True, type=_parse_date)
    backfill.add_argument("--end", required=True, type=_parse_date)
    backfill.add_argument("--integration", action="append", help="Repeatable; default: all.")

    return parser


COMMANDS = {
    "init-db": cmd_init_db,
    "init-dagster-home": cmd_init_dagster_home,
    "integrations": cmd_integrations,
    "backfill": cmd_backfill,
}


def run_reporting_errors(command: str, run: Callable[[], int]) -> int:
    """`run()`, with an operator's mistake reported in one line (exit status 2)."""
    # Dagster flags beta/preview APIs at import; users of the CLI cannot act on that.
    warnings.filterwarnings("ignore", message=r".*(beta|preview)", category=Warning)
    from analytics_pipeline.warehouse import WarehouseConfigError

    try:
        return run()
    except (UsageError, SettingsError, WarehouseConfigError) as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_reporting_errors(
        f"analytics-pipeline {args.command}", lambda: COMMANDS[args.command](args)
    )


if __name__ == "__main__":
    sys.exit(main())
