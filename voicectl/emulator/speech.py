"""The speech endpoint: its request checks, as Coze's docs state them, and its audio.

``POST /v1/audio/speech`` takes JSON (contract section 5) and answers raw audio bytes
with an ``audio/*`` Content-Type, which is how cozepy tells audio from an error. Checked
in this order (the order and the codes are INFERRED, the limits documented), each a 4000
unless said: the body a JSON object; ``input`` a non-empty string of at most 1,024 bytes
in UTF-8; ``voice_id`` a non-empty string; ``response_format`` one of mp3 (the default),
wav, pcm, ogg_opus; ``sample_rate`` one of the seven rates (24 kHz the default), a whole
number; ``loudness_rate`` a whole number in -50..100 and ``emotion_scale`` a number in
1..5, when given; then the voice: unknown 4200, not trained yet 4000, ``emotion`` given
for a voice without emotions 4000, ``speed`` outside 0.5..2 for a big model or 0.2..3
for a small one. The token's ``createSpeech`` scope and the voice's space are the app's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from voicectl.emulator.store import MAX_TEXT_BYTES, ApiError, Voice
from voicectl.emulator.voicing import DEFAULT_PITCH, speech

SPEECH_FORMATS = ("mp3", "wav", "pcm", "ogg_opus")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
MEDIA_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm", "ogg_opus": "audio/ogg"}
SPEEDS = {"big": (0.5, 2.0), "small": (0.2, 3.0)}


@dataclass(frozen=True)
class SpeechAsk:
    """A checked speech request."""

    voice: Voice
    text: str
    fmt: str
    rate: int
    speed: float
    loudness: int


def check_speech(body: object, get_voice: Callable[[str], Voice | None]) -> SpeechAsk:
    """A speech request's voice and parameters; else ApiError 4000 or 4200."""
    if not isinstance(body, dict):
        raise ApiError(4000, "The request body must be a JSON object.")
    text, voice_id = body.get("input"), body.get("voice_id")
    fmt, rate = body.get("response_format", "mp3"), body.get("sample_rate", 24000)
    if not isinstance(text, str) or not text or len(text.encode(errors="replace")) > MAX_TEXT_BYTES:
        raise ApiError(4000, f"input is required, at most {MAX_TEXT_BYTES} bytes in UTF-8.")
    if not text.isprintable() and any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise ApiError(4000, "input is not valid Unicode (a lone surrogate).")
    if not isinstance(voice_id, str) or not voice_id:
        raise ApiError(4000, "voice_id is required.")
    if fmt not in SPEECH_FORMATS:
        raise ApiError(4000, f"response_format must be one of {', '.join(SPEECH_FORMATS)}.")
    if not _whole(rate) or rate not in SAMPLE_RATES:
        raise ApiError(4000, f"sample_rate must be one of {SAMPLE_RATES}.")
    loudness = body.get("loudness_rate", 0)
    if not _whole(loudness) or not -50 <= loudness <= 100:
        raise ApiError(4000, "loudness_rate must be a whole number in -50..100.")
    scale = body.get("emotion_scale", 4)
    if not _number(scale) or not 1 <= scale <= 5:
        raise ApiError(4000, "emotion_scale must be a number in 1..5.")
    voice = get_voice(voice_id)
    if voice is None:
        raise ApiError(4200, f"The voice {voice_id} does not exist.")
    if voice.state != "cloned":
        raise ApiError(4000, f"The voice {voice_id} has not been trained yet.")
    if body.get("emotion") is not None:
        raise ApiError(4000, f"The voice {voice_id} has no emotions to choose from.")
    speed = body.get("speed", 1)
    low, high = SPEEDS.get(voice.model_type, SPEEDS["big"])
    if not _number(speed) or not low <= speed <= high:
        raise ApiError(4000, f"speed must be {low}..{high} for a {voice.model_type} voice.")
    return SpeechAsk(voice, text, fmt, rate, float(speed), loudness)


def spoken(ask: SpeechAsk) -> bytes:
    """The audio of a checked request (see :mod:`voicectl.emulator.voicing`)."""
    voice = ask.voice
    hz = voice.pitch_hz
    if not hz:  # a system voice, or one kept before voices had a pitch: its id picks one
        low, high = DEFAULT_PITCH
        hz = low + (high - low) * hashlib.sha256(voice.voice_id.encode()).digest()[0] / 255
    return speech(
        ask.text, hz, voice.timbre, fmt=ask.fmt, rate=ask.rate, speed=ask.speed,
        loudness=ask.loudness,
    )  # fmt: skip


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
