"""Validated onboarding in the warehouse: account id forms per platform, one integration per
account and organization (a database constraint, revision 0006), pause/resume bookkeeping."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.records import AccountIdError, check_account_id
from analytics_pipeline.warehouse import tables as t
from analytics_pipeline.warehouse.migrations import MigrationRefusedError, known_versions, migrate
from analytics_pipeline_tests.helpers import T0, acme_integration

VALID = {
    "facebook": "104123456789012",
    "instagram": "17841400000000001",
    "linkedin": "urn:li:organization:2414183",
    "x": "2244994945",
}
INVALID = [
    ("facebook", "acme.page", "numeric Facebook Page id"),
    ("facebook", "0123", "numeric Facebook Page id"),
    ("instagram", "@acme", "instagram_business_account"),
    ("linkedin", "12345", "urn:li:organization:<number>"),
    ("linkedin", "urn:li:person:12345", "urn:li:organization:<number>"),
    ("x", "@acme", "numeric X user id"),
    ("x", "acme", "numeric X user id"),
]


@pytest.mark.parametrize("platform", sorted(VALID))
def test_each_platform_accepts_its_account_id_form(platform: str) -> None:
    assert check_account_id(platform, VALID[platform]) == VALID[platform]


@pytest.mark.parametrize(("platform", "value", "expected"), INVALID)
def test_a_wrong_account_id_is_one_line_with_the_expected_form(
    platform: str, value: str, expected: str
) -> None:
    with pytest.raises(AccountIdError) as info:
        check_account_id(platform, value)
    message = str(info.value)
    assert "\n" not in message
    assert repr(value) in message and expected in message and "e.g." in message


def test_a_long_refused_account_id_is_not_echoed() -> None:
    pasted = "EAAB" + "x" * 200  # e.g. a token pasted in the wrong field
    with pytest.raises(AccountIdError) as info:
        check_account_id("facebook", pasted)
    assert pasted not in str(info.value) and "204 characters" in str(info.value)


def test_add_integration_refuses_a_bad_account_id(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        with pytest.raises(AccountIdError):
            wh.add_integration(
                conn, **acme_integration(platform="linkedin", external_account_id="12345")
            )
        assert wh.list_integrations(conn) == []


def _account(**changes: Any) -> dict[str, Any]:
    return acme_integration(external_account_id=VALID["facebook"], **changes)


def test_the_same_account_twice_in_one_organization_is_refused(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        wh.add_integration(conn, **_account())
        with pytest.raises(wh.DuplicateAccountError, match="as integration 'acme-fb'"):
            wh.add_integration(conn, **_account(integration_id="acme-fb-2"))
        # Other organizations and other platforms may track the same id.
        wh.add_integration(conn, **_account(integration_id="other-org", organization_id="org-2"))
        wh.add_integration(conn, **_account(integration_id="acme-ig", platform="instagram"))
        ids = [i.integration_id for i in wh.list_integrations(conn)]
    assert sorted(ids) == ["acme-fb", "acme-ig", "other-org"]


def test_the_database_itself_refuses_a_second_integration_for_an_account(
    engine: sa.Engine,
) -> None:
    with engine.begin() as conn:
        wh.add_integration(conn, **_account())
    row = {**_account(integration_id="raw-insert"), "status": "active", "status_reason": None}
    row["created_at"] = row["updated_at"] = row.pop("now")
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(t.tracked_integrations), row)


def test_upsert_cannot_move_an_integration_onto_a_tracked_account(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        wh.upsert_integration(conn, **_account())
        wh.upsert_integration(conn, **acme_integration(integration_id="b", external_account_id="7"))
        with pytest.raises(wh.DuplicateAccountError):
            wh.upsert_integration(conn, **_account(integration_id="b"))
        with pytest.raises(wh.DuplicateAccountError):
            wh.upsert_integration(conn, **_account(integration_id="c"))
        assert wh.get_integration(conn, "b").external_account_id == "7"  # type: ignore[union-attr]


# --- revision 0006 on a legacy warehouse --------------------------------------------------------


def _legacy_row(integration_id: str, account: str, created: dt.datetime) -> dict[str, Any]:
    row = acme_integration(integration_id=integration_id, external_account_id=account)
    row.pop("now")
    return {**row, "status": "active", "status_reason": None, "created_at": created,
            "updated_at": created}  # fmt: skip


def _version(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.scalar(sa.text("SELECT version_num FROM alembic_version")))


def test_0006_refuses_a_warehouse_that_tracks_an_account_twice(warehouse_url: str) -> None:
    engine = wh.make_engine(warehouse_url)
    try:
        before = known_versions()[known_versions().index("0006") - 1]
        migrate(engine, target=before)
        rows = [
            _legacy_row("acme-fb-new", "555", T0 + dt.timedelta(days=2)),
            _legacy_row("acme-fb-old", "555", T0),
            _legacy_row("acme-other", "556", T0),
        ]
        with engine.begin() as conn:
            conn.execute(sa.insert(t.tracked_integrations), rows)
        with pytest.raises(MigrationRefusedError) as info:
            migrate(engine)
        message = str(info.value)
        assert "org-1/facebook 555: acme-fb-old, acme-fb-new" in message
        assert "acme-other" not in message and "init-db" in message
        assert _version(engine) == before  # nothing changed
        with engine.begin() as conn:
            conn.execute(
                sa.delete(t.tracked_integrations).where(
                    t.tracked_integrations.c.integration_id == "acme-fb-new"
                )
            )
        assert migrate(engine) == known_versions()[known_versions().index("0006") :]
        with engine.connect() as conn:
            kept = [i.integration_id for i in wh.list_integrations(conn)]
        assert sorted(kept) == ["acme-fb-old", "acme-other"]
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.insert(t.tracked_integrations), _legacy_row("again", "555", T0))
    finally:
        engine.dispose()


def test_0006_keeps_the_checks_of_the_rebuilt_table(engine: sa.Engine) -> None:
    row = {**_legacy_row("bad-status", "557", T0), "status": "asleep"}
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(t.tracked_integrations), row)


# --- pause and resume ---------------------------------------------------------------------------


def test_pause_keeps_an_earlier_reason_unless_a_new_one_is_given(engine: sa.Engine) -> None:
    later = T0 + dt.timedelta(hours=1)
    with engine.begin() as conn:
        wh.add_integration(conn, **_account())
        paused, changed = wh.pause_integration(conn, "acme-fb", None, later)
        assert changed and paused.status_reason == wh.DEFAULT_PAUSE_REASON
        wh.set_integration_status(conn, "acme-fb", "paused", "client offboarding", later)
        again, changed = wh.pause_integration(conn, "acme-fb", None, later)
        assert not changed and again.status_reason == "client offboarding"
        renamed, changed = wh.pause_integration(conn, "acme-fb", "contract ended", later)
        assert changed and renamed.status_reason == "contract ended"
        wh.set_integration_status(conn, "acme-fb", "needs_reauth", "token expired", later)
        from_reauth, changed = wh.pause_integration(conn, "acme-fb", None, later)
        assert changed and (from_reauth.status, from_reauth.status_reason) == (
            "paused",
            "token expired",
        )


def test_resume_says_whether_anything_changed(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        wh.add_integration(conn, **_account())
        active, changed = wh.resume_integration(conn, "acme-fb", T0)
        assert not changed and active.status == "active"
        wh.pause_integration(conn, "acme-fb", "holiday", T0)
        resumed, changed = wh.resume_integration(conn, "acme-fb", T0)
        assert changed and (resumed.status, resumed.status_reason) == ("active", None)
        with pytest.raises(wh.UnknownIntegrationError):
            wh.resume_integration(conn, "nope", T0)
