"""Safe YAML loading that remembers where every value came from.

PyYAML's loaders drop positions and silently keep the last of duplicate keys. Here the
parser's events (libyaml's when present) are composed into nodes by a small iterative
composer, then built into plain Python data by a walker that records the line and
column of every value and key, reports duplicate keys, accepts only plain-data tags,
and charges every value it builds (aliases and merge keys included) against a budget
proportional to the input, so a "billion laughs" document fails fast instead of eating
the machine. The composer is iterative and caps nesting because libyaml's own C
composer recurses without a limit: a few hundred kilobytes of ``[[[[...`` overflow the
C stack and kill the process.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from voicectl.errors import Problem

Path_ = tuple[str | int, ...]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = _TAG + "merge"
_MAP_TAG, _SEQ_TAG = _TAG + "map", _TAG + "seq"
_INT_TAG = _TAG + "int"
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")
# Plain data only: no python/*, no binary, set, omap or application tags.
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
# Parsing YAML takes about 70 times a file's size in memory: 4 MiB (some 25,000 voices
# in one file) stays within a few hundred MB; more voices belong in more files.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
# Values built beyond one per character of input; aliases and merge keys may repeat
# subtrees, but a document may not expand to far more values than it has characters.
_EXPANSION_SLACK = 10_000
_SHOW_CHARS = 60

_UTF16_32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"\xff\xfe", b"\xfe\xff")


def show(value: object) -> str:
    """``repr(value)`` cut to a readable length: messages must not echo huge inputs."""
    text = repr(value)
    if len(text) <= _SHOW_CHARS:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters"
    return f"{text[: _SHOW_CHARS - 10]}... ({size})"


def dotted(path: Path_) -> str:
    parts = [str(part) for part in path]
    return ".".join(p if len(p) <= _SHOW_CHARS else p[: _SHOW_CHARS - 3] + "..." for p in parts)


@dataclass
class Document:
    """Loaded YAML data with the (line, column) of each value and mapping key."""

    file: str
    data: Any = None
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # Values the loader already reported (and left empty): a schema check would only
    # repeat the problem in other words.
    reported: set[Path_] = field(default_factory=set)
    # (line, column, message) of each problem() made: a set, so that checking costs the
    # same however many problems a large file has.
    _made: set[tuple[int, int, str]] = field(default_factory=set, repr=False)

    def was_reported(self, path: Path_) -> bool:
        return any(path[:i] in self.reported for i in range(len(path) + 1))

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
        # An aliased subtree is built once per alias: report each fault in it once.
        if (line, column, message) not in self._made:
            self._made.add((line, column, message))
            self.problems.append(p)
        return p

    def at(self, line: int, column: int, message: str) -> None:
        """A problem of the file as a whole (encoding, syntax): located, no field."""
        self.problems.append(Problem(self.file, line, column, "", message))


class _Refused(Exception):
    """The composer stops: the document is malformed, unsafe or nests too deeply."""

    def __init__(self, mark: Any, message: str, path: Path_ = ()) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message
        self.path = path


_PATH_PARTS = 8


def _open_path(stack: list[list[Any]]) -> Path_:
    """The key path of the value being composed, from the open collections."""
    path: list[str | int] = []
    for node, _, pending in stack:
        if isinstance(node, SequenceNode):
            path.append(len(node.value))
        elif isinstance(pending, ScalarNode):
            path.append(str(pending.value))
        else:  # a key is being composed: its own path is its parent's
            break
    if len(path) > _PATH_PARTS:
        return (*path[: _PATH_PARTS - 1], f"{path[_PATH_PARTS - 1]}...")
    return tuple(path)


def _hinted(reason: str, mark: Any, text: object = None) -> str:
    """PyYAML's reason, with what a person usually did to get it."""
    source = text if isinstance(text, str) else getattr(mark, "buffer", None)
    index = getattr(mark, "index", None)
    at = (
        source[index]
        if isinstance(source, str) and isinstance(index, int) and index < len(source)
        else ""
    )
    if "cannot start any token" in reason and (at == "\t" or "'\\t'" in reason):
        return "a tab: YAML indents with spaces only"
    if "mapping values are not allowed" in reason:
        return f"{reason}: a value holding ': ' must be quoted, e.g. text: \"Note: ...\""
    return reason


