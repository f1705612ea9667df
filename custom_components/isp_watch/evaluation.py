"""Decide from the test history whether the line is slow or down, and when to test next.

The judgement is a pure replay of the persisted history, oldest first, so the state
survives restarts without being stored itself and is the same however often it is
computed.

Why a median over several tests: one test can be dragged down by a download in the
house or a busy test server; the median of three ignores one such outlier in either
direction. Why hysteresis: a line hovering around a limit would otherwise switch
between slow and fine with every test and produce one complaint per switch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from statistics import median

from .speedtest_client import FailureKind, Measurement, TestFailure, TestOutcome

# Failures that mean the internet itself is unreachable. A speedtest.net that answers
# 403/5xx (SERVICE_UNAVAILABLE) or numbers that fail validation (INVALID_RESULT) prove
# the line works, so they are never an outage. A test that times out or finds no
# reachable server on a line that cannot even fetch the configuration is already a
# CONNECTION failure, so TIMEOUT and NO_SERVER alone do not start an outage either.
OUTAGE_KINDS = frozenset({FailureKind.CONNECTION})


class Metric(StrEnum):
    """What a speed test measures."""

    DOWNLOAD = "download"
    UPLOAD = "upload"
    PING = "ping"


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    """The worst the user accepts."""

    min_download_mbps: float
    min_upload_mbps: float
    max_ping_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationSettings:
    """How much evidence a judgement needs."""

    window: int = 3
    max_age: timedelta = timedelta(hours=6)
    hysteresis: float = 0.10


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """The medians of the latest window of tests, and what they violate."""

    medians: Mapping[Metric, float]
    violated: tuple[Metric, ...]
    thresholds: Thresholds
    first_test: datetime
    last_test: datetime
    tests: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Outage:
    """A time the internet could not be reached."""

    start: datetime
    end: datetime | None = None

    @property
    def duration(self) -> timedelta | None:
        """How long it lasted; None while it goes on."""
        return None if self.end is None else self.end - self.start


@dataclass(frozen=True, slots=True, kw_only=True)
class LineState:
    """The judgement of the line after the whole history."""

    slow: bool
    slow_since: datetime | None
    evidence: Evidence | None
    outage: Outage | None
    last_outage: Outage | None
    confirm_tests_used: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleSettings:
    """How often the line is tested and probed."""

    interval: timedelta = timedelta(minutes=60)
    confirm_delay: timedelta = timedelta(minutes=10)
    max_confirm_tests: int = 2
    outage_probe_interval: timedelta = timedelta(minutes=2)


class CheckKind(StrEnum):
    """What the next check is."""

    FULL_TEST = "full_test"
    PROBE = "probe"


@dataclass(frozen=True, slots=True, kw_only=True)
class NextCheck:
    """When to check the line next, and how."""

    kind: CheckKind
    delay: timedelta
    reason: str


def violations(
    measurement_medians: Mapping[Metric, float],
    thresholds: Thresholds,
    margin: float = 0.0,
) -> tuple[Metric, ...]:
    """The metrics on the wrong side of their limit, moved by a relative margin."""
    violated: list[Metric] = []
    if measurement_medians[Metric.DOWNLOAD] < thresholds.min_download_mbps * (
        1 + margin
    ):
        violated.append(Metric.DOWNLOAD)
    if measurement_medians[Metric.UPLOAD] < thresholds.min_upload_mbps * (1 + margin):
        violated.append(Metric.UPLOAD)
    if measurement_medians[Metric.PING] > thresholds.max_ping_ms * (1 - margin):
        violated.append(Metric.PING)
    return tuple(violated)


def _medians(window: Sequence[Measurement]) -> dict[Metric, float]:
    return {
        Metric.DOWNLOAD: median(item.download_mbps for item in window),
        Metric.UPLOAD: median(item.upload_mbps for item in window),
        Metric.PING: median(item.ping_ms for item in window),
    }


def _below_thresholds(measurement: Measurement, thresholds: Thresholds) -> bool:
    return bool(
        violations(
            {
                Metric.DOWNLOAD: measurement.download_mbps,
                Metric.UPLOAD: measurement.upload_mbps,
                Metric.PING: measurement.ping_ms,
            },
            thresholds,
        )
    )


def evaluate(
    history: Sequence[TestOutcome],
    thresholds: Thresholds,
    settings: EvaluationSettings,
    now: datetime,
) -> LineState:
    """Replay the history and judge the line as of `now`."""
    slow = False
    slow_since: datetime | None = None
    evidence: Evidence | None = None
    outage: Outage | None = None
    last_outage: Outage | None = None
    confirm_tests_used = 0
    suspicious = False
    recent: list[Measurement] = []

    for outcome in history:
        if isinstance(outcome, TestFailure):
            if outcome.kind in OUTAGE_KINDS and outage is None:
                outage = Outage(start=outcome.finished)
            continue
        if outage is not None:
            last_outage = Outage(start=outage.start, end=outcome.finished)
            outage = None
        recent = [
            item
            for item in [*recent, outcome][-settings.window :]
            if outcome.finished - item.finished <= settings.max_age
        ]
        below = _below_thresholds(outcome, thresholds)
        if not slow and suspicious and below:
            confirm_tests_used += 1
        elif not slow:
            confirm_tests_used = 0
        suspicious = below and not slow
        evidence = None
        if len(recent) < settings.window:
            continue
        medians = _medians(recent)
        violated = violations(medians, thresholds)
        evidence = Evidence(
            medians=medians,
            violated=violated,
            thresholds=thresholds,
            first_test=recent[0].finished,
            last_test=recent[-1].finished,
            tests=len(recent),
        )
        if not slow and violated:
            slow, slow_since, suspicious, confirm_tests_used = (
                True,
                outcome.finished,
                False,
                0,
            )
        elif slow and not violations(medians, thresholds, settings.hysteresis):
            slow, slow_since = False, None

    if evidence is not None and now - evidence.last_test > settings.max_age:
        evidence = None
    return LineState(
        slow=slow,
        slow_since=slow_since,
        evidence=evidence,
        outage=outage,
        last_outage=last_outage,
        confirm_tests_used=confirm_tests_used if suspicious else 0,
    )


def next_check(
    state: LineState,
    history: Sequence[TestOutcome],
    thresholds: Thresholds,
    schedule: ScheduleSettings,
) -> NextCheck:
    """When and how to check next: probe in an outage, confirm a suspicion sooner."""
    if state.outage is not None:
        return NextCheck(
            kind=CheckKind.PROBE,
            delay=schedule.outage_probe_interval,
            reason="outage",
        )
    last = history[-1] if history else None
    if (
        isinstance(last, Measurement)
        and not state.slow
        and _below_thresholds(last, thresholds)
        and state.confirm_tests_used < schedule.max_confirm_tests
    ):
        return NextCheck(
            kind=CheckKind.FULL_TEST,
            delay=schedule.confirm_delay,
            reason="confirm a slow result",
        )
    return NextCheck(
        kind=CheckKind.FULL_TEST, delay=schedule.interval, reason="schedule"
    )


def data_used_since(history: Sequence[TestOutcome], since: datetime) -> int:
    """Bytes received and sent by the tests that finished at or after `since`."""
    return sum(
        outcome.bytes_received + outcome.bytes_sent
        for outcome in history
        if outcome.finished >= since
    )


def start_of_month(now: datetime) -> datetime:
    """The first instant of the month of `now`, in UTC.

    UTC rather than local time: a budget that resets a few hours off local midnight
    on the first of the month makes no practical difference, and UTC never repeats
    or skips an hour.
    """
    utc = now.astimezone(UTC)
    return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def prune_history(
    history: Sequence[TestOutcome],
    now: datetime,
    *,
    min_age: timedelta = timedelta(days=7),
    min_count: int = 500,
) -> list[TestOutcome]:
    """Keep every outcome younger than `min_age` and at least the last `min_count`."""
    keep_from = max(len(history) - min_count, 0)
    for index, outcome in enumerate(history):
        if index >= keep_from or now - outcome.finished <= min_age:
            return list(history[index:])
    return []
