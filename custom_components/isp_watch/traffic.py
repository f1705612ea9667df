"""The line's other traffic during a speed test: host counters, router sensors, busy.

A speed test competes with everything else on the line. This module measures that
competition and judges a test by it, as pure functions of what the caller read:

- the Home Assistant host's interface counters (``/proc/net/dev`` text) before and after
  each direction of a test, on the interface the routing table sends the test over;
- samples of router sensors (a data rate or a byte counter per direction) over the
  test's span, for the whole household;
- the judgement: busy when other traffic exceeded a share of the measured rate in
  either direction, quiet when every source was seen and none did, otherwise unknown;
- what a busy test's line delivered at least: its own rate plus the other traffic;
- before a scheduled test: whether to defer it, within a bound.

Why unknown is a verdict of its own: a busy test does not count as a slow result, so a
false "busy" would hide a slow line. Anything that makes a figure doubtful (a counter
that went backwards, a sensor unavailable, too few samples, a counter too coarse to see
the share) yields unknown, and only figures that are sure can make a test busy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
import ipaddress
import itertools
import math
from pathlib import Path
import sys
from typing import Any, ClassVar, Final, Literal, cast

from .models import Direction, Measurement, Stored, Verdict, from_json

PROC_NET: Final = Path("/proc/net")
PROC_NET_DEV: Final = PROC_NET / "dev"
LOOPBACK_INTERFACE: Final = "lo"

# The interface counts whole frames, the test counts only the bytes its HTTP transfers
# carried. TCP/IP headers with timestamps (52 bytes) and the Ethernet header (14 bytes)
# on a 1500-byte MTU add 66 / 1448 = 4.6%; the ACKs of the other direction are counted
# in the other direction, which is judged on its own phase. Without this allowance a
# fast test on a quiet host would show about 5% of its own rate as "other traffic".
PROTOCOL_OVERHEAD: Final = 0.05

# A router window that stretches this far past the test on either side says too little
# about the test: a short household burst is averaged away (and a sensor that updates
# this rarely is not useful for judging a test of half a minute).
MAX_ROUTER_MARGIN: Final = timedelta(minutes=3)

_BITS_PER_BYTE: Final = 8
_RTF_UP: Final = 0x0001
_RTF_REJECT: Final = 0x0200

# Units as Home Assistant spells them (UnitOfDataRate, UnitOfInformation); a sensor's
# state is in the unit the user chose for display, so every one must convert.
_RATE_BITS_PER_SECOND: Final[Mapping[str, float]] = {
    "bit/s": 1,
    "kbit/s": 1e3,
    "Mbit/s": 1e6,
    "Gbit/s": 1e9,
    "B/s": 8,
    "kB/s": 8e3,
    "MB/s": 8e6,
    "GB/s": 8e9,
    "KiB/s": 8 * 2**10,
    "MiB/s": 8 * 2**20,
    "GiB/s": 8 * 2**30,
}
_SIZE_BYTES: Final[Mapping[str, float]] = {
    "bit": 1 / 8,
    "kbit": 1e3 / 8,
    "Mbit": 1e6 / 8,
    "Gbit": 1e9 / 8,
    "B": 1,
    "kB": 1e3,
    "MB": 1e6,
    "GB": 1e9,
    "TB": 1e12,
    "PB": 1e15,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
    "PiB": 2**50,
}


class TrafficSource(StrEnum):
    """Where other traffic was seen."""

    HOST = "host"
    """The Home Assistant host's own interface: its backups, updates, cameras."""
    ROUTER = "router"
    """The router's WAN sensors: the whole household."""


class UnknownReason(StrEnum):
    """Why other traffic could not be told."""

    NO_INTERFACE = "no_interface"
    """The interface carrying the test is not in the counters."""
    COUNTER_WENT_BACK = "counter_went_back"
    """A counter wrapped or was reset (router reboot, interface re-created)."""
    UNAVAILABLE = "unavailable"
    """A sensor was unavailable or its state not a number in a known unit."""
    TOO_FEW_SAMPLES = "too_few_samples"
    """No sample on one side of the span, or samples too far from it."""
    TOO_COARSE = "too_coarse"
    """The counter's steps are too large to see the share over the span."""
    MIXED_KINDS = "mixed_kinds"
    """A sensor changed between a rate and a size: its samples do not add up."""


