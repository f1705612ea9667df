"""Posting end to end: notify.send_message, outbox, X client, fake X API."""

from __future__ import annotations

from datetime import timedelta
import logging
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.isp_watch.const import (
    CONF_DRY_RUN,
    CONF_ISP_HANDLE,
    CONF_TWEET_COOLDOWN,
    DOMAIN,
)
from fakes.x_api import ACCOUNT_USERNAME, TEST_CREDENTIALS, FakeXApi
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.setup import async_setup_component
from tests.common import OUTBOX, TWEET, make_entry, setup_entry


async def _send(hass: HomeAssistant, message: str) -> None:
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": TWEET, "message": message},
        blocking=True,
    )


async def _settle(hass: HomeAssistant) -> None:
    await hass.async_block_till_done(wait_background_tasks=True)


async def _later(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, delta: timedelta
) -> None:
    freezer.tick(delta)
    async_fire_time_changed(hass)
    await _settle(hass)


def _queued(hass: HomeAssistant) -> int:
    state = hass.states.get(OUTBOX)
    assert state is not None
    return int(state.state)


@pytest.fixture
async def entry(hass: HomeAssistant, fake_x_api: FakeXApi) -> Any:
    """An entry with an X account, pointed at the fake X API."""
    entry = make_entry(with_x_account=True, polling=False)
    await setup_entry(hass, entry)
    return entry


async def test_post_reaches_x_signed_and_addressed(
    hass: HomeAssistant, entry: Any, fake_x_api: FakeXApi
) -> None:
    """The post arrives once, correctly signed, addressed to the ISP."""
    await _send(hass, "Automated speed test: 8 Mbit/s down since 20:00.")
    await _settle(hass)

    assert fake_x_api.posts == [
        "@ExampleISPHelp Automated speed test: 8 Mbit/s down since 20:00."
    ]
    assert [request.signature_valid for request in fake_x_api.requests] == [True]
    state = hass.states.get(OUTBOX)
    assert state.state == "0"
    assert state.attributes["last_post_text"] == fake_x_api.posts[0]
    # The link names the account that posted, as X shows it.
    assert state.attributes["last_post_url"].startswith(
        f"https://x.com/{ACCOUNT_USERNAME}/status/"
    )


async def test_handle_already_in_the_text(
    hass: HomeAssistant, entry: Any, fake_x_api: FakeXApi
) -> None:
    """A message that already names the ISP is not addressed twice."""
    await _send(hass, "Hello @exampleisphelp, the line is slow.")
    await _settle(hass)
    assert fake_x_api.posts == ["Hello @exampleisphelp, the line is slow."]


async def test_burst_is_held_by_the_cooldown(
    hass: HomeAssistant,
    entry: Any,
    fake_x_api: FakeXApi,
    freezer: FrozenDateTimeFactory,
) -> None:
    """50 calls in a row post once now, then once per 6-hour cooldown."""
    # X answers the first post only after the burst: it is on its way all along.
    fake_x_api.answering.clear()
    for number in range(50):
        await _send(hass, f"Automated test message {number}")
    # The queue keeps 20, the one on its way to X among them: it is never dropped.
    assert _queued(hass) == 20
    assert fake_x_api.posts == []

    fake_x_api.answering.set()
    await _settle(hass)
    assert fake_x_api.posts == ["@ExampleISPHelp Automated test message 0"]
    assert _queued(hass) == 19

    for _ in range(8):
        await _later(hass, freezer, timedelta(hours=3, seconds=1))
    # Posts at 0, 6, 12 and 18 hours; at 24 hours the rest were too old to send.
    assert len(fake_x_api.posts) == 4
    assert len(set(fake_x_api.posts)) == 4
    assert _queued(hass) == 0


async def test_burst_is_held_by_the_daily_cap(
    hass: HomeAssistant, fake_x_api: FakeXApi, freezer: FrozenDateTimeFactory
) -> None:
    """Without a cooldown, the daily cap still allows only 5 posts in 24 hours."""
    entry = make_entry(
        with_x_account=True, polling=False, options={CONF_TWEET_COOLDOWN: 0}
    )
    await setup_entry(hass, entry)
    for number in range(50):
        await _send(hass, f"Automated test message {number}")
        await _settle(hass)
    for _ in range(23):
        await _later(hass, freezer, timedelta(hours=1))

    assert len(fake_x_api.posts) == 5
    await _later(hass, freezer, timedelta(hours=1, minutes=1))
    # When the cap frees up, the remaining posts are a day old: they expire unsent.
    assert len(fake_x_api.posts) == 5
    assert _queued(hass) == 0


