"""The speech endpoint: raw audio on success, the JSON envelope on failure."""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from pathlib import Path

import cozepy
import httpx
import pytest
from mutagen.mp3 import MP3
from mutagen.oggopus import OggOpus

from tests.emulator.conftest import LIST_ONLY
from voicectl.emulator.tones import tone_wav
from voicectl.emulator.voicing import NOTE_SECONDS
from voicectl.sound.decode import decode
from voicectl.sound.pitch import pitch


def system_voice_id(coze: cozepy.Coze) -> str:
    return next(v.voice_id for v in coze.audio.voices.list() if v.is_system_voice)


def test_cozepy_gets_mp3_audio_for_a_cloned_voice(
    coze: cozepy.Coze, wav: bytes, tmp_path: Path
) -> None:
    voice = coze.audio.voices.clone(voice_name="v", file=wav, audio_format="wav")
    audio = coze.audio.speech.create(input="你好", voice_id=voice.voice_id)
    audio.write_to_file(str(tmp_path / "out.mp3"))
    assert MP3(tmp_path / "out.mp3").info.length > 0
    assert len(audio.response.logid) == 34


@pytest.mark.parametrize("fmt", ["wav", "pcm", "ogg_opus"])
def test_each_response_format_is_valid_audio_with_an_audio_content_type(
    raw: httpx.Client, coze: cozepy.Coze, fmt: str
) -> None:
    reply = raw.post(
        "/v1/audio/speech",
        json={
            "input": "hi",
            "voice_id": system_voice_id(coze),
            "response_format": fmt,
            "sample_rate": 16000,
        },
    )
    assert reply.headers["content-type"].startswith("audio/")
    if fmt == "wav":
        with wave.open(io.BytesIO(reply.content)) as clip:
            assert clip.getframerate() == 16000
    elif fmt == "ogg_opus":
        assert OggOpus(io.BytesIO(reply.content)).info.length > 0
    else:
        assert reply.content and len(reply.content) % 2 == 0


def test_unknown_voice_is_4200(coze: cozepy.Coze) -> None:
    with pytest.raises(cozepy.CozeAPIError) as caught:
        coze.audio.speech.create(input="hi", voice_id="7400000000000000009")
    assert caught.value.code == 4200


def test_input_over_1024_bytes_is_4000(coze: cozepy.Coze) -> None:
    with pytest.raises(cozepy.CozeAPIError) as caught:
        coze.audio.speech.create(input="字" * 342, voice_id=system_voice_id(coze))
    assert caught.value.code == 4000


def test_speed_outside_the_model_range_is_4000(coze: cozepy.Coze) -> None:
    with pytest.raises(cozepy.CozeAPIError) as caught:
        coze.audio.speech.create(input="hi", voice_id=system_voice_id(coze), speed=3.5)
    assert caught.value.code == 4000


def test_speech_needs_the_create_speech_scope(
    coze_as: Callable[[str], cozepy.Coze], coze: cozepy.Coze
) -> None:
    with pytest.raises(cozepy.CozeAPIError) as caught:
        coze_as(LIST_ONLY).audio.speech.create(input="hi", voice_id=system_voice_id(coze))
    assert caught.value.code == 4101


def speak_raw(
    raw: httpx.Client, voice_id: str, text: str = "Hello there", **extra: object
) -> bytes:
    reply = raw.post("/v1/audio/speech", json={"input": text, "voice_id": voice_id, **extra})
    assert reply.status_code == 200, reply.text
    return reply.content


def test_speech_carries_the_take_s_pitch_and_is_deterministic(
    raw: httpx.Client, coze: cozepy.Coze
) -> None:
    """A voice cloned from a low take speaks low: the take's pitch on the text's tune."""
    low = coze.audio.voices.clone(
        voice_name="low", file=tone_wav(3, 16000, 150), audio_format="wav"
    )
    high = coze.audio.voices.clone(
        voice_name="high", file=tone_wav(3, 16000, 300), audio_format="wav"
    )
    said = {
        v.voice_id: speak_raw(raw, v.voice_id, response_format="wav", sample_rate=24000)
        for v in (low, high)
    }
    heard = {k: pitch(decode(v, "wav")) for k, v in said.items()}
    ratio = heard[high.voice_id] / heard[low.voice_id]
    assert ratio == pytest.approx(2.0, rel=0.03)
    assert speak_raw(raw, low.voice_id, response_format="wav") == speak_raw(
        raw, low.voice_id, response_format="wav"
    )
    assert speak_raw(raw, low.voice_id, "Hello there!") != speak_raw(raw, low.voice_id, "Goodbye")


