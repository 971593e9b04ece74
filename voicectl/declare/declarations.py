"""The voice declarations voicectl.yaml's globs name: loaded, checked, located.

Loading collects every problem (file, line, column, field) before anything is
reported; nothing here raises on bad input.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicectl.declare.config import (
    CONFIG_FILE,
    Config,
    absolute,
    checked_stat,
    escapes,
    read_raw,
    space_id,
)
from voicectl.declare.declcache import DeclarationCache
from voicectl.errors import Problem
from voicectl.files import schemacheck, schemas
from voicectl.files.yamldoc import Document, Path_, dotted, show
from voicectl.files.yamlload import load_bytes
from voicectl.model import LANGUAGES, Declaration, control_character

NAME_MAX_BYTES = 128
NAME_WARN_CHARS = 6  # the SDKs' docstrings: "length > 6"; the docs' example is "jay"
TEXT_MAX_BYTES = 1024


@dataclass
class Loaded:
    """What loading the repository produced: declarations and every problem found."""

    declarations: list[Declaration] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


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
    checked = checked_stat(path, display, config.root)
    if isinstance(checked, Document):
        return [], checked.problems
    if cache is not None:
        hit = cache.get(display, checked)
        if hit is not None:
            return hit
    found = read_raw(path, display, config.root, checked)
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
    for address, body in voices.items():
        if isinstance(body, dict) and isinstance(address, str):
            decl = _declaration(doc, config, address, body)
            if decl is not None:
                yield decl


def _declaration(
    doc: Document, config: Config, address: str, body: dict[str, Any]
) -> Declaration | None:
    """One voice's declaration, or None when its problems (recorded on ``doc``) leave
    nothing to plan."""
    path: Path_ = ("voices", address)
    if not address.isprintable():  # the schema's `$` lets a trailing newline by
        doc.problem(path, f"address {address!r} contains a control character", key=True)
        return None
    clean = _printable_fields(doc, path, body)
    fields_ok = clean and all(isinstance(body.get(k), str) for k in ("name", "audio", "text"))
    language = body.get("language", config.default_language)
    if "language" not in body and language is None:
        doc.problem(
            path,
            "language is required (or set defaults.language in voicectl.yaml)",
            key=True,
            field_name=dotted((*path, "language")),
        )
    space = space_id(body.get("space", config.default_space))
    if not fields_ok or not isinstance(language, str) or language not in LANGUAGES:
        return None
    name, audio, text = body["name"], body["audio"], body["text"]
    _check_lengths(doc, path, name, text)
    relative = _take_path(doc, path, audio)
    if relative is None:
        return None
    line, column = doc.where(path, key=True)
    audio_line, audio_column = doc.where((*path, "audio"))
    return Declaration(
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


def _printable_fields(doc: Document, path: Path_, body: dict[str, Any]) -> bool:
    """Whether the voice's texts are free of control characters (each one found is a
    problem: names, texts and paths reach terminals and pull-request comments)."""
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
    return clean


def _check_lengths(doc: Document, path: Path_, name: str, text: str) -> None:
    """Coze's limits on a voice's name and transcript, in UTF-8 bytes."""
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


def _take_path(doc: Document, path: Path_, audio: str) -> str | None:
    """The take's path relative to the repository (``audio`` is relative to the
    declaration file), or None when it is absolute or leaves the repository."""
    if absolute(audio):
        doc.problem(
            (*path, "audio"),
            f"{audio!r} is absolute; give a path relative to this file, inside the repository",
        )
        return None
    base = posixpath.dirname(doc.file)
    relative = posixpath.normpath(posixpath.join(base, audio.replace("\\", "/")))
    if escapes(relative):
        doc.problem((*path, "audio"), f"{audio!r} leaves the repository")
        return None
    return relative
