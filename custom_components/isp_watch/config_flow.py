"""Set up ISP Watch from the UI: the connection, the X account, options, reauth.

Where each value is stored:

- Entry data: what describes the connection and the contract (provider, handle, the
  contract's speeds, source address) and the X account that posts.
- Options: what the user tunes (every key of OPTION_DEFAULTS, always all of them):
  limits, schedule, server, judging and posting rules.

The contract's speeds stay in the entry data, but the options show them beside the
minimums the contract's maximum bounds, so both can be lowered in one form; that form
writes the contract back to the data.
Number ranges come from NUMBER_RANGES and are enforced by the number selectors; the
code here checks only what involves more than one field.
"""

from __future__ import annotations

from collections.abc import Mapping
import ipaddress
import logging
import math
import re
from typing import Any, override

import probatio

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
    OptionsFlowWithReload,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    EntitySelector,
    EntitySelectorConfig,
    EntityWithDeviceFilterSelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .compliance import ContractField, contract_error
from .const import (
    CONF_ACCESS_TOKEN,
    CONF_ACCESS_TOKEN_SECRET,
    CONF_API_KEY,
    CONF_API_SECRET,
    CONF_BUSY_SHARE,
    CONF_CONFIRM_DELAY,
    CONF_CONTRACT_MAXIMUM_DOWNLOAD,
    CONF_CONTRACT_MAXIMUM_UPLOAD,
    CONF_DRY_RUN,
    CONF_EVALUATION_WINDOW,
    CONF_ISP_HANDLE,
    CONF_ISP_NAME,
    CONF_MAX_CONFIRM_TESTS,
    CONF_MAX_DEFERRALS,
    CONF_MAX_JITTER,
    CONF_MAX_LOADED_LATENCY,
    CONF_MAX_PING,
    CONF_MIN_DOWNLOAD,
    CONF_MIN_UPLOAD,
    CONF_MONTHLY_DATA_BUDGET,
    CONF_OUTAGE_PROBE_INTERVAL,
    CONF_SCAN_INTERVAL,
    CONF_SERVER_ID,
    CONF_SOURCE_ADDRESS,
    CONF_TWEET_COOLDOWN,
    CONF_TWEET_DAILY_CAP,
    CONF_USE_CONTRACT_MINIMUM,
    CONF_WATCH_FAILURES,
    CONF_WATCH_INTERVAL,
    CONF_X_USER_ID,
    CONF_X_USERNAME,
    CONFIG_ENTRY_VERSION,
    CONTRACT_SPEED_KEYS,
    DEFAULT_SERVER_ID,
    DEFAULT_SOURCE_ID,
    DOMAIN,
    NUMBER_RANGES,
    OPTION_DEFAULTS,
    SPEEDTEST_REQUEST_TIMEOUT,
    WAN_SENSOR_KEYS,
    X_CREDENTIAL_KEYS,
)
from .data import CONTRACT_KEYS, contract_speeds
from .models import Direction, TestServer
from .speedtest_client import SpeedTestClient, SpeedTestSettings
from .x_client import VerifyError, XAccount, XClient, XCredentials

_LOGGER = logging.getLogger(__name__)

# An X handle: 1 to 15 letters, digits or underscores, typed with or without the @.
HANDLE = re.compile(r"@?([A-Za-z0-9_]{1,15})")
# Listing servers fetches two small documents; the form should not wait as long as a
# whole test may take.
SERVER_LIST_DEADLINE = 30.0
X_ACCOUNT_KEYS = (*X_CREDENTIAL_KEYS, CONF_X_USERNAME, CONF_X_USER_ID)
LIMIT_KEYS = (CONF_MIN_DOWNLOAD, CONF_MIN_UPLOAD, CONF_MAX_PING)

