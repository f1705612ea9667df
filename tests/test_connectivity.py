"""The connectivity watch: probe rounds against real loopback servers, and the watch.

The servers are real sockets on 127.0.0.1: one that answers latency.txt, one whose port
is closed (connections refused), one whose accept queue is full (connections stall, as
on a black-holed line), one that accepts and never answers. DNS is a resolver passed to
the probe, so a test can make it fail or hang without touching the system's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
import contextlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
import socket
import struct

import pytest

from custom_components.isp_watch.connectivity import (
    BYTES_PER_DAY_BUDGET,
    ConnectivityProbe,
    Episode,
    EpisodeKind,
    LineStatus,
    ProbeRound,
    ProbeSettings,
    ProbeTarget,
    ProbeVerdict,
    TargetStatus,
    WatchSettings,
    WatchState,
    bytes_per_day,
    pause,
    replay,
    resolve_with_loop,
    resume,
    round_bytes,
    step,
    syn_count,
)
from custom_components.isp_watch.const import (
    DEFAULT_WATCH_FAILURES,
    DEFAULT_WATCH_INTERVAL,
)

# The test harness blocks sockets unless asked; it still allows only 127.0.0.1.
pytestmark = pytest.mark.usefixtures("socket_enabled")

LOOPBACK = "127.0.0.1"
# Short timeouts: the stalled server and the hanging resolver end at their first one.
QUICK = ProbeSettings(connect_timeout=0.3, dns_timeout=0.3)
MINUTE = timedelta(minutes=1)
# The shipped defaults, from their one home.
WATCH = WatchSettings(
    interval=timedelta(minutes=DEFAULT_WATCH_INTERVAL),
    failures_to_down=DEFAULT_WATCH_FAILURES,
)
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LATENCY_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n"
    b"Connection: close\r\n\r\ntest=test\n"
)


class LatencyServer:
    """A test server's web service on 127.0.0.1: answers latency.txt, can go away."""

    def __init__(
        self, answer: bytes = LATENCY_ANSWER, *, silent: bool = False, port: int = 0
    ) -> None:
        """Not listening yet; `silent` accepts connections and never answers."""
        self.answer = answer
        self.silent = silent
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen (on the same port again after a stop)."""
        self._server = await asyncio.start_server(self._handle, LOOPBACK, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening: connections are refused from now on."""
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._writers.add(writer)
        try:
            await reader.readuntil(b"\r\n\r\n")
            if self.silent:
                await reader.read()  # hold the connection until the client lets go
            else:
                writer.write(self.answer)
                await writer.drain()
        except asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError:
            # A bare connect check resets the connection without a request.
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    @property
    def listening(self) -> bool:
        """Whether connections are accepted."""
        return self._server is not None

    def target(self, host: str) -> ProbeTarget:
        """This server under a host name the fake resolver knows."""
        return ProbeTarget(host=host, port=self.port)


