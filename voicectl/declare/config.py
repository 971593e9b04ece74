"""The repository: voicectl.yaml and the voice declarations it points to.

Loading collects every problem (file, line, column, field) before anything is
reported; nothing here raises on bad input except through :class:`ValidationFailed`.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicectl.coze import apibase
from voicectl.declare.declcache import DeclarationCache
from voicectl.errors import ConfigError, Problem
from voicectl.files import schemacheck, schemas
from voicectl.files.yamlload import MAX_FILE_BYTES, Document, Path_, dotted, load_bytes, show
from voicectl.model import LANGUAGES, Declaration, control_character

CONFIG_FILE = "voicectl.yaml"
DEFAULT_VOICES = ("voices/**/*.yaml",)
DEFAULT_STATE = "state/voicectl.state.json"
NAME_MAX_BYTES = 128
NAME_WARN_CHARS = 6  # the SDKs' docstrings: "length > 6"; the docs' example is "jay"
TEXT_MAX_BYTES = 1024


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
    # Where each of ``voices`` is in voicectl.yaml, for problems found when globbing.
    voices_at: tuple[tuple[int, int], ...] = field(default=(), compare=False)
    # sha256 of voicectl.yaml as read: part of the declaration cache's identity.
    digest: str = field(default="", compare=False)

    @property
    def state_path(self) -> Path:
        return self.root / self.state


@dataclass
class Loaded:
    """What loading the repository produced: declarations and every problem found."""

    declarations: list[Declaration] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


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


def _checked_stat(path: Path, display: str, root: Path | None) -> os.stat_result | Document:
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


def _read_raw(
    path: Path, display: str, root: Path | None, st: os.stat_result | None = None
) -> Document | tuple[os.stat_result, bytes]:
    """The bytes of one YAML file (and its stat), or a Document holding why not."""
    if st is None:
        checked = _checked_stat(path, display, root)
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
    found = _read_raw(root / CONFIG_FILE, CONFIG_FILE, None)
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
    if doc.problems:
        return Config(root=root), doc.problems
    policy: dict[str, Any] = data.get("policy") or {}
    return Config(
        root=root,
        voices=voices,
        state=state,
        default_space=_space(defaults.get("space")),
        default_language=defaults.get("language"),
        api_base=api_base,
        max_new_voices=policy.get("max_new_voices"),
        max_voices=policy.get("max_voices"),
        max_one_time_cny=policy.get("max_one_time_cny"),
        strict_takes=policy.get("strict_takes") is True,
        voices_at=tuple(doc.where(("voices", i)) for i in range(len(voices))),
        digest=digest,
    ), []


def _pattern_problem(pattern: str) -> str | None:
    """Why a glob of declaration files cannot work, or None (pathlib would raise later)."""
    if _escapes(pattern):
        return "must stay inside the repository"
    parts = [p for p in pattern.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        return "names no files (give e.g. voices/**/*.yaml)"
    if any("**" in part and part != "**" for part in parts):
        return "is not a valid glob: '**' must be a whole path component (e.g. voices/**/*.yaml)"
    return None


def _state_problem(root: Path, state: str) -> str | None:
    if _escapes(state):
        return "must stay inside the repository"
    if state.endswith(("/", "\\")) or posixpath.normpath(state) in (".", ""):
        return "must name a file, not a directory"
    path = root / state
    if path.is_dir():
        return "is a directory; it must name a file, e.g. state/voicectl.state.json"
    if not _inside(Path(os.path.realpath(path)), root):
        return "resolves outside the repository (through a symlink)"
    return None


def _absolute(path: str) -> bool:
    return path.startswith(("/", "\\")) or os.path.isabs(path) or ":" in path[:3]


def _escapes(relative: str) -> bool:
    """True when a repository-relative path is absolute or climbs out of the root."""
    if _absolute(relative):
        return True
    normal = posixpath.normpath(relative.replace("\\", "/"))
    return normal == ".." or normal.startswith("../")


def _matches(config: Config, problems: list[Problem]) -> list[Path]:
    """Everything but directories the globs match; a glob pathlib refuses is a problem."""
    found: set[Path] = set()
    for i, pattern in enumerate(config.voices):
        try:
            found.update(p for p in config.root.glob(pattern) if not p.is_dir())
        except (ValueError, NotImplementedError, IndexError, OSError) as exc:
            line, column = config.voices_at[i] if i < len(config.voices_at) else (1, 1)
            problems.append(
                Problem(CONFIG_FILE, line, column, f"voices.{i}", f"pattern {show(pattern)}: {exc}")
            )
    return sorted(found)


def declaration_files(config: Config) -> list[str]:
    """The declaration files the config's globs match, relative to its root."""
    return [path.relative_to(config.root).as_posix() for path in _matches(config, [])]


