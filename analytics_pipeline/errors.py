"""How the CLI tells an operator's mistake from a bug: `operator_message` turns the errors an
operator can fix (bad input, configuration, an unreachable, missing or unmigrated database, a
missing credential, a permission problem) into ONE line; anything else is unexpected.

Messages never carry a secret: database driver messages and unexpected errors go through the
platforms' redaction (every token wrapped in a `Secret` in this process, `access_token=` query
values), and a URL password is never part of them.
"""

from __future__ import annotations

import sqlalchemy as sa

from analytics_pipeline.platforms.redact import redact
from analytics_pipeline.settings import SettingsError


class UsageError(Exception):
    """Bad input or environment, reported in one line, exit status 2."""


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return redact(lines[0]) if lines else ""


def one_line(exc: BaseException) -> str:
    """`Type: first line of the message`, redacted."""
    text = _first_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _database_message(exc: sa.exc.DBAPIError) -> str:
    detail = _first_line(str(exc.orig)) if exc.orig is not None else _first_line(str(exc))
    return (
        f"The warehouse database cannot be used: {detail} "
        "(check ANALYTICS_WAREHOUSE_URL and that the server is up)."
    )


def _os_message(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    if isinstance(exc, PermissionError):
        return f"Permission denied{where} (check the owner and mode of that path)."
    return f"{exc.strerror or one_line(exc)}{where}."


def operator_message(exc: BaseException) -> str | None:
    """One line for an error an operator can fix (redacted); None for an unexpected one."""
    message = _operator_message(exc)
    return None if message is None else redact(message)


def _operator_message(exc: BaseException) -> str | None:
    from analytics_pipeline.onboarding import CredentialMissingError
    from analytics_pipeline.records import AccountIdError
    from analytics_pipeline.warehouse import (
        IntegrationExistsError,
        UnknownIntegrationError,
        WarehouseConfigError,
    )
    from analytics_pipeline.warehouse.migrations import MigrationRefusedError

    plain = (
        UsageError,
        SettingsError,
        WarehouseConfigError,
        MigrationRefusedError,
        CredentialMissingError,
        AccountIdError,
        IntegrationExistsError,
        UnknownIntegrationError,
    )
    if isinstance(exc, plain):
        return _first_line(str(exc))
    if isinstance(exc, sa.exc.DBAPIError):
        return _database_message(exc)
    if isinstance(exc, OSError):
        return _os_message(exc)
    return None