def closed_port() -> int:
    """A port nothing listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def stalled_port() -> Iterator[int]:
    """A port whose accept queue is full: SYNs go unanswered, connects time out."""
    listener = socket.socket()
    filler = socket.socket()
    try:
        listener.bind((LOOPBACK, 0))
        # A backlog of 0 holds one connection; the filler takes it and is never
        # accepted, so the kernel drops every later SYN.
        listener.listen(0)
        filler.settimeout(1)
        filler.connect(listener.getsockname())
        yield int(listener.getsockname()[1])
    finally:
        filler.close()
        listener.close()


@dataclass
class FakeResolver:
    """DNS for the tests: every known name is 127.0.0.1; it can fail or hang."""

    names: set[str] = field(default_factory=lambda: {"a.test", "b.test", "c.test"})
    failing: bool = False
    hanging: bool = False
    lookups: list[tuple[str, socket.AddressFamily]] = field(default_factory=list)

    async def __call__(
        self, host: str, port: int, family: socket.AddressFamily
    ) -> Sequence[str]:
        """Answer like getaddrinfo: addresses, or socket.gaierror."""
        self.lookups.append((host, family))
        if self.hanging:
            await asyncio.Event().wait()
        if self.failing or host not in self.names:
            raise socket.gaierror(
                socket.EAI_AGAIN, "Temporary failure in name resolution"
            )
        return [LOOPBACK]


class Clock:
    """The time rounds are dated by, moved on by the test."""

    def __init__(self) -> None:
        """Start at T0."""
        self.now = T0

    def __call__(self) -> datetime:
        """The current time."""
        return self.now


@pytest.fixture
async def server_a() -> AsyncIterator[LatencyServer]:
    """A test server that answers."""
    server = LatencyServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def server_b() -> AsyncIterator[LatencyServer]:
    """A second test server that answers."""
    server = LatencyServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def resolver() -> FakeResolver:
    """DNS that works until a test breaks it."""
    return FakeResolver()


def statuses(result: ProbeRound) -> list[TargetStatus]:
    return [item.status for item in result.targets]


# --- One probe round against loopback servers -------------------------------------


async def test_a_line_that_answers_costs_one_connect_and_one_lookup(
    server_a: LatencyServer, server_b: LatencyServer, resolver: FakeResolver
) -> None:
    probe = ConnectivityProbe(
        [server_a.target("a.test"), server_b.target("b.test")], QUICK, resolver=resolver
    )

    first = await probe.probe()
    second = await probe.probe()

    assert first.verdict is ProbeVerdict.UP
    assert first.dns_ok is True
    assert statuses(first) == [TargetStatus.ANSWERED]
    # The first server rotates, so both servers share the rounds.
    assert [item.target.host for item in (*first.targets, *second.targets)] == [
        "a.test",
        "b.test",
    ]
    assert statuses(second) == [TargetStatus.ANSWERED]
    assert resolver.lookups == [
        ("a.test", socket.AF_UNSPEC),
        ("b.test", socket.AF_UNSPEC),
    ]

    third = await probe.probe()

    # Once an address is cached, a lookup asks for its family only: one query.
    assert resolver.lookups[-1] == ("a.test", socket.AF_INET)
    assert third.wire_bytes == round_bytes(host="a.test")


async def test_one_server_down_while_another_answers_is_a_server_problem(
    server_b: LatencyServer, resolver: FakeResolver
) -> None:
    dead = ProbeTarget(host="a.test", port=closed_port())
    probe = ConnectivityProbe(
        [dead, server_b.target("b.test")], QUICK, resolver=resolver
    )

    result = await probe.probe()

    assert result.verdict is ProbeVerdict.SERVER_PROBLEM
    assert statuses(result) == [TargetStatus.REFUSED, TargetStatus.ANSWERED]


async def test_a_dead_server_stays_a_problem_until_it_answers_again(
    server_b: LatencyServer, resolver: FakeResolver
) -> None:
    revived = LatencyServer(port=closed_port())
    dead = revived.target("a.test")
    probe = ConnectivityProbe(
        [dead, server_b.target("b.test")], QUICK, resolver=resolver
    )

    tried_first = await probe.probe()
    # The rotation puts the good server first: the dead one is still reported.
    skipped = await probe.probe()
    await revived.start()
    try:
        back = await probe.probe()
    finally:
        await revived.stop()

    assert [item.target for item in skipped.targets] == [server_b.target("b.test")]
    for result in (tried_first, skipped):
        assert result.verdict is ProbeVerdict.SERVER_PROBLEM
        assert result.failing == (dead,)
    assert back.verdict is ProbeVerdict.UP
    assert back.failing == ()


async def test_an_outage_does_not_blame_the_servers(resolver: FakeResolver) -> None:
    server_a, server_b = (
        LatencyServer(port=closed_port()),
        LatencyServer(port=closed_port()),
    )
    probe = ConnectivityProbe(
        [server_a.target("a.test"), server_b.target("b.test")], QUICK, resolver=resolver
    )

    down = await probe.probe()
    await server_a.start()
    await server_b.start()
    try:
        up = await probe.probe()
    finally:
        await server_a.stop()
        await server_b.stop()

    assert down.verdict is ProbeVerdict.DOWN
    assert down.failing == ()
    assert up.verdict is ProbeVerdict.UP


async def test_the_loop_resolver_reads_getaddrinfo() -> None:
    # An address resolves without any DNS traffic, so the harness allows it.
    assert await resolve_with_loop(LOOPBACK, 80, socket.AF_INET) == (LOOPBACK,)


async def test_no_server_reachable_is_down(resolver: FakeResolver) -> None:
    with stalled_port() as stalled:
        probe = ConnectivityProbe(
            [
                ProbeTarget(host="a.test", port=stalled),
                ProbeTarget(host="b.test", port=closed_port()),
            ],
            QUICK,
            resolver=resolver,
        )
        result = await probe.probe()

    assert result.verdict is ProbeVerdict.DOWN
    assert statuses(result) == [TargetStatus.TIMEOUT, TargetStatus.REFUSED]
    assert result.wire_bytes > 0


async def test_a_stalled_round_leaves_the_event_loop_free(
    resolver: FakeResolver,
) -> None:
    resolver.hanging = True
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    with stalled_port() as stalled:
        probe = ConnectivityProbe(
            [ProbeTarget(host=LOOPBACK, port=stalled)], QUICK, resolver=resolver
        )
        ticker = asyncio.create_task(tick())
        result = await probe.probe()
        ticker.cancel()

    assert result.verdict is ProbeVerdict.DOWN
    # Other work ran while the round waited on its socket.
    assert ticks > 0


async def test_a_cancelled_round_leaves_no_lookup_behind(
    server_a: LatencyServer, resolver: FakeResolver
) -> None:
    probe = ConnectivityProbe([server_a.target("a.test")], QUICK, resolver=resolver)
    await probe.probe()
    resolver.hanging = True

    round_task = asyncio.create_task(probe.probe())
    while len(resolver.lookups) < 2:
        await asyncio.sleep(0)
    round_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await round_task
    await asyncio.sleep(0)

    lookups_left = [
        task
        for task in asyncio.all_tasks()
        if "_look_up" in getattr(task.get_coro(), "__qualname__", "")
    ]
    assert lookups_left == []


async def test_dns_failing_while_the_line_answers_is_its_own_verdict(
    server_a: LatencyServer, server_b: LatencyServer, resolver: FakeResolver
) -> None:
    probe = ConnectivityProbe(
        [server_a.target("a.test"), server_b.target("b.test")], QUICK, resolver=resolver
    )
    await probe.probe()
    await probe.probe()  # both addresses cached

    resolver.failing = True
    failing = await probe.probe()
    resolver.failing, resolver.hanging = False, True
    hanging = await probe.probe()

    for result in (failing, hanging):
        assert result.verdict is ProbeVerdict.DNS_FAILURE
        assert result.dns_ok is False
        assert statuses(result) == [TargetStatus.ANSWERED]


async def test_without_a_cached_address_a_failed_lookup_counts_as_down(
    server_a: LatencyServer, resolver: FakeResolver
) -> None:
    resolver.failing = True
    probe = ConnectivityProbe([server_a.target("a.test")], QUICK, resolver=resolver)

    result = await probe.probe()

    assert result.verdict is ProbeVerdict.DOWN
    assert statuses(result) == [TargetStatus.NO_ADDRESS]


async def test_an_address_needs_no_lookup(
    server_a: LatencyServer, resolver: FakeResolver
) -> None:
    probe = ConnectivityProbe([server_a.target(LOOPBACK)], QUICK, resolver=resolver)

    result = await probe.probe()

    assert result.verdict is ProbeVerdict.UP
    assert result.dns_ok is None
    assert resolver.lookups == []


async def test_latency_file_proves_the_web_service(
    server_a: LatencyServer, resolver: FakeResolver
) -> None:
    settings = ProbeSettings(
        connect_timeout=0.3, dns_timeout=0.3, fetch_latency_file=True
    )
    silent = LatencyServer(silent=True)
    not_found = LatencyServer(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    for server in (silent, not_found):
        await server.start()
    try:
        probe = ConnectivityProbe(
            [
                silent.target("a.test"),
                not_found.target("b.test"),
                server_a.target("c.test"),
            ],
            settings,
            resolver=resolver,
        )
        result = await probe.probe()
    finally:
        for server in (silent, not_found):
            await server.stop()

    # Connected but no latency.txt: the line works, those servers do not.
    assert result.verdict is ProbeVerdict.SERVER_PROBLEM
    assert statuses(result) == [
        TargetStatus.WRONG_ANSWER,
        TargetStatus.WRONG_ANSWER,
        TargetStatus.ANSWERED,
    ]
    assert result.wire_bytes > round_bytes(host="a.test", fetch_latency_file=True)


async def test_an_endless_answer_is_cut_off(resolver: FakeResolver) -> None:
    endless = LatencyServer(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 1_000_000)
    await endless.start()
    try:
        probe = ConnectivityProbe(
            [endless.target("a.test")],
            ProbeSettings(connect_timeout=1, dns_timeout=1, fetch_latency_file=True),
            resolver=resolver,
        )
        result = await probe.probe()
    finally:
        await endless.stop()

    assert statuses(result) == [TargetStatus.WRONG_ANSWER]
    assert result.verdict is ProbeVerdict.SERVER_PROBLEM
    assert result.wire_bytes < 10_000


async def test_new_targets_keep_the_addresses_of_those_kept(
    server_a: LatencyServer, server_b: LatencyServer, resolver: FakeResolver
) -> None:
    kept, dropped = server_a.target("a.test"), server_b.target("b.test")
    probe = ConnectivityProbe([kept, dropped], QUICK, resolver=resolver)
    await probe.probe()
    await probe.probe()

    added = ProbeTarget(host=LOOPBACK, port=server_b.port)
    probe.set_targets([kept, added, kept])

    assert probe.targets == (kept, added)
    assert probe.addresses == {kept: (LOOPBACK,), added: (LOOPBACK,)}
    with pytest.raises(ValueError, match="at least one target"):
        probe.set_targets([])


def test_targets_are_read_from_the_server_list() -> None:
    assert ProbeTarget.from_host_port("speedtest.example.net:8080") == ProbeTarget(
        host="speedtest.example.net", port=8080
    )
    assert ProbeTarget.from_host_port("[2001:db8::1]:8080").host == "2001:db8::1"
    for hostile in ("no-port", "host:", "host:http", ":8080", "host:70000"):
        with pytest.raises(ValueError, match="host"):
            ProbeTarget.from_host_port(hostile)
    for host, path in (
        ("evil.test\r\nX-Injected: 1", "/speedtest/latency.txt"),
        ("a" * 254, "/speedtest/latency.txt"),
        ("speedtest.example.net", "latency.txt"),
        ("speedtest.example.net", "/a b"),
    ):
        with pytest.raises(ValueError, match="host"):
            ProbeTarget(host=host, port=8080, path=path)


def test_settings_refuse_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="positive"):
        ProbeSettings(connect_timeout=0)
    with pytest.raises(ValueError, match="positive"):
        WatchSettings(interval=timedelta(0), failures_to_down=WATCH.failures_to_down)
    with pytest.raises(ValueError, match="at least one"):
        WatchSettings(interval=WATCH.interval, failures_to_down=0)


# --- The watch over rounds ------------------------------------------------------


def rounds(
    verdicts: str, start: datetime = T0, interval: timedelta = MINUTE
) -> list[tuple[datetime, ProbeVerdict]]:
    """Rounds from letters: u up, d down, n DNS failure, s server problem."""
    letters = {
        "u": ProbeVerdict.UP,
        "d": ProbeVerdict.DOWN,
        "n": ProbeVerdict.DNS_FAILURE,
        "s": ProbeVerdict.SERVER_PROBLEM,
    }
    return [
        (start + index * interval, letters[letter])
        for index, letter in enumerate(verdicts)
    ]


async def test_a_line_dropped_mid_interval_is_down_within_two_rounds_and_back_in_one(
    resolver: FakeResolver,
) -> None:
    """The real probe against servers that vanish.

    The line is cut from 10:05:30 to 10:12:20; a round runs every minute on the minute.
    """
    server_a, server_b = LatencyServer(), LatencyServer()
    await server_a.start()
    await server_b.start()
    clock = Clock()
    probe = ConnectivityProbe(
        [server_a.target("a.test"), server_b.target("b.test")],
        QUICK,
        resolver=resolver,
        clock=clock,
    )
    cut, mended = (
        T0 + timedelta(minutes=5, seconds=30),
        T0 + timedelta(minutes=12, seconds=20),
    )
    state = WatchState()
    went_down: datetime | None = None
    came_back: datetime | None = None
    ended: list[Episode] = []
    try:
        for minute in range(20):
            clock.now = T0 + minute * MINUTE
            line_up = not cut <= clock.now < mended
            if not line_up:
                await server_a.stop()
                await server_b.stop()
            elif not server_a.listening:
                await server_a.start()
                await server_b.start()
            result = await probe.probe()
            state = step(state, result.verdict, result.started, WATCH)
            ended.extend(state.ended)
            if state.connected is False and went_down is None:
                went_down = clock.now
            if state.connected and went_down and came_back is None:
                came_back = clock.now
    finally:
        await server_a.stop()
        await server_b.stop()

    assert went_down is not None
    assert came_back is not None
    assert went_down - cut <= 2 * WATCH.interval
    assert came_back - mended <= WATCH.interval
    [outage] = ended
    assert outage.kind is EpisodeKind.OUTAGE
    # Start: the first failed round; the cut happened within one interval before it.
    assert outage.start - outage.start_uncertainty <= cut <= outage.start
    assert outage.end is not None
    assert outage.end_uncertainty is not None
    assert outage.end - outage.end_uncertainty <= mended <= outage.end
    assert outage.start_uncertainty == outage.end_uncertainty == WATCH.interval
    assert state.status is LineStatus.UP


def test_a_single_failed_round_is_not_an_outage() -> None:
    state, ended = replay(rounds("uuduudu"), WATCH)

    assert state.status is LineStatus.UP
    assert ended == []


def test_the_first_rounds_decide_from_unknown() -> None:
    assert WatchState().connected is None
    state = step(WatchState(), ProbeVerdict.DOWN, T0, WATCH)
    assert state.status is LineStatus.UNKNOWN
    state = step(state, ProbeVerdict.DOWN, T0 + MINUTE, WATCH)
    assert state.status is LineStatus.DOWN
    assert state.since == T0
    assert state.outage is not None
    # No round before the first: the start is as uncertain as one interval.
    assert state.outage.start_uncertainty == MINUTE


def test_one_server_failing_for_hours_is_never_an_outage() -> None:
    state, ended = replay(rounds("us" * 120), WATCH)

    assert state.status is LineStatus.UP
    assert state.connected is True
    assert ended == []
    assert step(
        state, ProbeVerdict.SERVER_PROBLEM, T0 + timedelta(hours=5), WATCH
    ).server_problem


def test_dns_failing_alone_is_its_own_state_and_episode() -> None:
    state, ended = replay(rounds("uunnnn"), WATCH)

    assert state.status is LineStatus.DNS_FAILURE
    assert state.connected is False
    assert state.outage is None
    assert state.dns_failure is not None
    assert state.dns_failure.start == T0 + 2 * MINUTE

    state, ended = replay(rounds("u", T0 + 6 * MINUTE), WATCH, state)

    assert state.status is LineStatus.UP
    [episode] = ended
    assert episode.kind is EpisodeKind.DNS_FAILURE
    assert episode.duration == 4 * MINUTE


def test_an_outage_during_a_dns_failure_keeps_both_episodes_apart() -> None:
    state, ended = replay(rounds("unnddddnu"), WATCH)

    assert state.status is LineStatus.UP
    kinds = [(item.kind, item.start, item.end) for item in ended]
    assert kinds == [
        (EpisodeKind.OUTAGE, T0 + 3 * MINUTE, T0 + 7 * MINUTE),
        (EpisodeKind.DNS_FAILURE, T0 + 1 * MINUTE, T0 + 8 * MINUTE),
    ]


def test_rounds_during_a_full_test_are_skipped_and_the_state_holds() -> None:
    state, _ = replay(rounds("uuu"), WATCH)

    paused = pause(state)
    during, _ = replay(rounds("dddd", T0 + 3 * MINUTE), WATCH, paused)

    assert during.paused
    assert during.status is LineStatus.UP
    assert during.down_run is None

    after, _ = replay(rounds("dd", T0 + 8 * MINUTE), WATCH, resume(during))

    assert after.status is LineStatus.DOWN
    assert after.outage is not None
    # The round before the failure ran before the pause: the start is that uncertain.
    assert after.outage.start_uncertainty == 6 * MINUTE


def test_the_watch_survives_a_restart_mid_outage() -> None:
    state, _ = replay(rounds("uuddd"), WATCH)

    restored = WatchState.from_dict(state.as_dict())
    assert restored == state
    state, ended = replay(rounds("du", T0 + 5 * MINUTE), WATCH, restored)

    [outage] = ended
    assert (outage.start, outage.end) == (T0 + 2 * MINUTE, T0 + 6 * MINUTE)
    assert Episode.from_dict(outage.as_dict()) == outage
    ongoing = Episode(kind=EpisodeKind.OUTAGE, start=T0, start_uncertainty=MINUTE)
    assert Episode.from_dict(ongoing.as_dict()) == ongoing
    assert ongoing.duration is None


def test_a_restart_neither_repeats_ended_episodes_nor_keeps_a_pause() -> None:
    state, _ = replay(rounds("uddu"), WATCH)
    assert state.ended

    restored = WatchState.from_dict(replace(state, paused=True).as_dict())

    assert restored.ended == ()
    assert not restored.paused
    assert restored == replace(state, ended=())


@pytest.mark.parametrize(
    "stored",
    [
        {},
        {"kind": "meltdown", "start": T0.isoformat(), "start_uncertainty": 60},
        {
            "kind": "outage",
            "start": "2026-03-02T10:00:00",  # no time zone
            "start_uncertainty": 60,
            "end": None,
            "end_uncertainty": None,
        },
        {
            "kind": "outage",
            "start": T0.isoformat(),
            "start_uncertainty": "a minute",
            "end": None,
            "end_uncertainty": None,
        },
    ],
)
def test_a_broken_stored_episode_is_refused_clearly(stored: dict[str, object]) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        Episode.from_dict(stored)


# --- What the watch costs ---------------------------------------------------------


@pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="Linux TCP_INFO")
async def test_the_packet_model_matches_the_kernel(server_a: LatencyServer) -> None:
    """The byte estimate assumes a 3-packet handshake with timestamps and SACK."""
    loop = asyncio.get_running_loop()
    with socket.socket() as client:
        client.setblocking(False)
        await loop.sock_connect(client, (LOOPBACK, server_a.port))
        info = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    options = info[5]
    # struct tcp_info: 8 one-byte fields, 24 u32, 4 u64, then segs_out and segs_in.
    segments_out, segments_in = struct.unpack_from("II", info, 8 + 24 * 4 + 4 * 8)
    timestamps, sack, window_scale = 1, 2, 4

    assert options & (timestamps | sack | window_scale) == (
        timestamps | sack | window_scale
    )
    assert (segments_out, segments_in) == (2, 1)  # SYN and ACK out, SYN-ACK in


def test_syn_retransmissions_follow_the_kernel_backoff() -> None:
    assert [syn_count(waited) for waited in (0.5, 1.5, 3.0, 3.5, 7.5)] == [
        1,
        2,
        2,
        3,
        4,
    ]


def test_a_round_stays_within_a_megabyte_a_day_at_one_a_minute() -> None:
    host = "speedtest.example-fiber.net"
    assert bytes_per_day(MINUTE, host=host) <= BYTES_PER_DAY_BUDGET
    assert bytes_per_day(MINUTE, host=host, ipv6=True) <= BYTES_PER_DAY_BUDGET
    # latency.txt as well costs about twice as much: two minutes apart, not one.
    assert bytes_per_day(MINUTE, host=host, fetch_latency_file=True) > (
        BYTES_PER_DAY_BUDGET
    )
    assert bytes_per_day(2 * MINUTE, host=host, fetch_latency_file=True) <= (
        BYTES_PER_DAY_BUDGET
    )


async def test_a_simulated_day_stays_inside_the_budget(resolver: FakeResolver) -> None:
    """A day of rounds a minute apart, counted from the rounds themselves.

    One server is down for an hour of maintenance; both are refused for half an hour.
    """
    # The harness runs the loop in debug mode, which records a stack for every task
    # and callback: 1440 rounds would take half a minute instead of a second or two.
    loop = asyncio.get_running_loop()
    debug = loop.get_debug()
    loop.set_debug(False)
    server_a, server_b = LatencyServer(), LatencyServer()
    await server_a.start()
    await server_b.start()
    clock = Clock()
    probe = ConnectivityProbe(
        [server_a.target("a.test"), server_b.target("b.test")],
        QUICK,
        resolver=resolver,
        clock=clock,
    )
    maintenance = (T0 + timedelta(hours=3), T0 + timedelta(hours=4))
    outage = (T0 + timedelta(hours=12), T0 + timedelta(hours=12, minutes=30))
    state = WatchState()
    day_bytes = 0
    rounds_run = 0
    episodes: list[Episode] = []
    try:
        for minute in range(24 * 60):
            clock.now = T0 + minute * MINUTE
            a_up = not (maintenance[0] <= clock.now < maintenance[1]) and not (
                outage[0] <= clock.now < outage[1]
            )
            b_up = not outage[0] <= clock.now < outage[1]
            for server, up in ((server_a, a_up), (server_b, b_up)):
                if up and not server.listening:
                    await server.start()
                elif not up and server.listening:
                    await server.stop()
            result = await probe.probe()
            rounds_run += 1
            day_bytes += result.wire_bytes
            state = step(state, result.verdict, result.started, WATCH)
            episodes.extend(state.ended)
    finally:
        await server_a.stop()
        await server_b.stop()
        loop.set_debug(debug)

    assert rounds_run == 24 * 60
    assert day_bytes <= BYTES_PER_DAY_BUDGET
    # One server's maintenance is no outage; the real one is, to the minute.
    [only] = episodes
    assert (only.start, only.end) == outage
