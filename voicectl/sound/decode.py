"""Decoding a take into samples, through FFmpeg (PyAV bundles it in its wheels).

All six formats Coze accepts decode here: wav, mp3, ogg (Vorbis or Opus), m4a and aac
through FFmpeg's demuxers and decoders, and Coze's headerless .pcm (24 kHz, 16-bit,
mono, little-endian) read as what it is, since no demuxer can tell it from noise. The
samples come back as float32 in [-1, 1], one row per channel, at the take's own rate
(never resampled: the figures are of the take as it is).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

PCM_RATE = 24_000  # Coze's pcm: 24 kHz, mono, 16-bit little-endian
MAX_CHANNELS = 8
# Decoded samples kept at most (frames x channels): 5 minutes of mono at 48 kHz, 58 MB as
# float32 (the figures take a few times that). A take is seconds long; a file that decodes
# to more is refused, whatever its header claimed, before it takes the machine's memory.
MAX_SAMPLES = 14_400_000
RATES = (1_000, 384_000)  # a take's sample rate is within these, or it is no take
MAX_FRAMES = 200_000  # FFmpeg's frames of one take: a 1 Hz file comes one sample a frame
SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


class DecodeError(ValueError):
    """A take FFmpeg cannot decode, or one longer or wider than any take."""


@dataclass(frozen=True)
class Decoded:
    samples: npt.NDArray[np.float32]  # shape (channels, frames)
    rate: int
    nonfinite: int = 0  # samples that were NaN or infinite (float WAV), set to 0
    codec: str = ""  # FFmpeg's decoder ("mp3float", "opus", "pcm_s16le"; "pcm" for .pcm)

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / self.rate if self.rate else 0.0


def decode(
    path: Path | bytes,
    fmt: str,
    limit: int = MAX_SAMPLES,
    pcm_rate: int = PCM_RATE,
    *,
    head: bool = False,
    container: str | None = None,
) -> Decoded:
    """The take at ``path`` (or these bytes; of Coze's ``fmt``) as samples; DecodeError
    when it does not decode, or decodes to more than ``limit`` samples (with ``head``:
    only its first ``limit`` or so, the rest unread) or MAX_CHANNELS channels.
    Headerless ``pcm`` is read at ``pcm_rate`` (a take's is Coze's 24 kHz). With
    ``container`` ("wav", "mp3", "ogg"), only that demuxer reads it: FFmpeg would
    otherwise probe, and decode a FLAC behind an ID3 tag as happily as an mp3."""
    if fmt == "pcm":
        raw = path[: limit * 2] if head and isinstance(path, bytes) else path
        return _finite(_pcm(raw, limit, pcm_rate))
    import av

    source = io.BytesIO(path) if isinstance(path, bytes) else str(path)
    try:
        with av.open(source, "r", format=container) as opened:
            chunks, rate = _frames(opened, limit, head)
            codec = str(opened.streams.audio[0].codec_context.name)
    except av.error.FFmpegError as exc:
        raise DecodeError(f"cannot be decoded ({exc.strerror or type(exc).__name__})") from None
    import numpy as np

    if not chunks or not rate:
        raise DecodeError("decodes to no audio")
    return _finite(Decoded(np.concatenate(chunks, axis=1), int(rate), codec=codec))


def _frames(container: Any, limit: int, head: bool = False) -> tuple[list[Any], int]:
    """Every frame of the first audio stream as float32 (channels x frames), and its rate;
    no resampler (FFmpeg's crashes on some layouts): each sample format scaled here."""
    if not container.streams.audio:
        raise DecodeError("holds no audio stream")
    stream = container.streams.audio[0]
    context = stream.codec_context
    if context is None or getattr(context, "codec", None) is None:
        raise DecodeError("is in a codec this FFmpeg cannot decode")
    channels = int(context.channels or 0)
    if not 1 <= channels <= MAX_CHANNELS:
        raise DecodeError(f"has {channels} channels; a take has 1 or 2 (at most {MAX_CHANNELS})")
    rate = int(context.sample_rate or 0)
    if not RATES[0] <= rate <= RATES[1]:
        raise DecodeError(f"is sampled at {rate:,} Hz, which no recording is")
    chunks: list[Any] = []
    total = 0
    for frame in container.decode(stream):
        chunk = _float(frame, channels)
        total += chunk.size
        if head and (total > limit or len(chunks) >= MAX_FRAMES):
            break  # the first seconds are all that was asked for
        if total > limit or len(chunks) >= MAX_FRAMES:
            raise DecodeError(_too_long(limit))
        chunks.append(chunk)
    return chunks, rate


def _float(frame: Any, channels: int) -> Any:
    import numpy as np

    data = frame.to_ndarray()
    name = frame.format.name
    planar = name.endswith("p")
    if planar:
        if data.shape[0] != channels:
            raise DecodeError("changes its number of channels midway")
    else:  # packed: one row of interleaved samples
        if data.size % channels:
            raise DecodeError("changes its number of channels midway")
        data = data.reshape(-1, channels).T
    base = name.rstrip("p")
    if base in ("flt", "dbl"):  # a float past float32's range is far past full scale
        return np.clip(data, -1e6, 1e6).astype(np.float32)
    if base == "u8":
        return ((data.astype(np.float32) - 128.0) / SCALE["u8"]).astype(np.float32)
    if base not in SCALE:
        raise DecodeError(f"decodes to samples of a kind voicectl does not read ({name})")
    return (data / SCALE[base]).astype(np.float32)


def _finite(decoded: Decoded) -> Decoded:
    """NaN and infinite samples (a float WAV may hold them) set to 0, and counted."""
    import numpy as np

    bad = ~np.isfinite(decoded.samples)
    if not bad.any():
        return Decoded(np.ascontiguousarray(decoded.samples), decoded.rate, codec=decoded.codec)
    samples = np.where(bad, np.float32(0), decoded.samples).astype(np.float32)
    return Decoded(samples, decoded.rate, int(bad.sum()), decoded.codec)


def _too_long(limit: int) -> str:
    return f"decodes to more than {limit:,} samples: far longer than a take"


def _pcm(path: Path | bytes, limit: int, rate: int) -> Decoded:
    import numpy as np

    if isinstance(path, bytes):
        raw = path[: limit * 2 + 2]
    else:
        with open(path, "rb") as handle:
            raw = handle.read(limit * 2 + 2)
    if len(raw) > limit * 2:
        raise DecodeError(_too_long(limit))
    pcm = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2")
    return Decoded((pcm.astype(np.float32) / 32768.0).reshape(1, -1), rate, codec="pcm")
