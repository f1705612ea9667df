"""A local speedtest.net that unmodified speedtest-cli completes a test against.

It speaks the legacy protocol speedtest-cli 2.1.3 uses: the configuration XML
(``speedtest-config.php``), the server list XML (``speedtest-servers-static.php`` and
its fallbacks), ``latency.txt``, ``random{N}x{N}.jpg`` downloads of the real sizes and
``upload.php``. Download and upload throughput are each one limit shared by all
connections; latency probes answer after the configured round-trip time. Fault modes
(``FakeSpeedtest.faults``) make it fail the ways the real service and real lines do.
It counts the body bytes it served and received, so a test can compare them with what
speedtest-cli reported.

How tests route speedtest-cli here: the speed test runs in a child process, which the
test harness's socket guard does not reach, so the route is the child's standard
proxy environment (``FakeSpeedtest.environment()``):

* ``http_proxy``/``https_proxy`` point at this server. It answers absolute-URI proxy
  requests (``GET http://c.speedtest.net/...``) and ``CONNECT`` tunnels; inside a
  tunnel to ``www.speedtest.net:443`` it terminates TLS with a certificate for
  www.speedtest.net signed by a test CA it makes at start, and ``SSL_CERT_FILE`` makes
  the child trust that CA (``REQUESTS_CA_BUNDLE`` would not: it only affects
  ``requests``).
* The server list names test servers at this server's own
  ``http://127.0.0.1:<port>/speedtest<N>/upload.php``. Latency probes ignore proxies and
  connect there directly; ``no_proxy`` sends downloads and uploads there directly too,
  as they would go on a real line.

Use the ``fake_speedtest`` fixture and pass ``fake_speedtest.environment()`` to
``SpeedTestClient(environment=...)``, or use ``speedtest_route``, which puts the route
into this process's environment so every child started during the test inherits it.
Stopping the fake (``stop()``) makes every connection refused, as when the internet is
down; ``start()`` brings it back on the same port.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import datetime as dt
import gzip
import os
from pathlib import Path
import re
import socket
import ssl
import struct
import threading
import time
from typing import Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from custom_components.isp_watch.speedtest_runner import IMAGE_BYTES
from fakes.loopback import LoopbackServer, QuietHandler

# Body sizes (bytes) of the images real speedtest.net servers serve: the runner's
# reference table, so the fake and the runner never disagree.
IMAGE_SIZES = IMAGE_BYTES
# The client address speedtest.net reports in the configuration; it must never appear in
# anything the integration keeps.
CLIENT_IP = "203.0.113.9"
ISP = "Example Fibre"
SERVER_IDS = (4242, 4243, 4244)
CHUNK = 16 * 1024
RECEIVE_BUFFER = 64 * 1024
# The fake waits this long for an upload body that never completes (speedtest-cli's
# 65536-byte body is 7 bytes short of its Content-Length).
UPLOAD_IDLE_TIMEOUT = 3.0
# The unused capacity the line keeps for a sender that fell behind (see Pacer).
BURST_SECONDS = 0.1
# How long a stalled response holds its connection at most; stop() releases it at once.
STALL_LIMIT = 30.0

IMAGE_PATTERN = re.compile(r"/speedtest(\d+)/random(\d+)x\2\.jpg$")
LATENCY_PATTERN = re.compile(r"/speedtest(\d+)/latency\.txt$")
UPLOAD_PATTERN = re.compile(r"/speedtest(\d+)/upload\.php$")
SPEEDTEST_HOSTS = ("www.speedtest.net", "c.speedtest.net")


class _Clock:
    # Tests freeze time for Home Assistant; the fake line must keep real time. freezegun
    # replaces module-level references to time.monotonic, not class attributes.
    monotonic = staticmethod(time.monotonic)


@dataclass
class Faults:
    """What the fake does wrong; all off by default."""

    config_status: int = 200
    """Status of the configuration (403, 503, or 204: a 2xx that is not 200)."""
    config_malformed: bool = False
    """The configuration is not well-formed XML."""
    config_incomplete: bool = False
    """The configuration lacks its ``<upload>`` element."""
    config_stall: bool = False
    """The configuration (gzip) stops halfway and the connection stays open."""
    broken_gzip: bool = False
    """Configuration and server list say gzip but are not."""
    servers_status: int = 200
    """Status of every server list URL."""
    servers_stall: bool = False
    """The server list (gzip) stops halfway and the connection stays open."""
    servers_malformed: bool = False
    """The server list is not well-formed XML."""
    servers_unusable: bool = False
    """The server list has a server without an id."""
    no_servers: bool = False
    """The server list is empty."""
    dead_latency: bool = False
    """Latency probes are answered with 404."""
    lossy_latency: bool = False
    """The first of every server's three latency probes is answered with 404."""
    latency_stall: bool = False
    """Latency probes get headers, then the body never comes."""
    download_status: int = 200
    """Status of image downloads."""
    download_empty: bool = False
    """Images are 200 responses without a body."""
    download_stall: bool = False
    """Images stop halfway; the connection stays open."""
    download_reset: bool = False
    """Images stop halfway with a TCP reset."""
    download_partial: bool = False
    """Images stop halfway with a clean close, short of their Content-Length."""
    upload_status: int = 200
    """Status of upload replies (the body is read first, as real servers do)."""
    upload_reset: bool = False
    """Uploads are reset after the first chunk."""
    limit: int | None = None
    """How many downloads and uploads the faults above hit; None: all of them."""
    client_lat: str = "52.37"
    """The client's latitude in the configuration; "nan" makes every distance NaN."""
    silent: bool = False
    """The server stops answering: downloads in progress stop sending and uploads stop
    being read, with the connections left open (set it while a test runs)."""


