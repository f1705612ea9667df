"""Run Home Assistant (``hass``) with ISP Watch's X client sent to a fake X API.

The browser tests and ``scripts/develop --demo`` start this module as a child process:
``python -m fakes.home_assistant --config DIR --skip-pip``. The origin of the fake X
API comes from the environment variable named by ``X_ORIGIN_VARIABLE``; the speed-test
child finds the fake speedtest.net through the proxy variables of the same environment.
The integration itself reads no such variable: only a Home Assistant started through
this module can be pointed elsewhere than X.
"""

from __future__ import annotations

import os
import sys

from custom_components.isp_watch import x_client
from homeassistant.__main__ import main

X_ORIGIN_VARIABLE = "ISP_WATCH_FAKE_X_API_ORIGIN"

if __name__ == "__main__":
    x_client.X_API_ORIGIN = os.environ[X_ORIGIN_VARIABLE]
    sys.exit(main())
