"""Setting ISP Watch up from the UI, against the fake X API and fake speedtest.net."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import pytest

from custom_components.isp_watch.const import DOMAIN
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from tests.common import X_ACCOUNT_DATA, make_entry
from tests.fake_speedtest import SERVER_IDS, FakeSpeedtest
from tests.fake_x_api import ACCOUNT_ID, ACCOUNT_USERNAME, TEST_CREDENTIALS, FakeXApi

CONNECTION = {
    "isp_name": "Example ISP",
    "isp_handle": "@ExampleISPHelp",
    "plan_download": 100,
    "plan_upload": 40,
    "min_download": 30,
    "min_upload": 10,
    "max_ping": 100,
}
KEYS = {
    "api_key": TEST_CREDENTIALS.api_key,
    "api_secret": TEST_CREDENTIALS.api_secret,
    "access_token": TEST_CREDENTIALS.access_token,
    "access_token_secret": TEST_CREDENTIALS.access_token_secret,
}


@pytest.fixture(autouse=True)
def no_setup() -> Iterator[None]:
    """Flows are tested on their own; setting the entry up is tested elsewhere."""
    with patch("custom_components.isp_watch.async_setup_entry", return_value=True):
        yield


async def _start(hass: HomeAssistant, **changes: Any) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    values = {
        key: value for key, value in (CONNECTION | changes).items() if value is not None
    }
    return dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], values)
    )


async def test_without_an_x_account(hass: HomeAssistant) -> None:
    """Connection and limits only: data and options are stored apart."""
    result = await _start(hass)
    assert result["type"] is FlowResultType.MENU
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "finish"}
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Example ISP"
    assert result["data"] == {
        "isp_name": "Example ISP",
        "isp_handle": "ExampleISPHelp",
        "plan_download": 100,
        "plan_upload": 40,
    }
    assert result["options"] == {"min_download": 30, "min_upload": 10, "max_ping": 100}
    assert result["result"].unique_id == "default"


async def test_with_an_x_account(hass: HomeAssistant, fake_x_api: FakeXApi) -> None:
    """Keys are checked live, trimmed, and the account is named in the title."""
    result = await _start(hass, source_address="127.0.0.1")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "x_account"}
    )
    assert result["step_id"] == "x_account"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {key: f"  {value}\n" for key, value in KEYS.items()}
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"Example ISP (@{ACCOUNT_USERNAME})"
    assert result["data"] | {} == {
        "isp_name": "Example ISP",
        "isp_handle": "ExampleISPHelp",
        "plan_download": 100,
        "plan_upload": 40,
        "source_address": "127.0.0.1",
        **X_ACCOUNT_DATA,
    }
    assert result["result"].unique_id == "127.0.0.1"
    assert [request.signature_valid for request in fake_x_api.requests] == [True]


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"isp_handle": "not a handle!"}, {"isp_handle": "invalid_handle"}),
        (
            {"isp_handle": "@a_handle_that_is_too_long"},
            {"isp_handle": "invalid_handle"},
        ),
        ({"isp_name": "   "}, {"isp_name": "empty_name"}),
        ({"min_download": 150}, {"min_download": "minimum_above_plan"}),
        ({"min_upload": 50}, {"min_upload": "minimum_above_plan"}),
        (
            {"plan_download": 0, "min_download": 0},
            {"plan_download": "invalid_speed", "min_download": "invalid_speed"},
        ),
        ({"source_address": "not-an-ip"}, {"source_address": "invalid_source_address"}),
    ],
)
async def test_bad_connection_input(
    hass: HomeAssistant, changes: dict[str, Any], errors: dict[str, str]
) -> None:
    """Each mistake gets a translated error on its field, and nothing is created."""
    result = await _start(hass, **changes)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors


@pytest.mark.parametrize(
    "changes",
    [
        {"min_download": "fast"},
        {"max_ping": 0},
        {"max_ping": 20_000},
        {"plan_upload": 20_000},
        {"min_upload": -5},
    ],
)
async def test_out_of_range_and_non_numeric(
    hass: HomeAssistant, changes: dict[str, Any]
) -> None:
    """The form refuses values its fields cannot hold."""
    with pytest.raises(InvalidData):
        await _start(hass, **changes)


async def test_same_uplink_twice(hass: HomeAssistant) -> None:
    """An uplink can be watched once."""
    make_entry().add_to_hass(hass)
    result = await _start(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def _to_keys(hass: HomeAssistant) -> str:
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "x_account"}
    )
    return str(result["flow_id"])


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("401", "invalid_auth"),
        ("429", "rate_limited"),
        ("503", "cannot_connect"),
        ("400", "unknown"),
    ],
)
async def test_x_errors(
    hass: HomeAssistant, fake_x_api: FakeXApi, fault: str, error: str
) -> None:
    """X's answers become clear errors; the form can be sent again."""
    flow_id = await _to_keys(hass)
    fake_x_api.fail_next(fault)
    result = await hass.config_entries.flow.async_configure(flow_id, KEYS)
    assert result["errors"] == {"base": error}

    result = await hass.config_entries.flow.async_configure(flow_id, KEYS)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_wrong_secret_and_empty_keys(
    hass: HomeAssistant, fake_x_api: FakeXApi
) -> None:
    """A wrong secret fails the signature; an empty key is not sent at all."""
    flow_id = await _to_keys(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, KEYS | {"api_secret": "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert fake_x_api.requests[-1].signature_valid is False

    requests = len(fake_x_api.requests)
    result = await hass.config_entries.flow.async_configure(
        flow_id, KEYS | {"access_token": "   "}
    )
    assert result["errors"] == {"base": "empty_key"}
    assert len(fake_x_api.requests) == requests


async def test_read_only_app(hass: HomeAssistant, fake_x_api: FakeXApi) -> None:
    """Keys of an app without write permission are refused with the fix in the text."""
    fake_x_api.access_level = "read"
    flow_id = await _to_keys(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, KEYS)
    assert result["errors"] == {"base": "read_only_app"}


async def test_x_unreachable(hass: HomeAssistant, fake_x_api: FakeXApi) -> None:
    """No connection to X: cannot_connect."""
    flow_id = await _to_keys(hass)
    fake_x_api.stop()
    result = await hass.config_entries.flow.async_configure(flow_id, KEYS)
    assert result["errors"] == {"base": "cannot_connect"}


async def test_unexpected_error(hass: HomeAssistant, fake_x_api: FakeXApi) -> None:
    """A crash inside the check is logged and shown as unknown, not a traceback."""
    flow_id = await _to_keys(hass)
    with patch(
        "custom_components.isp_watch.config_flow.XClient.verify",
        side_effect=RuntimeError("boom"),
    ):
        result = await hass.config_entries.flow.async_configure(flow_id, KEYS)
    assert result["errors"] == {"base": "unknown"}


async def test_reconfigure(hass: HomeAssistant) -> None:
    """Name, handle and plan change; the limits are checked against the new plan."""
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"isp_name": "New ISP", "plan_download": 20}
    )
    assert result["errors"] == {"min_download": "minimum_above_plan"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"isp_name": "New ISP", "isp_handle": "NewISP", "plan_download": 500},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.title == f"New ISP (@{ACCOUNT_USERNAME})"
    assert entry.data["isp_handle"] == "NewISP"
    assert entry.data["plan_download"] == 500
    assert "plan_upload" not in entry.data
    assert entry.data["api_key"] == TEST_CREDENTIALS.api_key


