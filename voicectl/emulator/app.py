"""The emulator's ASGI app: Coze's voice endpoints plus loopback admin endpoints.

Coze API (contract sections 2-5 and 9): ``POST /v1/audio/voices/clone`` (multipart),
``GET /v1/audio/voices`` and ``POST /v1/audio/speech``. Every JSON reply is the envelope
``{code, msg, data?, detail: {logid}}``, the logid also in ``X-Tt-Logid``. Business errors
answer HTTP 200 as Coze does (INFERRED); 4100 answers 401, 4101 403, and an unknown route
or method (DELETE, PATCH, ...) 404. Tokens: see :mod:`voicectl.emulator.faults`.

A clone without ``space_id`` goes to the personal space ``DEFAULT_SPACE_ID``. A clone
whose ``text`` contains ``[wer-mismatch]`` fails with 1109 (WERError), committing nothing.

Admin endpoints, without auth (loopback tooling): ``GET /_emulator/ledger``,
``GET|POST /_emulator/faults``, ``POST /_emulator/reset``, ``POST /_emulator/voices``
with ``{"name", "space_id"?}``, which makes a voice slot in state ``init`` as the Coze
console does (its first upload is then a clone with its ``voice_id``), and
``GET /_emulator/activity``: ``{"in_flight": {endpoint: n}}``, the Coze API requests
being handled right now. A client killed mid-request leaves its request running here
(as on Coze); a fault campaign waits for it to settle before checking what it did.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import secrets
import struct
import time
import wave
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from voicectl.emulator.faults import (
    CODE_MESSAGES,
    ENDPOINTS,
    RATE_LIMIT_CODE,
    Faults,
    FaultSpecError,
    TokenGrant,
    parse_token_specs,
)
from voicectl.emulator.store import (
    DEFAULT_SPACE_ID,
    MAX_AUDIO_BYTES,
    WER_MARKER,
    ApiError,
    Voice,
    VoiceStore,
    check_clone_fields,
)

CLONE_PATH = "/v1/audio/voices/clone"
LIST_PATH = "/v1/audio/voices"
SPEECH_PATH = "/v1/audio/speech"
MEDIA_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm", "ogg_opus": "audio/ogg"}
DROP_EXTENSION = "voicectl.drop_connection"  # scope["extensions"] key set by server.py
_CLONE_FIELDS = ("voice_name", "audio_format", "language", "voice_id", "preview_text", "text")
_PREVIEW_SECRET = b"voicectl-emulator-preview"

_Handler = Callable[[Request, TokenGrant, str], Awaitable[Response]]


class ConnectionDropped(httpx.RemoteProtocolError):
    """A lost response served in-process (ASGI transport, TestClient), where no socket exists."""


def new_logid() -> str:
    """YYYYMMDDhhmmss (UTC) and 20 uppercase hex digits, like Coze's logids."""
    return f"{datetime.now(timezone.utc):%Y%m%d%H%M%S}{secrets.token_hex(10).upper()}"


def envelope(
    logid: str, code: int = 0, msg: str = "", data: object = None, status: int = 200, retry: int = 1
) -> JSONResponse:
    """Coze's JSON envelope; always both code and msg, or cozepy would not raise."""
    body: dict[str, object] = {"code": code, "msg": msg}
    if data is not None:
        body["data"] = data
    body["detail"] = {"logid": logid}
    headers = {"X-Tt-Logid": logid, **({"Retry-After": str(retry)} if status == 429 else {})}
    return JSONResponse(body, status, headers=headers)


