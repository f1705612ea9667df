"""The shipped blueprints, run by Home Assistant's own blueprint machinery end to end.

Sensors are driven by real tests against the fake speedtest.net; what the automations
post is read back from the fake X API.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date, time, timedelta
from pathlib import Path
import re
import shutil
import socket
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_test_home_assistant,
)

from custom_components.isp_watch import x_client
from custom_components.isp_watch.compliance import Campaign, CampaignPhase
from custom_components.isp_watch.const import DOMAIN
from custom_components.isp_watch.tweet_length import weighted_length
from fakes.speedtest import FakeSpeedtest
from fakes.x_api import FakeXApi
from homeassistant import loader
from homeassistant.components.automation import DOMAIN as AUTOMATION_DOMAIN
from homeassistant.const import EVENT_HOMEASSISTANT_STARTED
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.yaml import load_yaml_dict
from tests.common import (
    INTERNET,
    LOADED_MACHINE_MS,
    RUN_TEST,
    SLOW,
    TWEET,
    berlin,
    campaign_days,
    make_entry,
    setup_entry,
    store_campaign,
)

BLUEPRINTS = Path(__file__).parent.parent / "blueprints" / "automation" / "isp_watch"


@pytest.fixture
async def world(
    hass: HomeAssistant,
    tmp_path: Path,
    speedtest_route: FakeSpeedtest,
    fake_x_api: FakeXApi,
) -> tuple[FakeSpeedtest, FakeXApi]:
    """ISP Watch with an X account, and the blueprints where Home Assistant looks."""
    hass.config.config_dir = str(tmp_path)
    shutil.copytree(BLUEPRINTS, tmp_path / "blueprints" / "automation" / "isp_watch")
    speedtest_route.test_length = 1
    await setup_entry(hass, make_entry(with_x_account=True, polling=False))
    return speedtest_route, fake_x_api


async def _automation(
    hass: HomeAssistant, blueprint: str, inputs: dict[str, Any]
) -> None:
    assert await async_setup_component(
        hass,
        AUTOMATION_DOMAIN,
        {
            AUTOMATION_DOMAIN: {
                "alias": blueprint.removesuffix(".yaml"),
                "use_blueprint": {"path": f"isp_watch/{blueprint}", "input": inputs},
            }
        },
    )
    await hass.async_block_till_done()
    state = hass.states.get(f"automation.{blueprint.removesuffix('.yaml')}")
    assert state is not None
    assert state.state == "on"


async def _test(hass: HomeAssistant, *, settle: bool = True) -> None:
    # A failed test is part of some scenarios.
    with contextlib.suppress(HomeAssistantError):
        await hass.services.async_call(
            "button", "press", {"entity_id": RUN_TEST}, blocking=True
        )
    if settle:
        await hass.async_block_till_done(wait_background_tasks=True)


def _not_quiet_now() -> dict[str, str]:
    """Quiet hours that do not include the current time."""
    start = dt_util.now() + timedelta(hours=2)
    end = start + timedelta(minutes=1)
    return {"quiet_start": f"{start:%H:%M:00}", "quiet_end": f"{end:%H:%M:00}"}


async def test_tweet_when_slow(
    hass: HomeAssistant, world: tuple[FakeSpeedtest, FakeXApi]
) -> None:
    """Three slow tests: one neutral post with the medians, limits and times."""
    line, x_api = world
    await _automation(
        hass,
        "tweet_when_slow.yaml",
        {
            "slow_sensor": SLOW,
            "tweet_entity": TWEET,
            "stay_slow": {"seconds": 0},
            **_not_quiet_now(),
        },
    )
    line.set_rates(download_mbps=8, upload_mbps=20)
    for _ in range(3):
        await _test(hass)
    assert hass.states.get(SLOW).state == "on"
    await hass.async_block_till_done(wait_background_tasks=True)

    assert len(x_api.posts) == 1
    post = x_api.posts[0]
    median = hass.states.get(SLOW).attributes["median_download"]
    assert post.startswith(
        "@ExampleISPHelp Automated speed test: my connection has been below the "
        "agreed minimum since "
    )
    assert "Median of 3 tests, " in post
    assert f": {median:.1f} Mbit/s down, " in post
    assert "Minimum: 30.0/10.0 Mbit/s, 100 ms." in post
    assert re.search(r"\d\d \w\w\w \d\d:\d\d to \d\d \w\w\w \d\d:\d\d", post)
    assert weighted_length(post) <= 280
    assert [request.signature_valid for request in x_api.requests] == [True]

    # Still slow: no second post for the same episode.
    await _test(hass)
    assert len(x_api.posts) == 1


async def test_tweet_when_jitter_and_latency_under_load_are_too_high(
    hass: HomeAssistant, world: tuple[FakeSpeedtest, FakeXApi]
) -> None:
    """Fast enough, but a jumpy ping and a bloated buffer: the post names both."""
    line, x_api = world
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    hass.config_entries.async_update_entry(
        entry,
        options=entry.options | {"max_jitter": 10.0, "max_loaded_latency": 150.0},
    )
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await _automation(
        hass,
        "tweet_when_slow.yaml",
        {
            "slow_sensor": SLOW,
            "tweet_entity": TWEET,
            "stay_slow": {"seconds": 0},
            **_not_quiet_now(),
        },
    )
    # Every other latency probe 40 ms late: consecutive samples differ by 40 ms.
    line.latency_pattern_ms = (0.0, 40.0)
    line.loaded_latency_ms = 250.0
    for _ in range(3):
        await _test(hass)

    slow = hass.states.get(SLOW)
    assert slow.state == "on"
    assert slow.attributes["violated"] == ["jitter", "loaded_latency"]
    assert 30 <= slow.attributes["median_jitter"] <= 40 + LOADED_MACHINE_MS
    assert slow.attributes["median_loaded_latency"] >= 250
    assert slow.attributes["max_jitter"] == 10.0
    assert slow.attributes["max_loaded_latency"] == 150.0
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(x_api.posts) == 1
    post = x_api.posts[0]
    jitter = round(slow.attributes["median_jitter"])
    loaded = round(slow.attributes["median_loaded_latency"])
    assert f" ms ping, {jitter} ms jitter, {loaded} ms under load. Minimum: " in post
    assert weighted_length(post) <= 280


async def test_tweet_when_slow_asks_first(
    hass: HomeAssistant, world: tuple[FakeSpeedtest, FakeXApi]
) -> None:
    """With a phone to ask, nothing is posted until the user taps Post."""
    line, x_api = world
    phone_entry = MockConfigEntry(domain="mobile_app", unique_id="phone")
    phone_entry.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=phone_entry.entry_id,
        identifiers={("mobile_app", "phone-1")},
        name="My Phone",
    )
    asked: list[dict[str, Any]] = []

    async def notify_phone(call: Any) -> None:
        asked.append(dict(call.data))

    hass.services.async_register("notify", "mobile_app_my_phone", notify_phone)
    await _automation(
        hass,
        "tweet_when_slow.yaml",
        {
            "slow_sensor": SLOW,
            "tweet_entity": TWEET,
            "stay_slow": {"seconds": 0},
            "approval_device": device.id,
            **_not_quiet_now(),
        },
    )
    line.set_rates(download_mbps=8, upload_mbps=20)
    # The automation now waits for an answer, so Home Assistant is never idle.
    for _ in range(3):
        await _test(hass, settle=False)
    for _ in range(100):
        if asked:
            break
        await asyncio.sleep(0.05)

    assert len(asked) == 1
    assert x_api.posts == []
    approve = asked[0]["data"]["actions"][0]["action"]
    # The answer belongs to this episode: the slow sensor's state change names it.
    slow_since = hass.states.get(SLOW)
    assert slow_since is not None
    assert approve == f"ISP_WATCH_POST_{slow_since.context.id}"
    hass.bus.async_fire("mobile_app_notification_action", {"action": approve})
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(x_api.posts) == 1


async def test_tweet_when_outage_ends(
    hass: HomeAssistant,
    world: tuple[FakeSpeedtest, FakeXApi],
    freezer: FrozenDateTimeFactory,
) -> None:
    """One post after a 20-minute outage, with its times; none for a short drop."""
    line, x_api = world
    await _automation(
        hass,
        "tweet_when_outage_ends.yaml",
        {"internet_sensor": INTERNET, "tweet_entity": TWEET, "minimum_minutes": 15},
    )
    await _test(hass)
    line.stop()
    await _test(hass)
    assert hass.states.get(INTERNET).state == "off"
    line.start()
    await _test(hass)
    assert hass.states.get(INTERNET).state == "on"
    assert x_api.posts == []

    line.stop()
    await _test(hass)
    freezer.tick(timedelta(minutes=10))
    await _test(hass)
    freezer.tick(timedelta(minutes=10))
    line.start()
    await _test(hass)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert len(x_api.posts) == 1
    assert x_api.posts[0].startswith(
        "@ExampleISPHelp Automated connection monitor: my internet was down from "
    )
    assert "(20 minutes). It works again now." in x_api.posts[0]


async def test_post_on_start(
    hass: HomeAssistant, world: tuple[FakeSpeedtest, FakeXApi]
) -> None:
    """Home Assistant starting is announced with a timestamp."""
    _, x_api = world
    await _automation(hass, "post_on_start_stop.yaml", {"tweet_entity": TWEET})
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STARTED)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert len(x_api.posts) == 1
    assert re.fullmatch(
        r"@ExampleISPHelp Automated connection monitor started at "
        r"\d\d \w\w\w \d{4} \d\d:\d\d\.",
        x_api.posts[0],
    )


async def test_post_on_contract_deviation(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    tmp_path: Path,
    quick_speedtest_route: FakeSpeedtest,
    fake_x_api: FakeXApi,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The campaign's last test finds a deviation: one post citing the numbers."""
    hass.config.config_dir = str(tmp_path)
    shutil.copytree(BLUEPRINTS, tmp_path / "blueprints" / "automation" / "isp_watch")
    await hass.config.async_set_time_zone("Europe/Berlin")
    # The fake line gives 40/20 Mbit/s: below the minimum and 90 % of the maximum.
    quick_speedtest_route.set_rates(download_mbps=40, upload_mbps=20)
    entry = make_entry(
        data={"contract_minimum_download": 50.0}, with_x_account=True, polling=False
    )
    days = (date(2026, 11, 2), date(2026, 11, 4), date(2026, 11, 6))
    store_campaign(
        hass_storage,
        entry,
        Campaign(
            phase=CampaignPhase.RUNNING,
            started=berlin(days[0], time(6)),
            measurements=campaign_days(
                (days[0], 10), (days[1], 10), (days[2], 9), upload=20.0
            ),
        ),
    )
    freezer.move_to(berlin(days[2], time(22, 50)))
    await setup_entry(hass, entry)
    deviation = "binary_sensor.example_isp_contract_deviation"
    await _automation(
        hass,
        "post_on_contract_deviation.yaml",
        {"deviation_sensor": deviation, "tweet_entity": TWEET},
    )

    last_test = berlin(days[2], time(23))
    freezer.move_to(last_test)
    async_fire_time_changed(hass, last_test)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert hass.states.get(deviation).state == "on"
    expected = (
        "@ExampleISPHelp Automated measurement campaign, 30 speed tests on 3 days "
        "from 02 Nov 07:00 to 06 Nov 23:00: download below the 50 Mbit/s minimum on "
        "3 of 3 days; download never reached 90 Mbit/s (90 % of the maximum) on 3 of "
        "3 days; and 1 more."
    )
    assert fake_x_api.posts == [expected]
    assert weighted_length(fake_x_api.posts[0]) <= 280


