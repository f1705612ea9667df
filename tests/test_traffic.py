"""The line's other traffic: host counters, router sensors, busy verdicts, deferral."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import socket
import threading

import pytest

from custom_components.isp_watch.models import Direction, Verdict
from custom_components.isp_watch.traffic import (
    BusyJudgement,
    DeferralPolicy,
    InterfaceCounters,
    OtherTraffic,
    PreTestAction,
    RouterSample,
    SensorKind,
    TrafficReading,
    TrafficSource,
    UnknownReason,
    UnknownTraffic,
    delivered_mbps,
    host_other_traffic,
    host_route_interface,
    judge_busy,
    parse_proc_net_dev,
    pre_test_decision,
    read_proc_net_dev,
    reading_from_dict,
    route_interface,
    router_other_traffic,
    router_sample,
    router_traffic_now,
)

START = datetime(2026, 3, 2, 20, 15, 7, tzinfo=UTC)
# A test of 25 s: download from 5 s to 15 s, upload from 17 s to 27 s.
TEST_SPAN = timedelta(seconds=25)
PHASE_SECONDS = 10.0
SHARE = 0.10
# What real frames add to a payload: TCP/IP with timestamps and Ethernet, MTU 1500.
FRAME_OVERHEAD = 66 / 1448

PROC_NET_DEV_TEXT = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets \
errs drop fifo colls carrier compressed
    lo: 3262655478  484613    0    0    0     0          0         0 3262655478  \
484613    0    0    0     0       0          0
  eth0: 98765432101 7654321    0   12    0     0          0       310 1234567890 \
2345678    0    0    0     0       0          0
wlan0:       0       0    0    0    0     0          0         0        0       0    \
0    0    0     0       0          0
  odd0: not numbers at all
  odd1: a b c d e f g h i j k l m n o p
"""

