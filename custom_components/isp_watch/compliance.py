"""Hold the line to its contract: contract speeds, monthly compliance, a campaign.

Regulation (EU) 2015/2120 makes a fixed-line contract state a maximum (advertised),
a normally available and a minimum speed per direction. Germany's Bundesnetzagentur
(general ruling 99/2021) says when the line deviates from them: in a campaign of 30
measurements, 10 on each of 3 calendar days, where

- (a) 90 % of the maximum is not reached at least once on at least 2 of the 3 days, or
- (b) the normally available speed is not reached in 90 % of the measurements, or
- (c) the minimum is undercut on at least 2 of the 3 days,

separately for download and upload. The days lie within 14 calendar days with at least
one calendar day between two measuring days; measurements are at least 5 minutes apart,
and the 5th and 6th of a day at least 3 hours apart.

Everything here is a pure function of its arguments, like evaluation.py: the monthly
figures are replayed from the history, and the campaign is a small value that the glue
stores as a plain dict and hands back together with the clock. Nothing here reads the
clock, a file or Home Assistant, so every rule can be tested at any date and in any
time zone.

Why all arithmetic on instants runs in UTC: subtracting two datetimes that share one
ZoneInfo gives the difference of their wall clocks, which is an hour off across a
daylight-saving change. Calendar questions (which day, which month) are asked in the
user's time zone, elapsed time in UTC.

ISP Watch measures against speedtest.net servers, not with the regulator's own tool, so
a campaign here is an indication of a deviation, not the legal proof.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
import itertools
import math
from typing import Any, Final, Self, cast

from .models import Direction, Stored, from_json

# --- the regulator's rules (general ruling 99/2021) ---------------------------------
CAMPAIGN_DAYS: Final = 3
TESTS_PER_DAY: Final = 10
CAMPAIGN_TESTS: Final = CAMPAIGN_DAYS * TESTS_PER_DAY
# The first and the last measuring day lie within this many calendar days, both counted.
CAMPAIGN_WINDOW_DAYS: Final = 14
# Whole calendar days without measurement between two measuring days.
REST_DAYS: Final = 1
MIN_GAP: Final = timedelta(minutes=5)
# The 6th test of a day waits this long after the 5th: half the day's tests fall in
# another part of the day.
MIDDAY_GAP: Final = timedelta(hours=3)
MIDDAY_GAP_BEFORE_TEST: Final = 6
# (a) share of the maximum a test must reach, and on how many days none may reach it.
MAXIMUM_SHARE: Final = 0.9
FAILED_DAYS_FOR_DEVIATION: Final = 2
# (b) share of tests that must reach the normally available speed.
NORMALLY_AVAILABLE_SHARE: Final = 0.9

# --- how ISP Watch spreads a day (our choice within the rules) ----------------------
# Local wall-clock times of a measuring day's 10 tests: a daytime block and an evening
# block, so that the evening peak, when lines are slowest, is part of every day. The
# 4 hours between the blocks leave the 3-hour rule an hour for a late 5th test.
DAY_PLAN: Final = (
    time(7, 0),
    time(8, 30),
    time(10, 0),
    time(11, 30),
    time(13, 0),
    time(17, 0),
    time(18, 30),
    time(20, 0),
    time(21, 30),
    time(23, 0),
)
# A new measuring day begins today only up to this long after the day plan's first
# time: a restart just after 07:00 should not cost a day, but a day begun at noon would
# squeeze its daytime block into minutes.
LATE_START_GRACE: Final = timedelta(hours=1)
# The last test of a day starts at least this long before midnight, so that it also
# ends on the same calendar day.
DAY_END_MARGIN: Final = timedelta(minutes=15)

# Speeds within this relative distance of a limit count as reaching it: exactly 90 % of
# the maximum reaches it although 0.9 * 70 == 63.00000000000001.
_RELATIVE_TOLERANCE: Final = 1e-9


# --- contract speeds ----------------------------------------------------------------


class ContractField(StrEnum):
    """A speed the contract states for one direction."""

    MAXIMUM = "maximum"
    NORMALLY_AVAILABLE = "normally_available"
    MINIMUM = "minimum"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractSpeeds:
    """The speeds the contract states for one direction, in Mbit/s; None when unknown.

    Attributes:
        maximum_mbps: The maximum (advertised) speed.
        normally_available_mbps: The speed normally available.
        minimum_mbps: The minimum speed.
    """

    maximum_mbps: float | None = None
    normally_available_mbps: float | None = None
    minimum_mbps: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Contract:
    """The contract's speeds for both directions."""

    download: ContractSpeeds = ContractSpeeds()
    upload: ContractSpeeds = ContractSpeeds()

    def speeds(self, direction: Direction) -> ContractSpeeds:
        """The speeds for one direction."""
        return self.download if direction is Direction.DOWNLOAD else self.upload