class SensorKind(StrEnum):
    """What a router sensor tells."""

    RATE = "rate"
    """A data rate (device class data_rate), in bit/s once converted."""
    COUNTER = "counter"
    """A growing byte count (device class data_size), in bytes once converted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InterfaceCounters:
    """The byte counters of one network interface at one moment."""

    received_bytes: int
    sent_bytes: int

    def bytes(self, direction: Direction) -> int:
        """The count for traffic going that way."""
        if direction is Direction.DOWNLOAD:
            return self.received_bytes
        return self.sent_bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherTraffic(Stored):
    """Traffic that was not the test's own, in one direction, from one source.

    Attributes:
        source: Host or router.
        direction: Download or upload.
        bytes: Other traffic's bytes over `seconds`.
        seconds: How long the figure was measured over.
    """

    stored_type: ClassVar[str | None] = "other"

    source: TrafficSource
    direction: Direction
    bytes: int
    seconds: float

    def __post_init__(self) -> None:
        """Refuse a figure without a duration, as damaged stored data may hold.

        Raises:
            ValueError: The duration is not positive.
        """
        if not self.seconds > 0:
            raise ValueError("other traffic needs a positive duration")

    @property
    def rate_mbps(self) -> float:
        """The average rate of the other traffic, in Mbit/s."""
        return self.bytes * _BITS_PER_BYTE / self.seconds / 1e6


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownTraffic(Stored):
    """Other traffic in one direction from one source that could not be told."""

    stored_type: ClassVar[str | None] = "unknown"

    source: TrafficSource
    direction: Direction
    reason: UnknownReason


type TrafficReading = OtherTraffic | UnknownTraffic


def reading_from_dict(data: Mapping[str, Any]) -> TrafficReading:
    """Read the JSON-safe form of a reading.

    Raises:
        KeyError, ValueError, TypeError: The data is not a stored reading.
    """
    return cast("TrafficReading", from_json(TrafficReading, data))


# --- Host counters --------------------------------------------------------------------


def parse_proc_net_dev(text: str) -> dict[str, InterfaceCounters]:
    """The byte counters per interface from the text of ``/proc/net/dev``.

    Lines that do not parse are skipped rather than refused: the file's two header lines
    and any line a future kernel adds must not cost the counters of the others.
    """
    counters: dict[str, InterfaceCounters] = {}
    for line in text.splitlines():
        name, colon, fields_text = line.partition(":")
        fields = fields_text.split()
        # Receive has 8 columns, transmit follows: bytes are columns 0 and 8.
        if not colon or len(fields) < 16:
            continue
        try:
            received, sent = int(fields[0]), int(fields[8])
        except ValueError:
            continue
        counters[name.strip()] = InterfaceCounters(
            received_bytes=received, sent_bytes=sent
        )
    return counters


def read_proc_net_dev(path: Path = PROC_NET_DEV) -> dict[str, InterfaceCounters]:
    """The host's counters now; empty where the file cannot be read (not Linux)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return {}
    return parse_proc_net_dev(text)


def route_interface(
    destination: str,
    ipv4_routes: str,
    ipv6_routes: str = "",
    *,
    byteorder: Literal["little", "big"] = sys.byteorder,
) -> str | None:
    """The interface the main routing table sends packets for `destination` over.

    Reads the text of ``/proc/net/route`` (IPv4) or ``/proc/net/ipv6_route`` (IPv6):
    the longest matching prefix wins, then the lowest metric, as the kernel decides.
    Read from these files rather than from ``ip route get``: they need no program that
    Home Assistant's images may lack and no child process, and they are plain text the
    tests can hand in. They show the main table only (IPv4 loopback, which the local
    table routes, is answered here): policy routing (a VPN that routes by rule) may
    pick another interface, whose traffic then still crosses this one, and the host's
    own LAN address is not recognised as local.

    Args:
        destination: The test server's address (or any address on the test's path).
        ipv4_routes: Text of /proc/net/route.
        ipv6_routes: Text of /proc/net/ipv6_route.
        byteorder: The byte order of the machine that wrote ipv4_routes: the kernel
            prints IPv4 addresses as numbers in its own order.

    Returns:
        The interface name, or None when the address is invalid or has no route.
    """
    try:
        address = ipaddress.ip_address(destination)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address) and address.is_loopback:
        # 127.0.0.0/8 lives in the kernel's local table, which /proc/net/route does not
        # show; the main table would send it out of the default route's interface.
        return LOOPBACK_INTERFACE
    routes = (
        _ipv4_routes(ipv4_routes, byteorder)
        if isinstance(address, ipaddress.IPv4Address)
        else _ipv6_routes(ipv6_routes)
    )
    best: tuple[int, int, str] | None = None
    for network, metric, interface in routes:
        if address not in network:
            continue
        # Longer prefix first, then lower metric.
        key = (-network.prefixlen, metric, interface)
        if best is None or key < best:
            best = key
    return None if best is None else best[2]


