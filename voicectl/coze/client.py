"""The one place that talks to Coze: clone and list over an injected httpx.Client.

Coze replies with an envelope ``{code, msg, data, detail: {logid}}``; anything but a
success becomes a :class:`CozeError` with the logid, a hint a human can act on, and what
the reply proves (:mod:`voicectl.coze.replies`). Listing is read-only, so it is retried with
backoff (honouring ``Retry-After``) on everything but a request error. A clone is billed
and has no idempotency key, so it is sent again only when Coze provably did not take it
(a rate-limit refusal, or a connection that was never made); any other failure after the
request may have left is :class:`OutcomeUnknown`, for the caller to reconcile through a
complete listing before resending.
The token is sent in a header and never appears in a message.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

import httpx

from voicectl.coze import apibase, replies
from voicectl.coze.listing import Pages
from voicectl.coze.pacing import Retry, Slot, Throttle
from voicectl.coze.replies import CloneResult
from voicectl.coze.transport import (
    CLONE_SECONDS,
    LIST_SECONDS,
    LIST_TIMEOUT,
    NEVER_REACHED,
    NOT_SENT,
    Coalesced,
    Deadline,
    bounded_text,
    check_base_url,
    http_client,
    reason,
    retry_after,
    send_within,
    tls_failure,
)
from voicectl.coze.upload import Readable, open_file
from voicectl.errors import (
    CozeError,
    ListingIncomplete,
    OutcomeUnknown,
    TransportError,
    Verdict,
    VoicectlError,
    WaitBudgetSpent,
)
from voicectl.model import RemoteVoice

__all__ = [
    "CloneResult",
    "CozeClient",
    "CozeError",
    "ListingIncomplete",
    "OutcomeUnknown",
    "TransportError",
    "check_base_url",
    "http_client",
]

CLONE_PATH = "/v1/audio/voices/clone"
LIST_PATH = "/v1/audio/voices"
MAX_PAGES = 1000
# A hostile list could fill memory with long pages, or take hours with slow ones: a
# listing holds at most this many voices and takes at most this long.
MAX_LISTED_VOICES = 200_000
LISTING_SECONDS = 900.0
PAGE_SIZE = 100


class Wire(NamedTuple):
    http: httpx.Client
    auth: dict[str, str]
    retry: Retry
    throttle: Throttle
    token: str  # only to keep it out of what a reply's error shows


class CozeClient:
    """Clone and list voices on Coze through ``http`` (an httpx.Client with a base_url)."""

    def __init__(
        self,
        http: httpx.Client,
        token: str,
        retry: Retry = Retry(),
        throttle: Throttle | None = None,
        deadlines: tuple[float, float] = (CLONE_SECONDS, LIST_SECONDS),
    ) -> None:
        if not token:
            raise VoicectlError("COZE_API_TOKEN is empty")
        self._http = http
        self._token = token  # only to keep it out of what a reply's error shows
        self._auth = {"Authorization": f"Bearer {token}"}
        self._retry = retry
        self._throttle = throttle or Throttle(sleep=retry.sleep)
        # each clone's and each list request's, from sending to the end of the reply
        self._clone_seconds, self._list_seconds = deadlines
        self._answered = False  # whether anything ever answered at this base

    @property
    def deadline(self) -> float:
        """The longest a clone request can be on the wire, in seconds."""
        return self._clone_seconds

    @property
    def base_url(self) -> str:
        """The API base, as the operator chose it (check_base_url refused credentials)."""
        return str(self._http.base_url).rstrip("/")

    def account_record(self) -> dict[str, str]:
        """Which account this client speaks for, as an apply's journal keeps it."""
        return replies.account_record(self.base_url, self._token)

    def same_account(self, record: Mapping[str, object]) -> bool:
        return replies.same_account(record, self.base_url, self._token)

    def wire(self) -> Wire:
        """What another request (a speech) is sent and paced with, as a clone is."""
        return Wire(self._http, self._auth, self._retry, self._throttle, self._token)

    def seal(self) -> replies.Seal:
        """What seals (and checks) an apply journal's lines with this client's token."""
        return replies.Seal(self.base_url, self._token)

    def _answer(
        self,
        response: httpx.Response,
        deadline: Deadline,
        slot: Slot,
        attempt: int,
        listing: bool = False,
    ) -> tuple[Any, str]:
        """``data`` and logid of a success; else CozeError, telling the throttle of a
        rate-limit rejection."""
        try:
            header = response.headers.get("x-tt-logid", "")
            text = bounded_text(response, deadline)
            return replies.read(response.status_code, text, header, self._token, listing)
        except CozeError as exc:
            if exc.verdict is Verdict.THROTTLED:
                slot.pause = self._retry.rate_delay(attempt, retry_after(response))
            raise

    def clone(
        self,
        *,
        audio: Path | Readable,
        audio_format: str,
        voice_name: str,
        language: str,
        text: str,
        preview_text: str | None,
        space_id: str | None,
        voice_id: str | None = None,
    ) -> CloneResult:
        """One clone (a retrain when ``voice_id`` is given), never sent twice blindly.

        It is sent again only when nothing left (no connection was made) or Coze's reply
        proves it was refused for its rate (see :mod:`voicectl.coze.replies`). A request error
        raises CozeError; every other failure raises OutcomeUnknown, for the caller to
        look for the clone on the account before anything is resent.
        """
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
                    data, logid = self._send_clone(audio, form, slot, limited)
            except NOT_SENT as exc:
                # The connection was never made, so nothing was sent: safe to try again,
                # unless the certificate failed to verify, which no retry mends.
                if attempt + 1 >= self._retry.attempts or tls_failure(exc):
                    raise TransportError(f"cannot reach Coze: {reason(exc)}") from None
                self._retry.sleep(self._retry.delay(attempt, None))
                attempt += 1
                waited = False
                continue
            except httpx.HTTPError as exc:
                raise OutcomeUnknown(
                    f"no answer to the clone request ({reason(exc)}); "
                    "it may or may not have been carried out"
                ) from None
            except CozeError as exc:
                self._wait_out_rate_limit(exc, slot, limited)
                limited += 1
                waited = True
                continue
            return _clone_result(data, logid)

    def _send_clone(
        self, audio: Path | Readable, form: dict[str, str], slot: Slot, limited: int
    ) -> tuple[Any, str]:
        """Send one clone request: ``data`` and logid of a success; else it raises."""
        with open_file(audio) as (name, handle):  # streamed from disk by httpx
            request = self._http.build_request(
                "POST",
                CLONE_PATH,
                data=form,
                headers=self._auth,
                # httpx reads, seeks and sizes it: a Readable suffices
                files={"file": (name, cast(IO[bytes], handle))},
            )
            request.stream = Coalesced(request.stream)
            deadline = Deadline.after(self._clone_seconds)
            response = send_within(self._http, request, deadline)
        return self._answer(response, deadline, slot, limited)

    def _wait_out_rate_limit(self, exc: CozeError, slot: Slot, limited: int) -> None:
        """Wait before a clone refused for Coze's rate is sent again; else raise: ``exc``
        when it proves the clone was never carried out, OutcomeUnknown when it does not."""
        if exc.verdict is Verdict.REFUSED:
            raise exc
        if exc.verdict is not Verdict.THROTTLED:
            raise OutcomeUnknown(
                f"{exc.message}; that reply does not prove the clone was refused, "
                "so it may have been carried out"
            ) from None
        if limited + 1 >= self._retry.rate_limit_attempts:
            raise exc  # refused every time: certainly never carried out
        self._retry.sleep(slot.pause or self._retry.delay(limited, None))

    def _get(self, params: dict[str, Any], until: Deadline | None = None) -> Any:
        """One list request; read-only, so retried on anything but a request error, while
        ``until`` (the whole listing's deadline) allows: it bounds every try and wait."""
        attempt = limited = 0
        waited = False
        while True:
            if until is not None and not until.left():
                raise TransportError(f"the list was not read to its end within {until}")
            try:
                with self._throttle.slot(hold_back=not waited) as slot:
                    request = self._http.build_request(
                        "GET", LIST_PATH, params=params, headers=self._auth, timeout=LIST_TIMEOUT
                    )
                    seconds = self._list_seconds if until is None else until.left()
                    deadline = Deadline.after(min(self._list_seconds, seconds))
                    response = send_within(self._http, request, deadline)
                    self._answered = True
                    data, _ = self._answer(response, deadline, slot, limited, listing=True)
                    return data
            except CozeError as exc:
                if exc.verdict is Verdict.REFUSED:
                    raise
                if exc.verdict is Verdict.THROTTLED:
                    if limited + 1 >= self._retry.rate_limit_attempts:
                        raise
                    pause = slot.pause or self._retry.delay(limited, None)
                    if until is not None and pause >= until.left():
                        raise
                    self._retry.sleep(pause)
                    limited += 1
                    waited = True
                    continue
                failure: VoicectlError = exc
                wait = retry_after(response)
            except httpx.HTTPError as exc:
                if until is not None and not until.left():  # cut short by the listing's end
                    raise TransportError(
                        f"the list was not read to its end within {until}"
                    ) from None
                why = reason(exc)
                failure = TransportError(f"cannot list voices on Coze: {why}")
                wait = None
                if tls_failure(exc):
                    raise failure from None
                if not self._answered and why.startswith(NEVER_REACHED):
                    # Nothing has ever answered at this base: a setting, not a blip.
                    local = apibase.loopback(self._http.base_url.host)
                    hint = " (is the emulator running? `voicectl emulator`)" if local else ""
                    raise TransportError(f"cannot reach Coze: {why}{hint}") from None
            pause = self._retry.delay(attempt, wait)
            if attempt + 1 >= self._retry.attempts or (until and pause >= until.left()):
                raise failure from None
            try:
                self._retry.sleep(pause)
            except WaitBudgetSpent as spent:  # what failed matters more than the budget
                raise TransportError(f"{failure.message} (then {spent.message})") from None
            attempt += 1
            waited = False

    def voices(
        self,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
        max_voices: int = MAX_LISTED_VOICES,
        seconds: float = LISTING_SECONDS,
        ahead: int = 8,
        expected: int = 0,
    ) -> Iterator[RemoteVoice]:
        """Every custom voice the token can see, paging while Coze says ``has_more``.

        Only ``has_more`` ends the listing: a short page is legal (Coze merges system
        voices and every workspace the token sees into one list). A listing that cannot
        be read to its end (a page fails or is malformed, a page repeats the one before,
        ``has_more`` never ends within ``max_pages``) raises ListingIncomplete, never a
        shorter answer: callers conclude from it that a voice is absent.

        The first page is read alone (most accounts fit in it); after it, up to ``ahead``
        pages are in flight at once, so 10,000 voices take 13 round trips, not 100. When
        the caller expects more than a page (``expected``, e.g. the voices in the state),
        the pages it expects, up to 16, are asked for at once from the first.
        """
        pages = Pages(max_voices, Deadline.after(seconds))
        deadline, page = pages.deadline, 1
        if expected < page_size:
            voices, last = pages.take(self._page(1, page_size, deadline))
            yield from voices
            if last:
                return
            page = 2
        else:
            ahead = max(ahead, min(16, expected // page_size + 1))
        with ThreadPoolExecutor(max_workers=max(1, ahead)) as pool:
            queued: deque[Future[tuple[int, replies.Page]]] = deque()
            try:
                while True:
                    while len(queued) < max(1, ahead) and page <= max_pages:
                        queued.append(pool.submit(self._page, page, page_size, deadline))
                        page += 1
                    if not queued:
                        break
                    voices, last = pages.take(queued.popleft().result())
                    yield from voices
                    if last:
                        return
            finally:
                for future in queued:  # read past the end, or abandoned: not needed
                    future.cancel()
        raise ListingIncomplete(f"has_more was still true after {max_pages} pages")

    def _page(
        self, page: int, page_size: int, until: Deadline | None = None
    ) -> tuple[int, replies.Page]:
        """One page of the list, by number; a reply that is not a well-formed page raises."""
        try:
            data = self._get(
                {
                    "voice_state": "all",
                    "filter_system_voice": "true",
                    "page_num": page,
                    "page_size": page_size,
                },
                until,
            )
            return page, replies.page(data, self._token)
        except CozeError as exc:
            if exc.verdict is Verdict.REFUSED:  # the token, say: not a gap in the listing
                raise
            raise ListingIncomplete(f"page {page}: {exc.message}") from None
        except TransportError as exc:
            if page == 1:
                raise ListingIncomplete(exc.message, started=False) from None
            raise ListingIncomplete(f"page {page}: {exc.message}") from None
        except replies.MalformedPage as exc:
            raise ListingIncomplete(f"page {page}: {exc}") from None


def _clone_result(data: Any, logid: str) -> CloneResult:
    """The new voice id of a clone's reply; a reply without a valid one proves nothing."""
    new_id = replies.voice_id(data.get("voice_id") if isinstance(data, dict) else None)
    if new_id is None:
        raise OutcomeUnknown(f"Coze's clone reply has no valid voice_id (logid {logid or 'none'})")
    return CloneResult(new_id, logid)
