"""Set up ISP Watch from the UI: the connection, the X account, options, reauth."""

from __future__ import annotations

from collections.abc import Mapping
import ipaddress
import logging
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
    DEFAULT_CONFIRM_DELAY,
    DEFAULT_DRY_RUN,
    DEFAULT_EVALUATION_WINDOW,
    DEFAULT_MAX_CONFIRM_TESTS,
    DEFAULT_MAX_PING,
    DEFAULT_MIN_DOWNLOAD,
    DEFAULT_MIN_UPLOAD,
    DEFAULT_MONTHLY_DATA_BUDGET,
    DEFAULT_OUTAGE_PROBE_INTERVAL,
    DEFAULT_SCAN_INTERVAL,
    DEFAULT_SERVER_ID,
    DEFAULT_SOURCE_ID,
    DEFAULT_TWEET_COOLDOWN,
    DEFAULT_TWEET_DAILY_CAP,
    DOMAIN,
    MAX_PING,
    MAX_SPEED,
    MIN_PING,
    X_CREDENTIAL_KEYS,
)
from .speedtest_client import SpeedTestClient, SpeedTestSettings, TestServer
from .x_client import VerifyError, XAccount, XClient, XCredentials

_LOGGER = logging.getLogger(__name__)

HANDLE = re.compile(r"@?([A-Za-z0-9_]{1,15})")
THRESHOLD_KEYS = (CONF_MIN_DOWNLOAD, CONF_MIN_UPLOAD, CONF_MAX_PING)
PLAN_FOR_MINIMUM = {
    CONF_MIN_DOWNLOAD: CONF_PLAN_DOWNLOAD,
    CONF_MIN_UPLOAD: CONF_PLAN_UPLOAD,
}


# Option, default, minimum, maximum and unit of the numbers the settings form asks for.
TUNING_NUMBERS: tuple[tuple[str, float, float, float, str], ...] = (
    (CONF_EVALUATION_WINDOW, DEFAULT_EVALUATION_WINDOW, 1, 10, "tests"),
    (CONF_CONFIRM_DELAY, DEFAULT_CONFIRM_DELAY, 1, 120, "min"),
    (CONF_MAX_CONFIRM_TESTS, DEFAULT_MAX_CONFIRM_TESTS, 0, 5, "tests"),
    (CONF_OUTAGE_PROBE_INTERVAL, DEFAULT_OUTAGE_PROBE_INTERVAL, 1, 30, "min"),
    (CONF_MONTHLY_DATA_BUDGET, DEFAULT_MONTHLY_DATA_BUDGET, 0, 10000, "GB"),
    (CONF_TWEET_COOLDOWN, DEFAULT_TWEET_COOLDOWN, 0, 168, "h"),
    (CONF_TWEET_DAILY_CAP, DEFAULT_TWEET_DAILY_CAP, 1, 50, "posts"),
)


def _speed_selector() -> NumberSelector:
    return NumberSelector(
        NumberSelectorConfig(
            min=0,
            max=MAX_SPEED,
            step="any",
            mode=NumberSelectorMode.BOX,
            unit_of_measurement="Mbit/s",
        )
    )


def _number_selector(minimum: float, maximum: float, unit: str) -> NumberSelector:
    return NumberSelector(
        NumberSelectorConfig(
            min=minimum,
            max=maximum,
            step=1,
            mode=NumberSelectorMode.BOX,
            unit_of_measurement=unit,
        )
    )


def _threshold_fields(values: Mapping[str, Any]) -> dict[Any, Any]:
    return {
        probatio.Required(
            CONF_MIN_DOWNLOAD,
            default=values.get(CONF_MIN_DOWNLOAD, DEFAULT_MIN_DOWNLOAD),
        ): _speed_selector(),
        probatio.Required(
            CONF_MIN_UPLOAD, default=values.get(CONF_MIN_UPLOAD, DEFAULT_MIN_UPLOAD)
        ): _speed_selector(),
        probatio.Required(
            CONF_MAX_PING, default=values.get(CONF_MAX_PING, DEFAULT_MAX_PING)
        ): _number_selector(MIN_PING, MAX_PING, "ms"),
    }


