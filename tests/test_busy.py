"""The line's other traffic: busy tests, router sensors, deferral, the WAN share.

The host's other traffic is real: a second transfer over loopback, the interface the
fake speedtest.net is reached over, runs beside the test. The router is driven the way
its integration would report: byte counters that grow with the household's traffic and
with what the fake line carried.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
from dataclasses import replace
from datetime import timedelta
import socket
import threading
import time
from typing import Any, Self

import pytest

from custom_components.isp_watch.const import (
    BUSY_DEFERRAL_DELAY,
    EVIDENCE_MAX_AGE,
    RESTORE_MARGIN,
)
from custom_components.isp_watch.coordinator import compliance_sample
from custom_components.isp_watch.evaluation import (
    EvaluationSettings,
    Thresholds,
    evaluate,
)
from custom_components.isp_watch.models import Measurement, Verdict
from custom_components.isp_watch.traffic import (
    TrafficSource,
    UnknownReason,
    UnknownTraffic,
    host_traffic,
)
from fakes.speedtest import FakeSpeedtest
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from tests.common import (
    DOWNLOAD,
    LAST_RESULT,
    SLOW,
    make_entry,
    setup_entry,
    store_history,
    stored_measurement,
)

ROUTER_DOWNLOAD = "sensor.router_wan_received"
ROUTER_UPLOAD = "sensor.router_wan_sent"
TEST_SHARE_OF_WAN = "sensor.example_isp_tests_share_of_wan_traffic"
# The other transfer: 2 MiB/s, 16.8 Mbit/s, far above 10% of the fake's 20 Mbit/s.
PARALLEL_BYTES_PER_SECOND = 2 * 2**20
PARALLEL_PIECE = 64 * 1024
# A line below the minimum download (30 Mbit/s), judged on each test alone: a test
# that counts makes the line slow at once.
SLOW_LINE = {"evaluation_window": 1}
ROUTER_OPTIONS = {
    "wan_download_sensor": ROUTER_DOWNLOAD,
    "wan_upload_sensor": ROUTER_UPLOAD,
}


class ParallelTransfer:
    """A paced TCP transfer over loopback, as a backup or a download on the host."""

    def __init__(self, bytes_per_second: float) -> None:
        """Not started yet."""
        self.bytes_per_second = bytes_per_second
        self.sent = 0
        self.seconds = 0.0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Self:
        """Listen, connect, and push until the block ends."""
        server = socket.create_server(("127.0.0.1", 0))
        sender = socket.create_connection(server.getsockname())
        receiver, _ = server.accept()
        server.close()
        self._threads = [
            threading.Thread(target=self._push, args=(sender,), daemon=True),
            threading.Thread(target=self._drain, args=(receiver,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop pushing."""
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    @property
    def mbps(self) -> float:
        """The rate the transfer kept."""
        return self.sent * 8 / self.seconds / 1e6

    def _push(self, sock: socket.socket) -> None:
        piece = b"x" * PARALLEL_PIECE
        start = time.monotonic()
        with sock:
            while not self._stop.is_set():
                due = start + self.sent / self.bytes_per_second
                if (wait := due - time.monotonic()) > 0:
                    self._stop.wait(wait)
                    continue
                sock.sendall(piece)
                self.sent += len(piece)
                self.seconds = time.monotonic() - start

    def _drain(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        with sock:
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    if not sock.recv(1 << 20):
                        return


class Router:
    """A router's WAN byte counters as its integration reports them, every 0.2 s.

    Each counts the household's traffic (`household_bytes_per_second`) and what the
    fake line carried that way. `reset_during_test` restarts the download counter
    from zero once the test downloads, as a router reboot does; `unavailable_during_
    test` reports the download sensor unavailable once then.
    """

    def __init__(self, hass: HomeAssistant, line: FakeSpeedtest) -> None:
        """Counters at arbitrary values; nothing reported yet."""
        self.hass = hass
        self.line = line
        self.household_bytes_per_second = 0.0
        self.reset_during_test = False
        self.unavailable_during_test = False
        self._household = 0.0
        self._base = 3_000_000_000
        self._offset = 0
        self._reset_done = False
        self._unavailable_done = False

    def report(self, seconds: float) -> None:
        """Report both counters after `seconds` more of household traffic."""
        self._household += self.household_bytes_per_second * seconds
        testing = self.line.bytes_served > 0
        if testing and self.reset_during_test and not self._reset_done:
            self._reset_done = True
            self._offset = self._base + round(self._household) + self.line.bytes_served
        received = (
            self._base + round(self._household) + self.line.bytes_served - self._offset
        )
        state = str(received)
        if testing and self.unavailable_during_test and not self._unavailable_done:
            self._unavailable_done = True
            state = "unavailable"
        attributes = {"device_class": "data_size", "unit_of_measurement": "B"}
        self.hass.states.async_set(ROUTER_DOWNLOAD, state, attributes)
        self.hass.states.async_set(
            ROUTER_UPLOAD,
            str(self._base + round(self._household / 40) + self.line.bytes_received),
            attributes,
        )

    @contextlib.asynccontextmanager
    async def reporting(self) -> AsyncIterator[Router]:
        """Report every 0.2 s while the block runs."""
        self.report(0)

        async def run() -> None:
            while True:
                await asyncio.sleep(0.2)
                self.report(0.2)

        task = self.hass.async_create_background_task(run(), "router")
        try:
            yield self
        finally:
            task.cancel()


@pytest.fixture
def line(speedtest_route: FakeSpeedtest) -> FakeSpeedtest:
    """A fake line slower than the minimum download, with short directions."""
    speedtest_route.test_length = 1
    speedtest_route.set_rates(download_mbps=20, upload_mbps=20)
    return speedtest_route


async def _press(hass: HomeAssistant) -> None:
    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": "button.example_isp_run_speed_test"},
        blocking=True,
    )


