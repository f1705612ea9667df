"""Watch the line between speed tests: a tiny probe every minute, outages to the minute.

A full test runs hourly and moves hundreds of megabytes; an outage that starts between
two tests would go unseen for most of an hour. This module adds two pieces, both free
of Home Assistant so they can be tested and replayed on their own:

- ConnectivityProbe: one probe round. A TCP connect to a speedtest.net test server (the
  servers the full tests already use, so speedtest.net's configuration and server list
  are never fetched for it), at the server's cached IP address so that a failing DNS is
  told apart from a dead line, plus a DNS lookup of that server's name. A round that
  cannot reach its server tries the others at once: one server's maintenance is a
  server problem, not an outage. Only asyncio sockets and loop.getaddrinfo are used, all
  under timeouts, so a round never blocks the event loop and always ends.
- step(): the pure watch. N consecutive failed rounds turn the line down, the first
  success turns it up again. Outage episodes start at the first failed round of the run
  and end at the first success; each edge carries its uncertainty, the time since the
  round before it. A line whose DNS fails while its IP connectivity works is a state of
  its own, with episodes of its own. The watch pauses while a full test runs.

Why a bare TCP connect by default: the handshake alone proves that the far end of the
line answers, and closing with a reset instead of the FIN exchange makes a round cost
four packets. With the DNS lookup a round costs about 580 bytes on the wire over IPv4
(670 over IPv6): 0.83 MB (0.96 MB) a day at one round a minute, within the 1 MB budget
(see round_bytes() and the tests). Fetching latency.txt as well would prove the
server's web service too, at about twice the cost: every 2 minutes at the most.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
import contextlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
import ipaddress
import math
import socket
import struct
from typing import Final, Self

from .models import TRANSIENT, Stored

# Sizes of what a round puts on the wire, for the byte estimate. Linux sends SYN and
# SYN-ACK with 20 bytes of TCP options (MSS, SACK permitted, timestamps, window scale)
# and every later segment with the 12-byte timestamp option; a reset carries none.
# Ethernet adds 14 bytes of header and 4 of checksum to every packet on the access line.
IPV4_HEADER_BYTES: Final = 20
IPV6_HEADER_BYTES: Final = 40
ETHERNET_FRAMING_BYTES: Final = 18
TCP_SYN_BYTES: Final = 40
TCP_SEGMENT_BYTES: Final = 32
TCP_RESET_BYTES: Final = 20
TCP_MAX_PAYLOAD: Final = 1448
UDP_HEADER_BYTES: Final = 8
DNS_HEADER_BYTES: Final = 12
DNS_QUESTION_TAIL_BYTES: Final = 4  # type and class
DNS_EDNS_OPTION_BYTES: Final = 11
DNS_ANSWER_FIXED_BYTES: Final = 12  # name pointer, type, class, TTL, data length
# getaddrinfo does not say whether the answer came through a CNAME; one is assumed for
# every answer so that the estimate errs on the high side.
DNS_CNAME_BYTES: Final = DNS_ANSWER_FIXED_BYTES + 64
# The C resolver tries twice before it gives up (resolv.conf "attempts:2").
DNS_ATTEMPTS_ON_FAILURE: Final = 2
# Linux retransmits an unanswered SYN after 1 s, then 2 s, 4 s, ... later.
SYN_INITIAL_RETRANSMIT_SECONDS: Final = 1.0
# An ICMP "unreachable" quotes the IP header and 8 bytes of the packet it refuses.
ICMP_UNREACHABLE_BYTES: Final = 8 + IPV4_HEADER_BYTES + 8

# The longest name DNS can carry.
MAX_HOST_LENGTH: Final = 253
# A latency.txt answer is a few hundred bytes; more than this is not a test server.
MAX_ANSWER_BYTES: Final = 4096
LATENCY_MARKER: Final = b"test=test"

BYTES_PER_DAY_BUDGET: Final = 1_000_000
"""What the watch may cost at the 1-minute default, by the issue that asked for it."""


class ProbeVerdict(StrEnum):
    """What one probe round says about the line."""

    UP = "up"
    """A test server answered and the DNS lookup worked."""
    DOWN = "down"
    """No test server could be reached: the line may be down."""
    DNS_FAILURE = "dns_failure"
    """A test server answered at its cached address, but the DNS lookup failed."""
    SERVER_PROBLEM = "server_problem"
    """A test server failed while another answered: the line is up."""


class TargetStatus(StrEnum):
    """What happened when one test server was tried."""

    ANSWERED = "answered"
    WRONG_ANSWER = "wrong_answer"
    """Connected, but latency.txt did not come back: the line works, the server not."""
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    NO_ADDRESS = "no_address"
    """No address was cached and the name could not be looked up."""

    @property
    def line_reached(self) -> bool:
        """Whether the far end of the line answered, whatever the server said."""
        return self in {TargetStatus.ANSWERED, TargetStatus.WRONG_ANSWER}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeTarget:
    """A test server to probe: its host name and port, as the server list gives them.

    Attributes:
        host: Host name (or address) of the server.
        port: TCP port of the server's web service.
        path: Where the server serves latency.txt, for the optional HTTP check.
    """

    host: str
    port: int
    path: str = "/speedtest/latency.txt"

    def __post_init__(self) -> None:
        """Refuse a target that cannot be probed.

        The server list comes from outside: a host or path with spaces or control
        characters would let it write headers into the request.

        Raises:
            ValueError: The host, port or path cannot be used.
        """
        if not 0 < len(self.host) <= MAX_HOST_LENGTH or not 0 < self.port < 65536:
            raise ValueError("a probe target needs a host and a port from 1 to 65535")
        if not self.path.startswith("/") or any(
            not 32 < ord(character) < 127 for character in self.host + self.path
        ):
            raise ValueError("a probe target's host and path must be plain ASCII")

    @classmethod
    def from_host_port(cls, value: str) -> Self:
        """Read the server list's "host:port" form; "[2001:db8::1]:8080" for IPv6.

        Raises:
            ValueError: The value is not host:port with a valid port.
        """
        host, separator, port = value.rpartition(":")
        if not separator or not port.isdigit():
            raise ValueError("expected host:port")
        return cls(host=host.removeprefix("[").removesuffix("]"), port=int(port))

    @property
    def is_address(self) -> bool:
        """Whether the host is an IP address, which needs no lookup."""
        return _is_ip(self.host)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeSettings:
    """How a probe round runs.

    Attributes:
        connect_timeout: Seconds for one TCP connect (and the HTTP answer, if asked).
        dns_timeout: Seconds for the DNS lookup.
        fetch_latency_file: Also request latency.txt, proving the server's web service
            and not only its TCP stack, at about twice the bytes.
    """

    connect_timeout: float = 3.0
    dns_timeout: float = 3.0
    fetch_latency_file: bool = False

    def __post_init__(self) -> None:
        """Refuse timeouts under which no round could succeed.

        Raises:
            ValueError: A timeout is not positive.
        """
        if self.connect_timeout <= 0 or self.dns_timeout <= 0:
            raise ValueError("probe timeouts must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetResult:
    """One test server tried in a round."""

    target: ProbeTarget
    status: TargetStatus
    wire_bytes: int
    """Estimated bytes on the wire, both directions, framing included."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeRound:
    """The outcome of one probe round.

    Attributes:
        verdict: What the round says about the line.
        started: When the round began; the watch dates the round by it.
        finished: When the round ended.
        targets: The servers tried, the rotating first one first.
        failing: Servers whose latest try failed while the line answered; a round
            that reaches its first server still reports them until their turn comes
            round again, so a dead server does not show as a problem every other round.
        dns_ok: Whether the DNS lookup worked; None when no name needed one.
        wire_bytes: Estimated bytes on the wire for the whole round.
    """

    verdict: ProbeVerdict
    started: datetime
    finished: datetime
    targets: tuple[TargetResult, ...]
    failing: tuple[ProbeTarget, ...]
    dns_ok: bool | None
    wire_bytes: int


