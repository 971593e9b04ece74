"""voicectl.yaml: the repository's configuration, and reading its YAML files safely.

Loading collects every problem (file, line, column, field) before anything is
reported; nothing here raises on bad input except through :class:`ValidationFailed`.
"""

from __future__ import annotations

import hashlib
import math
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from voicectl.coze import apibase
from voicectl.errors import ConfigError, Problem
from voicectl.files import schemacheck, schemas
from voicectl.files.yamldoc import Document, show
from voicectl.files.yamlload import MAX_FILE_BYTES, load_bytes
from voicectl.sound.checks import Thresholds

CONFIG_FILE = "voicectl.yaml"
DEFAULT_VOICES = ("voices/**/*.yaml",)
DEFAULT_STATE = "state/voicectl.state.json"


@dataclass(frozen=True)
class PgBackend:
    """``backend: pg``: the state in PostgreSQL."""

    conn_str: str = ""
    schema: str = "voicectl"
    workspace: str = "default"


@dataclass(frozen=True)
class Config:
    root: Path
    voices: tuple[str, ...] = DEFAULT_VOICES
    state: str = DEFAULT_STATE
    default_space: str | None = None
    default_language: str | None = None
    api_base: str | None = None
    max_new_voices: int | None = None
    max_voices: int | None = None
    strict_takes: bool = False  # take warnings are errors (policy.strict_takes)
    max_one_time_cny: int | None = None
    pg: PgBackend | None = None  # None: the state file
    takes: Thresholds = field(default_factory=Thresholds)  # policy.takes: warned of
    # Where each of ``voices`` is in voicectl.yaml, for problems found when globbing.
    voices_at: tuple[tuple[int, int], ...] = field(default=(), compare=False)
    # sha256 of voicectl.yaml as read: part of the declaration cache's identity.
    digest: str = field(default="", compare=False)

    @property
    def state_path(self) -> Path:
        return self.root / self.state


def find_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding voicectl.yaml."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / CONFIG_FILE).is_file():
            return directory
    raise ConfigError(
        f"no {CONFIG_FILE} in {start} or any parent directory; "
        "run `voicectl init` to create a voice repository"
    )


def _problem(file: str, message: str) -> Document:
    doc = Document(file)
    doc.at(1, 1, message)
    return doc


def checked_stat(path: Path, display: str, root: Path | None) -> os.stat_result | Document:
    """The stat of a YAML file that may be read, or a Document holding why not."""
    try:
        real = Path(os.path.realpath(path))
        if root is not None and not _inside(real, root):
            return _problem(display, "resolves outside the repository (through a symlink)")
        st = real.stat()
    except OSError as exc:
        return _problem(display, f"cannot be read: {exc.strerror or exc}")
    if not stat.S_ISREG(st.st_mode):
        return _problem(display, "is not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        return _problem(
            display, f"file too large ({st.st_size} bytes; the limit is {MAX_FILE_BYTES})"
        )
    return st


