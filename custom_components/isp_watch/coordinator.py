"""Coordinator for ISP Watch: runs speed tests, keeps their history, judges the line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
import logging
from typing import TYPE_CHECKING, Any, override

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import BYTES_PER_GB, DOMAIN, HISTORY_MIN_AGE, HISTORY_MIN_COUNT
from .data import IspWatchSettings
from .evaluation import (
    LineState,
    data_used_since,
    evaluate,
    next_check,
    prune_history,
    start_of_month,
)
from .models import (
    FailureKind,
    Measurement,
    TestFailure,
    TestOutcome,
    outcome_from_dict,
)
from .repairs import async_set_issue
from .speedtest_client import SpeedTestClient, SpeedTestSettings

if TYPE_CHECKING:
    from .data import IspWatchConfigEntry

_LOGGER = logging.getLogger(__package__)

STORAGE_VERSION = 1
# Tests from several uplinks at once share the line and corrupt each other's numbers.
SPEED_TEST_LOCK: HassKey[asyncio.Lock] = HassKey(f"{DOMAIN}_speed_test_lock")
# Give Home Assistant a quiet minute after it starts before a test loads the line.
STARTUP_DELAY = timedelta(minutes=1)
# Consecutive "service unavailable" failures before the user is told about them.
SERVICE_UNAVAILABLE_ISSUE_AFTER = 3


def history_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    """The store that keeps an entry's test history across restarts."""
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.history")


@dataclass(frozen=True, slots=True, kw_only=True)
class LineSnapshot:
    """What the entities show: the latest tests and the judgement of the line."""

    last_outcome: TestOutcome | None
    last_measurement: Measurement | None
    line: LineState
    total_bytes: int
    month_bytes: int

    @property
    def last_test_failed(self) -> bool:
        """Whether the most recent test produced no valid measurement."""
        return isinstance(self.last_outcome, TestFailure)


class SpeedTestFailedError(HomeAssistantError):
    """A speed test asked for by the user did not produce a measurement."""