IPV4_ROUTES = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
wg0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0
down0\t0000320A\t00000000\t0000\t0\t0\t0\t0000FFFF\t0\t0\t0
lo\t0000330A\t00000000\t0201\t0\t0\t0\t0000FFFF\t0\t0\t0
odd0\tnot-hex\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0
short0\t00000000
"""

IPV6_ROUTES = """\
20010db8000000000000000000000000 20 00000000000000000000000000000000 00 \
00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
fe800000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 \
00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
zz000000000000000000000000000000 00 00000000000000000000000000000000 00 \
00000000000000000000000000000000 00000000 00000002 00000000 00000001     odd0
20010db8000100000000000000000000 30 00000000000000000000000000000000 00 \
00000000000000000000000000000000 00000000 00000001 00000000 00000201       lo
short0 00
"""


def megabits(mbps: float, seconds: float) -> int:
    """Payload bytes of a transfer at `mbps` for `seconds`."""
    return round(mbps * 1e6 / 8 * seconds)


def frames(payload: int) -> int:
    """Bytes an interface counts for a TCP payload."""
    return round(payload * (1 + FRAME_OVERHEAD))


def host_download(test_mbps: float, other_mbps: float) -> TrafficReading:
    """The host reading of a download phase with a parallel transfer on eth0."""
    test_bytes = megabits(test_mbps, PHASE_SECONDS)
    before = {"eth0": InterfaceCounters(received_bytes=10**9, sent_bytes=10**8)}
    received = frames(test_bytes) + frames(megabits(other_mbps, PHASE_SECONDS))
    after = {
        "eth0": InterfaceCounters(received_bytes=10**9 + received, sent_bytes=10**8)
    }
    return host_other_traffic(
        before,
        after,
        interface="eth0",
        direction=Direction.DOWNLOAD,
        test_bytes=test_bytes,
        seconds=PHASE_SECONDS,
    )


def counter_samples(
    unit: str,
    per_second: float,
    *,
    test_bytes: int,
    every: timedelta = timedelta(seconds=30),
    offset: timedelta = timedelta(seconds=-12),
    start_value: float = 7_000_000_000,
    scale: float = 1.0,
    decimals: int = 0,
) -> list[RouterSample]:
    """A router byte counter polled every `every` around a test.

    The household moves `per_second` bytes all along; the test adds its bytes evenly
    over its span. States are shown in `unit` (`scale` bytes per unit), rounded to
    `decimals` as the sensor rounds them.
    """
    samples = []
    moment = START + offset
    while moment <= START + TEST_SPAN + 2 * every:
        elapsed = (moment - START).total_seconds()
        in_test = min(max(elapsed, 0.0), TEST_SPAN.total_seconds())
        total = (
            start_value
            + per_second * (moment - (START + offset)).total_seconds()
            + test_bytes * in_test / TEST_SPAN.total_seconds()
        )
        samples.append(router_sample(moment, f"{total / scale:.{decimals}f}", unit))
        moment += every
    return samples


def rate_samples(
    unit: str,
    household_bits_per_second: float,
    *,
    test_bytes: int,
    every: timedelta = timedelta(seconds=30),
    offset: timedelta = timedelta(seconds=-12),
    scale: float = 1.0,
) -> list[RouterSample]:
    """A rate sensor derived from a router's counters every `every`, like UPnP's."""
    samples = []
    moment = START + offset
    previous_in_test = 0.0
    while moment <= START + TEST_SPAN + 2 * every:
        elapsed = (moment - START).total_seconds()
        in_test = min(max(elapsed, 0.0), TEST_SPAN.total_seconds())
        test_share = test_bytes * (in_test - previous_in_test) / TEST_SPAN.seconds
        previous_in_test = in_test
        bits = household_bits_per_second + test_share * 8 / every.total_seconds()
        samples.append(router_sample(moment, f"{bits / scale:.1f}", unit))
        moment += every
    return samples


# --- Host counters ----------------------------------------------------------------


def test_proc_net_dev_gives_bytes_per_interface() -> None:
    counters = parse_proc_net_dev(PROC_NET_DEV_TEXT)

    assert counters == {
        "lo": InterfaceCounters(received_bytes=3262655478, sent_bytes=3262655478),
        "eth0": InterfaceCounters(received_bytes=98765432101, sent_bytes=1234567890),
        "wlan0": InterfaceCounters(received_bytes=0, sent_bytes=0),
    }


def test_unreadable_counters_are_empty_not_an_error(tmp_path: Path) -> None:
    assert read_proc_net_dev(tmp_path / "absent") == {}


@pytest.mark.parametrize(
    ("destination", "interface"),
    [
        ("203.0.113.9", "eth0"),  # default route, lower metric than wlan0
        ("192.168.1.20", "eth0"),  # on-link network
        ("10.0.0.7", "wg0"),  # longer prefix beats the default route
        ("10.50.1.1", "wg0"),  # a /16 that is down is no route: the /8 it is
        ("10.51.1.1", "wg0"),  # nor is a reject route
        ("::ffff:10.0.0.7", "wg0"),  # IPv4 written as IPv6
        ("2001:db8::5", "eth1"),
        ("2001:db8:1::5", "eth1"),  # the /48 rejects: the /32 carries it
        ("2606:4700::1", "eth0"),
        ("::1", "lo"),
        ("127.0.0.1", "lo"),  # the local table, not in /proc/net/route
        ("speedtest.example.net", None),
    ],
)
def test_route_picks_the_interface_the_kernel_would(
    destination: str, interface: str | None
) -> None:
    found = route_interface(destination, IPV4_ROUTES, IPV6_ROUTES, byteorder="little")

    assert found == interface


def test_routes_written_by_a_big_endian_kernel() -> None:
    routes = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
    routes += "wg0\t0A000000\t00000000\t0001\t0\t0\t0\tFF000000\n"

    assert route_interface("10.1.2.3", routes, byteorder="big") == "wg0"
    assert route_interface("11.1.2.3", routes, byteorder="big") is None


def test_host_routes_read_from_the_tables(tmp_path: Path) -> None:
    (tmp_path / "route").write_text(IPV4_ROUTES, encoding="ascii")

    assert host_route_interface("10.0.0.7", tmp_path) == "wg0"
    # No IPv6 table on this host: no IPv6 route.
    assert host_route_interface("2001:db8::5", tmp_path) is None


def test_no_route_no_interface() -> None:
    assert route_interface("2001:db8::5", IPV4_ROUTES) is None
    assert route_interface("203.0.113.9", "Iface\tDestination\n") is None


@pytest.mark.parametrize(
    ("other_share", "verdict"),
    [
        (0.0, Verdict.QUIET),
        (0.05, Verdict.QUIET),
        (0.09, Verdict.QUIET),
        (0.11, Verdict.BUSY),
        (0.3, Verdict.BUSY),
        (1.5, Verdict.BUSY),
    ],
)
def test_parallel_transfer_on_the_host_marks_busy_at_the_share(
    other_share: float, verdict: Verdict
) -> None:
    test_mbps = 92.0
    reading = host_download(test_mbps, other_share * test_mbps)

    judgement = judge_busy(
        [reading], download_mbps=test_mbps, upload_mbps=18.0, share=SHARE
    )

    assert judgement.verdict is verdict
    busiest = judgement.busiest(Direction.DOWNLOAD)
    assert busiest is not None
    # The size of the other traffic is kept: what it moved, its frames' headers too.
    assert busiest.rate_mbps == pytest.approx(
        other_share * test_mbps, rel=0.06, abs=0.5
    )
    assert busiest.seconds == PHASE_SECONDS


def test_quiet_host_shows_no_other_traffic() -> None:
    reading = host_download(92.0, 0.0)

    assert isinstance(reading, OtherTraffic)
    assert reading.bytes == 0
    assert reading.source is TrafficSource.HOST


def test_host_upload_phase_reads_the_sent_counter() -> None:
    test_bytes = megabits(18.0, PHASE_SECONDS)
    other = megabits(6.0, PHASE_SECONDS)
    before = {"eth0": InterfaceCounters(received_bytes=5, sent_bytes=1000)}
    after = {
        "eth0": InterfaceCounters(
            received_bytes=10**9, sent_bytes=1000 + frames(test_bytes) + frames(other)
        )
    }

    reading = host_other_traffic(
        before,
        after,
        interface="eth0",
        direction=Direction.UPLOAD,
        test_bytes=test_bytes,
        seconds=PHASE_SECONDS,
    )

    judgement = judge_busy([reading], download_mbps=92.0, upload_mbps=18.0, share=SHARE)
    assert judgement.verdict is Verdict.BUSY
    busiest = judgement.busiest(Direction.UPLOAD)
    assert busiest is not None
    assert busiest.rate_mbps == pytest.approx(6.0, abs=0.3)
    assert judgement.busiest(Direction.DOWNLOAD) is None


@pytest.mark.parametrize(
    ("after", "interface", "reason"),
    [
        # A 32-bit counter wrapped, or the interface came back from zero.
        (InterfaceCounters(received_bytes=10, sent_bytes=10), "eth0", "went_back"),
        (None, "eth0", "no_interface"),
        (InterfaceCounters(received_bytes=2 * 10**9, sent_bytes=10), None, "none"),
    ],
)
def test_host_counters_in_doubt_are_unknown_not_busy(
    after: InterfaceCounters | None, interface: str | None, reason: str
) -> None:
    before = {"eth0": InterfaceCounters(received_bytes=4_000_000_000, sent_bytes=10)}
    after_counters = {} if after is None else {"eth0": after}

    reading = host_other_traffic(
        before,
        after_counters,
        interface=interface,
        direction=Direction.DOWNLOAD,
        test_bytes=0,
        seconds=PHASE_SECONDS,
    )

    assert isinstance(reading, UnknownTraffic)
    expected = (
        UnknownReason.COUNTER_WENT_BACK
        if reason == "went_back"
        else UnknownReason.NO_INTERFACE
    )
    assert reading.reason is expected
    judgement = judge_busy([reading], download_mbps=1.0, upload_mbps=1.0, share=SHARE)
    assert judgement.verdict is Verdict.UNKNOWN


def test_host_readings_over_no_time_are_unknown() -> None:
    counters = {"eth0": InterfaceCounters(received_bytes=10, sent_bytes=10)}

    reading = host_other_traffic(
        counters,
        counters,
        interface="eth0",
        direction=Direction.DOWNLOAD,
        test_bytes=0,
        seconds=0.0,
    )

    assert isinstance(reading, UnknownTraffic)
    assert reading.reason is UnknownReason.TOO_FEW_SAMPLES


def test_loopback_counters_see_a_transfer_made_here(socket_enabled: None) -> None:
    """The counters of `lo` grow by what this test sends over 127.0.0.1."""
    payload = 8 * 2**20
    # Others may use loopback at the same time: one of a few tries must be clean.
    deltas = []
    for _ in range(10):
        before = read_proc_net_dev()
        if "lo" not in before:
            pytest.skip("no /proc/net/dev loopback counters on this system")
        _send_over_loopback(payload)
        after = read_proc_net_dev()
        reading = host_other_traffic(
            before,
            after,
            interface="lo",
            direction=Direction.UPLOAD,
            test_bytes=payload,
            seconds=1.0,
        )
        deltas.append(after["lo"].sent_bytes - before["lo"].sent_bytes)
        if isinstance(reading, OtherTraffic) and reading.bytes == 0:
            break
    assert deltas[-1] >= payload
    assert deltas[-1] <= payload * 1.05, deltas


def _send_over_loopback(payload: int) -> None:
    """Send `payload` bytes over a TCP connection on 127.0.0.1 and wait for them."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        received = 0

        def drain() -> None:
            nonlocal received
            connection, _ = server.accept()
            with connection:
                while chunk := connection.recv(1 << 20):
                    received += len(chunk)

        reader = threading.Thread(target=drain)
        reader.start()
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"\0" * payload)
        reader.join(timeout=30)
    assert received == payload


