"""What an interrupted apply left, as read-only commands see it.

The journal of an apply that did not finish holds clones not yet in the state. A plan
or a drift check reads the state as the journal leaves it and says so; only apply
(:mod:`voicectl.apply.recovery`) settles and folds it. Read path only: nothing here sends or
writes anything.
"""

from __future__ import annotations

from pathlib import Path

from voicectl.coze.replies import Seal
from voicectl.model import NEW_VOICE_ACTIONS, State
from voicectl.state.journal import journal_path
from voicectl.state.replay import replay, sealed

INTERRUPTED = "an apply was interrupted"  # how pending_warning's warning of one begins


def pending_warning(
    state_path: Path,
    current: State,
    ours: Seal | None = None,
    name: str = "",
) -> tuple[State, str]:
    """For read-only commands: the state as the journal leaves it, and a warning if any.
    ``ours`` (given a token) checks the journal was written with this token and API base:
    one it does not vouch for is not shown as part of the state (apply will not fold it)."""
    path = journal_path(state_path)
    name = name or path.name  # how the journal is named to the person
    replayed = replay(path, current)
    if replayed is None or replayed.stale:
        return current, ""
    if ours is not None and not sealed(path, ours):
        return current, (
            f"{name}, an apply journal, was not written with this COZE_API_TOKEN and "
            "COZE_API_BASE: the clones it records are not shown, and `voicectl apply` will "
            "not fold them (see its message)"
        )
    doubtful = sorted({p.change.address for p in replayed.pending})
    which = f": {', '.join(doubtful)}" if doubtful else ""
    return replayed.state, (
        f"{INTERRUPTED} ({name} holds {replayed.entries} entries, "
        f"{len(replayed.pending)} clone(s) of unknown outcome{which}); `voicectl apply` "
        "recovers it"
    )


def unknown(state_path: Path, current: State) -> frozenset[str]:
    """Every address an interrupted apply's journal holds a clone of unknown outcome of."""
    replayed = replay(journal_path(state_path), current)
    if replayed is None or replayed.stale:
        return frozenset()
    return frozenset(p.change.address for p in replayed.pending)


DOUBT_NOTE = (
    "an interrupted apply sent this clone and no reply said what became of it: apply "
    "looks for it on Coze first, and spends nothing more if it was made"
)


def in_doubt(state_path: Path, current: State) -> frozenset[str]:
    """The addresses whose new voice an interrupted apply's journal holds as a clone of
    unknown outcome: the next apply looks for each on Coze before anything is sent."""
    replayed = replay(journal_path(state_path), current)
    if replayed is None or replayed.stale:
        return frozenset()
    return frozenset(
        p.change.address for p in replayed.pending if p.change.action in NEW_VOICE_ACTIONS
    )
