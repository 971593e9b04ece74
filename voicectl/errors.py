"""One exception tree for everything a user can cause.

Every error voicectl raises on purpose derives from :class:`VoicectlError` and carries
the exit status the CLI funnel uses. Anything else reaching the funnel is a bug: it
exits 3 and shows a traceback only with ``--debug``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

EXIT_USER_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


@dataclass(frozen=True, order=True)
class Problem:
    """One finding of validation, located as precisely as the input allows."""

    file: str
    line: int
    column: int
    field: str
    message: str
    severity: str = "error"  # "error" | "warning"

    def render(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.column}"
        field = f" {visible(self.field)}:" if self.field else ""
        return f"{visible(where)}: {self.severity}:{field} {visible(self.message)}"

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
            "severity": self.severity,
        }


def visible(text: str) -> str:
    """``text`` with control characters shown as escapes: a key or file name from a pull
    request must not move the terminal's cursor or split a line of the report."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class VoicectlError(Exception):
    """Base of every error a user can cause: one clear message, exit 1."""

    exit_code = EXIT_USER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(VoicectlError):
    """The repository configuration or a declaration is unusable."""


class ValidationFailed(VoicectlError):
    """Validation found errors; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        lines = "\n".join(p.render() for p in errors)
        super().__init__(f"{len(errors)} error(s) in the declarations:\n{lines}")


class StateError(VoicectlError):
    """The state file is missing, corrupt, newer than this voicectl, or locked."""


class PolicyError(VoicectlError):
    """A plan exceeds a guardrail from the repository policy."""


class UsageError(VoicectlError):
    """Command-line arguments that cannot work together or name unknown things."""
