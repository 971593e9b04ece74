"""A YAML document as loaded: its plain data, where each value and key was written, and
the problems found, each located; and how a value or a key path is shown in a message.

No YAML here: :mod:`voicectl.files.yamlload` fills a Document in, and the checks of the
declarations and of voicectl.yaml read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voicectl.errors import Problem

Path_ = tuple[str | int, ...]

_SHOW_CHARS = 60


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
