"""Replay household evenings: how many false complaints does the busy flag remove?

Run from the repository root:

    .venv/bin/python benchmarks/busy_replay.py [--runs 20]

The traces of traces.py say when someone in the house was using the line; a test taken
then measures 30-55% of the line. Here the household's traffic is also seen the way a
router sensor would show it, polled every 30 s, and every test goes through the traffic
module exactly as the coordinator will drive it:

- today: every measurement enters the slow judgement (evaluation.evaluate()).
- busy flag: router samples around each test -> router_other_traffic() ->
  judge_busy(); busy tests stay in the history but are left out of the judgement.
- busy flag + deferral: the same, and before each test pre_test_decision() looks at the
  router's latest samples and waits 10 min while the line is busy, up to 3 times.

Two router sensors are replayed: a 32-bit byte counter in bytes (UPnP/IGD v1: it wraps
at 4 GiB, and a window with a wrap stays unknown) and a rate sensor in kB/s (FRITZ!Box
Tools, asuswrt and most others). A small share of samples is unavailable.

A complaint is false when no real slow episode is under way (benchmarks/replay.py
decides it the same way). The household model: in a session the household takes
45-70% of the line's download capacity and 2-10% of its upload; outside, a trickle of
0-1.5 Mbit/s down and 0-0.3 Mbit/s up.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import itertools
from pathlib import Path
import random
import statistics
import sys

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.replay import Complaint, Run, Score, score
from benchmarks.traces import (
    LIMITS,
    PLAN_DOWNLOAD_MBPS,
    PLAN_UPLOAD_MBPS,
    SCENARIOS,
    SHIPPED,
    TEST_PHASE_SECONDS,
    Line,
    Span,
    evening_congestion,
)
from custom_components.isp_watch.const import HISTORY_MIN_AGE, HISTORY_MIN_COUNT
from custom_components.isp_watch.evaluation import (
    evaluate,
    latest_measurement,
    next_check,
    prune_history,
)
from custom_components.isp_watch.models import (
    Direction,
    Measurement,
    TestOutcome,
    Verdict,
)
from custom_components.isp_watch.traffic import (
    BusyJudgement,
    PreTestAction,
    RouterSample,
    TrafficReading,
    delivered_mbps,
    judge_busy,
    pre_test_decision,
    router_other_traffic,
    router_sample,
    router_traffic_now,
)

# What a new entry runs with: the schedule, the judgement, the busy share and the
# deferral bound.
SCHEDULE = SHIPPED.schedule
EVALUATION = SHIPPED.evaluation
SHARE = SHIPPED.traffic.share
DEFERRAL = SHIPPED.traffic.deferral
POLL = timedelta(seconds=30)
UNAVAILABLE_SAMPLES = 0.005
# Frames on the WAN carry about 5% more than the test's payload.
FRAME_OVERHEAD = 66 / 1448


@dataclass(kw_only=True)
class Household:
    """What the house moves besides the tests, second by second, as a router sees it."""

    line: Line
    rng: random.Random
    poll_phase: timedelta
    kind: str  # "counter" or "rate"
    _session_rates: dict[Span, tuple[float, float]] = field(default_factory=dict)
    _trickle: dict[int, tuple[float, float]] = field(default_factory=dict)
    _counter_base: int = 0

    def __post_init__(self) -> None:
        """Draw each session's and each hour's rates once."""
        for span in self.line.household:
            self._session_rates[span] = (
                self.rng.uniform(0.45, 0.7),
                self.rng.uniform(0.02, 0.1),
            )
        self._counter_base = self.rng.randrange(2**32)

    def bits_per_second(self, moment: datetime) -> tuple[float, float]:
        """The household's download and upload rate at a moment."""
        capacity = 1.0
        for item in self.line.degradations:
            if item.holds(moment):
                capacity = item.factor
        for span, (down, up) in self._session_rates.items():
            if span.holds(moment):
                return (
                    down * capacity * PLAN_DOWNLOAD_MBPS * 1e6,
                    up * capacity * PLAN_UPLOAD_MBPS * 1e6,
                )
        hour = int(moment.timestamp() // 3600)
        if hour not in self._trickle:
            self._trickle[hour] = (
                self.rng.uniform(0, 1.5e6),
                self.rng.uniform(0, 0.3e6),
            )
        return self._trickle[hour]

    def samples(
        self,
        direction: Direction,
        first: datetime,
        last: datetime,
        test: Measurement | None = None,
    ) -> list[RouterSample]:
        """The sensor's samples from before `first` to after `last`, the test included.

        Polls fall on a fixed 30-s grid; the counter starts at a random 32-bit value,
        so some windows hold a wrap.
        """
        epoch = datetime.fromtimestamp(0, first.tzinfo) + self.poll_phase
        moment = first - (first - epoch) % POLL - POLL
        counted = 0.0
        samples = []
        while moment <= last + POLL:
            moved = self._bytes_between(moment - POLL, moment, direction, test)
            counted += moved
            if self.rng.random() < UNAVAILABLE_SAMPLES:
                samples.append(router_sample(moment, "unavailable", "B"))
            elif self.kind == "counter":
                value = (self._counter_base + round(counted)) % 2**32
                samples.append(router_sample(moment, str(value), "B"))
            else:
                rate = moved / POLL.total_seconds() / 1000
                samples.append(router_sample(moment, f"{rate:.1f}", "kB/s"))
            moment += POLL
        return samples

    def _bytes_between(
        self,
        start: datetime,
        end: datetime,
        direction: Direction,
        test: Measurement | None,
    ) -> float:
        """Bytes the household and the test moved between two moments."""
        index = 0 if direction is Direction.DOWNLOAD else 1
        edges = {start, end}
        for span in [*self.line.household, *self.line.degradations]:
            edges.update(edge for edge in (span.start, span.end) if start < edge < end)
        hour = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        if hour < end:
            edges.add(hour)
        if test is not None:
            for offset in (5, 5 + TEST_PHASE_SECONDS, 17, 17 + TEST_PHASE_SECONDS):
                edge = test.started + timedelta(seconds=offset)
                if start < edge < end:
                    edges.add(edge)
        ordered = sorted(edges)
        moved = 0.0
        for left, right in itertools.pairwise(ordered):
            seconds = (right - left).total_seconds()
            middle = left + (right - left) / 2
            per_second = self.bits_per_second(middle)[index] / 8
            per_second += _test_bytes_per_second(test, direction, middle)
            moved += per_second * seconds
        return moved


def _test_bytes_per_second(
    test: Measurement | None, direction: Direction, moment: datetime
) -> float:
    """The test's frames per second at a moment: download, then upload, 10 s each."""
    if test is None:
        return 0.0
    elapsed = (moment - test.started).total_seconds()
    if direction is Direction.DOWNLOAD and 5 <= elapsed < 5 + TEST_PHASE_SECONDS:
        payload = test.bytes_received
    elif direction is Direction.UPLOAD and 17 <= elapsed < 17 + TEST_PHASE_SECONDS:
        payload = test.bytes_sent
    else:
        return 0.0
    return payload * (1 + FRAME_OVERHEAD) / TEST_PHASE_SECONDS


def judge_test(household: Household, test: Measurement) -> BusyJudgement:
    """The busy judgement of a test from the router's samples around it."""
    readings: list[TrafficReading] = []
    for direction, own, measured in (
        (Direction.DOWNLOAD, test.bytes_received, test.download_mbps),
        (Direction.UPLOAD, test.bytes_sent, test.upload_mbps),
    ):
        samples = household.samples(
            direction, test.started - POLL, test.finished + POLL, test
        )
        readings.append(
            router_other_traffic(
                samples,
                direction=direction,
                start=test.started,
                end=test.finished,
                test_bytes=own,
                share_of_mbps=SHARE * measured,
            )
        )
    return judge_busy(
        readings,
        download_mbps=test.download_mbps,
        upload_mbps=test.upload_mbps,
        share=SHARE,
    )


def as_delivered(test: Measurement, judgement: BusyJudgement) -> Measurement:
    """The busy test with the rates the line carried: its own plus the household's."""
    return dataclasses.replace(
        test,
        download_mbps=delivered_mbps(judgement, Direction.DOWNLOAD, test.download_mbps),
        upload_mbps=delivered_mbps(judgement, Direction.UPLOAD, test.upload_mbps),
    )


def wait_for_quiet(
    household: Household, history: Sequence[TestOutcome], moment: datetime
) -> tuple[datetime, int]:
    """When the test really starts after deferrals, and how many there were."""
    latest = latest_measurement(history)
    used = 0
    while True:
        readings = []
        for direction in Direction:
            measured = (
                None
                if latest is None
                else latest.download_mbps
                if direction is Direction.DOWNLOAD
                else latest.upload_mbps
            )
            readings.append(
                router_traffic_now(
                    household.samples(direction, moment - 2 * POLL, moment),
                    direction=direction,
                    now=moment,
                    share_of_mbps=SHARE * (measured or 0.0),
                )
            )
        decision = pre_test_decision(
            readings,
            last_download_mbps=None if latest is None else latest.download_mbps,
            last_upload_mbps=None if latest is None else latest.upload_mbps,
            share=SHARE,
            policy=DEFERRAL,
            deferrals_used=used,
            pressed=False,
        )
        if decision.action is PreTestAction.RUN or decision.delay is None:
            return moment, used
        used = decision.deferrals_used
        moment += decision.delay


@dataclass(kw_only=True)
class Counts:
    """Verdicts and deferrals over a run."""

    verdicts: dict[Verdict, int] = field(default_factory=dict)
    deferrals: int = 0
    household_tests: int = 0
    household_busy: int = 0


def run(
    line: Line,
    offset: timedelta,
    household: Household | None,
    *,
    defer: bool,
    discount: bool,
    counts: Counts,
) -> Run:
    """Drive the evaluation as the coordinator does, busy tests left out.

    Each measurement carries its verdict into the history, as the coordinator records
    it, and the evaluation leaves busy ones out by itself; with `discount`, a busy test
    is instead counted at the rate the line delivered (its own plus the household's).
    """
    result = Run(days=(line.end - line.start) / timedelta(days=1))
    history: list[TestOutcome] = []
    state = evaluate(history, LIMITS, EVALUATION, line.start)
    moment = line.start + offset
    while moment < line.end:
        if household is not None and defer:
            # Compared with the last rate the judgement trusts, not a busy test's.
            trusted = [
                item
                for item in history
                if not (isinstance(item, Measurement) and item.busy)
            ]
            moment, used = wait_for_quiet(household, trusted, moment)
            counts.deferrals += used
        outcome = line.full_test(moment)
        result.full_tests += 1
        result.bytes_used += outcome.bytes_received + outcome.bytes_sent
        if household is not None and isinstance(outcome, Measurement):
            judgement = judge_test(household, outcome)
            verdict = judgement.verdict
            counts.verdicts[verdict] = counts.verdicts.get(verdict, 0) + 1
            in_session = any(span.holds(moment) for span in line.household)
            counts.household_tests += in_session
            counts.household_busy += in_session and verdict is Verdict.BUSY
            if discount and verdict is Verdict.BUSY:
                outcome = as_delivered(outcome, judgement)
            else:
                outcome = dataclasses.replace(outcome, verdict=verdict)
        history = prune_history(
            [*history, outcome],
            outcome.finished,
            min_age=HISTORY_MIN_AGE,
            min_count=HISTORY_MIN_COUNT,
        )
        previous = state
        state = evaluate(history, LIMITS, EVALUATION, outcome.finished)
        if state.slow and not previous.slow and state.slow_since is not None:
            result.complaints.append(
                Complaint(
                    kind="slow",
                    known=state.slow_since,
                    about=Span(start=state.slow_since, end=state.slow_since),
                )
            )
        moment = outcome.finished + next_check(state, history, LIMITS, SCHEDULE).delay
    return result


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """How busy tests are found and treated."""

    sensor: str | None  # None: no busy flag (today)
    defer: bool = False
    discount: bool = False


STRATEGIES: dict[str, Strategy] = {
    "today": Strategy(sensor=None),
    "busy left out, byte counter (UPnP)": Strategy(sensor="counter"),
    "busy left out, rate sensor (kB/s)": Strategy(sensor="rate"),
    "busy left out + deferral, rate": Strategy(sensor="rate", defer=True),
    "busy as test+other, rate sensor": Strategy(sensor="rate", discount=True),
}


def busy_evenings(seed: int) -> Line:
    """The evening-congestion week in a house that streams most evenings.

    On top of the trace's own sessions, one more starts about every 40 minutes from
    19:00 to 23:00, lasting 10-45 minutes: films, game updates, video calls.
    """
    line = evening_congestion(seed)
    rng = random.Random(seed * 104729)
    extra: list[Span] = []
    for day in range((line.end - line.start).days):
        moment = line.start + timedelta(days=day, hours=19)
        while moment < line.start + timedelta(days=day, hours=23):
            moment += timedelta(minutes=rng.expovariate(1 / 40))
            extra.append(
                Span(start=moment, end=moment + timedelta(minutes=rng.uniform(10, 45)))
            )
    line.name = "busy evenings"
    line.household = [*line.household, *extra]
    return line


def replay(
    scenario: Callable[[int], Line], strategy: Strategy, runs: int
) -> tuple[str, Score, Counts]:
    """Every seeded run of a scenario under a strategy: its name, score and counts."""
    total = Score()
    counts = Counts()
    name = ""
    for seed in range(1, runs + 1):
        line = scenario(seed)
        name = line.name
        offset = timedelta(minutes=(seed * 37) % 60)
        household = (
            None
            if strategy.sensor is None
            else Household(
                line=line,
                rng=random.Random(seed * 7919),
                poll_phase=timedelta(seconds=seed % 30),
                kind=strategy.sensor,
            )
        )
        outcome = run(
            line,
            offset,
            household,
            defer=strategy.defer,
            discount=strategy.discount,
            counts=counts,
        )
        score(line, outcome, total)
    return name, total, counts


def main(argv: Sequence[str] | None = None) -> None:
    """Run the scenarios with and without the busy flag and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="seeds per scenario")
    arguments = parser.parse_args(argv)
    header = (
        f"{'scenario':<19} {'strategy':<34} {'sent':>4} {'expect':>6} {'false':>5} "
        f"{'missed':>6} {'delay':>5} {'busy':>5} {'unkn':>5} {'caught':>6} "
        f"{'defer/d':>7}"
    )
    print(
        f"{arguments.runs} seeded runs per scenario; slow complaints only; share "
        f"{SHARE:.0%}; router polled every {POLL.total_seconds():.0f} s\n"
    )
    print(header)
    print("-" * len(header))
    scenarios: Sequence[Callable[[int], Line]] = (busy_evenings, *SCENARIOS)
    for scenario in scenarios:
        for name, strategy in STRATEGIES.items():
            line_name, total, counts = replay(scenario, strategy, arguments.runs)
            judged = sum(counts.verdicts.values()) or 1
            tally = total.slow
            delay = f"{statistics.mean(tally.delays):.2f}" if tally.delays else "-"
            caught = (
                f"{counts.household_busy / counts.household_tests:.0%}"
                if counts.household_tests
                else "-"
            )
            print(
                f"{line_name:<19} {name:<34} {tally.sent:>4} {tally.expected:>6} "
                f"{tally.false:>5} {tally.missed:>6} {delay:>5} "
                f"{counts.verdicts.get(Verdict.BUSY, 0) / judged:>5.1%} "
                f"{counts.verdicts.get(Verdict.UNKNOWN, 0) / judged:>5.1%} "
                f"{caught:>6} {counts.deferrals / total.days:>7.2f}"
            )
        print()
    print(
        "sent/expect/false/missed: slow complaints summed over the runs; delay: from\n"
        "the start of a real slow episode to its confirmation, in test intervals;\n"
        "busy/unkn: share of measurements judged busy/unknown; caught: tests taken\n"
        "during a household session that were judged busy; defer/d: deferrals a day."
    )


if __name__ == "__main__":
    main()
