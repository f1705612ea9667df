"""A local speedtest.net that unmodified speedtest-cli completes a test against.

It speaks the legacy protocol speedtest-cli 2.1.3 uses: the configuration XML, the
server list XML, ``latency.txt``, ``random{N}x{N}.jpg`` downloads and ``upload.php``,
with a shared throughput limit, a latency, and fault modes.

How tests route speedtest-cli here: the speed test runs in a child process, which the
test harness's socket guard does not reach. The child gets the standard proxy
environment (``http_proxy``/``https_proxy``) pointing at this server, which answers
absolute-URI proxy requests and ``CONNECT`` tunnels. For ``https://www.speedtest.net``
it terminates TLS with a certificate signed by a test CA it makes, and the child trusts
that CA through ``SSL_CERT_FILE``. The server list points at this server's own
``http://127.0.0.1:<port>/speedtest/upload.php``; latency probes ignore proxies and go
there directly, and ``no_proxy`` sends downloads and uploads there directly too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
import datetime as dt
import os
from pathlib import Path
import re
import socket
import ssl
import struct
import threading
import time
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
import pytest

from tests.loopback import LoopbackServer, QuietHandler

# Real image sizes (bytes) served by speedtest.net servers.
IMAGE_SIZES = {
    350: 245388,
    500: 505544,
    750: 1118012,
    1000: 1986284,
    1500: 4468241,
    2000: 7907740,
    2500: 12407926,
    3000: 17816816,
    3500: 24262167,
    4000: 31625365,
}
CHUNK = 16 * 1024


class _Clock:
    # Tests freeze time for Home Assistant; the fake line must keep real time. freezegun
    # replaces module-level references to time.monotonic, not class attributes.
    monotonic = staticmethod(time.monotonic)


IMAGE_PATTERN = re.compile(r"/random(\d+)x\1\.jpg$")
LATENCY_PATTERN = re.compile(r"/speedtest(\d*)/latency\.txt$")
SERVER_IDS = (4242, 4243, 4244)


@dataclass
class Faults:
    """What the fake does wrong; all off by default."""

    config_status: int = 200
    config_malformed: bool = False
    no_servers: bool = False
    dead_latency: bool = False
    download_status: int = 200
    download_stall: bool = False
    download_reset: bool = False
    download_partial: bool = False
    upload_status: int = 200


@dataclass
class Pacer:
    """Shares one throughput limit between all connections."""

    bytes_per_second: float
    _next: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, size: int) -> None:
        """Wait until `size` more bytes fit under the limit."""
        with self._lock:
            now = _Clock.monotonic()
            start = max(now, self._next)
            self._next = start + size / self.bytes_per_second
            wait = self._next - now
        time.sleep(wait)


class FakeSpeedtest(LoopbackServer):
    """The fake service; start() it, point the child at environment()."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        download_mbps: float = 40.0,
        upload_mbps: float = 20.0,
        latency_ms: float = 15.0,
        test_length: int = 2,
    ) -> None:
        """Configure throughput, latency and the test length speedtest-cli is told."""
        super().__init__()
        self.download_mbps = download_mbps
        self.upload_mbps = upload_mbps
        self.latency_ms = latency_ms
        self.test_length = test_length
        self.faults = Faults()
        self.isp = "Example Fibre"
        self.bytes_served = 0
        self.bytes_received = 0
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._download_pacer = Pacer(download_mbps * 1_000_000 / 8)
        self._upload_pacer = Pacer(upload_mbps * 1_000_000 / 8)
        self.ca_file = tmp_path / "fake-speedtest-ca.pem"
        self._tls = _make_tls_context(self.ca_file, tmp_path)

    # -- lifecycle -----------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The child's environment: proxy to this server, trust its CA."""
        proxy = f"http://127.0.0.1:{self.port}"
        return {
            **os.environ,
            "http_proxy": proxy,
            "https_proxy": proxy,
            "no_proxy": "127.0.0.1,localhost",
            "SSL_CERT_FILE": str(self.ca_file),
        }

    def set_rates(self, *, download_mbps: float, upload_mbps: float) -> None:
        """Change the line's throughput."""
        self.download_mbps = download_mbps
        self.upload_mbps = upload_mbps
        self._download_pacer = Pacer(download_mbps * 1_000_000 / 8)
        self._upload_pacer = Pacer(upload_mbps * 1_000_000 / 8)

    def count(self, name: str) -> int:
        """How many requests had `name` in their path."""
        with self._lock:
            return sum(name in path for path in self.requests)

    # -- documents -----------------------------------------------------------------

    def config_xml(self) -> bytes:
        """The configuration speedtest-cli reads at start."""
        if self.faults.config_malformed:
            return b"<settings><client ip='203.0.113.9'"
        return (
            "<?xml version='1.0' encoding='UTF-8'?>\n<settings>"
            f'<client ip="203.0.113.9" lat="52.37" lon="4.89" isp="{self.isp}" '
            'isprating="3.7" rating="0" ispdlavg="0" ispulavg="0" loggedin="0" '
            'country="NL" />'
            '<server-config threadcount="4" ignoreids="" notonmap="" '
            'forcepingid="" preferredserverid="" />'
            f'<download testlength="{self.test_length}" initialtest="250K" '
            'mintestsize="250K" threadsperurl="4" />'
            f'<upload testlength="{self.test_length}" ratio="5" initialtest="0" '
            'mintestsize="32K" threads="2" maxchunksize="512K" '
            'maxchunkcount="50" threadsperurl="4" />'
            "</settings>"
        ).encode()

    def servers_xml(self) -> bytes:
        """The server list, pointing at this fake."""
        if self.faults.no_servers:
            return b"<?xml version='1.0'?><settings><servers></servers></settings>"
        servers = "".join(
            f'<server url="http://127.0.0.1:{self.port}/speedtest{index}/upload.php" '
            f'lat="{52.0 + index}" lon="4.9" '
            f'name="Town {index}" country="Netherlands" cc="NL" '
            f'sponsor="Example Hosting {index}" id="{server_id}" '
            f'host="127.0.0.1:{self.port}" />'
            for index, server_id in enumerate(SERVER_IDS)
        )
        return (
            f"<?xml version='1.0'?><settings><servers>{servers}</servers></settings>"
        ).encode()

    # -- used by the handler -------------------------------------------------------

    def record(self, path: str) -> None:
        """Remember a request."""
        with self._lock:
            self.requests.append(path)

    def served(self, size: int) -> None:
        """Count download body bytes."""
        with self._lock:
            self.bytes_served += size

    def received(self, size: int) -> None:
        """Count upload body bytes."""
        with self._lock:
            self.bytes_received += size


