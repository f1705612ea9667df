"""The runner's contract as a process: one answer on stdout, quiet stderr, SIGTERM.

These start speedtest_runner.py the way speedtest_client does, to check what the client
relies on but cannot see: nothing but the answer reaches the pipes, and a stopped
runner answers and exits by itself instead of waiting to be killed.
"""

from __future__ import annotations

from collections.abc import Iterator
import json
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from custom_components.isp_watch import speedtest_runner
from custom_components.isp_watch.models import FailureKind
from custom_components.isp_watch.speedtest_client import RUNNER
from fakes.speedtest import CLIENT_IP, FakeSpeedtest
from tests.common import LOADED_MACHINE_MS

# Far longer than any of these tests needs; only a hang would reach it.
HANG_GUARD = 30


@pytest.fixture
def line(fake_speedtest: FakeSpeedtest) -> FakeSpeedtest:
    """The fake line, set for short tests."""
    fake_speedtest.test_length = 1
    fake_speedtest.upload_ratio = 3
    fake_speedtest.latency_ms = 2
    return fake_speedtest


def _arguments(operation: str, timeout: float) -> str:
    return json.dumps(
        {
            "operation": operation,
            "server_ids": [],
            "secure": True,
            "timeout": timeout,
            "source_address": None,
            "library_path": None,
        }
    )


