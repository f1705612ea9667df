"""Setting ISP Watch up from the UI, against the fake X API and fake speedtest.net."""

from __future__ import annotations

from collections.abc import Iterator
import errno
import json
import logging
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, patch

import probatio
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.isp_watch import x_client
from custom_components.isp_watch.const import DOMAIN, NUMBER_RANGES
from custom_components.isp_watch.data import IspWatchSettings
from fakes.loopback import LoopbackServer, QuietHandler
from fakes.speedtest import SERVER_IDS, FakeSpeedtest
from fakes.x_api import ACCOUNT_ID, ACCOUNT_USERNAME, TEST_CREDENTIALS, FakeXApi
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData, section
from homeassistant.setup import async_setup_component
from tests.common import ENTRY_OPTIONS, X_ACCOUNT_DATA, make_entry

TRANSLATIONS = json.loads(
    (
        Path(__file__).parent.parent
        / "custom_components"
        / "isp_watch"
        / "translations"
        / "en.json"
    ).read_text()
)
CONNECTION = {
    "isp_name": "Example ISP",
    "isp_handle": "@ExampleISPHelp",
    "contract_maximum_download": 100,
    "contract_maximum_upload": 40,
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
DEFAULT_OPTIONS = {
    "min_download": 50.0,
    "min_upload": 10.0,
    "max_ping": 100.0,
    "max_jitter": 0.0,
    "max_loaded_latency": 0.0,
    "scan_interval": 60,
    "server_id": "best",
    "evaluation_window": 3,
    "confirm_delay": 30,
    "max_confirm_tests": 2,
    "outage_probe_interval": 2,
    "monthly_data_budget": 0,
    "tweet_cooldown": 6,
    "tweet_daily_cap": 5,
    "dry_run": False,
    "watch_interval": 1,
    "watch_failures": 2,
    "wan_download_sensor": None,
    "wan_upload_sensor": None,
    "busy_share": 10,
    "max_deferrals": 3,
}
TESTING = {
    "scan_interval": 30,
    "server_id": "best",
    "confirm_delay": 15,
    "max_confirm_tests": 1,
    "outage_probe_interval": 3,
    "monthly_data_budget": 50,
    "watch_interval": 0,
    "watch_failures": 3,
}
LIMITS = {
    "contract_maximum_download": 100,
    "contract_maximum_upload": 40,
    "min_download": 40,
    "min_upload": 10,
    "max_ping": 80,
    "max_jitter": 15,
    "max_loaded_latency": 150,
    "evaluation_window": 5,
}
# The limits section as the form shows it: the contract, the shortcut, the limits.
LIMITS_FIELDS = [
    "contract_maximum_download",
    "contract_normally_available_download",
    "contract_minimum_download",
    "contract_maximum_upload",
    "contract_normally_available_upload",
    "contract_minimum_upload",
    "use_contract_minimum",
    *(key for key in LIMITS if not key.startswith("contract_")),
]
POSTING = {"tweet_cooldown": 12, "tweet_daily_cap": 2, "dry_run": True}
# No router sensor chosen: the fields are left empty, so the form sends no key.
TRAFFIC = {"busy_share": 15, "max_deferrals": 2}
TRAFFIC_FIELDS = ["wan_download_sensor", "wan_upload_sensor", *TRAFFIC]
# The settings form as the frontend sends it, and the options it stores.
SETTINGS_FORM = {
    "testing": TESTING,
    "limits": LIMITS,
    "traffic": TRAFFIC,
    "posting": POSTING,
}
SETTINGS = (
    TESTING
    | {key: value for key, value in LIMITS.items() if not key.startswith("contract_")}
    | TRAFFIC
    | {"wan_download_sensor": None, "wan_upload_sensor": None}
    | POSTING
)


@pytest.fixture(autouse=True)
def setups() -> Iterator[AsyncMock]:
    """Flows are tested on their own; the mock counts (re)loads of entries."""
    with (
        patch(
            "custom_components.isp_watch.async_setup_entry", return_value=True
        ) as setup,
        patch("custom_components.isp_watch.async_unload_entry", return_value=True),
    ):
        yield setup


def _fields(schema: Any) -> dict[str, tuple[Any, Any]]:
    """Each field of a form, those in sections too, with its marker and validator."""
    fields: dict[str, tuple[Any, Any]] = {}
    for marker, validator in schema.schema.items():
        if isinstance(validator, section):
            fields |= _fields(validator.schema)
        else:
            fields[str(marker)] = (marker, validator)
    return fields


def _field(result: Any, key: str) -> tuple[Any, Any]:
    """The schema marker and validator of a field of a shown form."""
    fields = _fields(result["data_schema"])
    assert key in fields, f"{key} is not in the form"
    return fields[key]


def _suggested(result: Any, key: str) -> Any:
    marker, _ = _field(result, key)
    return (marker.description or {}).get("suggested_value")


def _sections(result: Any) -> dict[str, list[str]]:
    """The sections of a form and the fields in each."""
    return {
        str(marker): [str(field) for field in validator.schema.schema]
        for marker, validator in result["data_schema"].schema.items()
        if isinstance(validator, section)
    }


async def _start(hass: HomeAssistant, **changes: Any) -> dict[str, Any]:
    """Fill the first step; a change of None leaves that field out."""
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


async def _to_keys(hass: HomeAssistant) -> str:
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "x_account"}
    )
    assert result["step_id"] == "x_account"
    return str(result["flow_id"])