def contract_error(speeds: ContractSpeeds) -> ContractField | None:
    """The field that breaks minimum ≤ normally available ≤ maximum; None if none does.

    Unset speeds are skipped, so a minimum above the maximum is caught without a
    normally available speed between them. The field named is the lower one of the
    pair out of order: the maximum is the figure printed in the advertisement and so
    the one least likely mistyped.
    """
    ordered = (
        (ContractField.MINIMUM, speeds.minimum_mbps),
        (ContractField.NORMALLY_AVAILABLE, speeds.normally_available_mbps),
        (ContractField.MAXIMUM, speeds.maximum_mbps),
    )
    known = [(field, value) for field, value in ordered if value is not None]
    for (field, value), (_, higher) in itertools.pairwise(known):
        if value > higher:
            return field
    return None


# --- test results -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample(Stored):
    """One speed test as compliance sees it; the glue adapts the history to it.

    Attributes:
        started: When the test started (aware).
        finished: When it finished (aware).
        download_mbps: Download speed measured.
        upload_mbps: Upload speed measured.
        counted: Whether the test counts: valid, and the line was not busy with other
            traffic as far as that is known.
    """

    started: datetime
    finished: datetime
    download_mbps: float
    upload_mbps: float
    counted: bool = True

    def __post_init__(self) -> None:
        """Refuse a speed no test can measure, as damaged stored data may hold.

        Raises:
            ValueError: A speed is negative or not finite.
        """
        for speed in (self.download_mbps, self.upload_mbps):
            if not math.isfinite(speed) or speed < 0:
                raise ValueError(f"speed out of range: {speed!r}")

    def speed(self, direction: Direction) -> float:
        """The speed measured in one direction."""
        return (
            self.download_mbps if direction is Direction.DOWNLOAD else self.upload_mbps
        )


def reaches(speed: float, limit: float) -> bool:
    """Whether a measured speed is at or above a limit, tolerating rounding."""
    return speed >= limit or math.isclose(speed, limit, rel_tol=_RELATIVE_TOLERANCE)


# --- monthly compliance -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MonthlyCompliance:
    """How one direction kept to the contract in one calendar month.

    Shares are percentages of the counted tests. A figure is None when the contract
    speed it needs is not set, or (shares only) when no test counted yet.

    Attributes:
        direction: The direction judged.
        month_start: Local midnight on the first day of the month.
        tests: Tests that counted.
        excluded: Tests of the month that did not count (invalid, or the line busy).
        reached_maximum_percent: Share reaching 90 % of the maximum.
        reached_maximum: Number of those tests.
        reached_normally_available_percent: Share reaching the normally available speed.
        reached_normally_available: Number of those tests.
        below_minimum: Tests below the minimum.
        first_test: When the first counted test of the month finished.
        last_test: When the last counted test of the month finished.
    """

    direction: Direction
    month_start: datetime
    tests: int
    excluded: int
    reached_maximum_percent: float | None
    reached_maximum: int | None
    reached_normally_available_percent: float | None
    reached_normally_available: int | None
    below_minimum: int | None
    first_test: datetime | None
    last_test: datetime | None