@pytest.fixture
def start_runner(line: FakeSpeedtest) -> Iterator[Any]:
    """Start runners as the client does; none outlives the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        operation: str, *, timeout: float = 1.0, strict: bool = False
    ) -> subprocess.Popen[bytes]:
        environment = line.environment()
        if strict:
            # Development mode shows ResourceWarnings and unraisable exceptions, and
            # every warning is an error.
            environment |= {"PYTHONDEVMODE": "1", "PYTHONWARNINGS": "error"}
        process = subprocess.Popen(  # noqa: S603 - our runner, our interpreter
            [sys.executable, "-P", str(RUNNER), _arguments(operation, timeout)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def _wait_for(condition: Any) -> None:
    """Wait until `condition()` is true, bounded by the hang guard."""
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, "the runner never got there"
        time.sleep(0.02)


def _only_answer(stdout: bytes) -> dict[str, Any]:
    """The one line of standard output, as JSON."""
    (line,) = stdout.splitlines()
    answer: dict[str, Any] = json.loads(line)
    return answer


@pytest.mark.parametrize("operation", ["probe", "servers", "test"])
def test_answer_is_all_it_prints(start_runner: Any, operation: str) -> None:
    """Each operation prints one JSON line and nothing on stderr, even when strict."""
    # Nothing here stalls: a generous timeout keeps a loaded machine from failing it.
    process = start_runner(operation, strict=True, timeout=5.0)

    stdout, stderr = process.communicate(timeout=HANG_GUARD)

    assert process.returncode == 0
    assert stderr == b""
    answer = _only_answer(stdout)
    assert (
        answer["type"]
        == {
            "probe": "reachable",
            "servers": "servers",
            "test": "measurement",
        }[operation]
    )
    assert CLIENT_IP.encode() not in stdout


def test_broken_gzip_body_leaves_no_noise(
    start_runner: Any, line: FakeSpeedtest
) -> None:
    """A configuration that stalls while gzip is read times out without stderr noise."""
    line.faults.config_stall = True
    process = start_runner("probe", strict=True)

    stdout, stderr = process.communicate(timeout=HANG_GUARD)

    assert stderr == b""
    assert _only_answer(stdout) == {
        "type": "failure",
        "kind": "timeout",
        "reason": "speedtest.net configuration: timed out",
        "bytes_received": 0,
        "bytes_sent": 0,
    }


def test_sigterm_during_download(start_runner: Any, line: FakeSpeedtest) -> None:
    """SIGTERM: the runner answers cancelled with the data used, and exits by itself."""
    line.test_length = 30
    process = start_runner("test")
    _wait_for(lambda: line.bytes_served > 0)

    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=HANG_GUARD)

    assert process.returncode == 0
    answer = _only_answer(stdout)
    assert (answer["kind"], answer["reason"]) == ("cancelled", "the test was stopped")
    assert 0 < answer["bytes_received"] <= line.bytes_served
    assert line.count("POST") == 0


def test_sigterm_while_the_library_is_blocked(
    start_runner: Any, line: FakeSpeedtest
) -> None:
    """speedtest-cli does not look at the flag while it reads the configuration."""
    line.faults.config_stall = True
    process = start_runner("test", timeout=HANG_GUARD * 2)
    _wait_for(lambda: line.count("speedtest-config.php") > 0)

    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=HANG_GUARD)

    assert process.returncode == 0
    assert _only_answer(stdout)["kind"] == "cancelled"


def test_failure_kinds_match_the_client() -> None:
    """The runner spells every failure kind as the client reads it."""
    kinds = {
        speedtest_runner.SERVICE_UNAVAILABLE,
        speedtest_runner.NO_SERVER,
        speedtest_runner.CONNECTION,
        speedtest_runner.TIMEOUT,
        speedtest_runner.INVALID_RESULT,
        speedtest_runner.CANCELLED,
    }
    assert kinds == {kind.value for kind in FailureKind}


def test_jitter_and_latency_under_load(start_runner: Any, line: FakeSpeedtest) -> None:
    """Ping, jitter and latency under load come from the probes' samples.

    The fake delays every answer by at least what it is told, so each figure has an
    exact floor; a busy machine only adds to it. The delays are large enough that a
    loaded machine's margin still tells the right figure from a wrong one.
    """
    line.test_length = 3
    # Two probes of 60 ms, then one of 360 ms, in turn: the median is 60 ms, where the
    # mean would be 160. Nine steps of ten probes are three turns: six steps of 300 ms,
    # three of none, so the jitter is 200 ms (the samples' standard deviation would be
    # 138, the largest step 300). While data flows, a bloated buffer adds 150 ms
    # instead: a median of 210.
    line.latency_ms = 60
    line.latency_pattern_ms = (0.0, 0.0, 300.0)
    line.loaded_latency_ms = 150
    process = start_runner("test", timeout=5.0)

    stdout, _ = process.communicate(timeout=HANG_GUARD * 2)

    answer = _only_answer(stdout)
    assert answer["type"] == "measurement", answer
    assert answer["ping_samples"] >= 10
    assert 60 <= answer["ping_ms"] <= 60 + LOADED_MACHINE_MS
    # A busy moment lengthens a step or shortens it.
    assert 200 - LOADED_MACHINE_MS <= answer["jitter_ms"] <= 200 + LOADED_MACHINE_MS
    # Under load the probes see the added delay.
    assert 210 <= answer["download_latency_ms"] <= 210 + LOADED_MACHINE_MS
    assert 210 <= answer["upload_latency_ms"] <= 210 + LOADED_MACHINE_MS


SEGMENT = 1448


class _ConnectionAfterALoss:
    """A connection's struct tcp_info, laid out as Linux does: what the peer has."""

    def __init__(self, acknowledged: int, beyond_gap: int) -> None:
        self.acknowledged = acknowledged
        self.beyond_gap = beyond_gap

    def getsockopt(self, level: int, option: int, size: int) -> bytes:
        assert (level, option) == (socket.IPPROTO_TCP, socket.TCP_INFO)
        info = bytearray(size)
        info[16:20] = SEGMENT.to_bytes(4, "little")  # tcpi_snd_mss
        info[28:32] = self.beyond_gap.to_bytes(4, "little")  # tcpi_sacked
        info[120:128] = self.acknowledged.to_bytes(8, "little")  # tcpi_bytes_acked
        return bytes(info)


def test_upload_counts_what_arrived_beyond_a_loss_when_it_arrives() -> None:
    """A lost segment does not hold back the count of the ten that arrived after it.

    The server acknowledges them selectively at once; the cumulative count jumps only
    when the gap is filled. Counting them on arrival keeps a later window from being
    credited with bytes that crossed the line before it began.
    """
    before_loss = _ConnectionAfterALoss(acknowledged=100 * SEGMENT, beyond_gap=0)
    in_gap = _ConnectionAfterALoss(acknowledged=100 * SEGMENT, beyond_gap=10)
    gap_filled = _ConnectionAfterALoss(acknowledged=111 * SEGMENT, beyond_gap=0)

    counts = [
        speedtest_runner.kernel_count(connection, "upload")  # type: ignore[arg-type]
        for connection in (before_loss, in_gap, gap_filled)
    ]

    assert counts == [100 * SEGMENT, 110 * SEGMENT, 111 * SEGMENT]