@dataclass
class FakeServer:
    """One test server of the list; all of them are served by the fake itself."""

    id: int
    name: str
    sponsor: str
    lat: float
    lon: float
    extra_latency_ms: float = 0.0
    country: str = "Netherlands"


@dataclass
class Pacer:
    """Shares one throughput limit between all connections.

    Like a token bucket (tc's tbf), the line keeps up to `BURST_SECONDS` of unused
    capacity: the fake's threads run in the test process, and on a busy machine they
    are all descheduled at times. Without the bucket the time they lose would be lost
    to the line too (measured with the load average at 8: four threads drawing 16 KiB
    pieces got 37 to 39 of 40 Mbit/s without the bucket, 40.0 with it). Over any span
    the line carries at most its rate times (span + `BURST_SECONDS`).

    With a ramp, the limit starts at a tenth and grows linearly to the full rate over
    `ramp_seconds` from the first byte, as TCP's slow start looks from the outside.
    """

    bytes_per_second: float
    ramp_seconds: float = 0.0
    _next: float = 0.0
    _started: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, size: int) -> None:
        """Wait until `size` more bytes fit under the limit."""
        with self._lock:
            now = _Clock.monotonic()
            if self._started is None:
                self._started = self._next = now
            start = max(now - BURST_SECONDS, self._next)
            self._next = start + size / self.rate_at(start)
            wait = self._next - now
        time.sleep(max(0.0, wait))

    def rate_at(self, moment: float) -> float:
        """The limit at `moment`, in bytes per second."""
        if self.ramp_seconds <= 0 or self._started is None:
            return self.bytes_per_second
        progress = min(1.0, (moment - self._started) / self.ramp_seconds)
        return self.bytes_per_second * (0.1 + 0.9 * progress)


