"""Synthetic traces of a home internet line, for the replay benchmark.

A trace is the truth about a line over some days: its capacity hour by hour, when it
was down, when speedtest.net refused tests, and when someone in the house was using
the line. A test run at a given time draws its numbers from that truth with a seeded
random generator, so every run of the benchmark sees the same results.

Household use comes in sessions (a film, a game update) that last minutes, not single
samples: a test repeated ten minutes later often falls into the same session. That is
what makes quick confirmations harder than independent noise would suggest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import random

from custom_components.isp_watch.const import OPTION_DEFAULTS
from custom_components.isp_watch.data import IspWatchSettings
from custom_components.isp_watch.models import (
    FailureKind,
    Measurement,
    TestFailure,
    TestOutcome,
    TestServer,
)

PLAN_DOWNLOAD_MBPS = 100.0
PLAN_UPLOAD_MBPS = 20.0
BASE_PING_MS = 14.0
# What a new entry runs with, read as the integration reads it.
SHIPPED = IspWatchSettings.from_config({}, OPTION_DEFAULTS)
LIMITS = SHIPPED.thresholds
SERVER = TestServer(
    id=4242, name="Springfield", sponsor="Example Fiber", country="US", distance_km=12.5
)
# speedtest-cli downloads for ~10 s and uploads for ~10 s at line rate.
TEST_PHASE_SECONDS = 10
TEST_DURATION = timedelta(seconds=25)
# A probe fetches only the speedtest.net configuration.
PROBE_BYTES = 5_000
PROBE_DURATION = timedelta(seconds=2)
REFUSAL_BYTES = 1_500
# A test server that is busy drags a test down now and then, more often in the evening.
BUSY_SERVER_PROBABILITY = 0.02
EVENING_BUSY_SERVER_PROBABILITY = 0.05
DAY = timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class Span:
    """A stretch of time, start included, end excluded."""

    start: datetime
    end: datetime

    def holds(self, moment: datetime) -> bool:
        """Whether the moment falls in the span."""
        return self.start <= moment < self.end

    @property
    def duration(self) -> timedelta:
        """How long the span lasts."""
        return self.end - self.start


@dataclass(frozen=True, kw_only=True)
class Degradation(Span):
    """The line delivering only part of its plan for a while."""

    factor: float
    extra_ping_ms: float = 0.0

    @property
    def below_limits(self) -> bool:
        """Whether the line is truly below the user's limits: a complaint is due."""
        return (
            PLAN_DOWNLOAD_MBPS * self.factor < LIMITS.min_download_mbps
            or PLAN_UPLOAD_MBPS * self.factor < LIMITS.min_upload_mbps
            or BASE_PING_MS + self.extra_ping_ms > LIMITS.max_ping_ms
        )


@dataclass(kw_only=True)
class Line:
    """The truth about a line over a trace, and tests drawn from it."""

    name: str
    start: datetime
    end: datetime
    rng: random.Random
    degradations: list[Degradation] = field(default_factory=list)
    outages: list[Span] = field(default_factory=list)
    refusals: list[Span] = field(default_factory=list)
    household: list[Span] = field(default_factory=list)

    @property
    def slow_episodes(self) -> list[Degradation]:
        """The times a complaint about a slow line is due."""
        return [item for item in self.degradations if item.below_limits]

    def is_down(self, moment: datetime) -> bool:
        """Whether the internet is unreachable at that moment."""
        return any(span.holds(moment) for span in self.outages)

    def full_test(self, at: datetime) -> TestOutcome:
        """The outcome of a whole speed test started at `at`."""
        if self.is_down(at):
            return _failure(FailureKind.CONNECTION, at, timedelta(seconds=3), 0)
        if any(span.holds(at) for span in self.refusals):
            return _failure(
                FailureKind.SERVICE_UNAVAILABLE, at, timedelta(seconds=1), REFUSAL_BYTES
            )
        return self._measure(at)

    def probe(self, at: datetime) -> TestFailure | None:
        """The outcome of a probe started at `at`: None when the internet answers."""
        if self.is_down(at):
            return _failure(FailureKind.CONNECTION, at, PROBE_DURATION, 0)
        if any(span.holds(at) for span in self.refusals):
            return _failure(
                FailureKind.SERVICE_UNAVAILABLE, at, PROBE_DURATION, REFUSAL_BYTES
            )
        return None

    def _measure(self, at: datetime) -> Measurement:
        rng = self.rng
        factor, extra_ping = 1.0, 0.0
        for item in self.degradations:
            if item.holds(at):
                factor, extra_ping = item.factor, item.extra_ping_ms
        download = PLAN_DOWNLOAD_MBPS * factor * rng.uniform(0.82, 0.98)
        upload = PLAN_UPLOAD_MBPS * factor * rng.uniform(0.85, 0.98)
        ping = BASE_PING_MS + extra_ping + rng.expovariate(1 / 3)
        if any(span.holds(at) for span in self.household):
            download *= rng.uniform(0.3, 0.55)
            upload *= rng.uniform(0.8, 1.0)
            ping += rng.uniform(5, 40)
        busy = (
            EVENING_BUSY_SERVER_PROBABILITY
            if _is_evening(at)
            else BUSY_SERVER_PROBABILITY
        )
        if rng.random() < busy:
            download *= rng.uniform(0.4, 0.7)
            upload *= rng.uniform(0.5, 0.9)
            ping += rng.uniform(40, 140)
        return Measurement(
            download_mbps=round(download, 2),
            upload_mbps=round(upload, 2),
            ping_ms=round(ping, 1),
            bytes_received=int(download * 1_000_000 * TEST_PHASE_SECONDS / 8),
            bytes_sent=int(upload * 1_000_000 * TEST_PHASE_SECONDS / 8),
            server=SERVER,
            isp="Example Fiber",
            started=at,
            finished=at + TEST_DURATION,
        )


