"""What a reply from Coze proves, by Coze's documentation (not by what the emulator does).

A clone is billed and has no idempotency key, so the question for every reply that is
not a success is whether it *proves* that nothing was committed. Coze's error-code
table (its documentation's ``coze_error_codes`` page) answers it for a few codes only:

- **throttled**: HTTP 429, code 4009 (the system is at its request ceiling) and 4020
  (RPM over the purchased quota) refuse a request for its rate before doing anything:
  it may be sent again after the wait, without looking.
- **refused**: a request error (bad parameter, authentication, permission, the file,
  the transcript, the upload limit, a daily limit, the balance, the slots) is final:
  sending the same request again cannot succeed, so it is never resent.
- **unknown**: everything else, 5xx, 5000, 4013 (a *model* error, not a rate limit),
  any code the table does not list, a body that is not Coze's JSON envelope (a proxy's
  HTML page, an empty body), or a success envelope at an error status: the clone may
  have been committed, so it is looked for on the account before any resend.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from voicectl.errors import CozeError, Verdict
from voicectl.files import jsontext
from voicectl.model import CNY_PER_NEW_VOICE, LANGUAGES, RemoteVoice, control_character

THROTTLE_CODES = frozenset({4009, 4020})
REFUSAL_CODES = frozenset(
    {4000, 4008, 4011, 4019, 4100, 4101, 4300, 4301, 4302, 4303, 4304, 1109, 1123}
)
VOICE_ID = re.compile(r"[0-9]{1,32}")  # as the state schema's voice_id
LOGID = re.compile(r"[0-9A-Za-z]{1,64}")

HINTS = {
    4000: "Coze rejected a parameter",
    4008: "the account's daily limit is reached; apply again tomorrow",
    4009: "Coze is at its request ceiling; apply again later (nothing was cloned)",
    4011: "the Coze token balance is insufficient",
    4013: "Coze's model service failed",
    4019: "the account is in arrears or has no voice slot left: top up, or have an "
    f"administrator buy a voice-clone expansion pack ({CNY_PER_NEW_VOICE} CNY a voice) and raise "
    "policy.max_voices in voicectl.yaml",
    4020: "the account's requests per minute are over its purchased quota; apply again "
    "later or with a lower --parallelism (nothing was cloned)",
    4100: "the token is invalid or expired, or belongs to the other region: a coze.com token "
    "does not work on api.coze.cn and the reverse (set COZE_API_BASE)",
    4101: "the token lacks a permission (createVoice to clone, listVoice to list) or access "
    "to this workspace",
    4200: "Coze does not know this voice id (or it belongs to another account)",
    4300: "Coze received no audio file, or an empty one",
    4301: "Coze takes one audio file per clone",
    4302: "the audio file is larger than Coze's 10 MB (10,000,000 bytes)",
    4303: "Coze does not support this audio format (wav, mp3, ogg, m4a, aac or pcm)",
    4304: "Coze found the audio file invalid: its bytes do not match its declared format",
    1109: "Coze found the audio does not match `text`; fix the transcript or the take",
    1123: "this voice id has used all 10 clones; `--replace ADDRESS` makes a new voice id",
}


def verdict(http_status: int, code: int | None) -> Verdict:
    """The resend rule for a reply that is not a success (``code`` None: no envelope)."""
    if code in REFUSAL_CODES:
        return Verdict.REFUSED
    if code in THROTTLE_CODES or (http_status == 429 and code is None):
        return Verdict.THROTTLED
    # A 429 whose envelope names another code (4013, 5000, 0) contradicts itself: the
    # code is Coze's own word, and it does not prove a refusal.
    return Verdict.UNKNOWN


def account_record(api_base: str, token: str) -> dict[str, str]:
    """Which account a client speaks for, as an apply's journal keeps it: the API base,
    and a salted hash of base and token (never the token), so that a clone of unknown
    outcome is only ever settled on the account, and through the token, it was sent with."""
    salt = secrets.token_hex(8)
    return {"api_base": api_base, "salt": salt, "key": _account_key(salt, api_base, token)}


def same_account(record: Mapping[str, object], api_base: str, token: str) -> bool:
    salt, key = record.get("salt"), record.get("key")
    if not isinstance(salt, str) or not isinstance(key, str):
        return False
    return hmac.compare_digest(_account_key(salt, api_base, token), key)


def _account_key(salt: str, api_base: str, token: str) -> str:
    return hashlib.sha256(f"{salt}\n{api_base}\n{token}".encode()).hexdigest()[:24]


def canonical(record: Mapping[str, Any]) -> bytes:
    """A journal record as its line holds it (and as its seal covers it)."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False).encode()


