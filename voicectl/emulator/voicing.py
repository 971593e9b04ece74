"""The emulator's speech: real, deterministic audio that depends on the voice and the text.

A voice keeps two facts of the take it was last trained on (:func:`take_voice`): its
pitch, measured (:mod:`voicectl.sound.pitch`), and a timbre picked by the take's sha256.
Speech (:func:`speech`) is a note per character of the text, at the voice's pitch moved by
a step the character picks, with the timbre's overtones; a space or a punctuation mark is
a rest. So the same voice and text always give the same bytes, a voice cloned from a low
take speaks low, and a retrain on another take changes how the voice sounds.

The audio is encoded through FFmpeg (PyAV, as the review decodes it) at the requested
rate: wav (16-bit PCM), pcm (16-bit little-endian, mono, no header), mp3 (LAME) and
ogg_opus (libopus, at the lowest rate Opus takes that is not below the request's; Opus
codes 8, 12, 16, 24 and 48 kHz only, and its decoders play everything at 48 kHz).
"""

from __future__ import annotations

import hashlib
import unicodedata
from typing import TYPE_CHECKING, NamedTuple

from voicectl.sound.decode import DecodeError, decode
from voicectl.sound.encode import OPUS_RATES, encode
from voicectl.sound.pitch import pitch

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

HEAD_SAMPLES = 12_000  # of a take (0.75 s at 16 kHz), whose pitch the voice takes
NOTE_SECONDS = 0.11  # a character, at speed 1
LONGEST_SECONDS = 60.0  # a long text's notes are shortened to fit
FADE_SECONDS = 0.01
STEPS = (0, 2, 4, 7, 9, 12, -3, -5)  # semitones from the voice's pitch: a pentatonic
DEFAULT_PITCH = (90.0, 260.0)  # a take with no measurable pitch gets one in this range
PEAK = 0.5  # of full scale, at loudness_rate 0
_ENCODER = {"wav": "wav", "mp3": "mp3", "ogg_opus": "ogg", "pcm": "pcm"}


class Take(NamedTuple):
    """What a clone keeps of its audio: its sha256 (the ledger's), and what the voice's
    speech is made from."""

    sha256: str
    pitch_hz: float
    timbre: int


def take_voice(audio: bytes, audio_format: str) -> Take:
    """A take's sha256, pitch in Hz and timbre: the pitch of its first seconds as
    measured, or, if it has none (silence, noise, undecodable), one its sha256 picks; the
    timbre, 0..255, always picked by the sha256."""
    digest = hashlib.sha256(audio).digest()
    low, high = DEFAULT_PITCH
    fallback = round(low + (high - low) * digest[0] / 255, 1)
    try:
        # The first seconds (decoding a whole 10 MB take would slow every clone).
        measured = pitch(decode(audio, audio_format, limit=HEAD_SAMPLES, head=True))
    except DecodeError:
        measured = None
    return Take(digest.hex(), measured or fallback, digest[1])


def speech(
    text: str, hz: float, timbre: int, *, fmt: str, rate: int, speed: float, loudness: int = 0
) -> bytes:
    """``text`` spoken by a voice of pitch ``hz`` and ``timbre``, as ``fmt`` audio."""
    if fmt == "ogg_opus":
        rate = next(r for r in OPUS_RATES if r >= rate)
    samples = _notes(text, hz, timbre, rate, speed, PEAK * (1 + loudness / 100))
    return encode(samples.reshape(1, -1), rate, _ENCODER[fmt])


def _notes(
    text: str, hz: float, timbre: int, rate: int, speed: float, peak: float
) -> npt.NDArray[np.float32]:
    import numpy as np

    characters = list(text) or [" "]
    seconds = min(NOTE_SECONDS / speed, LONGEST_SECONDS / len(characters))
    size = max(1, int(seconds * rate))
    fade = min(size // 2, int(FADE_SECONDS * rate))
    envelope = np.ones(size)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        envelope[:fade], envelope[-fade:] = ramp, ramp[::-1]
    # The timbre: the weights of the second and third harmonics.
    overtones = (1.0, 0.2 + 0.5 * (timbre & 15) / 15, 0.1 + 0.3 * (timbre >> 4) / 15)
    t = np.arange(size) / rate
    out = np.zeros(len(characters) * size)
    for n, character in enumerate(characters):
        if _rest(character):
            continue
        step = STEPS[ord(character) * 7 % len(STEPS)]  # the text alone picks the tune
        f = hz * 2 ** (step / 12)
        wave = sum(w * np.sin(2 * np.pi * f * k * t) for k, w in enumerate(overtones, 1))
        out[n * size : (n + 1) * size] = wave * envelope
    scale = peak / sum(overtones)
    return (out * scale).astype(np.float32)


def _rest(character: str) -> bool:
    """A space, a control or a punctuation mark: no note."""
    return character.isspace() or unicodedata.category(character)[0] in "PZC"