def host_route_interface(destination: str, proc_net: Path = PROC_NET) -> str | None:
    """The interface this host routes `destination` over, from its routing tables.

    A table that cannot be read (no IPv6, not Linux) counts as empty.
    """
    tables = []
    for name in ("route", "ipv6_route"):
        try:
            tables.append((proc_net / name).read_text(encoding="ascii"))
        except OSError, UnicodeDecodeError:
            tables.append("")
    return route_interface(destination, tables[0], tables[1])


def _ipv4_routes(
    text: str, byteorder: Literal["little", "big"]
) -> Iterable[tuple[ipaddress.IPv4Network, int, str]]:
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            flags = int(fields[3], 16)
            destination = int.from_bytes(bytes.fromhex(fields[1]), byteorder)
            mask = int.from_bytes(bytes.fromhex(fields[7]), byteorder)
            metric = int(fields[6])
            network = ipaddress.IPv4Network((destination, bin(mask).count("1")))
        except ValueError:
            continue
        if flags & _RTF_UP and not flags & _RTF_REJECT:
            yield network, metric, fields[0]


def _ipv6_routes(
    text: str,
) -> Iterable[tuple[ipaddress.IPv6Network, int, str]]:
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            destination = int(fields[0], 16)
            network = ipaddress.IPv6Network((destination, int(fields[1], 16)))
            metric = int(fields[5], 16)
            flags = int(fields[8], 16)
        except ValueError:
            continue
        if flags & _RTF_UP and not flags & _RTF_REJECT:
            yield network, metric, fields[9]


def host_other_traffic(
    before: Mapping[str, InterfaceCounters],
    after: Mapping[str, InterfaceCounters],
    *,
    interface: str | None,
    direction: Direction,
    test_bytes: int,
    seconds: float,
    overhead: float = PROTOCOL_OVERHEAD,
) -> TrafficReading:
    """The host's traffic during one direction of a test that was not the test's.

    Args:
        before: Counters read just before the direction started.
        after: Counters read just after it ended.
        interface: The interface carrying the test (route_interface()).
        direction: Which counter to read: received for download, sent for upload.
        test_bytes: The bytes the test itself moved that way in that time.
        seconds: Time between the two readings.
        overhead: The frames' share above the test's payload.
    """
    if interface is None or interface not in before or interface not in after:
        return UnknownTraffic(
            source=TrafficSource.HOST,
            direction=direction,
            reason=UnknownReason.NO_INTERFACE,
        )
    delta = after[interface].bytes(direction) - before[interface].bytes(direction)
    if delta < 0:
        # A 32-bit counter that wrapped or an interface that was re-created: the real
        # delta cannot be told, and a guess could make a quiet test busy.
        return UnknownTraffic(
            source=TrafficSource.HOST,
            direction=direction,
            reason=UnknownReason.COUNTER_WENT_BACK,
        )
    if seconds <= 0:
        return UnknownTraffic(
            source=TrafficSource.HOST,
            direction=direction,
            reason=UnknownReason.TOO_FEW_SAMPLES,
        )
    other = max(0, round(delta - test_bytes * (1 + overhead)))
    return OtherTraffic(
        source=TrafficSource.HOST, direction=direction, bytes=other, seconds=seconds
    )