async def test_reauth(hass: HomeAssistant, fake_x_api: FakeXApi) -> None:
    """New keys for the same account are stored; the entry reloads."""
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    old = dict(entry.data)
    hass.config_entries.async_update_entry(
        entry, data=old | {"api_key": "expired", "access_token": "expired"}
    )
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["username"] == ACCOUNT_USERNAME

    result = await hass.config_entries.flow.async_configure(result["flow_id"], KEYS)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data == old


async def test_reauth_with_another_account(
    hass: HomeAssistant, fake_x_api: FakeXApi
) -> None:
    """Keys of a different account are refused."""
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, data=entry.data | {"x_user_id": "999"}
    )
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], KEYS)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert entry.data["x_user_id"] == "999"
    assert ACCOUNT_ID != "999"


async def test_reauth_error_then_success(
    hass: HomeAssistant, fake_x_api: FakeXApi
) -> None:
    """A failed check keeps the form open."""
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    fake_x_api.fail_next("401")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], KEYS)
    assert result["errors"] == {"base": "invalid_auth"}


async def _options(hass: HomeAssistant, entry: Any, step: str) -> dict[str, Any]:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.MENU
    return dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"], {"next_step_id": step}
        )
    )


SETTINGS = {
    "scan_interval": 30,
    "min_download": 40,
    "min_upload": 10,
    "max_ping": 80,
    "evaluation_window": 5,
    "confirm_delay": 15,
    "max_confirm_tests": 1,
    "outage_probe_interval": 3,
    "monthly_data_budget": 50,
    "tweet_cooldown": 12,
    "tweet_daily_cap": 2,
    "dry_run": True,
}


async def test_options_with_server_list(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest
) -> None:
    """The server picker lists speedtest.net's servers; options are stored."""
    entry = make_entry()
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    assert result["step_id"] == "settings"
    assert result["description_placeholders"] == {"server_note": ""}
    server_field = next(
        key for key in result["data_schema"].schema if key == "server_id"
    )
    offered = [
        option["value"]
        for option in result["data_schema"].schema[server_field].config["options"]
    ]
    assert offered == ["best", *(str(server_id) for server_id in SERVER_IDS)]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], SETTINGS | {"server_id": str(SERVER_IDS[1])}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == SETTINGS | {"server_id": str(SERVER_IDS[1])}


async def test_options_without_server_list(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest
) -> None:
    """When speedtest.net cannot be reached, only the best server is offered."""
    speedtest_route.stop()
    entry = make_entry()
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    assert "could not be loaded" in result["description_placeholders"]["server_note"]
    server_field = next(
        key for key in result["data_schema"].schema if key == "server_id"
    )
    options = result["data_schema"].schema[server_field].config["options"]
    assert [option["value"] for option in options] == ["best"]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], SETTINGS | {"server_id": "best", "min_download": 500}
    )
    assert result["errors"] == {"min_download": "minimum_above_plan"}


async def test_options_add_and_remove_the_account(
    hass: HomeAssistant, fake_x_api: FakeXApi
) -> None:
    """The X account can be added later, and removed again."""
    entry = make_entry()
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "x_account")
    fake_x_api.fail_next("401")
    result = await hass.config_entries.options.async_configure(result["flow_id"], KEYS)
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.options.async_configure(result["flow_id"], KEYS)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.data["x_username"] == ACCOUNT_USERNAME
    assert entry.title == f"Example ISP (@{ACCOUNT_USERNAME})"
    await hass.async_block_till_done()

    result = await _options(hass, entry, "remove_x_account")
    assert result["step_id"] == "remove_x_account"
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert "api_key" not in entry.data
    assert entry.title == "Example ISP"
    assert entry.data["isp_name"] == "Example ISP"
