"""Encoding samples into the formats Coze accepts, through FFmpeg (PyAV): what the tests
make their takes with, and the emulator its speech."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Coze's format name: (container, codec, sample format the encoder takes)
CODECS = {
    "wav": ("wav", "pcm_s16le", "s16"),
    "mp3": ("mp3", "libmp3lame", "s16p"),
    "ogg": ("ogg", "libopus", "s16"),
    "m4a": ("mp4", "aac", "fltp"),
    "aac": ("adts", "aac", "fltp"),
}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def encode(samples: npt.NDArray[np.float32], rate: int, fmt: str) -> bytes:
    """``samples`` (channels x frames, float in [-1, 1]) at ``rate`` as a file of Coze's
    ``fmt`` (``pcm``: 16-bit little-endian, mono, as given: no resampling)."""
    import numpy as np

    clipped = np.clip(samples, -1.0, 1.0)
    if fmt == "pcm":
        pcm: bytes = (clipped[0] * 32767).round().astype("<i2").tobytes()
        return pcm
    import av

    container_name, codec, sample_format = CODECS[fmt]
    layout = "mono" if clipped.shape[0] == 1 else "stereo"
    out = io.BytesIO()
    with av.open(out, "w", format=container_name) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        planar = sample_format.endswith("p")
        data = clipped if planar else clipped.T.reshape(1, -1)
        if sample_format.startswith("s16"):
            data = (data * 32767).round().astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data), format=sample_format, layout=layout
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()
