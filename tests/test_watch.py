"""The connectivity watch between tests, through Home Assistant, on loopback.

The test servers are TCP listeners on 127.0.0.1: a line that drops is both of them
refusing, one server in maintenance is one of them refusing. Name lookups go through
the system resolver, which these tests answer for one name and can make fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
import shutil
import socket
import time
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.isp_watch.const import CONF_WATCH_INTERVAL
from fakes.speedtest import FakeSpeedtest
from fakes.x_api import FakeXApi
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from tests.common import (
    INTERNET,
    TWEET,
    make_entry,
    setup_entry,
    store_history as put_history,
    stored_measurement,
)
from tests.test_blueprints import BLUEPRINTS

INTERVAL = timedelta(minutes=1)
SERVER_NAME = "speedtest.example.net"


class Listener:
    """A test server's TCP port: the kernel completes the handshake from the backlog."""

    def __init__(self) -> None:
        """Listen on a free loopback port."""
        self.port = 0
        self._socket: socket.socket | None = None
        self.up()

    def up(self) -> None:
        """Answer connects (again, on the same port)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._socket = sock

    def down(self) -> None:
        """Refuse connects, as a dead server's host does."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def accepted(self) -> int:
        """Connects that reached the port since the last call."""
        count = 0
        if self._socket is None:
            return count
        self._socket.setblocking(False)
        while True:
            try:
                connection, _ = self._socket.accept()
            except BlockingIOError:
                return count
            connection.close()
            count += 1


@pytest.fixture
def servers(socket_enabled: None) -> Iterator[tuple[Listener, Listener]]:
    """The last good test server and a second one nearby."""
    pair = (Listener(), Listener())
    yield pair
    for listener in pair:
        listener.down()


class Resolver:
    """The system resolver as these tests see it: one name, which can stop working."""

    def __init__(self) -> None:
        """Answer for SERVER_NAME with the loopback address."""
        self.working = True
        self._real = socket.getaddrinfo

    def __call__(self, host: Any, *args: Any, **kwargs: Any) -> Any:
        """Look a name up, or fail as a dead resolver does."""
        if host == SERVER_NAME:
            if not self.working:
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure")
            host = "127.0.0.1"
        return self._real(host, *args, **kwargs)


@pytest.fixture
def resolver() -> Iterator[Resolver]:
    """Route name lookups through Resolver."""
    fake = Resolver()
    with patch("socket.getaddrinfo", fake):
        yield fake


def _history(first: str, second: str) -> list[dict[str, Any]]:
    measurement = stored_measurement(
        dt_util.utcnow().isoformat(), download_mbps=90.0
    ) | {"nearby_hosts": [second]}
    measurement["server"] = {**measurement["server"], "host": first}
    return [measurement]


async def _watched(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    first: str,
    second: str,
    **options: Any,
) -> None:
    entry = make_entry(options={CONF_WATCH_INTERVAL: 1, **options})
    put_history(hass_storage, entry.entry_id, _history(first, second))
    await setup_entry(hass, entry)


async def _rounds(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, count: int = 1
) -> None:
    for _ in range(count):
        freezer.tick(INTERVAL)
        async_fire_time_changed(hass)
        await hass.async_block_till_done()


def _until(condition: Callable[[], object]) -> None:
    # Counted, not timed: the frozen clock may stop the monotonic one too.
    for _ in range(600):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the speed test never started")


def _internet(hass: HomeAssistant) -> tuple[str, Callable[[str], Any]]:
    state = hass.states.get(INTERNET)
    assert state is not None
    return state.state, state.attributes.get


async def test_a_dropped_line_turns_internet_off_within_two_rounds_and_on_within_one(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    servers: tuple[Listener, Listener],
) -> None:
    """Off within two probe intervals of the drop, on at the first round after."""
    first, second = servers
    await _watched(
        hass, hass_storage, f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"
    )
    await _rounds(hass, freezer)
    state, attribute = _internet(hass)
    assert (state, attribute("status")) == (STATE_ON, "up")

    # The line drops half-way between two rounds.
    freezer.tick(INTERVAL / 2)
    dropped = dt_util.utcnow()
    first.down()
    second.down()
    await _rounds(hass, freezer)
    assert _internet(hass)[0] == STATE_ON  # one failed round is not yet an outage
    await _rounds(hass, freezer)
    state, attribute = _internet(hass)
    assert (state, attribute("status")) == (STATE_OFF, "down")
    assert dt_util.utcnow() - dropped <= 2 * INTERVAL
    outage_start = dt_util.parse_datetime(attribute("outage_start"))
    assert outage_start is not None
    # The first failed round, and up to one interval earlier: the drop is inside.
    assert outage_start - timedelta(seconds=attribute("outage_start_uncertainty")) <= (
        dropped
    )
    assert dropped <= outage_start

    await _rounds(hass, freezer, 3)
    first.up()
    second.up()
    restored = dt_util.utcnow()
    await _rounds(hass, freezer)
    state, attribute = _internet(hass)
    assert (state, attribute("status")) == (STATE_ON, "up")
    assert dt_util.utcnow() - restored <= INTERVAL
    end = dt_util.parse_datetime(attribute("last_outage_end"))
    assert end is not None
    assert end - timedelta(seconds=attribute("last_outage_end_uncertainty")) <= (
        restored
    )
    assert attribute("last_outage_duration") == round(
        (end - outage_start).total_seconds()
    )