class _Handler(QuietHandler):
    owner: FakeSpeedtest

    def setup(self) -> None:
        super().setup()
        # A small receive window keeps the client's send buffer from counting as
        # uploaded, as on a real line where the bottleneck queue is small.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)

    def do_CONNECT(self) -> None:  # noqa: N802 - the name http.server calls
        self.owner.record(f"CONNECT {self.path}")
        self.send_response(200, "Connection established")
        self.end_headers()
        try:
            tls = self.owner._tls.wrap_socket(self.connection, server_side=True)
        except ssl.SSLError, OSError:
            self.close_connection = True
            return
        tunnel = type(self)(tls, self.client_address, self.server)
        del tunnel
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        path = urlsplit(self.path).path
        self.owner.record(path)
        faults = self.owner.faults
        if path.endswith("speedtest-config.php"):
            if faults.config_status != 200:
                self._reply(faults.config_status, b"Forbidden")
                return
            self._reply(200, self.owner.config_xml(), "text/xml")
        elif path.endswith(("speedtest-servers-static.php", "speedtest-servers.php")):
            self._reply(200, self.owner.servers_xml(), "text/xml")
        elif match := LATENCY_PATTERN.search(path):
            # speedtest-cli reports half the time from connect to response as ping;
            # farther servers answer a little later, so the nearest one wins.
            extra_ms = 5 * int(match.group(1) or 0)
            time.sleep(2 * (self.owner.latency_ms + extra_ms) / 1000)
            if faults.dead_latency:
                self._reply(404, b"not found")
            else:
                self._reply(200, b"test=test\n")
        elif match := IMAGE_PATTERN.search(path):
            self._image(IMAGE_SIZES.get(int(match.group(1)), 0))
        else:
            self._reply(404, b"not found")

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        path = urlsplit(self.path).path
        self.owner.record(path)
        length = int(self.headers.get("Content-Length", "0"))
        remaining = length
        self.connection.settimeout(3)
        try:
            while remaining > 0:
                chunk = self.rfile.read1(min(CHUNK, remaining))
                if not chunk:
                    break
                self.owner._upload_pacer.take(len(chunk))
                self.owner.received(len(chunk))
                remaining -= len(chunk)
        except TimeoutError, OSError:
            # speedtest-cli's 65536-byte body is 7 bytes short of its length.
            pass
        if self.owner.faults.upload_status != 200:
            self._reply(self.owner.faults.upload_status, b"error")
            return
        self._reply(200, f"size={length - remaining}".encode())

    def _reply(
        self, status: int, body: bytes, content_type: str = "text/plain"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _image(self, size: int) -> None:
        faults = self.owner.faults
        if faults.download_status != 200:
            self._reply(faults.download_status, b"error")
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(size))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        sent = 0
        cut = size // 2
        payload = b"\xff" * CHUNK
        try:
            while sent < size:
                if sent >= cut and (
                    faults.download_partial
                    or faults.download_reset
                    or faults.download_stall
                ):
                    if faults.download_stall:
                        self.owner.release.wait(30)
                    elif faults.download_reset:
                        # SO_LINGER 0 makes close() send a reset, not a clean end.
                        self.connection.setsockopt(
                            socket.SOL_SOCKET,
                            socket.SO_LINGER,
                            struct.pack("ii", 1, 0),
                        )
                    return
                piece = payload[: min(CHUNK, size - sent)]
                self.owner._download_pacer.take(len(piece))
                self.wfile.write(piece)
                self.owner.served(len(piece))
                sent += len(piece)
        except OSError:
            return


FakeSpeedtest.handler = _Handler


def _make_tls_context(ca_file: Path, folder: Path) -> ssl.SSLContext:
    """A CA and a www.speedtest.net certificate that Python 3.13+ accepts."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake Speedtest CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.speedtest.net")])
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("www.speedtest.net"),
                    x509.DNSName("c.speedtest.net"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
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
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = folder / "fake-speedtest-cert.pem"
    key_file = folder / "fake-speedtest-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture
def fake_speedtest(tmp_path: Path, socket_enabled: None) -> Iterator[FakeSpeedtest]:
    """A running fake speedtest.net (the test may then open sockets on loopback)."""
    fake = FakeSpeedtest(tmp_path)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def speedtest_route(
    fake_speedtest: FakeSpeedtest, monkeypatch: pytest.MonkeyPatch
) -> FakeSpeedtest:
    """Route every speed test child process of this test to the fake."""
    for name, value in fake_speedtest.environment().items():
        if name in {"http_proxy", "https_proxy", "no_proxy", "SSL_CERT_FILE"}:
            monkeypatch.setenv(name, value)
    return fake_speedtest
