"""`analytics-pipeline`: warehouse set-up, tracked integrations and backfills.

Every command honours ANALYTICS_WAREHOUSE_URL and DAGSTER_HOME. An operator's mistake (bad
input, an unreachable, missing or unmigrated warehouse, a missing credential, a permission
error) exits with status 2 and ONE line on stderr that says what to change; nothing is written
in that case. `--verbose` adds the details (traceback, Dagster's run log on the console).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import logging
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence, Set
from typing import TYPE_CHECKING, Any, NoReturn

from analytics_pipeline.errors import UsageError
from analytics_pipeline.records import PLATFORMS, AssetName, IntegrationStatus
from analytics_pipeline.settings import shown

if TYPE_CHECKING:
    import sqlalchemy as sa

    from analytics_pipeline.credentials import CredentialBundle, CredentialCipher
    from analytics_pipeline.defs import runs
    from analytics_pipeline.platforms.base import Account
    from analytics_pipeline.warehouse import TrackedIntegration

logger = logging.getLogger("analytics_pipeline")

__all__ = ["UsageError", "build_parser", "main", "run_reporting_errors"]


# --- the warehouse -------------------------------------------------------------------------------


def _engine(*, migrated: bool = True) -> sa.Engine:
    """The warehouse engine; with `migrated`, UsageError unless its schema is up to date."""
    from analytics_pipeline.warehouse import default_warehouse_url, make_engine
    from analytics_pipeline.warehouse.engine import safe_url_text
    from analytics_pipeline.warehouse.migrations import pending_migrations

    engine = make_engine(default_warehouse_url())
    if migrated:
        pending = pending_migrations(engine)
        if pending:
            where = safe_url_text(engine.url)
            state = "empty" if len(pending) == _known_count() else "not migrated"
            raise UsageError(
                f"The warehouse {where} is {state} (pending revision(s) {', '.join(pending)}): "
                "run `analytics-pipeline init-db` first."
            )
    return engine


def _known_count() -> int:
    from analytics_pipeline.warehouse.migrations import known_versions

    return len(known_versions())


def cmd_init_db(args: argparse.Namespace) -> int:
    from analytics_pipeline.warehouse.engine import safe_url_text
    from analytics_pipeline.warehouse.migrations import migrate

    engine = _engine(migrated=False)
    applied = migrate(engine)
    done = f"applied revisions {', '.join(applied)}" if applied else "up to date"
    print(f"Warehouse {safe_url_text(engine.url)}: {done}")
    return 0


# --- integrations --------------------------------------------------------------------------------


def cmd_integrations(args: argparse.Namespace) -> int:
    from analytics_pipeline import warehouse as wh

    action: Callable[[argparse.Namespace], int] = _INTEGRATION_ACTIONS[args.action]
    try:
        return action(args)
    except (wh.IntegrationExistsError, wh.UnknownIntegrationError, ValueError) as exc:
        raise UsageError(str(exc)) from exc


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _add(args: argparse.Namespace) -> int:
    from analytics_pipeline import warehouse as wh
    from analytics_pipeline.onboarding import CredentialRef, local_credential
    from analytics_pipeline.records import check_account_id

    check_account_id(args.platform, args.account)
    wh.validate_integration_id(args.id)
    wh.validate_credential_env(args.token_env)
    engine = _engine()
    token = local_credential(engine, CredentialRef(args.id, args.platform, args.token_env))
    if args.verify:
        _refuse_if_tracked(engine, args)  # before calling the platform
        if token is None:
            raise UsageError(
                f"--verify needs the credential: ${args.token_env} is not set in this "
                "environment (nothing was added)."
            )
        account = _account(args.org, args.id, args.platform, args.account, token)
        if not _verify(account):
            print(f"Nothing was added: fix the account id or the credential of {args.id}.")
            return 1
    with engine.begin() as conn:
        added = wh.add_integration(
            conn,
            organization_id=args.org,
            integration_id=args.id,
            platform=args.platform,
            external_account_id=args.account,
            display_name=args.name or args.id,
            credential_env=args.token_env,
            now=_now(),
        )
    print(
        f"Added {added.integration_id} ({added.platform} {added.external_account_id}, "
        f"organization {added.organization_id})."
    )
    if token is None:
        print(
            f"warning: ${args.token_env} is not set here: set it where Dagster runs before its "
            f"first run (the sensor starts it within minutes); `analytics-pipeline "
            f"integrations verify {args.id}` checks it.",
            file=sys.stderr,
        )
    return 0


def _refuse_if_tracked(engine: sa.Engine, args: argparse.Namespace) -> None:
    from analytics_pipeline import warehouse as wh

    with engine.connect() as conn:
        if wh.get_integration(conn, args.id) is not None:
            raise wh.IntegrationExistsError(f"Integration {args.id!r} is already tracked")
        existing = wh.find_account(conn, args.org, args.platform, args.account)
    if existing is not None:
        raise wh.DuplicateAccountError(
            f"Organization {args.org!r} already tracks {args.platform} account {args.account} "
            f"as integration {existing.integration_id!r}; one account is tracked once"
        )


def _account(org: str, integration_id: str, platform: str, account_id: str, token: Any) -> Account:
    from analytics_pipeline.platforms.base import Account

    return Account(
        organization_id=org,
        integration_id=integration_id,
        platform=platform,
        external_account_id=account_id,
        token=token,
    )


def _verify(account: Account) -> bool:
    """The verification calls (the account; for Meta, the token's expiry); prints what the
    platform said and a warning when the token expires soon. True when the account answered."""
    from analytics_pipeline.credentials import load_credential_settings
    from analytics_pipeline.defs.resources import PlatformsResource
    from analytics_pipeline.onboarding import describe_failure, expiry_warning, verify
    from analytics_pipeline.platforms.base import PlatformError

    platforms = PlatformsResource.from_env()
    try:
        verified = verify(account, platforms.create_client)
    except PlatformError as error:
        print(describe_failure(account, error), file=sys.stderr)
        return False
    found = verified.description
    handle = f" ({found.handle})" if found.handle else ""
    calls = f"{verified.api_calls} API call{'s' if verified.api_calls != 1 else ''}"
    print(
        f"{account.integration_id}: {account.platform} account {found.account_id} is "
        f"{found.name!r}{handle}, reachable with its credential ({calls})."
    )
    warn_days = load_credential_settings().token_expiry_warn_days
    warning = expiry_warning(account, verified, _now(), warn_days)
    if warning is not None:
        print(f"warning: {warning}", file=sys.stderr)
    return True


def _credential_line(engine: sa.Engine, integration: TrackedIntegration) -> str:
    """Where the integration's credential comes from here, and what of it is due soon (a
    stored refresh token that expires within ANALYTICS_TOKEN_EXPIRY_WARN_DAYS)."""
    from analytics_pipeline.credentials import describe_credential, load_credential_settings

    return describe_credential(
        engine,
        integration.integration_id,
        integration.platform,
        integration.credential_env,
        load_credential_settings(),
        now=_now(),
    )


def _verify_existing(args: argparse.Namespace) -> int:
    from analytics_pipeline import warehouse as wh
    from analytics_pipeline.onboarding import CredentialRef, require_credential

    engine = _engine()
    with engine.connect() as conn:
        integration = _require(wh.get_integration(conn, args.id), args.id)
    token = require_credential(
        engine,
        CredentialRef(integration.integration_id, integration.platform, integration.credential_env),
    )
    account = _account(
        integration.organization_id,
        integration.integration_id,
        integration.platform,
        integration.external_account_id,
        token,
    )
    if not _verify(account):
        return 1
    print(f"{integration.integration_id}: credential {_credential_line(engine, integration)}.")
    if integration.status != IntegrationStatus.ACTIVE:
        print(
            f"{integration.integration_id} is {integration.status.value}: "
            f"`analytics-pipeline integrations resume {integration.integration_id}` restarts it."
        )
    return 0


def _require(integration: TrackedIntegration | None, integration_id: str) -> TrackedIntegration:
    from analytics_pipeline.settings import shown
    from analytics_pipeline.warehouse import UnknownIntegrationError

    if integration is None:
        raise UnknownIntegrationError(f"No tracked integration {shown(integration_id)}")
    return integration


def _list(args: argparse.Namespace) -> int:
    from analytics_pipeline import warehouse as wh

    with _engine().connect() as conn:
        integrations = wh.list_integrations(conn)
    _print_integrations(integrations, as_json=args.json)
    return 0


def _pause(args: argparse.Namespace) -> int:
    from analytics_pipeline import warehouse as wh

    with _engine().begin() as conn:
        before = wh.get_integration(conn, args.id)
        after, changed = wh.pause_integration(conn, args.id, args.reason, _now())
    if not changed:
        print(f"{args.id} is already paused ({after.status_reason}).")
    elif before is not None and before.status == IntegrationStatus.PAUSED:
        print(f"{args.id} was already paused; reason now: {after.status_reason}.")
    else:
        print(f"Paused {args.id} ({after.status_reason}).")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from analytics_pipeline import warehouse as wh
    from analytics_pipeline.onboarding import CredentialRef, require_credential

    engine = _engine()
    with engine.connect() as conn:
        current = _require(wh.get_integration(conn, args.id), args.id)
    if current.status == IntegrationStatus.ACTIVE:
        print(f"{args.id} is already active.")
        return 0
    # Without the token the missing partitions would all fail again: check it first.
    require_credential(
        engine, CredentialRef(current.integration_id, current.platform, current.credential_env)
    )
    with engine.begin() as conn:
        wh.resume_integration(conn, args.id, _now())
        tracked = [i.integration_id for i in wh.list_integrations(conn)]
    was = f"{current.status.value}" + (
        f": {current.status_reason}" if current.status_reason else ""
    )
    print(f"Resumed {args.id} (was {was}).")
    return _rerun_initial_window(args.id, current.platform, tracked)


def _rerun_initial_window(integration_id: str, platform: str, tracked: Sequence[str]) -> int:
    """Run the initial window's partitions that are not materialized, like `backfill` does."""
    from analytics_pipeline.defs import recovery

    summaries = recovery.rerun_initial_window(
        integration_id, tracked, _now(), print, platform_of={integration_id: platform}
    )
    if not summaries:
        print(f"Every partition of {integration_id}'s initial window is materialized.")
        return 0
    return _print_summaries(summaries)