def _connection_fields(values: Mapping[str, Any]) -> dict[Any, Any]:
    def suggested(key: str) -> dict[str, Any]:
        value = values.get(key)
        return {} if value is None else {"suggested_value": value}

    return {
        probatio.Required(CONF_ISP_NAME, default=values.get(CONF_ISP_NAME, "")): (
            TextSelector()
        ),
        probatio.Optional(
            CONF_ISP_HANDLE, description=suggested(CONF_ISP_HANDLE)
        ): TextSelector(),
        probatio.Optional(
            CONF_PLAN_DOWNLOAD, description=suggested(CONF_PLAN_DOWNLOAD)
        ): _speed_selector(),
        probatio.Optional(
            CONF_PLAN_UPLOAD, description=suggested(CONF_PLAN_UPLOAD)
        ): _speed_selector(),
    }


X_ACCOUNT_SCHEMA = probatio.Schema(
    {
        probatio.Required(key): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        )
        for key in X_CREDENTIAL_KEYS
    }
)


def _check_connection(values: dict[str, Any], errors: dict[str, str]) -> None:
    """Validate name, handle and plan; normalise the handle in place."""
    if not str(values.get(CONF_ISP_NAME, "")).strip():
        errors[CONF_ISP_NAME] = "empty_name"
    values[CONF_ISP_NAME] = str(values.get(CONF_ISP_NAME, "")).strip()
    handle = str(values.get(CONF_ISP_HANDLE) or "").strip()
    if handle:
        if match := HANDLE.fullmatch(handle):
            values[CONF_ISP_HANDLE] = match.group(1)
        else:
            errors[CONF_ISP_HANDLE] = "invalid_handle"
    else:
        values.pop(CONF_ISP_HANDLE, None)
    for key in (CONF_PLAN_DOWNLOAD, CONF_PLAN_UPLOAD):
        if values.get(key) is not None and not 0 < float(values[key]) <= MAX_SPEED:
            errors[key] = "invalid_speed"


def _check_thresholds(
    thresholds: Mapping[str, Any], plan: Mapping[str, Any], errors: dict[str, str]
) -> None:
    """Limits in range and not above what the plan promises."""
    for key, plan_key in PLAN_FOR_MINIMUM.items():
        value = float(thresholds[key])
        if not 0 < value <= MAX_SPEED:
            errors[key] = "invalid_speed"
        elif plan.get(plan_key) is not None and value > float(plan[plan_key]):
            errors[key] = "minimum_above_plan"
    if not MIN_PING <= float(thresholds[CONF_MAX_PING]) <= MAX_PING:
        errors[CONF_MAX_PING] = "invalid_ping"


def _credentials(user_input: Mapping[str, Any]) -> XCredentials | None:
    """The four keys, trimmed; None if one is empty."""
    values = {key: str(user_input.get(key, "")).strip() for key in X_CREDENTIAL_KEYS}
    if not all(values.values()):
        return None
    return XCredentials(**values)


async def _verify(hass: HomeAssistant, credentials: XCredentials) -> XAccount:
    """Ask X who the keys belong to, in the executor."""

    def verify() -> XAccount:
        client = XClient(credentials)
        try:
            return client.verify()
        finally:
            client.close()

    return await hass.async_add_executor_job(verify)


