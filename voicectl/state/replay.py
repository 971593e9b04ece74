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
from typing import Any, NamedTuple

from voicectl.coze.replies import Seal
from voicectl.errors import StateError
from voicectl.files import jsontext
from voicectl.model import NEW_VOICE_ACTIONS, Change, State
from voicectl.planfile import change_from_json
from voicectl.state.journal import Pending, corrupt, records
from voicectl.state.transition import Done, applied_all


@dataclass
class Replayed:
    state: State
    pending: list[Pending] = field(default_factory=list)
    entries: int = 0
    stale: bool = False  # the journal had already been folded into this state
    account: dict[str, Any] | None = None  # the account its clones were sent to


class _Outcome(NamedTuple):
    """A clone's outcome line: where it is, and what replay reads of it."""

    number: int
    type: str  # "done" | "failed"
    at: str
    voice_id: str | None = None
    logid: str = ""
    unproven: str | None = None
    passed_over: tuple[str, ...] = ()


@dataclass
class _Lines:
    """What the journal's lines after its begin record say, by clone (seq)."""

    started: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # pending: where
    outcome: dict[int, _Outcome] = field(default_factory=dict)
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
    begin = first[2]
    if begin["type"] != "begin":
        raise StateError(f"{path}: the apply journal has no begin record; it was left unchanged")
    read = _read(path, lines)
    state = _base(path, begin, state, read)
    newer = state.serial > begin["serial"]
    started, outcome = read.started, read.outcome
    pending = [_pending(seq, started[seq][1]) for seq in sorted(started) if seq not in outcome]
    if newer:  # a state written since: folded already, or another clone's over this one
        _check_contains(path, state, pending, read)
        return Replayed(state, [], read.entries, stale=True)
    return Replayed(
        applied_all(state, _done(path, begin, read, state.voice_ids())),
        pending,
        read.entries,
        account=begin.get("account"),
    )


def _base(path: Path, begin: dict[str, Any], state: State, read: _Lines) -> State:
    """``state``, when the journal began from it or from a state it may follow; else a
    StateError says which state the journal belongs to."""
    began = begin["serial"]
    fresh = state.serial == 0 and not state.voices and not state.orphans
    if begin.get("lineage") != state.lineage and fresh and begin.get("empty") is True:
        # The state file is gone, and the journal began from an empty one: the same.
        state = replace(state, lineage=str(begin.get("lineage")), serial=began)
    if begin.get("lineage") != state.lineage:
        unknown = [
            _pending(q, line).change.address
            for q, (_, line) in sorted(read.started.items())
            if q not in read.outcome
        ]
        keep = _keeping(path, _made(read), unknown)
        if fresh:
            raise StateError(
                f"{path}: there is no state file, but an interrupted apply's journal "
                f"began from state serial {began} (lineage {begin.get('lineage')}). Nothing "
                "was changed. If that state was committed, restore it (`git checkout` it) "
                f"and run `voicectl apply` to fold the journal into it. {keep}"
            )
        raise StateError(
            f"{path}: the apply journal belongs to another state (lineage "
            f"{begin.get('lineage')}, the state's is {state.lineage}). Nothing was "
            "changed. If the state it began from can be had back (from git, say), put it "
            f"back and run `voicectl apply` to fold the journal into it. {keep}"
        )
    if state.serial < began:
        raise StateError(
            f"{path}: an interrupted apply's journal began from state serial {began}, but "
            f"the state is at serial {state.serial}: an older state was checked out over "
            "it. Nothing was changed. Restore the state the journal began from (e.g. "
            "`git checkout` the newer commit) and run `voicectl apply` to fold it"
        )
    return state


def _made(read: _Lines) -> list[tuple[str, str, bool]]:
    """(address, voice id, a new voice) of each clone the journal says was made."""
    made = []
    for seq, result in sorted(read.outcome.items()):
        if result.type == "done" and result.voice_id and seq in read.started:
            change = _pending(seq, read.started[seq][1]).change
            made.append((change.address, result.voice_id, change.action in NEW_VOICE_ACTIONS))
    return made


def _keeping(path: Path, made: list[tuple[str, str, bool]], unknown: list[str]) -> str:
    """How to keep a journal's paid clones when its own state cannot be had back."""
    if not made and not unknown:
        return f"It records no clone made: move it aside (`mv {path.name} {path.name}.aside`)."
    imports = "; ".join(f"`voicectl import {a} {v}`" for a, v, new in made if new)
    retrains = ", ".join(f"{a} (voice {v})" for a, v, new in made if not new)
    said = (
        f"Otherwise keep its paid clones: move it aside, kept (`mv {path.name} "
        f"{path.name}.aside` in {path.parent}), then"
    )
    if imports:
        said += f" record each new voice: {imports}"
    if retrains:
        said += (
            f"{';' if imports else ''} its retrains of {retrains} are on Coze: "
            "`voicectl refresh` records Coze's counts"
        )
    if unknown:
        said += (
            f"{';' if made else ''} its clones of unknown outcome ({', '.join(unknown)}) may "
            "be on Coze: find each in Coze's console by its name and "
            "`voicectl import ADDRESS VOICE_ID` it before the next apply"
        )
    return said + "."