def monthly_compliance(
    samples: Iterable[Sample],
    speeds: ContractSpeeds,
    direction: Direction,
    now: datetime,
    tz: tzinfo,
) -> MonthlyCompliance:
    """Judge the tests of `now`'s calendar month in `tz` against the contract.

    A test belongs to the month in which it finished, in local time: the figures start
    again at local midnight on the first, not at midnight UTC.

    Args:
        samples: The history, in any order.
        speeds: The contract's speeds for the direction.
        direction: Which speed of each test is judged.
        now: The current time (aware).
        tz: Home Assistant's time zone.
    """
    local_now = now.astimezone(tz)
    month = (local_now.year, local_now.month)
    in_month = [
        sample
        for sample in samples
        if (sample.finished.astimezone(tz).year, sample.finished.astimezone(tz).month)
        == month
    ]
    counted = sorted(
        (sample for sample in in_month if sample.counted),
        key=lambda sample: sample.finished,
    )
    values = [sample.speed(direction) for sample in counted]

    def count_reaching(limit: float | None) -> int | None:
        if limit is None:
            return None
        return sum(reaches(value, limit) for value in values)

    def share(count: int | None) -> float | None:
        if count is None or not values:
            return None
        return 100 * count / len(values)

    maximum, normal, minimum = (
        speeds.maximum_mbps,
        speeds.normally_available_mbps,
        speeds.minimum_mbps,
    )
    reached_maximum = count_reaching(
        None if maximum is None else maximum * MAXIMUM_SHARE
    )
    reached_normal = count_reaching(normal)
    return MonthlyCompliance(
        direction=direction,
        month_start=_local_midnight(date(*month, 1), tz),
        tests=len(counted),
        excluded=len(in_month) - len(counted),
        reached_maximum_percent=share(reached_maximum),
        reached_maximum=reached_maximum,
        reached_normally_available_percent=share(reached_normal),
        reached_normally_available=reached_normal,
        below_minimum=None
        if minimum is None
        else sum(not reaches(value, minimum) for value in values),
        first_test=counted[0].finished if counted else None,
        last_test=counted[-1].finished if counted else None,
    )


def next_month_start(now: datetime, tz: tzinfo) -> datetime:
    """Local midnight on the first of the month after `now`'s, when figures restart."""
    local_now = now.astimezone(tz)
    year, month = divmod(local_now.year * 12 + local_now.month, 12)
    return _local_midnight(date(year, month + 1, 1), tz)


# --- the measurement campaign -------------------------------------------------------


class CampaignPhase(StrEnum):
    """Where a campaign stands."""

    IDLE = "idle"
    RUNNING = "running"
    COMPLETE = "complete"
    CANCELLED = "cancelled"


class CampaignProblem(StrEnum):
    """Why a campaign ended without a verdict; a translation key for the glue."""

    CANCELLED_BY_USER = "cancelled_by_user"
    # Missed tests pushed the remaining measuring days past the 14-day window.
    WINDOW_EXCEEDED = "window_exceeded"
    # The monthly data budget was used up while campaign tests were due.
    DATA_BUDGET_EXCEEDED = "data_budget_exceeded"