def host_traffic(
    interface_use: Any, proc_net: Path = PROC_NET
) -> tuple[TrafficReading, ...]:
    """The host's other traffic in both directions from the runner's answer.

    `interface_use` is the answer's ``interface_use`` (see speedtest_runner.py): the
    address the test connected to and per direction the counters' text before and
    after, the seconds between and the test's own bytes. Anything missing or odd
    leaves that direction unknown; this reads the routing tables, so it belongs in an
    executor.
    """
    use = interface_use if isinstance(interface_use, Mapping) else {}
    peer = use.get("peer")
    interface = host_route_interface(peer, proc_net) if isinstance(peer, str) else None
    readings: list[TrafficReading] = []
    for direction in Direction:
        phase = use.get(direction.value)
        phase = phase if isinstance(phase, Mapping) else {}
        before, after = phase.get("before"), phase.get("after")
        seconds, test_bytes = phase.get("seconds"), phase.get("test_bytes")
        if not (
            isinstance(before, str)
            and isinstance(after, str)
            and isinstance(seconds, int | float)
            and not isinstance(seconds, bool)
            and math.isfinite(seconds)
            and isinstance(test_bytes, int)
            and not isinstance(test_bytes, bool)
            and test_bytes >= 0
        ):
            readings.append(
                UnknownTraffic(
                    source=TrafficSource.HOST,
                    direction=direction,
                    reason=UnknownReason.NO_INTERFACE,
                )
            )
            continue
        readings.append(
            host_other_traffic(
                parse_proc_net_dev(before),
                parse_proc_net_dev(after),
                interface=interface,
                direction=direction,
                test_bytes=test_bytes,
                seconds=float(seconds),
            )
        )
    return tuple(readings)


def host_traffic_now(
    before: Mapping[str, InterfaceCounters],
    after: Mapping[str, InterfaceCounters],
    *,
    interface: str | None,
    seconds: float,
) -> tuple[TrafficReading, ...]:
    """The host's traffic in both directions over a few seconds before a test."""
    return tuple(
        host_other_traffic(
            before,
            after,
            interface=interface,
            direction=direction,
            test_bytes=0,
            seconds=seconds,
            overhead=0.0,
        )
        for direction in Direction
    )


# --- Router sensors -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterSample:
    """One state of a router sensor, converted to base units.

    Attributes:
        at: When the router reported it (the state's last_reported).
        kind: Rate or counter; None when the unit is not a data rate or size.
        value: bit/s for a rate, bytes for a counter; None when unavailable.
        step: The smallest change the state can show, in the same unit: the sensor's
            rounding (a counter shown in 0.1 GB steps cannot see 50 MB).
    """

    at: datetime
    kind: SensorKind | None
    value: float | None
    step: float = 0.0


def router_sample(at: datetime, state: str, unit: str | None) -> RouterSample:
    """A router sensor's state as a sample; never raises on odd states.

    Args:
        at: When the state was reported.
        state: The state text: a number, or "unavailable", "unknown", anything else.
        unit: The state's unit_of_measurement attribute.
    """
    if unit is None:
        return RouterSample(at=at, kind=None, value=None)
    if unit in _RATE_BITS_PER_SECOND:
        kind: SensorKind | None = SensorKind.RATE
        factor = _RATE_BITS_PER_SECOND[unit]
    elif unit in _SIZE_BYTES:
        kind = SensorKind.COUNTER
        factor = _SIZE_BYTES[unit]
    else:
        return RouterSample(at=at, kind=None, value=None)
    try:
        number = Decimal(state.strip())
    except InvalidOperation:
        return RouterSample(at=at, kind=kind, value=None)
    value = float(number) * factor
    # "1e999" is a finite Decimal but no finite float.
    if not number.is_finite() or number < 0 or not math.isfinite(value):
        return RouterSample(at=at, kind=kind, value=None)
    exponent = number.as_tuple().exponent
    # The digits shown tell the rounding: "12.3" GB moves in 0.1 GB steps.
    step = 10.0 ** min(int(exponent), 0) if isinstance(exponent, int) else 0.0
    return RouterSample(at=at, kind=kind, value=value, step=step * factor)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Window:
    """Bytes a router sensor saw between two of its samples, and their uncertainty."""

    seconds: float
    bytes: float
    uncertainty: float