# --- Router sensors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "unit", "kind", "value", "step"),
    [
        ("812.5", "kbit/s", SensorKind.RATE, 812_500, 100),
        ("12.3", "MB/s", SensorKind.RATE, 98_400_000, 800_000),
        ("100", "KiB/s", SensorKind.RATE, 819_200, 8192),
        ("45", "Mbit/s", SensorKind.RATE, 45_000_000, 1_000_000),
        ("2.5", "Gbit/s", SensorKind.RATE, 2.5e9, 1e8),
        ("1536", "B/s", SensorKind.RATE, 12_288, 8),
        ("4294967295", "B", SensorKind.COUNTER, 4294967295, 1),
        ("123.4", "GB", SensorKind.COUNTER, 123.4e9, 1e8),
        ("2", "GiB", SensorKind.COUNTER, 2 * 2**30, 2**30),
        ("1250.50", "MB", SensorKind.COUNTER, 1_250_500_000, 10_000),
        ("80", "Mbit", SensorKind.COUNTER, 10_000_000, 125_000),
    ],
)
def test_router_states_convert_from_any_unit(
    state: str, unit: str, kind: SensorKind, value: float, step: float
) -> None:
    sample = router_sample(START, state, unit)

    assert sample.kind is kind
    assert sample.value == pytest.approx(value)
    assert sample.step == pytest.approx(step)


