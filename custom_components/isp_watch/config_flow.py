"""Set up ISP Watch from the UI: the connection, the X account, options, reauth.

Each value has one place. Entry data holds what identifies the connection (provider,
handle, plan, source address) and the X account that posts; it changes through
reconfigure, reauth and the account steps of the options. Options hold what the user
tunes: limits, schedule, server, judging and posting rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
    OptionsFlowWithReload,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.selector import (
    BooleanSelector,
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

from .const import (
    CONF_ACCESS_TOKEN,
    CONF_ACCESS_TOKEN_SECRET,
    CONF_API_KEY,
    CONF_API_SECRET,
    CONF_CONFIRM_DELAY,
    CONF_DRY_RUN,
    CONF_EVALUATION_WINDOW,
    CONF_ISP_HANDLE,
    CONF_ISP_NAME,
    CONF_MAX_CONFIRM_TESTS,
    CONF_MAX_PING,
    CONF_MIN_DOWNLOAD,
    CONF_MIN_UPLOAD,
    CONF_MONTHLY_DATA_BUDGET,
    CONF_OUTAGE_PROBE_INTERVAL,
    CONF_PLAN_DOWNLOAD,
    CONF_PLAN_UPLOAD,
    CONF_SCAN_INTERVAL,
    CONF_SERVER_ID,
    CONF_SOURCE_ADDRESS,
    CONF_TWEET_COOLDOWN,
    CONF_TWEET_DAILY_CAP,
    CONF_X_USER_ID,
    CONF_X_USERNAME,
    DEFAULT_DRY_RUN,
    DEFAULT_SERVER_ID,
    DEFAULT_SOURCE_ID,
    DOMAIN,
    OPTION_DEFAULTS,
    PING_RANGE,
    SPEED_RANGE,
    SPEEDTEST_REQUEST_TIMEOUT,
    X_CREDENTIAL_KEYS,
)
from .speedtest_client import SpeedTestClient, SpeedTestSettings, TestServer
from .x_client import VerifyError, XAccount, XClient, XCredentials

_LOGGER = logging.getLogger(__name__)

# An X handle: 1 to 15 letters, digits or underscores, typed with or without the @.
HANDLE = re.compile(r"@?([A-Za-z0-9_]{1,15})")
# speedtest.net server ids are positive integers.
SERVER_ID = re.compile(r"[0-9]{1,10}")
# Listing servers fetches two small documents; the form should not wait as long as a
# whole test may take.
SERVER_LIST_DEADLINE = 30.0
X_ACCOUNT_KEYS = (*X_CREDENTIAL_KEYS, CONF_X_USERNAME, CONF_X_USER_ID)
CONNECTION_KEYS = (
    CONF_ISP_NAME,
    CONF_ISP_HANDLE,
    CONF_PLAN_DOWNLOAD,
    CONF_PLAN_UPLOAD,
    CONF_SOURCE_ADDRESS,
)
# Each minimum speed and the plan speed it may not exceed.
PLAN_FOR_MINIMUM = {
    CONF_MIN_DOWNLOAD: CONF_PLAN_DOWNLOAD,
    CONF_MIN_UPLOAD: CONF_PLAN_UPLOAD,
}
# A new entry starts with these options; the user step sets the limits.
DEFAULT_OPTIONS: dict[str, Any] = dict(OPTION_DEFAULTS)


class _NumberBox(NumberSelector):
    """A number box whose limits the UI shows and the step itself checks.

    NumberSelector refuses text, or a number outside its limits, before the step
    runs, with an untranslated schema error. Passing the value on lets the step
    answer with a translated error on the field instead.
    """

    @override
    def __call__(self, data: Any) -> Any:
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberField:
    """A number a form asks for: limits, unit, and the error for a value outside."""

    key: str
    minimum: float
    maximum: float
    error: str
    unit: str | None = None
    whole: bool = True
    optional: bool = False
    # A speed of zero is no speed: the minimum itself is refused.
    exclusive_minimum: bool = False

    def selector(self) -> NumberSelector:
        """A box with the field's limits and unit."""
        config = NumberSelectorConfig(
            min=self.minimum,
            max=self.maximum,
            step=1 if self.whole else "any",
            mode=NumberSelectorMode.BOX,
        )
        if self.unit:
            config["unit_of_measurement"] = self.unit
        return _NumberBox(config)

    def read(self, values: Mapping[str, Any], errors: dict[str, str]) -> float | None:
        """The field's number, or None: left empty, or not acceptable (errors set)."""
        value = values.get(self.key)
        if value is None or value == "":
            if not self.optional:
                errors[self.key] = "not_a_number"
            return None
        number = _as_number(value)
        if number is None:
            errors[self.key] = "not_a_number"
            return None
        too_low = (
            number <= self.minimum if self.exclusive_minimum else number < self.minimum
        )
        if too_low or number > self.maximum or (self.whole and number % 1):
            errors[self.key] = self.error
            return None
        return int(number) if self.whole else number


