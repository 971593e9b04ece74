"""The takes a review shows: each new take from the work tree, each old one from git (the
state records its blob id), both checked against the sha256 the plan and the state say,
then written under ``audio/`` and pictured under ``images/``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from voicectl.declare import formats, gitrepo
from voicectl.model import AudioSpec, TakeVerdict
from voicectl.review import pictures
from voicectl.sound import checks

MAX_TAKE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Wanted:
    """A take to show: where its bytes come from, and what they must hash to."""

    spec: AudioSpec
    blob: str = ""  # git blob id (an old take); "" for a new take, read from the work tree
    unavailable: str = ""  # why there are no bytes to look for (an imported voice's take)


@dataclass
class Shown:
    """A take as the page shows it: its file and pictures (under the review's folder),
    or why it is not there."""

    spec: AudioSpec
    audio: str = ""  # path under the review's folder
    waveform: str = ""
    spectrogram: str = ""
    duration: float | None = None  # decoded
    verdict: TakeVerdict | None = None
    missing: str = ""


def gather(
    root: Path,
    out: Path,
    wanted: Iterable[Wanted],
    thresholds: checks.Thresholds,
) -> dict[str, Shown]:
    """Every wanted take written and pictured under ``out``, by sha256 (each once)."""
    unique: dict[str, Wanted] = {}
    for want in wanted:
        known = unique.get(want.spec.sha256)
        if known is None or (known.unavailable and not want.unavailable):
            unique[want.spec.sha256] = want
    blobs = gitrepo.blobs(root, (w.blob for w in unique.values() if w.blob), MAX_TAKE_BYTES)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(parents=True, exist_ok=True)

    def one(want: Wanted) -> Shown:
        return _show(root, out, want, blobs, thresholds)

    workers = max(1, min(len(unique), os.cpu_count() or 1, checks.MAX_WORKERS))
    # Not kept in the quality cache: a saved plan names each take's format, and a plan
    # edited by hand would leave figures measured as another format there.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(unique, pool.map(one, unique.values()), strict=True))


def _bytes(root: Path, want: Wanted, blobs: dict[str, bytes]) -> bytes | str:
    """The take's bytes, or why they cannot be shown."""
    if want.unavailable:
        return want.unavailable
    if want.blob:
        data = blobs.get(want.blob)
        if data is None:
            return "not in this repository's git history (a shallow clone, or gone)"
        if data.startswith(b"version https://git-lfs"):
            return "stored in Git LFS, and git holds only its pointer"
    else:
        inside = within(root, want.spec.path)
        if inside is None:
            return "its path leads out of the repository"
        try:
            with open(inside, "rb") as handle:
                data = handle.read(MAX_TAKE_BYTES + 1)
        except OSError as exc:
            return f"cannot be read ({exc.strerror or exc})"
    if hashlib.sha256(data).hexdigest() != want.spec.sha256:
        return "its bytes are not the ones the plan names (changed since it was planned)"
    return data


def _format_of(data: bytes, path: str) -> str | None:
    """Coze's format of a take's bytes, read as validate reads a file's (the format a
    state or saved plan names is text anyone could have edited)."""
    head, after = data[:64], b""
    if head[:3] == b"ID3" and len(head) >= 10:
        end = formats.id3_end(head)
        after = data[end : end + 2]
    return formats.sniff(head, path, after)


def within(root: Path, relative: str) -> Path | None:
    """``relative`` under ``root``, when it stays there once links are followed (a saved
    plan is a file anyone could have edited); else None."""
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
        return None
    real, top = (root / relative).resolve(), root.resolve()
    return real if real.is_relative_to(top) and real != top else None


def changed_since(root: Path, wanted: Iterable[Wanted]) -> list[str]:
    """The new takes whose bytes are no longer those the plan names (or gone)."""
    stale = []
    for want in wanted:
        if want.blob or want.unavailable:
            continue
        inside = within(root, want.spec.path)
        try:
            data = inside.read_bytes() if inside is not None else None
        except OSError:
            data = None
        if data is None or hashlib.sha256(data).hexdigest() != want.spec.sha256:
            stale.append(want.spec.path)
    return stale


def _show(
    root: Path,
    out: Path,
    want: Wanted,
    blobs: dict[str, bytes],
    thresholds: checks.Thresholds,
) -> Shown:
    from voicectl.sound.decode import DecodeError, decode
    from voicectl.sound.quality import measure

    spec = want.spec
    shown = Shown(spec)
    data = _bytes(root, want, blobs)
    if isinstance(data, str):
        shown.missing = data
        return shown
    found = _format_of(data, spec.path)
    if found is None:
        shown.missing = "its bytes are not audio Coze accepts"
        return shown
    spec = spec._replace(format=found)  # as the bytes say: a state or plan could be edited
    name = f"{spec.sha256[:16]}.{spec.format}"
    (out / "audio" / name).write_bytes(data)
    shown.audio = f"audio/{name}"
    try:
        decoded = decode(out / "audio" / name, spec.format)
    except DecodeError as exc:
        shown.verdict = TakeVerdict({}, (f"its quality could not be measured: it {exc}",))
        return shown
    if spec.format == "pcm":  # no browser plays headerless samples: the same, as WAV
        from voicectl.sound.encode import encode

        (out / "audio" / name).unlink()
        name = f"{spec.sha256[:16]}.wav"
        (out / "audio" / name).write_bytes(encode(decoded.samples, decoded.rate, "wav"))
        shown.audio = f"audio/{name}"
    quality = measure(decoded, spec.format)
    shown.duration = decoded.duration
    warnings = thresholds.warnings(quality, declared=spec.duration)
    shown.verdict = TakeVerdict(quality.to_json(), tuple(warnings))
    stem = spec.sha256[:16]
    (out / "images" / f"{stem}-wave.svg").write_bytes(pictures.waveform_svg(decoded))
    (out / "images" / f"{stem}-spectrum.png").write_bytes(pictures.spectrogram_png(decoded))
    shown.waveform = f"images/{stem}-wave.svg"
    shown.spectrogram = f"images/{stem}-spectrum.png"
    return shown