def _remove(args: argparse.Namespace) -> int:
    from analytics_pipeline import warehouse as wh

    with _engine().begin() as conn:
        wh.remove_integration(conn, args.id)
        had_credential = wh.delete_credential(conn, args.id)
    stored = "; its stored credential is deleted" if had_credential else ""
    print(f"Removed {args.id}; its rows stay, the sensor drops its partition{stored}.")
    return 0


_INTEGRATION_ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "add": _add,
    "list": _list,
    "pause": _pause,
    "resume": _resume,
    "remove": _remove,
    "verify": _verify_existing,
}

_COLUMNS = (
    ("ORGANIZATION", "organization_id"),
    ("ID", "integration_id"),
    ("NAME", "display_name"),
    ("PLATFORM", "platform"),
    ("ACCOUNT", "external_account_id"),
    ("STATUS", "status"),
    ("REASON", "status_reason"),
)
_JSON_FIELDS = (
    "organization_id",
    "integration_id",
    "display_name",
    "platform",
    "external_account_id",
    "status",
    "status_reason",
    "credential_env",
)


def _print_integrations(integrations: Sequence[TrackedIntegration], *, as_json: bool) -> None:
    if as_json:
        rows = [{name: _plain(getattr(i, name)) for name in _JSON_FIELDS} for i in integrations]
        print(json.dumps(rows, indent=2))
        return
    if not integrations:
        print("No tracked integrations. Add one with `analytics-pipeline integrations add`.")
        return
    table = [[title for title, _ in _COLUMNS]]
    table += [[str(_plain(getattr(i, name)) or "") for _, name in _COLUMNS] for i in integrations]
    widths = [max(len(row[col]) for row in table) for col in range(len(_COLUMNS))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, IntegrationStatus) else value


