"""The clone's audio checks: 10 MB (4302), supported types (4303), bytes of that type (4304)."""

from __future__ import annotations

import struct

import cozepy
import httpx
import pytest

from tests.emulator.conftest import make_wav
from voicectl.emulator.preview import chime_mp3
from voicectl.emulator.tones import tone_wav
from voicectl.emulator.voicing import speech

CLONE = "/v1/audio/voices/clone"
MB10 = 10_000_000  # Coze's "10 MB"


def adts(frames: int = 3) -> bytes:
    """ADTS frames (AAC LC, 44.1 kHz, mono, no CRC), each a header and 9 payload bytes."""
    length = 7 + 9
    bits = (0xFFF << 44) | (0b0001 << 40)  # sync; MPEG-4, layer 00, protection absent
    bits |= (1 << 38) | (4 << 34) | (1 << 30)  # LC, 44.1 kHz, one channel
    bits |= (length << 13) | (0x7FF << 2)  # frame length, buffer fullness, one raw block
    return (bits.to_bytes(7, "big") + bytes(9)) * frames


def m4a() -> bytes:
    """An ISO base media file header: ftyp (M4A) and an empty free box."""
    ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"M4A ", 0x200, b"M4A ", b"isom")
    return ftyp + struct.pack(">I4s", 8, b"free")


def id3(payload: bytes) -> bytes:
    """An ID3v2.4 tag of 10 padding bytes before ``payload``."""
    return b"ID3\x04\x00\x00\x00\x00\x00\x0a" + bytes(10) + payload


WAV = make_wav(seconds=0.2)
MP3 = chime_mp3(b"take")
OGG = speech("hi", 200.0, 0, fmt="ogg_opus", rate=48000, speed=1.0)
PCM = bytes(4800)

ACCEPTED = [
    pytest.param("wav", WAV, id="wav"),
    pytest.param("mp3", MP3, id="mp3-frames"),
    pytest.param("mp3", id3(MP3), id="mp3-id3-tagged"),
    pytest.param("mp3", speech("hi", 200.0, 0, fmt="mp3", rate=24000, speed=1.0), id="mp3-lame"),
    pytest.param("ogg", OGG, id="ogg"),
    pytest.param("m4a", m4a(), id="m4a"),
    pytest.param("aac", adts(), id="aac-adts"),
    pytest.param("aac", id3(adts()), id="aac-adts-id3-tagged"),
    pytest.param("aac", b"ADIF" + bytes(32), id="aac-adif"),
    pytest.param("pcm", PCM, id="pcm"),
    pytest.param("pcm", b"\xff\xff" * 100, id="pcm-starting-like-a-frame-sync"),
]

INVALID = [
    pytest.param("mp3", WAV, id="wav-sent-as-mp3"),
    pytest.param("wav", MP3, id="mp3-sent-as-wav"),
    pytest.param("m4a", OGG, id="ogg-sent-as-m4a"),
    pytest.param("aac", m4a(), id="m4a-sent-as-aac"),
    pytest.param("mp3", adts(), id="adts-sent-as-mp3"),
    pytest.param("aac", MP3, id="mp3-sent-as-aac"),
    pytest.param("ogg", id3(MP3), id="tagged-mp3-sent-as-ogg"),
    pytest.param("wav", b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(64), id="riff-but-not-wave"),
    pytest.param("wav", b"hello, this is not audio", id="text-sent-as-wav"),
    pytest.param("pcm", WAV, id="wav-sent-as-pcm"),
    pytest.param("pcm", id3(MP3), id="tagged-mp3-sent-as-pcm"),
    pytest.param("pcm", OGG, id="ogg-sent-as-pcm"),
    pytest.param("pcm", b"fLaC" + bytes(64), id="flac-sent-as-pcm"),
    pytest.param("pcm", bytes(4801), id="pcm-of-odd-length"),
]


def clone(raw: httpx.Client, audio_format: str, audio: bytes) -> dict[str, object]:
    fields = {"voice_name": "take", "audio_format": audio_format}
    return dict(raw.post(CLONE, data=fields, files={"file": ("take", audio)}).json())


def ledger(admin: httpx.Client) -> list[object]:
    return list(admin.get("/_emulator/ledger").json()["clones"])


@pytest.mark.parametrize(("audio_format", "audio"), ACCEPTED)
def test_a_file_of_the_declared_format_is_cloned(
    raw: httpx.Client, audio_format: str, audio: bytes
) -> None:
    assert clone(raw, audio_format, audio)["code"] == 0


@pytest.mark.parametrize(("audio_format", "audio"), INVALID)
def test_bytes_that_are_not_the_declared_format_are_4304_and_commit_nothing(
    raw: httpx.Client, admin: httpx.Client, audio_format: str, audio: bytes
) -> None:
    body = clone(raw, audio_format, audio)
    assert body["code"] == 4304 and "invalid" in str(body["msg"])
    assert ledger(admin) == []


@pytest.mark.parametrize("audio_format", ["flac", "ogg_opus", "WAV", "opus"])
def test_an_audio_format_coze_does_not_take_is_4303_and_commits_nothing(
    coze: cozepy.Coze, admin: httpx.Client, audio_format: str
) -> None:
    with pytest.raises(cozepy.CozeAPIError) as caught:
        coze.audio.voices.clone(voice_name="t", file=WAV, audio_format=audio_format)
    assert caught.value.code == 4303 and "not supported" in caught.value.msg
    assert ledger(admin) == []


def test_cozepy_sees_4304_for_a_mislabelled_take(coze: cozepy.Coze) -> None:
    with pytest.raises(cozepy.CozeAPIError) as caught:
        coze.audio.voices.clone(voice_name="t", file=("take.mp3", WAV), audio_format="mp3")
    assert caught.value.code == 4304


def wav_of(size: int) -> bytes:
    """A valid WAV of exactly ``size`` bytes (its 44-byte header included)."""
    data = tone_wav(rate=24000, frames=(size - 44) // 2, amplitude=0)
    assert len(data) == size
    return data


def test_ten_million_bytes_pass_and_one_more_is_4302_committing_nothing(
    raw: httpx.Client, admin: httpx.Client
) -> None:
    """10 MB is 10,000,000 bytes, not 10 MiB."""
    assert clone(raw, "wav", wav_of(MB10))["code"] == 0
    assert clone(raw, "wav", wav_of(MB10 + 2))["code"] == 4302
    assert clone(raw, "pcm", bytes(10 * 1024 * 1024))["code"] == 4302  # 10 MiB is over
    assert len(ledger(admin)) == 1
