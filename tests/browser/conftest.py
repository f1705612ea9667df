"""A real Home Assistant, the project's fakes, and Chromium driven by Playwright.

One Home Assistant runs per test module, in its own temporary configuration folder
prepared by ``scripts/develop --prepare-only`` (the configuration ``scripts/develop``
uses), on a free port. Its speed tests reach the fake speedtest.net through the proxy
variables of its environment; its X client reaches the fake X API through
``fakes.home_assistant``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import os
from pathlib import Path
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
import pytest

from fakes.home_assistant import X_ORIGIN_VARIABLE
from fakes.private_network import enter_private_network
from fakes.speedtest import FakeSpeedtest
from fakes.x_api import FakeXApi
from tests.browser.ui import register_selectors

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-proxy-server",
]
STARTUP_DEADLINE = 120.0
# A line of Home Assistant's log that begins an entry; the lines after it until the
# next one (a traceback) belong to it.
LOG_ENTRY_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
# How long a page may take to show what a step waits for; generous, as the machine
# running the tests may be busy with other work.
UI_TIMEOUT_MS = 30_000
expect.set_options(timeout=UI_TIMEOUT_MS)


def pytest_configure(config: pytest.Config) -> None:
    """Give Home Assistant, the fakes and Chromium a loopback of their own.

    The speed tests they run are judged against the loopback's other traffic; with the
    unit tests running alongside, that traffic would make them busy.
    """
    enter_private_network(with_lan=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    """--screenshots: save the pictures of the README into docs/images/."""
    parser.addoption(
        "--screenshots",
        action="store_true",
        help="save the README's screenshots into docs/images/",
    )


@dataclass
class HomeAssistantServer:
    """A running Home Assistant and the fakes it talks to."""

    url: str
    config: Path
    log: Path
    speedtest: FakeSpeedtest
    x_api: FakeXApi

    def log_errors(self) -> list[str]:
        """The errors Home Assistant logged, each with the traceback that follows it."""
        log_file = self.config / "home-assistant.log"
        entries: list[str] = []
        for line in log_file.read_text(errors="replace").splitlines():
            if LOG_ENTRY_START.match(line) or not entries:
                entries.append(line)
            else:
                entries[-1] += "\n" + line
        return [entry for entry in entries if " ERROR " in entry.partition("\n")[0]]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"Home Assistant exited with {process.returncode}:\n{log.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{url}/manifest.json", timeout=2):  # noqa: S310
                return
        except urllib.error.URLError, OSError:
            time.sleep(0.5)
    pytest.fail(f"Home Assistant did not serve {url} in {STARTUP_DEADLINE} s")


@pytest.fixture(scope="module")
def home_assistant(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HomeAssistantServer]:
    """Home Assistant with ISP Watch, started as scripts/develop starts it."""
    folder = tmp_path_factory.mktemp("home-assistant")
    config = folder / "config"
    subprocess.run(  # noqa: S603 - the project's own script
        [ROOT / "scripts" / "develop", "--config", config, "--prepare-only"], check=True
    )
    speedtest = FakeSpeedtest(folder)
    speedtest.start()
    x_api = FakeXApi()
    x_api.start()
    port = free_port()
    environment = speedtest.environment() | {
        "SETUP_PORT": str(port),
        X_ORIGIN_VARIABLE: x_api.origin,
    }
    log = folder / "hass.out"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "fakes.home_assistant",
                "--config",
                config,
                "--skip-pip",
            ],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process, log)
        yield HomeAssistantServer(url, config, log, speedtest, x_api)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        speedtest.stop()
        x_api.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: scripts/setup installs it")
        pytest.skip(f"{CHROMIUM} is missing: run scripts/setup as root")
    with sync_playwright() as driver:
        register_selectors(driver)
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def page(browser: Browser, home_assistant: HomeAssistantServer) -> Iterator[Page]:
    """One browser tab for the whole walk of a module, in English."""
    context = browser.new_context(
        base_url=home_assistant.url,
        locale="en-US",
        timezone_id="UTC",
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest) -> Path | None:
    """Where to save the README's pictures; None unless --screenshots was given."""
    if not request.config.getoption("--screenshots"):
        return None
    folder = ROOT / "docs" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