# The options form: one section each for when tests run, what counts as slow, and
# how often posts may go out (shown only with an X account).
SECTION_TESTING = "testing"
SECTION_LIMITS = "limits"
SECTION_POSTING = "posting"
SECTION_TRAFFIC = "traffic"
TESTING_KEYS = (
    CONF_SCAN_INTERVAL,
    CONF_SERVER_ID,
    CONF_CONFIRM_DELAY,
    CONF_MAX_CONFIRM_TESTS,
    CONF_OUTAGE_PROBE_INTERVAL,
    CONF_MONTHLY_DATA_BUDGET,
    CONF_WATCH_INTERVAL,
    CONF_WATCH_FAILURES,
)
# Off by default, so only in the options, not in the first form.
JUDGING_KEYS = (
    *LIMIT_KEYS,
    CONF_MAX_JITTER,
    CONF_MAX_LOADED_LATENCY,
    CONF_EVALUATION_WINDOW,
)
POSTING_KEYS = (CONF_TWEET_COOLDOWN, CONF_TWEET_DAILY_CAP, CONF_DRY_RUN)
# The line's other traffic: the router's WAN sensors, then when a test is busy.
TRAFFIC_KEYS = (*WAN_SENSOR_KEYS, CONF_BUSY_SHARE, CONF_MAX_DEFERRALS)
# A router's WAN throughput or its byte counter, whatever its integration.
WAN_SENSOR_SELECTOR = EntitySelector(
    EntitySelectorConfig(
        filter=[
            EntityWithDeviceFilterSelectorConfig(
                domain="sensor", device_class=["data_rate", "data_size"]
            )
        ]
    )
)


def _number(key: str) -> NumberSelector:
    """A number box with the range, step and unit of NUMBER_RANGES."""
    number_range = NUMBER_RANGES[key]
    config = NumberSelectorConfig(
        min=number_range.minimum,
        max=number_range.maximum,
        step=number_range.step if number_range.step is not None else "any",
        mode=NumberSelectorMode.BOX,
    )
    if number_range.unit:
        config["unit_of_measurement"] = number_range.unit
    return NumberSelector(config)


def _numbers(keys: tuple[str, ...], *, required: bool = True) -> dict[Any, Any]:
    marker = probatio.Required if required else probatio.Optional
    return {marker(key): _number(key) for key in keys}


def _check_numbers(
    values: Mapping[str, Any], errors: dict[str, str], where: str | None = None
) -> None:
    """What the number selectors let through: NaN, and fractions in whole numbers.

    The selectors check the range, which NaN never fails, but not the step. The
    error goes on the field, or on `where` (a section) when given.
    """
    for key, value in values.items():
        if key not in NUMBER_RANGES:
            continue
        if math.isnan(value):
            errors[where or key] = "not_a_number"
        elif NUMBER_RANGES[key].step == 1 and not float(value).is_integer():
            errors[where or key] = "whole_number"


def _whole(values: Mapping[str, Any]) -> dict[str, Any]:
    """Whole-number settings as int, as they are stored."""
    return {
        key: (
            int(value)
            if key in NUMBER_RANGES and NUMBER_RANGES[key].step == 1
            else value
        )
        for key, value in values.items()
    }


def _check_minimums(
    values: Mapping[str, Any], errors: dict[str, str], where: str | None = None
) -> None:
    """A minimum speed may not be higher than the plan promises, when there is one.

    The error goes on each minimum, or once on `where` (a section) when given.
    """
    download_plan = values.get(CONF_CONTRACT_MAXIMUM_DOWNLOAD)
    download = download_plan is not None and values[CONF_MIN_DOWNLOAD] > download_plan
    upload_plan = values.get(CONF_CONTRACT_MAXIMUM_UPLOAD)
    upload = upload_plan is not None and values[CONF_MIN_UPLOAD] > upload_plan
    if where is not None and download and upload:
        errors[where] = "minimums_above_plan"
        return
    if download:
        errors[where or CONF_MIN_DOWNLOAD] = "download_above_plan"
    if upload:
        errors[where or CONF_MIN_UPLOAD] = "upload_above_plan"


def _check_contract(
    values: Mapping[str, Any], errors: dict[str, str], where: str | None = None
) -> None:
    """The contract's speeds of a direction rise from minimum to maximum.

    The error goes on the speed out of order, or on `where` (a section) when given.
    """
    for direction in Direction:
        if field := contract_error(contract_speeds(values, direction)):
            errors[where or CONTRACT_KEYS[direction][field]] = (
                f"{direction.value}_contract_order"
            )


def _use_contract_minimum(limits: dict[str, Any], errors: dict[str, str]) -> None:
    """The shortcut: the contract's minimum speeds become the user's minimums."""
    if not limits.pop(CONF_USE_CONTRACT_MINIMUM, False):
        return
    found = False
    for direction, limit_key in (
        (Direction.DOWNLOAD, CONF_MIN_DOWNLOAD),
        (Direction.UPLOAD, CONF_MIN_UPLOAD),
    ):
        minimum_key = CONTRACT_KEYS[direction][ContractField.MINIMUM]
        if limits.get(minimum_key) is not None:
            limits[limit_key] = limits[minimum_key]
            found = True
    if not found:
        errors[SECTION_LIMITS] = "no_contract_minimum"