@pytest.mark.parametrize(
    ("state", "unit"),
    [
        ("unavailable", "Mbit/s"),
        ("unknown", "GB"),
        ("nan", "Mbit/s"),
        ("inf", "B"),
        ("1e999", "GB"),
        ("-3", "kB/s"),
        ("", "B"),
        ("12", None),
        ("12", "W"),
    ],
)
def test_odd_router_states_are_unavailable(state: str, unit: str | None) -> None:
    assert router_sample(START, state, unit).value is None


def test_household_download_seen_by_a_byte_counter_makes_the_test_busy() -> None:
    test_bytes = megabits(60.0, PHASE_SECONDS)
    household = 30e6 / 8  # a film and a game update: 30 Mbit/s

    reading = router_other_traffic(
        counter_samples("B", household, test_bytes=frames(test_bytes)),
        direction=Direction.DOWNLOAD,
        start=START,
        end=START + TEST_SPAN,
        test_bytes=test_bytes,
        share_of_mbps=SHARE * 60.0,
    )

    assert isinstance(reading, OtherTraffic)
    # The window runs from the poll before the test to the poll after it.
    assert reading.seconds == 60.0
    assert reading.rate_mbps == pytest.approx(30.0, abs=0.5)
    judgement = judge_busy([reading], download_mbps=60.0, upload_mbps=18.0, share=SHARE)
    assert judgement.verdict is Verdict.BUSY