def _last(hass: HomeAssistant) -> Measurement:
    entry = hass.config_entries.async_entries("isp_watch")[0]
    outcome = entry.runtime_data.coordinator.history[-1]
    assert isinstance(outcome, Measurement)
    return outcome


async def test_parallel_transfer_makes_the_test_busy(
    hass: HomeAssistant, line: FakeSpeedtest
) -> None:
    """A transfer on the test's interface: busy, its size kept, the line not slow."""
    await setup_entry(hass, make_entry(polling=False, options=SLOW_LINE))

    with ParallelTransfer(PARALLEL_BYTES_PER_SECOND) as transfer:
        await _press(hass)

    result = hass.states.get(LAST_RESULT)
    assert result.state == "busy"
    assert result.attributes["traffic_verdict"] == "busy"
    measurement = _last(hass)
    assert measurement.verdict is Verdict.BUSY
    # On loopback both ends of the transfer are the host's: it shows each way. The
    # test's own bytes are taken off with the frames' 5% allowance.
    for other in (measurement.other_download_mbps, measurement.other_upload_mbps):
        assert other is not None
        assert 0.6 * transfer.mbps < other < 1.4 * transfer.mbps
    assert measurement.other_download_bytes is not None
    assert measurement.other_download_bytes > 1_000_000
    assert hass.states.get(DOWNLOAD).attributes["busy"] is True
    # 20 Mbit/s is below the 30 Mbit/s minimum, but a busy test judges nothing.
    assert hass.states.get(SLOW).state == "off"


async def test_quiet_line_is_not_busy(hass: HomeAssistant, line: FakeSpeedtest) -> None:
    """Without other traffic the test counts: the slow line is judged slow."""
    await setup_entry(hass, make_entry(polling=False, options=SLOW_LINE))

    await _press(hass)

    assert hass.states.get(LAST_RESULT).state == "success"
    measurement = _last(hass)
    assert measurement.verdict is Verdict.QUIET
    assert measurement.other_download_mbps is not None
    assert measurement.other_download_mbps < 0.1 * measurement.download_mbps
    assert hass.states.get(SLOW).state == "on"


@pytest.mark.parametrize(
    ("household", "fault", "verdict"),
    [
        (0.0, None, Verdict.QUIET),
        (PARALLEL_BYTES_PER_SECOND, None, Verdict.BUSY),
        (PARALLEL_BYTES_PER_SECOND, "reset", Verdict.UNKNOWN),
        (PARALLEL_BYTES_PER_SECOND, "unavailable", Verdict.UNKNOWN),
    ],
)
async def test_router_counters_judge_the_household(
    hass: HomeAssistant,
    line: FakeSpeedtest,
    household: float,
    fault: str | None,
    verdict: Verdict,
) -> None:
    """The household seen by the router; a reset or a gap leaves the test unknown."""
    router = Router(hass, line)
    router.household_bytes_per_second = household
    router.reset_during_test = fault == "reset"
    router.unavailable_during_test = fault == "unavailable"
    async with router.reporting():
        await setup_entry(
            hass, make_entry(polling=False, options=SLOW_LINE | ROUTER_OPTIONS)
        )
        await _press(hass)

    measurement = _last(hass)
    assert measurement.verdict is verdict
    # Only a busy test is left out; an unknown one counts, so the line is slow.
    assert hass.states.get(SLOW).state == ("off" if verdict is Verdict.BUSY else "on")
    if verdict is Verdict.BUSY:
        assert measurement.other_download_mbps is not None
        household_mbps = household * 8 / 1e6
        assert 0.6 * household_mbps < measurement.other_download_mbps
        assert measurement.other_download_mbps < 1.4 * household_mbps


