"""Audio takes in the repository: confinement, the cache, and what validate says of them.

The format sent to Coze as ``audio_format`` comes from the bytes, never from the file
name (see :mod:`voicectl.declare.formats`). Files are stat-ed before they are opened,
so directories, FIFOs, devices and files over Coze's 10 MB limit are refused without
reading them.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicectl.declare.formats import (
    EXTENSIONS,
    MAX_BYTES,
    MAX_SECONDS,
    MIN_RATE,
    MIN_SECONDS,
    AudioError,
    read_facts,
)
from voicectl.declare.hashing import TakeCache
from voicectl.errors import Problem
from voicectl.model import Declaration, Take, TakeRef


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
        mean = sum(st.st_size for _, _, st in to_read) / len(to_read)
        results = _in_parallel(work, to_read, workers or _workers(mean))
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


# Threads pay only where hashing (which releases the GIL) outweighs each file's own
# Python work (open, stat, header): measured on 2 cores, 3,000 takes of 40 KB hash
# fastest on one thread (0.15 s; two 0.18 s, four 0.26 s), of 80 KB on two (one 0.23 s,
# two 0.14 s, four 0.19 s); more threads than cores never helped.
PARALLEL_FROM_BYTES = 64 * 1024


def _workers(mean_bytes: float) -> int:
    """How many threads hash takes of ``mean_bytes`` on average fastest."""
    return 1 if mean_bytes < PARALLEL_FROM_BYTES else min(16, os.cpu_count() or 1)


def _in_parallel(work: Callable[[Any], Any], items: list[Any], workers: int) -> list[Any]:
    """``[work(i) for i in items]`` on ``workers`` threads (hashlib and reads release
    the GIL).

    Items go out in batches of a few dozen, not one future each: for ten thousand small
    takes the pool's per-task overhead would otherwise rival the hashing itself.
    """
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
    # Only a path this cache never saw (a fresh clone): one it saw whose stat changed
    # was changed here, and git's own stat check has blind spots (core.trustctime false,
    # a same-size edit with its mtime put back) that the cache's key does not share.
    unseen = [item for item in unknown if not cache.knows(item[0])]
    if not unseen or blobs is None:
        return unknown
    # A blob id names content, wherever it is: a renamed take is still known.
    by_blob = {r.git_blob: r for r in recorded if r.git_blob}
    if not by_blob:
        return unknown
    clean = blobs()
    to_read = [item for item in unknown if cache.knows(item[0])]
    for item in unseen:
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
    named = EXTENSIONS.get(os.path.splitext(decl.audio)[1].lower())
    if named is not None and named != take.format:
        found.append(
            at(
                f"{decl.audio}: named like {named} but the bytes are {take.format}; "
                f"it will be sent as audio_format={take.format}",
                "warning",
            )
        )
    return found
