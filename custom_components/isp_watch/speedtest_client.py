"""Run speed tests in a child process and read back a typed result.

speedtest-cli is synchronous, threads heavily and builds large upload bodies; in Home
Assistant's process it holds the GIL long enough to delay the event loop by tens of
milliseconds and grows memory by ~155 MB. A child process (speedtest_runner.py) keeps
both out of Home Assistant, returns its memory after every test, and can always be
stopped: terminate, then kill. The child judges the numbers where it can see every
request; this side enforces the overall deadline and turns the child's JSON answer into
a Measurement or a TestFailure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import contextlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime
import importlib.util
import json
import logging
from pathlib import Path
import sys
from typing import Any, Final

from .const import SPEEDTEST_DEADLINE, SPEEDTEST_REQUEST_TIMEOUT
from .models import FailureKind, Measurement, TestFailure, TestOutcome, TestServer
from .traffic import host_traffic

_LOGGER = logging.getLogger(__name__)

RUNNER: Final = Path(__file__).with_name("speedtest_runner.py")
# How long the child may take to wind down after SIGTERM before it is killed. The
# runner answers within about 0.4 s, so a stop takes well under 2 s even if killed.
TERMINATE_GRACE: Final = 1.0


def _speedtest_folder() -> str | None:
    """Where speedtest-cli is installed, so the child finds it on any installation."""
    spec = importlib.util.find_spec("speedtest")
    return str(Path(spec.origin).parent) if spec and spec.origin else None


# Looked up once, at import (which Home Assistant does in its executor).
_SPEEDTEST_FOLDER: Final = _speedtest_folder()


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeedTestSettings:
    """How a test is run."""

    server_ids: tuple[int, ...] = ()
    """Empty: the best by latency among the nearest; one: that server; several: the
    best of those."""
    secure: bool = True
    request_timeout: float = SPEEDTEST_REQUEST_TIMEOUT
    """Seconds for each blocking socket operation."""
    deadline: float = SPEEDTEST_DEADLINE.total_seconds()
    """Seconds for the whole operation."""
    source_address: str | None = None
    """Local address to connect from (multi-WAN)."""


class SpeedTestClient:
    """Starts the runner for each operation and turns its answer into types."""

    def __init__(
        self,
        *,
        python: str = sys.executable,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """Use this interpreter and environment for the child (None: inherit)."""
        self._python = python
        self._environment = dict(environment) if environment is not None else None

    async def run_test(self, settings: SpeedTestSettings) -> TestOutcome:
        """Run a whole test: best server, download, upload.

        A failed test is returned, never raised. If the awaiting task is cancelled,
        the child is stopped and CancelledError propagates. A measurement carries the
        host's other traffic during each direction (Measurement.host_traffic).
        """
        answer = await self._ask("test", settings)
        outcome = _read(answer, "measurement", Measurement.from_dict)
        if isinstance(outcome, Measurement):
            readings = await asyncio.to_thread(
                host_traffic, answer.get("interface_use")
            )
            outcome = replace(outcome, host_traffic=readings)
        return outcome

    async def probe(self, settings: SpeedTestSettings) -> TestFailure | None:
        """Fetch only the speedtest.net configuration: None when it answers."""
        answer = await self._ask("probe", settings)
        return _read(answer, "reachable", lambda _answer: None)

    async def list_servers(
        self, settings: SpeedTestSettings
    ) -> list[TestServer] | TestFailure:
        """The test servers speedtest.net offers, nearest first."""
        answer = await self._ask("servers", settings)
        return _read(
            answer,
            "servers",
            lambda servers: [TestServer.from_dict(item) for item in servers["servers"]],
        )

    async def _ask(self, operation: str, settings: SpeedTestSettings) -> dict[str, Any]:
        """Run the child and return its answer, stamped with this side's clock."""
        started = datetime.now(UTC)
        arguments = json.dumps(
            {
                "operation": operation,
                "server_ids": list(settings.server_ids),
                "secure": settings.secure,
                "timeout": settings.request_timeout,
                "source_address": settings.source_address,
                "library_path": _SPEEDTEST_FOLDER,
            }
        )
        try:
            process = await asyncio.create_subprocess_exec(
                self._python,
                # -P: the integration's folder must not shadow what the runner imports.
                "-P",
                str(RUNNER),
                arguments,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._environment,
            )
        except OSError as error:
            return _failure(
                FailureKind.INVALID_RESULT,
                f"the test runner could not start ({type(error).__name__})",
                started,
            )
        # Shielded, so the output is still collected while the child is being stopped.
        talk = asyncio.ensure_future(process.communicate())
        try:
            async with asyncio.timeout(settings.deadline):
                stdout, stderr = await asyncio.shield(talk)
        except TimeoutError:
            # The child answers SIGTERM with the data the test used so far.
            used = _answer(await _stop(process, talk)) or {}
            return _failure(
                FailureKind.TIMEOUT,
                f"no result within {settings.deadline:g} s",
                started,
                bytes_received=used.get("bytes_received", 0),
                bytes_sent=used.get("bytes_sent", 0),
            )
        except asyncio.CancelledError:
            await _stop(process, talk)
            raise
        answer = _answer(stdout)
        if answer is None:
            return _crashed(process.returncode, stderr, started)
        # One clock for the whole history: the caller's, not the child's.
        return answer | _stamps(started)


