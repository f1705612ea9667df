"""The demo of ``scripts/develop --demo``: Home Assistant on a simulated line.

Starts the demo line (``fakes/demo.py``: the fake speedtest.net, the fake X API and
their control page), then Home Assistant through ``fakes.home_assistant`` with the
speed tests and the X client routed to them. On the first start of a demo folder it
prepares, through Home Assistant's own HTTP and WebSocket APIs, what would otherwise
take a newcomer dozens of clicks: the onboarding (a user with a random password), an
ISP Watch entry with the demo's X keys, options that confirm a slow result after one
minute (the smallest confirmation delay the options offer), an automation from the
shipped slow-internet blueprint, a day of earlier test results in the long-term
statistics so the dashboard's graphs show a day, and a first speed test. Then it prints
the steps to follow.

    .venv/bin/python scripts/demo.py --config DIR [hass arguments]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
import json
import os
from pathlib import Path
import secrets
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from custom_components.isp_watch.config_flow import (  # noqa: E402
    JUDGING_KEYS,
    POSTING_KEYS,
    SECTION_LIMITS,
    SECTION_POSTING,
    SECTION_TESTING,
    SECTION_TRAFFIC,
    TESTING_KEYS,
    TRAFFIC_KEYS,
)
from custom_components.isp_watch.const import (  # noqa: E402
    CONF_CONFIRM_DELAY,
    CONF_TWEET_COOLDOWN,
    DOMAIN,
    NUMBER_RANGES,
    OPTION_DEFAULTS,
)
from fakes.demo import DEFAULT_CONTROL_PORT, DEMO_CREDENTIALS, DemoLine  # noqa: E402

ISP_NAME = "Example ISP"
ISP_HANDLE = "ExampleISPHelp"
USERNAME = "demo"
CONTRACT = {
    "contract_maximum_download": 100,
    "contract_normally_available_download": 80,
    "contract_minimum_download": 60,
    "contract_maximum_upload": 40,
    "contract_normally_available_upload": 32,
    "contract_minimum_upload": 16,
}
LIMITS = {"min_download": 50, "min_upload": 10, "max_ping": 100}
# Within the options' own ranges: a slow result is confirmed after a minute (the least
# the options allow), and posts need no pause between them.
DEMO_OPTIONS = {
    CONF_CONFIRM_DELAY: NUMBER_RANGES[CONF_CONFIRM_DELAY].minimum,
    CONF_TWEET_COOLDOWN: NUMBER_RANGES[CONF_TWEET_COOLDOWN].minimum,
}
SLOW_BLUEPRINT = "isp_watch/tweet_when_slow.yaml"
AUTOMATION_ID = "isp_watch_demo_slow"
AUTOMATION_ALIAS = "Tell the ISP when the internet stays slow"
# How long the line must stay slow before the automation posts: one minute, set in
# the blueprint's own input.
STAY_SLOW = {"hours": 0, "minutes": 1, "seconds": 0}
# The seeded day: hourly means of the demo line; from 19:00 to 22:00 the evening
# congestion of the "Slow in the evening" profile.
GOOD_HOUR = {
    "download": 91.0,
    "upload": 35.5,
    "ping": 12.0,
    "jitter": 1.5,
    "download_latency": 24.0,
    "upload_latency": 31.0,
}
EVENING_HOUR = {
    "download": 23.0,
    "upload": 7.5,
    "ping": 44.0,
    "jitter": 8.0,
    "download_latency": 118.0,
    "upload_latency": 164.0,
}
EVENING_HOURS = range(19, 23)
SEEDED = {
    "download": ("Mbit/s", "data_rate"),
    "upload": ("Mbit/s", "data_rate"),
    "ping": ("ms", "duration"),
    "jitter": ("ms", "duration"),
    "download_latency": ("ms", "duration"),
    "upload_latency": ("ms", "duration"),
}
STARTUP_DEADLINE = 180.0
STATE_FILE = "demo.json"


@dataclass(frozen=True, slots=True)
class DemoState:
    """What the demo prepared; kept in the demo folder for the next start and tests."""

    url: str
    control_url: str
    username: str
    password: str
    device_url: str = ""
    dashboard_url: str = ""


def main() -> None:
    """Start the line and Home Assistant, prepare the demo, and wait for Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    arguments, hass_arguments = parser.parse_known_args()
    config: Path = arguments.config.resolve()
    folder = config / ".demo"
    state_file = folder / STATE_FILE
    if (config / ".storage" / "onboarding").exists() and not state_file.exists():
        # A Home Assistant of its own: its entries and queued posts must never meet
        # the simulated line and X.
        raise SystemExit(f"{config} is not a demo folder: give the demo a new one")
    port = int(os.environ.get("SETUP_PORT", "8123"))
    line = DemoLine(folder, int(os.environ.get("DEMO_PORT", DEFAULT_CONTROL_PORT)))
    line.start()
    log = folder / "hass.out"
    signal.signal(signal.SIGTERM, _stop_on_signal)
    with log.open("ab") as output:
        hass = subprocess.Popen(  # noqa: S603 - the project's own module
            [
                sys.executable,
                "-m",
                "fakes.home_assistant",
                "--config",
                str(config),
                "--skip-pip",
                *hass_arguments,
            ],
            cwd=ROOT,
            env=line.environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        print(f"==> Home Assistant starts at {url} (its output: {log})")
        _wait_until_serving(url, hass)
        known = (
            DemoState(**json.loads(state_file.read_text()))
            if state_file.exists()
            else None
        )
        state = asyncio.run(_prepare(url, line.control_url, known))
        # The password is in it: readable by this user only, from the start.
        state_file.touch(mode=0o600)
        state_file.write_text(json.dumps(asdict(state), indent=2))
        _print_steps(state)
        hass.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if hass.poll() is None:
            hass.terminate()
            try:
                hass.wait(timeout=30)
            except subprocess.TimeoutExpired:
                hass.kill()
        line.stop()


def _stop_on_signal(_signal: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _wait_until_serving(url: str, hass: subprocess.Popen[bytes]) -> None:
    async def wait() -> None:
        deadline = time.monotonic() + STARTUP_DEADLINE
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if hass.poll() is not None:
                    raise SystemExit(f"Home Assistant exited with {hass.returncode}")
                try:
                    async with session.get(f"{url}/manifest.json") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)
        raise SystemExit(f"Home Assistant did not serve {url} in time")

    asyncio.run(wait())


class _HomeAssistant:
    """Home Assistant's HTTP and WebSocket APIs, as the demo's user."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session = session
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._next_id = 0

    async def post(self, path: str, data: Mapping[str, Any] | None = None) -> Any:
        async with self.session.post(
            f"{self.url}{path}", json=data or {}, headers=self.headers
        ) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise SystemExit(f"{path}: {response.status} {body}")
            return body

    async def get(self, path: str) -> Any:
        async with self.session.get(
            f"{self.url}{path}", headers=self.headers
        ) as response:
            response.raise_for_status()
            return await response.json()

    async def command(self, message: Mapping[str, Any]) -> Any:
        if self._socket is None:
            self._socket = await self.session.ws_connect(f"{self.url}/api/websocket")
            await self._socket.receive_json()
            token = self.headers["Authorization"].removeprefix("Bearer ")
            await self._socket.send_json({"type": "auth", "access_token": token})
            if (await self._socket.receive_json())["type"] != "auth_ok":
                raise SystemExit("Home Assistant refused the demo user's token")
        self._next_id += 1
        await self._socket.send_json({"id": self._next_id, **message})
        while True:
            answer = await self._socket.receive_json()
            if answer.get("id") == self._next_id and answer["type"] == "result":
                if not answer["success"]:
                    raise SystemExit(f"{message['type']}: {answer['error']}")
                return answer["result"]

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()


async def _prepare(url: str, control_url: str, known: DemoState | None) -> DemoState:
    """Onboard, add the entry, the automation and a day of statistics: once."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/api/onboarding") as response:
            # Once the onboarding is done, Home Assistant no longer serves its API.
            steps = await response.json() if response.status == 200 else []
        first_start = any(s["step"] == "user" and not s["done"] for s in steps)
        if first_start:
            state = DemoState(url, control_url, USERNAME, secrets.token_urlsafe(9))
            token = await _onboard(session, url, state)
        elif known is None:
            raise SystemExit("This demo folder was onboarded by hand: give a new one")
        else:
            state = DemoState(**(asdict(known) | {"control_url": control_url}))
            token = await _log_in(session, url, state)
        api = _HomeAssistant(session, url, token)
        try:
            entry_id = await _entry(api)
            if entry_id is None:
                entry_id = await _add_entry(api)
            entities = await _entities(api, entry_id)
            await _add_automation(api, entities)
            if first_start:
                await _seed_statistics(api, entities)
                # The first result is there when the newcomer arrives, instead of a
                # minute after the start.
                await api.post(
                    "/api/services/button/press", {"entity_id": entities["run_test"]}
                )
            devices = await api.command({"type": "config/device_registry/list"})
            device = next(d for d in devices if entry_id in d["config_entries"])
            state = DemoState(
                **(
                    asdict(state)
                    | {
                        "device_url": f"{url}/config/devices/device/{device['id']}",
                        "dashboard_url": f"{url}/isp-watch/0",
                    }
                )
            )
        finally:
            await api.close()
    return state