@dataclass(frozen=True, slots=True, kw_only=True)
class Campaign(Stored):
    """A measurement campaign, as stored between restarts.

    The plan is not stored: it follows from the measurements, the clock and the rules
    every time it is asked for, so a restart, a missed test or a daylight-saving change
    never leaves a stale plan behind.

    Attributes:
        phase: Where the campaign stands.
        started: When it was started.
        ended: When it completed or was cancelled.
        measurements: Tests accepted into the campaign, oldest first. Kept here, not
            looked up in the history, because the history may be pruned before a
            campaign of up to 14 days ends.
        last_attempt: When the latest campaign test finished, accepted or not; the
            next one keeps the minimum gap to it.
        problem: Why the campaign was cancelled.
    """

    phase: CampaignPhase = CampaignPhase.IDLE
    started: datetime | None = None
    ended: datetime | None = None
    measurements: tuple[Sample, ...] = ()
    last_attempt: datetime | None = None
    problem: CampaignProblem | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The campaign that as_dict() stored.

        Raises:
            ValueError: The data is not a stored campaign (damaged or foreign).
        """
        try:
            return cast("Self", from_json(cls, data))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"not a stored campaign: {err!r}") from err


def start_campaign(campaign: Campaign, now: datetime) -> Campaign:
    """A new running campaign in place of an idle, complete or cancelled one.

    Raises:
        ValueError: The campaign is still running; starting again would throw away
            its measurements.
    """
    if campaign.phase is CampaignPhase.RUNNING:
        raise ValueError("a campaign is already running")
    return Campaign(phase=CampaignPhase.RUNNING, started=now.astimezone(UTC))


def cancel_campaign(
    campaign: Campaign,
    now: datetime,
    problem: CampaignProblem = CampaignProblem.CANCELLED_BY_USER,
) -> Campaign:
    """The campaign cancelled; one that is not running stays as it is."""
    if campaign.phase is not CampaignPhase.RUNNING:
        return campaign
    return replace(
        campaign,
        phase=CampaignPhase.CANCELLED,
        ended=now.astimezone(UTC),
        problem=problem,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignProgress:
    """Where a running campaign stands and what comes next.

    Attributes:
        tests_per_day: Accepted tests per measuring day, in date order: while running,
            the days that still count (complete, or today's if it can still be
            completed); afterwards, every day measured on.
        next_test: When the next campaign test should start; None when none is due
            (not running, or it cannot finish).
        planned: Every remaining test's planned start, in order, in `tz`: the rest of
            today's measuring day, then the earliest days the rules allow.
        problem: Why the campaign cannot finish; the glue cancels it with this.
    """

    tests_per_day: tuple[tuple[date, int], ...]
    next_test: datetime | None
    planned: tuple[datetime, ...]
    problem: CampaignProblem | None


def campaign_data_estimate(recent_test_bytes: Sequence[int], fallback: int) -> int:
    """The data a whole campaign's tests will use, in bytes.

    Args:
        recent_test_bytes: What each of the latest valid tests received and sent.
        fallback: What one test is taken to use while there is none to go by.
    """
    if not recent_test_bytes:
        return CAMPAIGN_TESTS * fallback
    return math.ceil(CAMPAIGN_TESTS * sum(recent_test_bytes) / len(recent_test_bytes))


def plan_campaign(start: datetime, tz: tzinfo) -> tuple[datetime, ...]:
    """The 30 planned test starts of a campaign started at `start`, in `tz`."""
    return campaign_progress(start_campaign(Campaign(), start), start, tz).planned


def campaign_progress(
    campaign: Campaign, now: datetime, tz: tzinfo
) -> CampaignProgress:
    """Plan the rest of a campaign from its measurements and the clock.

    Tests missed while Home Assistant was stopped or the line was down move to the
    earliest time the rules allow. A measuring day that can no longer get its 10 tests
    before midnight is given up and measured again on a later day; its tests do not
    count. Past days are never revisited, so the plan can only move forward in time.

    Args:
        campaign: The stored campaign.
        now: The current time (aware).
        tz: Home Assistant's time zone; measuring days are its calendar days.
    """
    if campaign.phase is not CampaignPhase.RUNNING:
        return CampaignProgress(
            tests_per_day=tuple(
                (day, len(tests))
                for day, tests in _by_day(campaign.measurements, tz).items()
            ),
            next_test=None,
            planned=(),
            problem=None,
        )
    now = now.astimezone(UTC)
    today = now.astimezone(tz).date()
    days = _by_day(campaign.measurements, tz)
    complete = [day for day, tests in days.items() if len(tests) == TESTS_PER_DAY]
    kept: list[tuple[date, int]] = [(day, TESTS_PER_DAY) for day in complete]
    planned: list[datetime] = []

    not_before = now
    if campaign.last_attempt is not None:
        # An attempt "in the future" means the clock was set back; waiting for it
        # would stall the campaign, so the gap is kept from now instead.
        not_before = max(now, min(campaign.last_attempt, now) + MIN_GAP)
    today_tests = days.get(today, [])
    if 0 < len(today_tests) < TESTS_PER_DAY:
        rest_of_today = _day_slots(today, today_tests, not_before, tz)
        if _fits_day(today, rest_of_today, tz):
            kept.append((today, len(today_tests)))
            planned.extend(rest_of_today)

    # A new measuring day keeps a rest day to every day measured on, given up or not:
    # the stricter reading of the ruling, which costs at most a day.
    new_day = today
    if now > _local_time(today, DAY_PLAN[0], tz) + LATE_START_GRACE:
        new_day = today + timedelta(days=1)
    if days:
        new_day = max(new_day, max(days) + timedelta(days=1 + REST_DAYS))
    new_days = [
        new_day + timedelta(days=index * (1 + REST_DAYS))
        for index in range(CAMPAIGN_DAYS - len(kept))
    ]
    if kept and new_days:
        deadline = kept[0][0] + timedelta(days=CAMPAIGN_WINDOW_DAYS - 1)
        if new_days[-1] > deadline:
            return CampaignProgress(
                tests_per_day=tuple(kept),
                next_test=None,
                planned=(),
                problem=CampaignProblem.WINDOW_EXCEEDED,
            )
    for day in new_days:
        # Fits its day: a new day today is at most the grace late, and the day plan
        # ends well before the margin.
        planned.extend(_day_slots(day, [], not_before, tz))
    local_plan = tuple(slot.astimezone(tz) for slot in planned)
    return CampaignProgress(
        tests_per_day=tuple(kept),
        next_test=local_plan[0] if local_plan else None,
        planned=local_plan,
        problem=None,
    )


def record_test(campaign: Campaign, sample: Sample, tz: tzinfo) -> Campaign:
    """The campaign after a campaign test; completes it with the 30th counted test.

    A test that does not count, or that would break the rules (too close to the
    previous test, on a day that needs a rest day, on a day already full), is not
    accepted: the same test is due again after the minimum gap. A test on a day that
    can no longer be completed is accepted but will not count, like the rest of that
    day.

    Args:
        campaign: The stored campaign.
        sample: The test that just finished.
        tz: Home Assistant's time zone.
    """
    if campaign.phase is not CampaignPhase.RUNNING:
        return campaign
    attempted = replace(campaign, last_attempt=sample.finished.astimezone(UTC))
    if not sample.counted or not _fits_rules(campaign.measurements, sample, tz):
        return attempted
    stored = Sample(
        started=sample.started.astimezone(UTC),
        finished=sample.finished.astimezone(UTC),
        download_mbps=sample.download_mbps,
        upload_mbps=sample.upload_mbps,
    )
    recorded = replace(attempted, measurements=(*campaign.measurements, stored))
    if len(_complete_days(recorded.measurements, tz)) == CAMPAIGN_DAYS:
        return replace(recorded, phase=CampaignPhase.COMPLETE, ended=stored.finished)
    return recorded


def _fits_rules(measurements: Sequence[Sample], sample: Sample, tz: tzinfo) -> bool:
    """Whether the ruling allows `sample` as the next measurement of the campaign."""
    day = _local_date(sample.started, tz)
    if _local_date(sample.finished, tz) != day:
        return False
    if not measurements:
        return True
    days = _by_day(measurements, tz)
    last_day = max(days)
    if day != last_day:
        complete = _complete_days(measurements, tz)
        in_window = not complete or day <= complete[0][0] + timedelta(
            days=CAMPAIGN_WINDOW_DAYS - 1
        )
        return in_window and day >= last_day + timedelta(days=1 + REST_DAYS)
    same_day = days[day]
    if len(same_day) >= TESTS_PER_DAY:
        return False
    gap = sample.started - same_day[-1].finished
    return gap >= _gap_before(len(same_day) + 1)


# --- the verdict --------------------------------------------------------------------


class Criterion(StrEnum):
    """The ruling's three criteria for a deviation."""

    # (a) 90 % of the maximum not reached at least once on at least 2 of the 3 days.
    MAXIMUM = "maximum"
    # (b) the normally available speed not reached in 90 % of the measurements.
    NORMALLY_AVAILABLE = "normally_available"
    # (c) the minimum undercut on at least 2 of the 3 days.
    MINIMUM = "minimum"


