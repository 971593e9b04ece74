"""The repository: voicectl.yaml and the voice declarations it points to.

Loading collects every problem (file, line, column, field) before anything is
reported; nothing here raises on bad input except through :class:`ValidationFailed`.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import ValidationError

from voicectl import schemas
from voicectl.errors import ConfigError, Problem
from voicectl.model import LANGUAGES, Declaration
from voicectl.yamlload import MAX_FILE_BYTES, Document, Path_, dotted, load_bytes

CONFIG_FILE = "voicectl.yaml"
DEFAULT_VOICES = ("voices/**/*.yaml",)
DEFAULT_STATE = "state/voicectl.state.json"
NAME_MAX_BYTES = 128
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
    max_one_time_cny: int | None = None

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


def _read(path: Path, display: str) -> Document:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            doc = Document(display)
            doc.problems.append(
                Problem(
                    display,
                    0,
                    0,
                    "",
                    f"file too large ({size} bytes; the limit is {MAX_FILE_BYTES})",
                )
            )
            return doc
        raw = path.read_bytes()
    except OSError as exc:
        doc = Document(display)
        doc.problems.append(Problem(display, 0, 0, "", f"cannot read: {exc.strerror}"))
        return doc
    return load_bytes(raw, display)


def _schema_problems(doc: Document, schema: str) -> None:
    for error in sorted(schemas.validator(schema).iter_errors(doc.data), key=_error_key):
        _report_schema_error(doc, error)


def _error_key(error: ValidationError) -> tuple[str, str]:
    return (dotted(tuple(error.absolute_path)), error.message)


def _report_schema_error(doc: Document, error: ValidationError) -> None:
    path: Path_ = tuple(error.absolute_path)
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(schema.get("properties", {}))
        for extra in sorted(k for k in error.instance if k not in allowed):
            hint = ", ".join(sorted(allowed))
            doc.problem((*path, extra), f"unknown field {extra!r} (allowed: {hint})", key=True)
        return
    if kind == "propertyNames":
        bad = str(error.instance)
        doc.problem(
            (*path, bad),
            f"address {bad!r} must be lower-case letters, digits, "
            "'_', '.' or '-', starting with a letter or digit",
            key=True,
        )
        return
    if kind == "required":
        doc.problem(path, error.message.replace("is a required property", "is required"))
        return
    if kind == "pattern" and path and path[-1] == "space":
        doc.problem(path, f"{error.instance!r} is not a Coze workspace id (digits only)")
        return
    if kind == "enum":
        values = error.validator_value
        options = ", ".join(str(v) for v in values) if isinstance(values, list) else str(values)
        doc.problem(path, f"{error.instance!r} is not one of {options}")
        return
    doc.problem(path, error.message)


def load_config(root: Path) -> tuple[Config, list[Problem]]:
    """Read voicectl.yaml at ``root``; problems are returned, not raised."""
    doc = _read(root / CONFIG_FILE, CONFIG_FILE)
    if doc.problems:
        return Config(root=root), doc.problems
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        doc.problem((), "voicectl.yaml must be a mapping")
        return Config(root=root), doc.problems
    doc.data = data
    _schema_problems(doc, "config")
    voices = tuple(data.get("voices") or DEFAULT_VOICES)
    for i, pattern in enumerate(voices):
        if isinstance(pattern, str) and _escapes(pattern):
            doc.problem(("voices", i), f"pattern {pattern!r} must stay inside the repository")
    state = data.get("state", DEFAULT_STATE)
    if isinstance(state, str) and _escapes(state):
        doc.problem(("state",), f"state path {state!r} must stay inside the repository")
    if doc.problems:
        return Config(root=root), doc.problems
    defaults: dict[str, Any] = data.get("defaults") or {}
    policy: dict[str, Any] = data.get("policy") or {}
    return Config(
        root=root,
        voices=voices,
        state=state,
        default_space=_space(defaults.get("space")),
        default_language=defaults.get("language"),
        api_base=defaults.get("api_base"),
        max_new_voices=policy.get("max_new_voices"),
        max_one_time_cny=policy.get("max_one_time_cny"),
    ), []


def _absolute(path: str) -> bool:
    return path.startswith(("/", "\\")) or os.path.isabs(path) or ":" in path[:3]


def _escapes(relative: str) -> bool:
    """True when a repository-relative path is absolute or climbs out of the root."""
    if _absolute(relative):
        return True
    normal = posixpath.normpath(relative.replace("\\", "/"))
    return normal == ".." or normal.startswith("../")


def declaration_files(config: Config) -> list[Path]:
    found: set[Path] = set()
    for pattern in config.voices:
        for path in config.root.glob(pattern):
            if path.is_file():
                found.add(path)
    return sorted(found)


def load_declarations(config: Config) -> Loaded:
    """Load and check every declaration file named by the config's globs."""
    loaded = Loaded()
    first_seen: dict[str, Declaration] = {}
    files = declaration_files(config)
    if not files:
        patterns = ", ".join(config.voices)
        loaded.problems.append(
            Problem(
                CONFIG_FILE, 0, 0, "voices", f"no declaration file matches {patterns}", "warning"
            )
        )
    for path in files:
        display = path.relative_to(config.root).as_posix()
        loaded.files.append(display)
        doc = _read(path, display)
        if not doc.problems:
            if not isinstance(doc.data, dict):
                doc.problem(
                    (), "a declaration file must be a mapping with a top-level `voices:` key"
                )
            else:
                _schema_problems(doc, "voices")
        for decl in _declarations(doc, config):
            earlier = first_seen.get(decl.address)
            if earlier is not None:
                doc.problem(
                    ("voices", decl.address),
                    f"address {decl.address!r} is already "
                    f"declared at {earlier.file}:{earlier.line}",
                    key=True,
                )
                continue
            first_seen[decl.address] = decl
            loaded.declarations.append(decl)
        loaded.problems.extend(doc.problems)
    loaded.problems.sort()
    return loaded


def _declarations(doc: Document, config: Config) -> Iterable[Declaration]:
    voices = doc.data.get("voices") if isinstance(doc.data, dict) else None
    if not isinstance(voices, dict):
        return
    base = posixpath.dirname(doc.file)
    for address, body in voices.items():
        if not isinstance(body, dict) or not isinstance(address, str):
            continue
        path: Path_ = ("voices", address)
        fields_ok = all(isinstance(body.get(k), str) for k in ("name", "audio", "text"))
        language = body.get("language", config.default_language)
        if "language" not in body and language is None:
            doc.problem(
                path,
                "language is required (or set defaults.language in voicectl.yaml)",
                field_name=f"voices.{address}.language",
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
