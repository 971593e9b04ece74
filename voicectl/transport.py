"""The HTTP side of the seam to Coze: the httpx client, and reading its replies safely.

Only this module and :mod:`voicectl.client` know httpx (the emulator aside).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx

from voicectl import apibase
from voicectl.errors import VoicectlError

MAX_REPLY_BYTES = 16 * 1024 * 1024  # a page of 100 voices is about 60 kB
REPLY_SECONDS = 120.0  # to read a reply's body once it has begun
LIST_TIMEOUT = httpx.Timeout(60.0, connect=10.0)  # a page is read, not trained


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


def bounded_text(response: httpx.Response, seconds: float = REPLY_SECONDS) -> str:
    """The body of a streamed reply, read within a size cap and an overall deadline: a
    server that sends hundreds of megabytes, or drips a byte at a time under the read
    timeout, must not hold voicectl or its memory. Either is a reply that was not read
    (a read error: for a clone, an unknown outcome)."""
    deadline = time.monotonic() + seconds
    chunks, size = [], 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise ReplyNotRead(f"the reply is larger than {MAX_REPLY_BYTES:,} bytes")
            if time.monotonic() > deadline:
                raise ReplyNotRead(f"the reply took longer than {seconds:g} s")
            chunks.append(chunk)
    finally:
        response.close()
    return b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")


def retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


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