# -- the first steps ----------------------------------------------------------------


async def test_first_form_offers_defaults_and_limits(hass: HomeAssistant) -> None:
    """The limits start at the defaults; each box has the range const.py gives it."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    defaults = {
        str(marker): marker.default()
        for marker in result["data_schema"].schema
        if str(marker) in {"min_download", "min_upload", "max_ping"}
    }
    assert defaults == {"min_download": 50.0, "min_upload": 10.0, "max_ping": 100.0}
    for key in (
        "contract_maximum_download",
        "contract_maximum_upload",
        "min_download",
        "max_ping",
    ):
        _, box = _field(result, key)
        number_range = NUMBER_RANGES[key]
        assert (box.config["min"], box.config["max"]) == (
            number_range.minimum,
            number_range.maximum,
        )
        assert box.config["step"] == "any"
        assert box.config["unit_of_measurement"] == number_range.unit
    _, speed = _field(result, "contract_maximum_download")
    assert (speed.config["min"], speed.config["unit_of_measurement"]) == (
        0.1,
        "Mbit/s",
    )


async def test_without_an_x_account(hass: HomeAssistant) -> None:
    """Skipping the account creates the entry; data and options are kept apart."""
    result = await _start(hass)
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["x_account", "finish"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "finish"}
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Example ISP"
    assert result["data"] == {
        "isp_name": "Example ISP",
        "isp_handle": "ExampleISPHelp",
        "contract_maximum_download": 100.0,
        "contract_maximum_upload": 40.0,
    }
    assert isinstance(result["data"]["contract_maximum_download"], float)
    assert result["options"] == DEFAULT_OPTIONS | {
        "min_download": 30.0,
        "min_upload": 10.0,
        "max_ping": 100.0,
    }
    assert isinstance(result["options"]["min_download"], float)
    assert isinstance(result["options"]["scan_interval"], int)
    assert result["result"].unique_id == "default"


async def test_only_what_is_required(hass: HomeAssistant) -> None:
    """Handle, plan and source address may stay empty; they are then not stored."""
    result = await _start(
        hass,
        isp_handle=None,
        contract_maximum_download=None,
        contract_maximum_upload=None,
        isp_name=" Acme ",
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "finish"}
    )
    assert result["data"] == {"isp_name": "Acme"}
    assert result["title"] == "Acme"


async def test_with_an_x_account(hass: HomeAssistant, fake_x_api: FakeXApi) -> None:
    """Keys are checked live and trimmed; the account is named in the title."""
    result = await _start(hass, source_address=" FD00:0:0::10 ")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "x_account"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {key: f"  {value}\n" for key, value in KEYS.items()}
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"Example ISP (@{ACCOUNT_USERNAME})"
    assert result["data"] == {
        "isp_name": "Example ISP",
        "isp_handle": "ExampleISPHelp",
        "contract_maximum_download": 100.0,
        "contract_maximum_upload": 40.0,
        "source_address": "fd00::10",
        "api_key": TEST_CREDENTIALS.api_key,
        "api_secret": TEST_CREDENTIALS.api_secret,
        "access_token": TEST_CREDENTIALS.access_token,
        "access_token_secret": TEST_CREDENTIALS.access_token_secret,
        "x_username": ACCOUNT_USERNAME,
        "x_user_id": ACCOUNT_ID,
    }
    assert result["result"].unique_id == "fd00::10"
    # X saw the trimmed keys: the signature made with them was valid.
    assert [request.signature_valid for request in fake_x_api.requests] == [True]


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"isp_handle": "not a handle!"}, {"isp_handle": "invalid_handle"}),
        ({"isp_handle": "@"}, {"isp_handle": "invalid_handle"}),
        ({"isp_handle": "@sixteen_letters1"}, {"isp_handle": "invalid_handle"}),
        ({"isp_name": "   "}, {"isp_name": "empty_name"}),
        ({"min_download": 150}, {"min_download": "download_above_plan"}),
        ({"min_upload": 40.5}, {"min_upload": "upload_above_plan"}),
        ({"max_ping": "nan"}, {"max_ping": "not_a_number"}),
        (
            {"contract_normally_available_download": 120},
            {"contract_normally_available_download": "download_contract_order"},
        ),
        (
            {"contract_minimum_upload": 41},
            {"contract_minimum_upload": "upload_contract_order"},
        ),
        (
            {"contract_minimum_upload": 30, "contract_normally_available_upload": 20},
            {"contract_minimum_upload": "upload_contract_order"},
        ),
        ({"source_address": "not-an-ip"}, {"source_address": "invalid_source_address"}),
        ({"source_address": "192.168.1"}, {"source_address": "invalid_source_address"}),
        ({"source_address": "0.0.0.0"}, {"source_address": "invalid_source_address"}),
        ({"source_address": "127.0.0.1"}, {"source_address": "invalid_source_address"}),
        ({"source_address": "fe80::1"}, {"source_address": "invalid_source_address"}),
        (
            {"source_address": "255.255.255.255"},
            {"source_address": "invalid_source_address"},
        ),
        ({"source_address": "240.0.0.1"}, {"source_address": "invalid_source_address"}),
    ],
)
async def test_bad_connection_input(
    hass: HomeAssistant, changes: dict[str, Any], errors: dict[str, str]
) -> None:
    """Each mistake gets a translated error on its field; what was typed stays."""
    result = await _start(hass, **changes)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == errors
    typed = CONNECTION | changes
    assert _suggested(result, "isp_name") == typed["isp_name"]
    assert _suggested(result, "isp_handle") == typed["isp_handle"]

    # Corrected, the same form goes on.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], CONNECTION
    )
    assert result["type"] is FlowResultType.MENU


async def test_minimum_above_plan_names_the_plan(hass: HomeAssistant) -> None:
    """The error says which speed the plan promises, so the user sees the limit."""
    result = await _start(
        hass,
        contract_maximum_download=250,
        min_download=300,
        contract_maximum_upload=None,
    )
    assert result["errors"] == {"min_download": "download_above_plan"}
    assert result["description_placeholders"] == {
        "contract_maximum_download": "250",
        "contract_maximum_upload": "",
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"contract_maximum_download": 0},
        {"min_download": 0},
        {"contract_maximum_upload": 10_000.5},
        {"min_upload": -5},
        {"max_ping": 0},
        {"max_ping": 20_000},
        {"min_download": "fast"},
    ],
)
async def test_numbers_outside_their_range(
    hass: HomeAssistant, changes: dict[str, Any]
) -> None:
    """The number selectors refuse what lies outside NUMBER_RANGES; the form stays."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    with pytest.raises(InvalidData) as raised:
        await hass.config_entries.flow.async_configure(
            result["flow_id"], CONNECTION | changes
        )
    assert set(raised.value.schema_errors) == set(changes)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], CONNECTION
    )
    assert result["type"] is FlowResultType.MENU


