"""What an interrupted apply left, as read-only commands see it.

The journal of an apply that did not finish holds clones not yet in the state. A plan
or a drift check reads the state as the journal leaves it and says so; only apply
(:mod:`voicectl.apply.recovery`) settles and folds it. Read path only: nothing here sends or
writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voicectl.coze.replies import Seal
from voicectl.model import NEW_VOICE_ACTIONS, State
from voicectl.state.journal import journal_path
from voicectl.state.replay import replay, sealed


@dataclass(frozen=True)
class Interrupted:
    """The state as read-only commands see it: with an interrupted apply's completed
    clones, the warning that says so, and the addresses whose clone's outcome is unknown
    (``unknown``; of those, the new voices: ``in_doubt``), for the next apply to settle."""

    state: State
    warning: str = ""
    unknown: frozenset[str] = frozenset()
    in_doubt: frozenset[str] = frozenset()


def seen(state_path: Path, current: State, ours: Seal | None = None, name: str = "") -> Interrupted:
    """The journal beside ``state_path`` read once. ``ours`` (given a token) checks it was
    written with this token and API base: one it does not vouch for is not shown as part
    of the state (apply will not fold it). ``name``: how the journal is named to people."""
    path = journal_path(state_path)
    name = name or path.name
    replayed = replay(path, current)
    if replayed is None or replayed.stale:
        return Interrupted(current)
    if ours is not None and not sealed(path, ours):
        return Interrupted(
            current,
            f"{name}, an apply journal, was not written with this COZE_API_TOKEN and "
            "COZE_API_BASE: the clones it records are not shown, and `voicectl apply` will "
            "not fold them (see its message)",
        )
    doubtful = sorted({p.change.address for p in replayed.pending})
    which = f": {', '.join(doubtful)}" if doubtful else ""
    return Interrupted(
        replayed.state,
        f"an apply was interrupted ({name} holds {replayed.entries} entries, "
        f"{len(replayed.pending)} clone(s) of unknown outcome{which}); `voicectl apply` "
        "recovers it",
        frozenset(doubtful),
        frozenset(
            p.change.address for p in replayed.pending if p.change.action in NEW_VOICE_ACTIONS
        ),
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
