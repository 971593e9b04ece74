"""The one place that talks to Coze: clone and list over an injected httpx.Client.

Coze replies with an envelope ``{code, msg, data, detail: {logid}}``; anything but code
0 becomes a typed :class:`CozeError` with the logid and a hint a human can act on.
Listing is retried with exponential backoff (honouring ``Retry-After``) on rate limits,
5xx and transport errors. A clone is billed and has no idempotency key, so it is retried
only when Coze provably did not take it (an explicit rate-limit rejection, or a
connection that was never made); any other failure after the request may have left is
:class:`OutcomeUnknown`, for the caller to reconcile through the list before resending.
The token is sent in a header and never appears in a message.
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from voicectl import apibase
from voicectl.errors import VoicectlError
from voicectl.model import RemoteVoice
from voicectl.pacing import Retry, Slot, Throttle

CLONE_PATH = "/v1/audio/voices/clone"
LIST_PATH = "/v1/audio/voices"
RATE_LIMIT_CODES = frozenset({4009, 4013, 4020})
MAX_PAGES = 1000
PAGE_SIZE = 100

HINTS = {
    4100: "the token is invalid or expired, or belongs to the other region: a coze.com token "
    "does not work on api.coze.cn and the reverse (set COZE_API_BASE)",
    4101: "the token lacks a permission (createVoice to clone, listVoice to list) or access "
    "to this workspace",
    1109: "Coze found the audio does not match `text`; fix the transcript or the take",
    1123: "this voice id has used all 10 clones; `--replace ADDRESS` makes a new voice id",
    4011: "the Coze token balance is insufficient",
    4019: "the account is in arrears or out of voice slots; top up or buy a voice pack",
    4000: "Coze rejected a parameter",
    4200: "Coze does not know this voice id (or it belongs to another account)",
}
FILE_HINT = "Coze rejected the audio file (empty, too large, unsupported or invalid)"


class CozeError(VoicectlError):
    """Coze answered with an error code; carries code, msg and logid."""

    def __init__(self, code: int, msg: str, logid: str, http_status: int) -> None:
        self.code, self.msg, self.logid, self.http_status = code, msg, logid, http_status
        hint = HINTS.get(code) or (FILE_HINT if 4300 <= code < 4400 else "")
        text = f"Coze error {code}: {msg or '(no message)'} (logid {logid or 'none'})"
        super().__init__(f"{text}; {hint}" if hint else text)

    @property
    def rate_limited(self) -> bool:
        return self.http_status == 429 or self.code in RATE_LIMIT_CODES

    @property
    def server_side(self) -> bool:
        return self.http_status >= 500 or self.code == 5000


class TransportError(VoicectlError):
    """Coze could not be reached or did not answer; for a clone see OutcomeUnknown."""


class OutcomeUnknown(VoicectlError):
    """A clone request may have reached Coze but no answer came back."""


@dataclass(frozen=True)
class CloneResult:
    voice_id: str
    logid: str


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
    return httpx.Client(
        base_url=check_base_url(base),
        timeout=httpx.Timeout(timeout, connect=10.0),
        follow_redirects=False,
        verify=True,
        headers={"User-Agent": "voicectl"},
        # Keep a connection alive for each of up to 64 parallel clones (httpx keeps 20):
        # one past that would be closed after every request and made again.
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=64),
    )


def _tls_failure(exc: BaseException) -> bool:
    """A certificate that does not verify: not transient, so never worth a retry.

    httpx wraps the ssl error (through httpcore), so the chain of causes is walked.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _reason(exc: httpx.HTTPError) -> str:
    """Why a request got no answer, in words; TLS failures are named as such."""
    text = str(exc)
    if _tls_failure(exc):
        detail = text.split("] ", 1)[-1].split(" (_ssl", 1)[0]
        return f"TLS certificate verification failed ({detail}); voicectl never turns it off"
    return type(exc).__name__


def _logid(response: httpx.Response, body: Any) -> str:
    header = response.headers.get("x-tt-logid", "")
    if header:
        return str(header)
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail.get("logid", "")) if isinstance(detail, dict) else ""


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