def test_quiet_household_seen_by_a_counter_is_quiet() -> None:
    test_bytes = megabits(92.0, PHASE_SECONDS)
    trickle = 0.4e6 / 8  # a phone syncing

    reading = router_other_traffic(
        counter_samples("B", trickle, test_bytes=frames(test_bytes)),
        direction=Direction.DOWNLOAD,
        start=START,
        end=START + TEST_SPAN,
        test_bytes=test_bytes,
        share_of_mbps=SHARE * 92.0,
    )

    judgement = judge_busy([reading], download_mbps=92.0, upload_mbps=18.0, share=SHARE)
    assert judgement.verdict is Verdict.QUIET
    assert isinstance(reading, OtherTraffic)
    assert reading.rate_mbps < 1.0


@pytest.mark.parametrize(
    ("unit", "scale"), [("KiB/s", 8 * 1024), ("kB/s", 8000), ("Mbit/s", 1e6)]
)
def test_rate_sensor_updating_every_30_s_sees_the_household(
    unit: str, scale: float
) -> None:
    test_bytes = megabits(55.0, PHASE_SECONDS)

    reading = router_other_traffic(
        rate_samples(unit, 25e6, test_bytes=frames(test_bytes), scale=scale),
        direction=Direction.DOWNLOAD,
        start=START,
        end=START + TEST_SPAN,
        test_bytes=test_bytes,
        share_of_mbps=SHARE * 55.0,
    )

    assert isinstance(reading, OtherTraffic)
    assert reading.rate_mbps == pytest.approx(25.0, abs=0.5)


def test_rate_sensor_on_a_quiet_line_is_quiet() -> None:
    test_bytes = megabits(92.0, PHASE_SECONDS)

    reading = router_other_traffic(
        rate_samples("KiB/s", 0.0, test_bytes=frames(test_bytes), scale=8 * 1024),
        direction=Direction.DOWNLOAD,
        start=START,
        end=START + TEST_SPAN,
        test_bytes=test_bytes,
        share_of_mbps=SHARE * 92.0,
    )

    assert isinstance(reading, OtherTraffic)
    assert reading.bytes == 0


def test_router_counter_reset_is_unknown_not_busy() -> None:
    test_bytes = megabits(60.0, PHASE_SECONDS)
    samples = counter_samples("B", 1e6, test_bytes=frames(test_bytes))
    # The router rebooted during the test: its counter starts again from zero.
    samples[1] = RouterSample(at=samples[1].at, kind=SensorKind.COUNTER, value=2e6)

    reading = router_other_traffic(
        samples,
        direction=Direction.DOWNLOAD,
        start=START,
        end=START + TEST_SPAN,
        test_bytes=test_bytes,
        share_of_mbps=SHARE * 60.0,
    )

    assert reading == UnknownTraffic(
        source=TrafficSource.ROUTER,
        direction=Direction.DOWNLOAD,
        reason=UnknownReason.COUNTER_WENT_BACK,
    )
    host = host_download(60.0, 0.0)
    judgement = judge_busy(
        [host, reading], download_mbps=60.0, upload_mbps=18.0, share=SHARE
    )
    assert judgement.verdict is Verdict.UNKNOWN


def test_unavailable_router_sensor_is_unknown_not_busy() -> None:
    test_bytes = megabits(60.0, PHASE_SECONDS)
    samples = rate_samples("Mbit/s", 40e6, test_bytes=frames(test_bytes), scale=1e6)
    samples[2] = router_sample(samples[2].at, "unavailable", "Mbit/s")

    reading = router_other_traffic(
        samples,
        direction=Direction.DOWNLOAD,
        start=START,
        end=START + TEST_SPAN,
        test_bytes=test_bytes,
        share_of_mbps=SHARE * 60.0,
    )

    assert isinstance(reading, UnknownTraffic)
    assert reading.reason is UnknownReason.UNAVAILABLE


