"""Speech: a voice heard through Coze's ``POST /v1/audio/speech`` (billed), and the
``preview_audio`` link of Coze's list (a signed CDN link, fetched without the token).

What Coze's docs fix (contract section 5) is checked here before anything is sent:
``input`` at most 1,024 bytes in UTF-8, ``response_format`` mp3, wav, pcm or ogg_opus,
``sample_rate`` one of seven rates, ``speed`` 0.5..2 for a big-model voice and 0.2..3 for
a small one. A speech is paced and resent as a clone is (:mod:`voicectl.coze.client`):
again only when nothing left (no connection made) or Coze refused it for its rate, never
after a reply that proves nothing, since it may have been carried out and billed. The
audio is decoded before it is believed: a reply that is not playable audio of the format
asked is an error, never a file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from voicectl.coze import apibase, replies
from voicectl.coze.pacing import Slot
from voicectl.coze.transport import (
    NOT_SENT,
    Deadline,
    ReplyNotRead,
    bounded_bytes,
    link_client,
    reason,
    retry_after,
    send_within,
    tls_failure,
)
from voicectl.errors import CozeError, TransportError, Verdict
from voicectl.sound.decode import DecodeError, decode

if TYPE_CHECKING:
    from voicectl.coze.client import Wire

SPEECH_PATH = "/v1/audio/speech"
FORMATS = ("mp3", "wav", "pcm", "ogg_opus")
EXTENSIONS = {"mp3": "mp3", "wav": "wav", "pcm": "pcm", "ogg": "ogg_opus", "opus": "ogg_opus"}
SUFFIX = {"mp3": "mp3", "wav": "wav", "pcm": "pcm", "ogg_opus": "ogg"}
SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
DEFAULT_RATE = 24000
MAX_INPUT_BYTES = 1024
SPEEDS = {"big": (0.5, 2.0), "small": (0.2, 3.0)}
ANY_MODEL = (0.5, 2.0)  # what every model type takes
SPEECH_SECONDS = 300.0  # a request, from sending it to the last byte of the audio
PREVIEW_SECONDS = 60.0
# Each format's demuxer (none probes another's), and the codec it must hold.
_DECODER = {"mp3": "mp3", "wav": "wav", "pcm": "pcm", "ogg_opus": "ogg"}
_CODECS = {"mp3": ("mp3",), "wav": ("pcm_",), "pcm": ("pcm",), "ogg_opus": ("opus",)}
# The longest speech Coze can make: 1,024 bytes of text at the slowest speed, at 48 kHz in
# 16-bit wav (about 30 MB); decoded, within the same bound.
MAX_SPEECH_BYTES = 96 * 1024 * 1024
MAX_SPEECH_SAMPLES = 48_000 * 1_000

SPEECH_HINTS = {
    4000: "Coze rejected a parameter of the speech request",
    4101: "the token lacks the createSpeech permission, or access to the voice's workspace",
    4200: "Coze does not know this voice id (or it belongs to another account or workspace)",
}


class Speaker(Protocol):
    """What a speech needs of the Coze client (:class:`voicectl.coze.client.CozeClient`)."""

    @property
    def base_url(self) -> str: ...

    def wire(self) -> Wire: ...


@dataclass(frozen=True)
class SpeechAsk:
    """One speech request, as Coze's JSON body holds it."""

    voice_id: str
    text: str
    fmt: str = "mp3"
    sample_rate: int = DEFAULT_RATE
    speed: float = 1.0

    def body(self) -> dict[str, Any]:
        return {
            "input": self.text,
            "voice_id": self.voice_id,
            "response_format": self.fmt,
            "sample_rate": self.sample_rate,
            "speed": self.speed,
        }

    def key(self) -> str:
        """The request's sha256 (what a cached answer is filed under, with the training)."""
        return hashlib.sha256(replies.canonical(self.body())).hexdigest()


@dataclass(frozen=True)
class Spoken:
    """The audio of one speech, decoded once to be believed."""

    audio: bytes
    logid: str
    duration: float