class CozeClient:
    """Clone and list voices on Coze through ``http`` (an httpx.Client with a base_url)."""

    def __init__(
        self,
        http: httpx.Client,
        token: str,
        retry: Retry = Retry(),
        throttle: Throttle | None = None,
    ) -> None:
        if not token:
            raise VoicectlError("COZE_API_TOKEN is empty")
        self._http = http
        self._auth = {"Authorization": f"Bearer {token}"}
        self._retry = retry
        self._throttle = throttle or Throttle(sleep=retry.sleep)

    def _answer(self, response: httpx.Response, slot: Slot, attempt: int) -> Any:
        """``_data`` of ``response``; a rate-limit rejection also tells the throttle."""
        try:
            return self._data(response)
        except CozeError as exc:
            if exc.rate_limited:
                slot.pause = self._retry.rate_delay(attempt, _retry_after(response))
            raise

    def _data(self, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = None
        logid = _logid(response, body)
        if not isinstance(body, dict) or "code" not in body:
            text = response.text[:200].strip() or "(empty body)"
            raise CozeError(
                response.status_code,
                f"HTTP {response.status_code}: {text}",
                logid,
                response.status_code,
            )
        try:
            code = int(body["code"])
        except (TypeError, ValueError):
            code = -1
        if code != 0:
            raise CozeError(code, str(body.get("msg") or ""), logid, response.status_code)
        return body.get("data"), logid

    def clone(
        self,
        *,
        audio: Path,
        audio_format: str,
        voice_name: str,
        language: str,
        text: str,
        preview_text: str | None,
        space_id: str | None,
        voice_id: str | None = None,
    ) -> CloneResult:
        """One clone (a retrain when ``voice_id`` is given); never sent twice blindly."""
        fields = {
            "voice_name": voice_name,
            "audio_format": audio_format,
            "language": language,
            "voice_id": voice_id,
            "preview_text": preview_text,
            "text": text,
            "space_id": space_id,
        }
        form = {k: v for k, v in fields.items() if v is not None}
        attempt = limited = 0
        waited = False  # this request has just waited out its own rate-limit pause
        while True:
            try:
                with self._throttle.slot(hold_back=not waited) as slot:
                    with open(audio, "rb") as handle:  # streamed from disk by httpx
                        request = self._http.build_request(
                            "POST",
                            CLONE_PATH,
                            data=form,
                            headers=self._auth,
                            files={"file": (audio.name, handle)},
                        )
                        request.stream = _Coalesced(request.stream)
                        response = self._http.send(request)
                    data, logid = self._answer(response, slot, limited)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # The connection was never made, so nothing was sent: safe to try again,
                # unless the certificate failed to verify, which no retry mends.
                if attempt + 1 >= self._retry.attempts or _tls_failure(exc):
                    raise TransportError(f"cannot reach Coze: {_reason(exc)}") from None
                self._retry.sleep(self._retry.delay(attempt, None))
                attempt += 1
                waited = False
                continue
            except httpx.HTTPError as exc:
                raise OutcomeUnknown(
                    f"no answer to the clone request ({type(exc).__name__}); "
                    "it may or may not have been carried out"
                ) from None
            except CozeError as exc:
                # Rejected for its rate: Coze did not carry it out, so it may go again.
                if slot.pause is not None and limited + 1 < self._retry.rate_limit_attempts:
                    self._retry.sleep(slot.pause)
                    limited += 1
                    waited = True
                    continue
                if exc.server_side:
                    raise OutcomeUnknown(
                        f"Coze failed while cloning ({exc.message}); the clone "
                        "may or may not have been carried out"
                    ) from None
                raise
            new_id = data.get("voice_id") if isinstance(data, dict) else None
            if not isinstance(new_id, str) or not new_id:
                raise OutcomeUnknown(f"Coze's clone reply has no voice_id (logid {logid})")
            return CloneResult(new_id, logid)

    def _get(self, params: dict[str, Any]) -> Any:
        attempt = limited = 0
        waited = False
        while True:
            try:
                with self._throttle.slot(hold_back=not waited) as slot:
                    response = self._http.get(LIST_PATH, params=params, headers=self._auth)
                    data, _ = self._answer(response, slot, limited)
                    return data
            except CozeError as exc:
                if slot.pause is not None:
                    if limited + 1 >= self._retry.rate_limit_attempts:
                        raise
                    self._retry.sleep(slot.pause)
                    limited += 1
                    waited = True
                    continue
                if not exc.server_side:
                    raise
                failure: VoicectlError = exc
                retry_after = _retry_after(response)
            except httpx.HTTPError as exc:
                failure = TransportError(f"cannot list voices on Coze: {_reason(exc)}")
                retry_after = None
                if _tls_failure(exc):
                    raise failure from None
            if attempt + 1 >= self._retry.attempts:
                raise failure from None
            self._retry.sleep(self._retry.delay(attempt, retry_after))
            attempt += 1
            waited = False

    def voices(
        self,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
        ahead: int = 8,
        expected: int = 0,
    ) -> Iterator[RemoteVoice]:
        """Every custom voice the token can see, paging until the last page.

        The first page is read alone (most accounts fit in it); after it, up to ``ahead``
        pages are in flight at once, so 10,000 voices take 13 round trips, not 100. When
        the caller expects more than a page (``expected``, e.g. the voices in the state),
        the pages it expects, up to 16, are asked for at once from the first.
        """
        page = 1
        if expected < page_size:
            first = self._page(1, page_size)
            yield from first[0]
            if first[1]:
                return
            page = 2
        else:
            ahead = max(ahead, min(16, expected // page_size + 1))
        with ThreadPoolExecutor(max_workers=max(1, ahead)) as pool:
            queued: deque[Future[tuple[list[RemoteVoice], bool]]] = deque()
            try:
                while True:
                    while len(queued) < max(1, ahead) and page <= max_pages:
                        queued.append(pool.submit(self._page, page, page_size))
                        page += 1
                    if not queued:
                        break
                    items, last = queued.popleft().result()
                    yield from items
                    if last:
                        return
            finally:
                for future in queued:  # read past the end, or abandoned: not needed
                    future.cancel()
        raise TransportError(f"Coze's voice list did not end after {max_pages} pages")

    def _page(self, page: int, page_size: int) -> tuple[list[RemoteVoice], bool]:
        """One page of the list, and whether it is the last."""
        data = self._get(
            {
                "voice_state": "all",
                "filter_system_voice": "true",
                "page_num": page,
                "page_size": page_size,
            }
        )
        items = data.get("voice_list") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise TransportError("Coze's voice list reply has no voice_list")
        found = [
            _remote(item)
            for item in items
            if isinstance(item, dict) and not item.get("is_system_voice")
        ]
        return found, not data.get("has_more") or len(items) < page_size


class _Coalesced(httpx.SyncByteStream):
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


def _remote(item: dict[str, Any]) -> RemoteVoice:
    return RemoteVoice(
        voice_id=str(item.get("voice_id", "")),
        name=str(item.get("name", "")),
        available_training_times=int(item.get("available_training_times") or 0),
        create_time=int(item.get("create_time") or 0),
        update_time=int(item.get("update_time") or 0),
        language=str(item.get("language_code") or ""),
        state=str(item.get("state") or ""),
    )