def _read(path: Path, lines: Iterator[tuple[int, bytes, dict[str, Any]]]) -> _Lines:
    """The clones the journal's lines record, each line checked (journal.records) and
    each clone's lines against the others: one pending line and then at most one
    outcome per clone, and no second begin."""
    read = _Lines()
    for number, line, record in lines:
        read.entries += 1
        kind = record["type"]
        if kind == "begin":
            raise corrupt(path, number, "field type: a begin record only opens the journal")
        seq = record["seq"]
        if kind == "pending":
            if seq in read.started:
                where = read.started[seq][0]
                raise corrupt(path, number, f"field seq: {seq} is the seq of line {where} too")
            read.started[seq] = (number, line)
            continue
        if seq not in read.started:
            raise corrupt(path, number, f"field seq: no pending line before it has seq {seq}")
        if seq in read.outcome:
            where = read.outcome[seq].number
            raise corrupt(path, number, f"field seq: clone {seq} has its outcome on line {where}")
        read.outcome[seq] = _Outcome(
            number,
            kind,
            record["at"],
            record.get("voice_id"),
            record.get("logid", ""),
            record.get("unproven"),
            tuple(record.get("passed_over", ())),
        )
    return read


def _done(path: Path, begin: dict[str, Any], read: _Lines, held: set[str]) -> Iterator[Done]:
    """Each clone the journal records as done, in order; its line is let go as it is.
    ``held`` are the voice ids the state holds, and grows by each new one."""
    commit = begin.get("commit", "")
    uncommitted = begin.get("uncommitted") is True
    started, outcome = read.started, read.outcome
    for seq in sorted(started):
        result = outcome.get(seq)
        if result is not None and result.type == "done":
            number, line = started.pop(seq)
            change = _pending(seq, line).change
            _check_held(path, change, number, result, held)
            yield Done(
                change,
                result.at,
                result.voice_id,
                result.logid,
                commit,
                result.unproven,
                uncommitted,
                result.passed_over,
            )


def _check_held(path: Path, change: Change, number: int, result: _Outcome, held: set[str]) -> None:
    """A done clone the state can take: a retrain, move, update or orphan of a voice (and
    a replace of one) it holds, a new voice whose id nobody holds yet."""
    new = change.action in NEW_VOICE_ACTIONS
    if (not new or change.voice_id) and change.voice_id not in held:
        raise corrupt(
            path,
            number,
            f"field change.voice_id: voice {change.voice_id} is not in the state the "
            f"journal began from, so it cannot {change.action} it",
        )
    if not new:
        return
    if result.voice_id is None:
        raise corrupt(
            path,
            result.number,
            f"field voice_id: must be the id of the voice the {change.action} made, not null",
        )
    if result.voice_id in held:
        raise corrupt(
            path,
            result.number,
            f"field voice_id: voice {result.voice_id} is new to a {change.action} of "
            f"{change.address}, but the state or an earlier clone holds it",
        )
    held.add(result.voice_id)


def _check_contains(
    path: Path,
    state: State,
    pending: list[Pending],
    read: _Lines,
) -> None:
    """A journal under a newer state is set aside only when the state proves it holds
    the journal's outcomes: every clone it recorded, its voice id trained on its take.
    A newer state that does not (a `git pull` of another clone's state over a crashed
    apply) would otherwise bury paid clones, and the next plan would pay for them again."""
    missing: list[tuple[str, str, bool]] = []  # address, voice id, a new voice
    held_ids = state.voice_ids()
    for seq, result in read.outcome.items():
        voice_id = result.voice_id
        if result.type != "done" or not voice_id:
            continue
        change = _pending(seq, read.started[seq][1]).change
        sha = change.after.audio.sha256 if change.after else ""
        trained = any(e.voice_id == voice_id for e in state.takes.get(sha, ()))
        # A new voice id held at all (imported, say) is kept; a retrain must show its take.
        new = change.action in NEW_VOICE_ACTIONS
        if not (trained or (new and voice_id in held_ids)):
            missing.append((change.address, voice_id, new))
    if not missing and not pending:
        return
    found = []
    if missing:
        said = ", ".join(f"{address} (voice {voice_id})" for address, voice_id, _ in missing)
        found.append(f"clones it made that the state does not hold: {said}")
    if pending:
        names = ", ".join(p.change.address for p in pending)
        found.append(f"clones of unknown outcome: {names}")
    raise StateError(
        f"{path}: an interrupted apply's journal lies under a state written since (serial "
        f"{state.serial}, perhaps pulled from another clone of the repository), with "
        + "; ".join(found)
        + ". Nothing was changed. "
        + _ways_out(path, missing, pending)
    )


def _ways_out(path: Path, missing: list[tuple[str, str, bool]], pending: list[Pending]) -> str:
    """What a person can do, in commands that work from where they are."""
    first = (
        "Put back the state the journal began from (e.g. `git stash` or `git checkout` of "
        "the state before the pull) and run `voicectl apply`: it records the journal's "
        "clones; then merge the other state's changes"
    )
    if pending or not all(new for _, _, new in missing):
        # A retrain cannot be imported, nor a clone of unknown outcome: only the fold
        # onto the state the journal began from records them.
        return first + "."
    imports = "; ".join(f"`voicectl import {a} {v}`" for a, v, _ in missing)
    return (
        f"{first}. Or keep this state: move the journal aside, kept (`mv {path.name} "
        f"{path.name}.aside` in {path.parent}), then record each new voice: {imports}."
    )


def _pending(seq: int, line: bytes) -> Pending:
    record = jsontext.loads(line)  # checked as it was read (journal.records)
    return Pending(
        seq,
        change_from_json(record["change"]),
        record["started_at"],
        float(record["started_unix"]),
        record.get("before"),
    )


def sealed(path: Path, seal: Seal) -> bool:
    """Whether the journal at ``path`` was written with ``seal``'s token: its begin
    record names that account and every line carries the token's seal."""
    account: dict[str, Any] | None = None
    for _, _, record in records(path):
        if record["type"] == "begin":
            found = record.get("account")
            if not isinstance(found, dict) or not seal.vouches(found):
                return False
            account = found
        if account is None or not seal.sealed(account, record):
            return False
    return account is not None