def _client(url: str) -> dict[str, str]:
    return {"client_id": f"{url}/", "redirect_uri": f"{url}/?auth_callback=1"}


async def _token(session: aiohttp.ClientSession, url: str, code: str) -> str:
    form = {"grant_type": "authorization_code", "code": code} | _client(url)
    async with session.post(f"{url}/auth/token", data=form) as response:
        response.raise_for_status()
        return str((await response.json())["access_token"])


async def _onboard(session: aiohttp.ClientSession, url: str, state: DemoState) -> str:
    """The onboarding's steps as the frontend sends them."""
    user = {
        "name": "Demo",
        "username": state.username,
        "password": state.password,
        "language": "en",
        "client_id": f"{url}/",
    }
    async with session.post(f"{url}/api/onboarding/users", json=user) as response:
        response.raise_for_status()
        token = await _token(session, url, (await response.json())["auth_code"])
    api = _HomeAssistant(session, url, token)
    try:
        # The fake speedtest.net places the line in the Netherlands.
        await api.command(
            {"type": "config/core/update", "country": "NL", "currency": "EUR"}
        )
    finally:
        await api.close()
    await api.post("/api/onboarding/core_config")
    await api.post("/api/onboarding/analytics")
    await api.post("/api/onboarding/integration", _client(url))
    return token


