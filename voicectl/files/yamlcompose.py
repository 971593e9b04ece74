"""YAML text composed into a graph of nodes, each marked with where it was written.

libyaml's own C composer recurses without a limit: a few hundred kilobytes of
``[[[[...`` overflow the C stack and kill the process. So the parser's events (libyaml's
when present) are composed here by a small iterative composer that caps nesting and
refuses what is malformed or unsafe; libyaml's composer runs only where it is known to
be safe and to agree (:func:`compose_in_c`).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from voicectl.files.yamldoc import Path_

LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""The project's YAML loader class: libyaml's safe loader when PyYAML has it."""
MAX_DEPTH = 64
_PATH_PARTS = 8
# Characters every level of nesting needs one of; their count bounds the depth.
_NESTING_CHARS = ("[", "{", "-", ":", "?")
_C_DEPTH_BOUND = 10_000


class Refused(Exception):
    """The composer stops: the document is malformed, unsafe or nests too deeply."""

    def __init__(self, mark: Any, message: str, path: Path_ = ()) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message
        self.path = path


def position(mark: Any) -> tuple[int, int]:
    """A parser's mark as a 1-based (line, column)."""
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def mark(node: Node) -> tuple[int, int]:
    return position(node.start_mark)


def hinted(reason: str, mark: Any, text: object = None) -> str:
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


def compose(loader: Any, text: str = "") -> Node | None:
    """One document's node graph from the parser's events, without recursion."""
    return _Composer(loader, text).document()


class _Composer:
    def __init__(self, loader: Any, text: str) -> None:
        self.loader, self.text = loader, text
        self.anchors: dict[str, Node] = {}
        self.open_anchors: set[str] = set()
        # Open collections: [node, anchor, pending mapping key or None].
        self.stack: list[list[Any]] = []

    def document(self) -> Node | None:
        loader = self.loader
        loader.get_event()  # StreamStart
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()  # DocumentStart
        root: Node | None = None
        while root is None:
            event = self._next()
            if isinstance(event, yaml.AliasEvent):
                child = self._alias(event)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                child = self._close(event)
            elif isinstance(event, yaml.ScalarEvent):
                child = self._scalar(event)
            else:
                self._open(event)
                continue
            root = self._attach(child)
        loader.get_event()  # DocumentEnd
        if not loader.check_event(yaml.StreamEndEvent):
            extra = loader.get_event()
            raise Refused(extra.start_mark, "the file holds more than one YAML document (---)")
        return root

    def _next(self) -> Any:
        try:
            return self.loader.get_event()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            reason = hinted(exc.problem or exc.context or "malformed YAML", mark, self.text)
            raise Refused(mark, f"invalid YAML: {reason}", open_path(self.stack)) from None

    def _refuse(self, event: Any, message: str) -> Refused:
        return Refused(event.start_mark, message, open_path(self.stack))

    def _alias(self, event: Any) -> Node:
        if event.anchor in self.open_anchors:
            raise self._refuse(event, f"alias *{event.anchor} refers to itself")
        if event.anchor not in self.anchors:
            raise self._refuse(event, f"alias *{event.anchor} is not defined")
        return self.anchors[event.anchor]

    def _close(self, event: Any) -> Node:
        child: Node
        child, anchor, _ = self.stack.pop()
        child.end_mark = event.end_mark
        if anchor is not None:
            self.open_anchors.discard(anchor)
            self.anchors[anchor] = child
        return child

    def _new_anchor(self, event: Any) -> str | None:
        anchor: str | None = event.anchor
        if anchor is not None and (anchor in self.anchors or anchor in self.open_anchors):
            raise self._refuse(event, f"anchor &{anchor} is defined twice")
        return anchor

    def _scalar(self, event: Any) -> Node:
        anchor = self._new_anchor(event)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(ScalarNode, event.value, event.implicit)
        child = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        if anchor is not None:
            self.anchors[anchor] = child
        return child

    def _open(self, event: Any) -> None:
        """A sequence or mapping starts: it stays open until its end event."""
        anchor = self._new_anchor(event)
        if len(self.stack) >= MAX_DEPTH:
            raise self._refuse(event, f"nests deeper than {MAX_DEPTH} levels")
        kind = SequenceNode if isinstance(event, yaml.SequenceStartEvent) else MappingNode
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(kind, None, event.implicit)
        node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
        self.stack.append([node, anchor, None])
        if anchor is not None:
            self.open_anchors.add(anchor)

    def _attach(self, child: Node) -> Node | None:
        """Put ``child`` in the collection open around it; the root when there is none."""
        stack = self.stack
        if not stack:
            return child
        if isinstance(stack[-1][0], SequenceNode):
            stack[-1][0].value.append(child)
        elif stack[-1][2] is None:
            stack[-1][2] = child
        else:
            stack[-1][0].value.append((stack[-1][2], child))
            stack[-1][2] = None
        return None


def open_path(stack: list[list[Any]]) -> Path_:
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


def compose_in_c(text: str) -> Node | None:
    """libyaml's own composer, where it is known to be safe and to agree with
    :func:`compose`; None otherwise (and for an empty document), so that the careful
    composer runs and words any problem exactly as it always does.

    Safe: without ``&`` or ``*`` there is no anchor or alias to check, and with fewer
    nesting indicators than :data:`_C_DEPTH_BOUND` its recursion cannot exhaust the C
    stack; the depth found is then held to :data:`MAX_DEPTH` like any other document.
    Any error, or more than one document, also goes back to the careful composer.
    """
    if LOADER is yaml.SafeLoader or "&" in text or "*" in text:
        return None
    if sum(text.count(c) for c in _NESTING_CHARS) >= _C_DEPTH_BOUND:
        return None
    loader = LOADER(text)
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
