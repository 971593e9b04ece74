"""Folding an apply journal into the state, after a crash or at the end of an apply."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from voicectl import journal, state
from voicectl.errors import StateError
from voicectl.executor import Event, Executor, Outcome
from voicectl.model import State


def fold(state_path: Path, current: State) -> State:
    """Write the journal's completed changes into the state and remove the journal.

    Refuses while a clone's outcome is unknown: those must be reconciled first.
    """
    path = journal.journal_path(state_path)
    replayed = journal.replay(path, current)
    if replayed is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return current
    if replayed.pending:
        names = ", ".join(p.change.address for p in replayed.pending)
        raise StateError(f"{path}: clones of unknown outcome ({names}) must be reconciled first")
    result = current if replayed.stale else state.save(state_path, replayed.state)
    path.unlink()
    return result


def fold_or_keep(state_path: Path, current: State, notice: Callable[[str], None]) -> State:
    """Fold at the end of an apply; with clones of unknown outcome left, keep the journal
    (the next apply reconciles it) and return the state as the journal leaves it."""
    try:
        return fold(state_path, current)
    except StateError as exc:
        notice(f"{exc.message}; the journal was kept and `voicectl apply` will recover it")
        replayed = journal.replay(journal.journal_path(state_path), current)
        return replayed.state if replayed else current


def recover(
    state_path: Path,
    current: State,
    executor_for: Callable[[journal.Journal], Executor],
    adopt: dict[str, str],
    notice: Callable[[str], None],
) -> State:
    """Finish what an interrupted apply left: reconcile unknown clones, then fold."""
    path = journal.journal_path(state_path)
    replayed = journal.replay(path, current)
    if replayed is None:
        return current
    if not replayed.stale:
        notice(
            f"recovering an interrupted apply from {path.name}: {replayed.entries} "
            f"journal entries, {len(replayed.pending)} clone(s) of unknown outcome"
        )
    if replayed.pending and not replayed.stale:
        log = journal.Journal(path)
        try:
            executor = executor_for(log)
            executor.resolve(replayed.pending, replayed.state.voice_ids(), Outcome(), adopt)
        finally:
            log.close()
    return fold(state_path, current)


def pending_warning(state_path: Path, current: State) -> tuple[State, str]:
    """For read-only commands: the state as the journal leaves it, and a warning if any."""
    path = journal.journal_path(state_path)
    replayed = journal.replay(path, current)
    if replayed is None or replayed.stale:
        return current, ""
    return replayed.state, (
        f"an apply was interrupted ({path.name} holds {replayed.entries} entries, "
        f"{len(replayed.pending)} clone(s) of unknown outcome); `voicectl apply` recovers it"
    )


__all__ = ["Event", "fold", "fold_or_keep", "pending_warning", "recover"]
