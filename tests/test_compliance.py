"""How ISP Watch holds the line to the contract: speeds, monthly figures, the campaign.

Times are Berlin wall-clock times, where the ruling applies and the clocks change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
import itertools
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.isp_watch.compliance import (
    DAY_PLAN,
    Campaign,
    CampaignPhase,
    CampaignProblem,
    CampaignProgress,
    Contract,
    ContractField,
    ContractSpeeds,
    Criterion,
    CriterionVerdict,
    Sample,
    campaign_data_estimate,
    campaign_progress,
    campaign_verdict,
    cancel_campaign,
    contract_error,
    monthly_compliance,
    plan_campaign,
    record_test,
    start_campaign,
)
from custom_components.isp_watch.models import Direction

BERLIN = ZoneInfo("Europe/Berlin")
TEST_TIME = timedelta(seconds=30)
# A 100/40 Mbit/s contract as German providers state it.
DOWNLOAD = ContractSpeeds(
    maximum_mbps=100.0, normally_available_mbps=80.0, minimum_mbps=50.0
)
UPLOAD = ContractSpeeds(
    maximum_mbps=40.0, normally_available_mbps=32.0, minimum_mbps=20.0
)
CONTRACT = Contract(download=DOWNLOAD, upload=UPLOAD)
GOOD_UPLOAD = 39.0


def berlin(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A Berlin wall-clock time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=BERLIN)


def sample(
    started: datetime,
    download: float = 95.0,
    upload: float = GOOD_UPLOAD,
    *,
    counted: bool = True,
) -> Sample:
    """A test that started at `started` and took TEST_TIME."""
    return Sample(
        started=started,
        finished=started + TEST_TIME,
        download_mbps=download,
        upload_mbps=upload,
        counted=counted,
    )


def day_of_tests(day: date, count: int = 10) -> list[Sample]:
    """The first `count` tests of a measuring day, each at its planned time."""
    return [
        sample(datetime.combine(day, wall_clock, tzinfo=BERLIN))
        for wall_clock in DAY_PLAN[:count]
    ]


def running(*measurements: Sample) -> Campaign:
    """A running campaign that has accepted these tests."""
    return Campaign(
        phase=CampaignPhase.RUNNING,
        started=berlin(2026, 6, 1, 6),
        measurements=measurements,
        last_attempt=measurements[-1].finished if measurements else None,
    )


def progress(campaign: Campaign, now: datetime) -> CampaignProgress:
    return campaign_progress(campaign, now, BERLIN)


Speeds = Callable[[int], tuple[float, float]]


def good_line(_: int) -> tuple[float, float]:
    return 95.0, GOOD_UPLOAD


def run(
    campaign: Campaign,
    now: datetime,
    speeds: Speeds = good_line,
    *,
    until: datetime | None = None,
) -> tuple[Campaign, datetime]:
    """Run every campaign test when it is due, as the glue would, until `until`.

    `speeds` gives the download and upload of the n-th test the campaign accepts.
    """
    while campaign.phase is CampaignPhase.RUNNING:
        due = progress(campaign, now).next_test
        assert due is not None
        if until is not None and due >= until:
            return campaign, until
        download, upload = speeds(len(campaign.measurements))
        test = sample(due, download, upload)
        campaign = record_test(campaign, test, BERLIN)
        now = test.finished
    return campaign, now


def by_day(values: Sequence[Sequence[float]]) -> Speeds:
    """Downloads per measuring day (10 each) with a good upload."""
    flat = [value for day in values for value in day]
    return lambda index: (flat[index], GOOD_UPLOAD)


def assert_follows_ruling(measurements: Sequence[Sample]) -> None:
    """Check the ruling's rules on a campaign's counted tests, independently."""
    days: dict[date, list[Sample]] = {}
    for test in measurements:
        days.setdefault(test.started.astimezone(BERLIN).date(), []).append(test)
    assert len(days) == 3
    assert all(len(tests) == 10 for tests in days.values())
    dates = sorted(days)
    assert all(
        later - earlier >= timedelta(days=2)
        for earlier, later in itertools.pairwise(dates)
    )
    assert dates[-1] - dates[0] <= timedelta(days=13)
    for tests in days.values():
        for number, (earlier, later) in enumerate(itertools.pairwise(tests), start=2):
            needed = timedelta(hours=3) if number == 6 else timedelta(minutes=5)
            assert later.started - earlier.finished >= needed
        # Spread across the day, including the evening.
        assert sum(test.started.astimezone(BERLIN).hour >= 18 for test in tests) >= 3


def verdict_of(
    downloads: Sequence[Sequence[float]], contract: Contract = CONTRACT
) -> dict[tuple[Direction, Criterion], CriterionVerdict]:
    campaign, _ = run(
        start_campaign(Campaign(), berlin(2026, 6, 1, 6)),
        berlin(2026, 6, 1, 6),
        by_day(downloads),
    )
    verdict = campaign_verdict(campaign, contract, BERLIN)
    assert verdict is not None
    return {(item.direction, item.criterion): item for item in verdict.criteria}


# --- contract speeds ----------------------------------------------------------------


@pytest.mark.parametrize(
    "speeds",
    [
        ContractSpeeds(),
        DOWNLOAD,
        ContractSpeeds(maximum_mbps=100.0),
        ContractSpeeds(minimum_mbps=50.0, maximum_mbps=100.0),
        ContractSpeeds(
            maximum_mbps=50.0, normally_available_mbps=50.0, minimum_mbps=50.0
        ),
    ],
)
def test_speeds_in_order_are_accepted(speeds: ContractSpeeds) -> None:
    assert contract_error(speeds) is None


@pytest.mark.parametrize(
    ("speeds", "field"),
    [
        (
            ContractSpeeds(
                maximum_mbps=100.0, normally_available_mbps=80.0, minimum_mbps=90.0
            ),
            ContractField.MINIMUM,
        ),
        (
            ContractSpeeds(
                maximum_mbps=100.0, normally_available_mbps=120.0, minimum_mbps=50.0
            ),
            ContractField.NORMALLY_AVAILABLE,
        ),
        (ContractSpeeds(maximum_mbps=100.0, minimum_mbps=100.5), ContractField.MINIMUM),
        (
            ContractSpeeds(normally_available_mbps=80.0, minimum_mbps=81.0),
            ContractField.MINIMUM,
        ),
    ],
)
def test_speeds_out_of_order_name_the_field(
    speeds: ContractSpeeds, field: ContractField
) -> None:
    assert contract_error(speeds) is field


# --- monthly compliance -------------------------------------------------------------


def test_month_figures_count_only_tests_that_count() -> None:
    history = [
        sample(berlin(2026, 6, 2, 8), download=95.0),  # reaches 90 and 80
        sample(berlin(2026, 6, 2, 20), download=85.0),  # reaches 80 only
        sample(berlin(2026, 6, 3, 20), download=45.0),  # below the minimum
        sample(berlin(2026, 6, 4, 20), download=90.0),  # exactly 90 % of the maximum
        sample(berlin(2026, 6, 5, 20), download=10.0, counted=False),  # busy line
    ]

    figures = monthly_compliance(
        history, DOWNLOAD, Direction.DOWNLOAD, berlin(2026, 6, 10), BERLIN
    )

    assert figures.tests == 4
    assert figures.excluded == 1
    assert figures.reached_maximum == 2
    assert figures.reached_maximum_percent == 50.0
    assert figures.reached_normally_available == 3
    assert figures.reached_normally_available_percent == 75.0
    assert figures.below_minimum == 1
    assert figures.month_start == berlin(2026, 6, 1)
    assert figures.first_test == history[0].finished
    assert figures.last_test == history[3].finished


def test_month_figures_judge_the_direction_asked_for() -> None:
    history = [sample(berlin(2026, 6, 2, 8), download=95.0, upload=19.0)]

    figures = monthly_compliance(
        history, UPLOAD, Direction.UPLOAD, berlin(2026, 6, 10), BERLIN
    )

    assert (figures.reached_maximum, figures.below_minimum) == (0, 1)


def test_exactly_90_percent_of_the_maximum_reaches_it() -> None:
    # 0.9 * 70 is 63.00000000000001 in floating point.
    speeds = ContractSpeeds(maximum_mbps=70.0)
    history = [sample(berlin(2026, 6, 2, 8), download=63.0)]

    figures = monthly_compliance(
        history, speeds, Direction.DOWNLOAD, berlin(2026, 6, 10), BERLIN
    )

    assert figures.reached_maximum == 1


def test_month_figures_without_contract_speeds_are_unknown() -> None:
    history = [sample(berlin(2026, 6, 2, 8))]

    figures = monthly_compliance(
        history, ContractSpeeds(), Direction.DOWNLOAD, berlin(2026, 6, 10), BERLIN
    )

    assert figures.tests == 1
    assert figures.reached_maximum is None
    assert figures.reached_maximum_percent is None
    assert figures.reached_normally_available_percent is None
    assert figures.below_minimum is None


def test_month_figures_reset_at_local_midnight_on_the_first() -> None:
    # 23:30 on 31 March in Berlin is 21:30 UTC; 00:10 on 1 April is still 31 March UTC.
    march = sample(berlin(2026, 3, 31, 23, 30), download=10.0)
    april = sample(berlin(2026, 4, 1, 0, 10), download=95.0)

    in_march = monthly_compliance(
        [march, april],
        DOWNLOAD,
        Direction.DOWNLOAD,
        berlin(2026, 3, 31, 23, 59),
        BERLIN,
    )
    in_april = monthly_compliance(
        [march, april], DOWNLOAD, Direction.DOWNLOAD, berlin(2026, 4, 1, 0, 30), BERLIN
    )

    assert (in_march.tests, in_march.below_minimum) == (1, 1)
    assert (in_april.tests, in_april.below_minimum) == (1, 0)
    assert in_april.month_start == berlin(2026, 4, 1)
    assert in_april.first_test == april.finished


def test_a_new_month_without_tests_has_no_shares() -> None:
    history = [sample(berlin(2026, 5, 31, 20))]

    figures = monthly_compliance(
        history, DOWNLOAD, Direction.DOWNLOAD, berlin(2026, 6, 1, 0, 5), BERLIN
    )

    assert figures.tests == 0
    assert figures.reached_maximum == 0
    assert figures.reached_maximum_percent is None
    assert figures.first_test is None
    assert figures.last_test is None


# --- planning the campaign ----------------------------------------------------------


def test_a_campaign_plans_30_tests_over_3_days_by_the_rules() -> None:
    plan = plan_campaign(berlin(2026, 6, 1, 6), BERLIN)

    assert len(plan) == 30
    assert sorted({slot.date() for slot in plan}) == [
        date(2026, 6, 1),
        date(2026, 6, 3),
        date(2026, 6, 5),
    ]
    assert [slot.time() for slot in plan[:10]] == list(DAY_PLAN)
    assert_follows_ruling([sample(slot) for slot in plan])


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Pacific/Auckland"])
def test_measuring_days_are_local_calendar_days(zone: str) -> None:
    # Far from UTC, a local evening falls on another UTC date.
    tz = ZoneInfo(zone)
    start = datetime(2026, 6, 1, 6, tzinfo=tz)

    plan = plan_campaign(start, tz)

    assert [slot.astimezone(tz).time() for slot in plan] == list(DAY_PLAN) * 3
    assert [slot.astimezone(tz).date() for slot in plan[::10]] == [
        date(2026, 6, 1),
        date(2026, 6, 3),
        date(2026, 6, 5),
    ]
    campaign = start_campaign(Campaign(), start)
    for slot in plan:
        campaign = record_test(campaign, sample(slot), tz)
    assert campaign.phase is CampaignPhase.COMPLETE


def test_a_clock_set_back_does_not_stall_the_campaign() -> None:
    campaign = replace(
        running(*day_of_tests(date(2026, 6, 1), 3)),
        last_attempt=berlin(2026, 6, 20, 9),
    )

    assert progress(campaign, berlin(2026, 6, 1, 11)).next_test == berlin(
        2026, 6, 1, 11, 30
    )


def test_a_campaign_started_late_in_the_day_begins_the_next_morning() -> None:
    plan = plan_campaign(berlin(2026, 6, 1, 12), BERLIN)

    assert plan[0] == berlin(2026, 6, 2, 7)
    assert plan[-1] == berlin(2026, 6, 6, 23)


def test_a_campaign_started_just_after_the_first_slot_begins_at_once() -> None:
    plan = plan_campaign(berlin(2026, 6, 1, 7, 40), BERLIN)

    assert plan[:2] == (berlin(2026, 6, 1, 7, 40), berlin(2026, 6, 1, 8, 30))


def test_a_campaign_runs_over_three_days_and_completes() -> None:
    start = berlin(2026, 6, 1, 6)

    campaign, now = run(start_campaign(Campaign(), start), start)

    assert campaign.phase is CampaignPhase.COMPLETE
    assert campaign.ended == now
    assert len(campaign.measurements) == 30
    assert_follows_ruling(campaign.measurements)
    assert progress(campaign, now) == CampaignProgress(
        tests_per_day=(
            (date(2026, 6, 1), 10),
            (date(2026, 6, 3), 10),
            (date(2026, 6, 5), 10),
        ),
        next_test=None,
        planned=(),
        problem=None,
    )


@pytest.mark.parametrize(
    ("start", "change_day"),
    [
        # Clocks go forward on the last Sunday of March, back on the last of October.
        (berlin(2026, 3, 27, 6), date(2026, 3, 29)),
        (berlin(2026, 10, 23, 6), date(2026, 10, 25)),
    ],
)
def test_a_campaign_over_a_clock_change_keeps_the_wall_clock_plan(
    start: datetime, change_day: date
) -> None:
    campaign, _ = run(start_campaign(Campaign(), start), start)

    tests = campaign.measurements
    local = [test.started.astimezone(BERLIN) for test in tests]
    assert [moment.date() for moment in local[10:20]] == [change_day] * 10
    assert [moment.time() for moment in local] == list(DAY_PLAN) * 3
    # The UTC offset changed between the first and the last measuring day.
    assert local[0].utcoffset() != local[-1].utcoffset()
    assert_follows_ruling(tests)


def test_the_sixth_test_waits_3_hours_after_the_fifth_to_the_second() -> None:
    day = date(2026, 6, 1)
    tests = day_of_tests(day, 4)
    fifth_end = berlin(2026, 6, 1, 15)
    tests.append(
        Sample(
            started=fifth_end - TEST_TIME,
            finished=fifth_end,
            download_mbps=95.0,
            upload_mbps=GOOD_UPLOAD,
        )
    )
    campaign = running(*tests)

    assert progress(campaign, fifth_end).next_test == berlin(2026, 6, 1, 18)
    too_early = record_test(campaign, sample(berlin(2026, 6, 1, 17, 59, 59)), BERLIN)
    on_time = record_test(campaign, sample(berlin(2026, 6, 1, 18)), BERLIN)
    assert len(too_early.measurements) == 5
    assert len(on_time.measurements) == 6


def test_tests_keep_5_minutes_apart() -> None:
    first = sample(berlin(2026, 6, 1, 7))
    campaign = running(first)
    end = first.finished

    too_early = record_test(
        campaign, sample(end + timedelta(minutes=4, seconds=59)), BERLIN
    )
    on_time = record_test(campaign, sample(end + timedelta(minutes=5)), BERLIN)

    assert len(too_early.measurements) == 1
    assert len(on_time.measurements) == 2


def test_a_test_that_does_not_count_is_repeated_after_the_minimum_gap() -> None:
    campaign = running(*day_of_tests(date(2026, 6, 1), 3))
    busy = sample(berlin(2026, 6, 1, 11, 30), counted=False)

    campaign = record_test(campaign, busy, BERLIN)

    assert len(campaign.measurements) == 3
    assert progress(campaign, busy.finished).next_test == busy.finished + timedelta(
        minutes=5
    )


def test_no_test_the_day_after_a_measuring_day() -> None:
    campaign = running(*day_of_tests(date(2026, 6, 1)))

    next_day = record_test(campaign, sample(berlin(2026, 6, 2, 7)), BERLIN)
    day_after = record_test(campaign, sample(berlin(2026, 6, 3, 7)), BERLIN)

    assert len(next_day.measurements) == 10
    assert len(day_after.measurements) == 11
    assert progress(campaign, berlin(2026, 6, 1, 23, 30)).next_test == berlin(
        2026, 6, 3, 7
    )


def test_no_test_after_the_14_days() -> None:
    campaign = running(*day_of_tests(date(2026, 6, 1)))

    last_day = record_test(campaign, sample(berlin(2026, 6, 14, 7)), BERLIN)
    too_late = record_test(campaign, sample(berlin(2026, 6, 15, 7)), BERLIN)

    assert len(last_day.measurements) == 11
    assert len(too_late.measurements) == 10


def test_no_eleventh_test_on_a_day() -> None:
    campaign = running(*day_of_tests(date(2026, 6, 1)))

    campaign = record_test(campaign, sample(berlin(2026, 6, 1, 23, 30)), BERLIN)

    assert len(campaign.measurements) == 10


def test_a_test_over_midnight_is_not_accepted() -> None:
    campaign = running(*day_of_tests(date(2026, 6, 1), 9))

    campaign = record_test(campaign, sample(berlin(2026, 6, 1, 23, 59, 50)), BERLIN)

    assert len(campaign.measurements) == 9


def test_a_restart_mid_campaign_catches_up_missed_tests() -> None:
    start = berlin(2026, 6, 1, 6)
    # Home Assistant stops after the third test of the second day...
    campaign, _ = run(
        start_campaign(Campaign(), start), start, until=berlin(2026, 6, 3, 10, 1)
    )
    stored = json.loads(json.dumps(campaign.as_dict()))
    # ...and is back at 15:00.
    restored = Campaign.from_dict(stored)
    back = berlin(2026, 6, 3, 15)

    assert restored == campaign
    state = progress(restored, back)
    assert state.tests_per_day == ((date(2026, 6, 1), 10), (date(2026, 6, 3), 3))
    assert state.planned[:4] == (
        back,
        back + timedelta(minutes=5),
        # The 6th waits 3 hours after the 5th.
        back + timedelta(minutes=5, hours=3),
        berlin(2026, 6, 3, 18, 30),
    )
    finished, _ = run(restored, back)
    assert finished.phase is CampaignPhase.COMPLETE
    assert_follows_ruling(finished.measurements)


def test_a_day_that_cannot_be_finished_before_midnight_is_measured_again() -> None:
    start = berlin(2026, 6, 1, 6)
    campaign, _ = run(
        start_campaign(Campaign(), start), start, until=berlin(2026, 6, 3, 14)
    )
    # Back at 23:30 with five tests of the day to go: they would run past midnight.
    back = berlin(2026, 6, 3, 23, 30)

    state = progress(campaign, back)

    assert state.tests_per_day == ((date(2026, 6, 1), 10),)
    assert state.next_test == berlin(2026, 6, 5, 7)
    finished, _ = run(campaign, back)
    assert finished.phase is CampaignPhase.COMPLETE
    assert len(finished.measurements) == 35
    verdict = campaign_verdict(finished, CONTRACT, BERLIN)
    assert verdict is not None
    assert {item.tests for item in verdict.criteria} == {30}
    assert verdict.first_test == finished.measurements[0].started
    assert_follows_ruling(
        [
            test
            for test in finished.measurements
            if test.started.astimezone(BERLIN).date() != date(2026, 6, 3)
        ]
    )


def test_a_day_left_unfinished_at_midnight_is_measured_again() -> None:
    campaign = running(
        *day_of_tests(date(2026, 6, 1)), *day_of_tests(date(2026, 6, 3), 7)
    )

    state = progress(campaign, berlin(2026, 6, 4, 0, 30))

    assert state.tests_per_day == ((date(2026, 6, 1), 10),)
    assert state.next_test == berlin(2026, 6, 5, 7)


def test_the_measuring_days_may_span_exactly_14_days() -> None:
    campaign = running(*day_of_tests(date(2026, 6, 1)))

    state = progress(campaign, berlin(2026, 6, 11, 10))

    assert state.problem is None
    assert {slot.date() for slot in state.planned} == {
        date(2026, 6, 12),
        date(2026, 6, 14),
    }


def test_a_campaign_that_cannot_fit_14_days_says_why() -> None:
    campaign = running(*day_of_tests(date(2026, 6, 1)))

    state = progress(campaign, berlin(2026, 6, 12, 10))

    assert state.problem is CampaignProblem.WINDOW_EXCEEDED
    assert state.next_test is None
    assert state.planned == ()
    cancelled = cancel_campaign(campaign, berlin(2026, 6, 12, 10), state.problem)
    assert cancelled.phase is CampaignPhase.CANCELLED
    assert cancelled.problem is CampaignProblem.WINDOW_EXCEEDED


# --- the campaign's states ----------------------------------------------------------


def test_a_campaign_moves_from_idle_to_running_to_cancelled() -> None:
    idle = Campaign()
    now = berlin(2026, 6, 1, 6)

    campaign = start_campaign(idle, now)
    with pytest.raises(ValueError, match="already running"):
        start_campaign(campaign, now)
    cancelled = cancel_campaign(campaign, now + timedelta(hours=2))

    assert idle.phase is CampaignPhase.IDLE
    assert progress(idle, now).next_test is None
    assert campaign.phase is CampaignPhase.RUNNING
    assert cancelled.phase is CampaignPhase.CANCELLED
    assert cancelled.problem is CampaignProblem.CANCELLED_BY_USER
    assert cancelled.ended == now + timedelta(hours=2)
    assert cancel_campaign(cancelled, now + timedelta(hours=3)) == cancelled
    assert record_test(cancelled, sample(now), BERLIN) == cancelled
    assert campaign_verdict(cancelled, CONTRACT, BERLIN) is None
    assert start_campaign(cancelled, now).phase is CampaignPhase.RUNNING


def test_a_cancelled_campaign_still_shows_its_days() -> None:
    campaign = running(
        *day_of_tests(date(2026, 6, 1)), *day_of_tests(date(2026, 6, 3), 4)
    )

    cancelled = cancel_campaign(campaign, berlin(2026, 6, 3, 12))

    assert progress(cancelled, berlin(2026, 6, 3, 12)).tests_per_day == (
        (date(2026, 6, 1), 10),
        (date(2026, 6, 3), 4),
    )


@pytest.mark.parametrize(
    "damage",
    [
        {"phase": "paused"},
        {"started": "yesterday"},
        {"started": 1780290000},
        {"started": "2026-06-01T07:00:00"},  # no time zone
        {"measurements": "all of them"},
        {"measurements": [{"started": "2026-06-01T07:00:00+02:00"}]},
        {"problem": "bored"},
    ],
)
def test_a_damaged_stored_campaign_is_refused(damage: dict[str, Any]) -> None:
    stored = running(sample(berlin(2026, 6, 1, 7))).as_dict()

    with pytest.raises(ValueError, match="not a stored campaign"):
        Campaign.from_dict(stored | damage)


@pytest.mark.parametrize("speed", ["fast", None, True, float("nan"), -1.0])
def test_a_stored_campaign_with_a_bad_speed_is_refused(speed: object) -> None:
    stored = running(sample(berlin(2026, 6, 1, 7))).as_dict()
    stored["measurements"][0]["download_mbps"] = speed

    with pytest.raises(ValueError, match="not a stored campaign"):
        Campaign.from_dict(stored)


def test_a_stored_cancelled_campaign_round_trips() -> None:
    campaign = cancel_campaign(
        running(sample(berlin(2026, 6, 1, 7))), berlin(2026, 6, 1, 9)
    )

    assert Campaign.from_dict(json.loads(json.dumps(campaign.as_dict()))) == campaign


# --- the verdict --------------------------------------------------------------------

FAST = [95.0] * 10


def test_a_line_that_keeps_the_contract_has_no_deviation() -> None:
    start = berlin(2026, 6, 1, 6)
    campaign, _ = run(start_campaign(Campaign(), start), start)

    verdict = campaign_verdict(campaign, CONTRACT, BERLIN)

    assert verdict is not None
    assert not verdict.deviation
    assert [(item.direction, item.criterion) for item in verdict.criteria] == [
        (direction, criterion) for direction in Direction for criterion in Criterion
    ]


def test_maximum_missed_on_2_of_3_days_is_a_deviation() -> None:
    # 85 Mbit/s: above the normally available 80, below 90 % of the maximum.
    verdicts = verdict_of([[85.0] * 10, [85.0] * 10, FAST])

    assert verdicts[Direction.DOWNLOAD, Criterion.MAXIMUM] == CriterionVerdict(
        criterion=Criterion.MAXIMUM,
        direction=Direction.DOWNLOAD,
        contract_mbps=100.0,
        limit_mbps=90.0,
        deviation=True,
        tests=30,
        tests_below=20,
        days=3,
        days_failed=2,
    )
    assert not verdicts[Direction.DOWNLOAD, Criterion.NORMALLY_AVAILABLE].deviation
    assert not verdicts[Direction.DOWNLOAD, Criterion.MINIMUM].deviation


def test_maximum_reached_once_on_2_of_3_days_is_no_deviation() -> None:
    # Exactly 90 % of the maximum, once, reaches it.
    once = [85.0] * 9 + [90.0]

    verdicts = verdict_of([[85.0] * 10, once, once])

    maximum = verdicts[Direction.DOWNLOAD, Criterion.MAXIMUM]
    assert (maximum.deviation, maximum.days_failed) == (False, 1)


def test_normally_available_missed_in_over_10_percent_is_a_deviation() -> None:
    # 70 Mbit/s: below the normally available 80, above the minimum of 50.
    verdicts = verdict_of([[70.0, 70.0, *FAST[2:]], [70.0, 70.0, *FAST[2:]], FAST])

    normal = verdicts[Direction.DOWNLOAD, Criterion.NORMALLY_AVAILABLE]
    assert (normal.deviation, normal.tests_below, normal.limit_mbps) == (True, 4, 80.0)
    assert not verdicts[Direction.DOWNLOAD, Criterion.MAXIMUM].deviation
    assert not verdicts[Direction.DOWNLOAD, Criterion.MINIMUM].deviation


def test_normally_available_reached_in_exactly_90_percent_is_no_deviation() -> None:
    verdicts = verdict_of([[70.0, 70.0, *FAST[2:]], [70.0, *FAST[1:]], FAST])

    normal = verdicts[Direction.DOWNLOAD, Criterion.NORMALLY_AVAILABLE]
    assert (normal.deviation, normal.tests_below) == (False, 3)


def test_minimum_undercut_on_2_of_3_days_is_a_deviation() -> None:
    verdicts = verdict_of([[45.0, *FAST[1:]], [*FAST[1:], 45.0], FAST])

    minimum = verdicts[Direction.DOWNLOAD, Criterion.MINIMUM]
    assert (minimum.deviation, minimum.days_failed, minimum.tests_below) == (True, 2, 2)
    assert not verdicts[Direction.DOWNLOAD, Criterion.MAXIMUM].deviation
    assert not verdicts[Direction.DOWNLOAD, Criterion.NORMALLY_AVAILABLE].deviation


def test_minimum_undercut_on_1_day_is_no_deviation() -> None:
    # Exactly the minimum is not an undercut.
    verdicts = verdict_of([[45.0, 45.0, *FAST[2:]], [50.0, *FAST[1:]], FAST])

    minimum = verdicts[Direction.DOWNLOAD, Criterion.MINIMUM]
    assert (minimum.deviation, minimum.days_failed) == (False, 1)


def test_the_verdict_gives_the_numbers_for_a_message() -> None:
    verdicts = verdict_of([[45.0] * 10] * 3)

    minimum = verdicts[Direction.DOWNLOAD, Criterion.MINIMUM]
    message = (
        f"in {minimum.tests} measurements over {minimum.days} days the minimum of "
        f"{minimum.contract_mbps:g} Mbit/s was undercut on {minimum.days_failed} of "
        f"{minimum.days} days"
    )
    assert message == (
        "in 30 measurements over 3 days the minimum of 50 Mbit/s was undercut on "
        "3 of 3 days"
    )


def test_the_verdict_as_plain_data_names_each_criterion() -> None:
    start = berlin(2026, 6, 1, 6)
    campaign, _ = run(
        start_campaign(Campaign(), start), start, by_day([[45.0] * 10] * 3)
    )
    verdict = campaign_verdict(campaign, Contract(download=DOWNLOAD), BERLIN)
    assert verdict is not None

    data = json.loads(json.dumps(verdict.as_dict()))

    assert data["deviation"] is True
    assert datetime.fromisoformat(data["first_test"]) == berlin(2026, 6, 1, 7)
    assert datetime.fromisoformat(data["last_test"]) == campaign.ended
    assert [item["criterion"] for item in data["criteria"]] == [
        "maximum",
        "normally_available",
        "minimum",
    ]
    assert data["criteria"][2] == {
        "criterion": "minimum",
        "direction": "download",
        "contract_mbps": 50.0,
        "limit_mbps": 50.0,
        "deviation": True,
        "tests": 30,
        "tests_below": 30,
        "days": 3,
        "days_failed": 3,
    }


def test_upload_is_judged_on_its_own() -> None:
    start = berlin(2026, 6, 1, 6)

    def slow_upload(index: int) -> tuple[float, float]:
        return 95.0, 15.0 if index % 10 == 0 else GOOD_UPLOAD

    campaign, _ = run(start_campaign(Campaign(), start), start, slow_upload)
    verdict = campaign_verdict(campaign, CONTRACT, BERLIN)

    assert verdict is not None
    assert verdict.deviation
    assert verdict.deviates(Direction.UPLOAD)
    assert not verdict.deviates(Direction.DOWNLOAD)


def test_only_criteria_with_a_contract_speed_are_judged() -> None:
    contract = Contract(download=ContractSpeeds(minimum_mbps=50.0))

    verdicts = verdict_of([FAST] * 3, contract)

    assert list(verdicts) == [(Direction.DOWNLOAD, Criterion.MINIMUM)]


def test_a_running_campaign_has_no_verdict() -> None:
    campaign = running(*day_of_tests(date(2026, 6, 1)))

    assert campaign_verdict(campaign, CONTRACT, BERLIN) is None


def test_a_complete_campaign_without_its_days_has_no_verdict() -> None:
    """A damaged store can claim a campaign complete that holds one day."""
    campaign = replace(
        running(*day_of_tests(date(2026, 6, 1))), phase=CampaignPhase.COMPLETE
    )

    assert campaign_verdict(campaign, CONTRACT, BERLIN) is None


def test_a_campaign_is_estimated_from_recent_tests_or_the_fallback() -> None:
    assert campaign_data_estimate([10, 20], fallback=1_000) == 450
    assert campaign_data_estimate([], fallback=1_000) == 30_000


def test_stored_times_are_utc() -> None:
    campaign = record_test(running(), sample(berlin(2026, 6, 1, 7)), BERLIN)

    assert campaign.measurements[0].started.tzinfo is UTC