@dataclass(frozen=True, slots=True, kw_only=True)
class CriterionVerdict(Stored):
    """One criterion judged for one direction, with the numbers behind it.

    Attributes:
        criterion: Which criterion.
        direction: Which direction.
        contract_mbps: The contract's speed the criterion rests on.
        limit_mbps: The speed a test is held to: 90 % of the maximum, the normally
            available speed, or the minimum.
        deviation: Whether the criterion finds a deviation.
        tests: Measurements judged.
        tests_below: Measurements below the limit.
        days: Measuring days judged.
        days_failed: (a) days on which no test reached the limit; (b) and (c) days on
            which at least one test was below it.
    """

    criterion: Criterion
    direction: Direction
    contract_mbps: float
    limit_mbps: float
    deviation: bool
    tests: int
    tests_below: int
    days: int
    days_failed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignVerdict(Stored):
    """A completed campaign judged against the contract.

    Attributes:
        criteria: Each criterion per direction whose contract speed is set, download
            first, then in the ruling's order (a), (b), (c).
        deviation: Whether any criterion finds a deviation.
        first_test: When the first counted measurement started.
        last_test: When the last counted measurement finished.
    """

    criteria: tuple[CriterionVerdict, ...]
    deviation: bool
    first_test: datetime
    last_test: datetime

    def deviates(self, direction: Direction) -> bool:
        """Whether any criterion finds a deviation in one direction."""
        return any(
            verdict.deviation
            for verdict in self.criteria
            if verdict.direction is direction
        )