@pytest.mark.parametrize(
    ("keep", "reason"),
    [
        (slice(1, None), UnknownReason.TOO_FEW_SAMPLES),  # nothing before the start
        (slice(0, 2), UnknownReason.TOO_FEW_SAMPLES),  # nothing after the end
        (slice(0, 0), UnknownReason.TOO_FEW_SAMPLES),
    ],
)
def test_router_samples_that_miss_the_test_are_unknown(
    keep: slice, reason: UnknownReason
) -> None:
    samples = counter_samples("B", 1e6, test_bytes=0)[keep]

    reading = router_other_traffic(
        samples,
        direction=Direction.UPLOAD,
        start=START,
        end=START + TEST_SPAN,
        test_bytes=0,
        share_of_mbps=1.0,
    )

    assert isinstance(reading, UnknownTraffic)
    assert reading.reason is reason


def test_router_sensor_updating_too_rarely_is_unknown() -> None:
    samples = counter_samples(
        "B",
        5e6,
        test_bytes=0,
        every=timedelta(minutes=10),
        offset=timedelta(minutes=-5),
    )

    reading = router_other_traffic(
        samples,
        direction=Direction.DOWNLOAD,
        start=START,
        end=START + TEST_SPAN,
        test_bytes=0,
        share_of_mbps=1.0,
    )

    assert isinstance(reading, UnknownTraffic)
    assert reading.reason is UnknownReason.TOO_FEW_SAMPLES


def test_counter_in_tenths_of_a_gigabyte_is_too_coarse_to_judge() -> None:
    """A counter shown as "123.4 GB" cannot see 10% of 50 Mbit/s over a minute."""
    samples = counter_samples("GB", 20e6 / 8, test_bytes=0, scale=1e9, decimals=1)

    reading = router_other_traffic(
        samples,
        direction=Direction.DOWNLOAD,
        start=START,
        end=START + TEST_SPAN,
        test_bytes=megabits(50.0, PHASE_SECONDS),
        share_of_mbps=SHARE * 50.0,
    )

    assert isinstance(reading, UnknownTraffic)
    assert reading.reason is UnknownReason.TOO_COARSE


def test_sensor_that_changes_kind_is_unknown() -> None:
    samples = [
        router_sample(START - timedelta(seconds=10), "100", "B"),
        router_sample(START + TEST_SPAN + timedelta(seconds=5), "4", "Mbit/s"),
    ]

    reading = router_other_traffic(
        samples,
        direction=Direction.DOWNLOAD,
        start=START,
        end=START + TEST_SPAN,
        test_bytes=0,
        share_of_mbps=1.0,
    )

    assert isinstance(reading, UnknownTraffic)
    assert reading.reason is UnknownReason.MIXED_KINDS


def test_household_traffic_now_from_a_rate_or_a_counter() -> None:
    now = START
    rate = [
        router_sample(now - timedelta(seconds=50), "2", "Mbit/s"),
        router_sample(now - timedelta(seconds=20), "35", "Mbit/s"),
    ]
    counter = [
        router_sample(now - timedelta(seconds=50), "1000000000", "B"),
        router_sample(now - timedelta(seconds=20), "1150000000", "B"),
    ]

    from_rate = router_traffic_now(
        rate, direction=Direction.DOWNLOAD, now=now, share_of_mbps=9.0
    )
    from_counter = router_traffic_now(
        counter, direction=Direction.DOWNLOAD, now=now, share_of_mbps=9.0
    )

    assert isinstance(from_rate, OtherTraffic)
    assert from_rate.rate_mbps == pytest.approx(35.0)
    assert isinstance(from_counter, OtherTraffic)
    assert from_counter.rate_mbps == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("samples", "reason"),
    [
        ([], UnknownReason.TOO_FEW_SAMPLES),
        ([(-600, "35", "Mbit/s")], UnknownReason.TOO_FEW_SAMPLES),
        ([(-20, "unavailable", "Mbit/s")], UnknownReason.UNAVAILABLE),
        ([(-20, "1000", "B")], UnknownReason.TOO_FEW_SAMPLES),
        ([(-50, "1000", "B"), (-20, "10", "B")], UnknownReason.COUNTER_WENT_BACK),
    ],
)
def test_household_traffic_now_in_doubt_is_unknown(
    samples: list[tuple[int, str, str]], reason: UnknownReason
) -> None:
    reading = router_traffic_now(
        [
            router_sample(START + timedelta(seconds=ago), state, unit)
            for ago, state, unit in samples
        ],
        direction=Direction.UPLOAD,
        now=START,
        share_of_mbps=2.0,
    )

    assert isinstance(reading, UnknownTraffic)
    assert reading.reason is reason


