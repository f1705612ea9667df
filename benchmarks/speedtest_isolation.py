"""Child-process speed tests against speedtest-cli in an executor thread, side by side.

Run from the repository root:

    .venv/bin/python benchmarks/speedtest_isolation.py [--rate 100] [--length 5]

Each way of running a test gets a fresh interpreter, so memory numbers do not mix:

- child: ISP Watch's SpeedTestClient, which runs the test in a child process;
- thread: speedtest-cli in the event loop's executor, the way Home Assistant's core
  speedtestdotnet integration runs it (secure=True, upload with pre-allocation).

In both, a ticker asks for a 5 ms sleep on the event loop, over and over, during the
test; how late it wakes up is the event-loop lag every other integration would feel.
The process's resident memory is read from /proc before and at its peak. Both run
against the fake speedtest.net from the test suite at the configured rate, so accuracy
is the measured rate against the rate the fake allows. Config-entry setup time is
measured in a test Home Assistant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TICK = 0.005


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


async def _ticker(lags: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(TICK)
        lags.append((loop.time() - start - TICK) * 1000)


def _serve_fake(rate: float, length: int) -> None:
    """Run the fake speedtest.net in this process until stdin closes."""
    from tests.fake_speedtest import FakeSpeedtest

    fake = FakeSpeedtest(
        Path(tempfile.mkdtemp()),
        download_mbps=rate,
        upload_mbps=rate / 2,
        test_length=length,
    )
    fake.start()
    print(json.dumps(fake.environment()), flush=True)
    sys.stdin.read()
    fake.stop()


async def _measure(mode: str, rate: float, length: int) -> dict[str, Any]:
    # As in Home Assistant, the integration is imported before any test runs.
    from custom_components.isp_watch.models import Measurement
    from custom_components.isp_watch.speedtest_client import (
        SpeedTestClient,
        SpeedTestSettings,
    )
    import homeassistant  # noqa: F401

    # The fake line runs in its own process, so its threads do not share this GIL.
    fake = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
        [
            sys.executable,
            __file__,
            "--mode",
            "fake",
            "--rate",
            str(rate),
            "--length",
            str(length),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None  # noqa: S101
    environment = json.loads(fake.stdout.readline())
    if mode == "thread":
        import os

        os.environ.update(environment)
        import speedtest

    baseline = _rss_kib("VmRSS")
    lags: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(lags, stop))
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    if mode == "child":
        outcome = await SpeedTestClient(environment=environment).run_test(
            SpeedTestSettings()
        )
        assert isinstance(outcome, Measurement), outcome  # noqa: S101
        download, upload = outcome.download_mbps, outcome.upload_mbps
    else:

        def run() -> tuple[float, float]:
            tester = speedtest.Speedtest(secure=True)
            tester.get_servers()
            tester.get_best_server()
            tester.download()
            tester.upload()
            return tester.results.download / 1e6, tester.results.upload / 1e6

        download, upload = await loop.run_in_executor(None, run)
    duration = time.perf_counter() - started
    stop.set()
    await ticker
    fake.communicate("")
    lags.sort()
    return {
        "mode": mode,
        "duration_s": round(duration, 1),
        "lag_max_ms": round(max(lags), 1),
        "lag_p99_ms": round(lags[int(len(lags) * 0.99)], 1),
        "lag_median_ms": round(statistics.median(lags), 2),
        "rss_growth_mb": round((_rss_kib("VmHWM") - baseline) / 1024, 1),
        "download_accuracy": round(download / rate, 3),
        "upload_accuracy": round(upload / (rate / 2), 3),
    }


async def _setup_time() -> dict[str, Any]:
    from pytest_homeassistant_custom_component.common import (
        MockConfigEntry,
        async_test_home_assistant,
    )

    from homeassistant import loader
    from tests.common import ENTRY_DATA, ENTRY_OPTIONS

    timings = []
    async with async_test_home_assistant() as hass:
        hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
        for _ in range(5):
            entry = MockConfigEntry(
                domain="isp_watch", data=ENTRY_DATA, options=ENTRY_OPTIONS
            )
            entry.add_to_hass(hass)
            started = time.perf_counter()
            await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            timings.append((time.perf_counter() - started) * 1000)
            await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_stop(force=True)
    # The first setup also imports the integration's modules.
    return {
        "first_setup_ms": round(timings[0], 1),
        "setup_median_ms": round(statistics.median(timings[1:]), 1),
    }


def main() -> None:
    """Run both ways in fresh interpreters and print the comparison."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100.0, help="Mbit/s down")
    parser.add_argument("--length", type=int, default=5, help="seconds per phase")
    parser.add_argument("--mode", choices=["child", "thread", "setup", "fake"])
    arguments = parser.parse_args()
    if arguments.mode == "fake":
        _serve_fake(arguments.rate, arguments.length)
        return
    if arguments.mode == "setup":
        print(json.dumps(asyncio.run(_setup_time())))
        return
    if arguments.mode:
        print(
            json.dumps(
                asyncio.run(_measure(arguments.mode, arguments.rate, arguments.length))
            )
        )
        return
    rows = []
    for mode in ("child", "thread"):
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--rate",
                str(arguments.rate),
                "--length",
                str(arguments.length),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    setup = json.loads(
        subprocess.run(
            [sys.executable, __file__, "--mode", "setup"],
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    keys = list(rows[0])[1:]
    print(f"{'':22}" + "".join(f"{row['mode']:>12}" for row in rows) + "   ratio")
    for key in keys:
        values = [row[key] for row in rows]
        ratio = values[1] / values[0] if values[0] else float("inf")
        print(
            f"{key:22}"
            + "".join(f"{value:>12}" for value in values)
            + f"   {ratio:.1f}x"
        )
    print(
        f"ISP Watch config-entry setup: first {setup['first_setup_ms']} ms, "
        f"then median {setup['setup_median_ms']} ms (no network I/O)"
    )


if __name__ == "__main__":
    main()