def _router_window(
    samples: Sequence[RouterSample],
    start: datetime,
    end: datetime,
    max_margin: timedelta,
) -> _Window | UnknownReason:
    """The bytes a sensor saw over a window of its own samples that holds the test.

    The window runs from the last sample at or before `start` to the first at or after
    `end`; its bytes are a counter's difference or a rate's integral.

    A rate sample is taken as the average since the sample before it: that is what a
    rate derived from counters (UPnP, most routers) is, and for a router's instant rate
    it is the best there is between two polls.
    """
    ordered = sorted(samples, key=lambda item: item.at)
    first = next(
        (
            index
            for index in range(len(ordered) - 1, -1, -1)
            if ordered[index].at <= start
        ),
        None,
    )
    last = next(
        (index for index, item in enumerate(ordered) if item.at >= end),
        None,
    )
    if first is None or last is None:
        return UnknownReason.TOO_FEW_SAMPLES
    window = ordered[first : last + 1]
    if start - window[0].at > max_margin or window[-1].at - end > max_margin:
        return UnknownReason.TOO_FEW_SAMPLES
    if any(item.value is None for item in window):
        return UnknownReason.UNAVAILABLE
    kinds = {item.kind for item in window}
    if len(kinds) != 1:
        return UnknownReason.MIXED_KINDS
    seconds = (window[-1].at - window[0].at).total_seconds()
    values = [item.value for item in window if item.value is not None]
    if kinds == {SensorKind.COUNTER}:
        if any(later < earlier for earlier, later in itertools.pairwise(values)):
            return UnknownReason.COUNTER_WENT_BACK
        step = max(item.step for item in window)
        return _Window(seconds=seconds, bytes=values[-1] - values[0], uncertainty=step)
    total = 0.0
    uncertainty = 0.0
    for (earlier, later), rate in zip(
        itertools.pairwise(window), values[1:], strict=True
    ):
        gap = (later.at - earlier.at).total_seconds()
        total += rate / _BITS_PER_BYTE * gap
        uncertainty += later.step / _BITS_PER_BYTE * gap
    return _Window(seconds=seconds, bytes=total, uncertainty=uncertainty)


def router_other_traffic(
    samples: Sequence[RouterSample],
    *,
    direction: Direction,
    start: datetime,
    end: datetime,
    test_bytes: int,
    share_of_mbps: float,
    max_margin: timedelta = MAX_ROUTER_MARGIN,
    overhead: float = PROTOCOL_OVERHEAD,
) -> TrafficReading:
    """The household's traffic during a test that was not the test's, in one direction.

    The router's bytes are taken between its last sample at or before the test's start
    and its first at or after the test's end, so the whole test lies inside the window;
    the test's own bytes are subtracted and the rest averaged over the window. A sensor
    that updates every 30 s widens a 25-s test to about a minute: a burst shorter than
    the test is diluted, a household download of minutes is not.

    Args:
        samples: The sensor's samples around the test, any order.
        direction: The direction the sensor measures.
        start: When the test started.
        end: When the test ended.
        test_bytes: The test's own bytes in that direction, over the whole test.
        share_of_mbps: The rate (Mbit/s) the verdict compares with: share times the
            measured rate. A counter whose rounding alone could exceed it over the
            window is too coarse to judge with.
        max_margin: How far the window may reach past either end of the test.
        overhead: The frames' share above the test's payload.
    """
    window = _router_window(samples, start, end, max_margin)
    if isinstance(window, UnknownReason):
        return UnknownTraffic(
            source=TrafficSource.ROUTER, direction=direction, reason=window
        )
    if (
        window.seconds <= 0
        or window.uncertainty * _BITS_PER_BYTE / window.seconds / 1e6 > share_of_mbps
    ):
        return UnknownTraffic(
            source=TrafficSource.ROUTER,
            direction=direction,
            reason=UnknownReason.TOO_COARSE,
        )
    other = max(0, round(window.bytes - test_bytes * (1 + overhead)))
    return OtherTraffic(
        source=TrafficSource.ROUTER,
        direction=direction,
        bytes=other,
        seconds=window.seconds,
    )