def load_declarations(config: Config, cache: DeclarationCache | None = None) -> Loaded:
    """Load and check every declaration file named by the config's globs.

    With a ``cache``, a file whose stat is unchanged is not read again: its declarations
    and problems are taken as they were found (see :mod:`voicectl.declare.declcache`).
    """
    loaded = Loaded()
    first_seen: dict[str, Declaration] = {}
    files = _matches(config, loaded.problems)
    if not files and not loaded.problems:
        patterns = ", ".join(config.voices)
        loaded.problems.append(
            Problem(
                CONFIG_FILE, 0, 0, "voices", f"no declaration file matches {patterns}", "warning"
            )
        )
    for path in files:
        display = path.relative_to(config.root).as_posix()
        loaded.files.append(display)
        decls, problems = _load_file(path, display, config, cache)
        loaded.problems.extend(problems)
        for decl in decls:
            earlier = first_seen.get(decl.address)
            if earlier is not None:
                loaded.problems.append(
                    Problem(
                        display,
                        decl.line,
                        decl.column,
                        dotted(("voices", decl.address)),
                        f"address {decl.address!r} is already "
                        f"declared at {earlier.file}:{earlier.line}",
                    )
                )
                continue
            first_seen[decl.address] = decl
            loaded.declarations.append(decl)
    if cache is not None:
        cache.keep_only(set(loaded.files))
    loaded.problems += _same_names(loaded.declarations)
    loaded.problems.sort()
    return loaded


def _same_names(declarations: list[Declaration]) -> list[Problem]:
    """A warning for each voice named like one declared before it: Coze lists voices by
    name, so two of one name are hard to tell apart there, and a clone whose reply is
    lost is looked for by its name."""
    first: dict[tuple[str, str | None], Declaration] = {}
    found = []
    for decl in declarations:
        earlier = first.setdefault((decl.name, decl.space), decl)
        if earlier is not decl:
            found.append(
                Problem(
                    decl.file,
                    decl.line,
                    decl.column,
                    dotted(("voices", decl.address, "name")),
                    f"name {decl.name!r} is also {earlier.address}'s ({earlier.file}:"
                    f"{earlier.line}): Coze shows both under one name",
                    "warning",
                )
            )
    return found


def _load_file(
    path: Path, display: str, config: Config, cache: DeclarationCache | None
) -> tuple[list[Declaration], list[Problem]]:
    """One declaration file's declarations and problems (duplicates across files aside)."""
    checked = _checked_stat(path, display, config.root)
    if isinstance(checked, Document):
        return [], checked.problems
    if cache is not None:
        hit = cache.get(display, checked)
        if hit is not None:
            return hit
    found = _read_raw(path, display, config.root, checked)
    if isinstance(found, Document):
        return [], found.problems
    opened, raw = found
    doc = load_bytes(raw, display)
    if not doc.problems:
        if doc.data is None:
            pass  # empty, or only comments: a file begun, declaring nothing yet
        elif not isinstance(doc.data, dict):
            doc.problem((), "a declaration file must be a mapping with a top-level `voices:` key")
        elif not schemacheck.surely_valid("voices", doc.data):
            schemas.report(doc, "voices")
    decls = list(_declarations(doc, config))
    if cache is not None and _same_file(checked, opened):
        cache.put(display, opened, decls, doc.problems)
    return decls, doc.problems


