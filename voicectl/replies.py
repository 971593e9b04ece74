"""What a reply from Coze proves, by Coze's documentation (not by what the emulator does).

A clone is billed and has no idempotency key, so the question for every reply that is
not a success is whether it *proves* that nothing was committed. Coze's error table
(``coze-voice-api.md`` section 6) answers it for a few codes only:

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

import enum
import re
from typing import Any

import httpx

from voicectl.errors import VoicectlError

THROTTLE_CODES = frozenset({4009, 4020})
REFUSAL_CODES = frozenset(
    {4000, 4008, 4011, 4019, 4100, 4101, 4300, 4301, 4302, 4303, 4304, 1109, 1123}
)
VOICE_ID = re.compile(r"[0-9]{1,32}")  # as the state schema's voice_id

HINTS = {
    4000: "Coze rejected a parameter",
    4008: "the account's daily limit is reached; apply again tomorrow",
    4009: "Coze is at its request ceiling; apply again later (nothing was cloned)",
    4011: "the Coze token balance is insufficient",
    4013: "Coze's model service failed",
    4019: "the account is in arrears or has no voice slot left: top up, or have an "
    "administrator buy a voice-clone expansion pack (138 CNY a voice) and raise "
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


class Verdict(enum.Enum):
    THROTTLED = "throttled"  # refused for its rate: nothing committed, send again after a wait
    REFUSED = "refused"  # a request error: nothing committed, and sending again cannot help
    UNKNOWN = "unknown"  # may have been committed: look on the account before any resend


def verdict(http_status: int, code: int | None) -> Verdict:
    """The resend rule for a reply that is not a success (``code`` None: no envelope)."""
    if code in REFUSAL_CODES:
        return Verdict.REFUSED
    if code in THROTTLE_CODES or (http_status == 429 and code != 0):
        return Verdict.THROTTLED
    return Verdict.UNKNOWN


class CozeError(VoicectlError):
    """A reply from Coze that is not a success; carries code, msg, logid and the verdict.

    ``code`` is None when the reply was not Coze's envelope at all (then ``msg`` shows
    the start of the body).
    """

    def __init__(self, code: int | None, msg: str, logid: str, http_status: int) -> None:
        self.code, self.msg, self.logid, self.http_status = code, msg, logid, http_status
        self.verdict = verdict(http_status, code)
        if code is None:
            text = f"Coze's reply was not its JSON envelope (HTTP {http_status}): {msg}"
        else:
            text = f"Coze error {code}: {msg or '(no message)'}"
        text += f" (logid {logid or 'none'})"
        hint = HINTS.get(code) if code is not None else None
        super().__init__(f"{text}; {hint}" if hint else text)


def read(response: httpx.Response, secret: str = "") -> tuple[Any, str]:
    """``data`` and the logid of a success envelope; any other reply raises CozeError.

    A success is ``code`` 0 (an integer, as documented) at a 2xx status. A body that is
    not a JSON object with an integer ``code`` is not Coze's envelope: its code is None.
    What an error shows of the reply is one printable line, without ``secret`` (a server
    or proxy may echo the request's Authorization header back).
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    logid = _logid(response, body)
    raw = body.get("code") if isinstance(body, dict) else None
    if not isinstance(raw, int) or isinstance(raw, bool):
        shown = _shown(response.text, secret) or "(empty body)"
        raise CozeError(None, shown, logid, response.status_code)
    if raw != 0 or not 200 <= response.status_code < 300:
        msg = body.get("msg") if isinstance(body, dict) else None
        raise CozeError(raw, _shown(str(msg or ""), secret), logid, response.status_code)
    return body.get("data"), logid


def _shown(text: str, secret: str, limit: int = 200) -> str:
    """``text`` as one short printable line: no control characters (a terminal's escape
    sequences), no ``secret``."""
    if secret:
        text = text.replace(secret, "[redacted]")
    line = "".join(c if c.isprintable() else " " for c in text[: limit * 4])
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def voice_id(value: object) -> str | None:
    """``value`` if it can be a Coze voice id (a numeric string, as the state keeps it)."""
    if isinstance(value, str) and VOICE_ID.fullmatch(value):
        return value
    return None


def _logid(response: httpx.Response, body: Any) -> str:
    header = response.headers.get("x-tt-logid", "")
    detail = body.get("detail") if isinstance(body, dict) else None
    found = header or (str(detail.get("logid", "")) if isinstance(detail, dict) else "")
    return found if re.fullmatch(r"[0-9A-Za-z*_-]{1,80}", found) else ""