def problem(ask: SpeechAsk, model_type: str | None) -> str | None:
    """Why Coze would refuse ``ask`` by its docs, before anything is sent; ``model_type``
    None: not known, so only the speeds every model takes are taken."""
    if not ask.text:
        return "the text is empty"
    try:
        size = len(ask.text.encode("utf-8"))
    except UnicodeEncodeError:  # bytes that are not UTF-8, passed through as surrogates
        return "the text holds bytes that are not UTF-8"
    if size > MAX_INPUT_BYTES:
        return (
            f"the text is {size:,} bytes in UTF-8, over Coze's limit of {MAX_INPUT_BYTES:,} "
            f"bytes ({len(ask.text):,} characters; a Chinese character takes 3 bytes)"
        )
    if ask.fmt not in FORMATS:
        return f"the format {ask.fmt!r} is not one Coze speaks ({', '.join(FORMATS)})"
    if ask.sample_rate not in SAMPLE_RATES:
        rates = ", ".join(f"{r:,}" for r in SAMPLE_RATES)
        return f"the sample rate {ask.sample_rate:,} Hz is not one Coze takes ({rates})"
    low, high = SPEEDS.get(model_type or "", ANY_MODEL)
    if not low <= ask.speed <= high:
        kind = f"a {model_type}-model voice" if model_type in SPEEDS else "a voice of unknown model"
        return f"the speed {ask.speed:g} is outside {low:g}..{high:g}, what {kind} takes"
    return None


def synthesize(client: Speaker, ask: SpeechAsk) -> Spoken:
    """One speech; CozeError for Coze's refusal, TransportError when no audio came."""
    wire = client.wire()
    attempt = limited = 0
    waited = False
    while True:
        try:
            with wire.throttle.slot(hold_back=not waited) as slot:
                return _send(wire, ask, slot, limited)
        except NOT_SENT as exc:
            if attempt + 1 >= wire.retry.attempts or tls_failure(exc):
                raise TransportError(f"cannot reach Coze: {reason(exc)}") from None
            wire.retry.sleep(wire.retry.delay(attempt, None))
            attempt, waited = attempt + 1, False
        except httpx.HTTPError as exc:
            raise TransportError(
                f"no answer to the speech request ({reason(exc)}); Coze may have made "
                "(and billed) it, so it was not sent again"
            ) from None
        except CozeError as exc:
            if (
                exc.verdict is not Verdict.THROTTLED
                or limited + 1 >= wire.retry.rate_limit_attempts
            ):
                raise _hinted(exc) from None
            wire.retry.sleep(slot.pause or wire.retry.delay(limited, None))
            limited, waited = limited + 1, True


def _send(wire: Wire, ask: SpeechAsk, slot: Slot, limited: int) -> Spoken:
    request = wire.http.build_request("POST", SPEECH_PATH, json=ask.body(), headers=wire.auth)
    deadline = Deadline.after(SPEECH_SECONDS)
    response = send_within(wire.http, request, deadline)
    logid = replies.header_logid(response.headers.get("x-tt-logid", ""), wire.token)
    kind = response.headers.get("content-type", "")
    body = bounded_bytes(response, deadline, MAX_SPEECH_BYTES)
    if "audio" in kind.lower() and 200 <= response.status_code < 300:
        return Spoken(body, logid, _duration(body, ask, logid))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:  # audio, or worse, under another Content-Type: not shown
        shown = replies.redact(kind, wire.token)[:60]  # redacted first, then cut
        text = f"({len(body):,} bytes that are not text, as {shown!r})"
    try:
        replies.read(response.status_code, text, logid, wire.token)
    except CozeError as exc:
        if exc.verdict is Verdict.THROTTLED:
            slot.pause = wire.retry.rate_delay(limited, retry_after(response))
        raise
    raise TransportError(
        f"Coze answered the speech request without audio (Content-Type "
        f"{replies.redact(kind, wire.token)[:80]!r}, logid {logid or 'none'})"
    )


def _duration(audio: bytes, ask: SpeechAsk, logid: str) -> float:
    """The audio's length, once it is known to be the format asked and to decode."""
    if not _is_format(audio, ask.fmt):
        raise TransportError(
            f"Coze's speech reply is not {ask.fmt} audio, the format asked: it does not "
            f"begin as {ask.fmt} does (logid {logid or 'none'})"
        )
    try:
        fmt = _DECODER[ask.fmt]
        decoded = decode(
            audio, fmt, MAX_SPEECH_SAMPLES, ask.sample_rate, container=None if fmt == "pcm" else fmt
        )
        if not decoded.codec.startswith(_CODECS[ask.fmt]):
            raise DecodeError(f"holds {decoded.codec} audio")
    except DecodeError as exc:
        raise TransportError(
            f"Coze's speech reply is not playable {ask.fmt} audio: it {exc} "
            f"(logid {logid or 'none'})"
        ) from None
    return round(decoded.duration, 3)


