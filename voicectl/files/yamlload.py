"""Safe YAML loading that remembers where every value came from: the one way voicectl
reads YAML (and locates a value in JSON, which is YAML).

PyYAML's loaders drop positions and silently keep the last of duplicate keys. Here the
bytes are decoded (UTF-8 only, every other encoding named), the text is composed into
nodes (:mod:`voicectl.files.yamlcompose`: iterative, nesting capped) and built into
plain data (:mod:`voicectl.files.yamlbuild`: positions, duplicate keys, plain-data tags,
an expansion budget) in a :class:`~voicectl.files.yamldoc.Document`. Problems are
collected in the document, never raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from voicectl.errors import Problem
from voicectl.files.yamlbuild import Bomb, Builder
from voicectl.files.yamlcompose import LOADER, Refused, compose, compose_in_c, hinted, position
from voicectl.files.yamldoc import Document, dotted

# Parsing YAML takes about 70 times a file's size in memory: 4 MiB (some 25,000 voices
# in one file) stays within a few hundred MB; more voices belong in more files.
MAX_FILE_BYTES = 4 * 1024 * 1024
# Values built beyond one per character of input; aliases and merge keys may repeat
# subtrees, but a document may not expand to far more values than it has characters.
_EXPANSION_SLACK = 10_000

_UTF16_32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"\xff\xfe", b"\xfe\xff")


def decode(raw: bytes, doc: Document) -> str | None:
    """Decode YAML bytes as UTF-8 (a UTF-8 BOM is dropped); report anything else."""
    if raw.startswith(_UTF16_32_BOMS) and not raw.startswith(b"\xef\xbb\xbf"):
        doc.at(1, 1, "the file is UTF-16 or UTF-32 encoded (it has a BOM); save it as UTF-8")
        return None
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, column = _byte_position(raw, nul)
        doc.at(line, column, "the file holds NUL bytes (UTF-16 or UTF-32 text?); save it as UTF-8")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(raw, exc.start)
        doc.problems.append(
            Problem(
                doc.file,
                line,
                column,
                _field_at(raw, line, column),
                f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
            )
        )
        return None
    return text.removeprefix("\ufeff")


def _field_at(raw: bytes, line: int, column: int) -> str:
    """The field a position falls in, read from the text with bad bytes replaced."""
    text = raw.decode("utf-8", errors="replace").removeprefix("\ufeff")
    values = load_text(text, "").values
    before = [p for p, at in values.items() if at[0] == line and at[1] <= column]
    return dotted(max(before, key=lambda p: values[p][1])) if before else ""


def _byte_position(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    start = raw.rfind(b"\n", 0, offset) + 1
    column = len(raw[start:offset].decode("utf-8", errors="replace")) + 1
    return line, column


def load_text(text: str, file: str, *, fast: bool = True, loader_class: Any = None) -> Document:
    """Compose and build one YAML document; problems are collected, never raised.

    ``fast=False`` always uses the careful composer (tests compare the two).
    """
    loader_class = loader_class or LOADER
    doc = Document(file)
    composed = compose_in_c(text) if fast else None
    loader = None if composed is not None else loader_class(text)  # only to fall back
    try:
        node = composed if loader is None else compose(loader, text)
        if node is not None:
            doc.data = Builder(doc, budget=len(text) + _EXPANSION_SLACK).build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = hinted(exc.problem or exc.context or "malformed YAML", mark, text)
        doc.at(*position(mark), f"invalid YAML: {reason}")
        doc.data = None
    except yaml.YAMLError as exc:
        doc.at(1, 1, f"invalid YAML: {exc}")
        doc.data = None
    except Refused as exc:
        if "maximum nesting depth" in exc.message and loader_class is not yaml.SafeLoader:
            # libyaml (0.2.5+) scans ahead and stops at its own depth limit before the
            # composer reaches MAX_DEPTH: compose with the Python scanner instead, so
            # the message names the level and the field as for any other document.
            return load_text(text, file, fast=False, loader_class=yaml.SafeLoader)
        line, column = position(exc.mark)
        doc.problems.append(Problem(file, line, column, dotted(exc.path), exc.message))
        doc.data = None
    except Bomb as exc:  # point at the value whose aliases or merge keys explode
        doc.problem(
            exc.path,
            "expands to too many values through aliases or merge keys (a YAML alias bomb?)",
        )
        doc.data = None
    except RecursionError:  # a long chain of merge keys; nesting itself is capped
        doc.at(1, 1, "the document nests too deeply")
        doc.data = None
    finally:
        if loader is not None:
            loader.dispose()
    return doc


def load_bytes(raw: bytes, file: str) -> Document:
    doc = Document(file)
    text = decode(raw, doc)
    if text is None:
        return doc
    return load_text(text, file)


def json_position(raw: bytes, path: Sequence[str | int]) -> tuple[int, int] | None:
    """1-based (line, column) of the value at ``path`` in a JSON document, or None.

    For error messages only: JSON is YAML, so the loader marks every value (its composer
    iterative and its nesting capped, as for any file a pull request can edit).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return load_text(text, "").values.get(tuple(path))
