"""A simulated internet line for ``scripts/develop --demo``, steered from a web page.

The demo line is the project's two fakes plus a control page: the fake speedtest.net
measures whatever the chosen profile says (a good line, a line that is slow in the
evening, an outage in which every connection is refused), and the fake X API accepts
only ``DEMO_CREDENTIALS``, keys the real X does not know. The control page switches
the profile and shows every post the fake X received, with its text.

Run it alone with ``python -m fakes.demo [--folder DIR] [--port PORT]``: it prints the
environment that routes a process's speed tests and X requests to it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime
import html
import json
from pathlib import Path
import tempfile
import threading
from typing import Final
from urllib.parse import parse_qs

from custom_components.isp_watch.x_client import XCredentials
from fakes.home_assistant import X_ORIGIN_VARIABLE
from fakes.loopback import LoopbackServer, QuietHandler
from fakes.speedtest import FakeSpeedtest
from fakes.x_api import FakeXApi

# Keys made up for the demo: the fake X accepts only these, and the real X refuses them.
DEMO_CREDENTIALS: Final = XCredentials(
    api_key="demo-consumer-key-not-valid-on-x",
    api_secret="demo-consumer-secret-not-valid-on-x",
    access_token="1234567890-demo-access-token-not-valid-on-x",
    access_token_secret="demo-access-token-secret-not-valid-on-x",
)
DEFAULT_CONTROL_PORT: Final = 8129
# How often the control page reloads itself, so new posts appear without a click.
REFRESH_SECONDS: Final = 5


@dataclass(frozen=True, slots=True)
class LineProfile:
    """What the simulated line measures while the profile is chosen."""

    title: str
    description: str
    download_mbps: float = 0.0
    upload_mbps: float = 0.0
    latency_ms: float = 0.0
    reachable: bool = True


PROFILES: Final[dict[str, LineProfile]] = {
    "good": LineProfile(
        title="Good",
        description="What the contract promises: 92 Mbit/s down, 36 up, 12 ms.",
        download_mbps=92,
        upload_mbps=36,
        latency_ms=12,
    ),
    "evening": LineProfile(
        title="Slow in the evening",
        description=(
            "The neighbourhood streams and the line is congested: 21 Mbit/s down, "
            "7 up, 46 ms."
        ),
        download_mbps=21,
        upload_mbps=7,
        latency_ms=46,
    ),
    "outage": LineProfile(
        title="Outage",
        description="Nothing answers: every connection to the test servers is refused.",
        reachable=False,
    ),
}


@dataclass(frozen=True, slots=True)
class ReceivedPost:
    """A post as the fake X published it."""

    text: str
    received: datetime


class DemoLine:
    """The fakes and the control page, started and stopped together."""

    def __init__(self, folder: Path, control_port: int = DEFAULT_CONTROL_PORT) -> None:
        """Keep the TLS material of the fake in `folder`; the page on `control_port`."""
        folder.mkdir(parents=True, exist_ok=True)
        self.speedtest = FakeSpeedtest(folder)
        self.x_api = FakeXApi(DEMO_CREDENTIALS)
        self.control = _ControlPage(self)
        self.control.port = control_port
        self.profile = "good"
        self._reachable = False
        self._lock = threading.Lock()

    @property
    def control_url(self) -> str:
        """The control page."""
        return f"http://127.0.0.1:{self.control.port}/"

    def start(self) -> None:
        """Listen: the line starts good."""
        self.speedtest.start()
        self._reachable = True
        self.x_api.start()
        self.control.start()
        self.choose("good")

    def stop(self) -> None:
        """Stop every server."""
        self.control.stop()
        self.x_api.stop()
        self.speedtest.stop()

    def environment(self) -> dict[str, str]:
        """This process's environment, with speed tests and X routed to the demo."""
        return self.speedtest.environment() | {X_ORIGIN_VARIABLE: self.x_api.origin}

    def choose(self, name: str) -> None:
        """Switch the line to a profile of PROFILES."""
        profile = PROFILES[name]
        with self._lock:
            self.profile = name
            if not profile.reachable:
                self.speedtest.stop()
                self._reachable = False
                return
            if not self._reachable:
                self.speedtest.start()
                self._reachable = True
            self.speedtest.latency_ms = profile.latency_ms
            self.speedtest.set_rates(
                download_mbps=profile.download_mbps, upload_mbps=profile.upload_mbps
            )

    def posts(self) -> list[ReceivedPost]:
        """Every post the fake X published, oldest first, with when it arrived."""
        x_api = self.x_api
        return [
            ReceivedPost(text, received)
            for text, received in zip(x_api.posts, x_api.post_times, strict=False)
        ]