# --- The verdict -------------------------------------------------------------------


def _other(source: TrafficSource, direction: Direction, mbps: float) -> OtherTraffic:
    return OtherTraffic(
        source=source,
        direction=direction,
        bytes=megabits(mbps, 60.0),
        seconds=60.0,
    )


def _unknown(source: TrafficSource, direction: Direction) -> UnknownTraffic:
    return UnknownTraffic(
        source=source, direction=direction, reason=UnknownReason.UNAVAILABLE
    )


HOST, ROUTER = TrafficSource.HOST, TrafficSource.ROUTER
DOWN, UP = Direction.DOWNLOAD, Direction.UPLOAD


@pytest.mark.parametrize(
    ("readings", "verdict"),
    [
        # Upload alone is enough: 3 Mbit/s beside an 18 Mbit/s upload.
        ([_other(HOST, DOWN, 1), _other(ROUTER, UP, 3)], Verdict.BUSY),
        # A sure busy figure stands even when another source is unknown.
        ([_other(HOST, DOWN, 20), _unknown(ROUTER, DOWN)], Verdict.BUSY),
        # The household could not be seen: a quiet host does not make a quiet test.
        ([_other(HOST, DOWN, 0), _unknown(ROUTER, DOWN)], Verdict.UNKNOWN),
        ([], Verdict.UNKNOWN),
        (
            [
                _other(HOST, DOWN, 0.2),
                _other(HOST, UP, 0.1),
                _other(ROUTER, DOWN, 8.9),
                _other(ROUTER, UP, 1.7),
            ],
            Verdict.QUIET,
        ),
    ],
)
def test_verdict_from_every_source(
    readings: list[TrafficReading], verdict: Verdict
) -> None:
    judgement = judge_busy(readings, download_mbps=90.0, upload_mbps=18.0, share=SHARE)

    assert judgement.verdict is verdict
    assert judgement.readings == tuple(readings)


def test_line_delivered_the_test_plus_the_busiest_other_traffic() -> None:
    judgement = judge_busy(
        [_other(HOST, DOWN, 12.0), _other(ROUTER, DOWN, 30.0), _unknown(ROUTER, UP)],
        download_mbps=25.0,
        upload_mbps=9.0,
        share=SHARE,
    )

    # The router's 30 Mbit/s holds the host's 12: they are not added up.
    assert delivered_mbps(judgement, DOWN, 25.0) == pytest.approx(55.0)
    assert delivered_mbps(judgement, UP, 9.0) == 9.0


def test_judgement_survives_the_history_store() -> None:
    judgement = judge_busy(
        [
            host_download(92.0, 30.0),
            _unknown(ROUTER, DOWN),
            _other(ROUTER, UP, 2.5),
        ],
        download_mbps=92.0,
        upload_mbps=18.0,
        share=0.15,
    )

    stored = json.loads(json.dumps(judgement.as_dict()))

    assert BusyJudgement.from_dict(stored) == judgement
    assert stored["verdict"] == "busy"
    assert stored["readings"][1] == {
        "type": "unknown",
        "source": "router",
        "direction": "download",
        "reason": "unavailable",
    }


_STORED_OTHER = {
    "type": "other",
    "source": "host",
    "direction": "upload",
    "bytes": 1,
    "seconds": 1,
}


