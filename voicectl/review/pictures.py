"""The pictures of a take on the review page: its waveform (SVG, min and max per column)
and a small spectrogram (PNG, where hum, noise and clipping show)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicectl.sound.decode import Decoded

WAVE_WIDTH, WAVE_HEIGHT = 800, 120
SPECTRUM_WIDTH, SPECTRUM_HEIGHT = 400, 120
FFT_SIZE = 512
TOP_DB, RANGE_DB = 0.0, 90.0
LEVELS = 24


def waveform_svg(decoded: Decoded, color: str = "#3b82f6") -> bytes:
    """The take's waveform: for each of WAVE_WIDTH columns, a bar from its lowest to its
    highest sample in any channel (not mixed: an inverted channel would cancel), in one
    path."""
    samples = decoded.samples
    frames = samples.shape[1]
    columns = min(WAVE_WIDTH, max(1, frames))
    usable = samples[:, : frames // columns * columns].reshape(samples.shape[0], columns, -1)
    lows, highs = usable.min(axis=(0, 2)), usable.max(axis=(0, 2))
    middle = WAVE_HEIGHT / 2
    parts = []
    for x, (low, high) in enumerate(zip(lows, highs, strict=True)):
        top = middle - float(high) * middle
        bottom = max(middle - float(low) * middle, top + 1)  # silence: a 1 px line
        parts.append(f"M{x} {top:.1f}V{bottom:.1f}")
    path = "".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {columns} {WAVE_HEIGHT}" '
        f'width="{WAVE_WIDTH}" height="{WAVE_HEIGHT}" preserveAspectRatio="none">'
        f'<path d="{path}" stroke="{color}" stroke-width="1" fill="none"/></svg>'
    ).encode()


def spectrogram_png(decoded: Decoded) -> bytes:
    """A magnitude spectrogram (dB, 0 to -90 dBFS, low frequencies at the bottom) of the
    take's loudest channel, as a PNG of SPECTRUM_WIDTH columns."""
    import numpy as np
    from PIL import Image

    energy = (decoded.samples.astype(np.float64) ** 2).sum(axis=1)
    mono = decoded.samples[int(np.argmax(energy))]  # the loudest channel, not a mix
    if mono.size < FFT_SIZE:
        mono = np.pad(mono, (0, FFT_SIZE - mono.size))
    starts = np.linspace(0, mono.size - FFT_SIZE, SPECTRUM_WIDTH).astype(int)
    frames = mono[starts[:, None] + np.arange(FFT_SIZE)] * np.hanning(FFT_SIZE)
    spectrum = np.abs(np.fft.rfft(frames, axis=1)) / (FFT_SIZE / 4)
    db = 20 * np.log10(np.maximum(spectrum, 1e-9))
    level = np.clip((db - (TOP_DB - RANGE_DB)) / RANGE_DB, 0.0, 1.0)
    rows = np.linspace(0, level.shape[1] - 1, SPECTRUM_HEIGHT).astype(int)
    image = level[:, rows].T[::-1]  # frequency up
    indexed = Image.fromarray((image * (LEVELS - 1)).round().astype(np.uint8), "P")
    indexed.putpalette(_palette())
    out = io.BytesIO()
    indexed.save(out, format="PNG")
    return out.getvalue()


def _palette() -> list[int]:
    """LEVELS colours from dark blue (quiet) through magenta to yellow (loud), readable on
    light and dark pages; few, so that the PNG stays small."""
    import numpy as np

    stops = np.array(
        [[13, 8, 42], [84, 22, 122], [181, 46, 122], [245, 120, 60], [252, 236, 120]],
        dtype=np.float64,
    )
    position = np.linspace(0, len(stops) - 1, LEVELS)
    low = np.floor(position).astype(int).clip(0, len(stops) - 2)
    weight = (position - low)[:, None]
    rgb = stops[low] * (1 - weight) + stops[low + 1] * weight
    return [int(v) for v in rgb.round().astype(np.uint8).ravel()]
