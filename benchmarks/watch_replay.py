"""Replay outage traces through the connectivity watch; how well are outages timed?

Run from the repository root:

    .venv/bin/python benchmarks/watch_replay.py [--runs 20]

Scenarios, each run with `--runs` seeds:

- outages (traces.py): three days, outages of 5, 8, 12 and 20 minutes and 2 hours, and
  90 minutes of speedtest.net refusing tests.
- short outages: three days, five outages of 5 to 20 minutes at random times, and two
  hours of maintenance on one of the two test servers.

A round runs every probe interval from a random second of the first minute; while an
hourly full test runs (25 s) rounds are skipped, as the coordinator pauses the watch.
A round's verdict follows the truth: down while the line is down; a server problem while
one server is in maintenance (the other answers); up otherwise, also while speedtest.net
refuses tests, because rounds go to the test servers and never to speedtest.net.

The bytes of each kind of round are measured once per run of the benchmark, by the real
probe against servers on 127.0.0.1 with the default timeouts: an answered round, a round
whose first server refuses, and a round where both servers stall and DNS hangs.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Sequence
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
import random
import socket
import statistics
import sys

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.traces import DAY, TEST_DURATION, TRACE_START, Line, Span, outages
from custom_components.isp_watch.connectivity import (
    BYTES_PER_DAY_BUDGET,
    ConnectivityProbe,
    Episode,
    EpisodeKind,
    ProbeTarget,
    ProbeVerdict,
    WatchSettings,
    WatchState,
    pause,
    resume,
    step,
)
from custom_components.isp_watch.const import DEFAULT_WATCH_FAILURES

FULL_TEST_INTERVAL = timedelta(minutes=60)
SERVER_HOST = "speedtest.example-fiber.net"
# Probe interval in minutes (1 is the default), and whether a round that falls in a
# full test runs right after it.
VARIANTS = ((1, False), (1, True), (2, False), (5, False), (10, False))
SHORT = timedelta(minutes=5)
EDGE_GOAL = timedelta(minutes=2)


@dataclass(kw_only=True)
class Trace:
    """A line's truth for the watch: outages, refusals, one server's maintenance."""

    line: Line
    maintenance: list[Span] = field(default_factory=list)


def traced_outages(seed: int) -> Trace:
    """The outage trace of traces.py."""
    return Trace(line=outages(seed))


def short_outages(seed: int) -> Trace:
    """Five outages of 5 to 20 minutes at random times, one server down for 2 hours."""
    rng = random.Random(seed)
    days = 3
    spans: list[Span] = []
    while len(spans) < 5:
        start = TRACE_START + timedelta(minutes=rng.uniform(30, days * 24 * 60 - 60))
        span = Span(start=start, end=start + timedelta(minutes=rng.uniform(5, 20)))
        # At least an hour apart, so each outage is judged on its own.
        if all(abs(span.start - other.start) > timedelta(hours=1) for other in spans):
            spans.append(span)
    maintenance = TRACE_START + DAY + timedelta(hours=rng.uniform(0, 20))
    return Trace(
        line=Line(
            name="short outages",
            start=TRACE_START,
            end=TRACE_START + days * DAY,
            rng=rng,
            outages=sorted(spans, key=lambda item: item.start),
        ),
        maintenance=[Span(start=maintenance, end=maintenance + timedelta(hours=2))],
    )


SCENARIOS = (traced_outages, short_outages)


def verdict(trace: Trace, moment: datetime) -> ProbeVerdict:
    """What a round started at `moment` finds."""
    if trace.line.is_down(moment):
        return ProbeVerdict.DOWN
    if any(span.holds(moment) for span in trace.maintenance):
        return ProbeVerdict.SERVER_PROBLEM
    return ProbeVerdict.UP


def full_test_end(trace: Trace, moment: datetime, offset: timedelta) -> datetime | None:
    """When the hourly full test running at `moment` ends; None when none runs."""
    since_first = (moment - trace.line.start - offset) % FULL_TEST_INTERVAL
    if moment >= trace.line.start + offset and since_first < TEST_DURATION:
        return moment - since_first + TEST_DURATION
    return None


@dataclass(kw_only=True)
class Run:
    """What the watch did on one trace."""

    episodes: list[Episode] = field(default_factory=list)
    rounds: dict[ProbeVerdict, int] = field(default_factory=dict)
    days: float = 0.0


def watch(
    trace: Trace, settings: WatchSettings, rng: random.Random, *, catch_up: bool
) -> Run:
    """Rounds every interval over the whole trace, paused during full tests.

    With `catch_up`, a round that falls in a full test runs as soon as the test ends
    instead of being skipped, so no gap between rounds exceeds one interval.
    """
    line = trace.line
    run = Run(days=(line.end - line.start) / DAY)
    round_offset = timedelta(seconds=rng.uniform(0, 60))
    test_offset = timedelta(minutes=rng.uniform(0, 60))
    state = WatchState()

    def round_at(moment: datetime) -> None:
        nonlocal state
        found = verdict(trace, moment)
        run.rounds[found] = run.rounds.get(found, 0) + 1
        state = step(state, found, moment, settings)
        run.episodes.extend(state.ended)

    moment = line.start + round_offset
    while moment < line.end:
        test_end = full_test_end(trace, moment, test_offset)
        if test_end is None:
            round_at(moment)
        else:
            # The coordinator pauses the watch for the test: a round due meanwhile is
            # not run, and were it run, the paused watch would drop it.
            paused = step(pause(state), verdict(trace, moment), moment, settings)
            state = resume(paused)
            if catch_up:
                round_at(test_end)
        moment += settings.interval
    return run


@dataclass(kw_only=True)
class Score:
    """A setting's results on a scenario, summed over runs."""

    outages: int = 0
    detected: int = 0
    false_outages: int = 0
    dns_episodes: int = 0
    start_errors: list[timedelta] = field(default_factory=list)
    end_errors: list[timedelta] = field(default_factory=list)
    rounds: dict[ProbeVerdict, int] = field(default_factory=dict)
    days: float = 0.0


