"""The quality of a take, measured on its decoded samples.

- **Loudness**: integrated loudness in LUFS (ITU-R BS.1770-4: K-weighting, 400 ms blocks,
  absolute and relative gates), by pyloudnorm; None for a take under 0.4 s or silent.
- **Peak** in dBFS, and **clipped samples**: those in runs of three or more at full
  scale (a lone sample at full scale is a loud take, three in a row a flattened wave);
  in a lossy take (mp3, ogg, m4a, aac), whose codec smears a flattened wave into ripples
  around full scale and beyond, samples in runs of 1 ms or more at 98% of full scale or
  more: longer than the crest of any voice's wave at full scale (a 50 Hz hum's is not),
  so a clean take is not called clipped; a take clipped in short bursts can be missed.
  A wave flattened and then turned down is not found: the count is of full scale, not
  of flat tops.
- **Silence**: the share of 50 ms windows quieter than -50 dBFS, and how long the take
  is silent at its start and at its end.
- **Noise floor and SNR** (an estimate): the level of the quietest tenth of the windows,
  and how far the loudest tenth stands above it; no SNR for a take with no quieter part
  (less than 6 dB between the two: no pause to hear its noise in).
- **A silent channel**: a channel of a multichannel take that peaks below -60 dBFS
  while another does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicectl.sound.decode import Decoded

WINDOW_SECONDS = 0.05
SILENCE_DBFS = -50.0
SILENT_CHANNEL_DBFS = -60.0
FULL_SCALE = 0.999  # of 1.0: 16-bit's largest sample is 32767/32768
CLIP_RUN = 3
FLOOR_DB = -120.0  # digital silence, for the noise floor
MIN_SPREAD_DB = 6.0  # less between the loud and quiet tenths: no pause, no floor to tell


@dataclass(frozen=True)
class Quality:
    """Figures of one take (see the module's docstring); dB values rounded to 0.1."""

    duration: float
    sample_rate: int
    channels: int
    loudness_lufs: float | None
    peak_dbfs: float | None  # None: digital silence
    clipped_samples: int
    silence_share: float  # 0..1
    leading_silence: float  # seconds
    trailing_silence: float
    noise_floor_dbfs: float
    snr_db: float | None  # None: no pause to tell the noise floor by
    silent_channels: tuple[int, ...] = ()  # 1-based channel numbers
    spectral_flatness: float = 0.0  # 0 a tone, 1 white noise; a voice well under 0.5
    nonfinite_samples: int = 0  # NaN or infinite in the file (a float WAV), read as 0

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "silent_channels": list(self.silent_channels)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Quality:
        return cls(**{**data, "silent_channels": tuple(data.get("silent_channels", ()))})


def _db(value: float) -> float | None:
    return round(20 * math.log10(value), 1) if value > 0 else None


LOSSY = frozenset({"mp3", "ogg", "m4a", "aac"})
LOSSY_FULL_SCALE = 0.98
LOSSY_RUN_SECONDS = 0.001  # a run near full scale this long is a flat top, not a crest


def measure(decoded: Decoded, fmt: str = "wav") -> Quality:
    """The figures of a take decoded from Coze's format ``fmt``."""
    import numpy as np

    samples = decoded.samples
    rate = decoded.rate
    peaks = np.abs(samples).max(axis=1) if samples.size else np.zeros(decoded.channels)
    levels = _levels(samples, rate)
    silent = levels < SILENCE_DBFS
    floor = float(np.percentile(levels, 10))
    top = float(np.percentile(levels, 90))
    return Quality(
        duration=round(decoded.duration, 3),
        sample_rate=rate,
        channels=decoded.channels,
        loudness_lufs=_loudness(samples, rate),
        peak_dbfs=_db(float(peaks.max()) if peaks.size else 0.0),
        clipped_samples=(
            _clipped(samples, LOSSY_FULL_SCALE, max(2, round(rate * LOSSY_RUN_SECONDS)))
            if fmt in LOSSY
            else _clipped(samples)
        ),
        silence_share=round(float(silent.mean()), 3),
        leading_silence=round(_run(silent) * WINDOW_SECONDS, 2),
        trailing_silence=round(_run(silent[::-1]) * WINDOW_SECONDS, 2),
        noise_floor_dbfs=round(floor, 1),
        snr_db=round(top - floor, 1) if top - floor >= MIN_SPREAD_DB else None,
        silent_channels=_silent_channels(peaks),
        spectral_flatness=_flatness(samples),
        nonfinite_samples=decoded.nonfinite,
    )


def _levels(samples: Any, rate: int) -> Any:
    """Each 50 ms window's level (dBFS RMS) in its loudest channel, each channel's DC
    offset taken away first: channels are not mixed, so that one inverted channel does not
    cancel the other, and an offset does not hide a pause."""
    import numpy as np

    window = max(1, int(rate * WINDOW_SECONDS))
    count = samples.shape[1] // window
    if not count:
        return np.array([FLOOR_DB])
    blocks = samples[:, : count * window].reshape(samples.shape[0], count, window)
    offset = blocks.mean(axis=(1, 2), dtype=np.float64)[:, None]  # each channel's DC
    square = np.einsum("cwi,cwi->cw", blocks, blocks, dtype=np.float64) / window
    mean = blocks.mean(axis=2, dtype=np.float64)
    power = np.maximum(square - 2 * offset * mean + offset * offset, 0.0)  # E[(x - dc)^2]
    rms = np.sqrt(power).max(axis=0)
    return 20 * np.log10(np.maximum(rms, 10 ** (FLOOR_DB / 20)))


def _flatness(samples: Any) -> float:
    """The mean spectral flatness (geometric over arithmetic mean of the power spectrum)
    of up to 200 frames of 1,024 samples in the loudest channel: near 1 for noise."""
    import numpy as np

    channel = samples[int(np.argmax((samples.astype(np.float64) ** 2).sum(axis=1)))]
    size = 1024
    if channel.size < size:
        return 0.0
    starts = np.linspace(0, channel.size - size, min(200, channel.size // size)).astype(int)
    frames = channel[starts[:, None] + np.arange(size)] * np.hanning(size)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-12
    loud = power.sum(axis=1) > 1e-6 * size  # frames of sound, not of silence
    if not loud.any():
        return 0.0
    flat = np.exp(np.log(power[loud]).mean(axis=1)) / power[loud].mean(axis=1)
    return round(float(flat.mean()), 2)


GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770's channel weights (L, R, C, Ls, Rs)
BLOCK, STEP = 0.4, 0.25  # 400 ms gating blocks, each a quarter block after the last


def _loudness(samples: Any, rate: int) -> float | None:
    """Integrated loudness (BS.1770-4), rounded to 0.1 LUFS; None: under a block, or
    silent. pyloudnorm's own K-weighting filters as one cascade, then its gating summed
    over 100 ms hops instead of its loop over blocks; a test holds the two equal at
    0.1 LU."""
    import numpy as np

    if samples.shape[1] < int(BLOCK * rate) + 1:
        return None
    weighted = _k_weighted(samples, rate)
    z = _block_power(weighted, rate) / (BLOCK * rate)  # mean square per block
    gains = np.array([GAINS[i] if i < len(GAINS) else 1.0 for i in range(z.shape[0])])
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(gains @ z)
        above = levels >= -70.0
        if not above.any():
            return None
        relative = -0.691 + 10 * np.log10(gains @ z[:, above].mean(axis=1)) - 10.0
        gated = (levels > relative) & (levels > -70.0)
        value = -0.691 + 10 * np.log10(gains @ z[:, gated].mean(axis=1)) if gated.any() else -np.inf
    return round(float(value), 1) if math.isfinite(value) else None


def _block_power(weighted: Any, rate: int) -> Any:
    """The sum of squares in each gating block, per channel: the blocks' bounds as
    pyloudnorm computes them, float for float; summed from 100 ms hops where every bound
    falls on one (each standard rate), else from a running sum."""
    import numpy as np

    frames = weighted.shape[1]
    blocks = int(np.round((frames / rate - BLOCK) / (BLOCK * STEP))) + 1
    j = np.arange(blocks, dtype=np.float64)
    starts = (BLOCK * (j * STEP) * rate).astype(int)
    ends = (BLOCK * (j * STEP + 1) * rate).astype(int)
    hop = round(BLOCK * STEP * rate)
    squares = weighted * weighted
    if np.array_equal(starts, np.arange(blocks) * hop) and np.array_equal(ends, starts + 4 * hop):
        full = frames // hop
        hops = squares[:, : full * hop].reshape(squares.shape[0], full, hop).sum(axis=2)
        tail = squares[:, full * hop :].sum(axis=1, keepdims=True)
        running = np.concatenate([np.zeros_like(tail), np.cumsum(hops, axis=1), tail], axis=1)
        running[:, -1] += running[:, -2]
        last = running.shape[1] - 1
        return running[:, np.minimum(np.arange(blocks) + 4, last)] - running[:, :blocks]
    running = np.concatenate([np.zeros((squares.shape[0], 1)), np.cumsum(squares, axis=1)], 1)
    return running[:, np.minimum(ends, frames)] - running[:, starts]


def _k_weighted(samples: Any, rate: int) -> Any:
    """The samples through BS.1770's K-weighting: pyloudnorm's two filters for ``rate``,
    run as one cascade (as its apply_filter does, each with its passband gain)."""
    import numpy as np
    import pyloudnorm
    from scipy.signal import sosfilt, tf2sos

    stages = list(pyloudnorm.Meter(rate)._filters.values())
    cascade = np.concatenate([tf2sos(stage.b, stage.a) for stage in stages])
    gain = float(np.prod([stage.passband_gain for stage in stages]))
    return gain * sosfilt(cascade, samples.astype(np.float64), axis=1)


def _clipped(samples: Any, level: float = FULL_SCALE, run: int = CLIP_RUN) -> int:
    """Samples in runs of ``run`` or more at ``level`` of full scale or beyond (any
    channel)."""
    import numpy as np

    total = 0
    for channel in samples:
        full = np.abs(channel) >= level
        if not full.any():
            continue
        edges = np.diff(np.concatenate(([0], full.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        lengths = ends - starts
        total += int(lengths[lengths >= run].sum())
    return total


def _run(flags: Any) -> int:
    """How many of ``flags`` are true before the first false."""
    import numpy as np

    falses = np.flatnonzero(~flags)
    return int(falses[0]) if falses.size else int(flags.size)


def _silent_channels(peaks: Any) -> tuple[int, ...]:
    if peaks.size < 2:
        return ()
    quiet = [i + 1 for i, p in enumerate(peaks) if (_db(float(p)) or -999) < SILENT_CHANNEL_DBFS]
    return tuple(quiet) if len(quiet) < peaks.size else ()