def _is_format(audio: bytes, fmt: str) -> bool:
    """Whether ``audio`` begins as ``fmt`` does (FFmpeg would decode an mp3 sent as wav:
    the file written would not be what its name says)."""
    if fmt == "wav":
        return audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    if fmt == "ogg_opus":
        return audio[:4] == b"OggS" and b"OpusHead" in audio[:512]
    if fmt == "mp3":
        # An ID3v2 tag, or an MPEG audio frame: 11 sync bits, then a layer that is not 00.
        sync = len(audio) >= 2 and audio[0] == 0xFF and audio[1] & 0xE0 == 0xE0
        return audio[:3] == b"ID3" or (sync and audio[1] & 0x06 != 0)
    # pcm: samples with no header, an even number of bytes, and no container's magic
    container = audio[:4] in (b"RIFF", b"OggS", b"fLaC") or audio[:3] == b"ID3"
    return len(audio) % 2 == 0 and not container


def _hinted(exc: CozeError) -> CozeError:
    """The same refusal, hinted for a speech request."""
    hint = SPEECH_HINTS.get(exc.code or -1, exc.hint)
    if exc.verdict is Verdict.UNKNOWN:  # a reply that proves nothing: not resent
        unsent = "Coze may have made (and billed) it, so it was not sent again"
        hint = f"{hint}; {unsent}" if hint else unsent
    again = CozeError(exc.code, exc.msg, exc.logid, exc.http_status, exc.verdict, hint)
    return again


def fetch_preview(url: str, api_base: str) -> bytes:
    """The audio behind a voice's ``preview_audio`` link, fetched as a browser would: no
    token (the link's signature is its credential), no redirect, https only (or plain
    http to loopback when the API base is too: the emulator), at most MAX_REPLY_BYTES."""
    problem_ = preview_problem(url, api_base)
    if problem_:
        raise TransportError(f"the voice's preview link {problem_}")
    try:
        with link_client(url.startswith("https://")) as http:
            request = http.build_request("GET", url)
            deadline = Deadline.after(PREVIEW_SECONDS)
            response = send_within(http, request, deadline)
            body = bounded_bytes(response, deadline)
    except (httpx.HTTPError, ReplyNotRead) as exc:
        raise TransportError(f"cannot fetch the voice's preview: {reason(exc)}") from None
    if response.status_code != 200 or not body:
        raise TransportError(f"the voice's preview link answered HTTP {response.status_code}")
    try:
        if not _is_format(body, "mp3") or not decode(body, "mp3", container="mp3").codec.startswith(
            "mp3"
        ):
            raise DecodeError("is not an mp3")
    except DecodeError as exc:
        raise TransportError(f"the voice's preview is not playable mp3 audio: it {exc}") from None
    return body


def preview_problem(url: str, api_base: str) -> str | None:
    """Why a preview link is not fetched, or None."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "is not a URL"
    if parsed.userinfo:
        return "carries credentials"
    if parsed.scheme == "https":
        return None
    base = httpx.URL(api_base)
    if parsed.scheme == "http" and apibase.loopback(parsed.host) and apibase.loopback(base.host):
        return None
    return "is not https (plain http is fetched only from loopback, as the emulator's is)"


REFERENCE_SENTENCES = {
    "zh": "今天的天气很好，我们一起去公园散步，顺便聊聊最近读过的书。",
    "en": "The quick brown fox jumps over the lazy dog, and then it rests in the warm sun.",
    "ja": "今日はとても良い天気なので、公園を散歩しながら最近読んだ本の話をしましょう。",
    "es": "Hoy hace muy buen tiempo, así que vamos a pasear por el parque y hablar de libros.",
    "id": "Hari ini cuacanya sangat cerah, jadi mari berjalan di taman sambil bercerita.",
    "pt": "Hoje o tempo está ótimo, então vamos passear no parque e conversar sobre livros.",
}
"""The one fixed sentence per language a voice speaks before and after a retrain, so
that the two are heard saying the same thing."""