def router_traffic_now(
    samples: Sequence[RouterSample],
    *,
    direction: Direction,
    now: datetime,
    share_of_mbps: float,
    max_age: timedelta = MAX_ROUTER_MARGIN,
) -> TrafficReading:
    """The household's current traffic in one direction, before a test.

    A rate sensor's latest sample is its latest average; a counter needs its two latest
    samples. Both must be no older than `max_age`: an old figure says nothing about now.

    Args:
        samples: The sensor's recent samples, any order.
        direction: The direction the sensor measures.
        now: The moment the test is due.
        share_of_mbps: As for router_other_traffic(): share times the last measured
            rate.
        max_age: How old the samples may be.
    """
    fresh = sorted(
        (item for item in samples if timedelta(0) <= now - item.at <= max_age),
        key=lambda item: item.at,
    )
    latest = fresh[-1] if fresh else None
    if latest is None:
        reason = UnknownReason.TOO_FEW_SAMPLES
    elif latest.value is None or latest.kind is None:
        reason = UnknownReason.UNAVAILABLE
    elif latest.kind is SensorKind.RATE:
        # One second's worth: the reading is a rate, and its seconds say so.
        return OtherTraffic(
            source=TrafficSource.ROUTER,
            direction=direction,
            bytes=round(latest.value / _BITS_PER_BYTE),
            seconds=1.0,
        )
    elif len(fresh) < 2:
        reason = UnknownReason.TOO_FEW_SAMPLES
    else:
        return router_other_traffic(
            fresh,
            direction=direction,
            start=fresh[-2].at,
            end=latest.at,
            test_bytes=0,
            share_of_mbps=share_of_mbps,
            max_margin=max_age,
        )
    return UnknownTraffic(
        source=TrafficSource.ROUTER, direction=direction, reason=reason
    )


# --- The verdict ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BusyJudgement(Stored):
    """A test judged by the other traffic during it.

    Attributes:
        verdict: Busy, quiet or unknown.
        share: The share of the measured rate other traffic had to exceed.
        readings: Every figure the verdict rests on, for attributes and history.
    """

    verdict: Verdict
    share: float
    readings: tuple[TrafficReading, ...]

    def busiest(self, direction: Direction) -> OtherTraffic | None:
        """The highest other traffic seen in a direction, by any source."""
        known = [
            item
            for item in self.readings
            if isinstance(item, OtherTraffic) and item.direction is direction
        ]
        return max(known, key=lambda item: item.rate_mbps, default=None)


def judge_busy(
    readings: Iterable[TrafficReading],
    *,
    download_mbps: float,
    upload_mbps: float,
    share: float,
) -> BusyJudgement:
    """Whether other traffic exceeded `share` of the measured rate in either direction.

    Busy as soon as one sure figure exceeds the share: the others cannot undo it. Quiet
    only when every source the caller asked about was seen and none exceeded it; a
    router that could not be read leaves the test unknown even when the host was quiet,
    as the household is the likelier cause.

    Args:
        readings: The host's and the router's readings, for both directions; only the
            sources the user has set up.
        download_mbps: The download rate the test measured.
        upload_mbps: The upload rate the test measured.
        share: 0.10 makes a test busy when other traffic exceeded 10% of the measured
            rate.
    """
    readings = tuple(readings)
    measured = {Direction.DOWNLOAD: download_mbps, Direction.UPLOAD: upload_mbps}
    if any(
        isinstance(item, OtherTraffic)
        and item.rate_mbps > share * measured[item.direction]
        for item in readings
    ):
        verdict = Verdict.BUSY
    elif not readings or any(isinstance(item, UnknownTraffic) for item in readings):
        verdict = Verdict.UNKNOWN
    else:
        verdict = Verdict.QUIET
    return BusyJudgement(verdict=verdict, share=share, readings=readings)


def delivered_mbps(
    judgement: BusyJudgement, direction: Direction, measured_mbps: float
) -> float:
    """The rate the line carried at least during a test: its own plus the busiest other.

    A busy test says little about the line when the household took what the test did
    not get; but if even the test and the household together stayed below a limit, the
    line was slow all the same. The busiest single source counts, not their sum: the
    router's figure already holds the host's.
    """
    busiest = judgement.busiest(direction)
    return measured_mbps + (0.0 if busiest is None else busiest.rate_mbps)