class FakeSpeedtest(LoopbackServer):
    """The fake service: start() it, give the child environment()."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        download_mbps: float = 40.0,
        upload_mbps: float = 20.0,
        latency_ms: float = 15.0,
        test_length: int = 2,
        upload_ratio: int = 5,
        max_chunk_count: int = 50,
    ) -> None:
        """Configure the line and what the configuration tells speedtest-cli.

        Args:
            tmp_path: Folder for the test CA and the server certificate.
            download_mbps: Download throughput shared by all connections.
            upload_mbps: Upload throughput shared by all connections.
            latency_ms: Round-trip time the nearest server's latency probes show.
            test_length: Seconds speedtest-cli spends on download and on upload each.
            upload_ratio: speedtest.net's upload ``ratio``: which upload sizes are used
                (5, as speedtest.net sends: 512 KiB, 1 MiB, 7 MiB).
            max_chunk_count: speedtest.net's ``maxchunkcount``: upload requests in all.
        """
        super().__init__()
        self.latency_ms = latency_ms
        self.test_length = test_length
        self.upload_ratio = upload_ratio
        self.max_chunk_count = max_chunk_count
        self.faults = Faults()
        self.isp = ISP
        self.receive_buffer: int | None = RECEIVE_BUFFER
        """Each connection's receive buffer; None leaves it to the kernel (a shaped
        link in benchmarks/, whose own queue is the bottleneck)."""
        self.keep_alive = False
        """Whether connections stay open for more requests when the client asks."""
        self.ramp_seconds = 0.0
        """How long each direction's rate takes to ramp up (see Pacer)."""
        self.latency_pattern_ms: tuple[float, ...] = (0.0,)
        """Extra latency of successive probes on an idle line, in turn: delay
        variation (jitter)."""
        self.loaded_latency_ms = 0.0
        """Extra latency, instead of the variation, while downloads or uploads run:
        a bloated buffer."""
        self.transfers = 0
        # The nearest server is also the fastest, by more than a loaded machine adds
        # to a probe (tests/common.py: LOADED_MACHINE_MS), so the best server is the
        # same on any machine.
        self.servers = [
            FakeServer(id=SERVER_IDS[0], name="Town 0", sponsor="Example Hosting 0",
                       lat=52.0, lon=4.9),
            FakeServer(id=SERVER_IDS[1], name="Town 1", sponsor="Example Hosting 1",
                       lat=53.0, lon=4.9, extra_latency_ms=50),
            FakeServer(id=SERVER_IDS[2], name="Town 2", sponsor="Example Hosting 2",
                       lat=54.0, lon=4.9, extra_latency_ms=100),
        ]  # fmt: skip
        self.bytes_served = 0
        self.bytes_received = 0
        self.requests: list[str] = []
        self.peers: set[str] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active = 0
        self._faulted = {"download": 0, "upload": 0}
        self._probes = 0
        self.ramp_seconds = 0.0
        self.set_rates(download_mbps=download_mbps, upload_mbps=upload_mbps)
        self.ca_file = tmp_path / "fake-speedtest-ca.pem"
        self.tls = _make_tls_context(self.ca_file, tmp_path)

    def start(self) -> None:
        """Listen on 127.0.0.1 (the same port again after a stop)."""
        super().start()
        assert self._server is not None
        # speedtest-cli opens 8 connections at once, and opens them in quick succession
        # when they fail. socketserver's backlog of 5 would drop connection attempts,
        # which the client sees as connect timeouts that a real server would not cause.
        self._server.socket.listen(64)

    def environment(self) -> dict[str, str]:
        """The child's environment: this process's, routed to the fake."""
        environment = {
            name: value
            for name, value in os.environ.items()
            if name.lower()
            not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
        }
        proxy = f"http://127.0.0.1:{self.port}"
        return environment | {
            "http_proxy": proxy,
            "https_proxy": proxy,
            "no_proxy": "127.0.0.1,localhost",
            "SSL_CERT_FILE": str(self.ca_file),
        }

    def set_rates(self, *, download_mbps: float, upload_mbps: float) -> None:
        """Change the line's throughput."""
        self.download_mbps = download_mbps
        self.upload_mbps = upload_mbps
        self.download_pacer = Pacer(download_mbps * 1_000_000 / 8, self.ramp_seconds)
        self.upload_pacer = Pacer(upload_mbps * 1_000_000 / 8, self.ramp_seconds)

    def set_ramp(self, seconds: float) -> None:
        """Make each direction's rate ramp up over `seconds` (see Pacer)."""
        self.ramp_seconds = seconds
        self.set_rates(download_mbps=self.download_mbps, upload_mbps=self.upload_mbps)

    def count(self, text: str) -> int:
        """How many requests had `text` in their method and URL."""
        with self._lock:
            return sum(text in request for request in self.requests)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being handled, so the byte counts are final."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._active == 0, timeout):
                raise TimeoutError("the fake speedtest.net is still handling requests")

    # -- documents -----------------------------------------------------------------

    def config_xml(self) -> bytes:
        """The configuration speedtest-cli reads first."""
        if self.faults.config_malformed:
            return f"<settings><client ip='{CLIENT_IP}'".encode()
        upload = (
            ""
            if self.faults.config_incomplete
            else f'<upload testlength="{self.test_length}" ratio="{self.upload_ratio}" '
            'initialtest="0" mintestsize="32K" threads="2" maxchunksize="512K" '
            f'maxchunkcount="{self.max_chunk_count}" threadsperurl="4" />'
        )
        return (
            "<?xml version='1.0' encoding='UTF-8'?>\n<settings>"
            f'<client ip="{CLIENT_IP}" lat="{self.faults.client_lat}" lon="4.89" '
            f'isp="{self.isp}" '
            'isprating="3.7" rating="0" ispdlavg="0" ispulavg="0" loggedin="0" '
            'country="NL" />'
            '<server-config threadcount="4" ignoreids="" notonmap="" '
            'forcepingid="" preferredserverid="" />'
            f'<download testlength="{self.test_length}" initialtest="250K" '
            'mintestsize="250K" threadsperurl="4" />'
            f"{upload}"
            "</settings>"
        ).encode()

    def servers_xml(self) -> bytes:
        """The server list, pointing at this fake."""
        if self.faults.servers_malformed:
            return b"<settings><servers><server url="
        if self.faults.no_servers:
            return b"<?xml version='1.0'?><settings><servers></servers></settings>"
        servers = "".join(
            f'<server url="http://127.0.0.1:{self.port}/speedtest{index}/upload.php" '
            f'lat="{server.lat}" lon="{server.lon}" name="{server.name}" '
            f'country="{server.country}" cc="NL" sponsor="{server.sponsor}" '
            + ("" if self.faults.servers_unusable else f'id="{server.id}" ')
            + f'host="127.0.0.1:{self.port}" />'
            for index, server in enumerate(self.servers)
        )
        return (
            f"<?xml version='1.0'?><settings><servers>{servers}</servers></settings>"
        ).encode()

    # -- bookkeeping for the handler -----------------------------------------------

    def begin(self, request: str, peer: str) -> None:
        """Note a request and who made it."""
        with self._lock:
            self._active += 1
            self.requests.append(request)
            self.peers.add(peer)

    def end(self) -> None:
        """Note that a request is done."""
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    def served(self, size: int) -> None:
        """Count download body bytes handed to the connection."""
        with self._lock:
            self.bytes_served += size

    def received(self, size: int) -> None:
        """Count upload body bytes read from the connection."""
        with self._lock:
            self.bytes_received += size

    def count_probe(self) -> int:
        """Count a latency probe; how many there were so far."""
        with self._lock:
            self._probes += 1
            return self._probes

    def transferring(self, change: int) -> None:
        """Note a download or upload starting (+1) or ending (-1)."""
        with self._lock:
            self.transfers += change

    def probe_delay(self, server: FakeServer, probe: int) -> float:
        """The latency (s) a probe shows: base, the server's, variation, load."""
        with self._lock:
            busy = self.transfers > 0
        # A full buffer's delay dwarfs the idle line's variation, so a test can
        # assert exact floors for both.
        if busy:
            extra = self.loaded_latency_ms
        else:
            pattern = self.latency_pattern_ms
            extra = pattern[probe % len(pattern)]
        total = self.latency_ms + server.extra_latency_ms + extra
        return total / 1000

    def faulty(self, kind: str) -> bool:
        """Whether this download or upload is one the faults hit."""
        with self._lock:
            self._faulted[kind] += 1
            limit = self.faults.limit
            return limit is None or self._faulted[kind] <= limit

    def server_at(self, index: str) -> FakeServer | None:
        """The test server a path's ``/speedtest<N>/`` names."""
        position = int(index)
        return self.servers[position] if position < len(self.servers) else None