def _position(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _mark(node: Node) -> tuple[int, int]:
    return _position(node.start_mark)


def _compose(loader: Any, text: str = "") -> Node | None:
    """One document's node graph from the parser's events, without recursion."""
    loader.get_event()  # StreamStart
    if loader.check_event(yaml.StreamEndEvent):
        return None
    loader.get_event()  # DocumentStart
    anchors: dict[str, Node] = {}
    open_anchors: set[str] = set()
    # Open collections: [node, anchor, pending mapping key or None].
    stack: list[list[Any]] = []
    root: Node | None = None
    while root is None:
        try:
            event: Any = loader.get_event()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            reason = _hinted(exc.problem or exc.context or "malformed YAML", mark, text)
            raise _Refused(mark, f"invalid YAML: {reason}", _open_path(stack)) from None
        child: Node
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors:
                raise _Refused(
                    event.start_mark,
                    f"alias *{event.anchor} refers to itself",
                    _open_path(stack),
                )
            if event.anchor not in anchors:
                raise _Refused(
                    event.start_mark, f"alias *{event.anchor} is not defined", _open_path(stack)
                )
            child = anchors[event.anchor]
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            child, anchor, _ = stack.pop()
            child.end_mark = event.end_mark
            if anchor is not None:
                open_anchors.discard(anchor)
                anchors[anchor] = child
        else:
            anchor = event.anchor
            if anchor is not None and (anchor in anchors or anchor in open_anchors):
                raise _Refused(
                    event.start_mark, f"anchor &{anchor} is defined twice", _open_path(stack)
                )
            tag, start, end = event.tag, event.start_mark, event.end_mark
            if isinstance(event, yaml.ScalarEvent):
                if tag is None or tag == "!":
                    tag = loader.resolve(ScalarNode, event.value, event.implicit)
                child = ScalarNode(tag, event.value, start, end, style=event.style)
                if anchor is not None:
                    anchors[anchor] = child
            else:
                if len(stack) >= MAX_DEPTH:
                    raise _Refused(
                        event.start_mark,
                        f"nests deeper than {MAX_DEPTH} levels",
                        _open_path(stack),
                    )
                kind = SequenceNode if isinstance(event, yaml.SequenceStartEvent) else MappingNode
                if tag is None or tag == "!":
                    tag = loader.resolve(kind, None, event.implicit)
                node = kind(tag, [], start, None, flow_style=event.flow_style)
                stack.append([node, anchor, None])
                if anchor is not None:
                    open_anchors.add(anchor)
                continue
        if not stack:
            root = child
        elif isinstance(stack[-1][0], SequenceNode):
            stack[-1][0].value.append(child)
        elif stack[-1][2] is None:
            stack[-1][2] = child
        else:
            stack[-1][0].value.append((stack[-1][2], child))
            stack[-1][2] = None
    loader.get_event()  # DocumentEnd
    if not loader.check_event(yaml.StreamEndEvent):
        extra = loader.get_event()
        raise _Refused(extra.start_mark, "the file holds more than one YAML document (---)")
    return root


class _Bomb(Exception):
    """The budget ran out; ``path`` is where the outermost repeated subtree was used."""

    def __init__(self, path: Path_) -> None:
        self.path = path


class _Builder:
    def __init__(self, doc: Document, budget: int) -> None:
        self.doc = doc
        self.budget = budget
        self.ctor = SafeConstructor()
        self.built: set[int] = set()  # ids of collection nodes built once already
        self.repeating: Path_ | None = None  # the value whose alias is being expanded

    def build(self, node: Node, path: Path_, within: Path_ | None = None) -> Any:
        """Plain data for ``node`` at ``path``; ``within`` is the value holding it."""
        self.budget -= 1
        if self.budget < 0:
            raise _Bomb(self.repeating if self.repeating is not None else path)
        self.doc.values.setdefault(path, _mark(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        outermost = self.repeating is None and id(node) in self.built
        if outermost:  # an alias: blame the value that uses it
            self.repeating = path[:-1] if within is None else within
        self.built.add(id(node))
        try:
            if isinstance(node, MappingNode):
                if node.tag != _MAP_TAG:
                    return self._refuse_tag(node, path)
                return self._mapping(node, path)
            if node.tag != _SEQ_TAG:
                return self._refuse_tag(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            if outermost:
                self.repeating = None

    def _refuse_tag(self, node: Node, path: Path_) -> None:
        tag = node.tag.replace(_TAG, "!!")
        self.doc.problem(path, f"tag {show(tag)} is not allowed (only plain YAML data)")
        self.doc.reported.add(path)
        return None

    def _scalar(self, node: Node, path: Path_) -> Any:
        if node.tag not in _SCALAR_TAGS:
            return self._refuse_tag(node, path)
        if node.tag == _INT_TAG and not _DECIMAL.fullmatch(node.value):
            # YAML 1.1 reads 190:20:30 as base 60, 0755 as octal, 0x1f, 0b11 and 1_000
            # too: an id written so would silently become another number.
            self.doc.problem(
                path,
                f"{show(node.value)} would be read as a YAML 1.1 {_notation(node.value)}, "
                "not as written: quote it, or write it in plain decimal digits",
            )
            self.doc.reported.add(path)
            return None
        try:
            return self.ctor.yaml_constructors[node.tag](self.ctor, node)
        except (ConstructorError, ValueError, OverflowError) as exc:
            self.doc.problem(path, f"unreadable value: {exc}")
            self.doc.reported.add(path)
            return None

    def _merged(self, node: Node, path: Path_) -> dict[Any, Any]:
        """The mappings named by a ``<<`` key; the first one listed wins."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        result: dict[Any, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, MappingNode):
                self.doc.problem(path, "a merge key (<<) must name a mapping or a list of them")
                continue
            built = self.build(source, path, within=path)
            if isinstance(built, dict):
                result.update(built)
        return result

    def _mapping(self, node: MappingNode, path: Path_) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                result.update(self._merged(value_node, path))
        seen: dict[Any, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            child: Path_ = (*path, key)
            if key in seen:
                line, _ = seen[key]
                self.doc.keys[child] = _mark(key_node)
                self.doc.problem(
                    child,
                    f"duplicate key {show(key)} (first at line {line}); "
                    "YAML would silently keep only the last",
                    key=True,
                )
                continue
            seen[key] = _mark(key_node)
            self.doc.keys[child] = _mark(key_node)
            self.doc.values.pop(child, None)  # a merged default is overridden
            result[key] = self.build(value_node, child)
        return result

    def _key(self, node: Node, path: Path_) -> str | None:
        """A key as written: ``007``, ``yes`` and ``1.0`` stay text, as names should."""
        if not isinstance(node, ScalarNode):
            self.doc.values.setdefault((*path, "?"), _mark(node))
            self.doc.problem((*path, "?"), "mapping keys must be plain scalars")
            return None
        if node.tag not in _SCALAR_TAGS:
            self._refuse_tag(node, path)
            return None
        return str(node.value)


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


# Characters every level of nesting needs one of; their count bounds the depth.
_NESTING_CHARS = ("[", "{", "-", ":", "?")
_C_DEPTH_BOUND = 10_000


def _compose_in_c(text: str) -> Node | None:
    """libyaml's own composer, where it is known to be safe and to agree with
    :func:`_compose`; None otherwise (and for an empty document), so that the careful
    composer runs and words any problem exactly as it always does.

    Safe: without ``&`` or ``*`` there is no anchor or alias to check, and with fewer
    nesting indicators than :data:`_C_DEPTH_BOUND` its recursion cannot exhaust the C
    stack; the depth found is then held to :data:`MAX_DEPTH` like any other document.
    Any error, or more than one document, also goes back to the careful composer.
    """
    if _Loader is yaml.SafeLoader or "&" in text or "*" in text:
        return None
    if sum(text.count(c) for c in _NESTING_CHARS) >= _C_DEPTH_BOUND:
        return None
    loader = _Loader(text)
    try:
        node: Node | None = loader.get_single_node()
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    if node is None or _depth(node) > MAX_DEPTH:
        return None
    return node


def _depth(root: Node) -> int:
    """How deeply collections nest in a tree of nodes (no aliases: it is a tree)."""
    deepest, pending = 0, [(root, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, ScalarNode):
            continue
        depth += 1
        deepest = max(deepest, depth)
        if isinstance(node, SequenceNode):
            pending.extend((child, depth) for child in node.value)
        else:
            for key, value in node.value:
                pending.append((key, depth))
                pending.append((value, depth))
    return deepest


def load_text(text: str, file: str, *, fast: bool = True, loader_class: Any = None) -> Document:
    """Compose and build one YAML document; problems are collected, never raised.

    ``fast=False`` always uses the careful composer (tests compare the two).
    """
    loader_class = loader_class or _Loader
    doc = Document(file)
    composed = _compose_in_c(text) if fast else None
    loader = None if composed is not None else loader_class(text)  # only to fall back
    try:
        node = composed if loader is None else _compose(loader, text)
        if node is not None:
            doc.data = _Builder(doc, budget=len(text) + _EXPANSION_SLACK).build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = _hinted(exc.problem or exc.context or "malformed YAML", mark, text)
        doc.at(*_position(mark), f"invalid YAML: {reason}")
        doc.data = None
    except yaml.YAMLError as exc:
        doc.at(1, 1, f"invalid YAML: {exc}")
        doc.data = None
    except _Refused as exc:
        if "maximum nesting depth" in exc.message and loader_class is not yaml.SafeLoader:
            # libyaml (0.2.5+) scans ahead and stops at its own depth limit before the
            # composer reaches MAX_DEPTH: compose with the Python scanner instead, so
            # the message names the level and the field as for any other document.
            return load_text(text, file, fast=False, loader_class=yaml.SafeLoader)
        line, column = _position(exc.mark)
        doc.problems.append(Problem(file, line, column, dotted(exc.path), exc.message))
        doc.data = None
    except _Bomb as exc:  # point at the value whose aliases or merge keys explode
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

    For error messages only: JSON is YAML, so the composer marks every node.
    """
    try:
        node = yaml.compose(
            raw.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )
        for step in path:
            if isinstance(node, yaml.MappingNode):
                node = next(v for k, v in node.value if k.value == step)
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                node = node.value[step]
            else:
                return None
    except (yaml.YAMLError, StopIteration, IndexError, UnicodeDecodeError):
        return None
    if node is None:
        return None
    return node.start_mark.line + 1, node.start_mark.column + 1


def _notation(digits: str) -> str:
    """Which of YAML 1.1's integer notations ``digits`` (not plain decimal) is in."""
    bare = digits.lstrip("+-")
    if ":" in bare:
        return "base-60 number (as hours:minutes:seconds)"
    if bare[:2] in ("0x", "0X"):
        return "hexadecimal number"
    if bare[:2] in ("0b", "0B"):
        return "binary number"
    if "_" in bare:
        return "number with its underscores dropped"
    return "octal number (a leading 0)"
