"""What a take's bytes are: the format, from its first bytes (never from the file name),
and the duration, sample rate and channels, from mutagen (or, for a plain WAV, from its
header). Coze's limits on a take are here too.
"""

from __future__ import annotations

import math
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from voicectl.declare.hashing import sha256_handle

MAX_BYTES = 10_000_000  # Coze's "10 MB": read as the stricter 10**6, not 2**20
MIN_SECONDS, MAX_SECONDS = 10.0, 30.0
PCM_BYTES_PER_SECOND = 24_000 * 2  # Coze's pcm: 24 kHz, mono, 16-bit
PCM_RULE = "24 kHz, 16-bit, mono, little-endian"  # how raw .pcm bytes are heard
MIN_RATE = 16_000  # below it a take is telephone quality, and the clone sounds like it
OPUS_RATE = 48_000  # Opus always decodes at 48 kHz
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
EXTENSIONS = {
    ".wav": "wav",
    ".mp3": "mp3",
    ".ogg": "ogg",
    ".oga": "ogg",
    ".opus": "ogg",
    ".m4a": "m4a",
    ".mp4": "m4a",
    ".aac": "aac",
    ".pcm": "pcm",
}


class AudioError(Exception):
    """A take that cannot be sent; the message is shown against the declaration."""


def sniff(head: bytes, name: str, after_tag: bytes = b"") -> str | None:
    """Coze's audio_format for a file from its first bytes (``after_tag``: the first bytes
    after an ID3v2 tag), read as Coze's emulator does, so that a take validate accepts
    is not refused as invalid (4304) on upload: a tagged ADTS stream is aac, and a .pcm
    file is pcm even when its first sample looks like a frame sync (-1 is ``FF FF``)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head[:3] == b"ID3":
        return "aac" if _frame_sync(after_tag) == "aac" else "mp3"
    if head[:4] == b"ADIF":
        return "aac"
    if head[:4] == b"fLaC":
        return None
    if name.lower().endswith(".pcm"):
        return "pcm"
    return _frame_sync(head)


def _frame_sync(head: bytes) -> str | None:
    if len(head) < 2 or head[0] != 0xFF:
        return None
    if head[1] & 0xF6 == 0xF0:  # ADTS: 12-bit sync, layer 00
        return "aac"
    if head[1] & 0xE0 == 0xE0 and (head[1] >> 1) & 0x3:  # MPEG audio frame, layer I-III
        return "mp3"
    return None


def id3_end(head: bytes) -> int:
    """Where an ID3v2 tag that ``head`` opens with ends: 10 header bytes, a synchsafe
    size, and a footer when flagged."""
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if len(head) > 5 and head[5] & 0x10 else 0)


def _mutagen_info(handle: BinaryIO, fmt: str) -> Any:
    import mutagen
    from mutagen.aac import AAC
    from mutagen.mp3 import MP3
    from mutagen.mp4 import MP4
    from mutagen.wave import WAVE

    opener = {"wav": WAVE, "mp3": MP3, "m4a": MP4, "aac": AAC}.get(fmt)
    try:
        handle.seek(0)
        info = opener(handle) if opener else mutagen.File(handle)  # type: ignore[no-untyped-call]
    except Exception as exc:  # mutagen raises many types for broken files
        detail = str(exc).strip("\"' ") or f"{type(exc).__name__}, the file is cut short"
        raise AudioError(f"cannot be decoded as {fmt}: {detail}") from exc
    if info is None or getattr(info, "info", None) is None:
        raise AudioError(f"cannot be decoded as {fmt}")
    return info.info


def read_facts(path: Path, size: int) -> dict[str, Any]:
    """Digest, format and duration of a regular file already checked for size.

    The file is opened once, without following a symlink and without blocking, and
    checked again through its descriptor: a file swapped for a FIFO, a device or a
    bigger file since it was stat-ed is refused, not read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            raise AudioError("changed while it was being checked; run again")
        head = handle.read(64)
        if head.startswith(LFS_POINTER):
            raise AudioError(
                "is a Git LFS pointer, not audio: its content was not pulled "
                "(run `git lfs pull`, or fetch LFS objects in CI)"
            )
        after_tag = b""
        if head[:3] == b"ID3" and len(head) >= 10:
            handle.seek(id3_end(head))
            after_tag = handle.read(2)
        fmt = sniff(head, path.name, after_tag)
        if fmt is None:
            raise AudioError("is not audio Coze accepts (wav, mp3, ogg, m4a, aac, or .pcm)")
        if fmt == "pcm":
            if size % 2:
                raise AudioError("pcm data must be 16-bit samples (an even number of bytes)")
            duration = size / PCM_BYTES_PER_SECOND
            rate: int | None = 24_000
            channels: int | None = 1
        else:
            info = _plain_wav(head, size) if fmt == "wav" else None
            info = info or _mutagen_info(handle, fmt)
            duration = float(getattr(info, "length", 0.0) or 0.0)
            rate = getattr(info, "sample_rate", None) or _opus_rate(info, head)
            channels = getattr(info, "channels", None)
            if fmt == "wav":
                _check_wav_complete(size, info)
        if not duration > 0:
            raise AudioError(f"holds no audio (a {fmt} file of duration 0)")
        if not math.isfinite(duration):
            raise AudioError(f"has a header claiming an endless duration (a {fmt} file)")
        handle.seek(0)
        digest = sha256_handle(handle)
    return {
        "sha256": digest,
        "format": fmt,
        "duration": round(duration, 3),
        "sample_rate": rate,
        "channels": channels,
    }


