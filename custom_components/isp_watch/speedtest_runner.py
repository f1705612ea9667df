"""Child side of a speed test: run one operation with speedtest-cli, print JSON.

Started by speedtest_client as `python -P speedtest_runner.py '<json arguments>'`. It
imports nothing from the integration, so it runs as a plain script.

speedtest-cli hides many failures: download errors count as 0 bytes, an upload answered
with an HTTP error counts as fully sent, dead latency probes still pick a server with a
ping of 1,800,000 ms, and a cancelled test returns numbers from partial data. This
runner watches every request the library makes and reports a typed failure instead of
numbers that would look like a slow line.
"""

from __future__ import annotations

from datetime import UTC, datetime
import http.client
import json
import os
import signal
import socket
import sys
import threading
from typing import Any
import urllib.error
import urllib.request
import warnings

# speedtest-cli calls datetime.utcnow() and Event.isSet(), both deprecated on 3.14.
warnings.filterwarnings("ignore", category=DeprecationWarning)

import speedtest  # noqa: E402

# A latency probe that failed counts 3600 s in speedtest-cli's average of three
# samples, so any average above this means at least one probe did not answer.
DEAD_PROBE_PING_MS = 600_000.0
ALL_PROBES_DEAD_PING_MS = 1_800_000.0
HTTP_SERVICE_ERRORS = {403, 429}


class ShutdownEvent(threading.Event):
    """The event speedtest-cli polls, under the name it still uses."""

    def isSet(self) -> bool:  # noqa: N802 - the name speedtest-cli calls
        """Whether the test should stop."""
        return self.is_set()


class RequestLedger:
    """Counts what happened to each request speedtest-cli made."""

    def __init__(self) -> None:
        """Start with no requests."""
        self.lock = threading.Lock()
        self.failed: list[str] = []
        self.http_errors: list[int] = []
        self.timeouts = 0

    def fail(self, what: str, error: BaseException) -> None:
        """Remember a failed request and why, without any address in it."""
        cause = error.reason if isinstance(error, urllib.error.URLError) else error
        with self.lock:
            if isinstance(error, urllib.error.HTTPError):
                detail = f"HTTP {error.code}"
                self.http_errors.append(error.code)
            else:
                detail = type(cause).__name__
            if isinstance(cause, TimeoutError):
                self.timeouts += 1
            self.failed.append(f"{what}: {detail}")


class CountingResponse:
    """Wraps a response so a body that breaks off counts as a failed request."""

    def __init__(self, response: Any, ledger: RequestLedger, what: str) -> None:
        """Wrap `response`."""
        self._response = response
        self._ledger = ledger
        self._what = what
        self._received = 0
        length = response.headers.get("Content-Length")
        self._expected = int(length) if length and length.isdigit() else None

    def read(self, size: int = -1) -> bytes:
        """Read, noting a broken body."""
        try:
            data: bytes = self._response.read(size)
        except (OSError, http.client.HTTPException) as error:
            self._ledger.fail(self._what, error)
            raise
        self._received += len(data)
        # http.client reports a connection closed before Content-Length as a
        # plain end of the body; only the count tells a short body from a whole one.
        if not data and size and self._expected and self._received < self._expected:
            self._ledger.fail(
                self._what, http.client.IncompleteRead(b"", self._expected)
            )
        return data

    def __getattr__(self, name: str) -> Any:
        """Everything else as the response has it."""
        return getattr(self._response, name)


def watch_requests(tester: speedtest.Speedtest, ledger: RequestLedger) -> None:
    """Let the ledger see every request the tester's opener makes."""
    opener = tester._opener  # noqa: SLF001 - the library keeps its opener private
    open_request = opener.open

    def counted_open(request: urllib.request.Request, *args: Any) -> Any:
        what = "upload" if request.data is not None else "download"
        try:
            response = open_request(request, *args)
        except speedtest.SpeedtestUploadTimeout:
            # The upload reached its time budget: the normal end of an upload.
            raise
        except (OSError, http.client.HTTPException) as error:
            ledger.fail(what, error)
            raise
        return CountingResponse(response, ledger, what)

    opener.open = counted_open


def failure(kind: str, reason: str, **extra: Any) -> dict[str, Any]:
    """A failure in the JSON form the parent reads."""
    return {"type": "failure", "kind": kind, "reason": reason, **extra}


def classify_config_error(error: BaseException) -> dict[str, Any]:
    """Why the speedtest.net configuration could not be read."""
    cause: BaseException | None = error
    if isinstance(error, speedtest.ConfigRetrievalError) and error.args:
        cause = error.args[0] if isinstance(error.args[0], BaseException) else None
    if isinstance(cause, urllib.error.HTTPError):
        return failure(
            "service_unavailable", f"speedtest.net answered HTTP {cause.code}"
        )
    if isinstance(cause, urllib.error.URLError):
        cause = cause.reason if isinstance(cause.reason, BaseException) else None
    if isinstance(cause, TimeoutError | socket.timeout):
        return failure("timeout", "speedtest.net did not answer in time")
    if isinstance(cause, OSError):
        return failure(
            "connection", f"could not reach speedtest.net ({type(cause).__name__})"
        )
    return failure(
        "service_unavailable",
        f"speedtest.net sent an unusable configuration ({type(error).__name__})",
    )


def server_info(server: dict[str, Any]) -> dict[str, Any]:
    """The server fields worth keeping."""
    return {
        "id": int(server["id"]),
        "name": str(server.get("name", "")),
        "sponsor": str(server.get("sponsor", "")),
        "country": str(server.get("country", "")),
        "distance_km": round(float(server.get("d", 0.0)), 1),
    }