class IspWatchCoordinator(DataUpdateCoordinator[LineSnapshot]):
    """Run speed tests one at a time and keep what they found."""

    config_entry: IspWatchConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: IspWatchConfigEntry,
        settings: IspWatchSettings,
        client: SpeedTestClient | None = None,
    ) -> None:
        """Set up the coordinator; nothing is measured until Home Assistant runs."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=DOMAIN,
            # No schedule until Home Assistant has started: see async_start_schedule.
            update_interval=None,
            always_update=True,
        )
        self.settings = settings
        self.client = client or SpeedTestClient()
        self._store = history_store(hass, entry.entry_id)
        self.history: list[TestOutcome] = []
        self._total_bytes = 0
        self._operation: asyncio.Task[Any] | None = None
        self._check_done: asyncio.Event | None = None
        self._user_requested = False

    async def async_load(self) -> None:
        """Restore the history, so the entities show the last results at once."""
        stored = await self._store.async_load()
        if stored:
            self.history = [outcome_from_dict(item) for item in stored["history"]]
            self._total_bytes = int(stored["total_bytes"])
        self.async_set_updated_data(self._snapshot(dt_util.utcnow()))

    @callback
    def async_start_schedule(self, _hass: HomeAssistant) -> None:
        """Start the test schedule; called once Home Assistant has started."""
        now = dt_util.utcnow()
        check = next_check(
            self.data.line,
            self.history,
            self.settings.thresholds,
            self.settings.schedule,
        )
        due = self.history[-1].finished + check.delay if self.history else now
        self.update_interval = max(due - now, STARTUP_DELAY)
        self._schedule_refresh()

    async def async_run_test_now(self) -> TestOutcome:
        """Run a test for the user (button, update_entity), sharing one in progress."""
        if self._check_done is not None:
            await self._check_done.wait()
        else:
            self._user_requested = True
            await self.async_refresh()
        outcome = self.data.last_outcome
        if outcome is None:
            # Only when the coordinator was shut down before the test could finish.
            raise SpeedTestFailedError(
                translation_domain=DOMAIN, translation_key="speed_test_cancelled"
            )
        if isinstance(outcome, TestFailure):
            # What happened and what to do, in plain words for each kind; the
            # technical reason is in the log.
            raise SpeedTestFailedError(
                translation_domain=DOMAIN,
                translation_key=f"speed_test_{outcome.kind.value}",
            )
        return outcome

    @override
    async def async_request_refresh(self) -> None:
        """Run a test now for homeassistant.update_entity, as async_run_test_now does.

        Raises:
            SpeedTestFailedError: The test produced no measurement.
        """
        await self.async_run_test_now()

    @override
    async def async_shutdown(self) -> None:
        """Stop a running test at once: the child process is ended, not awaited."""
        if self._operation is not None:
            self._operation.cancel()
        await super().async_shutdown()

    @override
    async def _async_update_data(self) -> LineSnapshot:
        """Run the check that is due and judge the line again."""
        user_requested, self._user_requested = self._user_requested, False
        self._check_done = asyncio.Event()
        try:
            now = dt_util.utcnow()
            previous = self.data.line if self.data else None
            if not user_requested and self._over_data_budget(now):
                return self._snapshot(now)
            if previous and previous.outage and not user_requested:
                failure = await self._exclusive(self.client.probe)
                if failure is not None:
                    await self._record(failure)
                    return self._snapshot(dt_util.utcnow())
                _LOGGER.debug("The connection answers again: running a full test")
            await self._record(await self._exclusive(self.client.run_test))
            return self._snapshot(dt_util.utcnow())
        finally:
            self._check_done.set()
            self._check_done = None

    async def _exclusive[ResultT](
        self,
        operation: Callable[[SpeedTestSettings], Coroutine[Any, Any, ResultT]],
    ) -> ResultT:
        """Run one network operation while no other entry is testing the line."""
        async with self.hass.data.setdefault(SPEED_TEST_LOCK, asyncio.Lock()):
            task = self.config_entry.async_create_background_task(
                self.hass,
                operation(self.settings.speed_test),
                name=f"{DOMAIN} speed test {self.config_entry.title}",
            )
            self._operation = task
            try:
                return await task
            finally:
                self._operation = None

    async def _record(self, outcome: TestOutcome) -> None:
        """Keep the outcome and persist it before anyone acts on it."""
        now = outcome.finished
        # Keep the whole month too, so the monthly data budget sees every test.
        self.history = prune_history(
            [*self.history, outcome],
            now,
            min_age=max(HISTORY_MIN_AGE, now - start_of_month(now)),
            min_count=HISTORY_MIN_COUNT,
        )
        self._total_bytes += outcome.bytes_received + outcome.bytes_sent
        await self._store.async_save(
            {
                "history": [item.as_dict() for item in self.history],
                "total_bytes": self._total_bytes,
            }
        )
        self._log_transition(outcome)
        self._update_service_issue()

    def _snapshot(self, now: datetime) -> LineSnapshot:
        settings = self.settings
        line = evaluate(self.history, settings.thresholds, settings.evaluation, now)
        if self.update_interval is not None:
            self.update_interval = next_check(
                line, self.history, settings.thresholds, settings.schedule
            ).delay
        last_measurement = next(
            (item for item in reversed(self.history) if isinstance(item, Measurement)),
            None,
        )
        return LineSnapshot(
            last_outcome=self.history[-1] if self.history else None,
            last_measurement=last_measurement,
            line=line,
            total_bytes=self._total_bytes,
            month_bytes=data_used_since(self.history, start_of_month(now)),
        )

    def _over_data_budget(self, now: datetime) -> bool:
        budget = self.settings.monthly_budget_bytes
        exceeded = bool(budget) and (
            data_used_since(self.history, start_of_month(now)) >= budget
        )
        async_set_issue(
            self.hass,
            self.config_entry,
            "data_budget_exceeded",
            active=exceeded,
            placeholders={"budget": str(budget / BYTES_PER_GB)},
        )
        return exceeded

    def _update_service_issue(self) -> None:
        recent = self.history[-SERVICE_UNAVAILABLE_ISSUE_AFTER:]
        failing = len(recent) == SERVICE_UNAVAILABLE_ISSUE_AFTER and all(
            isinstance(item, TestFailure)
            and item.kind is FailureKind.SERVICE_UNAVAILABLE
            for item in recent
        )
        # Other failures neither raise nor clear it; only a measurement proves it over.
        if failing or isinstance(self.history[-1], Measurement):
            async_set_issue(
                self.hass,
                self.config_entry,
                "speedtest_unavailable",
                active=failing,
                placeholders={"count": str(SERVICE_UNAVAILABLE_ISSUE_AFTER)},
            )

    def _log_transition(self, outcome: TestOutcome) -> None:
        """Log once when tests start failing and once when they work again."""
        previous = self.history[-2] if len(self.history) > 1 else None
        if isinstance(outcome, TestFailure):
            if not isinstance(previous, TestFailure) or previous.kind != outcome.kind:
                _LOGGER.warning(
                    "Speed test for %s failed (%s): %s",
                    self.config_entry.title,
                    outcome.kind.value,
                    outcome.reason,
                )
        elif isinstance(previous, TestFailure):
            _LOGGER.info("Speed tests for %s work again", self.config_entry.title)
