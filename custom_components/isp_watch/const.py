"""Constants for ISP Watch: the domain, option keys and their defaults."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

DOMAIN: Final = "isp_watch"

# Config entry data: who the ISP is and which uplink is measured.
CONF_ISP_NAME: Final = "isp_name"
CONF_ISP_HANDLE: Final = "isp_handle"
CONF_PLAN_DOWNLOAD: Final = "plan_download"
CONF_PLAN_UPLOAD: Final = "plan_upload"
CONF_SOURCE_ADDRESS: Final = "source_address"

# Config entry data: the X account that posts (absent when no account was added).
CONF_API_KEY: Final = "api_key"
CONF_API_SECRET: Final = "api_secret"
CONF_ACCESS_TOKEN: Final = "access_token"
CONF_ACCESS_TOKEN_SECRET: Final = "access_token_secret"
CONF_X_USERNAME: Final = "x_username"
CONF_X_USER_ID: Final = "x_user_id"
X_CREDENTIAL_KEYS: Final = (
    CONF_API_KEY,
    CONF_API_SECRET,
    CONF_ACCESS_TOKEN,
    CONF_ACCESS_TOKEN_SECRET,
)

# Config entry options: what the user tunes after setup.
CONF_MIN_DOWNLOAD: Final = "min_download"
CONF_MIN_UPLOAD: Final = "min_upload"
CONF_MAX_PING: Final = "max_ping"
CONF_SCAN_INTERVAL: Final = "scan_interval"
CONF_SERVER_ID: Final = "server_id"
CONF_EVALUATION_WINDOW: Final = "evaluation_window"
CONF_CONFIRM_DELAY: Final = "confirm_delay"
CONF_MAX_CONFIRM_TESTS: Final = "max_confirm_tests"
CONF_OUTAGE_PROBE_INTERVAL: Final = "outage_probe_interval"
CONF_MONTHLY_DATA_BUDGET: Final = "monthly_data_budget"
CONF_TWEET_COOLDOWN: Final = "tweet_cooldown"
CONF_TWEET_DAILY_CAP: Final = "tweet_daily_cap"
CONF_DRY_RUN: Final = "dry_run"

DEFAULT_MIN_DOWNLOAD: Final = 50.0
DEFAULT_MIN_UPLOAD: Final = 10.0
DEFAULT_MAX_PING: Final = 100.0
DEFAULT_SCAN_INTERVAL: Final = 60  # minutes
DEFAULT_SERVER_ID: Final = "best"
DEFAULT_EVALUATION_WINDOW: Final = 3  # tests
# 30 rather than 10: a re-test 10 minutes later tends to land in the same household
# download that slowed the first one (benchmarks/replay.py: 4x fewer false complaints).
DEFAULT_CONFIRM_DELAY: Final = 30  # minutes
DEFAULT_MAX_CONFIRM_TESTS: Final = 2  # extra tests per slow episode
DEFAULT_OUTAGE_PROBE_INTERVAL: Final = 2  # minutes
DEFAULT_MONTHLY_DATA_BUDGET: Final = 0  # GB; 0 means no budget
DEFAULT_TWEET_COOLDOWN: Final = 6  # hours
DEFAULT_TWEET_DAILY_CAP: Final = 5
DEFAULT_DRY_RUN: Final = False

MAX_SPEED: Final = 10_000.0
MIN_PING: Final = 1.0
MAX_PING: Final = 10_000.0
DEFAULT_SOURCE_ID: Final = "default"

# Speed tests: one socket operation may wait this long, a whole test the deadline.
SPEEDTEST_REQUEST_TIMEOUT: Final = 10.0
SPEEDTEST_DEADLINE: Final = timedelta(minutes=3)

# History kept for "slow over several tests": whichever of the two keeps more.
HISTORY_MIN_AGE: Final = timedelta(days=7)
HISTORY_MIN_COUNT: Final = 500
