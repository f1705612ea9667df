"""Replay synthetic traces through the evaluation; count the complaints it would send.

Run from the repository root:

    .venv/bin/python benchmarks/replay.py [--runs 20]

Each scenario from traces.py is run with `--runs` seeds. A strategy decides when the
next test runs and when a complaint goes out:

- ISP Watch (defaults): evaluate() + next_check() as the coordinator drives them, with
  the settings a new entry gets: the next check after the delay next_check() gives,
  probes during an outage and a full test as soon as a probe gets through. One
  complaint per slow episode (when it is confirmed) and one per ended outage.
- ISP Watch, confirm after 10 min: the same with quicker confirmation tests.
- ISP Watch, fixed schedule: the same judgement without adaptive testing (no
  confirmation tests, an outage checked at the regular interval).
- Naive: a test every interval; a post whenever one test falls below a limit after one
  that did not, and whenever a test fails after one that did not.

A last table replays evening household downloads (busy_replay.py's household model and
its busy-evenings week, the same evaluation): false slow complaints today, and with
busy tests left out of the judgement, seen through a router's byte counter or its
rate sensor, with and without deferring scheduled tests on a busy line.

A complaint is right when it falls in a real episode (slow: confirmed between its start
and one interval after its end; outage: the measured outage overlaps the real one);
every other complaint, including a second one about the same episode, is false.
Detection delay is the time from the start of the real episode to the moment the
strategy knew (slow confirmed, first failed test), in test intervals.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
import statistics
import sys

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.traces import (
    LIMITS,
    PLAN_DOWNLOAD_MBPS,
    PLAN_UPLOAD_MBPS,
    PROBE_BYTES,
    PROBE_DURATION,
    SCENARIOS,
    SHIPPED,
    Line,
    Span,
    evening_congestion,
)
from custom_components.isp_watch.const import HISTORY_MIN_AGE, HISTORY_MIN_COUNT
from custom_components.isp_watch.evaluation import (
    CheckKind,
    ScheduleSettings,
    evaluate,
    measured_values,
    metrics_violated,
    next_check,
    prune_history,
)
from custom_components.isp_watch.models import Measurement, TestFailure, TestOutcome

DEFAULTS = SHIPPED.schedule
INTERVAL = DEFAULTS.interval
FIXED = replace(DEFAULTS, max_confirm_tests=0, outage_probe_interval=INTERVAL)
CONFIRM_SOONER = replace(DEFAULTS, confirm_delay=timedelta(minutes=10))
EVALUATION = SHIPPED.evaluation


@dataclass(frozen=True, kw_only=True)
class Complaint:
    """A post the strategy would send, and the time span it is about."""

    kind: str  # "slow" or "outage"
    known: datetime  # when the strategy knew: slow confirmed, outage first seen
    about: Span


@dataclass(kw_only=True)
class Run:
    """What one strategy did on one trace."""

    complaints: list[Complaint] = field(default_factory=list)
    full_tests: int = 0
    probes: int = 0
    bytes_used: int = 0
    days: float = 0.0


@dataclass(kw_only=True)
class Tally:
    """Complaints of one kind judged against the truth, summed over runs."""

    sent: int = 0
    expected: int = 0
    right: int = 0
    delays: list[float] = field(default_factory=list)

    @property
    def false(self) -> int:
        """Complaints that match no real episode, or repeat one."""
        return self.sent - self.right

    @property
    def missed(self) -> int:
        """Real episodes that got no complaint."""
        return self.expected - self.right


@dataclass(kw_only=True)
class Score:
    """What a strategy did on a scenario, summed over runs."""

    slow: Tally = field(default_factory=Tally)
    outage: Tally = field(default_factory=Tally)
    full_tests: int = 0
    probes: int = 0
    bytes_used: int = 0
    days: float = 0.0
    long_outage_measured: list[timedelta] = field(default_factory=list)


def run_isp_watch(line: Line, schedule: ScheduleSettings, offset: timedelta) -> Run:
    """Drive the evaluation as the coordinator does, over the whole trace."""
    run = Run(days=(line.end - line.start) / timedelta(days=1))
    history: list[TestOutcome] = []
    state = evaluate(history, LIMITS, EVALUATION, line.start)
    moment = line.start + offset
    kind = CheckKind.FULL_TEST
    while moment < line.end:
        if kind is CheckKind.PROBE and state.outage is not None:
            run.probes += 1
            failure = line.probe(moment)
            if failure is None:
                run.bytes_used += PROBE_BYTES
                # The line answers again: a full test at once, as the coordinator does.
                outcome: TestOutcome = line.full_test(moment + PROBE_DURATION)
                run.full_tests += 1
            else:
                outcome = failure
        else:
            outcome = line.full_test(moment)
            run.full_tests += 1
        run.bytes_used += outcome.bytes_received + outcome.bytes_sent
        history = prune_history(
            [*history, outcome],
            outcome.finished,
            min_age=HISTORY_MIN_AGE,
            min_count=HISTORY_MIN_COUNT,
        )
        previous, state = state, evaluate(history, LIMITS, EVALUATION, outcome.finished)
        if state.slow and not previous.slow and state.slow_since is not None:
            run.complaints.append(
                Complaint(
                    kind="slow",
                    known=state.slow_since,
                    about=Span(start=state.slow_since, end=state.slow_since),
                )
            )
        ended = state.last_outage
        if ended is not None and ended != previous.last_outage and ended.end:
            run.complaints.append(
                Complaint(
                    kind="outage",
                    known=ended.start,
                    about=Span(start=ended.start, end=ended.end),
                )
            )
        check = next_check(state, history, LIMITS, schedule)
        kind = check.kind
        moment = outcome.finished + check.delay
    return run


def run_naive(line: Line, offset: timedelta) -> Run:
    """A test every interval; post when one test is slow or fails."""
    run = Run(days=(line.end - line.start) / timedelta(days=1))
    moment = line.start + offset
    previous: TestOutcome | None = None
    slow_before = False
    while moment < line.end:
        outcome = line.full_test(moment)
        run.full_tests += 1
        run.bytes_used += outcome.bytes_received + outcome.bytes_sent
        if isinstance(outcome, Measurement):
            slow = bool(metrics_violated(measured_values(outcome), LIMITS))
            if slow and not slow_before:
                run.complaints.append(
                    Complaint(
                        kind="slow",
                        known=outcome.finished,
                        about=Span(start=outcome.finished, end=outcome.finished),
                    )
                )
            slow_before = slow
        elif not isinstance(previous, TestFailure):
            run.complaints.append(
                Complaint(
                    kind="outage",
                    known=outcome.finished,
                    about=Span(start=outcome.finished, end=outcome.finished),
                )
            )
        previous = outcome
        moment = outcome.finished + INTERVAL
    return run


def score(line: Line, run: Run, into: Score) -> None:
    """Match complaints to real episodes and add the result to the score."""
    into.full_tests += run.full_tests
    into.probes += run.probes
    into.bytes_used += run.bytes_used
    into.days += run.days
    into.slow.expected += len(line.slow_episodes)
    into.outage.expected += len(line.outages)
    unmatched_slow: list[Span] = list(line.slow_episodes)
    unmatched_outages = list(line.outages)
    for complaint in run.complaints:
        if complaint.kind == "slow":
            tally, pool = into.slow, unmatched_slow
            episode = next(
                (
                    item
                    for item in pool
                    if item.start <= complaint.known <= item.end + INTERVAL
                ),
                None,
            )
        else:
            tally, pool = into.outage, unmatched_outages
            episode = next(
                (
                    item
                    for item in pool
                    if complaint.about.start <= item.end
                    and complaint.about.end >= item.start
                ),
                None,
            )
            if episode is not None and episode.duration >= timedelta(hours=1):
                into.long_outage_measured.append(complaint.about.duration)
        tally.sent += 1
        if episode is None:
            continue
        pool.remove(episode)
        tally.right += 1
        tally.delays.append((complaint.known - episode.start) / INTERVAL)


STRATEGIES: dict[str, Callable[[Line, timedelta], Run]] = {
    "ISP Watch (defaults)": lambda line, offset: run_isp_watch(line, DEFAULTS, offset),
    "ISP Watch, confirm after 10 min": lambda line, offset: run_isp_watch(
        line, CONFIRM_SOONER, offset
    ),
    "ISP Watch, fixed hourly schedule": lambda line, offset: run_isp_watch(
        line, FIXED, offset
    ),
    "naive: one test posts": run_naive,
}


def household_downloads(runs: int) -> list[str]:
    """Evening household downloads, with and without busy detection: table rows."""
    # Imported here: busy_replay builds on this module's scoring.
    from benchmarks import busy_replay

    rows: list[str] = []
    for scenario in (busy_replay.busy_evenings, evening_congestion):
        for name, strategy in busy_replay.STRATEGIES.items():
            line_name, total, counts = busy_replay.replay(scenario, strategy, runs)
            rows.append(
                _row(line_name, name, "slow", total.slow)
                + f" {counts.deferrals / total.days:>7.2f}"
            )
        rows.append("")
    return rows


def _row(scenario: str, strategy: str, kind: str, tally: Tally) -> str:
    delay = f"{statistics.mean(tally.delays):.2f}" if tally.delays else "-"
    return (
        f"{scenario:<19} {strategy:<33} {kind:<7} {tally.sent:>5} {tally.expected:>6} "
        f"{tally.false:>5} {tally.missed:>6} {delay:>6}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run every scenario with every strategy and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="seeds per scenario")
    arguments = parser.parse_args(argv)
    print(
        f"{arguments.runs} seeded runs per scenario; tests every "
        f"{INTERVAL.total_seconds() / 60:.0f} min; limits "
        f"{LIMITS.min_download_mbps:g}/{LIMITS.min_upload_mbps:g} Mbit/s, "
        f"{LIMITS.max_ping_ms:g} ms; confirmation after "
        f"{DEFAULTS.confirm_delay.total_seconds() / 60:.0f} min; "
        f"plan {PLAN_DOWNLOAD_MBPS:g}/{PLAN_UPLOAD_MBPS:g} Mbit/s\n"
    )
    header = (
        f"{'scenario':<19} {'strategy':<33} {'posts':<7} {'sent':>5} {'expect':>6} "
        f"{'false':>5} {'missed':>6} {'delay':>6}"
    )
    usage_header = (
        f"{'scenario':<19} {'strategy':<33} {'tests/day':>9} {'probes/day':>10} "
        f"{'GB/day':>7}"
    )
    usage: list[str] = []
    long_outages: list[str] = []
    print(header)
    print("-" * len(header))
    for scenario in SCENARIOS:
        for name, strategy in STRATEGIES.items():
            total = Score()
            for seed in range(1, arguments.runs + 1):
                line = scenario(seed)
                # Tests do not start on the hour: each run starts at another minute.
                offset = timedelta(minutes=(seed * 37) % 60)
                score(line, strategy(line, offset), total)
            for kind, tally in (("slow", total.slow), ("outage", total.outage)):
                if tally.sent or tally.expected:
                    print(_row(line.name, name, kind, tally))
            usage.append(
                f"{line.name:<19} {name:<33} {total.full_tests / total.days:>9.1f} "
                f"{total.probes / total.days:>10.1f} "
                f"{total.bytes_used / total.days / 1e9:>7.2f}"
            )
            # The naive rule knows no outage durations: nothing to show for it.
            if any(total.long_outage_measured):
                minutes = [
                    item.total_seconds() / 60 for item in total.long_outage_measured
                ]
                long_outages.append(
                    f"{name:<33} {min(minutes):>4.0f} {statistics.mean(minutes):>5.0f} "
                    f"{max(minutes):>4.0f} min  ({len(minutes)} runs)"
                )
        print()
    print(
        "sent/expect/false/missed: posts summed over the runs; delay: mean time from\n"
        "the start of a real episode to detection, in test intervals.\n"
    )
    print(usage_header)
    print("-" * len(usage_header))
    print("\n".join(usage))
    print("\nThe 2-h outage as measured (min, mean, max):")
    print("\n".join(long_outages))
    print(
        "\nEvening household downloads: slow complaints, busy tests left out "
        "(router polled every 30 s, share 10%)\n"
    )
    busy_header = f"{header} {'defer/d':>7}"
    print(busy_header)
    print("-" * len(busy_header))
    print("\n".join(household_downloads(arguments.runs)))


if __name__ == "__main__":
    main()