@pytest.mark.parametrize(
    "path", sorted(BLUEPRINTS.glob("*.yaml")), ids=lambda p: p.name
)
def test_inputs_explain_themselves(path: Path) -> None:
    """Every input has a description; messages are edited in multiline boxes."""
    inputs = load_yaml_dict(str(path))["blueprint"]["input"]
    for key, definition in inputs.items():
        assert definition.get("description"), f"{path.name}: {key} has none"
        text = definition["selector"].get("text", ...)
        if text is not ...:
            assert (text or {}).get("multiline") is True, f"{path.name}: {key}"
    # With no X account there is nothing to pick: the description says what to do.
    assert "add an X account" in inputs["tweet_entity"]["description"]
    assert "ISP Watch > Configure" in inputs["tweet_entity"]["description"]
    assert "uplink" not in path.read_text().lower()


def _stop_posts(posts: list[str]) -> list[str]:
    return [
        post
        for post in posts
        if re.fullmatch(
            r"@ExampleISPHelp Automated connection monitor stopped at "
            r"\d\d \w\w\w \d{4} \d\d:\d\d\.",
            post,
        )
    ]


async def test_shutdown_post_leaves_before_home_assistant_has_stopped(
    hass: HomeAssistant, world: tuple[FakeSpeedtest, FakeXApi]
) -> None:
    """With X reachable, the stop message is at X when stopping is over."""
    _, x_api = world
    await _automation(hass, "post_on_start_stop.yaml", {"tweet_entity": TWEET})

    await hass.async_stop()

    assert len(_stop_posts(x_api.posts)) == 1
    assert len(x_api.posts) == 1