# --- backfill ------------------------------------------------------------------------------------


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def _check_dates(start: dt.date, end: dt.date) -> None:
    """The range is within the partitions: checked before any run exists (no orphan run)."""
    from analytics_pipeline.settings import load_definition_settings

    if end < start:
        raise UsageError(f"--end {end} is before --start {start}.")
    today = _now().date()
    if end > today:
        raise UsageError(f"--end {end} is in the future (latest: today, {today}).")
    first = load_definition_settings().partitions_start_date
    if start < first:
        raise UsageError(
            f"--start {start} is before the first partition, {first} "
            "(ANALYTICS_PARTITIONS_START_DATE); start on or after it."
        )


def _check_credentials(engine: sa.Engine, integrations: Sequence[TrackedIntegration]) -> None:
    """Active integrations whose token this process cannot resolve would fail every partition
    (and be marked needs_reauth): refuse before any run is created."""
    from analytics_pipeline.onboarding import CredentialRef, local_credential

    missing = [
        f"{i.integration_id} (${i.credential_env})"
        for i in integrations
        if i.status == IntegrationStatus.ACTIVE
        and local_credential(engine, CredentialRef(i.integration_id, i.platform, i.credential_env))
        is None
    ]
    if missing:
        raise UsageError(
            f"No credential found here for {', '.join(missing)} (encrypted store, secrets "
            "directory or environment variable): provide it, or "
            "leave the integration out with --integration."
        )