type Resolver = Callable[[str, int, socket.AddressFamily], Awaitable[Sequence[str]]]
"""Look up a host for a port and address family; the addresses found, best first."""


async def resolve_with_loop(
    host: str, port: int, family: socket.AddressFamily
) -> tuple[str, ...]:
    """Look a host up with the event loop's getaddrinfo, which runs in an executor.

    A lookup that times out keeps its executor thread until the C resolver gives up
    (seconds, not minutes), so one round a minute cannot pile threads up.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ConnectivityProbe:
    """Probe rounds against test servers, with their addresses cached."""

    def __init__(
        self,
        targets: Sequence[ProbeTarget],
        settings: ProbeSettings | None = None,
        *,
        resolver: Resolver = resolve_with_loop,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """Prepare rounds against the targets; nothing is sent yet.

        Args:
            targets: Test servers, the last good one first; two or more, so that one
                server's failure is not taken for an outage.
            settings: Timeouts and the optional HTTP check.
            resolver: How names are looked up (a parameter, so tests can fail DNS).
            clock: The time rounds are dated by.
        """
        self._settings = settings or ProbeSettings()
        self._resolver = resolver
        self._clock = clock
        self._targets: tuple[ProbeTarget, ...] = ()
        self._addresses: dict[ProbeTarget, tuple[str, ...]] = {}
        self._rounds = 0
        self._failing: set[ProbeTarget] = set()
        self.set_targets(targets)

    @property
    def targets(self) -> tuple[ProbeTarget, ...]:
        """The servers probed, in rotation order."""
        return self._targets

    @property
    def addresses(self) -> Mapping[ProbeTarget, tuple[str, ...]]:
        """The cached addresses of each server, best first."""
        return dict(self._addresses)

    def set_targets(self, targets: Sequence[ProbeTarget]) -> None:
        """Probe these servers from now on, keeping what is cached for those kept.

        A full test names the server it used; the coordinator passes it here with a
        second one, so the rounds follow the servers the tests use.

        Raises:
            ValueError: No target was given.
        """
        if not targets:
            raise ValueError("a probe needs at least one target")
        self._targets = tuple(dict.fromkeys(targets))
        self._addresses = {
            target: self._addresses[target]
            for target in self._targets
            if target in self._addresses
        }
        self._failing &= set(self._targets)
        for target in self._targets:
            if target.is_address:
                self._addresses[target] = (target.host,)

    async def probe(self) -> ProbeRound:
        """Run one round: never raises, never blocks, ends within its timeouts.

        At most two lookups and two connects follow one another (a server tried for
        the first time is looked up first), so a round ends within 12 s by default.

        The first server rotates from round to round, so the load is spread and a dead
        server shows up as a server problem within a few rounds. The others are tried
        only when the first one fails, which keeps a normal round to one connect.
        """
        started = self._clock()
        first = self._targets[self._rounds % len(self._targets)]
        self._rounds += 1
        lookup = asyncio.create_task(self._look_up(first))
        try:
            if first not in self._addresses:
                # Nothing cached yet: the lookup must come first.
                await lookup
            results = [await self._try(first)]
            if results[0].status is not TargetStatus.ANSWERED:
                others = [target for target in self._targets if target != first]
                results.extend(
                    await asyncio.gather(*(self._try(target) for target in others))
                )
            dns_ok, dns_bytes = await lookup
        finally:
            # A round cancelled from outside (unload) leaves no lookup behind.
            lookup.cancel()
        if any(result.status.line_reached for result in results):
            # When nothing answers, the line failed, not the servers.
            for result in results:
                if result.status is TargetStatus.ANSWERED:
                    self._failing.discard(result.target)
                else:
                    self._failing.add(result.target)
        failing = tuple(target for target in self._targets if target in self._failing)
        return ProbeRound(
            verdict=_verdict(results, failing, dns_ok),
            started=started,
            finished=self._clock(),
            targets=tuple(results),
            failing=failing,
            dns_ok=dns_ok,
            wire_bytes=dns_bytes + sum(result.wire_bytes for result in results),
        )

    async def _look_up(self, target: ProbeTarget) -> tuple[bool | None, int]:
        """Look the target's name up; refresh its cached addresses on success.

        The family of the cached addresses is asked for, so a lookup is one query.

        Returns:
            Whether the lookup worked (None for an address, which needs none), and the
            bytes it cost on the wire.
        """
        if target.is_address:
            return None, 0
        cached = self._addresses.get(target, ())
        family = _family(cached[0]) if cached else socket.AF_UNSPEC
        queries = 2 if family is socket.AF_UNSPEC else 1
        try:
            async with asyncio.timeout(self._settings.dns_timeout):
                found = tuple(await self._resolver(target.host, target.port, family))
        except OSError, TimeoutError, UnicodeError, ValueError:
            found = ()
        # Only the answers the resolver could parse count; anything else is a failure.
        usable = tuple(address for address in found if _is_ip(address))
        if not usable:
            return False, queries * DNS_ATTEMPTS_ON_FAILURE * _dns_query_bytes(
                target.host
            )
        self._addresses[target] = usable
        return True, queries * _dns_query_bytes(target.host) + _dns_answer_bytes(
            target.host, usable
        )

    async def _try(self, target: ProbeTarget) -> TargetResult:
        """Connect to the target's first cached address (and ask for latency.txt).

        A server tried for the first time is looked up first; its lookup counts in
        its bytes, not in the round's DNS verdict, which the rotating lookup gives.
        """
        lookup_bytes = 0
        if target not in self._addresses:
            _, lookup_bytes = await self._look_up(target)
        addresses = self._addresses.get(target)
        if not addresses:
            return TargetResult(
                target=target, status=TargetStatus.NO_ADDRESS, wire_bytes=lookup_bytes
            )
        address = addresses[0]
        family = _family(address)
        header = IPV4_HEADER_BYTES if family is socket.AF_INET else IPV6_HEADER_BYTES
        request = _latency_request(target) if self._settings.fetch_latency_file else b""
        loop = asyncio.get_running_loop()
        try:
            # Out of file descriptors, or no IPv6 on this host: nothing was sent.
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            return TargetResult(
                target=target, status=TargetStatus.UNREACHABLE, wire_bytes=lookup_bytes
            )
        sock.setblocking(False)
        connected = False
        answer = b""
        started = loop.time()
        try:
            async with asyncio.timeout(self._settings.connect_timeout):
                await loop.sock_connect(sock, (address, target.port))
                connected = True
                if request:
                    await loop.sock_sendall(sock, request)
                    answer = await _read_answer(loop, sock)
            status = (
                TargetStatus.ANSWERED
                if not request or _is_latency_answer(answer)
                else TargetStatus.WRONG_ANSWER
            )
        # Once connected, the far end has answered: whatever fails after that is the
        # server's problem, not the line's.
        except TimeoutError:
            status = TargetStatus.WRONG_ANSWER if connected else TargetStatus.TIMEOUT
        except ConnectionRefusedError:
            status = TargetStatus.REFUSED
        except OSError:
            status = (
                TargetStatus.WRONG_ANSWER if connected else TargetStatus.UNREACHABLE
            )
        finally:
            _close_with_reset(sock)
        if (
            not status.line_reached
            and len(addresses) > 1
            and self._addresses.get(target) == addresses
        ):
            # A server with an address this host cannot reach (IPv6 without an IPv6
            # route) is tried at its next address in the next round.
            self._addresses[target] = (*addresses[1:], address)
        waited = loop.time() - started
        return TargetResult(
            target=target,
            status=status,
            wire_bytes=lookup_bytes
            + _attempt_bytes(status, header, request, answer, waited),
        )


def _verdict(
    results: Sequence[TargetResult],
    failing: Sequence[ProbeTarget],
    dns_ok: bool | None,
) -> ProbeVerdict:
    if not any(result.status.line_reached for result in results):
        # Until an address is known, a failed lookup cannot be told apart from a dead
        # line: the line counts as down.
        return ProbeVerdict.DOWN
    if dns_ok is False:
        return ProbeVerdict.DNS_FAILURE
    if failing:
        return ProbeVerdict.SERVER_PROBLEM
    return ProbeVerdict.UP


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _close_with_reset(sock: socket.socket) -> None:
    """Close at once with a reset: one packet instead of the FIN exchange, no TIME_WAIT.

    Load balancers close their health checks the same way; for the server a reset
    after the handshake is an ordinary aborted connection.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _latency_request(target: ProbeTarget) -> bytes:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return (
        f"GET {target.path} HTTP/1.1\r\nHost: {host}:{target.port}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii", "replace")


