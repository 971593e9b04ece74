"""SHA-256 of audio takes, with a local cache so an unchanged tree is not read again.

The cache lives in ``.voicectl/cache/takes.json`` (git-ignored) and maps a
repository-relative path to what was learnt about the file when its (size, mtime_ns,
inode) were last seen: its digest and its audio facts. A stat that matches means the
bytes are trusted unread; anything else reads the file again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

from voicectl.files.cache import read_cache, stat_key, write_cache
from voicectl.model import AUDIO_FORMATS

CACHE_FORMAT = 2  # 2: the stat key has ctime and device
CHUNK = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return sha256_handle(handle)


def sha256_handle(handle: BinaryIO) -> str:
    """SHA-256 of an open binary file from its current position to its end."""
    if sys.version_info >= (3, 11):
        return hashlib.file_digest(handle, "sha256").hexdigest()
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(CHUNK), b""):
        digest.update(block)
    return digest.hexdigest()


def _sound(facts: object) -> TypeGuard[dict[str, Any]]:
    """A cache is a hint, not an input: a hand-edited or half-written entry is ignored."""
    if not isinstance(facts, dict):
        return False
    sha, duration = facts.get("sha256"), facts.get("duration")
    optional_ints = (facts.get("sample_rate"), facts.get("channels"))
    return (
        isinstance(sha, str)
        and _SHA256.fullmatch(sha) is not None
        and facts.get("format") in AUDIO_FORMATS
        and isinstance(duration, (int, float))
        and not isinstance(duration, bool)
        and 0 <= duration < math.inf
        and all(
            v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in optional_ints
        )
    )


class TakeCache:
    """Facts about files keyed by path and stat; a corrupt cache is silently dropped."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self.dirty = False
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        data = read_cache(path, format=CACHE_FORMAT)
        if data is not None and isinstance(data.get("entries"), dict):
            self.entries = data["entries"]

    def get(self, relative: str, st: os.stat_result) -> dict[str, Any] | None:
        """The facts remembered for ``relative`` if its stat is unchanged and they are sound."""
        entry = self.entries.get(relative)
        if not isinstance(entry, dict) or entry.get("stat") != stat_key(st):
            return None
        facts = entry.get("facts")
        return facts if _sound(facts) else None

    def knows(self, relative: str) -> bool:
        """Whether ``relative`` was ever seen here, whatever its stat is now."""
        return relative in self.entries

    def put(self, relative: str, st: os.stat_result, facts: dict[str, Any]) -> None:
        self.entries[relative] = {"stat": stat_key(st), "facts": facts}
        self.dirty = True

    def save(self) -> None:
        """Persist if anything changed; a cache that cannot be written is just skipped."""
        if self.path is None or not self.dirty:
            return
        body = json.dumps(
            {"format": CACHE_FORMAT, "entries": self.entries}, separators=(",", ":"), sort_keys=True
        )
        try:
            write_cache(self.path, body.encode())
        except OSError:
            return
        self.dirty = False
