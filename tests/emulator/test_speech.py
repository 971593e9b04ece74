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