def judged(
    measurement: Measurement, readings: Iterable[TrafficReading], share: float
) -> Measurement:
    """The measurement with its verdict and the busiest other traffic each way."""
    judgement = judge_busy(
        readings,
        download_mbps=measurement.download_mbps,
        upload_mbps=measurement.upload_mbps,
        share=share,
    )
    download = judgement.busiest(Direction.DOWNLOAD)
    upload = judgement.busiest(Direction.UPLOAD)
    return replace(
        measurement,
        verdict=judgement.verdict,
        other_download_bytes=None if download is None else download.bytes,
        other_download_mbps=None if download is None else round(download.rate_mbps, 3),
        other_upload_bytes=None if upload is None else upload.bytes,
        other_upload_mbps=None if upload is None else round(upload.rate_mbps, 3),
        host_traffic=(),
    )


def readings_of(measurement: Measurement) -> tuple[TrafficReading, ...]:
    """The host's readings the speed-test client attached to a fresh measurement."""
    return tuple(
        item
        for item in measurement.host_traffic
        if isinstance(item, OtherTraffic | UnknownTraffic)
    )


# --- Before a scheduled test ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DeferralPolicy:
    """How long a scheduled test waits for a busy line.

    Attributes:
        max_deferrals: Deferrals at most per scheduled test; then it runs anyway, so a
            line that is always busy is still measured (and its tests recorded busy).
        delay: Time between tries: household sessions (a film, a game update) last
            minutes, so waiting seconds would only find the same session again.
    """

    max_deferrals: int
    delay: timedelta

    def __post_init__(self) -> None:
        """Refuse a policy that could defer for ever or not wait.

        Raises:
            ValueError: Negative bound, or a delay that is not positive.
        """
        if self.max_deferrals < 0:
            raise ValueError("the deferral bound cannot be negative")
        if self.delay <= timedelta(0):
            raise ValueError("a deferral must wait")


class PreTestAction(StrEnum):
    """What to do with a test about to start."""

    RUN = "run"
    DEFER = "defer"


@dataclass(frozen=True, slots=True, kw_only=True)
class PreTestDecision:
    """Run now or later, and what the line looked like.

    Attributes:
        action: Run or defer.
        delay: How long to wait before the next try; None when running.
        deferrals_used: Deferrals of this scheduled test so far, this one included.
        seen: The judgement of the traffic before the test; the test records it when
            it runs anyway on a busy line.
    """

    action: PreTestAction
    delay: timedelta | None
    deferrals_used: int
    seen: BusyJudgement


def pre_test_decision(
    readings: Iterable[TrafficReading],
    *,
    last_download_mbps: float | None,
    last_upload_mbps: float | None,
    share: float,
    policy: DeferralPolicy,
    deferrals_used: int,
    pressed: bool,
) -> PreTestDecision:
    """Whether a test about to start should wait for the line to calm down.

    Only a busy verdict defers: an unknown one runs, so that a sensor that is down
    cannot stop the tests. A test the user pressed always runs: they asked for it now.

    Args:
        readings: Other traffic over the last few seconds (host counters a few seconds
            apart, router_traffic_now()).
        last_download_mbps: The last measured download rate; None runs the test.
        last_upload_mbps: The last measured upload rate; None runs the test.
        share: The same share the busy verdict uses.
        policy: The bound and the delay.
        deferrals_used: How often this scheduled test has been deferred already.
        pressed: The user started the test.
    """
    if last_download_mbps is None or last_upload_mbps is None:
        # Nothing to compare with: the figures are kept, the verdict left open.
        seen = BusyJudgement(
            verdict=Verdict.UNKNOWN, share=share, readings=tuple(readings)
        )
    else:
        seen = judge_busy(
            readings,
            download_mbps=last_download_mbps,
            upload_mbps=last_upload_mbps,
            share=share,
        )
    if (
        not pressed
        and seen.verdict is Verdict.BUSY
        and deferrals_used < policy.max_deferrals
    ):
        return PreTestDecision(
            action=PreTestAction.DEFER,
            delay=policy.delay,
            deferrals_used=deferrals_used + 1,
            seen=seen,
        )
    return PreTestDecision(
        action=PreTestAction.RUN, delay=None, deferrals_used=deferrals_used, seen=seen
    )
