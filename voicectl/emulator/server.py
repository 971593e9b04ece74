"""Running the emulator under uvicorn: ``serve`` for the CLI, ``running_emulator`` for tests.

Both serve over uvicorn's h11 protocol, extended so that the app can close a connection
without sending anything: that is how ``drop_after_commit`` loses a clone's response
after committing it. The client sees the connection end before any status line; httpx
raises ``httpx.RemoteProtocolError("Server disconnected without sending a response.")``.
A plain ``raise`` in the app would not do: uvicorn answers that with an HTTP 500.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from voicectl.emulator.app import DROP_EXTENSION, create_app
from voicectl.emulator.store import DEFAULT_SPACE_ID, EmulatorError


class DroppingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, offering the app ``scope["extensions"][DROP_EXTENSION]``.

    That extension is a callable closing this connection's transport. One protocol object
    serves one connection, so the callable always closes the connection of the request.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            scope.setdefault("extensions", {})[DROP_EXTENSION] = self._close_transport
            await inner(scope, receive, send)

        self.app = app

    def _close_transport(self) -> None:
        self.transport.close()


def serve(
    host: str,
    port: int,
    data_dir: Path,
    tokens: Sequence[str],
    echo: Callable[[str], None],
    *,
    full_clone_reply: bool = False,
    slot_quota: int | None = None,
    log_level: str = "info",
    access_log: bool = False,
    verbose: bool = False,
) -> None:
    """Run the emulator until interrupted; blocks. ``echo`` gets the start-up lines.

    A clone's reply is ``{"voice_id"}`` only, as Coze documents, unless
    ``full_clone_reply``: cozepy 0.20.0 validates the clone reply as a full Voice and
    raises pydantic's ``ValidationError`` on the documented body, so a client cloning
    through cozepy needs ``full_clone_reply``. ``slot_quota`` caps the account's custom
    voices (a new clone beyond it gets 4019); None: unlimited.

    Raises :class:`EmulatorError`, before listening, for a bad token spec, an unusable
    data dir or an address that cannot be bound. On Ctrl+C or SIGTERM uvicorn shuts down
    gracefully, then re-raises the signal: Ctrl+C surfaces as ``KeyboardInterrupt``.
    Quiet by default, as a demo beside apply's prompt and progress bar wants it: one line
    says where it listens and how to stop it. ``access_log`` turns uvicorn's log on (one
    line per request, on stderr); ``verbose`` says more at start. Token values are never
    echoed or logged.
    """
    app = create_app(data_dir, tokens, full_clone_reply=full_clone_reply, slot_quota=slot_quota)
    sock = _bind(host, port)
    echo(
        f"Coze emulator listening on {_url(sock)} (data: {data_dir}); stop it with Ctrl+C "
        "(or `kill %1` when started with &)"
    )
    if not verbose:
        _run(app, sock, log_level=log_level, quiet=not access_log)
        return
    if tokens:
        echo(f"Accepting {len(tokens)} configured token(s).")
    else:
        echo("No --token given: accepting any non-empty bearer token, with every scope.")
    echo(f"Clones without space_id go to the personal space {DEFAULT_SPACE_ID}.")
    if full_clone_reply:
        echo("Clone replies carry the full Voice record (a superset of Coze's documented reply).")
    else:
        echo(
            'Clone replies carry only {"voice_id"}, as Coze documents. cozepy 0.20.0 '
            "validates them as a full Voice and raises pydantic's ValidationError: "
            "clients cloning through cozepy need full_clone_reply."
        )
    if slot_quota is not None:
        echo(f"Voice slots of the account: {slot_quota} (a new voice beyond them gets 4019).")
    echo("POST /_emulator/reset wipes every voice; POST /_emulator/faults arms faults.")
    _run(app, sock, log_level=log_level, quiet=not access_log)


def _run(app: Starlette, sock: socket.socket, *, log_level: str, quiet: bool) -> None:
    """Serve until interrupted, then close the socket."""
    try:
        uvicorn.Server(_config(app, log_level=log_level, quiet=quiet)).run(sockets=[sock])
    finally:
        sock.close()


@contextmanager
def running_emulator(
    data_dir: Path,
    tokens: Sequence[str] = (),
    *,
    full_clone_reply: bool = False,
    slot_quota: int | None = None,
    clock: Callable[[], float] = time.time,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[str]:
    """Serve the emulator from a background thread; yields its base URL.

    ``full_clone_reply`` and ``slot_quota`` are as for :func:`serve` (tests that clone
    through cozepy need ``full_clone_reply=True``); ``clock`` dates voices and expires
    preview links. The port defaults to a free one. On exit the server shuts down and the thread is
    joined, so a second emulator may reopen the same data dir at once. ``tls`` (a
    certificate chain file and its key file) serves https, for tests of certificate
    verification.
    """
    app = create_app(
        data_dir, tokens, full_clone_reply=full_clone_reply, slot_quota=slot_quota, clock=clock
    )
    sock = _bind(host, port)
    config = _config(app, log_level="warning", quiet=True)
    if tls is not None:
        config.ssl_certfile, config.ssl_keyfile = str(tls[0]), str(tls[1])
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="coze-emulator", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise EmulatorError("the emulator did not start")
        time.sleep(0.005)
    try:
        url = _url(sock)
        yield url.replace("http://", "https://", 1) if tls is not None else url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _config(app: Starlette, *, log_level: str, quiet: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=DroppingH11Protocol,
        lifespan="off",
        log_level=log_level,
        log_config=None if quiet else uvicorn.config.LOGGING_CONFIG,
        timeout_graceful_shutdown=2,
    )


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise EmulatorError(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        if os.name == "posix":  # as uvicorn does: restart at once on the same port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listening before the address is announced: a client that reads it and connects
        # at once is queued until the server takes it, not refused.
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        taken = " (another emulator? `--port N` picks another port)" if port else ""
        raise EmulatorError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}{taken}"
        ) from exc
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
