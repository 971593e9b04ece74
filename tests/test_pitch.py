"""The pitch of a recording (voicectl.sound.pitch), what the emulator's voices speak at,
and decoding only a take's head."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from voicectl.emulator.tones import tone_wav
from voicectl.sound.decode import Decoded, decode
from voicectl.sound.encode import encode
from voicectl.sound.pitch import pitch


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("hz", [62.0, 110.0, 261.6, 440.0, 990.0])
def test_a_tone_s_pitch_is_its_frequency(rate: int, hz: float) -> None:
    assert pitch(decode(tone_wav(2, rate, hz), "wav")) == pytest.approx(hz, rel=0.015)


def test_silence_and_noise_have_no_pitch() -> None:
    assert pitch(decode(tone_wav(2, 16000, amplitude=0), "wav")) is None
    noise = np.random.default_rng(7).standard_normal((1, 32000)).astype(np.float32) * 0.3
    assert pitch(Decoded(noise, 16000)) is None
    assert pitch(Decoded(np.zeros((1, 100), np.float32), 16000)) is None  # too short


def test_a_tone_in_noise_and_in_a_lossy_file_keeps_its_pitch() -> None:
    t = np.arange(48000) / 24000
    rng = np.random.default_rng(3)
    voice = (0.4 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32
    )
    assert pitch(Decoded(voice.reshape(1, -1), 24000)) == pytest.approx(180, rel=0.02)
    for fmt in ("mp3", "ogg", "m4a"):
        coded = encode(voice.reshape(1, -1), 24000, fmt)
        assert pitch(decode(coded, fmt)) == pytest.approx(180, rel=0.02), fmt


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng makes the speech")
def test_speech_reads_at_its_speaker_s_pitch(tmp_path: Path) -> None:
    """espeak-ng's male voice speaks lower than its female one (about 100 vs 200 Hz)."""
    heard = {}
    for voice in ("en", "en+f3"):
        out = tmp_path / f"{voice}.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-w", str(out), "A short sentence to measure."],
            check=True,
        )
        heard[voice] = pitch(decode(out, "wav"))
    assert 70 < (heard["en"] or 0) < 140 and 160 < (heard["en+f3"] or 0) < 260


def test_decoding_a_head_reads_only_its_first_samples() -> None:
    take = tone_wav(30, 16000, 200)
    with pytest.raises(ValueError, match="more than 64,000 samples"):
        decode(take, "wav", limit=64_000)
    head = decode(take, "wav", limit=64_000, head=True)
    assert 3.5 <= head.duration <= 4.0
    pcm = bytes(2 * 16000 * 30)
    assert decode(pcm, "pcm", limit=64_000, head=True).duration == pytest.approx(64_000 / 24_000)
