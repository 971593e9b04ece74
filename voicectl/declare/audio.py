"""Audio takes: confinement, format sniffing, duration and digest.

The format sent to Coze as ``audio_format`` comes from the bytes, never from the file
name. Durations and sample facts come from mutagen. Files are stat-ed before they are
opened, so directories, FIFOs, devices and files over Coze's 10 MB limit are refused
without reading them.
"""

from __future__ import annotations

import os
import posixpath
import stat
import struct
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from voicectl.declare.hashing import TakeCache, sha256_handle
from voicectl.errors import Problem
from voicectl.model import Declaration, Take, TakeRef

MAX_BYTES = 10_000_000  # Coze's "10 MB": read as the stricter 10**6, not 2**20
MIN_SECONDS, MAX_SECONDS = 10.0, 30.0
PCM_BYTES_PER_SECOND = 24_000 * 2  # Coze's pcm: 24 kHz, mono, 16-bit
PCM_RULE = "24 kHz, 16-bit, mono, little-endian"  # how raw .pcm bytes are heard
MIN_RATE = 16_000  # below it a take is telephone quality, and the clone sounds like it
OPUS_RATE = 48_000  # Opus always decodes at 48 kHz
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
_EXTENSIONS = {
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


def _id3_end(head: bytes) -> int:
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
            handle.seek(_id3_end(head))
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


@dataclass(frozen=True)
class Inspection:
    takes: dict[str, Take]
    problems: list[Problem]


class _Resolver:
    """Real paths of takes, resolving each directory once rather than every file's path.

    ``realpath(dir/name) == realpath(dir)/name`` whenever ``name`` is not a symlink, and
    the lstat that tells so is the stat the check needs anyway: ten thousand takes in
    twenty directories cost twenty realpath walks, not ten thousand.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root_real = os.path.realpath(root)
        self.dirs: dict[str, str | None] = {}

    def inside(self, real: str) -> bool:
        return os.path.commonpath([self.root_real, real]) == self.root_real

    def directory(self, parent: str) -> str | None:
        if parent not in self.dirs:
            real = os.path.realpath(self.root / parent)
            self.dirs[parent] = real if self.inside(real) else None
        return self.dirs[parent]

    def check(self, relative: str) -> tuple[str, os.stat_result]:
        parent, name = posixpath.split(relative)
        real_dir = self.directory(parent)
        if real_dir is None:
            raise AudioError("resolves outside the repository (through a symlink)")
        real = os.path.join(real_dir, name)
        try:
            st = os.lstat(real)
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(real)
                if not self.inside(real):
                    raise AudioError("resolves outside the repository (through a symlink)")
                st = os.stat(real)
        except FileNotFoundError:
            raise AudioError("file not found") from None
        except OSError as exc:
            raise AudioError(f"cannot be read: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise AudioError(f"is {kind}")
        if st.st_size > MAX_BYTES:
            raise AudioError(f"is {st.st_size:,} bytes; Coze accepts at most {MAX_BYTES:,} (10 MB)")
        if st.st_size == 0:
            raise AudioError("is empty")
        return real, st


def inspect(
    root: Path,
    declarations: Iterable[Declaration],
    cache: TakeCache,
    workers: int | None = None,
    recorded: Iterable[TakeRef] = (),
    blobs: Callable[[], Mapping[str, str]] | None = None,
) -> Inspection:
    """Facts of every declared take, reading only files whose stat changed.

    A take the cache does not know is trusted unread when the state ``recorded`` it with
    a git blob id and git (asked once, through ``blobs``, only if some take needs it)
    reports the file clean with that very blob and the size matches: a fresh clone is
    not read again. Anything else is read and hashed.
    """
    by_path: dict[str, list[Declaration]] = {}
    for decl in declarations:
        by_path.setdefault(decl.audio, []).append(decl)
    resolver = _Resolver(root)
    takes: dict[str, Take] = {}
    failures: dict[str, str] = {}
    unknown: list[tuple[str, str, os.stat_result]] = []
    for relative in by_path:
        try:
            real, st = resolver.check(relative)
        except AudioError as exc:
            failures[relative] = str(exc)
            continue
        facts = cache.get(relative, st)
        if facts is None:
            unknown.append((relative, real, st))
        else:
            takes[relative] = _take(relative, st.st_size, facts)
    to_read = _trust_git(unknown, recorded, blobs, cache, takes)

    def work(item: tuple[str, str, os.stat_result]) -> tuple[str, dict[str, Any] | str]:
        relative, real, st = item
        try:
            return relative, read_facts(Path(real), st.st_size)
        except AudioError as exc:
            return relative, str(exc)
        except OSError as exc:
            return relative, f"cannot be read: {exc.strerror}"

    if to_read:
        results = _in_parallel(work, to_read, workers)
        for (relative, _, st), (_, outcome) in zip(to_read, results, strict=True):
            if isinstance(outcome, str):
                failures[relative] = outcome
            else:
                cache.put(relative, st, outcome)
                takes[relative] = _take(relative, st.st_size, outcome)
    problems: list[Problem] = []
    for relative, decls in by_path.items():
        for decl in decls:
            problems.extend(_problems(decl, takes.get(relative), failures.get(relative)))
    return Inspection(takes, problems)


def _in_parallel(
    work: Callable[[Any], Any], items: list[Any], workers: int | None = None
) -> list[Any]:
    """``[work(i) for i in items]`` on a few threads (hashlib and reads release the GIL).

    Items go out in batches of a few dozen, not one future each: for ten thousand small
    takes the pool's per-task overhead would otherwise rival the hashing itself.
    """
    workers = workers or min(16, (os.cpu_count() or 1) * 2)
    if workers == 1 or len(items) < 2:
        return [work(i) for i in items]
    size = max(1, min(64, len(items) // (workers * 4)))
    batches = [items[k : k + size] for k in range(0, len(items), size)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = pool.map(lambda batch: [work(i) for i in batch], batches)
        return [result for batch in done for result in batch]


def _trust_git(
    unknown: list[tuple[str, str, os.stat_result]],
    recorded: Iterable[TakeRef],
    blobs: Callable[[], Mapping[str, str]] | None,
    cache: TakeCache,
    takes: dict[str, Take],
) -> list[tuple[str, str, os.stat_result]]:
    """Takes git vouches for go into ``takes`` (and the cache); the rest must be read."""
    if not unknown or blobs is None:
        return unknown
    # A blob id names content, wherever it is: a renamed take is still known.
    by_blob = {r.git_blob: r for r in recorded if r.git_blob}
    if not by_blob:
        return unknown
    clean = blobs()
    to_read = []
    for item in unknown:
        relative, _, st = item
        ref = by_blob.get(clean.get(relative, ""))
        if ref is None or ref.size != st.st_size:  # e.g. an LFS pointer not pulled
            to_read.append(item)
            continue
        facts = {
            "sha256": ref.sha256,
            "format": ref.format,
            "duration": ref.duration,
            "sample_rate": None,
            "channels": None,
        }
        cache.put(relative, st, facts)
        takes[relative] = _take(relative, st.st_size, facts)
    return to_read


def _take(relative: str, size: int, facts: dict[str, Any]) -> Take:
    return Take(
        path=relative,
        sha256=facts["sha256"],
        size=size,
        format=facts["format"],
        duration=float(facts["duration"]),
        sample_rate=facts.get("sample_rate"),
        channels=facts.get("channels"),
    )


def _problems(decl: Declaration, take: Take | None, failure: str | None) -> list[Problem]:
    def at(message: str, severity: str = "error") -> Problem:
        return Problem(
            decl.file,
            decl.audio_line,
            decl.audio_column,
            f"voices.{decl.address}.audio",
            message,
            severity,
        )

    if failure is not None:
        return [at(f"{decl.audio}: {failure}")]
    if take is None:
        return []
    found: list[Problem] = []
    if not MIN_SECONDS <= take.duration <= MAX_SECONDS:
        found.append(
            at(
                f"{decl.audio}: {take.duration:.1f} s long; Coze recommends "
                f"{MIN_SECONDS:.0f}-{MAX_SECONDS:.0f} s",
                "warning",
            )
        )
    if take.channels is not None and take.channels > 1:
        found.append(
            at(
                f"{decl.audio}: {take.channels} channels; a voice is cloned from one speaker, "
                "and a mono take is what Coze's examples use",
                "warning",
            )
        )
    if take.sample_rate is not None and take.sample_rate < MIN_RATE:
        found.append(
            at(
                f"{decl.audio}: sampled at {take.sample_rate:,} Hz; a clone sounds like its "
                f"take, so record at {MIN_RATE // 1000} kHz or more",
                "warning",
            )
        )
    named = _EXTENSIONS.get(os.path.splitext(decl.audio)[1].lower())
    if named is not None and named != take.format:
        found.append(
            at(
                f"{decl.audio}: named like {named} but the bytes are {take.format}; "
                f"it will be sent as audio_format={take.format}",
                "warning",
            )
        )
    return found