@pytest.fixture
def history() -> list[dict[str, Any]]:
    """A test an hour ago measured 80 Mbit/s: the rate a busy line is judged by."""
    finished = dt_util.utcnow() - timedelta(hours=1)
    return [stored_measurement(finished.isoformat(), download_mbps=80.0)]


async def test_scheduled_test_waits_for_a_busy_line_then_runs(
    hass: HomeAssistant,
    line: FakeSpeedtest,
    hass_storage: dict[str, Any],
    history: list[dict[str, Any]],
) -> None:
    """Busy before it starts: it waits, up to the bound, then runs and says so."""
    entry = make_entry(options=ROUTER_OPTIONS | {"max_deferrals": 1})
    store_history(hass_storage, entry.entry_id, history)
    router = Router(hass, line)
    router.household_bytes_per_second = PARALLEL_BYTES_PER_SECOND
    async with router.reporting():
        await setup_entry(hass, entry)
        coordinator = entry.runtime_data.coordinator
        await asyncio.sleep(0.5)  # two reports: a counter's rate needs both

        await coordinator.async_refresh()
        assert len(coordinator.history) == 1
        assert coordinator.update_interval == BUSY_DEFERRAL_DELAY

        await coordinator.async_refresh()

    assert len(coordinator.history) == 2
    measurement = _last(hass)
    assert measurement.deferrals == 1
    assert measurement.verdict is Verdict.BUSY
    assert hass.states.get(LAST_RESULT).attributes["deferrals"] == 1
    assert coordinator.update_interval != BUSY_DEFERRAL_DELAY


async def test_pressed_test_never_waits(
    hass: HomeAssistant,
    line: FakeSpeedtest,
    hass_storage: dict[str, Any],
    history: list[dict[str, Any]],
) -> None:
    """The user asked for a test now: a busy line does not hold it back."""
    entry = make_entry(options=ROUTER_OPTIONS | {"max_deferrals": 6})
    store_history(hass_storage, entry.entry_id, history)
    router = Router(hass, line)
    router.household_bytes_per_second = PARALLEL_BYTES_PER_SECOND
    async with router.reporting():
        await setup_entry(hass, entry)
        await asyncio.sleep(0.5)
        await _press(hass)

    coordinator = entry.runtime_data.coordinator
    assert len(coordinator.history) == 2
    assert _last(hass).deferrals == 0
    assert hass.states.get(LAST_RESULT).state == "busy"


async def test_share_of_wan_traffic_the_tests_caused(
    hass: HomeAssistant, line: FakeSpeedtest
) -> None:
    """With router counters, the month's WAN bytes and the tests' part of them."""
    router = Router(hass, line)
    router.household_bytes_per_second = PARALLEL_BYTES_PER_SECOND
    async with router.reporting():
        await setup_entry(hass, make_entry(polling=False, options=ROUTER_OPTIONS))
        await _press(hass)

    share = hass.states.get(TEST_SHARE_OF_WAN)
    test_bytes = share.attributes["test_bytes"]
    wan_bytes = share.attributes["wan_bytes"]
    measurement = _last(hass)
    assert test_bytes == measurement.bytes_received + measurement.bytes_sent
    # The router counted the household and the test (as the fake line served it).
    assert wan_bytes > test_bytes
    assert float(share.state) == pytest.approx(test_bytes / wan_bytes * 100, abs=0.01)


def _measurement(download_mbps: float, *, verdict: Verdict | None) -> Measurement:
    finished = dt_util.utcnow()
    stored = stored_measurement(finished.isoformat(), download_mbps=download_mbps)
    return replace(Measurement.from_dict(stored), verdict=verdict)


@pytest.mark.parametrize(
    ("verdict", "slow"),
    [(Verdict.BUSY, False), (Verdict.QUIET, True), (Verdict.UNKNOWN, True)],
)
def test_busy_tests_are_left_out_of_the_judgement(verdict: Verdict, slow: bool) -> None:
    """Three slow results: slow, unless the household was using the line."""
    history = [_measurement(5.0, verdict=verdict) for _ in range(3)]
    thresholds = Thresholds(min_download_mbps=50, min_upload_mbps=1, max_ping_ms=100)
    settings = EvaluationSettings(
        window=3, max_age=EVIDENCE_MAX_AGE, hysteresis=RESTORE_MARGIN
    )
    state = evaluate(history, thresholds, settings, dt_util.utcnow())
    assert state.slow is slow
    sample = compliance_sample(history[0])
    assert sample is not None
    # Compliance leaves out exactly what the judgement leaves out.
    assert sample.counted is slow