@pytest.mark.parametrize(
    ("existing", "typed"),
    [("default", None), ("192.168.2.10", "192.168.2.10"), ("fd00::10", "FD00::0:10")],
)
async def test_same_uplink_twice(
    hass: HomeAssistant, existing: str, typed: str | None
) -> None:
    """An uplink is watched once, however its address is written."""
    make_entry(unique_id=existing).add_to_hass(hass)
    result = await _start(hass, source_address=typed)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_another_uplink_beside_the_default(hass: HomeAssistant) -> None:
    """A second uplink, named by its source address, is a second entry."""
    make_entry().add_to_hass(hass)
    result = await _start(hass, source_address="192.168.2.10")
    assert result["type"] is FlowResultType.MENU


async def test_uplink_added_while_the_keys_were_typed(hass: HomeAssistant) -> None:
    """The entry is not created twice when the uplink appeared meanwhile."""
    result = await _start(hass)
    make_entry().add_to_hass(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "finish"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_two_flows_for_one_uplink(hass: HomeAssistant) -> None:
    """A second flow for an uplink already being set up stops."""
    await _start(hass)
    result = await _start(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_in_progress"


async def test_over_http_as_the_ui_does(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    """The forms serialise for the frontend; text in a number box is a field error."""
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    response = await client.post(
        "/api/config/config_entries/flow", json={"handler": DOMAIN}
    )
    assert response.status == 200
    form = await response.json()
    fields = {field["name"]: field for field in form["data_schema"]}
    assert fields["max_ping"]["selector"]["number"]["max"] == 10_000
    assert fields["isp_name"]["required"] is True

    # What the selectors refuse comes back on its field, for the form to show.
    response = await client.post(
        f"/api/config/config_entries/flow/{form['flow_id']}",
        json=CONNECTION | {"min_download": "fast", "max_ping": 0},
    )
    assert response.status == 400
    assert set((await response.json())["errors"]) == {"min_download", "max_ping"}

    response = await client.post(
        f"/api/config/config_entries/flow/{form['flow_id']}", json=CONNECTION
    )
    menu = await response.json()
    assert menu["type"] == "menu"
    response = await client.post(
        f"/api/config/config_entries/flow/{form['flow_id']}",
        json={"next_step_id": "x_account"},
    )
    form = await response.json()
    assert [field["name"] for field in form["data_schema"]] == list(KEYS)
    assert all(
        field["selector"]["text"]["type"] == "password" for field in form["data_schema"]
    )


# -- the X account ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("401", "invalid_auth"),
        ("429", "rate_limited"),
        ("500", "cannot_connect"),
        ("503", "cannot_connect"),
        ("reset", "cannot_connect"),
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
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    # What was typed is still there, to correct rather than type again.
    assert {key: _suggested(result, key) for key in KEYS} == KEYS

    result = await hass.config_entries.flow.async_configure(flow_id, KEYS)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["x_user_id"] == ACCOUNT_ID


async def test_wrong_secret(hass: HomeAssistant, fake_x_api: FakeXApi) -> None:
    """A wrong secret makes a signature X refuses."""
    flow_id = await _to_keys(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, KEYS | {"api_secret": "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert fake_x_api.requests[-1].signature_valid is False


async def test_empty_keys(hass: HomeAssistant, fake_x_api: FakeXApi) -> None:
    """Some keys empty or blank: they are named on their fields, none sent to X."""
    flow_id = await _to_keys(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, KEYS | {"access_token": "   ", "api_secret": ""}
    )
    assert result["errors"] == {"access_token": "empty_key", "api_secret": "empty_key"}
    assert _suggested(result, "api_key") == KEYS["api_key"]
    assert fake_x_api.requests == []


async def test_back_to_finish_without_an_account(
    hass: HomeAssistant, fake_x_api: FakeXApi
) -> None:
    """After a failed check, sending the form empty finishes without an account."""
    flow_id = await _to_keys(hass)
    fake_x_api.fail_next("401")
    result = await hass.config_entries.flow.async_configure(flow_id, KEYS)
    assert result["errors"] == {"base": "invalid_auth"}
    # Every key is optional in the form, so the frontend lets it be sent empty.
    assert not any(
        isinstance(marker, probatio.Required) for marker in result["data_schema"].schema
    )
    result = await hass.config_entries.flow.async_configure(
        flow_id, dict.fromkeys(KEYS, "  ")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Example ISP"
    assert "api_key" not in result["data"]
    assert len(fake_x_api.requests) == 1


@pytest.mark.parametrize(
    ("access_level", "error"),
    [("read", "read_only_app"), ("read-write-directmessages", None)],
)
async def test_access_level(
    hass: HomeAssistant, fake_x_api: FakeXApi, access_level: str, error: str | None
) -> None:
    """Keys of an app that may only read are refused with the fix in the text."""
    fake_x_api.access_level = access_level
    flow_id = await _to_keys(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, KEYS)
    if error is None:
        assert result["type"] is FlowResultType.CREATE_ENTRY
    else:
        assert result["errors"] == {"base": error}


async def test_x_unreachable(hass: HomeAssistant, fake_x_api: FakeXApi) -> None:
    """No connection to X: cannot_connect."""
    flow_id = await _to_keys(hass)
    fake_x_api.stop()
    result = await hass.config_entries.flow.async_configure(flow_id, KEYS)
    assert result["errors"] == {"base": "cannot_connect"}


class _ListBodyHandler(QuietHandler):
    """Answers every request with a 401 whose JSON body is a list, not an object."""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        body = b"[]"
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True


class _GarbledX(LoopbackServer):
    handler = _ListBodyHandler


@pytest.fixture
def garbled_x(monkeypatch: pytest.MonkeyPatch, socket_enabled: None) -> Iterator[None]:
    """An X API that refuses with a JSON list instead of its usual error body."""
    server = _GarbledX()
    server.start()
    monkeypatch.setattr(x_client, "X_API_ORIGIN", f"http://127.0.0.1:{server.port}")
    yield
    server.stop()


@pytest.mark.usefixtures("garbled_x")
async def test_answer_nobody_expected(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal in a shape X never sends still reads as refused keys; none logged."""
    caplog.set_level(logging.DEBUG)
    flow_id = await _to_keys(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, KEYS)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    for secret in KEYS.values():
        assert secret not in caplog.text


# -- reconfigure ---------------------------------------------------------------------


async def test_reconfigure(hass: HomeAssistant, setups: AsyncMock) -> None:
    """Name and handle change; the plan and the account stay as they are."""
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    assert _suggested(result, "isp_handle") == "ExampleISPHelp"
    # The plan is edited beside the minimums, in the options.
    assert set(_fields(result["data_schema"])) == {
        "isp_name",
        "isp_handle",
        "source_address",
    }

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"isp_name": "New ISP", "isp_handle": "new isp"}
    )
    assert result["errors"] == {"isp_handle": "invalid_handle"}
    assert _suggested(result, "isp_handle") == "new isp"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"isp_name": "New ISP", "isp_handle": "@NewISP"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.title == f"New ISP (@{ACCOUNT_USERNAME})"
    assert entry.data == {
        "isp_name": "New ISP",
        "isp_handle": "NewISP",
        "contract_maximum_download": 100.0,
        "contract_maximum_upload": 40.0,
        **X_ACCOUNT_DATA,
    }
    assert entry.options == ENTRY_OPTIONS
    assert entry.unique_id == "default"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert len(setups.mock_calls) == 1


async def test_reconfigure_source_address(hass: HomeAssistant) -> None:
    """A new local address keeps the entry and moves its unique id, if free."""
    entry = make_entry(
        unique_id="192.168.2.10", data={"source_address": "192.168.2.10"}
    )
    entry.add_to_hass(hass)
    make_entry(
        unique_id="192.168.3.10", data={"source_address": "192.168.3.10"}
    ).add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert _suggested(result, "source_address") == "192.168.2.10"

    changes = {"isp_name": "Example ISP", "source_address": "192.168.2.99"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], changes | {"source_address": "::1"}
    )
    assert result["errors"] == {"source_address": "invalid_source_address"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], changes)
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == "192.168.2.99"
    assert entry.data["source_address"] == "192.168.2.99"

    # The address of the other entry's uplink is taken.
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], changes | {"source_address": "192.168.3.10"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"source_address": "source_address_in_use"}
    assert entry.unique_id == "192.168.2.99"

    # Left empty: the default route, which no other entry watches.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"isp_name": "Example ISP"}
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == "default"
    assert "source_address" not in entry.data


async def test_reconfigure_onto_the_default_route_when_taken(
    hass: HomeAssistant,
) -> None:
    """The default route watched by another entry cannot be taken over."""
    make_entry().add_to_hass(hass)
    entry = make_entry(
        unique_id="192.168.2.10", data={"source_address": "192.168.2.10"}
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"isp_name": "Example ISP", "source_address": "nonsense"}
    )
    assert result["errors"] == {"source_address": "invalid_source_address"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"isp_name": "Example ISP"}
    )
    assert result["errors"] == {"source_address": "source_address_in_use"}
    assert entry.unique_id == "192.168.2.10"


# -- reauth ---------------------------------------------------------------------------


async def test_reauth(
    hass: HomeAssistant, fake_x_api: FakeXApi, setups: AsyncMock
) -> None:
    """New keys for the same account are stored; the title follows a renamed account."""
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry,
        title="Example ISP (@old_name)",
        data=entry.data
        | {"api_key": "expired", "access_token": "expired", "x_username": "old_name"},
    )
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["username"] == "old_name"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {key: f" {value} " for key, value in KEYS.items()}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data == {
        "isp_name": "Example ISP",
        "isp_handle": "ExampleISPHelp",
        "contract_maximum_download": 100.0,
        "contract_maximum_upload": 40.0,
        **X_ACCOUNT_DATA,
    }
    assert entry.title == f"Example ISP (@{ACCOUNT_USERNAME})"
    await hass.async_block_till_done()
    assert len(setups.mock_calls) == 1


async def test_reauth_with_another_account(
    hass: HomeAssistant, fake_x_api: FakeXApi
) -> None:
    """Keys of a different account are refused; nothing is changed."""
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, data=entry.data | {"x_user_id": "999"}
    )
    before = dict(entry.data)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], KEYS)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert ACCOUNT_ID != "999"
    assert entry.data == before


async def test_reauth_errors_keep_the_form(
    hass: HomeAssistant, fake_x_api: FakeXApi
) -> None:
    """A failed check keeps the form open until the keys work."""
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    flow_id = result["flow_id"]

    result = await hass.config_entries.flow.async_configure(
        flow_id, KEYS | {"api_key": " "}
    )
    assert result["errors"] == {"api_key": "empty_key"}
    fake_x_api.fail_next("401")
    result = await hass.config_entries.flow.async_configure(flow_id, KEYS)
    assert result["errors"] == {"base": "invalid_auth"}
    fake_x_api.access_level = "read"
    result = await hass.config_entries.flow.async_configure(flow_id, KEYS)
    assert result["errors"] == {"base": "read_only_app"}
    fake_x_api.access_level = "read-write"
    result = await hass.config_entries.flow.async_configure(flow_id, KEYS)
    assert result["reason"] == "reauth_successful"


# -- options --------------------------------------------------------------------------


async def _options(hass: HomeAssistant, entry: Any, step: str) -> dict[str, Any]:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.MENU
    return dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"], {"next_step_id": step}
        )
    )


def _server_choices(result: Any) -> list[tuple[str, str]]:
    _, selector = _field(result, "server_id")
    return [(option["value"], option["label"]) for option in selector.config["options"]]


@pytest.mark.parametrize(
    ("with_x_account", "menu"),
    [
        (False, ["settings", "add_x_account"]),
        (True, ["settings", "replace_x_account", "remove_x_account"]),
    ],
)
async def test_options_menu(
    hass: HomeAssistant, with_x_account: bool, menu: list[str]
) -> None:
    """The menu offers what fits the account there is."""
    entry = make_entry(with_x_account=with_x_account)
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["menu_options"] == menu


@pytest.mark.parametrize(
    ("with_x_account", "sections"),
    [
        (False, ["testing", "limits", "traffic"]),
        (True, ["testing", "limits", "traffic", "posting"]),
    ],
)
async def test_options_sections(
    hass: HomeAssistant,
    speedtest_route: FakeSpeedtest,
    with_x_account: bool,
    sections: list[str],
) -> None:
    """Testing, limits with the plan, and posting only when posting can happen."""
    entry = make_entry(with_x_account=with_x_account, options=SETTINGS)
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    assert _sections(result) == {
        name: LIMITS_FIELDS
        if name == "limits"
        else TRAFFIC_FIELDS
        if name == "traffic"
        else list(SETTINGS_FORM[name])
        for name in sections
    }
    # The plan is shown where the minimums are edited.
    assert _suggested(result, "contract_maximum_download") == 100.0
    assert _suggested(result, "min_download") == 40
    for key in ("scan_interval", "confirm_delay", "tweet_cooldown"):
        if key in _fields(result["data_schema"]):
            _, box = _field(result, key)
            assert box.config["step"] == 1
            assert box.config["max"] == NUMBER_RANGES[key].maximum


async def test_options_with_server_list(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest, setups: AsyncMock
) -> None:
    """The server picker lists speedtest.net's servers; options are stored, reloaded."""
    entry = make_entry(
        with_x_account=True, options={"server_id": "4244", "scan_interval": 120}
    )
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    assert result["step_id"] == "settings"
    assert result["errors"] == {}
    choices = _server_choices(result)
    assert [value for value, _ in choices] == [
        "best",
        *(str(server_id) for server_id in SERVER_IDS),
    ]
    assert choices[1][1].startswith("Example Hosting 0, Town 0 (Netherlands, ")
    assert _suggested(result, "server_id") == "4244"
    assert _suggested(result, "scan_interval") == 120
    lists_fetched = speedtest_route.count("speedtest-servers")
    assert lists_fetched > 0

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _settings(limits={"min_download": 101})
    )
    assert result["errors"] == {"limits": "download_above_plan"}
    # Shown again with the list it already has.
    assert len(_server_choices(result)) == 1 + len(SERVER_IDS)
    assert speedtest_route.count("speedtest-servers") == lists_fetched

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _settings(testing={"server_id": str(SERVER_IDS[1])})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == SETTINGS | {"server_id": str(SERVER_IDS[1])}
    assert isinstance(entry.options["scan_interval"], int)
    assert isinstance(entry.options["min_download"], float)
    await hass.async_block_till_done()
    assert len(setups.mock_calls) == 1


async def test_limits_on_jitter_and_latency_under_load(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest
) -> None:
    """Off in a new entry; set in the limits section; 0 turns a limit off again."""
    speedtest_route.stop()
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    assert entry.options["max_jitter"] == entry.options["max_loaded_latency"] == 0
    thresholds = IspWatchSettings.from_entry(entry).thresholds
    assert thresholds.max_jitter_ms is thresholds.max_loaded_latency_ms is None

    result = await _options(hass, entry, "settings")
    assert _suggested(result, "max_jitter") == 0
    _, box = _field(result, "max_loaded_latency")
    assert (box.config["min"], box.config["unit_of_measurement"]) == (0, "ms")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        _settings(limits={"max_jitter": 12.5, "max_loaded_latency": 0}),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["max_jitter"] == 12.5
    thresholds = IspWatchSettings.from_entry(entry).thresholds
    assert thresholds.max_jitter_ms == 12.5
    assert thresholds.max_loaded_latency_ms is None


def _settings(**changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The settings form with some fields of some sections changed."""
    return {
        name: fields | changes.get(name, {}) for name, fields in SETTINGS_FORM.items()
    }


async def test_server_picker_shows_names_not_ids(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest
) -> None:
    """A list to pick from, its first choice translated, so the label is shown."""
    speedtest_route.stop()
    entry = make_entry(options={"server_id": "best"})
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    _, picker = _field(result, "server_id")
    assert picker.config["translation_key"] == "server"
    # A field that takes any text shows the raw value instead of the label.
    assert picker.config["custom_value"] is False
    assert TRANSLATIONS["selector"]["server"]["options"] == {"best": "Best by latency"}


async def test_every_field_of_the_sections_is_explained(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest
) -> None:
    """Each section has a name, and each field in it a label and a description."""
    speedtest_route.stop()
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    texts = TRANSLATIONS["options"]["step"]["settings"]["sections"]
    for name, fields in _sections(result).items():
        assert texts[name]["name"]
        assert set(texts[name]["data"]) == set(fields)
        assert set(texts[name]["data_description"]) == set(fields)


async def test_lower_plan_and_minimums_in_one_form(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest, setups: AsyncMock
) -> None:
    """A cheaper plan: both go down in the same form, no round trip."""
    speedtest_route.stop()
    entry = make_entry(with_x_account=True, options=SETTINGS)
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    cheaper = {"contract_maximum_download": 30, "contract_maximum_upload": 5}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _settings(limits=cheaper)
    )
    assert result["errors"] == {
        "limits": "minimums_above_plan",
        "base": "server_list_unavailable",
    }
    # The error names the plan just typed.
    assert result["description_placeholders"] == {
        "contract_maximum_download": "30",
        "contract_maximum_upload": "5",
    }
    assert _suggested(result, "contract_maximum_download") == 30

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        _settings(limits=cheaper | {"min_download": 25, "min_upload": 5}),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.data["contract_maximum_download"] == 30.0
    assert entry.data["contract_maximum_upload"] == 5.0
    assert entry.data["x_user_id"] == ACCOUNT_ID
    assert entry.options["min_download"] == 25.0
    assert "contract_maximum_download" not in entry.options


async def test_contract_speeds_in_the_user_step(hass: HomeAssistant) -> None:
    """All three speeds per direction are stored; equal speeds are in order."""
    contract = {
        "contract_maximum_download": 100,
        "contract_normally_available_download": 80,
        "contract_minimum_download": 80,
        "contract_maximum_upload": 40,
        "contract_normally_available_upload": 30,
        "contract_minimum_upload": 10,
    }
    result = await _start(hass, **contract)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "finish"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert {key: result["data"][key] for key in contract} == contract
    # The user's own minimums stay options, apart from the contract.
    assert "contract_minimum_download" not in result["options"]


async def test_contract_out_of_order_in_the_options(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest
) -> None:
    """A normally available speed above the maximum is refused; nothing is stored."""
    speedtest_route.stop()
    entry = make_entry(with_x_account=True, options=SETTINGS)
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        _settings(limits={"contract_normally_available_upload": 45}),
    )
    assert result["errors"]["limits"] == "upload_contract_order"
    assert "contract_normally_available_upload" not in entry.data


async def test_use_the_contract_minimum(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest
) -> None:
    """The shortcut copies the contract's minimums into the user's own, once."""
    speedtest_route.stop()
    entry = make_entry(with_x_account=True, options=SETTINGS)
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    contract = {"contract_minimum_download": 60, "contract_minimum_upload": 15}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        _settings(limits=contract | {"use_contract_minimum": True}),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["min_download"] == 60
    assert entry.options["min_upload"] == 15
    assert entry.data["contract_minimum_download"] == 60
    assert "use_contract_minimum" not in entry.options


async def test_use_the_contract_minimum_without_one(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest
) -> None:
    """Without a contract minimum the shortcut says so instead of doing nothing."""
    speedtest_route.stop()
    entry = make_entry(with_x_account=True, options=SETTINGS)
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _settings(limits={"use_contract_minimum": True})
    )
    assert result["errors"]["limits"] == "no_contract_minimum"
    assert entry.options["min_download"] == SETTINGS["min_download"]


async def test_plan_removed_in_the_options(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest, setups: AsyncMock
) -> None:
    """A plan left empty is forgotten; then any minimum in range is accepted."""
    speedtest_route.stop()
    entry = make_entry(options=SETTINGS)
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    limits = {
        key: value for key, value in LIMITS.items() if not key.startswith("contract_")
    }
    form = {
        "testing": TESTING,
        "limits": limits | {"min_download": 5000, "min_upload": 2000},
        "traffic": TRAFFIC,
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.data == {"isp_name": "Example ISP", "isp_handle": "ExampleISPHelp"}
    assert entry.options["min_download"] == 5000.0
    # Without an account the posting rules were not shown, and are kept.
    assert entry.options["tweet_cooldown"] == SETTINGS["tweet_cooldown"]


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"testing": {"scan_interval": 90.5}}, {"testing": "whole_number"}),
        ({"limits": {"evaluation_window": 2.5}}, {"limits": "whole_number"}),
        ({"limits": {"max_ping": "nan"}}, {"limits": "not_a_number"}),
        ({"limits": {"min_upload": 41}}, {"limits": "upload_above_plan"}),
    ],
)
async def test_options_bad_input(
    hass: HomeAssistant,
    speedtest_route: FakeSpeedtest,
    changes: dict[str, dict[str, Any]],
    errors: dict[str, str],
) -> None:
    """What the selectors let through gets a translated error; nothing is stored."""
    speedtest_route.stop()
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _settings(**changes)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors | {"base": "server_list_unavailable"}
    assert entry.options == ENTRY_OPTIONS


@pytest.mark.parametrize(
    "changes",
    [
        {"testing": {"server_id": "nearest"}},
        {"testing": {"scan_interval": 5}},
        {"limits": {"evaluation_window": 0}},
        {"posting": {"tweet_daily_cap": 51}},
        {"testing": {"monthly_data_budget": "a lot"}},
        {"limits": {"max_ping": 10_001}},
        {"limits": {"max_jitter": -1}},
        {"limits": {"max_loaded_latency": 10_001}},
        {"limits": {"min_upload": 0}},
    ],
)
async def test_options_outside_their_range(
    hass: HomeAssistant,
    speedtest_route: FakeSpeedtest,
    changes: dict[str, dict[str, Any]],
) -> None:
    """The selectors refuse values outside NUMBER_RANGES and servers not offered."""
    speedtest_route.stop()
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"], _settings(**changes)
        )
    assert entry.options == ENTRY_OPTIONS


async def test_options_without_server_list(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest
) -> None:
    """When speedtest.net cannot be reached, the form says so and still saves."""
    speedtest_route.stop()
    entry = make_entry(with_x_account=True, options={"server_id": "12345"})
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "settings")
    assert result["errors"] == {"base": "server_list_unavailable"}
    # The server chosen before stays choosable.
    assert [value for value, _ in _server_choices(result)] == ["best", "12345"]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _settings(testing={"server_id": "12345"})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["server_id"] == "12345"


async def test_options_when_the_server_list_child_cannot_start(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest
) -> None:
    """The operating system refusing a new process does not break the form."""
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    # speedtest.net would answer; the child that asks it cannot be started.
    with patch(
        "asyncio.create_subprocess_exec",
        side_effect=OSError(errno.EMFILE, "Too many open files"),
    ):
        result = await _options(hass, entry, "settings")
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "server_list_unavailable"}
    assert speedtest_route.count("speedtest-servers") == 0
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _settings()
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == SETTINGS


async def test_options_over_http(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    speedtest_route: FakeSpeedtest,
) -> None:
    """The settings form serialises for the frontend, in sections, with servers."""
    assert await async_setup_component(hass, "config", {})
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    client = await hass_client()
    response = await client.post(
        "/api/config/config_entries/options/flow", json={"handler": entry.entry_id}
    )
    menu = await response.json()
    response = await client.post(
        f"/api/config/config_entries/options/flow/{menu['flow_id']}",
        json={"next_step_id": "settings"},
    )
    assert response.status == 200
    form = await response.json()
    sections = {field["name"]: field for field in form["data_schema"]}
    assert list(sections) == list(SETTINGS_FORM)
    assert all(field["type"] == "expandable" for field in sections.values())
    limits = {field["name"]: field for field in sections["limits"]["schema"]}
    assert list(limits) == LIMITS_FIELDS
    assert limits["min_download"]["description"] == {"suggested_value": 30.0}
    assert limits["contract_maximum_download"]["description"] == {
        "suggested_value": 100.0
    }
    testing = {field["name"]: field for field in sections["testing"]["schema"]}
    select = testing["server_id"]["selector"]["select"]
    assert select["translation_key"] == "server"
    assert [option["value"] for option in select["options"]] == [
        "best",
        *(str(server_id) for server_id in SERVER_IDS),
    ]

    response = await client.post(
        f"/api/config/config_entries/options/flow/{menu['flow_id']}",
        json=_settings(testing={"scan_interval": 5}),
    )
    assert response.status == 400


@pytest.mark.parametrize(
    "huge",
    [
        # A JSON number too large for any range; JSON parsers read it as a float.
        10**30,
        # Digits beyond what a float holds, sent as text as a form may send them.
        "1" + "0" * 400,
    ],
)
async def test_options_over_http_huge_number(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    speedtest_route: FakeSpeedtest,
    caplog: pytest.LogCaptureFixture,
    huge: int | str,
) -> None:
    """A huge number is an error on its field, never an OverflowError."""
    speedtest_route.stop()
    assert await async_setup_component(hass, "config", {})
    entry = make_entry(with_x_account=True)
    entry.add_to_hass(hass)
    client = await hass_client()
    response = await client.post(
        "/api/config/config_entries/options/flow", json={"handler": entry.entry_id}
    )
    menu = await response.json()
    await client.post(
        f"/api/config/config_entries/options/flow/{menu['flow_id']}",
        json={"next_step_id": "settings"},
    )
    response = await client.post(
        f"/api/config/config_entries/options/flow/{menu['flow_id']}",
        json=_settings(posting={"tweet_daily_cap": huge}),
    )
    assert response.status == 400
    answer = await response.json()
    assert "tweet_daily_cap" in json.dumps(answer["errors"])
    assert "Overflow" not in caplog.text
    assert entry.options == ENTRY_OPTIONS


async def test_options_add_replace_and_remove_the_account(
    hass: HomeAssistant, fake_x_api: FakeXApi, setups: AsyncMock
) -> None:
    """The X account can be added later, replaced, and removed; each reloads."""
    entry = make_entry(options=SETTINGS)
    entry.add_to_hass(hass)
    result = await _options(hass, entry, "add_x_account")
    assert result["step_id"] == "x_account"
    fake_x_api.fail_next("401")
    result = await hass.config_entries.options.async_configure(result["flow_id"], KEYS)
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {key: f"{value}\t" for key, value in KEYS.items()}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.data == {
        "isp_name": "Example ISP",
        "isp_handle": "ExampleISPHelp",
        "contract_maximum_download": 100.0,
        "contract_maximum_upload": 40.0,
        **X_ACCOUNT_DATA,
    }
    assert entry.title == f"Example ISP (@{ACCOUNT_USERNAME})"
    assert entry.options == SETTINGS
    await hass.async_block_till_done()
    assert len(setups.mock_calls) == 1

    result = await _options(hass, entry, "replace_x_account")
    fake_x_api.access_level = "read"
    result = await hass.config_entries.options.async_configure(result["flow_id"], KEYS)
    assert result["errors"] == {"base": "read_only_app"}
    fake_x_api.access_level = "read-write"
    result = await hass.config_entries.options.async_configure(result["flow_id"], KEYS)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert len(setups.mock_calls) == 2

    result = await _options(hass, entry, "remove_x_account")
    assert result["step_id"] == "remove_x_account"
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.data == {
        "isp_name": "Example ISP",
        "isp_handle": "ExampleISPHelp",
        "contract_maximum_download": 100.0,
        "contract_maximum_upload": 40.0,
    }
    assert entry.title == "Example ISP"
    assert entry.options == SETTINGS
    await hass.async_block_till_done()
    assert len(setups.mock_calls) == 3
    assert entry.state is ConfigEntryState.LOADED


async def test_router_sensors_are_chosen_and_cleared(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest, setups: AsyncMock
) -> None:
    """Data-rate and data-size sensors are offered; an emptied field forgets one."""
    speedtest_route.stop()
    entry = make_entry(with_x_account=True, options=SETTINGS)
    entry.add_to_hass(hass)
    router = {
        "wan_download_sensor": "sensor.router_kib_s_received",
        "wan_upload_sensor": "sensor.router_kib_s_sent",
    }
    result = await _options(hass, entry, "settings")
    for key in router:
        _, picker = _field(result, key)
        (wanted,) = picker.config["filter"]
        assert set(wanted["domain"]) == {"sensor"}
        assert set(wanted["device_class"]) == {"data_rate", "data_size"}
        assert _suggested(result, key) is None
    assert _suggested(result, "busy_share") == TRAFFIC["busy_share"]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _settings(traffic=router)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == SETTINGS | router

    result = await _options(hass, entry, "settings")
    assert _suggested(result, "wan_download_sensor") == router["wan_download_sensor"]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _settings()
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == SETTINGS
