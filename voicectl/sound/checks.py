"""Take quality held to thresholds (``policy.takes`` in voicectl.yaml), cached by sha256.

Measuring decodes the whole take (tens of milliseconds for a 20 s take), so each take's
figures are kept in ``.voicectl/cache/quality.json`` by its sha256, like the other take
facts. Each entry carries an HMAC under this machine's key (see
:func:`voicectl.files.cache.machine_key`): a cache file a pull request commits vouches
for no take, and cannot hide a clipped one from its reviewers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicectl.files.cache import machine_key, read_cache, write_cache
from voicectl.sound.quality import Quality

CACHE_FORMAT = 2  # bumped when a figure is measured otherwise
# Takes measured at once, at most: each may hold a few hundred MB while it is measured.
MAX_WORKERS = 4


@dataclass(frozen=True)
class Thresholds:
    """What a take may be before it is warned of (``policy.takes``)."""

    max_clipped_samples: int = 0
    min_loudness_lufs: float = -30.0
    max_silence_share: float = 0.30
    max_edge_silence_seconds: float = 2.0
    min_snr_db: float = 20.0
    max_spectral_flatness: float = 0.3

    def warnings(self, q: Quality, declared: float | None = None) -> list[str]:
        """What is wrong with a take of figures ``q``, one phrase each; ``declared``: the
        duration its header gave (a truncated file decodes to less)."""
        found = []
        if declared is not None and abs(q.duration - declared) > max(0.5, 0.05 * declared):
            found.append(
                f"decodes to {q.duration:.1f} s of audio, though its header says "
                f"{declared:.1f} s (truncated or damaged?)"
            )
        if q.nonfinite_samples:
            found.append(f"{q.nonfinite_samples:,} samples are not numbers (NaN or infinite)")
        if q.clipped_samples > self.max_clipped_samples:
            found.append(f"clipped: {q.clipped_samples:,} samples at or near full scale")
        if q.loudness_lufs is None:
            found.append("silent, or too short to measure its loudness")
        elif q.loudness_lufs < self.min_loudness_lufs:
            found.append(
                f"quiet: {q.loudness_lufs:.1f} LUFS, under {self.min_loudness_lufs:g} LUFS"
            )
        if q.silence_share > self.max_silence_share:
            found.append(f"{q.silence_share:.0%} silence, over {self.max_silence_share:.0%}")
        edge = max(q.leading_silence, q.trailing_silence)
        if edge > self.max_edge_silence_seconds:
            where = "starts" if q.leading_silence >= q.trailing_silence else "ends"
            found.append(
                f"{where} with {edge:.1f} s of silence, over {self.max_edge_silence_seconds:g} s"
            )
        if q.snr_db is not None and q.snr_db < self.min_snr_db:
            found.append(
                f"noisy: {q.snr_db:.1f} dB above its noise floor, under {self.min_snr_db:g}"
            )
        for channel in q.silent_channels:
            found.append(f"channel {channel} of {q.channels} is silent")
        if q.spectral_flatness > self.max_spectral_flatness:
            found.append(
                f"sounds like noise, not a voice (spectral flatness {q.spectral_flatness:.2f}, "
                f"over {self.max_spectral_flatness:g})"
            )
        return found


@dataclass(frozen=True)
class TakeToMeasure:
    path: Path  # on disk
    sha256: str
    format: str


def measure_all(
    takes: Iterable[TakeToMeasure], cache_path: Path | None, workers: int | None = None
) -> dict[str, Quality | str]:
    """Each take's figures by sha256, or why it could not be measured (a phrase); from the
    cache where this machine measured it before."""
    cache = _Cache(cache_path)
    todo: dict[str, TakeToMeasure] = {}
    found: dict[str, Quality | str] = {}
    for take in takes:
        known = cache.get(take.sha256)
        if known is not None:
            found[take.sha256] = known
        elif take.sha256 not in found:
            todo[take.sha256] = take
    if todo:
        count = workers or min(len(todo), os.cpu_count() or 1, MAX_WORKERS)
        with ThreadPoolExecutor(max_workers=max(1, count)) as pool:
            for sha, result in zip(todo, pool.map(_measure, todo.values()), strict=True):
                found[sha] = result
                if isinstance(result, Quality):
                    cache.put(sha, result)
        cache.save()
    return found


def _measure(take: TakeToMeasure) -> Quality | str:
    from voicectl.sound.decode import DecodeError, decode
    from voicectl.sound.quality import measure

    try:
        return measure(decode(take.path, take.format), take.format)
    except DecodeError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"


class _Cache:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.key = machine_key() if path is not None else None
        self.entries: dict[str, Any] = {}
        self.dirty = False
        if path is not None and self.key is not None:
            data = read_cache(path, format=CACHE_FORMAT)
            if data is not None and isinstance(data.get("entries"), dict):
                self.entries = data["entries"]

    def _mac(self, sha: str, figures: dict[str, Any]) -> str:
        assert self.key is not None
        body = json.dumps([sha, figures], sort_keys=True).encode()
        return hmac.new(self.key, body, hashlib.sha256).hexdigest()

    def get(self, sha: str) -> Quality | None:
        entry = self.entries.get(sha)
        if self.key is None or not isinstance(entry, dict):
            return None
        figures, mac = entry.get("figures"), entry.get("mac")
        if not isinstance(figures, dict) or not isinstance(mac, str):
            return None
        if not hmac.compare_digest(mac, self._mac(sha, figures)):
            return None
        try:
            return Quality.from_json(figures)
        except (TypeError, ValueError):
            return None

    def put(self, sha: str, quality: Quality) -> None:
        if self.key is None:
            return
        figures = quality.to_json()
        self.entries[sha] = {"figures": figures, "mac": self._mac(sha, figures)}
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        body = json.dumps({"format": CACHE_FORMAT, "entries": self.entries}, sort_keys=True)
        try:
            write_cache(self.path, body.encode())
        except OSError:
            return
