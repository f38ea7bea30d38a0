"""The ingestion step's slots on the platforms it fetches from (the limiter of warehouse/slots.py).

Before its workers start, the step takes one slot per platform of its active integrations (a run
the project created has one platform; a UI range run may span several), in sorted order so that
two runs never wait on each other crosswise. While no slot is free it waits, polling every
`SLOT_POLL_S`, and ends as soon as the step is asked to stop (the wait is not a failure and
never turns into a retry). A thread refreshes the slots' heartbeat while the step works; the
step releases them when its work ends, and a slot whose run died is taken over once its
heartbeat is `STALE_AFTER` old. The holder is the run id, so a retried step re-takes its run's
own slot instead of waiting for it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable

import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.records import IntegrationStatus
from analytics_pipeline.warehouse import slots as wh_slots

STALE_AFTER = wh_slots.DEFAULT_STALE_AFTER
SLOT_POLL_S = 2.0  # how often a waiting step tries to claim a slot (one short transaction)
_WAKE_S = 0.2  # how often a waiting step looks at its stop request
_HEARTBEAT_S = STALE_AFTER.total_seconds() / 4

logger = logging.getLogger(__name__)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PlatformSlots:
    """The slots one step attempt holds (holder: its run id). `take` in the step's thread,
    `release` in its `finally`."""

    def __init__(
        self, engine: sa.Engine, holder: str, limit: int, log: Callable[[str], None]
    ) -> None:
        self.engine = engine
        self.holder = holder
        self.limit = limit
        self._log = log
        self._held: list[str] = []
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def take(self, integration_ids: Iterable[str], stopping: Callable[[], bool]) -> bool:
        """One slot per platform of the active integrations, in a fixed order; False if
        `stopping()` came first (the slots taken so far are kept until `release`)."""
        platforms = self._platforms(integration_ids)
        return all(self._take_one(platform, stopping) for platform in platforms)

    def _platforms(self, integration_ids: Iterable[str]) -> list[str]:
        """Sorted platforms of the active integrations (the others send no request)."""
        wanted = set(integration_ids)
        with self.engine.connect() as conn:  # one query, not one per integration
            integrations = wh.list_integrations(conn)
        return sorted(
            {
                integration.platform
                for integration in integrations
                if integration.integration_id in wanted
                and integration.status == IntegrationStatus.ACTIVE
            }
        )

    def _take_one(self, platform: str, stopping: Callable[[], bool]) -> bool:
        waiting = False
        next_try = 0.0
        while not stopping():
            if time.monotonic() >= next_try:
                if self._claim(platform):
                    if waiting:
                        self._log(f"Got a {platform} slot: fetching.")
                    return True
                if not waiting:
                    self._log_waiting(platform)
                    waiting = True
                next_try = time.monotonic() + SLOT_POLL_S
            time.sleep(_WAKE_S)
        return False

    def _claim(self, platform: str) -> bool:
        with self.engine.begin() as conn:
            taken = wh_slots.acquire(
                conn, platform, self.holder, self.limit, _utc_now(), STALE_AFTER
            )
        if taken:
            with self._lock:
                self._held.append(platform)
            self._start_heartbeat()
        return taken

    def _log_waiting(self, platform: str) -> None:
        with self.engine.connect() as conn:
            fetching = len(wh_slots.holders(conn, platform, _utc_now(), STALE_AFTER))
        self._log(
            f"Waiting for a {platform} slot: {fetching} run(s) are fetching from {platform} "
            f"(at most {self.limit} at once, ANALYTICS_MAX_RUNS_PER_PLATFORM)."
        )

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(
                target=self._beat, name="platform-slot-heartbeat", daemon=True
            )
            self._heartbeat.start()

    def _beat(self) -> None:
        while not self._ended.wait(_HEARTBEAT_S):
            with self._lock:
                held = list(self._held)
            try:
                with self.engine.begin() as conn:
                    lost = [
                        platform
                        for platform in held
                        if not wh_slots.heartbeat(conn, platform, self.holder, _utc_now())
                    ]
            except sa.exc.SQLAlchemyError as exc:  # the next beat tries again
                logger.warning("platform slot heartbeat failed: %s", type(exc).__name__)
                continue
            if lost:  # its heartbeat was missed for STALE_AFTER: another run took it over
                logger.warning("platform slot(s) lost: %s", ", ".join(lost))

    def release(self) -> None:
        """Free every slot of this run (also one claimed in the instant a stop arrived)."""
        self._ended.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        try:
            with self.engine.begin() as conn:
                wh_slots.release(conn, self.holder)
        except sa.exc.SQLAlchemyError as exc:
            self._log(
                f"Platform slots not released ({type(exc).__name__}, warehouse): they are "
                f"taken over once their heartbeat is {STALE_AFTER.total_seconds():.0f} s old."
            )