def _as_number(value: Any) -> float | None:
    """A number from a form value; None for text, booleans and NaN."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except TypeError, ValueError:
        return None
    return None if math.isnan(number) else number


def _speed(key: str, *, optional: bool = False) -> NumberField:
    return NumberField(
        key=key,
        minimum=0,
        maximum=SPEED_RANGE.maximum,
        error="invalid_speed",
        unit="Mbit/s",
        whole=False,
        optional=optional,
        exclusive_minimum=True,
    )


PLAN_FIELDS = (
    _speed(CONF_PLAN_DOWNLOAD, optional=True),
    _speed(CONF_PLAN_UPLOAD, optional=True),
)
THRESHOLD_FIELDS = (
    _speed(CONF_MIN_DOWNLOAD),
    _speed(CONF_MIN_UPLOAD),
    NumberField(
        key=CONF_MAX_PING,
        minimum=PING_RANGE.minimum,
        maximum=PING_RANGE.maximum,
        error="invalid_ping",
        unit="ms",
        whole=False,
    ),
)
# A test downloads and uploads tens to hundreds of megabytes: not more often than
# every 10 minutes, and at least once a day.
SCHEDULE_FIELD = NumberField(
    key=CONF_SCAN_INTERVAL, minimum=10, maximum=1440, error="out_of_range", unit="min"
)
TUNING_FIELDS = (
    NumberField(
        key=CONF_EVALUATION_WINDOW, minimum=1, maximum=10, error="out_of_range"
    ),
    NumberField(
        key=CONF_CONFIRM_DELAY, minimum=1, maximum=120, error="out_of_range", unit="min"
    ),
    NumberField(key=CONF_MAX_CONFIRM_TESTS, minimum=0, maximum=5, error="out_of_range"),
    NumberField(
        key=CONF_OUTAGE_PROBE_INTERVAL,
        minimum=1,
        maximum=30,
        error="out_of_range",
        unit="min",
    ),
    NumberField(
        key=CONF_MONTHLY_DATA_BUDGET,
        minimum=0,
        maximum=10_000,
        error="out_of_range",
        unit="GB",
    ),
    NumberField(
        key=CONF_TWEET_COOLDOWN, minimum=0, maximum=168, error="out_of_range", unit="h"
    ),
    NumberField(key=CONF_TWEET_DAILY_CAP, minimum=1, maximum=50, error="out_of_range"),
)


def _read_numbers(
    fields: tuple[NumberField, ...], values: Mapping[str, Any], errors: dict[str, str]
) -> dict[str, float]:
    """The acceptable numbers among the fields; errors set for the others."""
    numbers: dict[str, float] = {}
    for field in fields:
        if (number := field.read(values, errors)) is not None:
            numbers[field.key] = number
    return numbers


def _minimums_above_plan(
    thresholds: Mapping[str, Any], plan: Mapping[str, Any]
) -> list[str]:
    """The minimum speeds that are higher than the plan promises."""
    return [
        minimum
        for minimum, plan_key in PLAN_FOR_MINIMUM.items()
        if thresholds.get(minimum) is not None
        and plan.get(plan_key) is not None
        and float(thresholds[minimum]) > float(plan[plan_key])
    ]


def _read_connection(
    values: Mapping[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    """Provider, handle and plan as stored; what was left empty is left out."""
    connection: dict[str, Any] = {}
    if name := str(values.get(CONF_ISP_NAME) or "").strip():
        connection[CONF_ISP_NAME] = name
    else:
        errors[CONF_ISP_NAME] = "empty_name"
    if handle := str(values.get(CONF_ISP_HANDLE) or "").strip():
        if match := HANDLE.fullmatch(handle):
            connection[CONF_ISP_HANDLE] = match.group(1)
        else:
            errors[CONF_ISP_HANDLE] = "invalid_handle"
    return connection | _read_numbers(PLAN_FIELDS, values, errors)


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
    # default route a second time under another name.
    if (
        address.is_unspecified
        or address.is_loopback
        or address.is_multicast
        or address.is_link_local
    ):
        errors[CONF_SOURCE_ADDRESS] = "invalid_source_address"
        return None
    return str(address)


def _connection_schema(*, with_limits: bool) -> dict[Any, Any]:
    """Provider, handle, plan and source address; the limits for a new entry."""
    fields: dict[Any, Any] = {
        probatio.Required(CONF_ISP_NAME): TextSelector(),
        probatio.Optional(CONF_ISP_HANDLE): TextSelector(),
        **{probatio.Optional(field.key): field.selector() for field in PLAN_FIELDS},
    }
    if with_limits:
        fields |= _number_schema(THRESHOLD_FIELDS)
    return fields | {probatio.Optional(CONF_SOURCE_ADDRESS): TextSelector()}


def _number_schema(fields: tuple[NumberField, ...]) -> dict[Any, Any]:
    return {
        probatio.Required(field.key, default=DEFAULT_OPTIONS[field.key]): (
            field.selector()
        )
        for field in fields
    }


X_ACCOUNT_SCHEMA = probatio.Schema(
    {
        probatio.Required(key): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD, autocomplete="off")
        )
        for key in X_CREDENTIAL_KEYS
    }
)


def _verify(credentials: XCredentials) -> XAccount:
    """Ask X who the keys act for; blocking."""
    client = XClient(credentials)
    try:
        return client.verify()
    finally:
        client.close()


async def _async_check_account(
    hass: HomeAssistant, user_input: Mapping[str, Any], errors: dict[str, str]
) -> dict[str, str] | None:
    """Verify the keys live; the entry data for them, or None with errors set."""
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


def entry_title(data: Mapping[str, Any]) -> str:
    """The provider's name, and the account that posts when there is one."""
    if username := data.get(CONF_X_USERNAME):
        return f"{data[CONF_ISP_NAME]} (@{username})"
    return str(data[CONF_ISP_NAME])


class IspWatchConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add an uplink to watch."""

    VERSION = 1

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
            connection = _read_connection(user_input, errors)
            thresholds = _read_numbers(THRESHOLD_FIELDS, user_input, errors)
            for key in _minimums_above_plan(thresholds, connection):
                errors[key] = "minimum_above_plan"
            source = _read_source_address(user_input, errors)
            if not errors:
                await self.async_set_unique_id(source or DEFAULT_SOURCE_ID)
                self._abort_if_unique_id_configured()
                if source:
                    connection[CONF_SOURCE_ADDRESS] = source
                self._data = connection
                self._options = DEFAULT_OPTIONS | thresholds
                return await self.async_step_x_account_choice()
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                probatio.Schema(_connection_schema(with_limits=True)), user_input
            ),
            errors=errors,
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
        """The keys of the X app that posts, checked live."""
        errors: dict[str, str] = {}
        if user_input is not None and (
            account := await _async_check_account(self.hass, user_input, errors)
        ):
            self._data |= account
            return await self.async_step_finish()
        return self.async_show_form(
            step_id="x_account", data_schema=X_ACCOUNT_SCHEMA, errors=errors
        )

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
        """Change the provider's name, handle and plan, or the source address.

        A changed source address is the same uplink reached from a new local address
        (a new DHCP lease, say), so the history stays; the unique id follows it.
        """
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            connection = _read_connection(user_input, errors)
            for key in _minimums_above_plan(entry.options, connection):
                errors[PLAN_FOR_MINIMUM[key]] = "plan_below_minimum"
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
                if source:
                    connection[CONF_SOURCE_ADDRESS] = source
                # What this form holds is replaced, a field left empty removed; the
                # X account stays.
                data = {
                    key: value
                    for key, value in entry.data.items()
                    if key not in CONNECTION_KEYS
                } | connection
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
                probatio.Schema(_connection_schema(with_limits=False)),
                user_input or entry.data,
            ),
            errors=errors,
            # The error on a plan speed names the minimum it conflicts with.
            description_placeholders={
                key: f"{float(entry.options.get(key, DEFAULT_OPTIONS[key])):g}"
                for key in PLAN_FOR_MINIMUM
            },
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
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=X_ACCOUNT_SCHEMA,
            errors=errors,
            description_placeholders={
                "username": str(entry.data.get(CONF_X_USERNAME, ""))
            },
        )


class IspWatchOptionsFlow(OptionsFlowWithReload):
    """Schedule, server, limits, posting rules, and the X account."""

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
                if self.config_entry.data.get(CONF_X_USER_ID)
                else ["settings", "add_x_account"]
            ),
        )

    async def async_step_settings(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Everything that tunes testing and posting."""
        errors: dict[str, str] = {}
        if user_input is not None:
            options = _read_numbers(
                (SCHEDULE_FIELD, *THRESHOLD_FIELDS, *TUNING_FIELDS), user_input, errors
            )
            for key in _minimums_above_plan(options, self.config_entry.data):
                errors[key] = "minimum_above_plan"
            server = str(user_input.get(CONF_SERVER_ID) or DEFAULT_SERVER_ID).strip()
            if server != DEFAULT_SERVER_ID and not SERVER_ID.fullmatch(server):
                errors[CONF_SERVER_ID] = "invalid_server"
            if not errors:
                return self.async_create_entry(
                    data=options
                    | {
                        CONF_SERVER_ID: server,
                        CONF_DRY_RUN: bool(user_input.get(CONF_DRY_RUN)),
                    }
                )
        servers = await self._async_servers()
        return self.async_show_form(
            step_id="settings",
            data_schema=self.add_suggested_values_to_schema(
                _settings_schema(servers or []),
                user_input or self.config_entry.options,
            ),
            errors=errors,
            description_placeholders={
                "server_note": (
                    ""
                    if servers
                    else "\n\nThe server list could not be loaded from "
                    "speedtest.net, so only the best server by latency is offered "
                    "now. A server id typed into the field is kept."
                )
            },
        )

    async def _async_servers(self) -> list[TestServer]:
        """The servers speedtest.net offers this uplink; empty when it cannot say."""
        if self._servers is None:
            answer = await SpeedTestClient().list_servers(
                SpeedTestSettings(
                    request_timeout=SPEEDTEST_REQUEST_TIMEOUT,
                    deadline=SERVER_LIST_DEADLINE,
                    source_address=self.config_entry.data.get(CONF_SOURCE_ADDRESS),
                )
            )
            if isinstance(answer, list):
                self._servers = answer
            else:
                _LOGGER.debug("No server list from speedtest.net: %s", answer.reason)
                self._servers = []
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
        return self.async_show_form(
            step_id="x_account", data_schema=X_ACCOUNT_SCHEMA, errors=errors
        )

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


def _settings_schema(servers: list[TestServer]) -> probatio.Schema:
    """The settings form: schedule, server, limits, judging, data and posting."""
    server_options = [
        SelectOptionDict(value=DEFAULT_SERVER_ID, label="Best by latency"),
        *(
            SelectOptionDict(
                value=str(server.id),
                label=(
                    f"{server.sponsor}, {server.name} ({server.country}, "
                    f"{server.distance_km:.0f} km)"
                ),
            )
            for server in servers
        ),
    ]
    return probatio.Schema(
        {
            **_number_schema((SCHEDULE_FIELD,)),
            probatio.Required(CONF_SERVER_ID, default=DEFAULT_SERVER_ID): (
                SelectSelector(
                    SelectSelectorConfig(
                        options=server_options,
                        mode=SelectSelectorMode.DROPDOWN,
                        # Any server of speedtest.net, not only the nearest ones.
                        custom_value=True,
                    )
                )
            ),
            **_number_schema(THRESHOLD_FIELDS),
            **_number_schema(TUNING_FIELDS),
            probatio.Required(CONF_DRY_RUN, default=DEFAULT_DRY_RUN): (
                BooleanSelector()
            ),
        }
    )