def campaign_verdict(
    campaign: Campaign, contract: Contract, tz: tzinfo
) -> CampaignVerdict | None:
    """Judge a completed campaign; None while it is not complete.

    A campaign stored as complete without its measuring days (a damaged file) has no
    verdict either.
    """
    if campaign.phase is not CampaignPhase.COMPLETE:
        return None
    days = [tests for _, tests in _complete_days(campaign.measurements, tz)]
    if len(days) != CAMPAIGN_DAYS:
        return None
    criteria: list[CriterionVerdict] = []
    for direction in Direction:
        speeds = contract.speeds(direction)
        per_day = [[test.speed(direction) for test in tests] for tests in days]
        if speeds.maximum_mbps is not None:
            criteria.append(
                _judge(
                    Criterion.MAXIMUM,
                    direction,
                    speeds.maximum_mbps,
                    speeds.maximum_mbps * MAXIMUM_SHARE,
                    per_day,
                )
            )
        for criterion, contract_speed in (
            (Criterion.NORMALLY_AVAILABLE, speeds.normally_available_mbps),
            (Criterion.MINIMUM, speeds.minimum_mbps),
        ):
            if contract_speed is not None:
                criteria.append(
                    _judge(
                        criterion, direction, contract_speed, contract_speed, per_day
                    )
                )
    counted = [test for tests in days for test in tests]
    return CampaignVerdict(
        criteria=tuple(criteria),
        deviation=any(verdict.deviation for verdict in criteria),
        first_test=counted[0].started,
        last_test=counted[-1].finished,
    )