def cmd_backfill(args: argparse.Namespace) -> int:
    from analytics_pipeline import warehouse as wh
    from analytics_pipeline.defs import runs

    _check_dates(args.start, args.end)
    engine = _engine()
    with engine.connect() as conn:
        integrations = wh.list_integrations(conn)
    known = [i.integration_id for i in integrations]
    platform_of = {i.integration_id: i.platform for i in integrations}
    chosen = args.integration or known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise UsageError(
            f"Unknown integration(s): {', '.join(unknown)}. Known: {', '.join(known)}."
        )
    _check_credentials(engine, [i for i in integrations if i.integration_id in chosen])
    runs.ensure_dagster_home()
    _announce_instance()
    backfill = runs.run_backfill(args.start, args.end, known, chosen, platform_of=platform_of)
    # The process ends after the summary: spare it the interpreter's final garbage collection
    # of Dagster's heap, measured at 4-5 s (a stop must end the command promptly).
    gc.freeze()
    per_integration = len(AssetName) * ((args.end - args.start).days + 1)
    _print_inactive([i for i in integrations if i.integration_id in chosen], per_integration)
    paused = {i.integration_id for i in integrations if i.status == IntegrationStatus.PAUSED}
    exit_code = _print_summaries(backfill.runs, paused)
    for partitions in backfill.not_started:
        print(f"not started (stopped first): {partitions}")
    if backfill.stopped_by is not None:
        name = signal.Signals(backfill.stopped_by).name
        print(f"stopped by {name}: exit {128 + backfill.stopped_by}")
        return 128 + backfill.stopped_by
    return exit_code


def _print_summaries(summaries: Sequence[runs.RunSummary], paused: Set[str] = frozenset()) -> int:
    """Every run's summary; the exit status: 0 when every run was clean, else 1."""
    for summary in summaries:
        _print_summary(summary, paused)
    return 0 if all(_clean(summary) for summary in summaries) else 1


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


def _print_summary(summary: runs.RunSummary, paused: Set[str]) -> None:
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


# --- the Dagster instance ------------------------------------------------------------------------


def _announce_instance() -> None:
    from analytics_pipeline.defs.recovery import current_instance_line

    print(current_instance_line())


def cmd_init_dagster_home(args: argparse.Namespace) -> int:
    from analytics_pipeline.defs import runs

    home = runs.ensure_dagster_home()
    print(f"Dagster home {home}: storage initialized.")
    return 0


# --- credentials ---------------------------------------------------------------------------------


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