async def _log_in(session: aiohttp.ClientSession, url: str, state: DemoState) -> str:
    """The login form's flow, with the demo user's password."""
    start = {"handler": ["homeassistant", None]} | _client(url)
    async with session.post(f"{url}/auth/login_flow", json=start) as response:
        flow = await response.json()
    answer = {"username": state.username, "password": state.password} | {
        "client_id": f"{url}/"
    }
    async with session.post(
        f"{url}/auth/login_flow/{flow['flow_id']}", json=answer
    ) as response:
        result = await response.json()
    if result.get("type") != "create_entry":
        raise SystemExit(f"The demo user could not log in: {result}")
    return await _token(session, url, result["result"])


async def _entry(api: _HomeAssistant) -> str | None:
    entries = await api.get(f"/api/config/config_entries/entry?domain={DOMAIN}")
    return str(entries[0]["entry_id"]) if entries else None


async def _add_entry(api: _HomeAssistant) -> str:
    """The config flow, then the options flow, as the dialogs would send them."""
    flow = await api.post("/api/config/config_entries/flow", {"handler": DOMAIN})
    step = f"/api/config/config_entries/flow/{flow['flow_id']}"
    user = {"isp_name": ISP_NAME, "isp_handle": ISP_HANDLE} | CONTRACT | LIMITS
    await api.post(step, user)
    await api.post(step, {"next_step_id": "x_account"})
    keys = {
        "api_key": DEMO_CREDENTIALS.api_key,
        "api_secret": DEMO_CREDENTIALS.api_secret,
        "access_token": DEMO_CREDENTIALS.access_token,
        "access_token_secret": DEMO_CREDENTIALS.access_token_secret,
    }
    created = await api.post(step, keys)
    if created.get("type") != "create_entry":
        raise SystemExit(f"ISP Watch was not added: {created}")
    entry_id = str(created["result"]["entry_id"])
    flow = await api.post(
        "/api/config/config_entries/options/flow", {"handler": entry_id}
    )
    step = f"/api/config/config_entries/options/flow/{flow['flow_id']}"
    await api.post(step, {"next_step_id": "settings"})
    options = dict(OPTION_DEFAULTS) | LIMITS | DEMO_OPTIONS
    saved = await api.post(
        step,
        {
            SECTION_TESTING: {key: options[key] for key in TESTING_KEYS},
            SECTION_LIMITS: {key: options[key] for key in JUDGING_KEYS} | CONTRACT,
            SECTION_POSTING: {key: options[key] for key in POSTING_KEYS},
            # No router sensors on a simulated line.
            SECTION_TRAFFIC: {
                key: options[key] for key in TRAFFIC_KEYS if options[key] is not None
            },
        },
    )
    if saved.get("type") != "create_entry":
        raise SystemExit(f"The demo's options were not saved: {saved}")
    return entry_id


