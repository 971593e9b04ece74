"""Replaying the apply journal over the state it began from.

Replay rebuilds the state a crashed apply left (every clone the journal records as done,
folded in order) and lists the clones whose outcome is unknown, for apply to settle
through Coze's list. A journal under a newer state is stale only when that state holds
every clone it recorded. Read only: nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from voicectl.errors import StateError
from voicectl.files import jsontext
from voicectl.model import NEW_VOICE_ACTIONS, State
from voicectl.planfile import change_from_json
from voicectl.state.journal import Pending, records
from voicectl.state.transition import Done, applied_all


@dataclass
class Replayed:
    state: State
    pending: list[Pending] = field(default_factory=list)
    entries: int = 0
    stale: bool = False  # the journal had already been folded into this state
    account: dict[str, Any] | None = None  # the account its clones were sent to


@dataclass
class _Lines:
    """What the journal's lines after its begin record say, by clone (seq)."""

    started: dict[int, bytes] = field(default_factory=dict)  # each clone's pending line
    outcome: dict[int, dict[str, Any]] = field(default_factory=dict)
    entries: int = 0


def replay(path: Path, state: State) -> Replayed | None:
    """The state with the journal's completed changes applied, and what is unresolved.

    Changes are kept as their journal lines until they are folded, one at a time, so
    replaying 10,000 clones holds a few megabytes of text, not 10,000 parsed changes.
    """
    lines = records(path)
    first = next(lines, None)
    if first is None:
        return None
    begin = first[1]
    if begin.get("type") != "begin":
        raise StateError(f"{path}: the apply journal has no begin record; it was left unchanged")
    state = _base(path, begin, state)
    newer = state.serial > int(begin.get("serial", 0))
    read = _read(lines)
    started, outcome = read.started, read.outcome
    pending = [_pending(seq, started[seq]) for seq in sorted(started) if seq not in outcome]
    if newer:  # a state written since: folded already, or another clone's over this one
        _check_contains(path, state, pending, started, outcome)
        return Replayed(state, [], read.entries, stale=True)
    account = begin.get("account")
    return Replayed(
        applied_all(state, _done(begin, read)),
        pending,
        read.entries,
        account=account if isinstance(account, dict) else None,
    )


def _base(path: Path, begin: dict[str, Any], state: State) -> State:
    """``state``, when the journal began from it or from a state it may follow; else a
    StateError says which state the journal belongs to."""
    began = int(begin.get("serial", 0))
    fresh = state.serial == 0 and not state.voices and not state.orphans
    if begin.get("lineage") != state.lineage and fresh and begin.get("empty") is True:
        # The state file is gone, and the journal began from an empty one: the same.
        state = replace(state, lineage=str(begin.get("lineage")), serial=began)
    if begin.get("lineage") != state.lineage:
        keep = (
            "It records paid clones: do not move it aside before each voice id in its "
            "`done` lines is in a state (`voicectl import ADDRESS VOICE_ID`)"
        )
        if fresh:
            raise StateError(
                f"{path}: there is no state file, but an interrupted apply's journal "
                f"began from state serial {began} (lineage {begin.get('lineage')}). Restore "
                "that state (e.g. `git checkout` it) and run `voicectl apply` to fold the "
                f"journal into it. {keep}"
            )
        raise StateError(
            f"{path}: the apply journal belongs to another state (lineage "
            f"{begin.get('lineage')}, the state's is {state.lineage}). {keep}"
        )
    if state.serial < began:
        raise StateError(
            f"{path}: an interrupted apply's journal began from state serial {began}, but "
            f"the state is at serial {state.serial}: an older state was checked out over "
            "it. Nothing was changed. Restore the state the journal began from (e.g. "
            "`git checkout` the newer commit) and run `voicectl apply` to fold it"
        )
    return state


def _read(lines: Iterator[tuple[bytes, dict[str, Any]]]) -> _Lines:
    read = _Lines()
    for line, record in lines:
        read.entries += 1
        seq = record.get("seq")
        if not isinstance(seq, int):
            continue
        if record.get("type") == "pending":
            read.started[seq] = line
        elif record.get("type") in ("done", "failed"):
            read.outcome[seq] = {
                k: record.get(k) for k in ("type", "at", "voice_id", "logid", "unproven")
            }
    return read


def _done(begin: dict[str, Any], read: _Lines) -> Iterator[Done]:
    """Each clone the journal records as done, in order; its line is let go as it is."""
    commit = str(begin.get("commit") or "")
    uncommitted = begin.get("uncommitted") is True
    started, outcome = read.started, read.outcome
    for seq in sorted(started):
        result = outcome.get(seq)
        if result is not None and result["type"] == "done":
            change = _pending(seq, started.pop(seq)).change
            logid = str(result.get("logid") or "")
            why = result.get("unproven")
            unproven = why if isinstance(why, str) else None
            yield Done(
                change,
                result["at"],
                result.get("voice_id"),
                logid,
                commit,
                unproven,
                uncommitted,
            )


def _check_contains(
    path: Path,
    state: State,
    pending: list[Pending],
    started: dict[int, bytes],
    outcome: dict[int, dict[str, Any]],
) -> None:
    """A journal under a newer state is set aside only when the state proves it holds
    the journal's outcomes: every clone it recorded, its voice id trained on its take.
    A newer state that does not (a `git pull` of another clone's state over a crashed
    apply) would otherwise bury paid clones, and the next plan would pay for them again."""
    missing = []
    held_ids = state.voice_ids()
    for seq, result in outcome.items():
        voice_id = result.get("voice_id")
        if result["type"] != "done" or not voice_id or seq not in started:
            continue
        change = _pending(seq, started[seq]).change
        sha = str(((change.after or {}).get("audio") or {}).get("sha256", ""))
        trained = any(e.voice_id == voice_id for e in state.takes.get(sha, ()))
        # A new voice id held at all (imported, say) is kept; a retrain must show its take.
        held = change.action in NEW_VOICE_ACTIONS and voice_id in held_ids
        if not (trained or held):
            missing.append(f"{change.address} (voice {voice_id})")
    if not missing and not pending:
        return
    found = []
    if missing:
        found.append(f"clones it made that the state does not hold: {', '.join(missing)}")
    if pending:
        names = ", ".join(p.change.address for p in pending)
        found.append(f"clones of unknown outcome: {names}")
    raise StateError(
        f"{path}: an interrupted apply's journal lies under a state written since (serial "
        f"{state.serial}, perhaps pulled from another clone of the repository), with "
        + "; ".join(found)
        + ". Nothing was changed. Run `voicectl apply` with the state the journal began "
        "from (e.g. before the pull) to fold it, then merge; or record those voices with "
        "`voicectl import ADDRESS VOICE_ID` and move the journal aside"
    )


def _pending(seq: int, line: bytes) -> Pending:
    record = jsontext.loads(line)
    before = record.get("before")
    return Pending(
        seq,
        change_from_json(record["change"]),
        record["started_at"],
        float(record["started_unix"]),
        before if isinstance(before, dict) else None,
    )