async def test_too_long_is_refused_before_queueing(
    hass: HomeAssistant, entry: Any, fake_x_api: FakeXApi
) -> None:
    """A message over 280 (as X counts) is refused with a translated error."""
    with pytest.raises(ServiceValidationError) as raised:
        await _send(hass, "日本語" * 50)
    assert raised.value.translation_key == "tweet_too_long"
    await _settle(hass)
    assert fake_x_api.requests == []
    assert _queued(hass) == 0


async def test_same_text_twice_gets_a_time(
    hass: HomeAssistant,
    entry: Any,
    fake_x_api: FakeXApi,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The same text within 24 hours gets a time suffix instead of being refused."""
    await _send(hass, "Automated test: the internet is down.")
    await _settle(hass)
    await _later(hass, freezer, timedelta(hours=7))
    await _send(hass, "Automated test: the internet is down.")
    await _settle(hass)

    assert len(fake_x_api.posts) == 2
    assert fake_x_api.posts[1].startswith(fake_x_api.posts[0] + " (")


async def test_duplicate_answer_counts_as_sent(
    hass: HomeAssistant, entry: Any, fake_x_api: FakeXApi
) -> None:
    """X's duplicate-content answer (a post that went out before) is not retried."""
    fake_x_api.fail_next("403-duplicate")
    await _send(hass, "Automated test: slow again.")
    await _settle(hass)
    assert _queued(hass) == 0
    assert len(fake_x_api.requests) == 1


async def test_rate_limit_waits_for_the_reset(
    hass: HomeAssistant,
    entry: Any,
    fake_x_api: FakeXApi,
    freezer: FrozenDateTimeFactory,
) -> None:
    """429: nothing is sent before the reset time, then the post goes out."""
    fake_x_api.fail_next("429", rate_limit_reset=int(time.time()) + 600)
    await _send(hass, "Automated test: rate limited.")
    await _settle(hass)
    assert fake_x_api.posts == []
    assert _queued(hass) == 1

    await _later(hass, freezer, timedelta(minutes=5))
    assert len(fake_x_api.requests) == 1
    await _later(hass, freezer, timedelta(minutes=6))
    assert fake_x_api.posts == ["@ExampleISPHelp Automated test: rate limited."]


async def test_server_errors_are_retried(
    hass: HomeAssistant,
    entry: Any,
    fake_x_api: FakeXApi,
    freezer: FrozenDateTimeFactory,
) -> None:
    """5xx answers are retried with growing delays until X accepts."""
    fake_x_api.fail_next("503")
    fake_x_api.fail_next("500")
    await _send(hass, "Automated test: retry me.")
    await _settle(hass)
    assert hass.states.get(OUTBOX).attributes["last_error"].startswith("transient")

    await _later(hass, freezer, timedelta(minutes=1, seconds=1))
    assert fake_x_api.posts == []
    await _later(hass, freezer, timedelta(minutes=2, seconds=1))
    assert len(fake_x_api.posts) == 1
    assert len(fake_x_api.requests) == 3


async def test_internet_down_then_back(
    hass: HomeAssistant,
    entry: Any,
    fake_x_api: FakeXApi,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A post asked for while X cannot be reached goes out once it can."""
    fake_x_api.stop()
    await _send(hass, "Automated test: outage over.")
    await _settle(hass)
    assert _queued(hass) == 1

    fake_x_api.start()
    for _ in range(3):
        await _later(hass, freezer, timedelta(minutes=5))
    assert fake_x_api.posts == ["@ExampleISPHelp Automated test: outage over."]
    assert _queued(hass) == 0


async def test_restart_with_queued_posts_sends_each_once(
    hass: HomeAssistant,
    entry: Any,
    fake_x_api: FakeXApi,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Posts queued before a restart go out after it, each exactly once."""
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_TWEET_COOLDOWN: 0}
    )
    await _settle(hass)
    fake_x_api.stop()
    for number in range(3):
        await _send(hass, f"Automated test {number}")
    await _settle(hass)

    assert await hass.config_entries.async_unload(entry.entry_id)
    fake_x_api.start()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await _settle(hass)
    for _ in range(3):
        await _later(hass, freezer, timedelta(minutes=5))

    assert sorted(fake_x_api.posts) == [
        f"@ExampleISPHelp Automated test {number}" for number in range(3)
    ]


async def test_rejected_keys_start_reauth_and_wait(
    hass: HomeAssistant,
    entry: Any,
    fake_x_api: FakeXApi,
    freezer: FrozenDateTimeFactory,
) -> None:
    """401 starts re-authentication; the post waits and goes out after it."""
    fake_x_api.fail_next("401")
    await _send(hass, "Automated test: after reauth.")
    await _settle(hass)

    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert _queued(hass) == 1
    await _later(hass, freezer, timedelta(hours=1))
    assert len(fake_x_api.requests) == 1

    # Completing re-authentication stores the keys and reloads the entry.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await _settle(hass)
    assert fake_x_api.posts == ["@ExampleISPHelp Automated test: after reauth."]