class Seal:
    """What proves an apply journal was written with this token: its begin record names
    the account (:func:`account_record`), and every line carries a MAC under a key made
    of the token, the API base and the journal's salt. Without the token nobody makes
    one, and a MAC copied onto another line (or another journal) does not fit it."""

    def __init__(self, api_base: str, token: str) -> None:
        self._base, self._token = api_base, token

    def __repr__(self) -> str:  # never the token
        return f"Seal({self._base!r})"

    def record(self) -> dict[str, str]:
        return account_record(self._base, self._token)

    def vouches(self, account: Mapping[str, object]) -> bool:
        return same_account(account, self._base, self._token)

    def signer(self, account: Mapping[str, object]) -> Callable[[bytes], str]:
        """What seals a line of the journal whose begin record holds ``account``."""
        material = f"journal\n{account.get('salt', '')}\n{self._base}\n{self._token}"
        key = hashlib.sha256(material.encode()).digest()
        return lambda payload: hmac.new(key, payload, "sha256").hexdigest()[:32]

    def sealed(self, account: Mapping[str, object], record: Mapping[str, Any]) -> bool:
        """Whether ``record`` (a journal line, read) carries this token's seal."""
        mac = record.get("mac")
        if not isinstance(mac, str):
            return False
        payload = canonical({k: v for k, v in record.items() if k != "mac"})
        return hmac.compare_digest(mac, self.signer(account)(payload))


LIST_HINTS = {
    4200: "the voice list was not found at this API base: COZE_API_BASE (or api_base in "
    "voicectl.yaml) is the bare host, e.g. https://api.coze.cn, with no path",
}
"""Hints for a reply to a list request, where one about a voice id would mislead."""


def coze_error(
    code: int | None,
    msg: str,
    logid: str,
    http_status: int,
    garbled: bool = False,
    listing: bool = False,
) -> CozeError:
    """The error for a reply that is not a success, judged by the resend rule (a
    ``garbled`` envelope, one whose code is not an integer, proves nothing); ``listing``:
    a reply to a list request, hinted as such."""
    judged = Verdict.UNKNOWN if garbled else verdict(http_status, code)
    hints = {**HINTS, **LIST_HINTS} if listing else HINTS
    hint = hints.get(code) if code is not None else None
    return CozeError(code, msg, logid, http_status, judged, hint)


def read(
    status: int, text: str, logid_header: str, secret: str = "", listing: bool = False
) -> tuple[Any, str]:
    """``data`` and the logid of a success envelope; any other reply raises CozeError.

    ``text`` is the body and ``logid_header`` the ``X-Tt-Logid`` header. A success is
    ``code`` 0 (an integer, as documented) at a 2xx status. A body that is not a JSON
    object with an integer ``code`` is not Coze's envelope: its code is None. What an
    error shows of the reply is one printable line, and neither it nor the logid (kept
    in the journal and the state) ever holds ``secret``: a server or proxy may echo the
    request's Authorization header back.
    """
    try:
        body = jsontext.loads(text) if text else None
    except ValueError:
        body = None
    logid = _logid(logid_header, body, secret)
    raw = body.get("code") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(raw, int) or isinstance(raw, bool):
        garbled = isinstance(body, dict) and "code" in body
        shown = _shown(text, secret) or "(empty body)"
        raise coze_error(None, shown, logid, status, garbled=garbled, listing=listing)
    if raw != 0 or not 200 <= status < 300:
        msg = _shown(str(body.get("msg") or ""), secret)
        raise coze_error(raw, msg, logid, status, listing=listing)
    return body.get("data"), logid


class MalformedPage(ValueError):
    """A list reply that is not a well-formed page of Coze's voice list."""


@dataclass(frozen=True)
class Page:
    voices: list[RemoteVoice]  # the custom voices on it
    ids: tuple[str, ...]  # every entry's voice id, system voices too: tells a repeated page
    has_more: bool