async def test_shutdown_post_waits_on_disk_when_x_is_unreachable(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    tmp_path: Path,
    world: tuple[FakeSpeedtest, FakeXApi],
    monkeypatch: pytest.MonkeyPatch,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Unsent at stop, it is still queued; after the next start it goes out once."""
    _, x_api = world
    await _automation(hass, "post_on_start_stop.yaml", {"tweet_entity": TWEET})
    entry = hass.config_entries.async_entries("isp_watch")[0]
    reachable = x_client.X_API_ORIGIN
    # Nothing listens on the port a closed socket had: X cannot be reached.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setattr(
            x_client, "X_API_ORIGIN", f"https://127.0.0.1:{closed.getsockname()[1]}"
        )

    await hass.async_stop()

    assert x_api.posts == []
    outbox = hass_storage[f"isp_watch.{entry.entry_id}.outbox"]["data"]
    assert len(_stop_posts([item["text"] for item in outbox["items"]])) == 1

    monkeypatch.setattr(x_client, "X_API_ORIGIN", reachable)
    async with async_test_home_assistant(config_dir=str(tmp_path)) as restarted:
        restarted.data.pop(loader.DATA_CUSTOM_COMPONENTS)
        MockConfigEntry(
            domain=entry.domain,
            title=entry.title,
            data=dict(entry.data),
            options=dict(entry.options),
            unique_id=entry.unique_id,
            entry_id=entry.entry_id,
            pref_disable_polling=True,
        ).add_to_hass(restarted)
        assert await restarted.config_entries.async_setup(entry.entry_id)
        # The failed attempt at the stop set the usual retry back-off.
        for _ in range(3):
            freezer.tick(timedelta(minutes=2))
            async_fire_time_changed(restarted)
            await restarted.async_block_till_done(wait_background_tasks=True)
        await restarted.async_stop()

    assert len(_stop_posts(x_api.posts)) == 1
    assert len(x_api.posts) == 1
