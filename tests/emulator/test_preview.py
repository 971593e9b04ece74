"""Each voice's signed preview_audio link serves a real MP3, without a bearer token."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import cozepy
import httpx
import pytest
from mutagen.mp3 import MP3

from tests.conftest import SDK
from voicectl.emulator import running_emulator

DAY = 86400
BITRATES = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)  # MPEG-1 L3
RATES = (44100, 48000, 32000)


def mpeg_frames(audio: bytes) -> int:
    """The number of MPEG-1 Layer III frames, checking each header; the bytes must end
    exactly after the last frame."""
    offset, count = 0, 0
    while offset < len(audio):
        header = int.from_bytes(audio[offset : offset + 4], "big")
        assert header >> 21 == 0x7FF, f"no frame sync at byte {offset}"
        assert (header >> 19) & 3 == 3 and (header >> 17) & 3 == 1  # MPEG-1, Layer III
        bitrate, rate = (header >> 12) & 0xF, (header >> 10) & 3
        assert 0 < bitrate < 15 and rate < 3
        offset += 144 * BITRATES[bitrate] * 1000 // RATES[rate] + ((header >> 9) & 1)
        count += 1
    assert offset == len(audio)
    return count


class Clock:
    """A settable clock for the emulator (Unix seconds)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def served(data_dir: Path, clock: Clock, sdk_at: SDK) -> Iterator[tuple[str, cozepy.Coze]]:
    """A fresh emulator on a settable clock, and cozepy on it."""
    with running_emulator(data_dir, full_clone_reply=True, clock=clock) as url:
        yield url, sdk_at(url)


def clone(coze: cozepy.Coze, wav: bytes, **fields: object) -> cozepy.Voice:
    fields.setdefault("voice_name", "v")
    return coze.audio.voices.clone(file=wav, audio_format="wav", **fields)


def with_query(link: str, **changes: str) -> str:
    parts = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


def test_a_preview_link_serves_decodable_mp3_without_a_token(coze: cozepy.Coze, wav: bytes) -> None:
    voice = clone(coze, wav)
    reply = httpx.get(voice.preview_audio)  # no Authorization header
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "audio/mpeg"
    assert reply.content[:2] == b"\xff\xfb"  # starts with an MPEG-1 Layer III frame
    assert mpeg_frames(reply.content) > 40
    assert 1.0 < MP3(io.BytesIO(reply.content)).info.length < 2.0


def test_the_links_in_the_list_serve_previews_for_system_voices_too(coze: cozepy.Coze) -> None:
    for voice in coze.audio.voices.list():
        assert mpeg_frames(httpx.get(voice.preview_audio).content) > 0


def test_each_voice_and_each_training_has_its_own_preview(
    served: tuple[str, cozepy.Coze], wav: bytes
) -> None:
    _, coze = served
    first, second = clone(coze, wav, voice_name="a"), clone(coze, wav, voice_name="b")
    clips = [httpx.get(v.preview_audio).content for v in (first, second)]
    assert httpx.get(first.preview_audio).content == clips[0]  # stable for the same training
    retrained = clone(coze, wav, voice_id=first.voice_id)  # the same second: a frozen clock
    clips.append(httpx.get(retrained.preview_audio).content)
    assert len(set(clips)) == 3


@pytest.mark.parametrize(
    "tamper",
    [
        {"x-signature": "0" * 32},
        {"x-signature": ""},
        {"x-expires": "9999999999"},  # a later expiry, signed for another
        {"x-expires": "soon"},
    ],
)
def test_a_tampered_preview_link_is_403(
    coze: cozepy.Coze, wav: bytes, tamper: dict[str, str]
) -> None:
    voice = clone(coze, wav)
    reply = httpx.get(with_query(voice.preview_audio, **tamper))
    assert (reply.status_code, reply.json()["code"]) == (403, 4101)


def test_a_preview_link_without_its_query_is_403(coze: cozepy.Coze, wav: bytes) -> None:
    link = clone(coze, wav).preview_audio.split("?")[0]
    assert httpx.get(link).status_code == 403


def test_a_preview_link_expires_after_30_days(
    served: tuple[str, cozepy.Coze], clock: Clock, wav: bytes
) -> None:
    _, coze = served
    link = clone(coze, wav).preview_audio
    expires = int(parse_qs(urlsplit(link).query)["x-expires"][0])
    assert expires >= clock.now + 29 * DAY
    clock.now = expires
    assert httpx.get(link).status_code == 200
    clock.now = expires + 1
    reply = httpx.get(link)
    assert (reply.status_code, reply.json()["code"]) == (403, 4101)
    assert "expired" in reply.json()["msg"]
    [listed] = coze.audio.voices.list(filter_system_voice=True)
    assert httpx.get(listed.preview_audio).status_code == 200  # the list signs a fresh link


def test_the_preview_link_of_a_voice_that_no_longer_exists_is_404(
    coze: cozepy.Coze, wav: bytes, admin: httpx.Client
) -> None:
    link = clone(coze, wav).preview_audio
    admin.post("/_emulator/reset").raise_for_status()
    reply = httpx.get(link)
    assert (reply.status_code, reply.json()["code"]) == (404, 4200)