class _Handler(QuietHandler):
    owner: FakeSpeedtest
    # Set inside a CONNECT tunnel: the host the client asked the proxy for.
    tunnel_host: str | None = None

    def setup(self) -> None:
        super().setup()
        # A small receive buffer keeps the bytes speedtest-cli hands to its socket from
        # counting as uploaded long before they arrive, as on a real line whose
        # bottleneck queue is small.
        if self.owner.receive_buffer:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, self.owner.receive_buffer
            )
        # A reply's head and body go out at once, as from real servers; with Nagle's
        # algorithm the body would wait for the client's delayed acknowledgement.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except OSError:
            # The client went away mid-request (a reset, a closed tunnel).
            self.close_connection = True

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        self.url = self._url()
        return True

    def _url(self) -> str:
        if self.command == "CONNECT":
            return self.path
        if self.path.startswith(("http://", "https://")):
            return self.path  # an absolute-URI proxy request
        host = self.headers.get("Host", "")
        scheme = "https" if self.tunnel_host else "http"
        return f"{scheme}://{host}{self.path}"

    def _begin(self) -> None:
        self.owner.begin(f"{self.command} {self.url}", self.client_address[0])

    def do_CONNECT(self) -> None:  # noqa: N802 - the name http.server calls
        self._begin()
        try:
            host, _, port = self.path.rpartition(":")
            if host not in SPEEDTEST_HOSTS or port != "443":
                self._reply(403, b"tunnels go to speedtest.net only")
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            self.close_connection = True
            try:
                tls = self.owner.tls.wrap_socket(self.connection, server_side=True)
            except ssl.SSLError, OSError:
                return  # the client did not trust the certificate
            # The tunnelled request is handled like any other, knowing its host.
            tunnel = type("Tunnel", (type(self),), {"tunnel_host": host})
            try:
                tunnel(tls, self.client_address, self.server)
            finally:
                tls.close()
        finally:
            self.owner.end()

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self._begin()
        try:
            self._get()
        finally:
            self.owner.end()

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        self._begin()
        try:
            self._post()
        finally:
            self.owner.end()

    def _get(self) -> None:
        owner = self.owner
        faults = owner.faults
        url = urlsplit(self.url)
        path = url.path
        if url.hostname in SPEEDTEST_HOSTS and path == "/speedtest-config.php":
            if faults.config_status != 200:
                self._reply(faults.config_status, b"")
            elif faults.config_stall:
                self._stall_halfway(gzip.compress(owner.config_xml()), "gzip")
            else:
                self._document(owner.config_xml())
        elif url.hostname in SPEEDTEST_HOSTS and path in {
            "/speedtest-servers-static.php",
            "/speedtest-servers.php",
        }:
            if faults.servers_status != 200:
                self._reply(faults.servers_status, b"")
            elif faults.servers_stall:
                self._stall_halfway(gzip.compress(owner.servers_xml()), "gzip")
            else:
                self._document(owner.servers_xml())
        elif (match := LATENCY_PATTERN.search(path)) and (
            server := owner.server_at(match.group(1))
        ):
            self._latency(server)
        elif (match := IMAGE_PATTERN.search(path)) and owner.server_at(match.group(1)):
            self._image(IMAGE_SIZES.get(int(match.group(2)), 0))
        else:
            self._reply(404, b"not found")

    def _document(self, body: bytes) -> None:
        # speedtest.net compresses when asked, as speedtest-cli always asks.
        if "gzip" not in self.headers.get("Accept-Encoding", ""):
            self._reply(200, body, "text/xml")
        elif self.owner.faults.broken_gzip:
            self._reply(200, body, "text/xml", encoding="gzip")
        else:
            self._reply(200, gzip.compress(body), "text/xml", encoding="gzip")

    def _latency(self, server: FakeServer) -> None:
        faults = self.owner.faults
        # speedtest-cli probes one server after the other, three times each.
        probe = self.owner.count_probe()
        first_of_three = probe % 3 == 1
        if faults.dead_latency or (faults.lossy_latency and first_of_three):
            self._reply(404, b"not found")
            return
        # speedtest-cli reports half the time from connect to response as the ping.
        time.sleep(2 * self.owner.probe_delay(server, probe))
        if faults.latency_stall:
            self._stall_halfway(b"test=test\n", None)
        else:
            self._reply(200, b"test=test\n")

    def _image(self, size: int) -> None:
        owner = self.owner
        faults = owner.faults
        faulty = owner.faulty("download")
        if faulty and faults.download_status != 200:
            self._reply(faults.download_status, b"error")
            return
        if faulty and faults.download_empty:
            size = 0
        cut = (
            size // 2
            if faulty
            and (
                faults.download_stall
                or faults.download_reset
                or faults.download_partial
            )
            else size
        )
        self._headers(200, size, "image/jpeg")
        sent = 0
        payload = b"\xff" * CHUNK
        owner.transferring(+1)
        try:
            while sent < cut:
                if faults.silent:
                    self._hold()
                    return
                piece = payload[: min(CHUNK, cut - sent)]
                owner.download_pacer.take(len(piece))
                self.wfile.write(piece)
                owner.served(len(piece))
                sent += len(piece)
        except OSError:
            return  # speedtest-cli stopped reading when its test length was over
        finally:
            owner.transferring(-1)
        if sent == size:
            return
        if faults.download_stall:
            self._hold()
        elif faults.download_reset:
            self._reset()
        # download_partial: a clean close, short of the announced length.

    def _post(self) -> None:
        owner = self.owner
        faults = owner.faults
        if not UPLOAD_PATTERN.search(urlsplit(self.url).path):
            self._reply(404, b"not found")
            return
        faulty = owner.faulty("upload")
        length = int(self.headers.get("Content-Length", "0"))
        remaining = length
        self.connection.settimeout(UPLOAD_IDLE_TIMEOUT)
        owner.transferring(+1)
        try:
            while remaining > 0:
                if faults.silent:
                    self._hold(reading=False)
                    return
                chunk = self.rfile.read1(min(CHUNK, remaining))
                if not chunk:
                    break  # speedtest-cli stopped sending when its test length was over
                owner.upload_pacer.take(len(chunk))
                owner.received(len(chunk))
                remaining -= len(chunk)
                if faulty and faults.upload_reset:
                    self._reset()
                    return
        except OSError:
            pass
        finally:
            owner.transferring(-1)
        status = faults.upload_status if faulty else 200
        self._reply(status, f"size={length - remaining}".encode())
        if remaining:
            self.close_connection = True  # the rest of the body may still come

    # -- ways to answer ------------------------------------------------------------

    def _headers(
        self,
        status: int,
        length: int,
        content_type: str,
        encoding: str | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        asked_to_close = self.headers.get("Connection", "").lower() == "close"
        if self.owner.keep_alive and not asked_to_close and not self.tunnel_host:
            self.close_connection = False
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def _reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain",
        encoding: str | None = None,
    ) -> None:
        try:
            self._headers(status, len(body), content_type, encoding)
            self.wfile.write(body)
        except OSError:
            pass  # the client has gone

    def _stall_halfway(self, body: bytes, encoding: str | None) -> None:
        """Announce `body`, send half of it, then hold the connection open."""
        try:
            self._headers(200, len(body), "text/plain", encoding)
            self.wfile.write(body[: len(body) // 2])
        except OSError:
            return
        self._hold()

    def _hold(self, *, reading: bool = True) -> None:
        """Keep the connection open without a byte more, until the client leaves.

        Not `reading`: nothing more is read either, so the client's data waits in
        its send buffer, as with a receiver that stopped.
        """
        deadline = _Clock.monotonic() + STALL_LIMIT
        self.connection.settimeout(0.1)
        self.close_connection = True
        while not self.owner.release.is_set() and _Clock.monotonic() < deadline:
            if not reading:
                time.sleep(0.1)
                continue
            try:
                if not self.connection.recv(1024):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def _reset(self) -> None:
        """End the connection with a TCP reset instead of a clean close."""
        self.connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        # The socket closes for real only once its reader is closed too.
        self.rfile.close()
        self.connection.close()
        self.close_connection = True


FakeSpeedtest.handler = _Handler


@dataclass(frozen=True)
class _TlsMaterial:
    """A CA, and a certificate with its key for speedtest.net's hosts, as PEM."""

    ca: bytes
    certificate: bytes
    key: bytes


def _make_tls_material() -> _TlsMaterial:
    """A CA and a www.speedtest.net certificate that Python 3.13+ accepts."""
    now = dt.datetime.now(dt.UTC)
    valid_from = now - dt.timedelta(days=1)
    valid_until = now + dt.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake Speedtest CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(certificates=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SPEEDTEST_HOSTS[0])])
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_until)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(h) for h in SPEEDTEST_HOSTS]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(certificates=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return _TlsMaterial(
        ca=ca.public_bytes(serialization.Encoding.PEM),
        certificate=certificate.public_bytes(serialization.Encoding.PEM),
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _make_tls_context(ca_file: Path, folder: Path) -> ssl.SSLContext:
    """The fake's TLS server side, its CA written to `ca_file` for the clients."""
    ca_file.write_bytes(_TLS.ca)
    cert_file = folder / "fake-speedtest-cert.pem"
    key_file = folder / "fake-speedtest-key.pem"
    cert_file.write_bytes(_TLS.certificate)
    key_file.write_bytes(_TLS.key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def _key_usage(*, certificates: bool) -> x509.KeyUsage:
    """Signing certificates for the CA, signing handshakes for the server."""
    return x509.KeyUsage(
        digital_signature=not certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificates,
        crl_sign=certificates,
        encipher_only=False,
        decipher_only=False,
    )


# Made once, when the module is imported and no test has frozen the clock: the
# certificate builder remembers the datetime class it first sees, so a first build
# under a frozen clock would make every later build fail.
_TLS: Final = _make_tls_material()
