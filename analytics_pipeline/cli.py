"""`analytics-pipeline`: warehouse set-up, tracked integrations and backfills.

Every command honours ANALYTICS_WAREHOUSE_URL and DAGSTER_HOME. Bad input exits with status 2
and one line that says what to change; nothing is written in that case.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from analytics_pipeline.records import PLATFORMS, IntegrationStatus
from analytics_pipeline.settings import SettingsError

if TYPE_CHECKING:
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
        known = [i.integration_id for i in wh.list_integrations(conn)]
    chosen = args.integration or known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise UsageError(
            f"Unknown integration(s): {', '.join(unknown)}. Known: {', '.join(known)}."
        )
    summaries = runs.run_backfill(args.start, args.end, known, chosen)
    for summary in summaries:
        state = "ok" if summary.success else f"{len(summary.partitions_failed)} FAILED"
        print(
            f"run {summary.run_id}: {summary.partitions_materialized} partitions materialized, "
            f"{summary.api_calls} API calls, {summary.seconds:.1f}s, {state}"
        )
        for failed in summary.partitions_failed:
            print(f"  failed: {failed}")
    exit_code = 0 if all(summary.success for summary in summaries) else 1
    return exit_code


def cmd_report(args: argparse.Namespace) -> int:
    """KPI rollups per integration of one organization over --from..--to (from the KPI tables)."""
    from analytics_pipeline.kpis.report import render
    from analytics_pipeline.kpis.rollup import rollup
    from analytics_pipeline.warehouse import kpis

    first, last = getattr(args, "from"), args.to
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}.")
    with _engine().connect() as conn:
        if not kpis.organization_exists(conn, args.org):
            raise UsageError(f"Unknown organization {args.org!r}: no tracked integration has it.")
        accounts = kpis.read_account_kpis(conn, args.org, first, last)
        content = kpis.read_content_totals(conn, args.org, first, last)
    frame = rollup(accounts, content, first, last)
    if frame.empty:
        print(
            f"No KPIs for {args.org} between {first} and {last}: they are computed after "
            "ingestion lands (kpi_job, or the kpis_after_ingestion_sensor)."
        )
        return 0
    print(render(frame, args.format))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="analytics-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("init-db", help="Create or migrate the warehouse schema (idempotent).")

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
        "backfill", help="Materialize a date range in this process (single-run backfill)."
    )
    backfill.add_argument("--start", required=True, type=_parse_date)
    backfill.add_argument("--end", required=True, type=_parse_date)
    backfill.add_argument("--integration", action="append", help="Repeatable; default: all.")

    report = sub.add_parser("report", help="KPI rollups per integration of an organization.")
    report.add_argument("--org", required=True, help="Organization id.")
    report.add_argument("--from", required=True, type=_parse_date, help="First day (UTC).")
    report.add_argument("--to", required=True, type=_parse_date, help="Last day (UTC).")
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")

    return parser


COMMANDS = {
    "init-db": cmd_init_db,
    "integrations": cmd_integrations,
    "backfill": cmd_backfill,
    "report": cmd_report,
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
