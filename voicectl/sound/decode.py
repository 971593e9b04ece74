"""Decoding a take into samples, through FFmpeg (PyAV bundles it in its wheels).

All six formats Coze accepts decode here: wav, mp3, ogg (Vorbis or Opus), m4a and aac
through FFmpeg's demuxers and decoders, and Coze's headerless .pcm (24 kHz, 16-bit,
mono, little-endian) read as what it is, since no demuxer can tell it from noise. The
samples come back as float32 in [-1, 1], one row per channel, at the take's own rate
(never resampled: the figures are of the take as it is).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

PCM_RATE = 24_000  # Coze's pcm: 24 kHz, mono, 16-bit little-endian
MAX_SECONDS = 15 * 60  # a take is at most minutes long; a file that decodes longer is refused


class DecodeError(ValueError):
    """A take FFmpeg cannot decode, or one longer than any take."""


@dataclass(frozen=True)
class Decoded:
    samples: npt.NDArray[np.float32]  # shape (channels, frames)
    rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / self.rate if self.rate else 0.0


def decode(path: Path, fmt: str) -> Decoded:
    """The take at ``path`` (of Coze's ``fmt``) as samples; DecodeError when it does not
    decode."""
    if fmt == "pcm":
        return _pcm(path)
    import av
    import numpy as np

    try:
        with av.open(str(path), "r") as container:
            if not container.streams.audio:
                raise DecodeError("holds no audio stream")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate or stream.rate
            # One layout for every frame: planar float at the take's rate and channels.
            resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=rate)
            chunks = []
            frames = 0
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray()
                    chunks.append(chunk)
                    frames += chunk.shape[1]
                    if frames > MAX_SECONDS * rate:
                        raise DecodeError(f"decodes to more than {MAX_SECONDS // 60} minutes")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except av.error.FFmpegError as exc:
        raise DecodeError(f"cannot be decoded ({exc.strerror or type(exc).__name__})") from None
    if not chunks or not rate:
        raise DecodeError("decodes to no audio")
    samples = np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32)
    return Decoded(samples, int(rate))


def _pcm(path: Path) -> Decoded:
    import numpy as np

    raw = path.read_bytes()
    if len(raw) > MAX_SECONDS * PCM_RATE * 2:
        raise DecodeError(f"decodes to more than {MAX_SECONDS // 60} minutes")
    pcm = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2")
    return Decoded((pcm.astype(np.float32) / 32768.0).reshape(1, -1), PCM_RATE)
