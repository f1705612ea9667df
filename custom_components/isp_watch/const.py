"""Constants for ISP Watch: the domain, the setting keys, every default and range.

This is the only home of a default or a range: the config flow, the settings object
and the pure modules all read them from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Final

DOMAIN: Final = "isp_watch"

# Config entry data: who the ISP is and which uplink is measured.
CONF_ISP_NAME: Final = "isp_name"
CONF_ISP_HANDLE: Final = "isp_handle"
# The speeds the contract states, per direction (Regulation (EU) 2015/2120, Art.
# 4(1)(d)); each optional. The maximum is the advertised speed, once called the plan.
CONF_CONTRACT_MAXIMUM_DOWNLOAD: Final = "contract_maximum_download"
CONF_CONTRACT_NORMAL_DOWNLOAD: Final = "contract_normally_available_download"
CONF_CONTRACT_MINIMUM_DOWNLOAD: Final = "contract_minimum_download"
CONF_CONTRACT_MAXIMUM_UPLOAD: Final = "contract_maximum_upload"
CONF_CONTRACT_NORMAL_UPLOAD: Final = "contract_normally_available_upload"
CONF_CONTRACT_MINIMUM_UPLOAD: Final = "contract_minimum_upload"
CONTRACT_SPEED_KEYS: Final = (
    CONF_CONTRACT_MAXIMUM_DOWNLOAD,
    CONF_CONTRACT_NORMAL_DOWNLOAD,
    CONF_CONTRACT_MINIMUM_DOWNLOAD,
    CONF_CONTRACT_MAXIMUM_UPLOAD,
    CONF_CONTRACT_NORMAL_UPLOAD,
    CONF_CONTRACT_MINIMUM_UPLOAD,
)
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
# Delay variation and the delay while the line is full ("bufferbloat"); 0: no limit.
CONF_MAX_JITTER: Final = "max_jitter"
CONF_MAX_LOADED_LATENCY: Final = "max_loaded_latency"
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
# The connectivity watch between tests: a probe round every few minutes (0: off), and
# the consecutive failed rounds that turn the Internet sensor off.
CONF_WATCH_INTERVAL: Final = "watch_interval"
CONF_WATCH_FAILURES: Final = "watch_failures"
# The line's other traffic: the router's WAN sensors (a data rate or a byte counter per
# direction; None: none chosen), the share of the measured rate that makes a test busy,
# and how often a scheduled test may wait for a busy line.
CONF_WAN_DOWNLOAD_SENSOR: Final = "wan_download_sensor"
CONF_WAN_UPLOAD_SENSOR: Final = "wan_upload_sensor"
WAN_SENSOR_KEYS: Final = (CONF_WAN_DOWNLOAD_SENSOR, CONF_WAN_UPLOAD_SENSOR)
CONF_BUSY_SHARE: Final = "busy_share"
CONF_MAX_DEFERRALS: Final = "max_deferrals"

DEFAULT_MIN_DOWNLOAD: Final = 50.0
DEFAULT_MIN_UPLOAD: Final = 10.0
DEFAULT_MAX_PING: Final = 100.0
# Off: a line is not slow for its delay variation or bufferbloat unless the user says.
DEFAULT_MAX_JITTER: Final = 0.0
DEFAULT_MAX_LOADED_LATENCY: Final = 0.0
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
DEFAULT_WATCH_INTERVAL: Final = 1  # minutes; 0 means off
DEFAULT_WATCH_FAILURES: Final = 2  # rounds
DEFAULT_WAN_SENSOR: Final = None
# 10%: a test's own rate varies by a few percent from run to run, so a smaller share
# would call ordinary noise busy; a film in 4K (25 Mbit/s) on a 100 Mbit/s line is more.
DEFAULT_BUSY_SHARE: Final = 10  # percent
DEFAULT_MAX_DEFERRALS: Final = 3  # waits of BUSY_DEFERRAL_DELAY

DEFAULT_SOURCE_ID: Final = "default"

BYTES_PER_GB: Final = 1_000_000_000

# Every option a new entry stores, with the value it starts with.
OPTION_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        CONF_MIN_DOWNLOAD: DEFAULT_MIN_DOWNLOAD,
        CONF_MIN_UPLOAD: DEFAULT_MIN_UPLOAD,
        CONF_MAX_PING: DEFAULT_MAX_PING,
        CONF_MAX_JITTER: DEFAULT_MAX_JITTER,
        CONF_MAX_LOADED_LATENCY: DEFAULT_MAX_LOADED_LATENCY,
        CONF_SCAN_INTERVAL: DEFAULT_SCAN_INTERVAL,
        CONF_SERVER_ID: DEFAULT_SERVER_ID,
        CONF_EVALUATION_WINDOW: DEFAULT_EVALUATION_WINDOW,
        CONF_CONFIRM_DELAY: DEFAULT_CONFIRM_DELAY,
        CONF_MAX_CONFIRM_TESTS: DEFAULT_MAX_CONFIRM_TESTS,
        CONF_OUTAGE_PROBE_INTERVAL: DEFAULT_OUTAGE_PROBE_INTERVAL,
        CONF_MONTHLY_DATA_BUDGET: DEFAULT_MONTHLY_DATA_BUDGET,
        CONF_TWEET_COOLDOWN: DEFAULT_TWEET_COOLDOWN,
        CONF_TWEET_DAILY_CAP: DEFAULT_TWEET_DAILY_CAP,
        CONF_DRY_RUN: DEFAULT_DRY_RUN,
        CONF_WATCH_INTERVAL: DEFAULT_WATCH_INTERVAL,
        CONF_WATCH_FAILURES: DEFAULT_WATCH_FAILURES,
        CONF_WAN_DOWNLOAD_SENSOR: DEFAULT_WAN_SENSOR,
        CONF_WAN_UPLOAD_SENSOR: DEFAULT_WAN_SENSOR,
        CONF_BUSY_SHARE: DEFAULT_BUSY_SHARE,
        CONF_MAX_DEFERRALS: DEFAULT_MAX_DEFERRALS,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberRange:
    """The values a number setting accepts, and how a form shows it."""

    minimum: float
    maximum: float
    step: float | None = 1
    """None: any fraction."""
    unit: str | None = None


# A speed of zero is no speed; 0.1 Mbit/s is the least a form can mean.
SPEED_RANGE: Final = NumberRange(minimum=0.1, maximum=10_000, step=None, unit="Mbit/s")
PING_RANGE: Final = NumberRange(minimum=1, maximum=10_000, step=None, unit="ms")
# A limit that may be off: 0 ms means no limit.
OPTIONAL_DELAY_RANGE: Final = NumberRange(
    minimum=0, maximum=10_000, step=None, unit="ms"
)
NUMBER_RANGES: Final[Mapping[str, NumberRange]] = MappingProxyType(
    {
        **dict.fromkeys(CONTRACT_SPEED_KEYS, SPEED_RANGE),
        CONF_MIN_DOWNLOAD: SPEED_RANGE,
        CONF_MIN_UPLOAD: SPEED_RANGE,
        CONF_MAX_PING: PING_RANGE,
        CONF_MAX_JITTER: OPTIONAL_DELAY_RANGE,
        CONF_MAX_LOADED_LATENCY: OPTIONAL_DELAY_RANGE,
        # A test moves tens to hundreds of megabytes: not more often than every 10
        # minutes, and at least once a day.
        CONF_SCAN_INTERVAL: NumberRange(minimum=10, maximum=1440, unit="min"),
        CONF_EVALUATION_WINDOW: NumberRange(minimum=1, maximum=10),
        CONF_CONFIRM_DELAY: NumberRange(minimum=1, maximum=120, unit="min"),
        CONF_MAX_CONFIRM_TESTS: NumberRange(minimum=0, maximum=5),
        CONF_OUTAGE_PROBE_INTERVAL: NumberRange(minimum=1, maximum=30, unit="min"),
        CONF_MONTHLY_DATA_BUDGET: NumberRange(minimum=0, maximum=10_000, unit="GB"),
        CONF_TWEET_COOLDOWN: NumberRange(minimum=0, maximum=168, unit="h"),
        CONF_TWEET_DAILY_CAP: NumberRange(minimum=1, maximum=50),
        # A round costs about 580 bytes: every minute stays within 1 MB a day.
        CONF_WATCH_INTERVAL: NumberRange(minimum=0, maximum=10, unit="min"),
        CONF_WATCH_FAILURES: NumberRange(minimum=1, maximum=10),
        CONF_BUSY_SHARE: NumberRange(minimum=1, maximum=100, unit="%"),
        # Waits of 10 minutes: at most an hour late, then the test runs anyway.
        CONF_MAX_DEFERRALS: NumberRange(minimum=0, maximum=6),
    }
)

# Speed tests: one socket operation may wait this long, a whole test the deadline.
SPEEDTEST_REQUEST_TIMEOUT: Final = 10.0
SPEEDTEST_DEADLINE: Final = timedelta(minutes=3)

# The judgement: tests older than this no longer count as evidence (longer when the
# test interval needs it to hold a whole window), and a slow line counts as fine again
# only once its medians clear the limits by this relative margin.
EVIDENCE_MAX_AGE: Final = timedelta(hours=6)
RESTORE_MARGIN: Final = 0.10

# The post queue: at most this many posts, none older than a day (a complaint about
# yesterday's evening reads oddly today); retries after passing failures back off.
OUTBOX_MAX_ITEMS: Final = 20
OUTBOX_MAX_AGE: Final = timedelta(hours=24)
POST_RETRY_INITIAL: Final = timedelta(minutes=1)
POST_RETRY_MAX: Final = timedelta(minutes=30)

# History kept for "slow over several tests": whichever of the two keeps more.
HISTORY_MIN_AGE: Final = timedelta(days=7)
HISTORY_MIN_COUNT: Final = 500

# Stores read record by record: what cannot be read is kept in a side file, and a
# repair issue of the store's own says so.
HISTORY_STORE: Final = "history"
OUTBOX_STORE: Final = "outbox"
UNREADABLE_ISSUES: Final[Mapping[str, str]] = MappingProxyType(
    {HISTORY_STORE: "unreadable_history", OUTBOX_STORE: "unreadable_outbox"}
)

# --- Contract speeds and monthly compliance -------------------------------------------
# Version 2 of the config entry stores the contract's speeds under CONTRACT_SPEED_KEYS;
# version 1 knew only the plan, which is the contract's maximum.
CONFIG_ENTRY_VERSION: Final = 2
LEGACY_PLAN_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "plan_download": CONF_CONTRACT_MAXIMUM_DOWNLOAD,
        "plan_upload": CONF_CONTRACT_MAXIMUM_UPLOAD,
    }
)
# Not stored: a one-time shortcut in the options that copies the contract's minimum
# speeds into the user's own minimums.
CONF_USE_CONTRACT_MINIMUM: Final = "use_contract_minimum"

# --- The measurement campaign ---------------------------------------------------------
# Its data is estimated from the average of this many recent valid tests; before there
# is one, from a test of a fast line (about 10 s each way at 100 Mbit/s down and 40
# up), so that an unknown cost is not taken for a small one.
CAMPAIGN_ESTIMATE_TESTS: Final = 10
CAMPAIGN_FALLBACK_TEST_BYTES: Final = 200_000_000

# ---------------------------------------------------------------------------------
# The connectivity watch between tests, and the shutdown post.
# Save the watch's state at most this often while the line's state holds; a change is
# saved at once. Outage and DNS episodes kept for the sensors and diagnostics.
WATCH_SAVE_DELAY: Final = timedelta(minutes=5)
WATCH_EPISODES_KEPT: Final = 100
# While Home Assistant stops, posts that are due get this long to reach X; what does
# not go out stays queued on disk for the next start.
SHUTDOWN_SEND_WINDOW: Final = timedelta(seconds=5)

# ---------------------------------------------------------------------------------
# The line's other traffic (traffic.py).
# A scheduled test that finds the line busy waits this long before it looks again:
# household sessions (a film, a game update) last minutes, not seconds.
BUSY_DEFERRAL_DELAY: Final = timedelta(minutes=10)
# Before a scheduled test, the host's counters are read this far apart.
PRE_TEST_SAMPLE: Final = timedelta(seconds=3)
# After a test, router sensors get this long to report a state from after its end (they
# poll every 30 s or so); one that does not leaves the test unknown, not busy.
ROUTER_REPORT_WAIT: Final = timedelta(seconds=75)
# Router samples kept per sensor: enough for a test's window and the month's total.
ROUTER_SAMPLES_KEPT: Final = 200
