"""Take facts: the sample rate and channels are read for every format Coze accepts."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from mutagen.ogg import OggPage

from voicectl.declare.formats import read_facts
from voicectl.declare.hashing import TakeCache

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "audio"


def _facts(path: Path) -> dict[str, object]:
    return read_facts(path, path.stat().st_size)


@pytest.mark.parametrize("name", ["narrator.wav", "guide.mp3", "host.ogg"])
def test_the_bundled_takes_are_read_as_16_khz_mono(name: str) -> None:
    facts = _facts(EXAMPLES / name)
    assert (facts["sample_rate"], facts["channels"]) == (16000, 1)


def _ogg_page(packets: list[bytes], sequence: int, granule: int, **flags: bool) -> bytes:
    page = OggPage()
    page.serial, page.sequence, page.position, page.packets = 7, sequence, granule, packets
    page.first, page.last = flags.get("first", False), flags.get("last", False)
    return page.write()


@pytest.mark.parametrize(("recorded", "read"), [(8000, 8000), (16000, 16000), (0, 48000)])
def test_an_opus_take_is_read_at_the_rate_it_was_recorded_at(
    tmp_path: Path, recorded: int, read: int
) -> None:
    # Opus always decodes at 48 kHz; OpusHead names the input's rate, so a narrowband
    # recording is known (and warned about); a header naming none reads as 48 kHz.
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 312, recorded, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 3) + b"abc" + struct.pack("<I", 0)
    path = tmp_path / "take.opus"
    path.write_bytes(
        _ogg_page([head], 0, 0, first=True)
        + _ogg_page([tags], 1, 0)
        + _ogg_page([b"\xfc" + bytes(40)], 2, 312 + 48000 * 12, last=True)
    )
    facts = _facts(path)
    assert facts["format"] == "ogg" and facts["duration"] == 12.0
    assert (facts["sample_rate"], facts["channels"]) == (read, 2)


def _adts_frame(rate_index: int, channels: int, payload: bytes = bytes(20)) -> bytes:
    size = 7 + len(payload)
    return (
        bytes(
            [
                0xFF,
                0xF1,  # sync, MPEG-4, no CRC
                (1 << 6) | (rate_index << 2) | (channels >> 2),
                ((channels & 3) << 6) | ((size >> 11) & 3),
                (size >> 3) & 0xFF,
                ((size & 7) << 5) | 0x1F,
                0xFC,
            ]
        )
        + payload
    )


def test_an_aac_take_has_its_rate_and_channels_read(tmp_path: Path) -> None:
    path = tmp_path / "take.aac"
    path.write_bytes(_adts_frame(rate_index=8, channels=2) * (16000 * 12 // 1024))  # 16 kHz
    facts = _facts(path)
    assert facts["format"] == "aac" and 11.5 < facts["duration"] < 12.5  # type: ignore[operator]
    assert (facts["sample_rate"], facts["channels"]) == (16000, 2)


def test_a_pcm_take_is_read_by_cozes_rule(tmp_path: Path) -> None:
    path = tmp_path / "take.pcm"
    path.write_bytes(bytes(48_000 * 12))
    facts = _facts(path)
    assert (facts["format"], facts["duration"]) == ("pcm", 12.0)
    assert (facts["sample_rate"], facts["channels"]) == (24000, 1)


@pytest.mark.parametrize("duration", [float("inf"), float("nan"), -1.0, True])
def test_a_cached_take_of_an_impossible_duration_is_read_again(
    tmp_path: Path, duration: object
) -> None:
    """The cache is a hint: a duration no take has (endless, NaN, negative) is not used,
    so that it cannot reach a state (whose reads refuse NaN and the infinities)."""
    take = tmp_path / "a.wav"
    take.write_bytes(b"RIFF")
    st = take.stat()
    cache = TakeCache(None)
    facts = {"sha256": "0" * 64, "format": "wav", "duration": 2.5}
    cache.put("a.wav", st, facts)
    assert cache.get("a.wav", st) == facts
    cache.put("a.wav", st, {**facts, "duration": duration})
    assert cache.get("a.wav", st) is None
