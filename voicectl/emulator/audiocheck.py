"""The checks Coze makes on a clone's audio file: size, declared type, and the bytes.

Documented (contract sections 3, 6.2 and 7): one file of at most 10 MB, taken here as
10,000,000 bytes; ``audio_format`` one of wav, mp3, ogg, m4a, aac, pcm. The codes are
the documented file-upload ones: 4302 too large, 4303 type not supported, 4304 file
invalid (INFERRED to apply to the clone ``file``, as the contract says).

The bytes must be what ``audio_format`` declares, told by magic numbers only (no
decoding):

- wav: ``RIFF`` then ``WAVE`` at offset 8;
- mp3: an ID3v2 tag (whatever follows it, unless that is an ADTS frame) or an MPEG audio
  frame sync (11 bits set, layer bits not 00);
- ogg: ``OggS``;
- m4a: ``ftyp`` at offset 4 (an ISO base media file);
- aac: an ADTS frame sync (12 bits set, layer bits 00), possibly behind an ID3v2 tag,
  or ``ADIF``;
- pcm: raw samples, so no magic: non-empty, an even number of bytes (16-bit samples),
  and not a recognised container (a WAV, Ogg, MP4, ID3-tagged, ADIF or FLAC file sent as
  pcm is invalid). A bare MPEG or ADTS sync is not refused as pcm: samples such as -1
  (``FF FF``) begin with one.
"""

from __future__ import annotations

from voicectl.emulator.store import ApiError

AUDIO_FORMATS = ("wav", "mp3", "ogg", "m4a", "aac", "pcm")
MAX_AUDIO_BYTES = 10_000_000  # "10 MB", as Coze writes it


def check_size(size: int) -> None:
    """4302 for a file over 10 MB."""
    if size > MAX_AUDIO_BYTES:
        raise ApiError(4302, f"The file exceeds the 10 MB limit ({MAX_AUDIO_BYTES} bytes).")


def check_format_name(audio_format: str) -> None:
    """4303 for an ``audio_format`` Coze does not take."""
    if audio_format not in AUDIO_FORMATS:
        raise ApiError(
            4303,
            f"The file type {audio_format!r} is not supported: "
            f"audio_format must be one of {', '.join(AUDIO_FORMATS)}.",
        )


def check_audio(audio: bytes, audio_format: str) -> None:
    """4304 unless the bytes are a file of the declared (supported) ``audio_format``."""
    if audio_format == "pcm":
        container = _container(audio)
        if container is not None:
            raise ApiError(4304, f"The file is invalid: pcm must be raw samples, not {container}.")
        if len(audio) % 2:
            raise ApiError(4304, "The file is invalid: pcm must be 16-bit samples (even size).")
        return
    found = sniff(audio)
    if found != audio_format:
        seen = f"the bytes are {found}" if found else "the bytes are no audio format Coze takes"
        raise ApiError(4304, f"The file is invalid: audio_format is {audio_format} but {seen}.")


def sniff(audio: bytes) -> str | None:
    """The audio_format that the bytes are, by magic number; None if none (or pcm)."""
    container = _container(audio)
    if container == "id3":
        after = _frame_sync(audio[_id3_size(audio) :])
        return "aac" if after == "aac" else "mp3"
    if container == "adif":
        return "aac"
    if container in AUDIO_FORMATS:
        return container
    return _frame_sync(audio) if container is None else None


def _container(audio: bytes) -> str | None:
    """The container or tag the file opens with, if any: no raw sample stream does."""
    if audio[:4] == b"RIFF" and audio[8:12] == b"WAVE":
        return "wav"
    if audio[:4] == b"OggS":
        return "ogg"
    if audio[4:8] == b"ftyp":
        return "m4a"
    if audio[:3] == b"ID3":
        return "id3"
    if audio[:4] == b"ADIF":
        return "adif"
    if audio[:4] == b"fLaC":
        return "flac"
    return None


def _frame_sync(audio: bytes) -> str | None:
    if len(audio) < 2 or audio[0] != 0xFF:
        return None
    if audio[1] & 0xF6 == 0xF0:  # ADTS: 12-bit sync, layer 00
        return "aac"
    if audio[1] & 0xE0 == 0xE0 and audio[1] & 0x06:  # MPEG audio: 11-bit sync, layer I-III
        return "mp3"
    return None


def _id3_size(audio: bytes) -> int:
    """The length of an ID3v2 tag: 10 header bytes, a synchsafe size, maybe a footer."""
    if len(audio) < 10:
        return len(audio)
    size = 0
    for byte in audio[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if audio[5] & 0x10 else 0
    return 10 + size + footer
