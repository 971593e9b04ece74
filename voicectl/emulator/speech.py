"""The speech endpoint's request checks, and the silent audio it answers with.

``POST /v1/audio/speech`` takes JSON (contract section 5) and answers raw audio bytes
with an ``audio/*`` Content-Type, which is how cozepy tells audio from an error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from voicectl.emulator.store import MAX_TEXT_BYTES, ApiError, Voice
from voicectl.emulator.tones import tone_wav

SPEECH_FORMATS = ("mp3", "wav", "pcm", "ogg_opus")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
MEDIA_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm", "ogg_opus": "audio/ogg"}


def check_speech(body: object, get_voice: Callable[[str], Voice | None]) -> tuple[Voice, str, int]:
    """A speech request's voice, response_format and sample_rate; else 4000 or 4200."""
    if not isinstance(body, dict):
        raise ApiError(4000, "The request body must be a JSON object.")
    text, voice_id = body.get("input"), body.get("voice_id")
    fmt, rate = body.get("response_format", "mp3"), body.get("sample_rate", 24000)
    if not isinstance(text, str) or not text or len(text.encode()) > MAX_TEXT_BYTES:
        raise ApiError(4000, f"input is required, at most {MAX_TEXT_BYTES} bytes in UTF-8.")
    if fmt not in SPEECH_FORMATS:
        raise ApiError(4000, f"response_format must be one of {', '.join(SPEECH_FORMATS)}.")
    if rate not in SAMPLE_RATES:
        raise ApiError(4000, f"sample_rate must be one of {SAMPLE_RATES}.")
    voice = get_voice(voice_id) if isinstance(voice_id, str) and voice_id else None
    if voice is None:
        raise ApiError(4200, f"The voice {voice_id} does not exist.")
    if voice.state != "cloned":
        raise ApiError(4000, f"The voice {voice_id} has not been trained yet.")
    speed = body.get("speed", 1)
    low, high = (0.5, 2.0) if voice.model_type == "big" else (0.2, 3.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not low <= speed <= high:
        raise ApiError(4000, f"speed must be {low}..{high} for a {voice.model_type} voice.")
    return voice, fmt, rate


def silence(fmt: str, sample_rate: int, seconds: float = 0.2) -> bytes:
    """A short silent clip in a speech ``response_format``: tiny, but valid audio."""
    frames = int(sample_rate * seconds)
    if fmt == "pcm":  # 16-bit little-endian mono, no header
        return bytes(2 * frames)
    if fmt == "wav":
        return tone_wav(rate=sample_rate, frames=frames, amplitude=0)
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
