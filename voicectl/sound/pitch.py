"""A recording's pitch: the fundamental frequency of its voiced middle, by autocorrelation.

What the emulator imposes on the speech it makes from a voice (so a voice cloned from a
low take speaks low), and a figure a person can compare between two takes. It is an
estimate of one number for a whole take, not a pitch track: the median period of the
voiced 50 ms frames of its middle, each frame's the first autocorrelation peak within 90 %
of its highest between 60 Hz and 1 kHz (the first, so that a period's multiples do not
read an octave low).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicectl.sound.decode import Decoded

LOWEST_HZ, HIGHEST_HZ = 60.0, 1000.0
FRAME_SECONDS, HOP_SECONDS = 0.05, 0.025  # a frame holds three periods of the lowest
MAX_SECONDS = 12.0  # of the take's middle: enough voiced frames, at a bounded cost
PEAK_SHARE = 0.9
VOICED = 0.5  # a frame whose best lag repeats it this well is voiced


def pitch(decoded: Decoded) -> float | None:
    """The median fundamental of the voiced frames in Hz, rounded to 0.1; None for
    silence or what has no period (noise)."""
    import numpy as np

    mono = decoded.samples.mean(axis=0, dtype=np.float64)
    rate = decoded.rate
    size, hop = int(FRAME_SECONDS * rate), max(1, int(HOP_SECONDS * rate))
    shortest, longest = max(1, int(rate / HIGHEST_HZ) - 1), int(rate / LOWEST_HZ)
    span = min(mono.size, int(MAX_SECONDS * rate))
    middle = mono[(mono.size - span) // 2 :][:span]
    if span < size or longest + 2 >= size:
        return None
    count = 1 + (span - size) // hop
    frames = np.lib.stride_tricks.sliding_window_view(middle, size)[::hop][:count]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = (frames**2).sum(axis=1)
    loud = energy > max(float(energy.max()) * 1e-3, 1e-9)  # within 30 dB of the loudest
    if not loud.any():
        return None
    spectrum = np.fft.rfft(frames[loud], 2 * size, axis=1)
    correlation = np.fft.irfft(spectrum * np.conj(spectrum), axis=1)[:, : longest + 2]
    # Unbiased: each lag's sum over the samples it overlaps, so longer lags are not faded.
    overlap = size - np.arange(shortest, longest + 2)
    lags = correlation[:, shortest : longest + 2] / overlap / (correlation[:, :1] / size)
    found = [_period(row) for row in lags]
    periods = [shortest + p for p in found if p is not None]
    if not periods:
        return None
    return round(rate / float(np.median(periods)), 1)


def _period(lags: object) -> float | None:
    """The first local peak of a frame's autocorrelation within PEAK_SHARE of its
    highest, between samples (a parabola through three points); None: unvoiced."""
    import numpy as np

    v = np.asarray(lags)
    inner = v[1:-1]
    best = float(inner.max())
    if best < VOICED:
        return None
    peaks = np.flatnonzero((inner >= PEAK_SHARE * best) & (inner >= v[:-2]) & (inner >= v[2:]))
    if not peaks.size:
        return None
    index = int(peaks[0]) + 1
    left, middle, right = float(v[index - 1]), float(v[index]), float(v[index + 1])
    bend = left - 2 * middle + right
    return index + (0.0 if bend == 0 else 0.5 * (left - right) / bend)