def _plan_placeholders(values: Mapping[str, Any]) -> dict[str, str]:
    """The contract's maximum speeds, for errors that name them."""
    return {
        key: f"{float(values[key]):g}" if values.get(key) is not None else ""
        for key in (CONF_CONTRACT_MAXIMUM_DOWNLOAD, CONF_CONTRACT_MAXIMUM_UPLOAD)
    }


def _read_provider(values: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """Provider name and handle as stored; an empty handle is left out."""
    provider: dict[str, Any] = {}
    if name := str(values.get(CONF_ISP_NAME) or "").strip():
        provider[CONF_ISP_NAME] = name
    else:
        errors[CONF_ISP_NAME] = "empty_name"
    if handle := str(values.get(CONF_ISP_HANDLE) or "").strip():
        if match := HANDLE.fullmatch(handle):
            provider[CONF_ISP_HANDLE] = match.group(1)
        else:
            errors[CONF_ISP_HANDLE] = "invalid_handle"
    return provider


def _read_source_address(
    values: Mapping[str, Any], errors: dict[str, str]
) -> str | None:
    """The normalised source address, or None for the default route."""
    if not (text := str(values.get(CONF_SOURCE_ADDRESS) or "").strip()):
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        errors[CONF_SOURCE_ADDRESS] = "invalid_source_address"
        return None
    # None of these can carry a test to the internet; 0.0.0.0 would also watch the
    # default route a second time under another name. Reserved covers 240.0.0.0/4,
    # the limited broadcast 255.255.255.255 among them.
    if (
        address.is_unspecified
        or address.is_loopback
        or address.is_multicast
        or address.is_link_local
        or address.is_reserved
    ):
        errors[CONF_SOURCE_ADDRESS] = "invalid_source_address"
        return None
    return str(address)


PROVIDER_SCHEMA: dict[Any, Any] = {
    probatio.Required(CONF_ISP_NAME): TextSelector(),
    probatio.Optional(CONF_ISP_HANDLE): TextSelector(),
}
SOURCE_SCHEMA: dict[Any, Any] = {probatio.Optional(CONF_SOURCE_ADDRESS): TextSelector()}
USER_SCHEMA = probatio.Schema(
    {
        **PROVIDER_SCHEMA,
        **_numbers(CONTRACT_SPEED_KEYS, required=False),
        **{
            probatio.Required(key, default=OPTION_DEFAULTS[key]): _number(key)
            for key in LIMIT_KEYS
        },
        **SOURCE_SCHEMA,
    }
)
RECONFIGURE_SCHEMA = probatio.Schema({**PROVIDER_SCHEMA, **SOURCE_SCHEMA})
# Optional, so that the form can be sent empty: the config flow then finishes without
# an account; elsewhere each empty key is named.
X_ACCOUNT_SCHEMA = probatio.Schema(
    {
        probatio.Optional(key): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD, autocomplete="off")
        )
        for key in X_CREDENTIAL_KEYS
    }
)


def _no_keys(user_input: Mapping[str, Any]) -> bool:
    return not any(str(user_input.get(key) or "").strip() for key in X_CREDENTIAL_KEYS)


def _verify(credentials: XCredentials) -> XAccount:
    """Ask X who the keys act for; blocking."""
    client = XClient(credentials)
    try:
        return client.verify()
    finally:
        client.close()


async def _async_check_account(
    hass: HomeAssistant, user_input: Mapping[str, Any], errors: dict[str, str]
) -> dict[str, Any] | None:
    """The account data to store, or None with the errors that say why not."""
    keys = {key: str(user_input.get(key) or "").strip() for key in X_CREDENTIAL_KEYS}
    for key, value in keys.items():
        if not value:
            errors[key] = "empty_key"
    if errors:
        return None
    credentials = XCredentials(**keys)
    try:
        account = await hass.async_add_executor_job(_verify, credentials)
    except VerifyError as error:
        # The detail is X's own words or an exception's class, never a key.
        _LOGGER.debug("X did not confirm the keys: %s", error)
        errors["base"] = error.reason
        return None
    except Exception:
        _LOGGER.exception("Unexpected error while checking the X keys")
        errors["base"] = "unknown"
        return None
    if not account.can_post:
        errors["base"] = "read_only_app"
        return None
    return {
        CONF_API_KEY: credentials.api_key,
        CONF_API_SECRET: credentials.api_secret,
        CONF_ACCESS_TOKEN: credentials.access_token,
        CONF_ACCESS_TOKEN_SECRET: credentials.access_token_secret,
        CONF_X_USERNAME: account.username,
        CONF_X_USER_ID: account.user_id,
    }


