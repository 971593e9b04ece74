"""A minimal Coze clone endpoint whose cost per request does not grow: the apply floor's server.

The bundled emulator rewrites its whole data file on every commit, so its own cost per
clone grows with the number of voices it holds; an apply of 10,000 voices against it
measures the emulator. This stub answers ``POST /v1/audio/voices/clone`` with a new
19-digit voice id in Coze's envelope and ``GET /v1/audio/voices`` with an empty list,
keeps nothing but the voice names it saw, and so costs the same for the first clone and
the ten-thousandth. It can wait a fixed latency before answering, like the emulator.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CLONE_PATH = "/v1/audio/voices/clone"
LIST_PATH = "/v1/audio/voices"
_ID_BASE = 7_400_000_000_000_000_000
_NAME_FIELD = b'name="voice_name"\r\n\r\n'


@dataclass
class Ledger:
    latency: float = 0.0  # seconds each request waits before it is answered
    names: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def commit(self, name: str) -> str:
        with self.lock:
            self.names.append(name)
            return str(_ID_BASE + len(self.names))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A reply goes out in one write, with Nagle off: written as headers then body, the
    # body waits on the client's delayed ACK (40 ms on Linux) and the stub measures that.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    ledger: Ledger

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                if size == 0:
                    return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _reply(self, data: dict[str, Any]) -> None:
        body = json.dumps(
            {"code": 0, "msg": "", "data": data, "detail": {"logid": "bench"}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Tt-Logid", "bench")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self._body()
        if self.ledger.latency:
            time.sleep(self.ledger.latency)
        if self.path != CLONE_PATH:
            self.send_error(404)
            return
        start = body.find(_NAME_FIELD)
        name = ""
        if start >= 0:
            start += len(_NAME_FIELD)
            name = body[start : body.find(b"\r\n", start)].decode()
        self._reply({"voice_id": self.ledger.commit(name)})

    def do_GET(self) -> None:
        if self.ledger.latency:
            time.sleep(self.ledger.latency)
        if self.path.split("?")[0] != LIST_PATH:
            self.send_error(404)
            return
        self._reply({"voice_list": [], "has_more": False})


@contextmanager
def running_stub(latency: float = 0.0) -> Iterator[tuple[str, Ledger]]:
    """Serve the stub on a free loopback port from a thread; yields (base URL, ledger).

    ``latency`` (seconds) delays every answer; requests wait concurrently, each on its
    own connection's thread, so N requests sent P at a time take ceil(N/P) latencies.
    """
    ledger = Ledger(latency)
    handler = type("Handler", (_Handler,), {"ledger": ledger})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="coze-stub", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", ledger
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