async def test_one_server_down_while_another_answers_is_no_outage(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    servers: tuple[Listener, Listener],
) -> None:
    """A server in maintenance shows as a server problem; Internet stays on."""
    first, second = servers
    await _watched(
        hass, hass_storage, f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"
    )
    first.down()

    await _rounds(hass, freezer, 4)

    state, attribute = _internet(hass)
    assert (state, attribute("status"), attribute("server_problem")) == (
        STATE_ON,
        "up",
        True,
    )
    assert attribute("outage_start") is None
    assert second.accepted() > 0


async def test_dns_failing_alone_is_its_own_state(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    servers: tuple[Listener, Listener],
    resolver: Resolver,
) -> None:
    """Servers answer at their known addresses, names fail: not connected, not down."""
    first, second = servers
    await _watched(
        hass,
        hass_storage,
        f"{SERVER_NAME}:{first.port}",
        f"{SERVER_NAME}:{second.port}",
    )
    await _rounds(hass, freezer, 2)
    assert _internet(hass)[1]("status") == "up"

    resolver.working = False
    await _rounds(hass, freezer, 2)

    state, attribute = _internet(hass)
    assert (state, attribute("status")) == (STATE_OFF, "dns_failure")
    assert attribute("outage_start") is None
    assert first.accepted() + second.accepted() > 0

    resolver.working = True
    await _rounds(hass, freezer)
    assert _internet(hass)[1]("status") == "up"


async def test_a_running_test_pauses_the_watch_and_the_round_follows_it(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    servers: tuple[Listener, Listener],
    speedtest_route: FakeSpeedtest,
) -> None:
    """No round reaches a server while a test loads the line; one runs right after."""
    first, second = servers
    await _watched(
        hass, hass_storage, f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"
    )
    entry = hass.config_entries.async_entries("isp_watch")[0]
    coordinator = entry.runtime_data.coordinator
    speedtest_route.test_length = 3
    test = hass.async_create_task(coordinator.async_run_test_now())
    # Frozen time stops asyncio.sleep: wait in real time, off the event loop.
    await hass.async_add_executor_job(_until, lambda: speedtest_route.count("latency"))

    freezer.tick(INTERVAL)
    async_fire_time_changed(hass)
    await hass.async_add_executor_job(time.sleep, 0.5)
    assert not test.done()
    assert first.accepted() + second.accepted() == 0
    assert _internet(hass)[1]("status") is None  # no round has counted yet

    await test
    await hass.async_block_till_done()

    # The displaced round ran once the test ended, against the server it used.
    assert _internet(hass)[1]("status") == "up"


async def test_outage_post_gives_the_watchs_start_end_and_duration(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    servers: tuple[Listener, Listener],
    fake_x_api: FakeXApi,
    tmp_path: Path,
) -> None:
    """A 20-minute drop seen by the watch is posted with its edges and their margin."""
    first, second = servers
    hass.config.config_dir = str(tmp_path)
    shutil.copytree(BLUEPRINTS, tmp_path / "blueprints" / "automation" / "isp_watch")
    entry = make_entry(options={CONF_WATCH_INTERVAL: 1}, with_x_account=True)
    put_history(
        hass_storage,
        entry.entry_id,
        _history(f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"),
    )
    await setup_entry(hass, entry)
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "alias": "outage",
                "use_blueprint": {
                    "path": "isp_watch/tweet_when_outage_ends.yaml",
                    "input": {
                        "internet_sensor": INTERNET,
                        "tweet_entity": TWEET,
                        "minimum_minutes": 15,
                    },
                },
            }
        },
    )
    await _rounds(hass, freezer)
    first.down()
    second.down()
    await _rounds(hass, freezer, 20)
    first.up()
    second.up()
    await _rounds(hass, freezer)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert len(fake_x_api.posts) == 1
    assert fake_x_api.posts[0].startswith(
        "@ExampleISPHelp Automated connection monitor: my internet was down from "
    )
    assert (
        "(20 minutes, times within 1 min). It works again now." in (fake_x_api.posts[0])
    )


async def test_an_outage_across_a_restart_keeps_its_start(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    servers: tuple[Listener, Listener],
) -> None:
    """Internet stays off after a reload, and the outage still starts where it did."""
    first, second = servers
    await _watched(
        hass, hass_storage, f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"
    )
    await _rounds(hass, freezer)
    first.down()
    second.down()
    await _rounds(hass, freezer, 3)
    started = _internet(hass)[1]("outage_start")
    assert started is not None
    entry = hass.config_entries.async_entries("isp_watch")[0]

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await _rounds(hass, freezer)

    state, attribute = _internet(hass)
    assert (state, attribute("status"), attribute("outage_start")) == (
        STATE_OFF,
        "down",
        started,
    )