def page(data: Any, secret: str = "") -> Page:
    """A list reply's ``data`` as a page; raises MalformedPage for anything else. A name
    is kept printable and without ``secret``: it reaches the terminal and the state."""
    items = data.get("voice_list") if isinstance(data, dict) else None
    has_more = data.get("has_more") if isinstance(data, dict) else None
    if not isinstance(items, list) or not isinstance(has_more, bool):
        raise MalformedPage("no voice_list or no has_more")
    ids, found = [], []
    for item in items:
        valid = voice_id(item.get("voice_id")) if isinstance(item, dict) else None
        if valid is None or not isinstance(item, dict):
            raise MalformedPage("an entry without a valid voice_id")
        ids.append(valid)
        if item.get("is_system_voice") is not True:
            found.append(_remote(valid, item, secret))
    return Page(found, tuple(ids), has_more)


def _remote(valid_id: str, item: dict[str, Any], secret: str) -> RemoteVoice:
    """A custom voice of the list; the facts reconcile and budgets stand on are required
    (as cozepy requires them): a missing one is not 0, it makes the page unusable."""

    def number(key: str) -> int:
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedPage(f"voice {valid_id}: {key} is not a whole number")
        if value < 0 and key != "available_training_times":
            raise MalformedPage(f"voice {valid_id}: {key} is below zero")
        # Trainings below zero (Coze has been seen to count past the limit) are read as
        # none left: one odd voice anywhere on the account must not stop every command.
        return max(value, 0)

    name = item.get("name")
    if not isinstance(name, str):
        raise MalformedPage(f"voice {valid_id}: name is not a string")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedPage(f"voice {valid_id}: name is not valid Unicode") from None
    name = redact(name, secret)
    if control_character(name) is not None:  # escape sequences would reach the terminal
        # Only what a declared name cannot hold: any other name must compare as it is
        # (a no-break or ideographic space rewritten would never match its declaration,
        # and a lost clone of that name would look never made).
        name = "".join("\N{REPLACEMENT CHARACTER}" if control_character(c) else c for c in name)
    return RemoteVoice(
        voice_id=valid_id,
        name=name,
        available_training_times=number("available_training_times"),
        create_time=number("create_time"),
        update_time=number("update_time"),
        # Only a language voicectl knows is kept: anything else is no fact it can use,
        # and an echo of the request (a token) must not reach the state.
        language=code if (code := item.get("language_code")) in LANGUAGES else "",
        state=str(item.get("state") or ""),
        model_type=kind if (kind := item.get("model_type")) in ("big", "small") else "",
        preview_audio=_link(item.get("preview_audio"), secret),
    )


def _link(value: object, secret: str) -> str:
    """A preview link worth keeping: a printable http(s) URL of sane length that does not
    hold the token (a server that echoes it must not have voicectl fetch it elsewhere)."""
    if not isinstance(value, str) or not 0 < len(value) <= 4096 or not value.isprintable():
        return ""
    plain, previous = value, ""
    while plain != previous:  # percent-encoded, however many times
        plain, previous = unquote(plain), plain
    if not value.startswith(("https://", "http://")) or (secret and secret in plain):
        return ""
    return value


def voice_id(value: object) -> str | None:
    """``value`` if it can be a Coze voice id (a numeric string, as the state keeps it)."""
    if isinstance(value, str) and VOICE_ID.fullmatch(value):
        return value
    return None


def redact(text: str, secret: str) -> str:
    """``text`` with ``secret`` (the token) replaced wherever it appears. A token too
    short to be a real one ("t", in a demo) is replaced only where it stands as a word:
    as a substring it would garble every message, and show where its letters are."""
    if not secret or secret not in text:
        return text
    if len(secret) >= 16:
        return text.replace(secret, "[redacted]")
    alone = rf"(?<![\w.\-]){re.escape(secret)}(?![\w.\-])"
    return re.sub(alone, "[redacted]", text)


def _shown(text: str, secret: str, limit: int = 200) -> str:
    """``text`` as one short printable line: no control characters (a terminal's escape
    sequences), no ``secret``."""
    text = redact(text, secret)
    line = "".join(c if c.isprintable() else " " for c in text[: limit * 4])
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def header_logid(header: str, secret: str) -> str:
    """The ``X-Tt-Logid`` header's logid if it looks like one (a reply of audio)."""
    return _logid(header, None, secret)


def _logid(header: str, body: Any, secret: str) -> str:
    """The reply's logid if it looks like one (Coze's are letters and digits)."""
    detail = body.get("detail") if isinstance(body, dict) else None
    found = header or (str(detail.get("logid", "")) if isinstance(detail, dict) else "")
    if not LOGID.fullmatch(found) or (secret and secret in found):
        return ""
    return found


@dataclass(frozen=True)
class CloneResult:
    """What a clone's reply proves: the voice id made, and Coze's logid."""

    voice_id: str
    logid: str
