"""Safe YAML loading that remembers where every value came from.

PyYAML's loaders drop positions and silently keep the last of duplicate keys. Here a
document is composed into nodes (libyaml's CSafeLoader when present) and built into
plain Python data by a small walker that records the line and column of every value
and key, reports duplicate keys, refuses non-safe tags, and caps alias expansion so a
"billion laughs" document fails fast instead of eating the machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from voicectl.errors import Problem

Path_ = tuple[str | int, ...]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_FILE_BYTES = 64 * 1024 * 1024
# Node visits allowed beyond one per byte of input; aliases may repeat subtrees, but a
# document may not expand to far more nodes than it has characters.
_EXPANSION_SLACK = 10_000

_UTF16_32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"\xff\xfe", b"\xfe\xff")


@dataclass
class Document:
    """Loaded YAML data with the (line, column) of each value and mapping key."""

    file: str
    data: Any = None
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def where(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """Position of the value (or key) at ``path``, else of its nearest ancestor."""
        table = self.keys if key else self.values
        if path in table:
            return table[path]
        while path:
            path = path[:-1]
            if path in self.values:
                return self.values[path]
        return (1, 1)

    def problem(
        self,
        path: Path_,
        message: str,
        *,
        key: bool = False,
        severity: str = "error",
        field_name: str | None = None,
    ) -> Problem:
        line, column = self.where(path, key=key)
        name = field_name if field_name is not None else dotted(path)
        p = Problem(self.file, line, column, name, message, severity)
        self.problems.append(p)
        return p


def dotted(path: Path_) -> str:
    return ".".join(str(part) for part in path)


class _TooLarge(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


class _Builder:
    def __init__(self, doc: Document, budget: int) -> None:
        self.doc = doc
        self.budget = budget
        self.ctor = SafeConstructor()

    def build(self, node: Node, path: Path_) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge(node)
        self.doc.values.setdefault(path, _mark(node))
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: Node, path: Path_) -> Any:
        constructor = self.ctor.yaml_constructors.get(node.tag)
        if constructor is None or not isinstance(node, ScalarNode):
            self.doc.problem(path, f"tag {node.tag!r} is not allowed (only plain YAML data)")
            return None
        try:
            return constructor(self.ctor, node)
        except (ConstructorError, ValueError) as exc:
            self.doc.problem(path, f"unreadable value: {exc}")
            return None

    def _mapping(self, node: MappingNode, path: Path_) -> dict[Any, Any]:
        own = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
        merged: list[tuple[Node, Node]] = []
        if len(own) != len(node.value):
            try:
                copy = MappingNode(node.tag, list(node.value), node.start_mark, node.end_mark)
                self.ctor.flatten_mapping(copy)
                merged = copy.value[: len(copy.value) - len(own)]
            except ConstructorError as exc:
                self.doc.problem(path, f"bad merge key: {exc.problem}")
        result: dict[Any, Any] = {}
        for key_node, value_node in merged:
            key = self._key(key_node, path)
            if key is not None:
                result[key] = self.build(value_node, (*path, key))
        seen: dict[Any, tuple[int, int]] = {}
        for key_node, value_node in own:
            key = self._key(key_node, path)
            if key is None:
                continue
            child: Path_ = (*path, key)
            if key in seen:
                line, _ = seen[key]
                self.doc.keys[child] = _mark(key_node)
                self.doc.problem(
                    child,
                    f"duplicate key {key!r} (first at line {line}); "
                    "YAML would silently keep only the last",
                    key=True,
                )
                continue
            seen[key] = _mark(key_node)
            self.doc.keys[child] = _mark(key_node)
            self.doc.values.pop(child, None)  # a merged default is overridden
            result[key] = self.build(value_node, child)
        return result

    def _key(self, node: Node, path: Path_) -> str | int | None:
        if not isinstance(node, ScalarNode):
            self.doc.values.setdefault((*path, "?"), _mark(node))
            self.doc.problem((*path, "?"), "mapping keys must be plain scalars")
            return None
        key = self._scalar(node, path)
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            return str(node.value)
        return key


def _mark(node: Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def decode(raw: bytes, doc: Document) -> str | None:
    """Decode YAML bytes as UTF-8 (a UTF-8 BOM is dropped); report anything else."""
    if raw.startswith(_UTF16_32_BOMS) and not raw.startswith(b"\xef\xbb\xbf"):
        doc.problems.append(
            Problem(doc.file, 1, 1, "", "the file is UTF-16 or UTF-32 encoded; save it as UTF-8")
        )
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        doc.problems.append(
            Problem(
                doc.file,
                line,
                column,
                "",
                f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
            )
        )
        return None
    return text.removeprefix("\ufeff")


def load_text(text: str, file: str) -> Document:
    """Compose and build one YAML document; problems are collected, never raised."""
    doc = Document(file)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or exc.context or "malformed YAML"
        doc.problems.append(Problem(file, line, column, "", f"invalid YAML: {reason}"))
        return doc
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(file, 1, 1, "", f"invalid YAML: {exc}"))
        return doc
    if node is None:
        doc.data = None
        return doc
    builder = _Builder(doc, budget=len(text) + _EXPANSION_SLACK)
    try:
        doc.data = builder.build(node, ())
    except _TooLarge as exc:
        line, column = _mark(exc.node)
        doc.problems.append(
            Problem(
                file,
                line,
                column,
                "",
                "the document expands to too many values through aliases (a YAML alias bomb?)",
            )
        )
        doc.data = None
    except RecursionError:
        doc.problems.append(Problem(file, 1, 1, "", "the document nests too deeply"))
        doc.data = None
    return doc


def load_bytes(raw: bytes, file: str) -> Document:
    doc = Document(file)
    text = decode(raw, doc)
    if text is None:
        return doc
    return load_text(text, file)