def _judge(
    criterion: Criterion,
    direction: Direction,
    contract_mbps: float,
    limit_mbps: float,
    per_day: Sequence[Sequence[float]],
) -> CriterionVerdict:
    values = [value for day in per_day for value in day]
    tests_below = sum(not reaches(value, limit_mbps) for value in values)
    if criterion is Criterion.MAXIMUM:
        days_failed = sum(
            not any(reaches(value, limit_mbps) for value in day) for day in per_day
        )
        deviation = days_failed >= FAILED_DAYS_FOR_DEVIATION
    else:
        days_failed = sum(
            any(not reaches(value, limit_mbps) for value in day) for day in per_day
        )
        if criterion is Criterion.MINIMUM:
            deviation = days_failed >= FAILED_DAYS_FOR_DEVIATION
        else:
            # Exactly 90 % (27 of 30) reaches the share: no deviation.
            reached = len(values) - tests_below
            deviation = not reaches(reached / len(values), NORMALLY_AVAILABLE_SHARE)
    return CriterionVerdict(
        criterion=criterion,
        direction=direction,
        contract_mbps=contract_mbps,
        limit_mbps=limit_mbps,
        deviation=deviation,
        tests=len(values),
        tests_below=tests_below,
        days=len(per_day),
        days_failed=days_failed,
    )


# --- helpers ------------------------------------------------------------------------


def _gap_before(test_of_day: int) -> timedelta:
    """The least time between the end of a day's previous test and the start of this.

    Taken from the previous end, not its start, so the plan keeps the gap whichever
    ends of two tests the regulator measures it between.
    """
    return MIDDAY_GAP if test_of_day == MIDDAY_GAP_BEFORE_TEST else MIN_GAP


def _day_slots(
    day: date, done: Sequence[Sample], not_before: datetime, tz: tzinfo
) -> list[datetime]:
    """The planned starts of a day's remaining tests.

    Each test starts at its time of the day plan, or later when the rules or the clock
    demand it. Future tests' ends are unknown, so a planned start stands in for the
    end; the real end is used once the test has run.
    """
    slots: list[datetime] = []
    previous = done[-1].finished if done else None
    for index in range(len(done), TESTS_PER_DAY):
        slot = max(_local_time(day, DAY_PLAN[index], tz), not_before)
        if previous is not None:
            slot = max(slot, previous + _gap_before(index + 1))
        slots.append(slot)
        previous = slot
    return slots


def _fits_day(day: date, slots: Sequence[datetime], tz: tzinfo) -> bool:
    """Whether every planned start leaves the test time to end before midnight."""
    day_end = _local_midnight(day + timedelta(days=1), tz) - DAY_END_MARGIN
    return all(slot <= day_end for slot in slots)


def _by_day(measurements: Iterable[Sample], tz: tzinfo) -> dict[date, list[Sample]]:
    """Measurements grouped by the local calendar day they started on, in order."""
    days: dict[date, list[Sample]] = {}
    for sample in measurements:
        days.setdefault(_local_date(sample.started, tz), []).append(sample)
    return days


def _complete_days(
    measurements: Iterable[Sample], tz: tzinfo
) -> list[tuple[date, list[Sample]]]:
    """The days with all their tests; days given up do not count."""
    return [
        (day, tests)
        for day, tests in _by_day(measurements, tz).items()
        if len(tests) == TESTS_PER_DAY
    ]


def _local_date(moment: datetime, tz: tzinfo) -> date:
    return moment.astimezone(tz).date()


def _local_time(day: date, wall_clock: time, tz: tzinfo) -> datetime:
    """The instant (UTC) at which `tz`'s clock shows `wall_clock` on `day`.

    A wall-clock time skipped by a daylight-saving change resolves to the instant the
    offset before the change gives it, which lies just after the change.
    """
    return datetime.combine(day, wall_clock, tzinfo=tz).astimezone(UTC)


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    """Local midnight at the start of `day`, in `tz`."""
    return _local_time(day, time(0), tz).astimezone(tz)