def score(trace: Trace, run: Run, into: Score) -> None:
    """Match outage episodes to real outages of 5 minutes or longer."""
    into.days += run.days
    for kind, count in run.rounds.items():
        into.rounds[kind] = into.rounds.get(kind, 0) + count
    real = [span for span in trace.line.outages if span.duration >= SHORT]
    into.outages += len(real)
    unmatched = list(real)
    for episode in run.episodes:
        if episode.kind is EpisodeKind.DNS_FAILURE:
            into.dns_episodes += 1
            continue
        if episode.end is None:  # never: ended episodes have an end; for the type
            continue
        match = next(
            (
                span
                for span in unmatched
                if episode.start <= span.end and episode.end >= span.start
            ),
            None,
        )
        if match is None:
            into.false_outages += 1
            continue
        unmatched.remove(match)
        into.detected += 1
        into.start_errors.append(episode.start - match.start)
        into.end_errors.append(episode.end - match.end)


async def measured_round_bytes() -> dict[ProbeVerdict, int]:
    """Bytes of each kind of round, from the real probe against loopback servers."""

    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    async def name_to_loopback(
        host: str, port: int, family: socket.AddressFamily
    ) -> Sequence[str]:
        if hanging:
            await asyncio.Event().wait()
        return ["127.0.0.1"]

    @contextlib.asynccontextmanager
    async def stalled() -> AsyncIterator[int]:
        # A full accept queue drops every SYN, as a dead line does.
        listener, filler = socket.socket(), socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        try:
            yield int(listener.getsockname()[1])
        finally:
            filler.close()
            listener.close()

    hanging = False
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = int(closed.getsockname()[1])
    try:
        up = ProbeTarget(host=SERVER_HOST, port=port)
        probe = ConnectivityProbe([up], resolver=name_to_loopback)
        await probe.probe()  # the first lookup asks for every family
        result: dict[ProbeVerdict, int] = {
            ProbeVerdict.UP: (await probe.probe()).wire_bytes
        }
        refused = ProbeTarget(host="b." + SERVER_HOST, port=closed_port)
        probe = ConnectivityProbe([refused, up], resolver=name_to_loopback)
        for _ in range(2):
            await probe.probe()
        result[ProbeVerdict.SERVER_PROBLEM] = (await probe.probe()).wire_bytes
        async with stalled() as first, stalled() as second:
            probe = ConnectivityProbe(
                [
                    ProbeTarget(host=SERVER_HOST, port=first),
                    ProbeTarget(host="b." + SERVER_HOST, port=second),
                ],
                resolver=name_to_loopback,
            )
            await probe.probe()
            hanging = True
            result[ProbeVerdict.DOWN] = (await probe.probe()).wire_bytes
    finally:
        server.close()
        await server.wait_closed()
    return result


def _minutes(values: Sequence[timedelta]) -> str:
    if not values:
        return "    -     -"
    minutes = [value.total_seconds() / 60 for value in values]
    return (
        f"{statistics.mean(minutes):>+5.1f} {max(abs(item) for item in minutes):>5.1f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run every scenario at every probe interval and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="seeds per scenario")
    arguments = parser.parse_args(argv)
    costs = asyncio.run(measured_round_bytes())
    print(
        "Bytes per round, measured by the probe (estimated from its packets): "
        + ", ".join(f"{kind.value} {costs[kind]}" for kind in costs)
    )
    print(
        f"{arguments.runs} seeded runs per scenario; full tests hourly (rounds paused "
        f"25 s); {DEFAULT_WATCH_FAILURES} failed rounds turn the line down\n"
    )
    header = (
        f"{'scenario':<15} {'every':>6} {'outages':>7} {'found':>6} {'false':>5} "
        f"{'dns':>3} {'start mean/max':>14} {'end mean/max':>12} {'kB/day':>7}"
    )
    print(header)
    print("-" * len(header))
    for scenario in SCENARIOS:
        for minutes, catch_up in VARIANTS:
            settings = WatchSettings(
                interval=timedelta(minutes=minutes),
                failures_to_down=DEFAULT_WATCH_FAILURES,
            )
            total = Score()
            for seed in range(1, arguments.runs + 1):
                trace = scenario(seed)
                run = watch(trace, settings, random.Random(seed), catch_up=catch_up)
                score(trace, run, total)
            per_day = (
                sum(costs[kind] * count for kind, count in total.rounds.items())
                / total.days
            )
            found = 100 * total.detected / total.outages
            print(
                f"{trace.line.name:<15} {minutes:>3} m{'+' if catch_up else ' '} "
                f"{total.outages:>7} "
                f"{found:>5.0f}% {total.false_outages:>5} {total.dns_episodes:>3} "
                f"{_minutes(total.start_errors):>14} {_minutes(total.end_errors):>12} "
                f"{per_day / 1000:>7.0f}"
            )
        print()
    print(
        "outages: real outages of 5 min or longer; found: those an outage episode\n"
        "overlaps; false: outage episodes that overlap none (refusals and server\n"
        "maintenance included); dns: DNS episodes (none are due); start/end: the\n"
        "episode's edge minus the truth, mean and largest, in minutes (+: late).\n"
        "every: probe interval; +: a round that falls in a full test runs after it.\n"
        f"Goals at 1 min: found >= 95 %, edges within {EDGE_GOAL.seconds // 60} min, "
        f"no false outage, <= {BYTES_PER_DAY_BUDGET / 1000:.0f} kB/day."
    )


if __name__ == "__main__":
    main()