async def _entities(api: _HomeAssistant, entry_id: str) -> dict[str, str]:
    """The entry's entity ids, by entity key ("download", "slow_internet", ...)."""
    for _ in range(60):
        registry = await api.command({"type": "config/entity_registry/list"})
        entities = {
            entity["unique_id"].removeprefix(f"{entry_id}_"): entity["entity_id"]
            for entity in registry
            if entity["config_entry_id"] == entry_id
        }
        if {"slow_internet", "tweet", "run_test", *SEEDED} <= entities.keys():
            return entities
        await asyncio.sleep(1)
    raise SystemExit("ISP Watch's entities did not appear")


async def _add_automation(api: _HomeAssistant, entities: Mapping[str, str]) -> None:
    """An automation from the shipped blueprint, as its form would save it.

    Its quiet hours are one minute twelve hours from now, so the demo never waits.
    """
    config = await api.get("/api/config")
    quiet = datetime.now(ZoneInfo(config["time_zone"])) + timedelta(hours=12)
    await api.post(
        f"/api/config/automation/config/{AUTOMATION_ID}",
        {
            "alias": AUTOMATION_ALIAS,
            "description": "",
            "use_blueprint": {
                "path": SLOW_BLUEPRINT,
                "input": {
                    "slow_sensor": entities["slow_internet"],
                    "tweet_entity": entities["tweet"],
                    "stay_slow": STAY_SLOW,
                    "quiet_start": f"{quiet:%H:%M}:00",
                    "quiet_end": f"{quiet + timedelta(minutes=1):%H:%M}:00",
                },
            },
        },
    )


async def _seed_statistics(api: _HomeAssistant, entities: Mapping[str, str]) -> None:
    """Hourly statistics of the day before the demo started, evening included."""
    config = await api.get("/api/config")
    zone = ZoneInfo(config["time_zone"])
    this_hour = datetime.now(zone).replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - timedelta(hours=back) for back in range(24, 0, -1)]
    for key, (unit, unit_class) in SEEDED.items():
        stats = []
        for hour in hours:
            typical = EVENING_HOUR if hour.hour in EVENING_HOURS else GOOD_HOUR
            # A little variation from hour to hour, the same on every run.
            mean = typical[key] * (1 + 0.03 * ((hour.hour * 7) % 5 - 2) / 2)
            stats.append(
                {
                    "start": hour.isoformat(),
                    "mean": round(mean, 1),
                    "min": round(mean * 0.9, 1),
                    "max": round(mean * 1.08, 1),
                }
            )
        await api.command(
            {
                "type": "recorder/import_statistics",
                "metadata": {
                    "mean_type": 1,
                    "has_sum": False,
                    "name": None,
                    "source": "recorder",
                    "statistic_id": entities[key],
                    "unit_class": unit_class,
                    "unit_of_measurement": unit,
                },
                "stats": stats,
            }
        )


def _print_steps(state: DemoState) -> None:
    print(
        f"""
==> The ISP Watch demo is ready. Within 5 minutes:

 1. Open {state.url} and log in as {state.username!r}, password {state.password!r}.
 2. Open the device page: {state.device_url}
    Download, Upload and Ping show the first test of a good line (about 92/36 Mbit/s,
    12 ms); Slow internet is OK.
 3. Open the demo line's control page in another tab: {state.control_url}
    Click "Slow in the evening".
 4. Back on the device page, press "Run speed test" (Run speed test → Press).
    The result is slow; ISP Watch confirms it with a test a minute later, judges the
    median of the last 3 tests, and turns "Slow internet" on (about 1½ minutes).
 5. A minute later the automation "{AUTOMATION_ALIAS}"
    (from the shipped blueprint) posts. The control page shows the post's text.

 More: the dashboard {state.dashboard_url} (a seeded day with a slow evening),
 "Outage" on the control page turns Internet off within 2 minutes.
 Ctrl-C stops the demo; its folder keeps everything for the next start.
""",
        flush=True,
    )


if __name__ == "__main__":
    main()