def test_old_records_load_without_a_verdict() -> None:
    """Tests stored before busy detection read back as not judged."""
    stored = stored_measurement(dt_util.utcnow().isoformat(), download_mbps=80.0)
    measurement = Measurement.from_dict(stored)
    assert measurement.verdict is None
    assert measurement.other_download_bytes is None
    assert measurement.other_upload_mbps is None
    assert measurement.deferrals == 0
    assert not measurement.busy
    again = Measurement.from_dict(
        replace(measurement, verdict=Verdict.BUSY, other_download_bytes=5).as_dict()
    )
    assert again.verdict is Verdict.BUSY
    assert again.other_download_bytes == 5


@pytest.mark.parametrize(
    "interface_use",
    [
        None,
        "text",
        {"peer": "127.0.0.1"},
        {"peer": "127.0.0.1", "download": {"before": "", "after": 1}},
        {
            "peer": "not an address",
            "download": {"before": "", "after": "", "seconds": 1, "test_bytes": 0},
        },
        {
            "peer": "127.0.0.1",
            "download": {
                "before": "",
                "after": "",
                "seconds": True,
                "test_bytes": -1,
            },
        },
    ],
)
def test_odd_runner_answers_leave_the_host_unknown(interface_use: Any) -> None:
    """Whatever the answer holds, each direction is a reading, never an error."""
    readings = host_traffic(interface_use)
    assert len(readings) == 2
    for reading in readings:
        assert isinstance(reading, UnknownTraffic)
        assert reading.source is TrafficSource.HOST
        assert reading.reason is UnknownReason.NO_INTERFACE


@pytest.mark.parametrize(
    ("stored_wan", "share"),
    [
        ({"bytes": {"download": 50_000_000}}, "20.0"),
        ({"bytes": {"download": "lots"}}, "unknown"),
        ({"bytes": None}, "unknown"),
    ],
)
async def test_wan_bytes_survive_a_restart(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    stored_wan: dict[str, Any],
    share: str,
) -> None:
    """The month's WAN bytes are stored with the tests; a damaged record restarts."""
    entry = make_entry(polling=False, options=ROUTER_OPTIONS)
    now = dt_util.utcnow()
    # 10 MB received by a test this month, after the router's count began.
    store_history(
        hass_storage,
        entry.entry_id,
        [stored_measurement(now.isoformat(), download_mbps=80.0)],
    )
    since = (now - timedelta(seconds=30)).isoformat()
    hass_storage[f"isp_watch.{entry.entry_id}.history"]["data"]["wan"] = {
        "since": since
    } | stored_wan

    await setup_entry(hass, entry)

    state = hass.states.get(TEST_SHARE_OF_WAN)
    assert state.state == share
    if share != "unknown":
        assert state.attributes["wan_bytes"] == 50_000_000
        assert state.attributes["test_bytes"] == 10_000_000


async def test_removed_router_sensor_leaves_a_gap(hass: HomeAssistant) -> None:
    """A sensor that disappears is unavailable from then on, not its last value."""
    hass.states.async_set(
        ROUTER_DOWNLOAD,
        "1000",
        {"device_class": "data_size", "unit_of_measurement": "B"},
    )
    entry = make_entry(polling=False, options=ROUTER_OPTIONS)
    await setup_entry(hass, entry)

    hass.states.async_remove(ROUTER_DOWNLOAD)
    await hass.async_block_till_done()

    samples = entry.runtime_data.coordinator.traffic_diagnostics()["router_samples"]
    assert [sample["value"] for sample in samples["download"]] == [1000.0, None]
    assert samples["upload"] == []


async def test_host_traffic_defers_a_scheduled_test(
    hass: HomeAssistant, line: FakeSpeedtest
) -> None:
    """A transfer on the host before a scheduled test: it waits; once quiet, it runs."""
    entry = make_entry()
    await setup_entry(hass, entry)
    coordinator = entry.runtime_data.coordinator
    await _press(hass)
    assert _last(hass).verdict is Verdict.QUIET

    with ParallelTransfer(PARALLEL_BYTES_PER_SECOND):
        await coordinator.async_refresh()
    assert len(coordinator.history) == 1
    assert coordinator.update_interval == BUSY_DEFERRAL_DELAY

    await coordinator.async_refresh()
    assert len(coordinator.history) == 2
    assert _last(hass).deferrals == 1
    assert coordinator.update_interval != BUSY_DEFERRAL_DELAY
