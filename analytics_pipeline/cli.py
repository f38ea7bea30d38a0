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
from analytics_pipeline.settings import SettingsError, shown

if TYPE_CHECKING:
    from analytics_pipeline.credentials import CredentialBundle, CredentialCipher
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


def cmd_set_credential(args: argparse.Namespace) -> int:
    """`integrations set-credential`: store an integration's credential, encrypted."""
    from analytics_pipeline import credentials as cr
    from analytics_pipeline import warehouse as wh

    update = _credential_from_files(args)
    engine = _engine()
    with engine.connect() as conn:
        integration = wh.get_integration(conn, args.id)
    if integration is None:
        raise UsageError(f"No tracked integration {args.id!r}; add it first.")
    cipher = _credential_cipher()
    if args.clear:
        with engine.begin() as conn:
            found = wh.delete_credential(conn, args.id)
        where = "removed" if found else "there was none"
        print(f"Stored credential of {args.id}: {where}; ${integration.credential_env} is used.")
        return 0
    if update.refresh_token and integration.platform not in _REFRESHABLE_PLATFORMS:
        raise UsageError(
            f"{integration.platform} tokens are not refreshed with OAuth: store an access "
            "token only (--access-token-file)."
        )
    now = dt.datetime.now(dt.UTC)
    expiry = cr.Expiry(
        access=_in_seconds(now, args.expires_in), refresh=_in_seconds(now, args.refresh_expires_in)
    )
    try:
        bundle = cr.save_credential(engine, args.id, update, cipher, expiry, now)
    except cr.CredentialKeyError as exc:
        raise UsageError(str(exc)) from None
    refresh = " (refreshed automatically)" if bundle.refreshable else ""
    print(
        f"Stored the credential of {args.id} encrypted in the warehouse: "
        f"{', '.join(bundle.present())}{refresh}. The next run uses it."
    )
    if integration.status == IntegrationStatus.NEEDS_REAUTH:
        print(f"{args.id} is needs_reauth: run `analytics-pipeline integrations resume {args.id}`.")
    return 0


def cmd_rotate_credential_key(args: argparse.Namespace) -> int:
    """`integrations rotate-credential-key`: re-encrypt the store with the newest key."""
    from analytics_pipeline import credentials as cr

    cipher = _credential_cipher()
    try:
        count = cr.rotate_key(_engine(), cipher)
    except cr.CredentialKeyError as exc:
        raise UsageError(str(exc)) from None
    print(
        f"Re-encrypted {count} stored credential(s) with the first key of {cr.KEY_ENV}; "
        "the other keys can now be removed."
    )
    return 0


_REFRESHABLE_PLATFORMS = ("linkedin", "x")
_SECRET_OPTIONS = ("access_token_file", "refresh_token_file", "client_secret_file")


def _credential_cipher() -> CredentialCipher:
    from analytics_pipeline import credentials as cr

    try:
        cipher = cr.load_credential_settings().cipher()
    except cr.CredentialKeyError as exc:
        raise UsageError(str(exc)) from None
    if cipher is None:
        raise UsageError(
            f"{cr.KEY_ENV} is not set: the credential store needs a key. Generate one with "
            '`python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"`, keep it secret, and set it wherever '
            "Dagster and this command run."
        )
    return cipher


def _credential_from_files(args: argparse.Namespace) -> CredentialBundle:
    """The secrets named by the *-file options (a path, or '-' for standard input)."""
    from analytics_pipeline import credentials as cr
    from analytics_pipeline.platforms.base import Secret

    sources = {name: getattr(args, name) for name in _SECRET_OPTIONS if getattr(args, name)}
    if list(sources.values()).count("-") > 1:
        raise UsageError("Only one option can read standard input ('-').")
    if not args.clear and not sources and not args.client_id:
        raise UsageError(
            "Nothing to store: give --access-token-file, --refresh-token-file, "
            "--client-secret-file (a path, or '-' for standard input) and/or --client-id."
        )
    values = {name[: -len("_file")]: Secret(_read_secret(path)) for name, path in sources.items()}
    return cr.CredentialBundle(client_id=args.client_id, **values)


def _read_secret(path: str) -> str:
    """A secret from a file or standard input, surrounding white space removed."""
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    except OSError as exc:
        # `shown`: a long "path" may be a token pasted by mistake.
        problem = exc.strerror or type(exc).__name__
        raise UsageError(f"Cannot read {shown(path)}: {problem}.") from None
    value = text.strip()
    if not value:
        raise UsageError(f"{'Standard input' if path == '-' else shown(path)} is empty.")
    return value


def _in_seconds(now: dt.datetime, seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else now + dt.timedelta(seconds=seconds)


def _positive_seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _add_credential_parsers(isub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`integrations set-credential` and `integrations rotate-credential-key`."""
    setc = isub.add_parser(
        "set-credential",
        # No `--refresh-token SECRET` as an abbreviation of --refresh-token-file.
        allow_abbrev=False,
        help="Store an integration's credential encrypted in the warehouse (secrets from "
        "files or standard input, never from arguments).",
    )
    setc.set_defaults(handler=cmd_set_credential)
    setc.add_argument("id")
    for option, what in (
        ("--access-token-file", "access token"),
        ("--refresh-token-file", "OAuth refresh token (X, LinkedIn)"),
        ("--client-secret-file", "OAuth client secret"),
    ):
        setc.add_argument(option, metavar="PATH", help=f"File holding the {what}; '-': stdin.")
    setc.add_argument("--client-id", help="OAuth client id (not a secret).")
    setc.add_argument(
        "--expires-in", type=_positive_seconds, metavar="S", help="Access token lifetime (s)."
    )
    setc.add_argument(
        "--refresh-expires-in", type=_positive_seconds, metavar="S", help="Refresh token's."
    )
    setc.add_argument(
        "--clear", action="store_true", help="Remove the stored credential (back to files/env)."
    )
    rotate = isub.add_parser(
        "rotate-credential-key",
        help="Re-encrypt every stored credential with the first key of ANALYTICS_CREDENTIALS_KEY.",
    )
    rotate.set_defaults(handler=cmd_rotate_credential_key)


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
    _add_credential_parsers(isub)

    backfill = sub.add_parser(
        "backfill", help="Materialize a date range in this process (single-run backfill)."
    )
    backfill.add_argument("--start", required=True, type=_parse_date)
    backfill.add_argument("--end", required=True, type=_parse_date)
    backfill.add_argument("--integration", action="append", help="Repeatable; default: all.")

    return parser


COMMANDS = {
    "init-db": cmd_init_db,
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
        f"analytics-pipeline {args.command}",
        lambda: getattr(args, "handler", COMMANDS[args.command])(args),
    )


if __name__ == "__main__":
    sys.exit(main())