class _ControlPage(LoopbackServer):
    def __init__(self, line: DemoLine) -> None:
        super().__init__()
        self.line = line


class _ControlHandler(QuietHandler):
    owner: _ControlPage

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        line = self.owner.line
        if self.path == "/state":
            state = {
                "profile": line.profile,
                "posts": [
                    {"text": post.text, "received": post.received.isoformat()}
                    for post in line.posts()
                ],
            }
            self._send(200, json.dumps(state).encode(), "application/json")
        elif self.path == "/":
            self._send(200, _page(line).encode(), "text/html")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode(errors="replace"))
        name = form.get("profile", [""])[0]
        if self.path != "/profile" or name not in PROFILES:
            self._send(400, b"unknown profile", "text/plain")
            return
        self.owner.line.choose(name)
        self.send_response(303)
        self.send_header("Location", "/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


_ControlPage.handler = _ControlHandler


def _page(line: DemoLine) -> str:
    """The control page: the profiles as buttons, then the posts, newest first."""
    buttons = "".join(
        f'<button name="profile" value="{name}"'
        f"{' class=chosen' if name == line.profile else ''}>"
        f"{html.escape(profile.title)}</button>"
        for name, profile in PROFILES.items()
    )
    chosen = PROFILES[line.profile]
    posts = (
        "".join(
            f'<li class="post"><time>{post.received:%H:%M:%S} UTC</time>'
            f"<p>{html.escape(post.text)}</p></li>"
            for post in reversed(line.posts())
        )
        or '<li class="empty">No post yet.</li>'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>ISP Watch demo line</title>
<style>
body {{ font-family: sans-serif; max-width: 46rem; margin: 2rem auto; color: #222; }}
button {{ font-size: 1rem; padding: .5rem 1rem; margin-right: .5rem; }}
button.chosen {{ background: #03a9f4; color: white; border-color: #03a9f4; }}
ol {{ list-style: none; padding: 0; }}
li.post {{ border: 1px solid #ccd6dd; border-radius: 1rem; padding: .75rem 1rem;
  margin-bottom: .75rem; }}
li.post time {{ color: #657786; font-size: .85rem; }}
li.post p {{ margin: .25rem 0 0; }}
</style></head>
<body>
<h1>ISP Watch demo line</h1>
<form method="post" action="/profile">{buttons}</form>
<p id="profile">Now: <strong>{html.escape(chosen.title)}</strong>.
{html.escape(chosen.description)}</p>
<h2>Posts received by the simulated X</h2>
<ol id="posts">{posts}</ol>
</body></html>
"""


def main() -> None:
    """Run the demo line until interrupted, printing how to reach it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--port", type=int, default=DEFAULT_CONTROL_PORT)
    arguments = parser.parse_args()
    folder = arguments.folder or Path(tempfile.mkdtemp(prefix="isp-watch-demo-"))
    line = DemoLine(folder, arguments.port)
    line.start()
    route = {
        name: value
        for name, value in line.environment().items()
        if name.lower() in {"http_proxy", "https_proxy", "no_proxy"}
        or name in {"SSL_CERT_FILE", X_ORIGIN_VARIABLE}
    }
    print(f"Control page: {line.control_url}")  # noqa: T201
    for name, value in route.items():
        print(f"export {name}={value}")  # noqa: T201
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        line.stop()


if __name__ == "__main__":
    main()
