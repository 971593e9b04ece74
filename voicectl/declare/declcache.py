"""A local cache of parsed and checked declaration files, so an unchanged file is not
parsed again.

It lives in ``.voicectl/cache/declarations.json`` (git-ignored) and maps each
declaration file's repository path to what loading it found when its (size, mtime_ns,
ctime_ns, inode, device) were last seen: the declarations and the problems, both already
checked against the schema. The whole cache belongs to one voicectl version, one
voices schema and one voicectl.yaml (its defaults shape every declaration); any other
cache is ignored. A cache is a hint: a corrupt, foreign or hand-edited one is silently
dropped, and an entry is used only for a file whose stat is exactly as recorded. A file
changed within the last two seconds is not recorded, because a second change in the
same clock tick could keep its size and mtime (git's "racy" files).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from voicectl.errors import Problem
from voicectl.files.cache import read_cache, stat_key, write_cache
from voicectl.model import LANGUAGES, Declaration

CACHE_FORMAT = 1
RACY_NS = 2_000_000_000
_DECL_FIELDS = 13  # address .. audio_column, without ``file``
_TEXT = (1, 2, 3, 4)  # name, audio, text, language
_PROBLEM_FIELDS = 5


def _decl_row(d: Declaration) -> list[Any]:
    return [
        d.address,
        d.name,
        d.audio,
        d.text,
        d.language,
        d.space,
        d.preview_text,
        d.description,
        d.protect,
        d.line,
        d.column,
        d.audio_line,
        d.audio_column,
    ]


def _sound_decl(row: object) -> bool:
    if not isinstance(row, list) or len(row) != _DECL_FIELDS:
        return False
    texts_ok = all(isinstance(row[i], str) for i in (0, *_TEXT)) and row[4] in LANGUAGES
    optional_ok = all(row[i] is None or isinstance(row[i], str) for i in (5, 6, 7))
    ints_ok = all(type(row[i]) is int for i in (9, 10, 11, 12))
    return texts_ok and optional_ok and ints_ok and row[8] in (None, True, False)


def _sound_problem(row: object) -> bool:
    return (
        isinstance(row, list)
        and len(row) == _PROBLEM_FIELDS
        and isinstance(row[0], int)
        and isinstance(row[1], int)
        and all(isinstance(x, str) for x in row[2:])
        and row[4] in ("error", "warning")
    )


class DeclarationCache:
    """Loaded declaration files keyed by path and stat, for one version, schema, config."""

    def __init__(self, path: Path | None, identity: dict[str, str]) -> None:
        self.path = path
        self.identity = identity
        self.entries: dict[str, dict[str, Any]] = {}
        self.dirty = False
        self.started_ns = time.time_ns()
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        data = read_cache(path, format=CACHE_FORMAT, identity=self.identity)
        if data is not None and isinstance(data.get("files"), dict):
            self.entries = data["files"]

    def get(
        self, display: str, st: os.stat_result
    ) -> tuple[list[Declaration], list[Problem]] | None:
        """The declarations and problems of ``display`` if its stat is unchanged, else None."""
        entry = self.entries.get(display)
        if not isinstance(entry, dict) or entry.get("stat") != stat_key(st):
            return None
        rows, problems = entry.get("declarations"), entry.get("problems")
        if not isinstance(rows, list) or not isinstance(problems, list):
            return None
        if not all(_sound_decl(r) for r in rows) or not all(_sound_problem(p) for p in problems):
            return None
        decls = [Declaration(*r[:9], display, *r[9:]) for r in rows]  # type: ignore[call-arg]
        return decls, [Problem(display, *p) for p in problems]

    def put(
        self,
        display: str,
        st: os.stat_result,
        decls: list[Declaration],
        problems: list[Problem],
    ) -> None:
        recent = self.started_ns - RACY_NS
        if st.st_mtime_ns >= recent or st.st_ctime_ns >= recent:
            self.entries.pop(display, None)
            self.dirty = True
            return
        self.entries[display] = {
            "stat": stat_key(st),
            "declarations": [_decl_row(d) for d in decls],
            "problems": [[p.line, p.column, p.field, p.message, p.severity] for p in problems],
        }
        self.dirty = True

    def keep_only(self, displays: set[str]) -> None:
        """Forget files no longer matched, so the cache does not grow without bound."""
        stale = [k for k in self.entries if k not in displays]
        for key in stale:
            del self.entries[key]
        self.dirty = self.dirty or bool(stale)

    def save(self) -> None:
        """Persist if anything changed; a cache that cannot be written is just skipped."""
        if self.path is None or not self.dirty:
            return
        body = {"format": CACHE_FORMAT, "identity": self.identity, "files": self.entries}
        try:
            write_cache(self.path, json.dumps(body, separators=(",", ":")).encode())
        except OSError:
            return
        self.dirty = False