@pytest.mark.parametrize(
    "data",
    [
        {key: value for key, value in _STORED_OTHER.items() if key != "type"},
        _STORED_OTHER | {"type": "rumour"},
        _STORED_OTHER | {"source": "modem"},
        _STORED_OTHER | {"direction": "sideways"},
        _STORED_OTHER | {"seconds": 0},
        _STORED_OTHER | {"bytes": True},
        {"type": "unknown", "source": "host", "direction": "upload", "reason": "x"},
        {"type": "other", "source": "host", "direction": "upload"},
    ],
)
def test_stored_reading_that_is_not_one_is_refused(data: dict[str, object]) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        reading_from_dict(data)


def test_a_stored_reading_reads_back() -> None:
    reading = _other(ROUTER, UP, 2.5)

    assert reading_from_dict(json.loads(json.dumps(reading.as_dict()))) == reading


# --- Before a scheduled test -------------------------------------------------------

POLICY = DeferralPolicy(max_deferrals=3, delay=timedelta(minutes=10))
BUSY_NOW = [_other(ROUTER, DOWN, 40.0), _other(HOST, DOWN, 0.0)]


def test_busy_line_defers_a_scheduled_test_then_runs_it_anyway() -> None:
    used = 0
    actions = []
    while True:
        decision = pre_test_decision(
            BUSY_NOW,
            last_download_mbps=90.0,
            last_upload_mbps=18.0,
            share=SHARE,
            policy=POLICY,
            deferrals_used=used,
            pressed=False,
        )
        actions.append(decision.action)
        if decision.action is PreTestAction.RUN:
            break
        assert decision.delay == timedelta(minutes=10)
        used = decision.deferrals_used

    assert actions == [PreTestAction.DEFER] * 3 + [PreTestAction.RUN]
    # It runs anyway and records what it saw.
    assert decision.seen.verdict is Verdict.BUSY
    assert decision.seen.busiest(Direction.DOWNLOAD) == BUSY_NOW[0]
    assert decision.delay is None


def test_pressed_test_is_never_deferred() -> None:
    decision = pre_test_decision(
        BUSY_NOW,
        last_download_mbps=90.0,
        last_upload_mbps=18.0,
        share=SHARE,
        policy=POLICY,
        deferrals_used=0,
        pressed=True,
    )

    assert decision.action is PreTestAction.RUN
    assert decision.deferrals_used == 0
    assert decision.seen.verdict is Verdict.BUSY


@pytest.mark.parametrize(
    ("readings", "last_download"),
    [
        ([_other(ROUTER, DOWN, 2.0), _other(ROUTER, UP, 0.5)], 90.0),  # quiet
        ([_unknown(ROUTER, DOWN)], 90.0),  # a sensor down must not stop the tests
        (BUSY_NOW, None),  # no measurement yet to compare with
    ],
)
def test_quiet_or_unknown_line_runs_at_once(
    readings: list[TrafficReading], last_download: float | None
) -> None:
    decision = pre_test_decision(
        readings,
        last_download_mbps=last_download,
        last_upload_mbps=18.0,
        share=SHARE,
        policy=POLICY,
        deferrals_used=0,
        pressed=False,
    )

    assert decision.action is PreTestAction.RUN
    assert decision.seen.verdict is not Verdict.BUSY
    assert decision.seen.readings == tuple(readings)


def test_no_deferral_allowed_runs_a_busy_line_at_once() -> None:
    decision = pre_test_decision(
        BUSY_NOW,
        last_download_mbps=90.0,
        last_upload_mbps=18.0,
        share=SHARE,
        policy=DeferralPolicy(max_deferrals=0, delay=timedelta(minutes=5)),
        deferrals_used=0,
        pressed=False,
    )

    assert decision.action is PreTestAction.RUN


@pytest.mark.parametrize(
    ("bound", "delay"), [(-1, timedelta(minutes=5)), (2, timedelta(0))]
)
def test_deferral_policy_that_cannot_work_is_refused(
    bound: int, delay: timedelta
) -> None:
    with pytest.raises(ValueError, match="deferral"):
        DeferralPolicy(max_deferrals=bound, delay=delay)