def test_a_retrain_on_another_take_changes_the_speech(raw: httpx.Client, coze: cozepy.Coze) -> None:
    voice = coze.audio.voices.clone(
        voice_name="v", file=tone_wav(3, 16000, 150), audio_format="wav"
    )
    before = speak_raw(raw, voice.voice_id, response_format="wav")
    coze.audio.voices.clone(
        voice_name="v", file=tone_wav(3, 16000, 220), audio_format="wav", voice_id=voice.voice_id
    )
    after = speak_raw(raw, voice.voice_id, response_format="wav")
    assert pitch(decode(after, "wav")) / pitch(decode(before, "wav")) == pytest.approx(
        220 / 150, rel=0.03
    )


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("fmt", ["wav", "pcm", "mp3", "ogg_opus"])
def test_every_format_decodes_at_the_rate_asked(
    raw: httpx.Client, coze: cozepy.Coze, fmt: str, rate: int
) -> None:
    """The audio is the format asked, decodable, about as long as the text's notes; Opus
    is coded at the lowest rate it takes that is not below the request's, and decoders
    play it at 48 kHz."""
    text = "Hello, world"
    audio = speak_raw(raw, system_voice_id(coze), text, response_format=fmt, sample_rate=rate)
    decoded = decode(audio, "ogg" if fmt == "ogg_opus" else fmt, pcm_rate=rate)
    assert decoded.rate == (48000 if fmt == "ogg_opus" else rate)
    assert decoded.duration == pytest.approx(len(text) * NOTE_SECONDS, abs=0.08)
    assert float(abs(decoded.samples).max()) > 0.1  # sound, not silence
    magic = {"wav": b"RIFF", "mp3": b"ID3", "ogg_opus": b"OggS"}
    assert fmt == "pcm" or audio.startswith(magic[fmt])


def test_cozepy_reads_each_format_by_its_content_type(coze: cozepy.Coze, tmp_path: Path) -> None:
    for fmt, media in (("wav", "audio/wav"), ("ogg_opus", "audio/ogg"), ("pcm", "audio/pcm")):
        audio = coze.audio.speech.create(
            input="hi", voice_id=system_voice_id(coze), response_format=fmt, sample_rate=16000
        )
        assert audio.response._raw_response.headers["content-type"] == media
        audio.write_to_file(str(tmp_path / f"out.{fmt}"))
        assert (tmp_path / f"out.{fmt}").stat().st_size > 1000


def test_speed_shortens_the_speech_and_its_range_is_the_model_s(
    raw: httpx.Client, coze: cozepy.Coze
) -> None:
    """A small-model voice takes 0.2..3, a big one 0.5..2 (the docs' ranges)."""
    small = next(
        v for v in coze.audio.voices.list() if v.is_system_voice and v.model_type == "small"
    )
    fast = speak_raw(raw, small.voice_id, response_format="pcm", speed=2.5)
    slow = speak_raw(raw, small.voice_id, response_format="pcm", speed=0.25)
    assert len(slow) == pytest.approx(10 * len(fast), rel=0.02)
    big = coze.audio.voices.clone(voice_name="b", file=tone_wav(3, 16000, 150), audio_format="wav")
    for speed in (0.25, 2.5):
        with pytest.raises(cozepy.CozeAPIError) as caught:
            coze.audio.speech.create(input="hi", voice_id=big.voice_id, speed=speed)
        assert caught.value.code == 4000


@pytest.mark.parametrize(
    "extra",
    [
        {"sample_rate": 24000.0},
        {"sample_rate": True},
        {"sample_rate": 11025},
        {"response_format": "flac"},
        {"loudness_rate": 101},
        {"loudness_rate": 1.5},
        {"emotion_scale": 0},
        {"emotion": "happy"},
        {"speed": True},
        {"speed": "1"},
        {"voice_id": 7},
        {"input": ""},
        {"input": ["hi"]},
    ],
)
def test_every_documented_limit_is_a_4000(
    raw: httpx.Client, coze: cozepy.Coze, extra: dict[str, object]
) -> None:
    body = {"input": "hi", "voice_id": system_voice_id(coze), **extra}
    reply = raw.post("/v1/audio/speech", json=body)
    assert reply.json()["code"] == 4000
    assert reply.headers["x-tt-logid"] == reply.json()["detail"]["logid"]


def test_the_byte_limit_counts_utf8_bytes_not_characters(
    raw: httpx.Client, coze: cozepy.Coze
) -> None:
    voice = system_voice_id(coze)
    assert speak_raw(raw, voice, "字" * 341, response_format="pcm")  # 1,023 bytes
    reply = raw.post("/v1/audio/speech", json={"input": "字" * 341 + "ab", "voice_id": voice})
    assert reply.json()["code"] == 4000


def test_an_input_that_is_not_valid_unicode_is_a_4000(raw: httpx.Client, coze: cozepy.Coze) -> None:
    """A lone surrogate (valid JSON, no valid text): refused, never a 5xx (which a client
    must read as "maybe billed")."""
    body = '{"input": "a\\ud800b", "voice_id": "' + system_voice_id(coze) + '"}'
    reply = raw.post("/v1/audio/speech", content=body, headers={"content-type": "application/json"})
    assert reply.json()["code"] == 4000