def read_raw(
    path: Path, display: str, root: Path | None, st: os.stat_result | None = None
) -> Document | tuple[os.stat_result, bytes]:
    """The bytes of one YAML file (and its stat), or a Document holding why not."""
    if st is None:
        checked = checked_stat(path, display, root)
        if isinstance(checked, Document):
            return checked
        st = checked
    try:
        fd = os.open(os.path.realpath(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            opened = os.fstat(handle.fileno())
            if not stat.S_ISREG(opened.st_mode):  # swapped since the stat
                return _problem(display, "is not a regular file")
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return _problem(display, f"cannot be read: {exc.strerror or exc}")
    if len(raw) > MAX_FILE_BYTES:
        return _problem(display, f"file too large (over {MAX_FILE_BYTES} bytes)")
    return opened, raw


def _inside(real: Path, root: Path) -> bool:
    root_real = os.path.realpath(root)
    return os.path.commonpath([root_real, real]) == root_real


def load_config(root: Path) -> tuple[Config, list[Problem]]:
    """Read voicectl.yaml at ``root``; problems are returned, not raised."""
    found = read_raw(root / CONFIG_FILE, CONFIG_FILE, None)
    if isinstance(found, Document):
        return Config(root=root), found.problems
    digest = hashlib.sha256(found[1]).hexdigest()
    doc = load_bytes(found[1], CONFIG_FILE)
    if doc.problems:
        return Config(root=root), doc.problems
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        doc.problem((), f"{CONFIG_FILE} must be a mapping, not {schemas.kind(data)}")
        return Config(root=root), doc.problems
    doc.data = data
    if not schemacheck.surely_valid("config", data):
        schemas.report(doc, "config")
    if doc.problems:
        return Config(root=root), doc.problems
    voices = tuple(data.get("voices") or DEFAULT_VOICES)
    for i, pattern in enumerate(voices):
        reason = _pattern_problem(pattern)
        if reason:
            doc.problem(("voices", i), f"pattern {show(pattern)} {reason}")
    state = data.get("state", DEFAULT_STATE)
    reason = _state_problem(root, state)
    if reason:
        doc.problem(("state",), f"state path {show(state)} {reason}")
    defaults: dict[str, Any] = data.get("defaults") or {}
    api_base = defaults.get("api_base")
    reason = apibase.repository_problem(api_base) if isinstance(api_base, str) else None
    if reason:
        doc.problem(("defaults", "api_base"), f"{show(api_base)} {reason}")
    pg = _pg_backend(doc, data.get("backend") or {})
    limits = (data.get("policy") or {}).get("takes") or {}
    for key, value in limits.items():  # YAML's .nan and .inf pass the schema's ranges
        if isinstance(value, float) and not math.isfinite(value):
            doc.problem(("policy", "takes", key), f"{show(value)} is not a finite number")
    if doc.problems:
        return Config(root=root), doc.problems
    policy: dict[str, Any] = data.get("policy") or {}
    return Config(
        root=root,
        voices=voices,
        state=state,
        default_space=space_id(defaults.get("space")),
        default_language=defaults.get("language"),
        api_base=api_base,
        max_new_voices=policy.get("max_new_voices"),
        max_voices=policy.get("max_voices"),
        max_one_time_cny=policy.get("max_one_time_cny"),
        strict_takes=policy.get("strict_takes") is True,
        takes=Thresholds(**(policy.get("takes") or {})),
        pg=pg,
        voices_at=tuple(doc.where(("voices", i)) for i in range(len(voices))),
        digest=digest,
    ), []


def _pg_backend(doc: Document, backend: dict[str, Any]) -> PgBackend | None:
    """``backend.pg`` read (None: not configured); a password in it is a problem."""
    if "pg" not in backend:
        return None
    pg: dict[str, Any] = backend["pg"] or {}
    conn_str = pg.get("conn_str", "")
    if _has_password(conn_str):
        doc.problem(
            ("backend", "pg", "conn_str"),
            "holds a password; a repository is no place for one: give it through "
            "PGPASSWORD or ~/.pgpass (or the whole string through VOICECTL_PG_CONN_STR)",
        )
    return PgBackend(conn_str, pg.get("schema", "voicectl"), pg.get("workspace", "default"))


def _has_password(conn_str: str) -> bool:
    """Whether a libpq connection string or URI may carry a password (or a client key's
    passphrase). Read as libpq reads it, not as Python's urlsplit: in a URI, '#' and '?'
    are ordinary characters of the user part, which ends at its last '@' before the
    first '/'; a ':' there starts a password. Anything named password anywhere (a
    keyword, a query parameter, percent-encoded) counts."""
    if re.search(r"password", unquote(conn_str), re.IGNORECASE):
        return True
    scheme = re.match(r"postgres(?:ql)?://", conn_str, re.IGNORECASE)
    if scheme is None:
        return False
    authority = conn_str[scheme.end() :].split("/", 1)[0]
    userinfo, at, _ = authority.rpartition("@")
    return bool(at) and ":" in userinfo


def _pattern_problem(pattern: str) -> str | None:
    """Why a glob of declaration files cannot work, or None (pathlib would raise later)."""
    if escapes(pattern):
        return "must stay inside the repository"
    parts = [p for p in pattern.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        return "names no files (give e.g. voices/**/*.yaml)"
    if any("**" in part and part != "**" for part in parts):
        return "is not a valid glob: '**' must be a whole path component (e.g. voices/**/*.yaml)"
    return None


def _state_problem(root: Path, state: str) -> str | None:
    if escapes(state):
        return "must stay inside the repository"
    if state.endswith(("/", "\\")) or posixpath.normpath(state) in (".", ""):
        return "must name a file, not a directory"
    path = root / state
    if path.is_dir():
        return "is a directory; it must name a file, e.g. state/voicectl.state.json"
    if not _inside(Path(os.path.realpath(path)), root):
        return "resolves outside the repository (through a symlink)"
    return None


def absolute(path: str) -> bool:
    return path.startswith(("/", "\\")) or os.path.isabs(path) or ":" in path[:3]


def escapes(relative: str) -> bool:
    """True when a repository-relative path is absolute or climbs out of the root."""
    if absolute(relative):
        return True
    normal = posixpath.normpath(relative.replace("\\", "/"))
    return normal == ".." or normal.startswith("../")


def space_id(value: object) -> str | None:
    """Workspace ids are digits; YAML may give them as integers, which are exact."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else None
