"""Config flow for ISP Watch."""

from __future__ import annotations

from typing import Any

import probatio

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult

from .const import CONF_ISP_NAME, DEFAULT_SOURCE_ID, DOMAIN


class IspWatchConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add an uplink to watch."""

    VERSION = 1

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask which ISP the connection belongs to."""
        if user_input is not None:
            await self.async_set_unique_id(DEFAULT_SOURCE_ID)
            self._abort_if_unique_id_configured()
            return self.async_create_entry(
                title=user_input[CONF_ISP_NAME], data=user_input
            )
        return self.async_show_form(
            step_id="user",
            data_schema=probatio.Schema({probatio.Required(CONF_ISP_NAME): str}),
        )