async def _check_account(
    hass: HomeAssistant, user_input: Mapping[str, Any], errors: dict[str, str]
) -> dict[str, str] | None:
    """Verify the keys; the entry data for them, or None with errors set."""
    credentials = _credentials(user_input)
    if credentials is None:
        errors["base"] = "empty_key"
        return None
    try:
        account = await _verify(hass, credentials)
    except VerifyError as error:
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
    """The ISP's name, and the account that posts when there is one."""
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
        """Which connection, which ISP, and the limits the user accepts."""
        errors: dict[str, str] = {}
        if user_input is not None:
            values = dict(user_input)
            _check_connection(values, errors)
            _check_thresholds(values, values, errors)
            source = str(values.pop(CONF_SOURCE_ADDRESS, "") or "").strip()
            if source:
                try:
                    source = str(ipaddress.ip_address(source))
                except ValueError:
                    errors[CONF_SOURCE_ADDRESS] = "invalid_source_address"
            if not errors:
                await self.async_set_unique_id(source or DEFAULT_SOURCE_ID)
                self._abort_if_unique_id_configured()
                self._options = {key: values.pop(key) for key in THRESHOLD_KEYS}
                self._data = values | ({CONF_SOURCE_ADDRESS: source} if source else {})
                return await self.async_step_x_account_choice()
        schema = probatio.Schema(
            {
                **_connection_fields(user_input or {}),
                **_threshold_fields(user_input or {}),
                probatio.Optional(CONF_SOURCE_ADDRESS): TextSelector(),
            }
        )
        return self.async_show_form(step_id="user", data_schema=schema, errors=errors)

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
            account := await _check_account(self.hass, user_input, errors)
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
        return self.async_create_entry(
            title=entry_title(self._data), data=self._data, options=self._options
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the ISP's name, handle and plan."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            values = dict(user_input)
            _check_connection(values, errors)
            _check_thresholds(entry.options, values, errors)
            if not errors:
                data = {
                    key: value
                    for key, value in entry.data.items()
                    if key
                    not in (CONF_ISP_HANDLE, CONF_PLAN_DOWNLOAD, CONF_PLAN_UPLOAD)
                } | values
                return self.async_update_reload_and_abort(
                    entry, data=data, title=entry_title(data)
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=probatio.Schema(_connection_fields(user_input or entry.data)),
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
        """New keys for the same account; queued posts go out afterwards."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None and (
            account := await _check_account(self.hass, user_input, errors)
        ):
            if account[CONF_X_USER_ID] != entry.data.get(CONF_X_USER_ID):
                return self.async_abort(reason="wrong_account")
            return self.async_update_reload_and_abort(entry, data_updates=account)
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

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """What to change."""
        options = ["settings", "x_account"]
        if self.config_entry.data.get(CONF_API_KEY):
            options.append("remove_x_account")
        return self.async_show_menu(step_id="init", menu_options=options)

    async def async_step_settings(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Everything that tunes testing and posting."""
        errors: dict[str, str] = {}
        if user_input is not None:
            _check_thresholds(user_input, self.config_entry.data, errors)
            if not errors:
                return self.async_create_entry(data=user_input)
        servers = await SpeedTestClient().list_servers(
            SpeedTestSettings(
                source_address=self.config_entry.data.get(CONF_SOURCE_ADDRESS),
                deadline=30,
            )
        )
        return self.async_show_form(
            step_id="settings",
            data_schema=self._settings_schema(
                user_input or dict(self.config_entry.options),
                servers if isinstance(servers, list) else [],
            ),
            errors=errors,
            description_placeholders={
                "server_note": (
                    ""
                    if isinstance(servers, list)
                    else "The server list could not be loaded, so only the best "
                    "server by latency is offered now."
                )
            },
        )

    def _settings_schema(
        self, values: Mapping[str, Any], servers: list[TestServer]
    ) -> probatio.Schema:
        def default(key: str, fallback: Any) -> Any:
            return values.get(key, fallback)

        server_options = [
            SelectOptionDict(value=DEFAULT_SERVER_ID, label="Best by latency")
        ] + [
            SelectOptionDict(
                value=str(server.id),
                label=(
                    f"{server.sponsor}, {server.name} ({server.country}, "
                    f"{server.distance_km:.0f} km)"
                ),
            )
            for server in servers
        ]
        return probatio.Schema(
            {
                probatio.Required(
                    CONF_SCAN_INTERVAL,
                    default=default(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL),
                ): _number_selector(10, 1440, "min"),
                probatio.Required(
                    CONF_SERVER_ID, default=default(CONF_SERVER_ID, DEFAULT_SERVER_ID)
                ): SelectSelector(
                    SelectSelectorConfig(
                        options=server_options,
                        mode=SelectSelectorMode.DROPDOWN,
                        custom_value=True,
                    )
                ),
                **_threshold_fields(values),
                **{
                    probatio.Required(key, default=default(key, fallback)): (
                        _number_selector(minimum, maximum, unit)
                    )
                    for key, fallback, minimum, maximum, unit in TUNING_NUMBERS
                },
                probatio.Required(
                    CONF_DRY_RUN, default=default(CONF_DRY_RUN, DEFAULT_DRY_RUN)
                ): BooleanSelector(),
            }
        )

    async def async_step_x_account(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Add or replace the X account."""
        errors: dict[str, str] = {}
        if user_input is not None and (
            account := await _check_account(self.hass, user_input, errors)
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
        data = {
            key: value
            for key, value in self.config_entry.data.items()
            if key not in (*X_CREDENTIAL_KEYS, CONF_X_USERNAME, CONF_X_USER_ID)
        }
        return self._update_account(data)

    def _update_account(self, data: dict[str, Any]) -> ConfigFlowResult:
        """Store the account change; the reload starts or stops posting."""
        entry = self.config_entry
        self.hass.config_entries.async_update_entry(
            entry, data=data, title=entry_title(data)
        )
        self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_create_entry(data=dict(entry.options))