@pytest.mark.parametrize(
    ("fault", "issue"),
    [
        ("402", "x_no_credits"),
        ("403-read-only", "x_read_only"),
        ("403-not-enrolled", "x_not_enrolled"),
    ],
)
async def test_account_problems_raise_a_repair_and_keep_the_post(
    hass: HomeAssistant,
    entry: Any,
    fake_x_api: FakeXApi,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
    fault: str,
    issue: str,
) -> None:
    """No credits, read-only app, no project: the post waits and the user is told."""
    fake_x_api.fail_next(fault)
    await _send(hass, "Automated test: keep me.")
    await _settle(hass)

    assert issue_registry.async_get_issue(DOMAIN, f"{issue}_{entry.entry_id}")
    assert _queued(hass) == 1
    assert hass.states.get(OUTBOX).attributes["paused_reason"] is not None
    await _later(hass, freezer, timedelta(hours=1))
    assert len(fake_x_api.requests) == 1

    # After the user fixed it (the entry reloads when options or keys change).
    assert await hass.config_entries.async_reload(entry.entry_id)
    await _settle(hass)
    assert fake_x_api.posts == ["@ExampleISPHelp Automated test: keep me."]
    assert issue_registry.async_get_issue(DOMAIN, f"{issue}_{entry.entry_id}") is None


async def test_rejected_post_is_dropped(
    hass: HomeAssistant, entry: Any, fake_x_api: FakeXApi
) -> None:
    """A post X refuses as invalid is dropped, not retried forever."""
    fake_x_api.fail_next("400")
    await _send(hass, "Automated test: invalid.")
    await _settle(hass)
    assert _queued(hass) == 0
    assert hass.states.get(OUTBOX).attributes["last_error"].startswith("rejected")


async def test_dry_run_posts_nothing(hass: HomeAssistant, fake_x_api: FakeXApi) -> None:
    """Dry run composes and records the post, but X never hears of it."""
    entry = make_entry(with_x_account=True, polling=False, options={CONF_DRY_RUN: True})
    await setup_entry(hass, entry)
    await _send(hass, "Automated test: dry.")
    await _settle(hass)

    assert fake_x_api.requests == []
    state = hass.states.get(OUTBOX)
    assert state.attributes["dry_run"] is True
    assert state.attributes["last_post_text"] == "@ExampleISPHelp Automated test: dry."


async def test_no_account_no_notify_entity(hass: HomeAssistant) -> None:
    """Without an X account there is nothing to post with."""
    await setup_entry(hass, make_entry(data={CONF_ISP_HANDLE: None}, polling=False))
    assert hass.states.get(TWEET) is None
    assert hass.states.get(OUTBOX) is None


async def test_no_secret_in_logs(
    hass: HomeAssistant,
    fake_x_api: FakeXApi,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Keys and tokens never reach a log line, even at DEBUG."""
    caplog.set_level(logging.DEBUG)
    entry = make_entry(with_x_account=True, polling=False)
    await setup_entry(hass, entry)
    for fault in ("503", "429", "401"):
        fake_x_api.fail_next(fault)
    await _send(hass, "Automated test: logging.")
    await _settle(hass)
    await _later(hass, freezer, timedelta(minutes=20))
    await _later(hass, freezer, timedelta(minutes=20))

    assert len(fake_x_api.requests) == 3
    for secret in (
        TEST_CREDENTIALS.api_key,
        TEST_CREDENTIALS.api_secret,
        TEST_CREDENTIALS.access_token,
        TEST_CREDENTIALS.access_token_secret,
    ):
        assert secret not in caplog.text


async def test_post_entities_keep_their_ids_and_device(
    hass: HomeAssistant,
    entry: Any,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The posting entities sit on the connection's device under their old ids."""
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, entry.entry_id), entry.entry_id
    )
    assert device is not None

    for entity_id, key in ((TWEET, "tweet"), (OUTBOX, "outbox")):
        registered = entity_registry.async_get(entity_id)
        assert registered is not None
        assert registered.unique_id == f"{entry.entry_id}_{key}"
        assert registered.device_id == device.id


async def test_update_entity_shows_the_queue_without_sending(
    hass: HomeAssistant,
    entry: Any,
    fake_x_api: FakeXApi,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Asking the queue sensor for an update shows the queue; the cooldown holds."""
    assert await async_setup_component(hass, "homeassistant", {})
    await _send(hass, "First.")
    await _send(hass, "Second.")
    await _settle(hass)

    await hass.services.async_call(
        "homeassistant", "update_entity", {"entity_id": OUTBOX}, blocking=True
    )
    await _settle(hass)

    assert len(fake_x_api.posts) == 1
    assert _queued(hass) == 1
