"""The HTTP side of the seam to Coze: the httpx client, and reading its replies safely.

Only this module and :mod:`voicectl.client` know httpx (the emulator aside).
"""

from __future__ import annotations

import math
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from voicectl import apibase
from voicectl.errors import VoicectlError

MAX_REPLY_BYTES = 16 * 1024 * 1024  # a page of 100 voices is about 60 kB
# Each request's overall deadline, from sending it to the last byte of its reply: httpx's
# timeouts bound each read alone, so a server that drips its head or its body a byte at a
# time would otherwise hold voicectl for as long as it likes.
CLONE_SECONDS = 600.0  # a 10 MB upload on a slow line, then the training
LIST_SECONDS = 120.0  # a page is read, not trained
LIST_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def check_base_url(base: str) -> str:
    """Coze's API base (see :func:`voicectl.apibase.problem`), without a trailing slash.

    Errors show the URL without any user info or query, where a secret could hide.
    """
    reason = apibase.problem(base)
    if reason is not None:
        raise VoicectlError(f"COZE_API_BASE {apibase.shown(base)!r} {reason}")
    return base.rstrip("/")


def http_client(base: str, timeout: float = 600.0) -> httpx.Client:
    # TLS verification stays on (httpx's default); follow no redirects on a billed POST.
    base = check_base_url(base)
    return httpx.Client(
        base_url=base,
        # Plain http (only ever to loopback) never goes through a proxy from the
        # environment: HTTP_PROXY would carry the token in clear text to the proxy host.
        # Over https a proxy sees only the host, and SSL_CERT_FILE must still apply.
        trust_env=base.startswith("https://"),
        timeout=httpx.Timeout(timeout, connect=10.0),
        follow_redirects=False,
        verify=True,
        headers={"User-Agent": "voicectl"},
        # Keep a connection alive for each of up to 64 parallel clones (httpx keeps 20):
        # one past that would be closed after every request and made again.
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=64),
    )


def tls_failure(exc: BaseException) -> bool:
    """A certificate that does not verify: not transient, so never worth a retry.

    httpx wraps the ssl error (through httpcore), so the chain of causes is walked.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def reason(exc: httpx.HTTPError) -> str:
    """Why a request got no answer, in words; TLS failures are named as such."""
    text = str(exc)
    if isinstance(exc, ReplyNotRead):
        return text
    if tls_failure(exc):
        detail = text.split("] ", 1)[-1].split(" (_ssl", 1)[0]
        return f"TLS certificate verification failed ({detail}); voicectl never turns it off"
    return type(exc).__name__


class ReplyNotRead(httpx.ReadError):
    """A reply's body given up on: past the size cap or the deadline."""


@dataclass(frozen=True)
class Deadline:
    """When a request must be over: ``seconds`` from when it was set."""

    seconds: float
    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(seconds, time.monotonic() + seconds)

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def __str__(self) -> str:
        return f"{self.seconds:g} s"


def send_within(http: httpx.Client, request: httpx.Request, deadline: Deadline) -> httpx.Response:
    """Send ``request`` and return its reply's head by ``deadline``; else raise
    :class:`ReplyNotRead` (a read error: for a clone, an unknown outcome).

    httpx cannot cancel a request that is waiting for a reply, so it is sent from a
    daemon thread that is left behind at the deadline: its connection closes when the
    server lets go, or with the process, and a reply that comes after all is closed
    unread. Errors from sending (a refused connection, a TLS failure) are raised here.
    """
    lock, done = threading.Lock(), threading.Event()
    outcome: list[httpx.Response | BaseException] = []
    abandoned = False

    def send() -> None:
        try:
            result: httpx.Response | BaseException = http.send(request, stream=True)
        except BaseException as exc:  # handed to the caller, whatever it is
            result = exc
        with lock:
            if abandoned and isinstance(result, httpx.Response):
                result.close()
            outcome.append(result)
        done.set()

    threading.Thread(target=send, name="voicectl-request", daemon=True).start()
    if not done.wait(deadline.left()):
        with lock:
            if not outcome:
                abandoned = True
                raise ReplyNotRead(f"no reply within {deadline}")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def bounded_text(response: httpx.Response, deadline: Deadline) -> str:
    """The body of a streamed reply, read within a size cap and by ``deadline``: a
    server that sends hundreds of megabytes, or drips a byte at a time under the read
    timeout, must not hold voicectl or its memory. Either is a reply that was not read (a
    read error: for a clone, an unknown outcome)."""
    chunks, size = [], 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise ReplyNotRead(f"the reply is larger than {MAX_REPLY_BYTES:,} bytes")
            if time.monotonic() > deadline.at:
                raise ReplyNotRead(f"the reply took longer than {deadline}")
            chunks.append(chunk)
    finally:
        response.close()
    return b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds; None when absent or not a finite number of seconds (an
    HTTP date, ``inf``, ``nan``, a negative number: the backoff decides instead)."""
    try:
        seconds = float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class Coalesced(httpx.SyncByteStream):
    """A request body sent in writes of up to 64 KiB: httpx's multipart encoder yields
    every field's header, value and CRLF apart, a socket write each (about 30 a clone)."""

    SIZE = 1 << 16

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        pending: list[bytes] = []
        size = 0
        for chunk in self._stream:
            pending.append(chunk)
            size += len(chunk)
            if size >= self.SIZE:
                yield b"".join(pending)
                pending, size = [], 0
        if pending:
            yield b"".join(pending)

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()