def _account_form(
    flow: ConfigFlow | OptionsFlow,
    step_id: str,
    user_input: Mapping[str, Any] | None,
    errors: dict[str, str],
    placeholders: Mapping[str, str] | None = None,
) -> ConfigFlowResult:
    """The keys form; after a failed check it keeps what was typed."""
    return flow.async_show_form(
        step_id=step_id,
        data_schema=flow.add_suggested_values_to_schema(X_ACCOUNT_SCHEMA, user_input),
        errors=errors,
        description_placeholders=placeholders,
    )


def entry_title(data: Mapping[str, Any]) -> str:
    """The provider's name, and the account that posts when there is one."""
    if username := data.get(CONF_X_USERNAME):
        return f"{data[CONF_ISP_NAME]} (@{username})"
    return str(data[CONF_ISP_NAME])


class IspWatchConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add an uplink to watch."""

    VERSION = CONFIG_ENTRY_VERSION

    def __init__(self) -> None:
        """Start with nothing entered."""
        self._data: dict[str, Any] = {}
        self._options: dict[str, Any] = {}

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: ConfigEntry[Any]) -> IspWatchOptionsFlow:
        """Options of an entry."""
        return IspWatchOptionsFlow()

    @override
    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Which connection, which provider, and the limits the user accepts."""
        errors: dict[str, str] = {}
        if user_input is not None:
            provider = _read_provider(user_input, errors)
            _check_numbers(user_input, errors)
            _check_contract(user_input, errors)
            _check_minimums(user_input, errors)
            source = _read_source_address(user_input, errors)
            if not errors:
                await self.async_set_unique_id(source or DEFAULT_SOURCE_ID)
                self._abort_if_unique_id_configured()
                contract = {
                    key: user_input[key]
                    for key in CONTRACT_SPEED_KEYS
                    if key in user_input
                }
                source_data = {CONF_SOURCE_ADDRESS: source} if source else {}
                self._data = provider | contract | source_data
                self._options = dict(OPTION_DEFAULTS) | {
                    key: user_input[key] for key in LIMIT_KEYS
                }
                return await self.async_step_x_account_choice()
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, user_input),
            errors=errors,
            description_placeholders=_plan_placeholders(user_input or {}),
        )

    async def async_step_x_account_choice(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Add the X account now, or later from the options."""
        return self.async_show_menu(
            step_id="x_account_choice", menu_options=["x_account", "finish"]
        )

    async def async_step_x_account(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The keys of the X app that posts, checked live; none to go on without."""
        errors: dict[str, str] = {}
        if user_input is not None:
            if _no_keys(user_input):
                return await self.async_step_finish()
            if account := await _async_check_account(self.hass, user_input, errors):
                self._data |= account
                return await self.async_step_finish()
        return _account_form(self, "x_account", user_input, errors)

    async def async_step_finish(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Create the entry."""
        # The uplink may have been added some other way while the keys were typed.
        self._abort_if_unique_id_configured()
        return self.async_create_entry(
            title=entry_title(self._data), data=self._data, options=self._options
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the provider's name and handle, or the source address.

        A changed source address is the same uplink reached from a new local address
        (a new DHCP lease, say), so the history stays; the unique id follows it. The
        plan is changed in the options, beside the minimums it bounds.
        """
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            provider = _read_provider(user_input, errors)
            source = _read_source_address(user_input, errors)
            unique_id = source or DEFAULT_SOURCE_ID
            other = self.hass.config_entries.async_entry_for_domain_unique_id(
                DOMAIN, unique_id
            )
            if (
                CONF_SOURCE_ADDRESS not in errors
                and other is not None
                and other.entry_id != entry.entry_id
            ):
                errors[CONF_SOURCE_ADDRESS] = "source_address_in_use"
            if not errors:
                # What this form holds is replaced, a field left empty removed; the
                # plan and the X account stay.
                data = {
                    key: value
                    for key, value in entry.data.items()
                    if key not in (CONF_ISP_NAME, CONF_ISP_HANDLE, CONF_SOURCE_ADDRESS)
                } | provider
                if source:
                    data[CONF_SOURCE_ADDRESS] = source
                return self.async_update_reload_and_abort(
                    entry,
                    unique_id=unique_id,
                    title=entry_title(data),
                    data=data,
                    reason="reconfigure_successful",
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                RECONFIGURE_SCHEMA, user_input or entry.data
            ),
            errors=errors,
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """X refused the keys: ask for them again."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """New keys for the same account; queued posts go out after the reload."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None and (
            account := await _async_check_account(self.hass, user_input, errors)
        ):
            # The unique id is the uplink, so the account is compared by its id.
            if account[CONF_X_USER_ID] != entry.data.get(CONF_X_USER_ID):
                return self.async_abort(reason="wrong_account")
            data = dict(entry.data) | account
            return self.async_update_reload_and_abort(
                entry,
                # The account may have been renamed since it was added.
                title=entry_title(data),
                data=data,
                reason="reauth_successful",
            )
        return _account_form(
            self,
            "reauth_confirm",
            user_input,
            errors,
            {"username": str(entry.data.get(CONF_X_USERNAME, ""))},
        )


class IspWatchOptionsFlow(OptionsFlowWithReload):
    """Testing, limits and posting, and the X account."""

    def __init__(self) -> None:
        """Nothing fetched yet."""
        # Fetched once per flow: a form shown again after an error reuses the list.
        self._servers: list[TestServer] | None = None

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """What to change."""
        return self.async_show_menu(
            step_id="init",
            menu_options=(
                ["settings", "replace_x_account", "remove_x_account"]
                if self._has_account
                else ["settings", "add_x_account"]
            ),
        )

    @property
    def _has_account(self) -> bool:
        return bool(self.config_entry.data.get(CONF_X_USER_ID))

    async def async_step_settings(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Testing, limits with the plan, and posting (with an X account)."""
        entry = self.config_entry
        errors: dict[str, str] = {}
        servers = await self._async_servers()
        if user_input is not None:
            for section_key, values in user_input.items():
                _check_numbers(values, errors, section_key)
            limits = user_input[SECTION_LIMITS] = dict(user_input[SECTION_LIMITS])
            _check_contract(limits, errors, SECTION_LIMITS)
            _use_contract_minimum(limits, errors)
            _check_minimums(limits, errors, SECTION_LIMITS)
            if not errors:
                contract = {
                    key: limits[key] for key in CONTRACT_SPEED_KEYS if key in limits
                }
                data = {
                    key: value
                    for key, value in entry.data.items()
                    if key not in CONTRACT_SPEED_KEYS
                } | contract
                if data != entry.data:
                    # The contract is not used while testing: no reload for it alone.
                    self.hass.config_entries.async_update_entry(entry, data=data)
                # Every option is stored, those of a hidden section too. A sensor
                # field left empty leaves no key: it is none, not the old one.
                options = dict(OPTION_DEFAULTS) | dict(entry.options)
                options |= dict.fromkeys(WAN_SENSOR_KEYS)
                for values in user_input.values():
                    options |= _whole(
                        {
                            k: v
                            for k, v in values.items()
                            if k not in CONTRACT_SPEED_KEYS
                        }
                    )
                return self.async_create_entry(data=options)
        if servers is None:
            # A note, not a mistake: the form can still be saved.
            errors["base"] = "server_list_unavailable"
        current = OPTION_DEFAULTS | entry.options | entry.data
        return self.async_show_form(
            step_id="settings",
            data_schema=self.add_suggested_values_to_schema(
                self._settings_schema(servers or [], current[CONF_SERVER_ID]),
                user_input or self._sectioned(current),
            ),
            errors=errors,
            description_placeholders=_plan_placeholders(
                (user_input or {}).get(SECTION_LIMITS, current)
            ),
        )

    def _sectioned(self, values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """The stored values, grouped as the form shows them."""
        sections: dict[str, tuple[str, ...]] = {
            SECTION_TESTING: TESTING_KEYS,
            SECTION_LIMITS: (*CONTRACT_SPEED_KEYS, *JUDGING_KEYS),
            SECTION_TRAFFIC: TRAFFIC_KEYS,
        }
        if self._has_account:
            sections[SECTION_POSTING] = POSTING_KEYS
        return {
            # No sensor chosen: no value, so the field shows empty.
            name: {
                key: values[key]
                for key in keys
                if key in values and values[key] is not None
            }
            for name, keys in sections.items()
        }

    def _settings_schema(
        self, servers: list[TestServer], current_server: str
    ) -> probatio.Schema:
        """The settings form: testing, limits, and posting when it can happen."""
        server_options = [
            # Its label is translated: selector.server.options.best.
            SelectOptionDict(value=DEFAULT_SERVER_ID, label=DEFAULT_SERVER_ID),
            *(
                SelectOptionDict(
                    value=str(server.id),
                    label=(
                        f"{server.sponsor}, {server.name} ({server.country}, "
                        f"{server.distance_km:.0f} km)"
                        if server.distance_km is not None
                        else f"{server.sponsor}, {server.name} ({server.country})"
                    ),
                )
                for server in servers
            ),
        ]
        # A server chosen before stays choosable when the list misses it.
        if current_server not in {option["value"] for option in server_options}:
            server_options.append(
                SelectOptionDict(value=current_server, label=current_server)
            )
        testing = {
            probatio.Required(CONF_SCAN_INTERVAL): _number(CONF_SCAN_INTERVAL),
            probatio.Required(CONF_SERVER_ID): SelectSelector(
                SelectSelectorConfig(
                    options=server_options,
                    mode=SelectSelectorMode.DROPDOWN,
                    translation_key="server",
                )
            ),
            **_numbers(TESTING_KEYS[2:]),
        }
        limits = {
            **_numbers(CONTRACT_SPEED_KEYS, required=False),
            probatio.Optional(CONF_USE_CONTRACT_MINIMUM, default=False): (
                BooleanSelector()
            ),
            **_numbers(JUDGING_KEYS),
        }
        schema: dict[Any, Any] = {
            probatio.Required(SECTION_TESTING): section(probatio.Schema(testing)),
            probatio.Required(SECTION_LIMITS): section(probatio.Schema(limits)),
            probatio.Required(SECTION_TRAFFIC): section(
                probatio.Schema(
                    {
                        **{
                            probatio.Optional(key): WAN_SENSOR_SELECTOR
                            for key in WAN_SENSOR_KEYS
                        },
                        **_numbers(TRAFFIC_KEYS[2:]),
                    }
                ),
                {"collapsed": True},
            ),
        }
        if self._has_account:
            schema[probatio.Required(SECTION_POSTING)] = section(
                probatio.Schema(
                    {
                        **_numbers(POSTING_KEYS[:2]),
                        probatio.Required(CONF_DRY_RUN): BooleanSelector(),
                    }
                )
            )
        return probatio.Schema(schema)

    async def _async_servers(self) -> list[TestServer] | None:
        """The servers speedtest.net offers this uplink; None when it cannot say."""
        if self._servers is None:
            answer = await SpeedTestClient().list_servers(
                SpeedTestSettings(
                    request_timeout=SPEEDTEST_REQUEST_TIMEOUT,
                    deadline=SERVER_LIST_DEADLINE,
                    source_address=self.config_entry.data.get(CONF_SOURCE_ADDRESS),
                )
            )
            if isinstance(answer, list) and answer:
                self._servers = answer
            else:
                reason = answer.reason if not isinstance(answer, list) else "empty"
                _LOGGER.debug("No server list from speedtest.net: %s", reason)
                return None
        return self._servers

    async def async_step_add_x_account(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Add an account to post with."""
        return await self.async_step_x_account()

    async def async_step_replace_x_account(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Post with other keys, or another account."""
        return await self.async_step_x_account()

    async def async_step_x_account(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The keys of the X app that posts, checked live."""
        errors: dict[str, str] = {}
        if user_input is not None and (
            account := await _async_check_account(self.hass, user_input, errors)
        ):
            return self._update_account(dict(self.config_entry.data) | account)
        return _account_form(self, "x_account", user_input, errors)

    async def async_step_remove_x_account(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Forget the X account; queued posts stay until an account is added."""
        if user_input is None:
            return self.async_show_form(
                step_id="remove_x_account", data_schema=probatio.Schema({})
            )
        return self._update_account(
            {
                key: value
                for key, value in self.config_entry.data.items()
                if key not in X_ACCOUNT_KEYS
            }
        )

    def _update_account(self, data: dict[str, Any]) -> ConfigFlowResult:
        """Store the account change; the reload starts or stops posting."""
        entry = self.config_entry
        self.hass.config_entries.async_update_entry(
            entry, data=data, title=entry_title(data)
        )
        # The options stay as they are, so the flow's own reload does not happen.
        self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_create_entry(data=dict(entry.options))
