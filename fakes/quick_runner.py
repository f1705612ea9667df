"""The speed-test runner with short measuring windows, for tests that run many tests.

A campaign needs 30 tests. The real runner measures each direction for at least 4
seconds, until its rate has been steady for a while, so 30 tests take minutes. This
script loads the real runner from its file, shortens only how long it measures before
it trusts a rate, and runs it: the protocol, the engine and the line (the fake
speedtest.net) stay the real ones, and the rates it finds are measured, not made up.
The fake's constant rate is steady at once, so the shorter windows lose no accuracy
that the tests rely on (they keep a wide margin around every limit).

Point `speedtest_client.RUNNER` at PATH to use it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
import sys

PATH = Path(__file__)
RUNNER = (
    Path(__file__).parent.parent
    / "custom_components"
    / "isp_watch"
    / "speedtest_runner.py"
)
# Seconds, samples and windows scaled down about tenfold.
QUICK = {
    "SAMPLE_INTERVAL": 0.02,
    "RATE_WINDOW": 0.1,
    "STEADY_WINDOW": 0.15,
    "STEADY_SAMPLES": 2,
    "MIN_DIRECTION_SECONDS": 0.3,
    "DOWNLOAD_REQUEST_SECONDS": 0.2,
    "UPLOAD_REQUEST_SECONDS": 0.1,
    "LOADED_LATENCY_INTERVAL": 0.05,
    "FIRST_STREAMS": 1,
    "MAX_STREAMS": 1,
}


def main() -> None:
    """Run the real runner's main with the quick windows."""
    spec = importlib.util.spec_from_file_location("speedtest_runner", RUNNER)
    assert spec is not None
    assert spec.loader is not None
    runner = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = runner
    spec.loader.exec_module(runner)
    for name, value in QUICK.items():
        assert hasattr(runner, name), f"the runner has no {name} any more"
        setattr(runner, name, value)
    runner.main()


if __name__ == "__main__":
    main()
