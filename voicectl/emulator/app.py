"""The emulator's ASGI app: Coze's voice endpoints plus loopback admin endpoints.

Coze API (contract sections 2-5 and 9): ``POST /v1/audio/voices/clone`` (multipart),
``GET /v1/audio/voices`` and ``POST /v1/audio/speech``. Every JSON reply is the envelope
``{code, msg, data?, detail: {logid}}``, the logid also in ``X-Tt-Logid``. Business errors
answer HTTP 200 as Coze does (INFERRED); 4100 answers 401, 4101 403, and an unknown route
or method (DELETE, PATCH, ...) 404. Tokens: see :mod:`voicectl.emulator.tokens`; faults:
:mod:`voicectl.emulator.faults`; the clone's form and audio checks (4300-4304):
:mod:`voicectl.emulator.upload`.

A clone's reply ``data`` is exactly ``{"voice_id": ...}``, as Coze documents. cozepy 0.20.0
validates that reply as a full Voice and raises a pydantic ``ValidationError`` on the
documented body (after the clone was committed): a client that clones through cozepy
needs ``full_clone_reply=True``, which answers the whole Voice record (a superset that
other clients ignore).

A clone without ``space_id`` goes to the personal space ``DEFAULT_SPACE_ID``. A clone
whose ``text`` contains ``[wer-mismatch]`` fails with 1109 (WERError), committing nothing.
With ``slot_quota`` N, a new clone on an account already holding N custom voices gets
4019 (no voice slot left: a voice-clone expansion pack is needed); a retrain needs none.

Admin endpoints, without auth (loopback tooling): ``GET /_emulator/ledger``,
``GET|POST /_emulator/faults``, ``POST /_emulator/reset``, ``POST /_emulator/voices``
with ``{"name", "space_id"?}``, which makes a voice slot in state ``init`` as the Coze
console does (its first upload is then a clone with its ``voice_id``), and
``GET /_emulator/activity``: ``{"in_flight": {endpoint: n}, "requests": {endpoint: n}}``,
the Coze API requests being handled right now and received since the start (or the last
reset), plus ``preview`` fetches and ``preview_with_token``, those that came with an
``Authorization`` header (a preview link is fetched without the token). A client killed
mid-request leaves its request running here (as on Coze); a fault campaign waits for it
to settle before checking what it did.
Each voice's signed ``preview_audio`` link is served too (no auth; see
:mod:`voicectl.emulator.preview`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from voicectl.emulator.faults import (
    CODE_MESSAGES,
    ENDPOINTS,
    LAG_SECONDS,
    RATE_LIMIT_CODE,
    Faults,
    FaultSpecError,
)
from voicectl.emulator.preview import PREVIEW_ROUTE, preview_reply, preview_url
from voicectl.emulator.speech import MEDIA_TYPES, check_speech, spoken
from voicectl.emulator.store import (
    DEFAULT_SPACE_ID,
    WER_MARKER,
    ApiError,
    Voice,
    VoiceStore,
)
from voicectl.emulator.tokens import TokenGrant, parse_token_specs
from voicectl.emulator.upload import clone_form
from voicectl.emulator.voicing import take_voice
from voicectl.emulator.wire import envelope, fault_reply, json_body, new_logid, plain

CLONE_PATH = "/v1/audio/voices/clone"
LIST_PATH = "/v1/audio/voices"
SPEECH_PATH = "/v1/audio/speech"
DROP_EXTENSION = "voicectl.drop_connection"  # scope["extensions"] key set by server.py

_Handler = Callable[[Request, TokenGrant, str], Awaitable[Response]]


class ConnectionDropped(httpx.RemoteProtocolError):
    """A lost response served in-process (ASGI transport, TestClient), where no socket exists."""


class Emulator:
    """The state behind one app: voices, faults, tokens; used only on the event loop."""

    def __init__(
        self,
        store: VoiceStore,
        grants: dict[str, TokenGrant],
        full_clone_reply: bool,
        faults: Faults | None = None,
    ) -> None:
        self.store, self.grants, self.full_clone_reply = store, grants, full_clone_reply
        self.faults = faults or Faults()
        self.lock = asyncio.Lock()
        self.in_flight = dict.fromkeys(ENDPOINTS, 0)
        self.requests = dict.fromkeys((*ENDPOINTS, "preview", "preview_with_token"), 0)

    async def api(self, request: Request, endpoint: str, scope: str, handler: _Handler) -> Response:
        """Latency, rate limit, injected failure, auth, then the endpoint; errors as envelopes."""
        logid = new_logid()
        self.in_flight[endpoint] += 1
        self.requests[endpoint] += 1
        try:
            if self.faults.latency_ms:
                await anyio.sleep(self.faults.latency_ms / 1000)
            retry_after = self.faults.admit()
            if retry_after is not None:
                msg = CODE_MESSAGES[RATE_LIMIT_CODE]
                return envelope(logid, RATE_LIMIT_CODE, msg, status=429, retry=retry_after)
            rule = self.faults.take_failure(endpoint)
            if rule is not None:
                return fault_reply(rule, logid)
            return await handler(request, self._authorize(request, scope), logid)
        except ApiError as exc:
            return envelope(logid, exc.code, exc.msg, status=exc.http_status)
        except ClientDisconnect:
            # The client went away before its request was whole (killed, or it stopped an
            # upload whose take changed): nothing was committed, and no one hears a reply.
            return Response(status_code=400)
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
        return voice.to_api(preview_url(str(request.base_url), voice, self.store.clock()))

    async def clone(self, request: Request, grant: TokenGrant, logid: str) -> Response:
        audio, fields = await clone_form(request)
        voice_id, space_id = fields["voice_id"], fields["space_id"] or DEFAULT_SPACE_ID
        take = await anyio.to_thread.run_sync(take_voice, audio, fields["audio_format"] or "")
        commit: Callable[[], Voice]
        async with self.lock:  # check and commit as one step: concurrent clones cannot race
            if voice_id:
                current = self.store.check_retrain(voice_id)
                self._check_space(grant, current.space_id)
                if fields["space_id"] not in (None, current.space_id):
                    raise ApiError(4000, f"The voice {voice_id} belongs to another space.")
                commit = partial(self.store.retrain, current, fields, take)
            else:
                self._check_space(grant, space_id)
                self.store.check_slot()
                commit = partial(self.store.create, space_id, fields, take)
            if WER_MARKER in (fields["text"] or ""):
                raise ApiError(1109, CODE_MESSAGES[1109])
            voice = await anyio.to_thread.run_sync(commit)  # the fsync stays off the event loop
            dropped = self.faults.take_drop()
            spoiled = None if dropped else self.faults.take_after_commit()
        if dropped:
            await _drop_connection(request)
        if spoiled is not None:
            return fault_reply(spoiled, logid)
        if self.full_clone_reply:
            return envelope(logid, data=self.voice_json(request, voice))
        return envelope(logid, data={"voice_id": voice.voice_id})

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
        if self.faults.take_lag():  # a list that does not show the newest voices yet
            recent = self.store.clock() - LAG_SECONDS
            voices = [v for v in voices if v.create_time < recent]
        start, stop, has_more = self.faults.page(len(voices), page_num, page_size)
        page = [self.voice_json(request, v) for v in voices[start:stop]]
        return envelope(logid, data={"voice_list": page, "has_more": has_more})

    async def speech(self, request: Request, grant: TokenGrant, logid: str) -> Response:
        asked = check_speech(await json_body(request), self.store.get)
        if not asked.voice.is_system_voice:
            self._check_space(grant, asked.voice.space_id)
        audio = await anyio.to_thread.run_sync(spoken, asked)
        headers = {"X-Tt-Logid": logid}
        return Response(audio, media_type=MEDIA_TYPES[asked.fmt], headers=headers)

    # -- admin: loopback tooling, no auth ----------------------------------------------

    async def admin_ledger(self, request: Request) -> Response:
        return plain({"clones": [entry.to_json() for entry in self.store.ledger]})

    async def admin_activity(self, request: Request) -> Response:
        return plain({"in_flight": dict(self.in_flight), "requests": dict(self.requests)})

    async def preview(self, request: Request) -> Response:
        self.requests["preview"] += 1
        if "authorization" in request.headers:
            self.requests["preview_with_token"] += 1
        return await preview_reply(request, self.store)

    async def admin_faults(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.faults.update(await json_body(request, status=400))
            except FaultSpecError as exc:
                raise ApiError(4000, f"Bad faults payload: {exc}", 400) from exc
        return plain(self.faults.to_json())

    async def admin_reset(self, request: Request) -> Response:
        async with self.lock:
            await anyio.to_thread.run_sync(self.store.reset)
            self.faults.reset()
            self.requests = dict.fromkeys(self.requests, 0)
        return plain({"reset": True})

    async def admin_add_slot(self, request: Request) -> Response:
        body = await json_body(request, status=400)
        fields = body if isinstance(body, dict) else {}
        name, space_id = fields.get("name"), fields.get("space_id") or DEFAULT_SPACE_ID
        if not (isinstance(name, str) and name and isinstance(space_id, str)):
            raise ApiError(4000, 'Expected {"name": "...", "space_id": "..." (optional)}.', 400)
        async with self.lock:
            self.store.check_slot()
            voice = await anyio.to_thread.run_sync(self.store.add_slot, name, space_id)
        return plain({**self.voice_json(request, voice), "space_id": voice.space_id})


def create_app(
    data_dir: Path,
    tokens: Sequence[str] = (),
    *,
    full_clone_reply: bool = False,
    slot_quota: int | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The emulator as an ASGI app; its :class:`Emulator` is ``app.state.emulator``.

    ``tokens`` are token specs (see :mod:`voicectl.emulator.tokens`). A clone's reply
    ``data`` is ``{"voice_id"}`` only, as Coze documents; ``full_clone_reply`` answers
    the full Voice record instead, which cozepy 0.20.0 needs: it validates the clone
    reply as a full Voice and raises pydantic's ``ValidationError`` on the documented
    body. ``slot_quota`` caps the account's custom voices (None: unlimited), beyond which
    a new clone gets 4019. ``clock`` (Unix seconds) dates voices and expires preview links.
    """
    faults = Faults()  # its clock_skew_s moves the store's clock: Coze's, not the client's
    emulator = Emulator(
        VoiceStore(data_dir, clock=lambda: clock() + faults.clock_skew_s, slot_quota=slot_quota),
        parse_token_specs(tokens),
        full_clone_reply,
        faults,
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
        Route(PREVIEW_ROUTE, emulator.preview, methods=["GET"]),
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
