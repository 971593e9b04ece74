"""One exception tree for everything a user can cause.

Every error voicectl raises on purpose derives from :class:`VoicectlError` and carries
the exit status the CLI funnel uses. Anything else reaching the funnel is a bug: it
exits 3 and shows a traceback only with ``--debug``.
"""

from __future__ import annotations

import enum
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

    def __init__(self, message: str, hint: str | None = None) -> None:
        # The hint, when there is one, says what to do; it ends the one line shown.
        self.message = f"{message}; {hint}" if hint else message
        self.hint = hint
        super().__init__(self.message)


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


class StaleWrite(StateError):
    """What is stored is not the state a write began from: nothing was written."""


class PolicyError(VoicectlError):
    """A plan exceeds a guardrail from the repository policy."""


class UsageError(VoicectlError):
    """Command-line arguments that cannot work together or name unknown things."""


class SavedPlanError(VoicectlError):
    """A saved plan file that cannot be read, or that no longer matches its inputs."""


class TakeChanged(VoicectlError):
    """The take on disk is not the one the plan showed; nothing was sent whole."""


class WaitBudgetSpent(VoicectlError):
    """The next wait would pass the command's wait budget: the request it was for is not
    sent (every wait comes before a send, so nothing it would carry out has begun)."""


# -- Coze's replies (what each proves is voicectl.coze.replies's to say) ----------------


class Verdict(enum.Enum):
    THROTTLED = "throttled"  # refused for its rate: nothing committed, send again after a wait
    REFUSED = "refused"  # a request error: nothing committed, and sending again cannot help
    UNKNOWN = "unknown"  # may have been committed: look on the account before any resend


class TransportError(VoicectlError):
    """Coze could not be reached or did not answer; for a clone see OutcomeUnknown."""


class ListingIncomplete(TransportError):
    """Coze's voice list could not be read to its end: it proves nothing about absence."""

    def __init__(self, why: str, *, started: bool = True) -> None:
        super().__init__(
            f"Coze's voice list could not be read to its end ({why}); nothing is concluded "
            "from it about the voices it did not show"
            if started  # some pages were read: what they lack proves nothing
            else f"Coze's voice list could not be read: {why}"
        )


class OutcomeUnknown(VoicectlError):
    """A clone request may have reached Coze and no reply proves what became of it.

    Nor does any reply prove the request is over: a gateway may answer in Coze's own
    format while Coze trains on, so its result may appear on the list long after a quick
    look finds nothing."""


class CozeError(VoicectlError):
    """A reply from Coze that is not a success; carries code, msg, logid and the verdict
    (made by :func:`voicectl.coze.replies.coze_error`, which judges it).

    ``code`` is None when the reply was not Coze's envelope at all (then ``msg`` shows
    the start of the body), or when its ``code`` was not an integer: a reply that names a
    code, whatever its type, is never a bare 429 that proves a rate refusal.
    """

    def __init__(
        self,
        code: int | None,
        msg: str,
        logid: str,
        http_status: int,
        verdict: Verdict,
        hint: str | None = None,
    ) -> None:
        self.code, self.msg, self.logid, self.http_status = code, msg, logid, http_status
        self.verdict = verdict
        if code is None:
            text = f"Coze's reply was not its JSON envelope (HTTP {http_status}): {msg}"
        else:
            text = f"Coze error {code}: {msg or '(no message)'}"
        super().__init__(f"{text} (logid {logid or 'none'})", hint)


class Ambiguous(VoicectlError):
    """Several remote voices could be the result of one lost clone."""
