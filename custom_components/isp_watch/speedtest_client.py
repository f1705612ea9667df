"""Run speed tests in a child process and read back a typed result.

speedtest-cli is synchronous, threads heavily and builds large upload bodies; in Home
Assistant's process it holds the GIL long enough to delay the event loop by tens of
milliseconds and grows memory by ~155 MB. A child process keeps both out of Home
Assistant, returns its memory after every test, and can always be stopped: terminate,
then kill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
import json
import logging
from pathlib import Path
import sys
from typing import Any, Self

_LOGGER = logging.getLogger(__name__)

RUNNER = Path(__file__).with_name("speedtest_runner.py")
# How long the child may take to wind down after SIGTERM before it is killed.
TERMINATE_GRACE = 1.0


class FailureKind(StrEnum):
    """Why a test produced no measurement."""

    SERVICE_UNAVAILABLE = "service_unavailable"
    NO_SERVER = "no_server"
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    INVALID_RESULT = "invalid_result"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class TestServer:
    """A speedtest.net test server."""

    id: int
    name: str
    sponsor: str
    country: str
    distance_km: float

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "id": self.id,
            "name": self.name,
            "sponsor": self.sponsor,
            "country": self.country,
            "distance_km": self.distance_km,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the JSON-safe form."""
        return cls(
            id=int(data["id"]),
            name=str(data["name"]),
            sponsor=str(data["sponsor"]),
            country=str(data["country"]),
            distance_km=float(data["distance_km"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """A speed test that produced trustworthy numbers."""

    download_mbps: float
    upload_mbps: float
    ping_ms: float
    bytes_received: int
    bytes_sent: int
    server: TestServer
    isp: str
    started: datetime
    finished: datetime

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe form for the history store."""
        return {
            "type": "measurement",
            "download_mbps": self.download_mbps,
            "upload_mbps": self.upload_mbps,
            "ping_ms": self.ping_ms,
            "bytes_received": self.bytes_received,
            "bytes_sent": self.bytes_sent,
            "server": self.server.as_dict(),
            "isp": self.isp,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the JSON-safe form."""
        return cls(
            download_mbps=float(data["download_mbps"]),
            upload_mbps=float(data["upload_mbps"]),
            ping_ms=float(data["ping_ms"]),
            bytes_received=int(data["bytes_received"]),
            bytes_sent=int(data["bytes_sent"]),
            server=TestServer.from_dict(data["server"]),
            isp=str(data["isp"]),
            started=datetime.fromisoformat(data["started"]),
            finished=datetime.fromisoformat(data["finished"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TestFailure:
    """A test that produced no trustworthy numbers, and why."""

    kind: FailureKind
    reason: str
    started: datetime
    finished: datetime
    bytes_received: int = 0
    bytes_sent: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe form for the history store."""
        return {
            "type": "failure",
            "kind": self.kind.value,
            "reason": self.reason,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "bytes_received": self.bytes_received,
            "bytes_sent": self.bytes_sent,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the JSON-safe form."""
        return cls(
            kind=FailureKind(data["kind"]),
            reason=str(data["reason"]),
            started=datetime.fromisoformat(data["started"]),
            finished=datetime.fromisoformat(data["finished"]),
            bytes_received=int(data.get("bytes_received", 0)),
            bytes_sent=int(data.get("bytes_sent", 0)),
        )


type TestOutcome = Measurement | TestFailure


def outcome_from_dict(data: Mapping[str, Any]) -> TestOutcome:
    """Read a stored measurement or failure."""
    if data["type"] == "measurement":
        return Measurement.from_dict(data)
    return TestFailure.from_dict(data)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeedTestSettings:
    """How a test is run."""

    server_ids: tuple[int, ...] = ()
    secure: bool = True
    request_timeout: float = 10.0
    deadline: float = 180.0
    source_address: str | None = None


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
        """Run a whole test: best server, download, upload."""
        answer = await self._run("test", settings)
        if isinstance(answer, TestFailure):
            return answer
        return outcome_from_dict(answer)

    async def probe(self, settings: SpeedTestSettings) -> TestFailure | None:
        """Fetch only the speedtest.net configuration: is the internet there?"""
        answer = await self._run("probe", settings)
        if isinstance(answer, TestFailure):
            return answer
        if answer["type"] == "failure":
            return TestFailure.from_dict(answer)
        return None

    async def list_servers(
        self, settings: SpeedTestSettings
    ) -> list[TestServer] | TestFailure:
        """The test servers speedtest.net offers, nearest first."""
        answer = await self._run("servers", settings)
        if isinstance(answer, TestFailure):
            return answer
        if answer["type"] == "failure":
            return TestFailure.from_dict(answer)
        return [TestServer.from_dict(server) for server in answer["servers"]]

    async def _run(
        self, operation: str, settings: SpeedTestSettings
    ) -> dict[str, Any] | TestFailure:
        started = datetime.now(UTC)
        arguments = json.dumps(
            {
                "operation": operation,
                "server_ids": list(settings.server_ids),
                "secure": settings.secure,
                "timeout": settings.request_timeout,
                "source_address": settings.source_address,
            }
        )
        process = await asyncio.create_subprocess_exec(
            self._python,
            # -P: the integration's folder must not shadow modules the runner imports.
            "-P",
            str(RUNNER),
            arguments,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._environment,
        )
        try:
            async with asyncio.timeout(settings.deadline):
                stdout, stderr = await process.communicate()
        except TimeoutError:
            await _stop(process)
            return TestFailure(
                kind=FailureKind.TIMEOUT,
                reason=f"no result within {settings.deadline:.0f} s",
                started=started,
                finished=datetime.now(UTC),
            )
        except asyncio.CancelledError:
            await _stop(process)
            raise
        try:
            answer: dict[str, Any] = json.loads(stdout)
        except ValueError:
            last_line = stderr.decode(errors="replace").strip().splitlines()[-1:]
            _LOGGER.debug(
                "Speed test runner exited with %s: %s", process.returncode, last_line
            )
            return TestFailure(
                kind=FailureKind.INVALID_RESULT,
                reason=f"the test runner exited with code {process.returncode}",
                started=started,
                finished=datetime.now(UTC),
            )
        # One clock for the whole history: Home Assistant's, not the child's.
        return answer | {
            "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(),
        }


async def _stop(process: asyncio.subprocess.Process) -> None:
    """End the child: ask first, then insist."""
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        async with asyncio.timeout(TERMINATE_GRACE):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