class Emulator:
    """The state behind one app: voices, faults, tokens; used only on the event loop."""

    def __init__(self, store: VoiceStore, grants: dict[str, TokenGrant], strict_docs: bool) -> None:
        self.store, self.grants, self.strict_docs = store, grants, strict_docs
        self.faults = Faults()
        self.lock = asyncio.Lock()
        self.in_flight = dict.fromkeys(ENDPOINTS, 0)

    async def api(self, request: Request, endpoint: str, scope: str, handler: _Handler) -> Response:
        """Latency, rate limit, injected failure, auth, then the endpoint; errors as envelopes."""
        logid = new_logid()
        self.in_flight[endpoint] += 1
        try:
            if self.faults.latency_ms:
                await anyio.sleep(self.faults.latency_ms / 1000)
            retry_after = self.faults.admit()
            if retry_after is not None:
                msg = CODE_MESSAGES[RATE_LIMIT_CODE]
                return envelope(logid, RATE_LIMIT_CODE, msg, status=429, retry=retry_after)
            rule = self.faults.take_failure(endpoint)
            if rule is not None:
                raise ApiError(rule.code, rule.msg, rule.http_status)
            return await handler(request, self._authorize(request, scope), logid)
        except ApiError as exc:
            return envelope(logid, exc.code, exc.msg, status=exc.http_status)
        finally:
            self.in_flight[endpoint] -= 1
            await request.close()  # the uploaded file's spool

    def _authorize(self, request: Request, scope: str) -> TokenGrant:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        grant = self.grants.get(token.strip()) if self.grants else TokenGrant()
        if scheme.lower() != "bearer" or not token.strip() or grant is None:
            raise ApiError(4100, CODE_MESSAGES[4100], 401)
        if grant.scopes is not None and scope not in grant.scopes:
            raise ApiError(4101, CODE_MESSAGES[4101], 403)
        return grant

    @staticmethod
    def _check_space(grant: TokenGrant, space_id: str) -> None:
        if not grant.covers(space_id):
            raise ApiError(4101, CODE_MESSAGES[4101], 403)

    def voice_json(self, request: Request, voice: Voice) -> dict[str, object]:
        """The API record, with a signed preview URL on this host; it changes once a day."""
        expires = max(voice.update_time, int(self.store.clock()) // 86400 * 86400) + 30 * 86400
        message = f"{voice.voice_id}:{expires}".encode()
        signature = hmac.new(_PREVIEW_SECRET, message, hashlib.sha256).hexdigest()[:32]
        base = str(request.base_url).rstrip("/")
        query = f"x-expires={expires}&x-signature={signature}"
        return voice.to_api(f"{base}/_emulator/preview/{voice.voice_id}.mp3?{query}")

    async def clone(self, request: Request, grant: TokenGrant, logid: str) -> Response:
        audio, fields = await _clone_form(request)
        voice_id, space_id = fields["voice_id"], fields["space_id"] or DEFAULT_SPACE_ID
        sha256 = hashlib.sha256(audio).hexdigest()
        commit: Callable[[], Voice]
        async with self.lock:  # check and commit as one step: concurrent clones cannot race
            if voice_id:
                current = self.store.check_retrain(voice_id)
                self._check_space(grant, current.space_id)
                if fields["space_id"] not in (None, current.space_id):
                    raise ApiError(4000, f"The voice {voice_id} belongs to another space.")
                commit = partial(self.store.retrain, current, fields, sha256)
            else:
                self._check_space(grant, space_id)
                self.store.check_slot(space_id)
                commit = partial(self.store.create, space_id, fields, sha256)
            if WER_MARKER in (fields["text"] or ""):
                raise ApiError(1109, "WERError: the audio does not match the given text.")
            voice = await anyio.to_thread.run_sync(commit)  # the fsync stays off the event loop
            dropped = self.faults.take_drop()
        if dropped:
            await _drop_connection(request)
        if self.strict_docs:
            return envelope(logid, data={"voice_id": voice.voice_id})
        return envelope(logid, data=self.voice_json(request, voice))

    async def list_voices(self, request: Request, grant: TokenGrant, logid: str) -> Response:
        params = request.query_params
        hide_system = params.get("filter_system_voice", "false").lower()
        if hide_system not in ("true", "false"):
            raise ApiError(4000, "filter_system_voice must be true or false.")
        model_type = params.get("model_type") or None
        if model_type not in (None, "big", "small"):
            raise ApiError(4000, "model_type must be big or small.")
        state = params.get("voice_state") or "cloned"
        if state not in ("init", "cloned", "all"):
            raise ApiError(4000, "voice_state must be init, cloned or all.")
        page_num = _int_param(params.get("page_num"), "page_num", 1, 1, 10**9)
        page_size = _int_param(params.get("page_size"), "page_size", 100, 1, 100)
        states = ("init", "cloned") if state == "all" else (state,)
        voices = self.store.query(
            include_system=hide_system == "false", model_type=model_type, states=states
        )
        start = (page_num - 1) * page_size
        page = [self.voice_json(request, v) for v in voices[start : start + page_size]]
        has_more = len(voices) > start + page_size
        return envelope(logid, data={"voice_list": page, "has_more": has_more})

    async def speech(self, request: Request, grant: TokenGrant, logid: str) -> Response:
        voice, fmt, rate = self.store.check_speech(await _json_body(request))
        if not voice.is_system_voice:
            self._check_space(grant, voice.space_id)
        headers = {"X-Tt-Logid": logid}
        return Response(silence(fmt, rate), media_type=MEDIA_TYPES[fmt], headers=headers)

    # -- admin: loopback tooling, no auth ----------------------------------------------

    async def admin_ledger(self, request: Request) -> Response:
        return _plain({"clones": [entry.to_json() for entry in self.store.ledger]})

    async def admin_activity(self, request: Request) -> Response:
        return _plain({"in_flight": dict(self.in_flight)})

    async def admin_faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.faults.update(await _json_body(request, status=400))
            except FaultSpecError as exc:
                raise ApiError(4000, f"Bad faults payload: {exc}", 400) from exc
        return _plain(self.faults.to_json())

    async def admin_reset(self, request: Request) -> Response:
        async with self.lock:
            await anyio.to_thread.run_sync(self.store.reset)
            self.faults.reset()
        return _plain({"reset": True})

    async def admin_add_slot(self, request: Request) -> Response:
        body = await _json_body(request, status=400)
        fields = body if isinstance(body, dict) else {}
        name, space_id = fields.get("name"), fields.get("space_id") or DEFAULT_SPACE_ID
        if not (isinstance(name, str) and name and isinstance(space_id, str)):
            raise ApiError(4000, 'Expected {"name": "...", "space_id": "..." (optional)}.', 400)
        async with self.lock:
            self.store.check_slot(space_id)
            voice = await anyio.to_thread.run_sync(self.store.add_slot, name, space_id)
        return _plain({**self.voice_json(request, voice), "space_id": voice.space_id})


def create_app(
    data_dir: Path,
    tokens: Sequence[str] = (),
    strict_docs: bool = False,
    *,
    slot_quota: int | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The emulator as an ASGI app; its :class:`Emulator` is ``app.state.emulator``.

    ``tokens`` are token specs (see :mod:`voicectl.emulator.faults`); ``slot_quota`` caps
    the voices per space (None: unlimited), beyond which a new clone gets 4019.
    """
    emulator = Emulator(
        VoiceStore(data_dir, clock=clock, slot_quota=slot_quota),
        parse_token_specs(tokens),
        strict_docs,
    )

    def api(
        endpoint: str, scope: str, handler: _Handler
    ) -> Callable[[Request], Awaitable[Response]]:
        return partial(emulator.api, endpoint=endpoint, scope=scope, handler=handler)

    routes = [
        Route(CLONE_PATH, api("clone", "createVoice", emulator.clone), methods=["POST"]),
        Route(LIST_PATH, api("list", "listVoice", emulator.list_voices), methods=["GET"]),
        Route(SPEECH_PATH, api("speech", "createSpeech", emulator.speech), methods=["POST"]),
        Route("/_emulator/ledger", emulator.admin_ledger, methods=["GET"]),
        Route("/_emulator/activity", emulator.admin_activity, methods=["GET"]),
        Route("/_emulator/faults", emulator.admin_faults, methods=["GET", "POST"]),
        Route("/_emulator/reset", emulator.admin_reset, methods=["POST"]),
        Route("/_emulator/voices", emulator.admin_add_slot, methods=["POST"]),
    ]
    handlers = {ApiError: _http_error, HTTPException: _http_error, Exception: _http_error}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.emulator = emulator
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """Errors outside the Coze API wrapper (admin, unknown routes, crashes) as envelopes."""
    if isinstance(exc, ApiError):
        return envelope(new_logid(), exc.code, exc.msg, status=exc.http_status)
    if not isinstance(exc, HTTPException):
        return envelope(new_logid(), 5000, CODE_MESSAGES[5000], status=500)
    if exc.status_code in (404, 405):  # unknown path; DELETE, PATCH, ...
        msg = f"Unsupported route: {request.method} {request.url.path}"
        return envelope(new_logid(), 4200, msg, status=404)
    return envelope(new_logid(), 4000, str(exc.detail), status=exc.status_code)


async def _json_body(request: Request, status: int = 200) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise ApiError(4000, "The request body must be JSON.", status) from exc


async def _clone_form(request: Request) -> tuple[bytes, dict[str, str | None]]:
    """The audio and the text fields of a clone, checked as section 9.6 of the contract says.

    Parts are told apart by name only: never by filename or Content-Type.
    """
    try:
        form = await request.form(max_files=64, max_fields=64)
    except HTTPException as exc:
        raise ApiError(4000, f"The multipart body cannot be parsed: {exc.detail}") from exc
    files = form.getlist("file")
    if not files:
        raise ApiError(4300, "The file is missing: send the audio in the multipart part 'file'.")
    if len(files) > 1:
        raise ApiError(4301, "Only one file can be uploaded per request.")
    upload = files[0]
    if isinstance(upload, UploadFile) and (upload.size or 0) > MAX_AUDIO_BYTES:
        raise ApiError(4302, "The file exceeds the 10 MB limit.")
    audio = await upload.read() if isinstance(upload, UploadFile) else _undecode(upload)
    if not audio:
        raise ApiError(4300, "The uploaded file is empty.")
    if len(audio) > MAX_AUDIO_BYTES:
        raise ApiError(4302, "The file exceeds the 10 MB limit.")
    fields: dict[str, str | None] = {}
    for name in (*_CLONE_FIELDS, "space_id", "description"):
        value = form.get(name)
        if isinstance(value, UploadFile):  # a text part that came with a filename
            try:
                value = (await value.read()).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ApiError(4000, f"{name} is not valid UTF-8.") from exc
        fields[name] = value or None
    check_clone_fields(
        name=fields["voice_name"],
        audio_format=fields["audio_format"],
        language=fields["language"],
        text=fields["text"],
    )
    return audio, fields


def _undecode(value: str) -> bytes:
    # A file part without a filename arrives as text: Starlette decoded it as UTF-8, or as
    # Latin-1 where that failed (as it does for real audio). Undo whichever it was.
    try:
        raw = value.encode("latin-1")
        raw.decode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8")
    except UnicodeDecodeError:
        return raw
    return value.encode("utf-8")  # raw being valid UTF-8, Starlette never fell back


async def _drop_connection(request: Request) -> None:
    """Close the connection without a reply; the handler's response is then discarded."""
    drop = request.scope.get("extensions", {}).get(DROP_EXTENSION)
    if drop is None:
        raise ConnectionDropped("Server disconnected without sending a response.")
    drop()
    # Wait until the server has seen the disconnect: it then neither sends the response
    # nor answers 500 for a handler that returned without one.
    with anyio.move_on_after(5):
        while (await request.receive())["type"] != "http.disconnect":
            pass


def _int_param(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if not raw:
        return default
    if not raw.strip().isdigit() or not low <= int(raw) <= high:
        raise ApiError(4000, f"{name} must be an integer in {low}..{high}.")
    return int(raw)


def _plain(body: dict[str, object]) -> JSONResponse:
    return JSONResponse(body, headers={"X-Tt-Logid": new_logid()})


def silence(fmt: str, sample_rate: int, seconds: float = 0.2) -> bytes:
    """A short silent clip in a speech ``response_format``: tiny, but valid audio."""
    frames = int(sample_rate * seconds)
    if fmt == "pcm":  # 16-bit little-endian mono, no header
        return bytes(2 * frames)
    if fmt == "wav":
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(sample_rate)
            out.writeframes(bytes(2 * frames))
        return buffer.getvalue()
    if fmt == "mp3":
        # MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz, mono) of 1152 samples each, whose
        # all-zero side information decodes as silence.
        return (b"\xff\xfb\x90\xc4" + bytes(413)) * max(1, round(seconds * 44100 / 1152))
    # Ogg Opus (RFC 7845): the two header pages, then 20 ms silent CELT frames on one page.
    count = max(1, round(seconds / 0.02))
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 8) + b"voicectl" + struct.pack("<I", 0)
    pages = [
        ([head], 0, 0x02),
        ([tags], 0, 0x00),
        ([b"\xf8\xff\xfe"] * count, 312 + 960 * count, 0x04),
    ]
    stream = b""
    for sequence, (packets, granule, flags) in enumerate(pages):
        lacing = bytes(len(p) for p in packets)  # each packet is shorter than 255 bytes
        header = struct.pack(
            "<4sBBqIIIB", b"OggS", 0, flags, granule, 0x766F6963, sequence, 0, len(packets)
        )
        page = bytearray(header + lacing + b"".join(packets))
        page[22:26] = struct.pack("<I", _ogg_crc(page))
        stream += page
    return stream


def _ogg_crc(data: bytes | bytearray) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc
