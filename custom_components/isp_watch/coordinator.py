"""Coordinator for ISP Watch: runs speed tests, keeps their history, judges the line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
import logging
from typing import TYPE_CHECKING, Any, override

from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .compliance import (
    Campaign,
    CampaignPhase,
    CampaignProblem,
    CampaignProgress,
    CampaignVerdict,
    Contract,
    MonthlyCompliance,
    Sample,
    campaign_data_estimate,
    campaign_progress,
    campaign_verdict,
    cancel_campaign,
    monthly_compliance,
    next_month_start,
    record_test,
    start_campaign,
)
from .connectivity import (
    ConnectivityProbe,
    Episode,
    EpisodeKind,
    ProbeRound,
    ProbeTarget,
    WatchState,
    pause,
    resume,
    step,
)
from .const import (
    BYTES_PER_GB,
    CAMPAIGN_ESTIMATE_TESTS,
    CAMPAIGN_FALLBACK_TEST_BYTES,
    DOMAIN,
    HISTORY_MIN_AGE,
    HISTORY_MIN_COUNT,
    HISTORY_STORE,
    WATCH_EPISODES_KEPT,
    WATCH_SAVE_DELAY,
)
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
    Direction,
    FailureKind,
    Measurement,
    TestFailure,
    TestOutcome,
    UnreadableRecord,
    outcome_from_dict,
    read_records,
)
from .repairs import async_keep_unreadable, async_set_issue
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
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.{HISTORY_STORE}")


def _clamp_to(now: datetime, history: list[TestOutcome]) -> list[TestOutcome]:
    """The history with tests stamped after `now` moved back to end at `now`.

    A clock that was ahead when they ran (skew, a wrong NTP answer) would otherwise
    hold the next test back until that future moment and keep them as evidence for
    as long.
    """
    clamped: list[TestOutcome] = []
    for outcome in history:
        ahead = outcome.finished - now
        if ahead <= timedelta(0):
            clamped.append(outcome)
            continue
        _LOGGER.warning("A stored test ends %s from now; moved back to now", ahead)
        clamped.append(replace(outcome, started=outcome.started - ahead, finished=now))
    return clamped


@dataclass(frozen=True, slots=True, kw_only=True)
class LineSnapshot:
    """What the entities show: the latest tests and the judgement of the line."""

    last_outcome: TestOutcome | None
    last_measurement: Measurement | None
    line: LineState
    total_bytes: int
    month_bytes: int
    watch: WatchState | None = None
    """The connectivity watch between tests; None while it is off or has no server."""
    last_outage: Episode | None = None
    """The latest outage the watch saw end."""

    @property
    def last_test_failed(self) -> bool:
        """Whether the most recent test produced no valid measurement."""
        return isinstance(self.last_outcome, TestFailure)


def compliance_sample(outcome: TestOutcome) -> Sample | None:
    """A test as compliance judges it; None for what never was a speed test.

    A test whose numbers were found untrustworthy is a test that does not count; a
    test that could not run (no server, no connection) says nothing about the speed.
    """
    if isinstance(outcome, Measurement):
        return Sample(
            started=outcome.started,
            finished=outcome.finished,
            download_mbps=outcome.download_mbps,
            upload_mbps=outcome.upload_mbps,
        )
    if outcome.kind is FailureKind.INVALID_RESULT:
        return Sample(
            started=outcome.started,
            finished=outcome.finished,
            download_mbps=0.0,
            upload_mbps=0.0,
            counted=False,
        )
    return None


def campaign_sample(outcome: TestOutcome) -> Sample:
    """A campaign test as the campaign judges it.

    Every test the campaign ran is an attempt, so the next one keeps its distance; only
    a valid measurement counts as one of the 30.
    """
    sample = compliance_sample(outcome)
    if sample is not None:
        return sample
    return Sample(
        started=outcome.started,
        finished=outcome.finished,
        download_mbps=0.0,
        upload_mbps=0.0,
        counted=False,
    )


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
        self.watch_state = WatchState()
        self.episodes: list[Episode] = []
        self._probe: ConnectivityProbe | None = None
        self._watch_round: asyncio.Task[None] | None = None
        self._round_displaced = False
        self.campaign = Campaign()
        self._campaign_test = False
        self._campaign_timer: CALLBACK_TYPE | None = None
        self._month_timer: CALLBACK_TYPE | None = None

    async def async_load(self) -> None:
        """Restore the history, so the entities show the last results at once.

        A record that cannot be read (a newer version's, a damaged one) is set aside
        in a side file and reported; the rest loads.
        """
        stored: Any = await self._store.async_load()
        unreadable: list[UnreadableRecord] = []
        if stored:
            if not isinstance(stored, dict):
                stored = {"history": stored}
            history, unreadable = read_records(
                stored.get("history", []), outcome_from_dict
            )
            self.history = _clamp_to(dt_util.utcnow(), history)
            total = stored.get("total_bytes")
            if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
                self._total_bytes = total
            else:
                self._total_bytes = sum(
                    item.bytes_received + item.bytes_sent for item in self.history
                )
            self._restore_watch(stored)
            self._restore_campaign(stored)
        await async_keep_unreadable(
            self.hass, self.config_entry, HISTORY_STORE, unreadable
        )
        self._follow_test_servers()
        if self._end_campaign_that_cannot_finish(dt_util.utcnow()):
            await self._store.async_save(self._stored())
        self.async_set_updated_data(self._snapshot(dt_util.utcnow()))

    @callback
    def async_start_schedule(self, _hass: HomeAssistant) -> None:
        """Start the test schedule; called once Home Assistant has started."""
        now = dt_util.utcnow()
        self._track_month_end()
        self._arm_campaign_timer(now + STARTUP_DELAY)
        check = next_check(
            self.data.line,
            self.history,
            self.settings.thresholds,
            self.settings.schedule,
        )
        due = self.history[-1].finished + check.delay if self.history else now
        self.update_interval = max(due - now, STARTUP_DELAY)
        self._schedule_refresh()
        self._start_watch()

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
        if self._watch_round is not None:
            self._watch_round.cancel()
        for timer in (self._campaign_timer, self._month_timer):
            if timer is not None:
                timer()
        self._campaign_timer = self._month_timer = None
        await super().async_shutdown()

    @override
    async def _async_update_data(self) -> LineSnapshot:
        """Run the check that is due and judge the line again."""
        user_requested, self._user_requested = self._user_requested, False
        # A campaign test is a scheduled test at the campaign's time: it probes first
        # during an outage and respects the data budget like any other.
        campaign_test, self._campaign_test = self._campaign_test, False
        self._check_done = asyncio.Event()
        try:
            now = dt_util.utcnow()
            previous = self.data.line if self.data else None
            if not user_requested and self._over_data_budget(now):
                if campaign_test:
                    self.campaign = cancel_campaign(
                        self.campaign, now, CampaignProblem.DATA_BUDGET_EXCEEDED
                    )
                    await self._store.async_save(self._stored())
                return self._snapshot(now)
            if previous and previous.outage and not user_requested:
                failure = await self._exclusive(self.client.probe)
                if failure is not None:
                    await self._record(failure, campaign_test=campaign_test)
                    return self._snapshot(dt_util.utcnow())
                _LOGGER.debug("The connection answers again: running a full test")
            await self._record(
                await self._exclusive(self.client.run_test),
                campaign_test=campaign_test,
            )
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
            self._pause_watch()
            try:
                return await task
            finally:
                self._operation = None
                self._resume_watch()

    async def _record(self, outcome: TestOutcome, *, campaign_test: bool) -> None:
        """Keep the outcome and persist it before anyone acts on it.

        A campaign test is kept in the campaign too, in the same save, so a restart
        never finds a test in one and not in the other.
        """
        now = outcome.finished
        if campaign_test:
            self.campaign = record_test(
                self.campaign, campaign_sample(outcome), dt_util.get_default_time_zone()
            )
            self._end_campaign_that_cannot_finish(now)
        # Keep the whole month too, so the monthly data budget (a UTC month) and the
        # monthly compliance (a local month) see every test.
        month_start = min(start_of_month(now), start_of_month(dt_util.as_local(now)))
        self.history = prune_history(
            [*self.history, outcome],
            now,
            min_age=max(HISTORY_MIN_AGE, now - month_start),
            min_count=HISTORY_MIN_COUNT,
        )
        self._total_bytes += outcome.bytes_received + outcome.bytes_sent
        self._follow_test_servers()
        await self._store.async_save(self._stored())
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
            watch=self._visible_watch(),
            last_outage=self._last_outage(),
        )

    def monthly_compliance(
        self, direction: Direction, now: datetime
    ) -> MonthlyCompliance:
        """How the line kept to the contract this month, in Home Assistant's zone."""
        return monthly_compliance(
            (
                sample
                for item in self.history
                if (sample := compliance_sample(item)) is not None
            ),
            self.settings.contract.speeds(direction),
            direction,
            now,
            dt_util.get_default_time_zone(),
        )

    @callback
    def _track_month_end(self) -> None:
        """Show the new month's figures at local midnight on the first, test or not."""
        self._month_timer = self._call_at(
            next_month_start(dt_util.utcnow(), dt_util.get_default_time_zone()),
            self._on_month_end,
            "month end",
        )

    @callback
    def _on_month_end(self) -> None:
        self._track_month_end()
        self.async_update_listeners()

    @callback
    def _call_at(
        self, moment: datetime, action: Callable[[], None], name: str
    ) -> CALLBACK_TYPE:
        """Run `action` at `moment`, or soon after.

        Like the schedule's own timer, Home Assistant's stop cancels it: a stop is not
        an unload, and a timer must not outlive it.
        """
        loop = self.hass.loop
        delay = max((moment - dt_util.utcnow()).total_seconds(), 0.0)
        job = HassJob(
            action,
            f"{DOMAIN} {name} {self.config_entry.title}",
            cancel_on_shutdown=True,
        )
        return loop.call_at(
            loop.time() + delay, self.hass.async_run_hass_job, job
        ).cancel

    # -- the measurement campaign ----------------------------------------------------
    # Its tests are the coordinator's own refreshes at the times the campaign plans: a
    # campaign test is a scheduled test, so the regular schedule starts again from it.

    def campaign_progress(self, now: datetime) -> CampaignProgress:
        """Where the campaign stands, and its next tests, in Home Assistant's zone."""
        return campaign_progress(self.campaign, now, dt_util.get_default_time_zone())

    def campaign_verdict(self) -> CampaignVerdict | None:
        """The completed campaign judged against the contract; None before."""
        return campaign_verdict(
            self.campaign, self.settings.contract, dt_util.get_default_time_zone()
        )

    def campaign_summary(self) -> dict[str, Any] | None:
        """The last campaign with its verdict, JSON-safe; None before the first."""
        if self.campaign.phase is CampaignPhase.IDLE:
            return None
        verdict = self.campaign_verdict()
        return self.campaign.as_dict() | {
            "verdict": verdict.as_dict() if verdict is not None else None
        }

    def campaign_data_estimate(self) -> int:
        """The bytes a campaign's 30 tests are expected to use on this line."""
        recent = [
            item.bytes_received + item.bytes_sent
            for item in self.history
            if isinstance(item, Measurement)
        ][-CAMPAIGN_ESTIMATE_TESTS:]
        return campaign_data_estimate(recent, CAMPAIGN_FALLBACK_TEST_BYTES)

    async def async_start_campaign(self) -> None:
        """Start a measurement campaign; nothing changes when it cannot start.

        Raises:
            ServiceValidationError: A campaign is running, the contract states no
                speed to judge by, or the campaign would use more data than is left
                of this month's budget.
        """
        if self.campaign.phase is CampaignPhase.RUNNING:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="campaign_running"
            )
        if self.settings.contract == Contract():
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="campaign_without_contract"
            )
        now = dt_util.utcnow()
        if budget := self.settings.monthly_budget_bytes:
            estimate = self.campaign_data_estimate()
            left = max(budget - data_used_since(self.history, start_of_month(now)), 0)
            if estimate > left:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="campaign_over_budget",
                    translation_placeholders={
                        "estimate": f"{estimate / BYTES_PER_GB:.1f}",
                        "left": f"{left / BYTES_PER_GB:.1f}",
                        "budget": f"{budget / BYTES_PER_GB:.1f}",
                    },
                )
        self.campaign = start_campaign(self.campaign, now)
        await self._store.async_save(self._stored())
        _LOGGER.info("Measurement campaign of %s started", self.config_entry.title)
        self._arm_campaign_timer(now)
        self.async_update_listeners()

    async def async_cancel_campaign(self) -> None:
        """Cancel the running campaign; its tests stay in the history.

        Raises:
            ServiceValidationError: No campaign is running.
        """
        if self.campaign.phase is not CampaignPhase.RUNNING:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="campaign_not_running"
            )
        self.campaign = cancel_campaign(self.campaign, dt_util.utcnow())
        await self._store.async_save(self._stored())
        self._cancel_campaign_timer()
        self.async_update_listeners()

    def _end_campaign_that_cannot_finish(self, now: datetime) -> bool:
        """End a running campaign the rules no longer let finish; whether it ended."""
        problem = self.campaign_progress(now).problem
        if problem is None:
            return False
        _LOGGER.warning(
            "The measurement campaign of %s cannot finish (%s); it ended",
            self.config_entry.title,
            problem.value,
        )
        self.campaign = cancel_campaign(self.campaign, now, problem)
        return True

    @callback
    def _arm_campaign_timer(self, not_before: datetime) -> None:
        """Set the timer for the campaign's next test, if one is due at all."""
        self._cancel_campaign_timer()
        if self._shutdown_requested:
            return
        next_test = self.campaign_progress(dt_util.utcnow()).next_test
        if next_test is not None:
            self._campaign_timer = self._call_at(
                max(next_test, not_before), self._on_campaign_slot, "campaign test"
            )

    @callback
    def _cancel_campaign_timer(self) -> None:
        if self._campaign_timer is not None:
            self._campaign_timer()
            self._campaign_timer = None

    @callback
    def _on_campaign_slot(self) -> None:
        self._campaign_timer = None
        self.config_entry.async_create_task(
            self.hass,
            self._run_campaign_test(),
            f"{DOMAIN} campaign test {self.config_entry.title}",
        )

    async def _run_campaign_test(self) -> None:
        """Run the campaign's test that is due; plan the next one whatever happens."""
        now = dt_util.utcnow()
        if self._end_campaign_that_cannot_finish(now):
            await self._store.async_save(self._stored())
            self.async_update_listeners()
            return
        next_test = self.campaign_progress(now).next_test
        if next_test is None:
            return
        try:
            # A timer may fire a moment early; the rules' gaps are kept to the second.
            if next_test <= now:
                self._campaign_test = True
                await self.async_refresh()
        finally:
            self._campaign_test = False
            self._arm_campaign_timer(dt_util.utcnow())

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

    # -- the connectivity watch between tests ---------------------------------------
    # It lives here rather than in a coordinator of its own: it pauses around this
    # coordinator's tests, follows the servers they use, and shares its store and data
    # totals, so one owner keeps those in step without cross-references.

    def _stored(self) -> dict[str, Any]:
        """Everything the store keeps, in one form for the test and the watch saves."""
        return {
            "history": [item.as_dict() for item in self.history],
            "total_bytes": self._total_bytes,
            "watch": self.watch_state.as_dict(),
            "episodes": [episode.as_dict() for episode in self.episodes],
            "campaign": self.campaign.as_dict(),
        }

    def _restore_campaign(self, stored: dict[str, Any]) -> None:
        """Read the campaign back, so it goes on after a restart.

        A damaged record ends only the campaign, never the history: it reads as no
        campaign, and the user can start one again.
        """
        if (campaign := stored.get("campaign")) is None:
            return
        try:
            self.campaign = Campaign.from_dict(campaign)
        except ValueError:
            _LOGGER.warning("The stored measurement campaign was unreadable; it ended")

    def _restore_watch(self, stored: dict[str, Any]) -> None:
        """Read the watch back, so an outage across a restart keeps its start.

        A damaged or older record only costs the watch's memory, never the history.
        """
        try:
            if (watch := stored.get("watch")) is not None:
                self.watch_state = WatchState.from_dict(watch)
            self.episodes = [
                Episode.from_dict(item) for item in stored.get("episodes", [])
            ]
        except KeyError, TypeError, ValueError, AttributeError:
            _LOGGER.warning("The stored connectivity watch was unreadable; it restarts")
            self.watch_state, self.episodes = WatchState(), []

    def _follow_test_servers(self) -> None:
        """Probe the server of the latest good test and the others near it."""
        measurement = next(
            (item for item in reversed(self.history) if isinstance(item, Measurement)),
            None,
        )
        if measurement is None:
            return
        targets: list[ProbeTarget] = []
        for host in (measurement.server.host, *measurement.nearby_hosts):
            try:
                targets.append(ProbeTarget.from_host_port(host))
            except ValueError:
                continue  # an old record without hosts, or a host we cannot probe
        if not targets:
            return
        if self._probe is None:
            self._probe = ConnectivityProbe(targets)
        else:
            self._probe.set_targets(targets)

    def _visible_watch(self) -> WatchState | None:
        if self.settings.watch is None or self._probe is None:
            return None
        return self.watch_state

    def _last_outage(self) -> Episode | None:
        return next(
            (
                episode
                for episode in reversed(self.episodes)
                if episode.kind is EpisodeKind.OUTAGE
            ),
            None,
        )

    @callback
    def _start_watch(self) -> None:
        """Run probe rounds at the watch's interval unless it is off or polling is."""
        watch = self.settings.watch
        if watch is None or self.config_entry.pref_disable_polling:
            return
        self.config_entry.async_on_unload(
            async_track_time_interval(
                self.hass,
                self._on_watch_tick,
                watch.interval,
                name=f"{DOMAIN} connectivity watch",
                cancel_on_shutdown=True,
            )
        )

    @callback
    def _on_watch_tick(self, _now: datetime) -> None:
        self._start_round()

    @callback
    def _start_round(self) -> None:
        """Start a round unless one runs; during a test, run it once the test ends."""
        if self._probe is None or self._watch_round is not None:
            return
        if self.watch_state.paused:
            self._round_displaced = True
            return
        self._watch_round = self.config_entry.async_create_task(
            self.hass,
            self._run_round(self._probe),
            f"{DOMAIN} connectivity round {self.config_entry.title}",
        )

    async def _run_round(self, probe: ConnectivityProbe) -> None:
        try:
            probe_round = await probe.probe()
        finally:
            self._watch_round = None
        await self._apply_round(probe_round)

    async def _apply_round(self, probe_round: ProbeRound) -> None:
        """Judge the line by the round, keep ended episodes, and show the result."""
        watch = self.settings.watch
        if watch is None:
            return
        before = self.watch_state
        self.watch_state = step(before, probe_round.verdict, probe_round.started, watch)
        self._total_bytes += probe_round.wire_bytes
        if self.watch_state.ended:
            self.episodes = [*self.episodes, *self.watch_state.ended][
                -WATCH_EPISODES_KEPT:
            ]
        if self.watch_state.status is not before.status:
            _LOGGER.info(
                "Connectivity of %s: %s",
                self.config_entry.title,
                self.watch_state.status.value,
            )
            # A change is saved at once: an outage's start must survive a power cut.
            await self._store.async_save(self._stored())
        else:
            self._store.async_delay_save(self._stored, WATCH_SAVE_DELAY.total_seconds())
        if self.data is not None and _shown(self.watch_state) != _shown(before):
            # Only what the entities show: a round that changes nothing writes no
            # states (the probes' bytes join the totals with the next change or test).
            # Not async_set_updated_data: that would push the next test back.
            self.data = replace(
                self.data,
                total_bytes=self._total_bytes,
                watch=self._visible_watch(),
                last_outage=self._last_outage(),
            )
            self.async_update_listeners()

    def _pause_watch(self) -> None:
        """A test loads the line: rounds wait, so they neither fail nor skew it."""
        self.watch_state = pause(self.watch_state)

    def _resume_watch(self) -> None:
        """The test ended: the round it displaced runs now."""
        self.watch_state = resume(self.watch_state)
        if self._round_displaced:
            self._round_displaced = False
            self._start_round()


def _shown(state: WatchState) -> tuple[object, ...]:
    """The parts of the watch the Internet sensor shows."""
    return (state.status, state.server_problem, state.outage, state.ended)