# --- reports -------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    """KPI rollups of one organization: over --from..--to computed from the daily KPI tables,
    or with --by the stored weekly/monthly rollups of the periods overlapping the range."""
    from analytics_pipeline.kpis.report import render
    from analytics_pipeline.warehouse import kpi_rollups, kpis

    first, last = getattr(args, "from"), args.to
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}.")
    with _engine().connect() as conn:
        if not kpis.organization_exists(conn, args.org):
            raise UsageError(f"Unknown organization {args.org!r}: no tracked integration has it.")
        if args.by:
            frame = kpi_rollups.read_rollups(conn, args.org, args.by, args.scope, first, last)
        else:
            frame = kpi_rollups.compute_rollups(conn, first, last, [args.scope], args.org)
    if frame.empty:
        source = (
            f"the {args.by}ly rollups are computed after the daily KPIs (kpi_rollups_{args.by}ly)"
            if args.by
            else "they are computed after ingestion lands (kpi_job, or the "
            "kpis_after_ingestion_sensor)"
        )
        print(f"No KPIs for {args.org} between {first} and {last}: {source}.")
        return 0
    print(render(frame, args.format))
    return 0


# --- parser --------------------------------------------------------------------------------------
class _OneLineParser(argparse.ArgumentParser):
    """A usage error is one line too (argparse prints the usage first): the message and where
    to look, status 2 as argparse has it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    common = _OneLineParser(add_help=False)
    common.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        default=argparse.SUPPRESS,
        help="Details of errors (traceback) and Dagster's run log on the console.",
    )
    parser = _OneLineParser(prog="analytics-pipeline", description=__doc__, parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "init-db", help="Create or migrate the warehouse schema (idempotent).", parents=[common]
    )
    sub.add_parser(
        "init-dagster-home",
        help="Create $DAGSTER_HOME's storage once (run before starting the webserver and "
        "daemon on a fresh home).",
        parents=[common],
    )

    integrations = sub.add_parser(
        "integrations", help="Manage tracked integrations.", parents=[common]
    )
    isub = integrations.add_subparsers(dest="action", required=True)
    add = isub.add_parser("add", help="Track a new page/account.", parents=[common])
    add.add_argument("--org", required=True, help="Organization id.")
    add.add_argument("--id", required=True, help="Integration id (a-z, 0-9, _ and -).")
    add.add_argument("--platform", required=True, choices=PLATFORMS)
    add.add_argument(
        "--account",
        required=True,
        help="Facebook Page id or Instagram user id (numeric), LinkedIn urn:li:organization:<n>, "
        "X numeric user id.",
    )
    add.add_argument("--name", help="Display name.")
    add.add_argument(
        "--token-env", required=True, help="NAME of the environment variable holding the token."
    )
    add.add_argument(
        "--verify",
        action="store_true",
        help="Call the platform once with the token first; add only if the account answers.",
    )
    listing = isub.add_parser("list", help="List tracked integrations.", parents=[common])
    listing.add_argument("--json", action="store_true")
    helps = {
        "pause": "Pause an integration (keeps an earlier reason unless --reason is given).",
        "resume": "Resume an integration and run its initial window's missing partitions.",
        "remove": "Stop tracking an integration (its rows stay).",
        "verify": "Call the platform once with the integration's credential.",
    }
    for action, text in helps.items():
        p = isub.add_parser(action, help=text, parents=[common])
        p.add_argument("id")
        if action == "pause":
            p.add_argument("--reason", help="Why (default: the earlier reason, if any).")
    _add_credential_parsers(isub)

    backfill = sub.add_parser(
        "backfill",
        help="Materialize a date range: runs launched through the Dagster instance (queued "
        "when a daemon runs), waited for and reported.",
        parents=[common],
    )
    backfill.add_argument("--start", required=True, type=_parse_date)
    backfill.add_argument("--end", required=True, type=_parse_date)
    backfill.add_argument("--integration", action="append", help="Repeatable; default: all.")

    report = sub.add_parser(
        "report", help="KPI rollups per integration, platform or in total of an organization."
    )
    report.add_argument("--org", required=True, help="Organization id.")
    report.add_argument("--from", required=True, type=_parse_date, help="First day (UTC).")
    report.add_argument("--to", required=True, type=_parse_date, help="Last day (UTC).")
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")
    report.add_argument(
        "--by",
        choices=("week", "month"),
        help="Print the stored rollups of the ISO weeks / months overlapping the range "
        "(default: one rollup over exactly --from..--to).",
    )
    report.add_argument(
        "--scope",
        choices=("integration", "organization", "platform"),
        default="integration",
        help="One row per integration (default), per platform, or for the whole organization.",
    )

    return parser


COMMANDS = {
    "init-db": cmd_init_db,
    "init-dagster-home": cmd_init_dagster_home,
    "integrations": cmd_integrations,
    "backfill": cmd_backfill,
    "report": cmd_report,
}


# --- errors --------------------------------------------------------------------------------------


def quiet_library_warnings() -> None:
    """Dagster flags beta/preview APIs and its own configuration at import and instance load;
    users of the CLI cannot act on that (the run log keeps Dagster's own messages)."""
    warnings.filterwarnings("ignore", message=r".*(beta|preview)", category=Warning)
    warnings.filterwarnings("ignore", category=Warning, module=r"dagster(\..*)?$")


def run_reporting_errors(command: str, run: Callable[[], int], *, verbose: bool = False) -> int:
    """`run()`, with an operator's mistake reported in ONE line on stderr (exit status 2).

    Anything else is unexpected: one line too (exit status 1), with the traceback only under
    `--verbose`."""
    quiet_library_warnings()
    from analytics_pipeline import errors

    try:
        status = run()
        sys.stdout.flush()  # a closed pipe shows here at the latest, while we can still drop it
        return status
    except BrokenPipeError:
        return _reader_gone()
    except Exception as exc:  # every error becomes one line (details: --verbose)
        message = errors.operator_message(exc)
        if verbose:
            traceback.print_exc(file=sys.stderr)
        if message is None:
            hint = "" if verbose else " (run with --verbose for details)"
            print(f"{command}: unexpected error: {errors.one_line(exc)}{hint}", file=sys.stderr)
            return 1
        print(f"{command}: error: {message}", file=sys.stderr)
        return 2


def _reader_gone() -> int:
    """stdout's reader went away (`... | head -1`): end quietly, as Unix tools do, with status
    128 + SIGPIPE. stdout now points to /dev/null, so the interpreter's final flush of what is
    still buffered cannot fail again (the recipe of Python's `signal` documentation)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    if verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        logger.setLevel(logging.INFO)
    return run_reporting_errors(
        f"analytics-pipeline {args.command}",
        lambda: getattr(args, "handler", COMMANDS[args.command])(args),
        verbose=verbose,
    )


if __name__ == "__main__":
    sys.exit(main())
