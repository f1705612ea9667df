"""How ISP Watch judges the line from recorded traces of tests, and when it tests next.

Each trace is built from the outcomes the speed-test client records, oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.isp_watch.const import (
    HISTORY_MIN_AGE,
    HISTORY_MIN_COUNT,
    OPTION_DEFAULTS,
)
from custom_components.isp_watch.data import IspWatchSettings
from custom_components.isp_watch.evaluation import (
    CheckKind,
    LineState,
    Metric,
    data_used_since,
    evaluate,
    next_check,
    prune_history,
    start_of_month,
)
from custom_components.isp_watch.models import (
    FailureKind,
    Measurement,
    TestFailure as SpeedTestFailure,  # aliased: pytest would take Test* for tests
    TestOutcome,
    TestServer as SpeedTestServer,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SERVER = SpeedTestServer(
    id=4242, name="Springfield", sponsor="Example Fiber", country="US", distance_km=12.5
)
# What a new entry runs with, read as the integration reads it: a 100/20 Mbit/s plan
# with the limits the user is offered.
SHIPPED = IspWatchSettings.from_config({}, OPTION_DEFAULTS)
LIMITS = SHIPPED.thresholds
SETTINGS = SHIPPED.evaluation
SCHEDULE = SHIPPED.schedule
TEST_SECONDS = 30


def measured(
    at: timedelta,
    download: float = 95.0,
    upload: float = 19.0,
    ping: float = 14.0,
) -> Measurement:
    """A test that finished `at` after T0, with the bytes such a test moves."""
    finished = T0 + at
    return Measurement(
        download_mbps=download,
        upload_mbps=upload,
        ping_ms=ping,
        bytes_received=int(download * 1_000_000 * 10 / 8),
        bytes_sent=int(upload * 1_000_000 * 10 / 8),
        server=SERVER,
        isp="Example Fiber",
        started=finished - timedelta(seconds=TEST_SECONDS),
        finished=finished,
    )


def failed(
    at: timedelta, kind: FailureKind = FailureKind.CONNECTION, used: int = 0
) -> SpeedTestFailure:
    """A test or probe that finished `at` after T0 without a measurement."""
    finished = T0 + at
    return SpeedTestFailure(
        kind=kind,
        reason=f"recorded {kind.value}",
        started=finished - timedelta(seconds=5),
        finished=finished,
        bytes_received=used,
    )


def hourly(downloads: Sequence[float], first: int = 0) -> list[Measurement]:
    """Tests an hour apart, starting `first` hours after T0, with these downloads."""
    return [
        measured(HOUR * (first + index), download=download)
        for index, download in enumerate(downloads)
    ]


def judge(history: Sequence[TestOutcome], now: datetime | None = None) -> LineState:
    """The state right after the latest outcome, unless told otherwise."""
    return evaluate(history, LIMITS, SETTINGS, now or history[-1].finished)


def slow_after_each(history: Sequence[TestOutcome]) -> list[bool]:
    """The slow state after each outcome, as the coordinator would have shown it."""
    return [judge(history[: index + 1]).slow for index in range(len(history))]


# --- slow ---------------------------------------------------------------------------


def test_no_history_is_neither_slow_nor_down() -> None:
    state = evaluate([], LIMITS, SETTINGS, T0)

    assert state == LineState(
        slow=False,
        slow_since=None,
        evidence=None,
        outage=None,
        last_outage=None,
        confirm_tests_used=0,
        tests_needed=3,
        undecided=False,
    )


def test_one_slow_test_does_not_make_the_line_slow() -> None:
    history = hourly([95, 92, 97, 12, 94, 96])

    assert slow_after_each(history) == [False] * 6
    state = judge(history[:4])
    assert state.evidence is not None
    assert state.evidence.violated == ()
    assert state.evidence.medians[Metric.DOWNLOAD] == 92


def test_three_slow_tests_in_a_row_make_the_line_slow() -> None:
    history = hourly([30, 28, 31])

    assert slow_after_each(history) == [False, False, True]
    state = judge(history)
    assert state.slow_since == history[-1].finished
    assert state.evidence is not None
    assert state.evidence.violated == (Metric.DOWNLOAD,)


def test_a_slow_majority_of_the_window_makes_the_line_slow() -> None:
    history = hourly([95, 96, 94, 30, 28])

    assert slow_after_each(history) == [False, False, False, False, True]
    assert judge(history).slow_since == history[-1].finished


@pytest.mark.parametrize(
    ("bad", "metric"),
    [
        ({"upload": 4.0}, Metric.UPLOAD),
        ({"ping": 180.0}, Metric.PING),
        ({"download": 20.0, "ping": 250.0}, Metric.DOWNLOAD),
    ],
)
def test_every_limit_counts(bad: dict[str, float], metric: Metric) -> None:
    history = [measured(HOUR * index, **bad) for index in range(3)]

    state = judge(history)

    assert state.slow
    assert state.evidence is not None
    assert metric in state.evidence.violated


DELAY_LIMITS = replace(LIMITS, max_jitter_ms=10.0, max_loaded_latency_ms=100.0)


def delays(
    at: timedelta,
    jitter: float | None,
    download_latency: float | None,
    upload_latency: float | None,
) -> Measurement:
    """A test with good speeds and ping, and these delays."""
    return replace(
        measured(at),
        jitter_ms=jitter,
        download_latency_ms=download_latency,
        upload_latency_ms=upload_latency,
    )


def test_jitter_and_latency_under_load_count_only_with_a_limit() -> None:
    history = [delays(HOUR * index, 25.0, 40.0, 300.0) for index in range(3)]

    assert not judge(history).slow

    state = evaluate(history, DELAY_LIMITS, SETTINGS, history[-1].finished)
    assert state.slow
    assert state.evidence is not None
    # Bufferbloat is judged on the worse direction.
    assert state.evidence.medians[Metric.LOADED_LATENCY] == 300.0
    assert state.evidence.violated == (Metric.JITTER, Metric.LOADED_LATENCY)


def test_tests_without_jitter_or_latency_under_load_are_judged_on_the_rest() -> None:
    """Tests stored before these were measured neither make nor keep a line slow."""
    old = [delays(HOUR * index, None, None, None) for index in range(3)]
    state = evaluate(old, DELAY_LIMITS, SETTINGS, old[-1].finished)
    assert not state.slow
    assert state.evidence is not None
    assert Metric.JITTER not in state.evidence.medians

    # The median of the tests that measured it: the one new test decides.
    mixed = [*old[1:], delays(3 * HOUR, 4.0, None, 250.0)]
    state = evaluate(mixed, DELAY_LIMITS, SETTINGS, mixed[-1].finished)
    assert state.evidence is not None
    assert state.evidence.medians[Metric.JITTER] == 4.0
    assert state.evidence.violated == (Metric.LOADED_LATENCY,)


def test_a_jitter_episode_ends_once_jitter_clears_the_margin() -> None:
    slow = [delays(HOUR * index, 30.0, 50.0, 50.0) for index in range(3)]
    in_band = [delays(HOUR * (3 + index), 9.5, 50.0, 50.0) for index in range(3)]
    clear = [delays(HOUR * (6 + index), 8.0, 50.0, 50.0) for index in range(3)]

    def slow_at_end(history: list[Measurement]) -> bool:
        return evaluate(history, DELAY_LIMITS, SETTINGS, history[-1].finished).slow

    assert slow_at_end(slow)
    # Under the maximum, but not by the 10 % margin: still slow.
    assert slow_at_end([*slow, *in_band])
    assert not slow_at_end([*slow, *in_band, *clear])


def test_failures_are_not_slow_samples() -> None:
    history: list[TestOutcome] = [*hourly([95, 96, 94])]
    history += [
        failed(HOUR * (3 + index), kind)
        for index, kind in enumerate(
            [
                FailureKind.INVALID_RESULT,
                FailureKind.SERVICE_UNAVAILABLE,
                FailureKind.NO_SERVER,
                FailureKind.INVALID_RESULT,
            ]
        )
    ]

    state = judge(history)

    assert not state.slow
    assert state.evidence is not None
    assert state.evidence.medians[Metric.DOWNLOAD] == 95


def test_failures_between_slow_tests_do_not_break_the_run() -> None:
    history: list[TestOutcome] = [
        measured(0 * HOUR, download=30),
        failed(1 * HOUR, FailureKind.SERVICE_UNAVAILABLE),
        measured(2 * HOUR, download=25),
        failed(3 * HOUR, FailureKind.INVALID_RESULT),
        measured(4 * HOUR, download=28),
    ]

    state = judge(history)

    assert state.slow
    assert state.evidence is not None
    assert state.evidence.tests == 3
    assert state.evidence.medians[Metric.DOWNLOAD] == 28


@pytest.mark.parametrize(
    ("downloads", "expected"),
    [
        # A good line with a slow result in every three: one outlier per window.
        pytest.param([95, 96, 40] * 6, [False] * 18, id="good line, noisy"),
        # A slow line with a good result in every three.
        pytest.param([30, 28, 80] * 6, [False, False, *[True] * 16], id="slow line"),
        # Good and slow in turn, both far from the limit: slow once, and it stays.
        pytest.param([80, 40] * 9, [False] * 3 + [True] * 15, id="alternating far"),
        # Good and slow in turn, both close to the limit.
        pytest.param([53, 48] * 9, [False] * 3 + [True] * 15, id="alternating near"),
    ],
)
def test_a_mixed_trace_does_not_flap(
    downloads: list[float], expected: list[bool]
) -> None:
    history = hourly(downloads)

    assert slow_after_each(history) == expected


def test_restored_only_past_the_hysteresis_margin() -> None:
    slow = hourly([30, 28, 31])
    at_limit = hourly([52, 51, 53], first=3)
    short_of_margin = hourly([54.9, 54.9, 54.9], first=6)
    at_margin = hourly([55, 55, 55], first=9)
    history = [*slow, *at_limit, *short_of_margin, *at_margin]

    # The second test at 55 Mbit/s brings the median to 55: restored.
    assert slow_after_each(history) == [False, False, *[True] * 8, False, False]
    in_band = judge(history[:9])
    assert in_band.slow_since == slow[-1].finished
    assert in_band.evidence is not None
    assert in_band.evidence.violated == (Metric.DOWNLOAD,)
    assert in_band.evidence.medians[Metric.DOWNLOAD] == 54.9
    restored = judge(history[:11])
    assert restored.slow_since is None
    assert restored.evidence is not None
    assert restored.evidence.violated == ()


def test_restored_only_when_no_test_of_the_window_is_past_the_limit() -> None:
    history = hourly([30, 28, 31, 90, 91, 45, 92, 93, 94])

    assert slow_after_each(history) == [False, False, *[True] * 6, False]
    almost = judge(history[:5])
    assert almost.evidence is not None
    # 30, 90, 91: the median is past the margin, the first test is still slow.
    assert almost.evidence.medians[Metric.DOWNLOAD] == 90
    assert almost.evidence.violated == (Metric.DOWNLOAD,)


def test_ping_is_restored_below_the_limit_less_the_margin() -> None:
    history = [
        *[measured(HOUR * index, ping=180) for index in range(3)],
        *[measured(HOUR * (3 + index), ping=95) for index in range(3)],
        *[measured(HOUR * (6 + index), ping=90) for index in range(3)],
    ]

    assert slow_after_each(history) == [False, False, *[True] * 5, False, False]


def test_only_the_metrics_of_the_episode_must_clear_the_margin() -> None:
    # Upload stays just above its 10 Mbit/s limit throughout: never violated, so the
    # end of a download episode does not wait for it to reach 11 Mbit/s.
    history = [
        *[measured(HOUR * index, download=30, upload=10.5) for index in range(3)],
        *[measured(HOUR * (3 + index), download=90, upload=10.5) for index in range(3)],
    ]

    assert slow_after_each(history) == [False, False, True, True, True, False]


def test_a_metric_that_joins_the_episode_must_clear_the_margin_too() -> None:
    history = [
        *[measured(HOUR * index, download=30, upload=15) for index in range(3)],
        *[measured(HOUR * (3 + index), download=30, upload=6) for index in range(3)],
        *[measured(HOUR * (6 + index), download=90, upload=10.5) for index in range(3)],
        *[measured(HOUR * (9 + index), download=90, upload=12) for index in range(3)],
    ]

    states = slow_after_each(history)

    assert states == [False, False, *[True] * 8, False, False]
    holding = judge(history[:9])
    assert holding.evidence is not None
    assert holding.evidence.violated == (Metric.UPLOAD,)


def test_evidence_carries_what_a_message_quotes() -> None:
    old = measured(timedelta(0), download=95)
    window = [
        measured(HOUR, download=30, upload=19, ping=40),
        measured(2 * HOUR, download=24, upload=8, ping=35),
        measured(3 * HOUR, download=33, upload=6, ping=60),
    ]

    state = judge([old, *window], T0 + 3 * HOUR + timedelta(minutes=5))

    evidence = state.evidence
    assert evidence is not None
    assert evidence.medians == {
        Metric.DOWNLOAD: 30,
        Metric.UPLOAD: 8,
        Metric.PING: 40,
    }
    assert evidence.violated == (Metric.DOWNLOAD, Metric.UPLOAD)
    assert evidence.thresholds == LIMITS
    assert evidence.first_test == window[0].started
    assert evidence.last_test == window[-1].finished
    assert evidence.tests == 3


def test_stale_tests_do_not_count() -> None:
    # Two slow tests, then Home Assistant is off for a night, then one more.
    history = [*hourly([30, 28]), measured(14 * HOUR, download=31)]

    assert slow_after_each(history) == [False, False, False]
    assert judge(history).evidence is None


def test_evidence_goes_stale_but_a_slow_episode_holds() -> None:
    history = hourly([30, 28, 31])

    # The oldest test of the window decides how fresh the evidence is.
    fresh = judge(history, T0 + SETTINGS.max_age)
    later = judge(history, T0 + SETTINGS.max_age + timedelta(minutes=1))

    assert fresh.evidence is not None
    assert later.evidence is None
    assert later.slow
    assert later.slow_since == history[-1].finished


def test_fewer_tests_than_the_window_cannot_be_slow() -> None:
    state = judge(hourly([5, 6]))

    assert not state.slow
    assert state.evidence is None


def test_a_longer_window_needs_a_longer_run() -> None:
    settings = replace(SETTINGS, window=5)
    history = hourly([95, 96, 94, 93, 97, 30, 28, 31])

    states = [
        evaluate(history[: index + 1], LIMITS, settings, history[index].finished).slow
        for index in range(len(history))
    ]

    assert states == [False] * 7 + [True]


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"window": 0}, "window"), ({"hysteresis": -0.1}, "margin")],
)
def test_settings_without_a_possible_judgement_are_refused(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        replace(SETTINGS, **settings)


# --- before a full window -----------------------------------------------------------


def test_good_tests_before_a_full_window_leave_the_line_fine() -> None:
    states = [judge(hourly([95, 92][: count + 1])) for count in range(2)]

    assert [state.tests_needed for state in states] == [2, 1]
    assert not any(state.undecided or state.slow for state in states)


def test_a_test_past_a_limit_before_a_full_window_leaves_it_undecided() -> None:
    # The median of the first window may still go either way, whatever comes between.
    history = hourly([30, 95])

    states = [judge(history[:1]), judge(history)]

    assert [state.undecided for state in states] == [True, True]
    assert [state.tests_needed for state in states] == [2, 1]


def test_a_full_window_decides_even_with_a_test_past_a_limit() -> None:
    fine = judge(hourly([30, 95, 96]))
    slow = judge(hourly([30, 28, 96]))

    assert (fine.slow, fine.undecided, fine.tests_needed) == (False, False, 0)
    assert (slow.slow, slow.undecided, slow.tests_needed) == (True, False, 0)


def test_tests_too_old_to_count_are_needed_again() -> None:
    history = hourly([95, 30, 96])
    # Only the last test is recent enough.
    later = history[0].finished + SETTINGS.max_age + 2 * HOUR

    state = judge(history, later)

    assert state.evidence is None
    assert state.tests_needed == 2
    assert not state.undecided


def test_a_slow_line_without_recent_evidence_stays_slow_not_undecided() -> None:
    history = hourly([30, 28, 31])

    state = judge(history, history[-1].finished + SETTINGS.max_age + HOUR)

    assert state.slow
    assert state.evidence is None
    assert state.tests_needed == 3
    assert not state.undecided


# --- outages ------------------------------------------------------------------------


def two_hour_outage() -> list[TestOutcome]:
    """A good test; a failed test and probes every 2 minutes for 2 h; a good test."""
    minute = timedelta(minutes=1)
    history: list[TestOutcome] = [measured(timedelta(0))]
    history += [failed(HOUR + index * 2 * minute) for index in range(61)]
    history.append(measured(3 * HOUR + 2 * minute))
    return history


def test_a_two_hour_outage_with_probes_is_one_outage() -> None:
    history = two_hour_outage()

    during = judge(history[:40])
    after = judge(history)

    assert during.outage is not None
    assert during.outage.start == T0 + HOUR
    assert during.outage.end is None
    assert during.outage.duration is None
    assert during.last_outage is None
    assert after.outage is None
    assert after.last_outage is not None
    assert after.last_outage.start == T0 + HOUR
    assert after.last_outage.end == T0 + 3 * HOUR + timedelta(minutes=2)
    assert after.last_outage.duration == timedelta(hours=2, minutes=2)
    assert not after.slow


def test_a_timed_out_test_is_an_outage() -> None:
    # A line whose upstream is dead lets connections time out rather than refuse them.
    history: list[TestOutcome] = [
        measured(timedelta(0)),
        failed(HOUR, FailureKind.TIMEOUT),
    ]

    state = judge(history)

    assert state.outage is not None
    assert state.outage.start == T0 + HOUR


@pytest.mark.parametrize(
    "kind",
    [
        FailureKind.SERVICE_UNAVAILABLE,
        FailureKind.INVALID_RESULT,
        FailureKind.NO_SERVER,
    ],
)
def test_a_failing_test_service_is_neither_outage_nor_slow(kind: FailureKind) -> None:
    # e.g. speedtest.net answering 403: the internet works, the service does not.
    history: list[TestOutcome] = [*hourly([95, 96, 94])]
    history += [failed(HOUR * (3 + index), kind) for index in range(3)]

    state = judge(history)

    assert state.outage is None
    assert state.last_outage is None
    assert not state.slow
    assert next_check(state, history, LIMITS, SCHEDULE).kind is CheckKind.FULL_TEST


def test_a_test_service_answering_ends_the_outage() -> None:
    history: list[TestOutcome] = [
        measured(timedelta(0)),
        failed(HOUR),
        failed(HOUR + timedelta(minutes=2)),
        failed(HOUR + timedelta(minutes=4), FailureKind.SERVICE_UNAVAILABLE),
    ]

    state = judge(history)

    assert state.outage is None
    assert state.last_outage is not None
    assert state.last_outage.end == T0 + HOUR + timedelta(minutes=4)


def test_a_cancelled_test_neither_starts_nor_ends_an_outage() -> None:
    up: list[TestOutcome] = [
        measured(timedelta(0)),
        failed(HOUR, FailureKind.CANCELLED),
    ]
    down: list[TestOutcome] = [
        measured(timedelta(0)),
        failed(HOUR),
        failed(2 * HOUR, FailureKind.CANCELLED),
    ]

    assert judge(up).outage is None
    outage = judge(down).outage
    assert outage is not None
    assert outage.start == T0 + HOUR


def test_the_last_outage_is_the_most_recent_one() -> None:
    history: list[TestOutcome] = [
        measured(timedelta(0)),
        failed(HOUR),
        measured(HOUR + timedelta(minutes=12)),
        failed(5 * HOUR),
        failed(5 * HOUR + timedelta(minutes=2)),
        measured(5 * HOUR + timedelta(minutes=4)),
    ]

    state = judge(history)

    assert state.last_outage is not None
    assert state.last_outage.start == T0 + 5 * HOUR
    assert state.last_outage.duration == timedelta(minutes=4)


def test_an_outage_does_not_end_a_slow_episode() -> None:
    history: list[TestOutcome] = [*hourly([30, 28, 31])]
    history += [failed(3 * HOUR + index * timedelta(minutes=2)) for index in range(10)]

    state = judge(history)

    assert state.slow
    assert state.outage is not None


# --- next check ---------------------------------------------------------------------


def test_a_line_that_is_fine_is_tested_at_the_interval() -> None:
    history = hourly([95, 96, 94])

    check = next_check(judge(history), history, LIMITS, SCHEDULE)

    assert check.kind is CheckKind.FULL_TEST
    assert check.delay == SCHEDULE.interval


def test_no_history_waits_for_the_interval() -> None:
    state = evaluate([], LIMITS, SETTINGS, T0)

    check = next_check(state, [], LIMITS, SCHEDULE)

    assert check.kind is CheckKind.FULL_TEST
    assert check.delay == SCHEDULE.interval


def test_an_outage_is_probed() -> None:
    history = two_hour_outage()[:5]

    check = next_check(judge(history), history, LIMITS, SCHEDULE)

    assert check.kind is CheckKind.PROBE
    assert check.delay == SCHEDULE.outage_probe_interval
    assert "outage" in check.reason


def test_a_single_slow_result_is_confirmed_sooner() -> None:
    history = hourly([95, 96, 94, 30])

    state = judge(history)
    check = next_check(state, history, LIMITS, SCHEDULE)

    assert not state.slow
    assert state.confirm_tests_used == 0
    assert check.kind is CheckKind.FULL_TEST
    assert check.delay == SCHEDULE.confirm_delay
    assert "download" in check.reason


def test_confirmations_stop_once_the_line_is_judged_slow() -> None:
    minutes = timedelta(minutes=10)
    history = [
        *hourly([95, 96, 94, 30]),
        measured(3 * HOUR + minutes, download=28),
    ]

    state = judge(history)

    assert state.slow
    assert next_check(state, history, LIMITS, SCHEDULE).delay == SCHEDULE.interval


def test_at_most_max_confirm_tests_per_suspicion() -> None:
    # A long window takes longer to judge than the confirmations allowed.
    settings = replace(SETTINGS, window=9, max_age=timedelta(hours=12))
    schedule = replace(SCHEDULE, max_confirm_tests=2)
    history: list[TestOutcome] = [*hourly([95] * 9), measured(9 * HOUR, download=30)]
    delays: list[timedelta] = []
    for _ in range(4):
        state = evaluate(history, LIMITS, settings, history[-1].finished)
        assert not state.slow
        check = next_check(state, history, LIMITS, schedule)
        delays.append(check.delay)
        history.append(measured(history[-1].finished - T0 + check.delay, download=30))

    confirm = schedule.confirm_delay
    assert delays == [confirm, confirm, HOUR, HOUR]
    assert evaluate(history, LIMITS, settings, history[-1].finished).slow


def test_failed_confirmations_use_up_the_bound() -> None:
    # speedtest.net refusing the confirmations must not make them go on for ever.
    confirm = SCHEDULE.confirm_delay
    history: list[TestOutcome] = [
        *hourly([95, 96, 94, 30]),
        failed(3 * HOUR + confirm, FailureKind.SERVICE_UNAVAILABLE),
    ]

    first = judge(history)
    history.append(failed(3 * HOUR + 2 * confirm, FailureKind.SERVICE_UNAVAILABLE))
    second = judge(history)

    assert first.confirm_tests_used == 1
    assert next_check(first, history[:-1], LIMITS, SCHEDULE).delay == confirm
    assert second.confirm_tests_used == 2
    assert next_check(second, history, LIMITS, SCHEDULE).delay == HOUR


def test_a_good_result_ends_the_suspicion_and_a_new_one_may_be_confirmed() -> None:
    schedule = replace(SCHEDULE, max_confirm_tests=1)
    confirm = SCHEDULE.confirm_delay
    history = [
        *hourly([95, 96, 94, 30]),
        measured(3 * HOUR + confirm, download=90),
        measured(4 * HOUR + confirm, download=92),
        measured(5 * HOUR + confirm, download=35),
    ]

    cleared = judge(history[:5])
    suspected_again = judge(history)

    assert not cleared.slow
    assert next_check(cleared, history[:5], LIMITS, schedule).delay == HOUR
    assert not suspected_again.slow
    assert suspected_again.confirm_tests_used == 0
    assert next_check(suspected_again, history, LIMITS, schedule).delay == confirm


def test_a_slow_line_is_tested_at_the_interval() -> None:
    history = hourly([30, 28, 31])

    check = next_check(judge(history), history, LIMITS, SCHEDULE)

    assert check.kind is CheckKind.FULL_TEST
    assert check.delay == SCHEDULE.interval


def test_a_confirmation_never_waits_longer_than_the_interval() -> None:
    schedule = replace(
        SCHEDULE, interval=timedelta(minutes=5), confirm_delay=timedelta(minutes=10)
    )
    history = hourly([95, 96, 94, 30])

    check = next_check(judge(history), history, LIMITS, schedule)

    assert check.delay == timedelta(minutes=5)


# --- data and history ---------------------------------------------------------------


def test_data_used_since_counts_tests_and_probes_from_then_on() -> None:
    history: list[TestOutcome] = [
        measured(timedelta(0), download=100, upload=20),
        measured(HOUR, download=80, upload=16),
        failed(2 * HOUR, used=4_000),
    ]

    assert data_used_since(history, T0 + HOUR) == 100_000_000 + 20_000_000 + 4_000
    assert data_used_since(history, T0) == 120_000_000 + 150_000_000 + 4_000
    assert data_used_since(history, T0 + 3 * HOUR) == 0


def test_start_of_month_in_utc() -> None:
    now = datetime(2026, 3, 31, 23, 59, 59, 999_999, tzinfo=UTC)

    assert start_of_month(now) == datetime(2026, 3, 1, tzinfo=UTC)
    assert start_of_month(datetime(2026, 3, 1, tzinfo=UTC)) == datetime(
        2026, 3, 1, tzinfo=UTC
    )


def test_start_of_month_in_a_local_zone_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # Summer time started on 29 March; the month started in winter time.
    now = datetime(2026, 3, 30, 12, 0, tzinfo=berlin)

    start = start_of_month(now)

    assert start == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert start.utcoffset() == timedelta(hours=1)


def test_start_of_month_needs_a_time_zone() -> None:
    with pytest.raises(ValueError, match="aware"):
        start_of_month(datetime(2026, 3, 2, 8, 0))  # noqa: DTZ001


def _prune(history: Sequence[TestOutcome], now: datetime) -> list[TestOutcome]:
    """Prune as the coordinator does."""
    return prune_history(
        history, now, min_age=HISTORY_MIN_AGE, min_count=HISTORY_MIN_COUNT
    )


def test_prune_keeps_the_last_week_when_that_is_more() -> None:
    # Every 10 minutes for 10 days: the last week is 1009 outcomes, more than 500.
    step = timedelta(minutes=10)
    history = [measured(step * index) for index in range(1440)]
    now = history[-1].finished

    kept = _prune(history, now)

    assert len(kept) == 1009
    assert kept[0].finished == now - timedelta(days=7)
    assert kept == history[-1009:]


def test_prune_keeps_the_last_500_when_that_is_more() -> None:
    # Hourly for 30 days: the last week is only 168 outcomes.
    history = [measured(HOUR * index) for index in range(720)]
    now = history[-1].finished

    kept = _prune(history, now)

    assert kept == history[-500:]


def test_prune_keeps_a_short_history_whole() -> None:
    history = [measured(HOUR * index) for index in range(10)]

    assert _prune(history, T0 + timedelta(days=30)) == history


def test_prune_with_other_limits() -> None:
    history = [measured(HOUR * index) for index in range(48)]

    kept = prune_history(
        history, history[-1].finished, min_age=timedelta(hours=5), min_count=3
    )

    assert kept == history[-6:]