def connect(arguments: dict[str, Any], shutdown: ShutdownEvent) -> Any:
    """Fetch the configuration; a failure comes back as a dict."""
    try:
        return speedtest.Speedtest(
            source_address=arguments.get("source_address"),
            timeout=float(arguments["timeout"]),
            secure=bool(arguments["secure"]),
            shutdown_event=shutdown,
        )
    except (
        speedtest.SpeedtestException,
        OSError,
        http.client.HTTPException,
        NameError,
        KeyError,
        TypeError,
        ValueError,
    ) as error:
        return classify_config_error(error)


def find_servers(
    tester: speedtest.Speedtest, server_ids: list[int], ledger: RequestLedger
) -> dict[str, Any] | None:
    """Load the server list; a failure comes back as a dict."""
    try:
        tester.get_servers(servers=list(server_ids) or None)
    except speedtest.NoMatchedServers:
        return failure("no_server", f"server {server_ids} is not offered")
    except speedtest.SpeedtestServersError:
        return failure("service_unavailable", "speedtest.net sent a broken server list")
    except TimeoutError:
        return failure("timeout", "the server list did not arrive in time")
    except (OSError, http.client.HTTPException) as error:
        return failure(
            "connection", f"the server list broke off ({type(error).__name__})"
        )
    if not tester.servers:
        if ledger.http_errors or ledger.failed:
            return failure(
                "service_unavailable", "speedtest.net refused the server list"
            )
        return failure("no_server", "speedtest.net offered no test servers")
    return None


def run_test(arguments: dict[str, Any], shutdown: ShutdownEvent) -> dict[str, Any]:
    """A whole test, judged before any number leaves this process."""
    started = datetime.now(UTC)
    tester = connect(arguments, shutdown)
    if isinstance(tester, dict):
        return tester
    ledger = RequestLedger()
    watch_requests(tester, ledger)
    if problem := find_servers(tester, arguments["server_ids"], ledger):
        return problem
    try:
        best = tester.get_best_server()
    except speedtest.SpeedtestBestServerFailure:
        return failure("no_server", "no test server answered")
    except TimeoutError:
        return failure("timeout", "a test server stalled while measuring latency")
    except (OSError, http.client.HTTPException) as error:
        return failure("no_server", f"a test server broke off ({type(error).__name__})")
    ping = float(best["latency"])
    if ping >= ALL_PROBES_DEAD_PING_MS:
        return failure("no_server", "no test server answered the latency probes")
    if ping >= DEAD_PROBE_PING_MS:
        return failure("invalid_result", "some latency probes did not answer")
    tester.download()
    # Building each upload body when it is sent keeps ~150 MB out of memory.
    tester.upload(pre_allocate=False)
    results = tester.results
    used = {
        "bytes_received": int(results.bytes_received),
        "bytes_sent": int(results.bytes_sent),
    }
    if shutdown.is_set():
        return failure("cancelled", "the test was stopped", **used)
    if ledger.failed and ledger.timeouts == len(ledger.failed):
        return failure(
            "timeout", f"{ledger.timeouts} requests stalled and timed out", **used
        )
    if ledger.failed:
        first = ", ".join(sorted(set(ledger.failed))[:3])
        return failure(
            "invalid_result",
            f"{len(ledger.failed)} requests failed ({first})",
            **used,
        )
    if results.bytes_received <= 0 or results.download <= 0:
        return failure("invalid_result", "nothing was downloaded", **used)
    if results.bytes_sent <= 0 or results.upload <= 0:
        return failure("invalid_result", "nothing was uploaded", **used)
    client = tester.config.get("client", {})
    return {
        "type": "measurement",
        "download_mbps": results.download / 1_000_000,
        "upload_mbps": results.upload / 1_000_000,
        "ping_ms": ping,
        "server": server_info(best),
        "isp": str(client.get("isp", "")),
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        **used,
    }


def run_probe(arguments: dict[str, Any], shutdown: ShutdownEvent) -> dict[str, Any]:
    """Only the configuration: a few kilobytes that tell whether the line is up."""
    tester = connect(arguments, shutdown)
    if isinstance(tester, dict):
        return tester
    return {"type": "reachable"}


def run_servers(arguments: dict[str, Any], shutdown: ShutdownEvent) -> dict[str, Any]:
    """The offered servers, nearest first."""
    tester = connect(arguments, shutdown)
    if isinstance(tester, dict):
        return tester
    ledger = RequestLedger()
    watch_requests(tester, ledger)
    if problem := find_servers(tester, [], ledger):
        return problem
    servers = [
        server_info(server)
        for distance in sorted(tester.servers)
        for server in tester.servers[distance]
    ]
    return {"type": "servers", "servers": servers}


OPERATIONS = {"test": run_test, "probe": run_probe, "servers": run_servers}


def main() -> None:
    """Run the operation named in the arguments and print its JSON answer."""
    arguments = json.loads(sys.argv[1])
    started = datetime.now(UTC).isoformat()
    shutdown = ShutdownEvent()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: shutdown.set())
    try:
        answer = OPERATIONS[arguments["operation"]](arguments, shutdown)
    except TimeoutError:
        answer = failure("timeout", "speedtest.net stalled")
    except (OSError, http.client.HTTPException) as error:
        answer = failure("connection", f"the connection broke ({type(error).__name__})")
    if answer["type"] == "failure":
        answer.setdefault("started", started)
        answer.setdefault("finished", datetime.now(UTC).isoformat())
    os.write(1, json.dumps(answer).encode() + b"\n")


if __name__ == "__main__":
    main()
