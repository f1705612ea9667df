"""Judge the line from the test history: slow, restored, outage; when to test next.

Everything here is a pure function of the persisted history, the user's thresholds and
the clock, so the judgement survives restarts without storage of its own and can be
replayed in tests and benchmarks exactly as Home Assistant sees it.

Why the median of several tests: one bad result says more about the house than about the
line (a download running, a busy test server, Wi-Fi noise). The median of three ignores
one outlier in either direction, while a line that really is slow drags every test down
and so the median too. A mean would let one 5 Mbit/s result pull a good line below a
limit, and "every test slow" would let one lucky result hide a slow evening.

Why hysteresis: a line that hovers around a limit would flip between slow and fine with
every test, and each flip to slow could send another complaint. The line is declared
slow at the limit but fine again only once the medians clear it by a margin and no test
of the window is past the limit: a median of three alternates on a line that alternates
between good and slow results, a clean window does not.

Why busy tests are left out: a test during which the household (or the host) moved more
than a share of the measured rate measured the house as much as the line. It is kept
and shown, but enters no window; an unknown verdict counts, as hiding a slow line would
be worse than one more slow result.

Why outages are told apart from a slow line: a failed test is not a 0 Mbit/s result.
Failures never enter a median; those that show the internet itself is unreachable open
an outage, and those that show only the test service failing are neither slow nor
outage.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
import math
import statistics
from typing import Final

from .models import FailureKind, Measurement, TestFailure, TestOutcome

# Failures that say the internet could not be reached. A black-holed line (modem up,
# upstream dead) does not refuse connections, it lets them time out, so a timeout counts
# as well: leaving it out would miss the most common real outage. A stalled test server
# also times out; that false outage ends with the next probe and test, minutes later.
OUTAGE_FAILURE_KINDS: Final = frozenset({FailureKind.CONNECTION, FailureKind.TIMEOUT})
# Failures that arise only once speedtest.net has answered (a refusal such as 403, no
# usable test server, numbers that fail validation): the internet works, the test
# service does not. They are never an outage, and they end one, so that a speedtest.net
# refusing tests after the line is back neither stretches the outage in a complaint nor
# keeps probes and full tests running every few minutes.
INTERNET_ANSWERED_FAILURE_KINDS: Final = frozenset(
    {
        FailureKind.SERVICE_UNAVAILABLE,
        FailureKind.NO_SERVER,
        FailureKind.INVALID_RESULT,
    }
)
# A cancelled test (user, shutdown) tells nothing about the line either way.

# Medians within this relative distance of a limit count as on it, so that 55 Mbit/s
# restores a 50 Mbit/s limit with a 10% margin despite 50 * 1.1 == 55.00000000000001.
_RELATIVE_TOLERANCE: Final = 1e-9


class Metric(StrEnum):
    """A quantity a speed test measures and a threshold limits."""

    DOWNLOAD = "download"
    UPLOAD = "upload"
    PING = "ping"
    JITTER = "jitter"
    LOADED_LATENCY = "loaded_latency"
    """The higher of the latencies under load while downloading and uploading."""


# Metrics where less is better: their limit is a maximum.
MAXIMUM_METRICS: Final = frozenset({Metric.PING, Metric.JITTER, Metric.LOADED_LATENCY})


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    """The limits the user accepts: at least this fast, at most this much delay.

    A limit of None is off: that metric never makes the line slow.
    """

    min_download_mbps: float
    min_upload_mbps: float
    max_ping_ms: float
    max_jitter_ms: float | None = None
    max_loaded_latency_ms: float | None = None

    def limit(self, metric: Metric) -> float | None:
        """The limit that applies to a metric; None when it has none."""
        return {
            Metric.DOWNLOAD: self.min_download_mbps,
            Metric.UPLOAD: self.min_upload_mbps,
            Metric.PING: self.max_ping_ms,
            Metric.JITTER: self.max_jitter_ms,
            Metric.LOADED_LATENCY: self.max_loaded_latency_ms,
        }[metric]


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationSettings:
    """How much evidence the judgement of the line needs.

    Attributes:
        window: Successful tests whose median is judged.
        max_age: Tests that finished longer ago than this no longer count.
        hysteresis: Relative margin by which the median of every metric that made the
            line slow must clear its limit before the line counts as fine again (0.10:
            a 50 Mbit/s minimum is restored at 55 Mbit/s, a 100 ms maximum at 90 ms).
    """

    window: int
    max_age: timedelta
    hysteresis: float

    def __post_init__(self) -> None:
        """Refuse settings under which no judgement is possible.

        Raises:
            ValueError: The window is empty or the margin is negative.
        """
        if self.window < 1:
            raise ValueError("the evaluation window needs at least one test")
        if self.hysteresis < 0:
            raise ValueError("the hysteresis margin cannot be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """The window of tests the judgement rests on, as a message to the ISP quotes it.

    Attributes:
        medians: Median of each metric over the window, among the tests that
            measured it; a metric no test of the window measured is absent (tests
            stored before jitter and latency under load were measured).
        violated: Metrics that make or keep the line slow, in Metric order: their median
            is past the limit; or, during a slow episode, their median has not yet
            cleared it by the hysteresis margin or a test of the window is still past
            it. Empty exactly when the line is judged fine.
        thresholds: The limits the medians were judged against.
        first_test: When the earliest test of the window started.
        last_test: When the latest test of the window finished.
        tests: How many tests the window holds.
    """

    medians: Mapping[Metric, float]
    violated: tuple[Metric, ...]
    thresholds: Thresholds
    first_test: datetime
    last_test: datetime
    tests: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Outage:
    """A time the internet could not be reached.

    Attributes:
        start: When the first test that could not reach the internet finished.
        end: When the first outcome that reached it again finished; None while ongoing.
    """

    start: datetime
    end: datetime | None = None

    @property
    def duration(self) -> timedelta | None:
        """How long the outage lasted; None while it goes on."""
        if self.end is None:
            return None
        return self.end - self.start


@dataclass(frozen=True, slots=True, kw_only=True)
class LineState:
    """The judgement of the line after replaying its history.

    Attributes:
        slow: Whether a slow episode is going on.
        slow_since: When the current slow episode was confirmed.
        evidence: The latest window, whether slow or not; None without enough recent
            tests. A slow episode holds while evidence is missing: it can neither be
            confirmed nor restored without it.
        outage: The ongoing outage.
        last_outage: The most recent outage that ended.
        confirm_tests_used: Tests run after the result that raised the current suspicion
            (a single result past a limit while the line is not slow); 0 without one.
        tests_needed: Successful tests still missing from the window before the line
            can be judged from medians; 0 while there is evidence.
        undecided: Whether the line cannot be called fine yet: it is not slow, the
            window is not full, and one of its tests is past a limit. Without such a
            test the line is fine until shown otherwise, however few tests there are.
    """

    slow: bool
    slow_since: datetime | None
    evidence: Evidence | None
    outage: Outage | None
    last_outage: Outage | None
    confirm_tests_used: int
    tests_needed: int
    undecided: bool


def measured_values(measurement: Measurement) -> dict[Metric, float]:
    """The metrics of one measurement; those it did not measure are absent."""
    values = {
        Metric.DOWNLOAD: measurement.download_mbps,
        Metric.UPLOAD: measurement.upload_mbps,
        Metric.PING: measurement.ping_ms,
    }
    if measurement.jitter_ms is not None:
        values[Metric.JITTER] = measurement.jitter_ms
    # Bufferbloat in either direction is what a video call suffers from.
    loaded = [
        latency
        for latency in (measurement.download_latency_ms, measurement.upload_latency_ms)
        if latency is not None
    ]
    if loaded:
        values[Metric.LOADED_LATENCY] = max(loaded)
    return values


def metrics_violated(
    values: Mapping[Metric, float], thresholds: Thresholds, margin: float = 0.0
) -> tuple[Metric, ...]:
    """The metrics on the wrong side of their limit, in Metric order.

    A metric without a limit, or without a value, is never violated.

    Args:
        values: A value per metric: one measurement, or medians.
        thresholds: The limits.
        margin: How far past its limit a value must be to count as fine: 0.1 asks
            for 10% more speed and 10% less delay.
    """
    violated: list[Metric] = []
    for metric in Metric:
        limit = thresholds.limit(metric)
        value = values.get(metric)
        if limit is None or value is None:
            continue
        if metric in MAXIMUM_METRICS:
            good = _at_most(value, limit * (1 - margin))
        else:
            good = _at_least(value, limit * (1 + margin))
        if not good:
            violated.append(metric)
    return tuple(violated)


def is_outage_failure(outcome: TestOutcome) -> bool:
    """Whether the outcome shows that the internet could not be reached."""
    return isinstance(outcome, TestFailure) and outcome.kind in OUTAGE_FAILURE_KINDS


def internet_answered(outcome: TestOutcome) -> bool:
    """Whether the outcome shows that the internet could be reached."""
    return isinstance(outcome, Measurement) or (
        outcome.kind in INTERNET_ANSWERED_FAILURE_KINDS
    )


def latest_measurement(history: Sequence[TestOutcome]) -> Measurement | None:
    """The most recent successful test, if any."""
    for outcome in reversed(history):
        if isinstance(outcome, Measurement):
            return outcome
    return None


def evaluate(
    history: Sequence[TestOutcome],
    thresholds: Thresholds,
    settings: EvaluationSettings,
    now: datetime,
) -> LineState:
    """Judge the line by replaying its whole history in order.

    The state is derived from the persisted history alone; hysteresis and the outage in
    progress come from the order of the outcomes. Each successful test re-judges the
    window that ends with it; failures never enter a window.

    Args:
        history: Test outcomes, oldest first.
        thresholds: The limits the user accepts.
        settings: How much evidence a judgement needs.
        now: The current time; the evidence shown must be within max_age of it.
    """
    replay = _Replay(thresholds, settings)
    for outcome in history:
        replay.add(outcome)
    return replay.state(now)


class _Replay:
    """The judgement while the history is replayed, one outcome at a time."""

    def __init__(self, thresholds: Thresholds, settings: EvaluationSettings) -> None:
        self._thresholds = thresholds
        self._settings = settings
        self._recent: deque[Measurement] = deque(maxlen=settings.window)
        self._slow = False
        self._slow_since: datetime | None = None
        # Every metric that was past its limit during the slow episode: each must clear
        # the margin before the episode ends, not only the one that started it.
        self._episode_metrics: set[Metric] = set()
        self._outage_start: datetime | None = None
        self._last_outage: Outage | None = None
        self._suspect = False
        self._confirm_tests_used = 0

    def add(self, outcome: TestOutcome) -> None:
        """Take the next outcome into account."""
        if is_outage_failure(outcome):
            if self._outage_start is None:
                self._outage_start = outcome.finished
            # Probes and tests that cannot reach the internet are not confirmations.
            return
        if internet_answered(outcome) and self._outage_start is not None:
            self._last_outage = Outage(start=self._outage_start, end=outcome.finished)
            self._outage_start = None
        if isinstance(outcome, Measurement) and not outcome.busy:
            self._recent.append(outcome)
            window = self._window(outcome.finished)
            if window is not None:
                self._judge(window)
            self._follow_suspicion(outcome)
        elif self._suspect:
            # A confirmation that failed, or found the line busy, still used its turn,
            # so that a failing test service or a household that streams all evening
            # cannot make the confirmations go on for ever.
            self._confirm_tests_used += 1

    def state(self, now: datetime) -> LineState:
        """The judgement after every outcome so far, seen at `now`."""
        window = self._window(now)
        max_age = self._settings.max_age
        fresh = [item for item in self._recent if now - item.finished <= max_age]
        return LineState(
            slow=self._slow,
            slow_since=self._slow_since,
            evidence=None if window is None else self._evidence(window),
            outage=None
            if self._outage_start is None
            else Outage(start=self._outage_start),
            last_outage=self._last_outage,
            confirm_tests_used=self._confirm_tests_used if self._suspect else 0,
            tests_needed=self._settings.window - len(fresh) if window is None else 0,
            undecided=(
                window is None
                and not self._slow
                and any(
                    metrics_violated(measured_values(item), self._thresholds)
                    for item in fresh
                )
            ),
        )

    def _window(self, at: datetime) -> tuple[Measurement, ...] | None:
        """The last `window` successful tests if all are recent enough at `at`."""
        if len(self._recent) < self._settings.window:
            return None
        if any(at - item.finished > self._settings.max_age for item in self._recent):
            return None
        return tuple(self._recent)

    def _judge(self, window: tuple[Measurement, ...]) -> None:
        medians = _medians(window)
        violated = metrics_violated(medians, self._thresholds)
        if not self._slow:
            if violated:
                self._slow = True
                self._slow_since = window[-1].finished
                self._episode_metrics = set(violated)
            return
        self._episode_metrics.update(violated)
        if not self._still_slow(window, medians):
            self._slow = False
            self._slow_since = None
            self._episode_metrics = set()

    def _still_slow(
        self, window: tuple[Measurement, ...], medians: Mapping[Metric, float]
    ) -> tuple[Metric, ...]:
        """Metrics of the slow episode that the window does not yet restore."""
        short = set(
            metrics_violated(medians, self._thresholds, self._settings.hysteresis)
        )
        for item in window:
            short.update(metrics_violated(measured_values(item), self._thresholds))
        return tuple(
            metric
            for metric in Metric
            if metric in short and metric in self._episode_metrics
        )

    def _follow_suspicion(self, measurement: Measurement) -> None:
        """Open, continue or close the suspicion that a single bad result raised."""
        if self._slow or not metrics_violated(
            measured_values(measurement), self._thresholds
        ):
            self._suspect = False
            self._confirm_tests_used = 0
        elif self._suspect:
            self._confirm_tests_used += 1
        else:
            self._suspect = True
            self._confirm_tests_used = 0

    def _evidence(self, window: tuple[Measurement, ...]) -> Evidence:
        medians = _medians(window)
        violated = (
            self._still_slow(window, medians)
            if self._slow
            else metrics_violated(medians, self._thresholds)
        )
        return Evidence(
            medians=medians,
            violated=violated,
            thresholds=self._thresholds,
            first_test=min(item.started for item in window),
            last_test=max(item.finished for item in window),
            tests=len(window),
        )


def _medians(window: Sequence[Measurement]) -> dict[Metric, float]:
    """The median of every metric over the tests of the window that measured it."""
    measured = [measured_values(item) for item in window]
    return {
        metric: statistics.median(values)
        for metric in Metric
        if (values := [item[metric] for item in measured if metric in item])
    }


def _at_least(value: float, limit: float) -> bool:
    return value >= limit or math.isclose(value, limit, rel_tol=_RELATIVE_TOLERANCE)


def _at_most(value: float, limit: float) -> bool:
    return value <= limit or math.isclose(value, limit, rel_tol=_RELATIVE_TOLERANCE)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleSettings:
    """When tests and probes run.

    Attributes:
        interval: Time between regular full tests.
        confirm_delay: Time before a test that confirms a single bad result.
        max_confirm_tests: Confirmation tests at most per suspicion; afterwards the
            regular interval applies again, so a noisy line cannot eat the data plan.
        outage_probe_interval: Time between cheap probes while the internet is down.
    """

    interval: timedelta
    confirm_delay: timedelta
    max_confirm_tests: int
    outage_probe_interval: timedelta


class CheckKind(StrEnum):
    """What the next check does."""

    FULL_TEST = "full_test"
    PROBE = "probe"


@dataclass(frozen=True, slots=True, kw_only=True)
class NextCheck:
    """The next check: what, how long after the latest outcome, and why."""

    kind: CheckKind
    delay: timedelta
    reason: str


def next_check(
    state: LineState,
    history: Sequence[TestOutcome],
    thresholds: Thresholds,
    schedule: ScheduleSettings,
) -> NextCheck:
    """Decide the next check: probe an outage, confirm a suspicion sooner, or wait.

    A single result past a limit is only a suspicion; confirming it within minutes
    instead of hours shortens the time to a judgement, and the bound on confirmation
    tests keeps a line that is merely noisy from using much more data than usual.

    Args:
        state: The judgement of the line from evaluate().
        history: The same history, oldest first.
        thresholds: The same thresholds evaluate() used.
        schedule: The user's timing.
    """
    if state.outage is not None:
        return NextCheck(
            kind=CheckKind.PROBE,
            delay=schedule.outage_probe_interval,
            reason=(
                f"outage since {state.outage.start.isoformat(timespec='minutes')}: "
                "probing until the internet answers"
            ),
        )
    # A busy test is no suspicion: it measured the household as much as the line.
    latest = latest_measurement(
        [item for item in history if not (isinstance(item, Measurement) and item.busy)]
    )
    if not state.slow and latest is not None:
        violated = metrics_violated(measured_values(latest), thresholds)
        if violated and state.confirm_tests_used < schedule.max_confirm_tests:
            metrics = ", ".join(violated)
            return NextCheck(
                kind=CheckKind.FULL_TEST,
                delay=min(schedule.confirm_delay, schedule.interval),
                reason=(
                    f"confirming {metrics} past the limit: confirmation test "
                    f"{state.confirm_tests_used + 1} of {schedule.max_confirm_tests}"
                ),
            )
    return NextCheck(
        kind=CheckKind.FULL_TEST, delay=schedule.interval, reason="regular test"
    )


def data_used_since(history: Sequence[TestOutcome], since: datetime) -> int:
    """Bytes received and sent by the tests and probes finished at or after `since`."""
    return sum(
        outcome.bytes_received + outcome.bytes_sent
        for outcome in history
        if outcome.finished >= since
    )


def start_of_month(now: datetime) -> datetime:
    """Midnight on the first day of `now`'s month, in `now`'s own time zone.

    The coordinator passes UTC, so monthly data budgets run from UTC month to UTC month:
    up to a day off the calendar month of a user far from UTC, which a budget tolerates.

    Raises:
        ValueError: `now` has no time zone.
    """
    if now.tzinfo is None:
        raise ValueError("start_of_month needs an aware datetime")
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.tzinfo is UTC:
        return start
    # Round-trip through UTC so a fixed offset or DST change resolves to a real instant.
    return start.astimezone(UTC).astimezone(now.tzinfo)


def prune_history(
    history: Sequence[TestOutcome],
    now: datetime,
    *,
    min_age: timedelta,
    min_count: int,
) -> list[TestOutcome]:
    """The outcomes worth keeping, oldest first.

    Keeps every outcome that finished within `min_age` of `now`, and at least the last
    `min_count` outcomes, whichever keeps more: the recent week for the sensors and the
    monthly data total, and enough tests for a judgement after a long quiet time.
    """
    cutoff = now - min_age
    first_kept_by_count = len(history) - min_count
    return [
        outcome
        for index, outcome in enumerate(history)
        if index >= first_kept_by_count or outcome.finished >= cutoff
    ]
