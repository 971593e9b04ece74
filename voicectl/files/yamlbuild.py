"""A composed YAML node graph built into plain Python data, remembering where each value
and key was written.

Only plain-data tags are accepted; duplicate keys are reported, not silently dropped;
an integer YAML 1.1 would read in another base is refused; and every value built
(aliases and merge keys included) is charged against a budget proportional to the
input, so a "billion laughs" document fails fast instead of eating the machine.
"""

from __future__ import annotations

import re
from typing import Any

from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from voicectl.files.yamlcompose import mark
from voicectl.files.yamldoc import Document, Path_, show

_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = _TAG + "merge"
_MAP_TAG, _SEQ_TAG = _TAG + "map", _TAG + "seq"
_INT_TAG = _TAG + "int"
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")
# Plain data only: no python/*, no binary, set, omap or application tags.
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))


class Bomb(Exception):
    """The budget ran out; ``path`` is where the outermost repeated subtree was used."""

    def __init__(self, path: Path_) -> None:
        self.path = path


class Builder:
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
            raise Bomb(self.repeating if self.repeating is not None else path)
        self.doc.values.setdefault(path, mark(node))
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
                self.doc.keys[child] = mark(key_node)
                self.doc.problem(
                    child,
                    f"duplicate key {show(key)} (first at line {line}); "
                    "YAML would silently keep only the last",
                    key=True,
                )
                continue
            seen[key] = mark(key_node)
            self.doc.keys[child] = mark(key_node)
            self.doc.values.pop(child, None)  # a merged default is overridden
            result[key] = self.build(value_node, child)
        return result

    def _key(self, node: Node, path: Path_) -> str | None:
        """A key as written: ``007``, ``yes`` and ``1.0`` stay text, as names should."""
        if not isinstance(node, ScalarNode):
            self.doc.values.setdefault((*path, "?"), mark(node))
            self.doc.problem((*path, "?"), "mapping keys must be plain scalars")
            return None
        if node.tag not in _SCALAR_TAGS:
            self._refuse_tag(node, path)
            return None
        return str(node.value)


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
