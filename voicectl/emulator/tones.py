"""Real WAV audio made of a tone: the one writer of test takes and of the emulator's clips.

A take for the tests, the fault campaign and the benchmarks, distinct per frequency (so
per sha256), or silence at amplitude 0. Mono or more channels, 16-bit, any rate.
"""

from __future__ import annotations

import io
import math
import sys
import wave
from array import array
from pathlib import Path


def tone_wav(
    seconds: float = 12.0,
    rate: int = 16000,
    freq: float = 440.0,
    *,
    amplitude: int = 8000,
    channels: int = 1,
    frames: int | None = None,
) -> bytes:
    """A 16-bit PCM WAV of ``frames`` (default ``seconds * rate``) samples per channel."""
    count = int(seconds * rate) if frames is None else frames
    step = 2 * math.pi * freq / rate
    if amplitude:
        mono = array("h", (int(amplitude * math.sin(step * i)) for i in range(count)))
    else:
        mono = array("h", bytes(2 * count))
    samples = mono if channels == 1 else array("h", (s for s in mono for _ in range(channels)))
    if sys.byteorder == "big":
        samples.byteswap()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def write_wav(
    path: Path, seconds: float = 12.0, rate: int = 16000, freq: float = 440.0, **kw: int
) -> Path:
    """:func:`tone_wav` written to ``path`` (its directories made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tone_wav(seconds, rate, freq, **kw))
    return path