def _same_file(before: os.stat_result, after: os.stat_result) -> bool:
    """The file read is the one stat-ed, unchanged: only then may its findings be cached."""
    return (before.st_ino, before.st_dev, before.st_size, before.st_mtime_ns) == (
        after.st_ino,
        after.st_dev,
        after.st_size,
        after.st_mtime_ns,
    )


LINES_ALLOWED = ("text", "preview_text", "description")  # a transcript may run on lines


def _unprintable(value: object, allow: str = "") -> str | None:
    """The first control or format character of ``value`` (C0, C1, DEL, bidi controls),
    but those in ``allow``; None when there is none or ``value`` is no string."""
    return control_character(value, allow) if isinstance(value, str) else None


def _declarations(doc: Document, config: Config) -> Iterable[Declaration]:
    voices = doc.data.get("voices") if isinstance(doc.data, dict) else None
    if not isinstance(voices, dict):
        return
    base = posixpath.dirname(doc.file)
    for address, body in voices.items():
        if not isinstance(body, dict) or not isinstance(address, str):
            continue
        path: Path_ = ("voices", address)
        if not address.isprintable():  # the schema's `$` lets a trailing newline by
            doc.problem(path, f"address {address!r} contains a control character", key=True)
            continue
        clean = True
        for key in ("name", "audio", "text", "preview_text", "description"):
            value = body.get(key)
            bad = _unprintable(value, allow="\n\t" if key in LINES_ALLOWED else "")
            if bad is not None:
                doc.problem(
                    (*path, key),
                    f"contains the control character U+{ord(bad):04X}: names, texts and "
                    "paths reach terminals and pull-request comments",
                )
                clean = False
        fields_ok = clean and all(isinstance(body.get(k), str) for k in ("name", "audio", "text"))
        language = body.get("language", config.default_language)
        if "language" not in body and language is None:
            doc.problem(
                path,
                "language is required (or set defaults.language in voicectl.yaml)",
                key=True,
                field_name=dotted((*path, "language")),
            )
        space = _space(body.get("space", config.default_space))
        if not fields_ok or not isinstance(language, str) or language not in LANGUAGES:
            continue
        name, audio, text = body["name"], body["audio"], body["text"]
        if len(name.encode()) > NAME_MAX_BYTES:
            doc.problem(
                (*path, "name"),
                f"is {len(name.encode())} bytes in UTF-8; Coze allows {NAME_MAX_BYTES}",
            )
        if 0 < len(name) <= NAME_WARN_CHARS:
            doc.problem(
                (*path, "name"),
                f"{name!r} is {len(name)} characters: Coze's SDKs say a voice name must be "
                f"longer than {NAME_WARN_CHARS} (the API's own example is shorter); a longer "
                "name avoids a refused clone",
                severity="warning",
            )
        if len(text.encode()) > TEXT_MAX_BYTES:
            doc.problem(
                (*path, "text"),
                f"is {len(text.encode())} bytes in UTF-8; Coze allows {TEXT_MAX_BYTES}",
            )
        if _absolute(audio):
            doc.problem(
                (*path, "audio"),
                f"{audio!r} is absolute; give a path relative to this file, inside the repository",
            )
            continue
        relative = posixpath.normpath(posixpath.join(base, audio.replace("\\", "/")))
        if _escapes(relative):
            doc.problem((*path, "audio"), f"{audio!r} leaves the repository")
            continue
        line, column = doc.where(path, key=True)
        audio_line, audio_column = doc.where((*path, "audio"))
        yield Declaration(
            address=address,
            name=name,
            audio=relative,
            text=text,
            language=language,
            space=space,
            preview_text=body.get("preview_text"),
            description=body.get("description"),
            protect=body.get("protect"),
            file=doc.file,
            line=line,
            column=column,
            audio_line=audio_line,
            audio_column=audio_column,
        )


def _space(value: object) -> str | None:
    """Workspace ids are digits; YAML may give them as integers, which are exact."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else None