async def _read_answer(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    """Read until the server closes, but never more than MAX_ANSWER_BYTES."""
    answer = b""
    while len(answer) < MAX_ANSWER_BYTES:
        chunk = await loop.sock_recv(sock, MAX_ANSWER_BYTES - len(answer))
        if not chunk:
            break
        answer += chunk
        if LATENCY_MARKER in answer.partition(b"\r\n\r\n")[2]:
            break
    return answer


def _is_latency_answer(answer: bytes) -> bool:
    status_line, _, rest = answer.partition(b"\r\n")
    parts = status_line.split()
    body = rest.partition(b"\r\n\r\n")[2]
    return (
        len(parts) >= 2
        and parts[0].startswith(b"HTTP/1.")
        and parts[1] == b"200"
        and body.startswith(LATENCY_MARKER)
    )


def _packet(header: int, tcp_bytes: int, payload: int = 0) -> int:
    return header + tcp_bytes + payload + ETHERNET_FRAMING_BYTES


def _attempt_bytes(
    status: TargetStatus, header: int, request: bytes, answer: bytes, waited: float
) -> int:
    """Estimated bytes of one attempt on the wire, both directions.

    Answered: SYN, SYN-ACK, ACK, our reset; with latency.txt also the request, the
    answer's segments, an ACK for each of both, and the server's FIN.
    """
    syn = _packet(header, TCP_SYN_BYTES)
    if status is TargetStatus.REFUSED:
        return syn + _packet(header, TCP_RESET_BYTES)
    if status is TargetStatus.UNREACHABLE:
        return syn + _packet(header, ICMP_UNREACHABLE_BYTES)
    if status is TargetStatus.TIMEOUT:
        return syn * syn_count(waited)
    total = (
        2 * syn + _packet(header, TCP_SEGMENT_BYTES) + _packet(header, TCP_RESET_BYTES)
    )
    if request:
        segments = max(1, math.ceil(len(answer) / TCP_MAX_PAYLOAD))
        total += _packet(header, TCP_SEGMENT_BYTES, len(request))
        total += _packet(header, TCP_SEGMENT_BYTES)  # the server's ACK of it
        total += segments * _packet(header, TCP_SEGMENT_BYTES) + len(answer)
        total += segments * _packet(header, TCP_SEGMENT_BYTES)  # our ACKs
        total += _packet(header, TCP_SEGMENT_BYTES)  # the server's FIN
    return total


def syn_count(waited: float) -> int:
    """SYNs a connect sends while waiting `waited` seconds for an answer."""
    count, elapsed, backoff = (
        1,
        SYN_INITIAL_RETRANSMIT_SECONDS,
        SYN_INITIAL_RETRANSMIT_SECONDS,
    )
    while elapsed < waited:
        count += 1
        backoff *= 2
        elapsed += backoff
    return count


def _dns_question_bytes(host: str) -> int:
    # A name is stored as labels: one length byte per label plus the final zero byte.
    return len(host.rstrip(".")) + 2 + DNS_QUESTION_TAIL_BYTES


def _dns_query_bytes(host: str) -> int:
    return (
        IPV4_HEADER_BYTES
        + UDP_HEADER_BYTES
        + DNS_HEADER_BYTES
        + _dns_question_bytes(host)
        + DNS_EDNS_OPTION_BYTES
        + ETHERNET_FRAMING_BYTES
    )


def _dns_answer_bytes(host: str, addresses: Sequence[str]) -> int:
    """The answers to the queries: question echoed, a CNAME and the addresses."""
    families = {_family(address) for address in addresses}
    records = sum(
        DNS_ANSWER_FIXED_BYTES + (4 if _family(address) is socket.AF_INET else 16)
        for address in addresses
    )
    return len(families) * (_dns_query_bytes(host) + DNS_CNAME_BYTES) + records


def round_bytes(
    *, host: str, ipv6: bool = False, fetch_latency_file: bool = False
) -> int:
    """Bytes on the wire of a round that finds its first server up, DNS included.

    For a host name with one address, as most test servers have; it is what the
    coordinator shows as the watch's daily cost and what the benchmark counts.
    """
    address = "2001:db8::1" if ipv6 else "192.0.2.1"
    header = IPV6_HEADER_BYTES if ipv6 else IPV4_HEADER_BYTES
    target = ProbeTarget(host=host, port=8080)
    request = _latency_request(target) if fetch_latency_file else b""
    # A real latency.txt answer: status line, a few headers, "test=test\n".
    answer = b"x" * 200 if fetch_latency_file else b""
    lookup = _dns_query_bytes(host) + _dns_answer_bytes(host, (address,))
    return lookup + _attempt_bytes(TargetStatus.ANSWERED, header, request, answer, 0)


def bytes_per_day(
    interval: timedelta,
    *,
    host: str,
    ipv6: bool = False,
    fetch_latency_file: bool = False,
) -> int:
    """What the watch costs a day on a line that stays up, rounds `interval` apart."""
    rounds = math.ceil(timedelta(days=1) / interval)
    return rounds * round_bytes(
        host=host, ipv6=ipv6, fetch_latency_file=fetch_latency_file
    )


# ---------------------------------------------------------------------------------
# The watch: a pure state machine over probe rounds.


class LineStatus(StrEnum):
    """What the watch says about the line."""

    UNKNOWN = "unknown"
    """No round yet."""
    UP = "up"
    DOWN = "down"
    DNS_FAILURE = "dns_failure"
    """The line carries traffic, but names cannot be looked up."""


class EpisodeKind(StrEnum):
    """What went wrong during an episode."""

    OUTAGE = "outage"
    DNS_FAILURE = "dns_failure"


@dataclass(frozen=True, slots=True, kw_only=True)
class Episode(Stored):
    """A time the line was down, or its DNS failed, as the rounds saw it.

    Attributes:
        kind: Outage or DNS failure.
        start: The first failed round of the run.
        start_uncertainty: How much earlier it may have begun: the time since the
            round before (one probe interval, unless the watch was paused).
        end: The first round that succeeded again; None while the episode goes on.
        end_uncertainty: How much earlier it may have ended: the time since the last
            failed round.
    """

    kind: EpisodeKind
    start: datetime
    start_uncertainty: timedelta
    end: datetime | None = None
    end_uncertainty: timedelta | None = None

    @property
    def duration(self) -> timedelta | None:
        """How long the episode lasted; None while it goes on."""
        return None if self.end is None else self.end - self.start


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchSettings:
    """How the watch judges rounds.

    Attributes:
        interval: Time between rounds; the glue schedules them.
        failures_to_down: Consecutive failed rounds that turn the line down; one
            failed round alone is a lost packet more often than an outage.
    """

    interval: timedelta
    failures_to_down: int

    def __post_init__(self) -> None:
        """Refuse settings under which the watch cannot work.

        Raises:
            ValueError: The interval is not positive or no failure is needed.
        """
        if self.interval <= timedelta(0):
            raise ValueError("the probe interval must be positive")
        if self.failures_to_down < 1:
            raise ValueError("at least one failed round must turn the line down")


@dataclass(frozen=True, slots=True, kw_only=True)
class FailedRun(Stored):
    """Consecutive failed rounds of one kind, not yet (or already) an episode.

    Attributes:
        first: When the first failed round of the run started.
        before: When the round before it started (None: no round before).
        rounds: Failed rounds in the run.
        last: When the latest failed round started.
    """

    first: datetime
    before: datetime | None
    rounds: int
    last: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchState(Stored):
    """The watch after every round so far.

    Attributes:
        status: What the line is said to be.
        since: When the status last changed (for down: the start of the outage).
        outage: The ongoing outage, once confirmed.
        dns_failure: The ongoing DNS failure, once confirmed.
        ended: Episodes that ended with the latest round: the glue adds them to the
            history and sends the messages they call for. Not stored, so that a
            restart never adds them twice.
        server_problem: The latest round found a server failing while another answered.
        paused: A full test is running; rounds are skipped and the status holds. Not
            stored: a restart ends any test, so a restored watch is never paused.
        last_round: When the latest round counted started.
        last_success: When the latest round that reached the line started.
        down_run: Consecutive rounds that could not reach the line, if any.
        dns_run: Consecutive rounds whose lookup failed while the line answered.
    """

    status: LineStatus = LineStatus.UNKNOWN
    since: datetime | None = None
    outage: Episode | None = None
    dns_failure: Episode | None = None
    ended: tuple[Episode, ...] = field(default=(), metadata=TRANSIENT)
    server_problem: bool = False
    paused: bool = field(default=False, metadata=TRANSIENT)
    last_round: datetime | None = None
    last_success: datetime | None = None
    down_run: FailedRun | None = None
    dns_run: FailedRun | None = None

    @property
    def connected(self) -> bool | None:
        """What the Internet binary sensor shows: None before the first round.

        A failing DNS is not "connected": to the people in the house nothing loads.
        """
        if self.status is LineStatus.UNKNOWN:
            return None
        return self.status is LineStatus.UP


def pause(state: WatchState) -> WatchState:
    """A full test starts: skip rounds until it ends; the status holds.

    A test saturates the line on purpose; a probe during it could time out and count as
    a failure, and its bytes would skew the test.
    """
    return replace(state, paused=True, ended=())


def resume(state: WatchState) -> WatchState:
    """The full test ended: rounds count again."""
    return replace(state, paused=False, ended=())


def step(
    state: WatchState, verdict: ProbeVerdict, at: datetime, settings: WatchSettings
) -> WatchState:
    """The watch after one more round.

    Args:
        state: The watch before the round.
        verdict: What the round found.
        at: When the round started.
        settings: How many failed rounds turn the line down.
    """
    if state.paused:
        return replace(state, ended=())
    ended: list[Episode] = []
    down_run, dns_run = state.down_run, state.dns_run
    outage, dns_failure = state.outage, state.dns_failure
    line_reached = verdict is not ProbeVerdict.DOWN
    if verdict is ProbeVerdict.DOWN:
        down_run = _extend(down_run, at, state.last_round)
        # A dead line says nothing about DNS: a DNS run neither grows nor ends.
    else:
        if outage is not None and down_run is not None:
            ended.append(_ended(outage, at, down_run.last))
        outage, down_run = None, None
        if verdict is ProbeVerdict.DNS_FAILURE:
            dns_run = _extend(dns_run, at, state.last_round)
        else:
            if dns_failure is not None and dns_run is not None:
                ended.append(_ended(dns_failure, at, dns_run.last))
            dns_failure, dns_run = None, None
    if outage is None and down_run is not None:
        outage = _confirmed(down_run, EpisodeKind.OUTAGE, settings)
    if dns_failure is None and dns_run is not None:
        dns_failure = _confirmed(dns_run, EpisodeKind.DNS_FAILURE, settings)
    if outage is not None:
        status = LineStatus.DOWN
    elif dns_failure is not None:
        status = LineStatus.DNS_FAILURE
    elif line_reached:
        status = LineStatus.UP
    else:
        # A failed round that does not yet turn the line down keeps what was said.
        status = state.status
    since = state.since
    if status is not state.status:
        since = {
            LineStatus.DOWN: outage.start if outage else at,
            LineStatus.DNS_FAILURE: dns_failure.start if dns_failure else at,
        }.get(status, at)
    return WatchState(
        status=status,
        since=since,
        outage=outage,
        dns_failure=dns_failure,
        ended=tuple(ended),
        server_problem=verdict is ProbeVerdict.SERVER_PROBLEM,
        paused=False,
        last_round=at,
        last_success=at if line_reached else state.last_success,
        down_run=down_run,
        dns_run=dns_run,
    )


def replay(
    rounds: Sequence[tuple[datetime, ProbeVerdict]],
    settings: WatchSettings,
    state: WatchState | None = None,
) -> tuple[WatchState, list[Episode]]:
    """Run rounds through the watch, oldest first.

    Returns:
        The final state, and every episode that ended on the way.
    """
    current = state or WatchState()
    ended: list[Episode] = []
    for at, verdict in rounds:
        current = step(current, verdict, at, settings)
        ended.extend(current.ended)
    return current, ended


def _extend(
    run: FailedRun | None, at: datetime, previous: datetime | None
) -> FailedRun:
    if run is None:
        return FailedRun(first=at, before=previous, rounds=1, last=at)
    return replace(run, rounds=run.rounds + 1, last=at)


def _confirmed(
    run: FailedRun, kind: EpisodeKind, settings: WatchSettings
) -> Episode | None:
    if run.rounds < settings.failures_to_down:
        return None
    uncertainty = settings.interval if run.before is None else run.first - run.before
    return Episode(kind=kind, start=run.first, start_uncertainty=_gap(uncertainty))


def _ended(episode: Episode, at: datetime, last_failure: datetime) -> Episode:
    return replace(episode, end=at, end_uncertainty=_gap(at - last_failure))


def _gap(between: timedelta) -> timedelta:
    """A clock set back between two rounds (NTP after boot) gives no negative gap."""
    return max(between, timedelta(0))
