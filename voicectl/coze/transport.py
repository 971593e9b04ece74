"""The HTTP side of the seam to Coze: the httpx client, and reading its replies safely.

Only this module and :mod:`voicectl.coze.client` know httpx (the emulator aside).
"""

from __future__ import annotations

import errno
import math
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from voicectl.coze import apibase
from voicectl.errors import VoicectlError

MAX_REPLY_BYTES = 16 * 1024 * 1024  # a page of 100 voices is about 60 kB
# Each request's overall deadline, from sending it to the last byte of its reply: httpx's
# timeouts bound each read alone, so a server that drips its head or its body a byte at a
# time would otherwise hold voicectl for as long as it likes.
CLONE_SECONDS = 600.0  # a 10 MB upload on a slow line, then the training
LIST_SECONDS = 120.0  # a page is read, not trained
LIST_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def check_base_url(base: str) -> str:
    """Coze's API base (see :func:`voicectl.coze.apibase.problem`), without a trailing slash.

    Errors show the URL without any user info or query, where a secret could hide.
    """
    reason = apibase.problem(base)
    if reason is not None:
        shown = apibase.shown(base)
        raise VoicectlError(
            f"COZE_API_BASE {shown!r} {reason}" if shown else f"COZE_API_BASE {reason}"
        )
    return base.rstrip("/")


def http_client(base: str, timeout: float = 600.0) -> httpx.Client:
    # TLS verification stays on (httpx's default); follow no redirects on a billed POST.
    base = check_base_url(base)
    try:
        client = _client(base, timeout)
    except (ImportError, ValueError, httpx.InvalidURL) as exc:  # only the proxy can be at fault
        # Its value is not shown: a proxy URL may carry a password.
        raise VoicectlError(
            "cannot use the proxy set in the environment (HTTPS_PROXY, ALL_PROXY or "
            f"their lower-case forms): {type(exc).__name__}; httpx takes http://, "
            "https:// and socks5:// proxies (socks5 needs the socksio package)"
        ) from None
    # httpx offers no hook for its network backend, so it is set on each connection pool
    # (the direct one and any proxy's); a test fails if a new httpx moves it.
    for transport in [client._transport, *client._mounts.values()]:
        pool = getattr(transport, "_pool", None)
        if isinstance(pool, httpcore.ConnectionPool):
            pool._network_backend = _Backend(pool._network_backend)
    return client


def link_client(https: bool) -> httpx.Client:
    """A client for links Coze's replies name (a voice's preview on its CDN): no base,
    no token, no redirect, and a proxy from the environment only over https."""
    client = httpx.Client(
        trust_env=https,
        timeout=httpx.Timeout(60.0, connect=10.0),
        follow_redirects=False,
        verify=True,
        headers={"User-Agent": "voicectl"},
    )
    for transport in [client._transport, *client._mounts.values()]:
        pool = getattr(transport, "_pool", None)
        if isinstance(pool, httpcore.ConnectionPool):
            pool._network_backend = _Backend(pool._network_backend)
    return client


def _client(base: str, timeout: float) -> httpx.Client:
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
    what = _cause(exc) or _handshake(exc)
    try:
        url = exc.request.url
        where = f" at {url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
    except RuntimeError:  # no request attached
        where = ""
    return f"{what}{where}" if what else f"{type(exc).__name__}{where}"


_ERRNOS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ETIMEDOUT: "connection timed out",
}


def _cause(exc: BaseException) -> str:
    """The cause of a failed request in words (connection refused, host not found...)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out"
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return "host name not found"
        if isinstance(seen, OSError) and seen.errno in _ERRNOS:
            return _ERRNOS[seen.errno]
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    for words in ("connection refused", "name or service not known", "timed out"):
        if words in text:
            return "host name not found" if words.startswith("name") else words
    return ""


def _handshake(exc: BaseException) -> str:
    """A TLS handshake that failed for another reason than the certificate, in words."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            if "WRONG_VERSION_NUMBER" in str(seen) or "record layer" in str(seen):
                return (
                    "TLS handshake failed: the server does not speak TLS (a plain http "
                    "server, such as the emulator, is reached with http://)"
                )
            return f"TLS handshake failed ({seen.reason or seen})"
        seen = seen.__cause__ or seen.__context__
    return ""


# Raised before a single byte of a request left: nothing can have been committed.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
NEVER_REACHED = ("connection refused", "host name not found", "TLS handshake failed")
"""Causes that mean nothing answers at the base given: no retry makes one answer."""


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


_DEADLINE: ContextVar[Deadline | None] = ContextVar("voicectl_deadline", default=None)


def _cut(timeout: float | None) -> float | None:
    """A socket call's timeout, cut to what is left of this thread's request deadline."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = max(deadline.left(), 0.001)  # never 0: that makes a socket non-blocking
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _cut(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _cut(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, _cut(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """httpcore's own backend, its connections made :class:`_Stream`."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, _cut(timeout), local_address, socket_options)
        return _Stream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._backend.connect_unix_socket(path, _cut(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def send_within(http: httpx.Client, request: httpx.Request, deadline: Deadline) -> httpx.Response:
    """Send ``request`` and return its reply's head by ``deadline``; else raise
    :class:`ReplyNotRead` (a read error: for a clone, an unknown outcome).

    httpx's timeouts bound each socket call alone, so a server that drips its head, or
    reads an upload a byte at a time, could hold a request for as long as it likes; here
    every socket call of this request (on a client from :func:`http_client`) ends by the
    deadline, on this thread, and httpcore closes the connection: the server sees the
    request abandoned. Errors from connecting (refused, a TLS failure) are raised as
    they are: nothing was sent.
    """
    reset = _DEADLINE.set(deadline)
    try:
        return http.send(request, stream=True)
    except httpx.WriteTimeout as exc:
        if deadline.left() > 0:
            raise
        raise ReplyNotRead(f"the upload did not finish within {deadline}") from exc
    except httpx.ReadTimeout as exc:
        if deadline.left() > 0:
            raise
        raise ReplyNotRead(f"no reply within {deadline}") from exc
    finally:
        _DEADLINE.reset(reset)


def bounded_text(response: httpx.Response, deadline: Deadline) -> str:
    """The body of a streamed reply as text (see :func:`bounded_bytes`)."""
    body = bounded_bytes(response, deadline)
    return body.decode(response.encoding or "utf-8", errors="replace")


def bounded_bytes(
    response: httpx.Response, deadline: Deadline, limit: int = MAX_REPLY_BYTES
) -> bytes:
    """The body of a streamed reply, read within a size cap and by ``deadline``: a
    server that sends hundreds of megabytes, or drips a byte at a time under the read
    timeout, must not hold voicectl or its memory. Either is a reply that was not read (a
    read error: for a clone, an unknown outcome)."""
    chunks, size = [], 0
    reset = _DEADLINE.set(deadline)
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise ReplyNotRead(f"the reply is larger than {limit:,} bytes")
            if time.monotonic() > deadline.at:  # a client whose sockets do not see it
                raise ReplyNotRead(f"the reply took longer than {deadline}")
            chunks.append(chunk)
    except httpx.ReadTimeout as exc:
        if deadline.left() > 0:
            raise
        raise ReplyNotRead(f"the reply took longer than {deadline}") from exc
    finally:
        response.close()  # unread to its end, the connection is closed, not kept
        _DEADLINE.reset(reset)
    return b"".join(chunks)


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