def _is_evening(moment: datetime) -> bool:
    return 20 <= moment.hour < 23


def _failure(
    kind: FailureKind, at: datetime, duration: timedelta, used: int
) -> TestFailure:
    return TestFailure(
        kind=kind,
        reason=f"synthetic {kind.value}",
        started=at,
        finished=at + duration,
        bytes_received=used,
    )


def _household_sessions(
    rng: random.Random,
    start: datetime,
    days: int,
    evening_per_hour: float,
    day_per_hour: float = 0.05,
) -> list[Span]:
    """Sessions of heavy use in the house: frequent in the evening, rare by day."""
    sessions: list[Span] = []
    minute = timedelta(minutes=1)
    moment = start
    while moment < start + days * DAY:
        if _is_evening(moment):
            rate = evening_per_hour
        elif 7 <= moment.hour < 20:
            rate = day_per_hour
        else:
            rate = day_per_hour / 5
        if rng.random() < rate / 60:
            length = timedelta(minutes=rng.uniform(5, 30))
            sessions.append(Span(start=moment, end=moment + length))
        moment += minute
    return sessions


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return TRACE_START + day * DAY + timedelta(hours=hour, minutes=minute)


TRACE_START = datetime(2026, 3, 2, tzinfo=UTC)


def evening_congestion(seed: int) -> Line:
    """Seven days of busy evenings: slow single results, and one evening truly slow.

    From 20:00 to 23:00 the shared network gives 80% of the plan (still well above
    the limits), test servers are busier and the house downloads more, so now and then
    a single test falls below the limit: a few per week at hourly tests.
    On day 5 the line delivers 35% of the plan from 19:30 to 23:30: that one is due.
    """
    rng = random.Random(seed)
    days = 7
    congestion = [
        Degradation(start=_at(day, 20), end=_at(day, 23), factor=0.8)
        for day in range(days)
        if day != 4
    ]
    slow_evening = Degradation(
        start=_at(4, 19, 30), end=_at(4, 23, 30), factor=0.35, extra_ping_ms=20
    )
    return Line(
        name="evening congestion",
        start=TRACE_START,
        end=TRACE_START + days * DAY,
        rng=rng,
        degradations=[*congestion, slow_evening],
        household=_household_sessions(rng, TRACE_START, days, evening_per_hour=0.3),
    )


def degradation(seed: int) -> Line:
    """Three days with a 4-hour degradation to 30% of the plan on day 2."""
    rng = random.Random(seed)
    days = 3
    return Line(
        name="4-h degradation",
        start=TRACE_START,
        end=TRACE_START + days * DAY,
        rng=rng,
        degradations=[
            Degradation(start=_at(1, 9), end=_at(1, 13), factor=0.3, extra_ping_ms=30)
        ],
        household=_household_sessions(rng, TRACE_START, days, evening_per_hour=0.2),
    )


def outages(seed: int) -> Line:
    """Three days with four short outages, one of 2 h, and speedtest.net refusing.

    speedtest.net answers 403 for 90 minutes on day 2: the internet works, so no
    outage complaint is due.
    """
    rng = random.Random(seed)
    days = 3
    minutes = [(0, 3, 10, 5), (0, 14, 40, 12), (1, 10, 5, 20), (1, 16, 30, 8)]
    short = [
        Span(start=_at(day, hour, minute), end=_at(day, hour, minute + length))
        for day, hour, minute, length in minutes
    ]
    long = Span(start=_at(2, 1, 0), end=_at(2, 3, 0))
    return Line(
        name="outages",
        start=TRACE_START,
        end=TRACE_START + days * DAY,
        rng=rng,
        outages=[*short, long],
        refusals=[Span(start=_at(1, 20), end=_at(1, 21, 30))],
        household=_household_sessions(rng, TRACE_START, days, evening_per_hour=0.2),
    )


SCENARIOS = (evening_congestion, degradation, outages)