def _opus_rate(info: Any, head: bytes) -> int | None:
    """An Opus take's rate as recorded: OpusHead names the input's rate (Opus itself
    always decodes at 48 kHz, so a narrowband recording is known only from there)."""
    from mutagen.oggopus import OggOpusInfo

    if not isinstance(info, OggOpusInfo):
        return None
    at = head.find(b"OpusHead")
    if at >= 0 and len(head) >= at + 16:
        (recorded,) = struct.unpack_from("<I", head, at + 12)
        if 0 < recorded <= 192_000:
            return int(recorded)
    return OPUS_RATE


@dataclass(frozen=True)
class _WavInfo:
    length: float
    sample_rate: int
    channels: int
    bits_per_sample: int


_CANONICAL_WAV = struct.Struct("<4sI4s4sIHHIIHH4sI")


def _plain_wav(head: bytes, size: int) -> _WavInfo | None:
    """The facts of a canonical WAV (a 16-byte fmt chunk, then the data chunk, which runs
    to the end of the file) read from its 44-byte header, as mutagen would compute them;
    None for any other layout, which mutagen then parses. Ten thousand takes no longer
    pay for mutagen's chunk walk, which costs more than hashing a small take."""
    if len(head) < _CANONICAL_WAV.size:
        return None
    riff, riff_size, wave, fmt, fmt_size, _, channels, rate, _, align, bits, data, data_size = (
        _CANONICAL_WAV.unpack_from(head)
    )
    if (riff, wave, fmt, data) != (b"RIFF", b"WAVE", b"fmt ", b"data") or fmt_size != 16:
        return None
    if riff_size != size - 8 or data_size != size - _CANONICAL_WAV.size:
        return None
    if align <= 0 or rate <= 0:
        return None
    return _WavInfo(data_size / align / rate, rate, channels, bits)


def _check_wav_complete(size: int, info: Any) -> None:
    """A WAV cut short still has a header promising the full length: catch it."""
    bits = getattr(info, "bits_per_sample", 0) or 0
    rate = getattr(info, "sample_rate", 0) or 0
    channels = getattr(info, "channels", 0) or 0
    promised = round(info.length * rate) * channels * (bits // 8)
    if promised and promised > size:
        raise AudioError(
            f"is truncated: its header promises {promised} bytes of samples but the file has {size}"
        )