def _read[ResultT](
    answer: Mapping[str, Any],
    expected: str,
    read: Callable[[Mapping[str, Any]], ResultT],
) -> ResultT | TestFailure:
    """The typed form of an answer of the `expected` type, or the failure it reports."""
    try:
        if answer["type"] == "failure":
            return TestFailure.from_dict(answer)
        if answer["type"] == expected:
            return read(answer)
    except KeyError, TypeError, ValueError:
        pass
    _LOGGER.warning("The speed test runner's answer was unreadable")
    return TestFailure.from_dict(
        _failure(
            FailureKind.INVALID_RESULT,
            "the test runner's answer was unreadable",
            datetime.fromisoformat(answer["started"]),
        )
    )


def _answer(stdout: bytes | None) -> dict[str, Any] | None:
    """The JSON object on the last line the child printed, if there is one."""
    lines = (stdout or b"").strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except IndexError, ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _stamps(started: datetime) -> dict[str, str]:
    return {"started": started.isoformat(), "finished": datetime.now(UTC).isoformat()}


def _failure(
    kind: FailureKind,
    reason: str,
    started: datetime,
    *,
    bytes_received: int = 0,
    bytes_sent: int = 0,
) -> dict[str, Any]:
    """A failure found on this side, in the child's answer form."""
    return {
        "type": "failure",
        "kind": kind.value,
        "reason": reason,
        "bytes_received": bytes_received,
        "bytes_sent": bytes_sent,
    } | _stamps(started)


def _crashed(
    returncode: int | None, stderr: bytes, started: datetime
) -> dict[str, Any]:
    """A failure for a child that ended without an answer."""
    if returncode is not None and returncode < 0:
        how = f"was ended by signal {-returncode}"
    else:
        how = f"exited with code {returncode}"
    last_line = stderr.decode(errors="replace").strip().splitlines()[-1:]
    _LOGGER.warning("The speed test runner %s without an answer: %s", how, last_line)
    return _failure(FailureKind.INVALID_RESULT, f"the test runner {how}", started)


async def _stop(
    process: asyncio.subprocess.Process,
    talk: asyncio.Future[tuple[bytes, bytes]],
) -> bytes | None:
    """End the child: ask first, then insist. What it printed if it ended when asked."""
    try:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            async with asyncio.timeout(TERMINATE_GRACE):
                stdout, _stderr = await asyncio.shield(talk)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.shield(talk)
            return None
        return stdout
    finally:
        # Also when this task is cancelled again while it waits: never leave the child.
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
