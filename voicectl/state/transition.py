"""How a carried-out change updates the state: pure functions, no I/O.

:func:`applied_all` folds a whole apply's changes at once (the journal's replay) at a
cost linear in the number of changes; :func:`applied` is the same for one change. A voice
id, once in the state, is never dropped: orphaned and replaced voices move to ``orphans``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import NamedTuple

from voicectl.model import (
    CLONE_LIMIT,
    Action,
    Change,
    RemoteFacts,
    RemoteVoice,
    State,
    TakeEntry,
    TakeRef,
    VoiceRecord,
    VoiceSpec,
)


def _take(after: VoiceSpec) -> TakeRef:
    a = after.audio
    return TakeRef(a.sha256, a.path, a.format, a.size, float(a.duration))


def _protect(old: VoiceRecord | None, after: VoiceSpec) -> bool:
    """A declaration's ``protect`` wins when said; unsaid, the recorded one stays."""
    said = after.protect
    if said is None:
        return bool(old and old.protect)
    return bool(said)


def _after(change: Change) -> VoiceSpec:
    if change.after is None:  # the planner gives every create, retrain and move one
        raise ValueError(f"{change.address}: a {change.action} without the voice it makes")
    return change.after


def _created(change: Change, voice_id: str, at: str) -> VoiceRecord:
    after = _after(change)
    return VoiceRecord(
        address=change.address,
        voice_id=voice_id,
        space=after.space,
        name=after.name,
        language=after.language,
        text=after.text,
        preview_text=after.preview_text,
        take=_take(after),
        clones_used=1,
        protect=_protect(None, after),
        created_at=at,
        updated_at=at,
    )


def _retrained(old: VoiceRecord, change: Change, at: str) -> VoiceRecord:
    after = _after(change)
    return replace(
        old,
        address=change.address,
        name=after.name,
        language=after.language,
        text=after.text,
        preview_text=after.preview_text,
        take=_take(after),
        clones_used=old.clones_used + 1,
        protect=_protect(old, after),
        updated_at=at,
        orphaned_at=None,
        verified=True,
        # What Coze said before this clone no longer describes the voice: drift compares
        # the clones left until Coze's facts are read again (by apply, or refresh).
        remote=None,
    )


def _moved(old: VoiceRecord, change: Change) -> VoiceRecord:
    after = _after(change)
    return replace(
        old,
        address=change.address,
        take=replace(old.take, path=after.audio.path),
        protect=_protect(old, after),
        orphaned_at=None,
    )


def applied(
    state: State,
    change: Change,
    at: str,
    voice_id: str | None = None,
    *,
    logid: str = "",
    commit: str = "",
) -> State:
    """The state after ``change`` was carried out at ``at`` (new ``voice_id`` for a clone).

    ``logid`` (Coze's request id) and ``commit`` (the git commit applied from) go into
    the take index for ``voicectl history``.
    """
    return applied_all(state, [Done(change, at, voice_id, logid, commit)])


PASSED = (
    "found on Coze for a clone whose reply was lost, and not the one --adopt chose: it "
    "may be that paid clone, or another's voice of the same name; `voicectl import` it "
    "at an address if it is yours"
)


class Done(NamedTuple):
    """One completed change, as :func:`applied` takes it."""

    change: Change
    at: str
    voice_id: str | None = None
    logid: str = ""
    commit: str = ""
    unproven: str | None = None  # found after a lost reply, not proven this clone's
    uncommitted: bool = False  # applied from a work tree with changes ``commit`` lacks
    passed_over: tuple[str, ...] = ()  # other voices found for it, not chosen: orphans


def applied_all(state: State, done: Iterable[Done]) -> State:
    """The state after every change of ``done`` in turn: ``applied`` folded over them.

    Built once in mutable dicts with an index of where each voice id is, so folding the
    10,000 entries of a migration's journal costs 10,000 steps, not 10,000 copies of a
    growing state.
    """
    batch = _Batch(state)
    for item in done:
        batch.apply(item)
    return batch.state()


class _Batch:
    """A state under construction, in mutable form, with where each voice id is."""

    def __init__(self, state: State) -> None:
        self.base = state
        self.voices = dict(state.voices)
        self.orphans: dict[int, VoiceRecord] = dict(enumerate(state.orphans))
        self.keys = len(state.orphans)  # orphans keep their order by key
        self.takes: dict[str, tuple[TakeEntry, ...] | list[TakeEntry]] = dict(state.takes)
        self.grown: set[str] = set()
        # voice id -> where records of it are: an address in voices, or an orphan's key
        self.where: dict[str, list[str | int]] = {}
        for address, record in self.voices.items():
            self.where.setdefault(record.voice_id, []).append(address)
        for key, record in self.orphans.items():
            self.where.setdefault(record.voice_id, []).append(key)

    def state(self) -> State:
        takes = {s: tuple(e) if s in self.grown else e for s, e in self.takes.items()}
        return replace(
            self.base,
            voices=self.voices,
            orphans=tuple(self.orphans.values()),
            takes=takes,  # type: ignore[arg-type]  # every list was made a tuple
        )

    def _orphan(self, record: VoiceRecord) -> None:
        key = self.keys = self.keys + 1
        self.orphans[key] = record
        self.where.setdefault(record.voice_id, []).append(key)

    def find(self, voice_id: str) -> VoiceRecord:
        places = self.where.get(voice_id)
        if not places:
            raise KeyError(voice_id)
        addresses = [p for p in places if isinstance(p, str)]
        if len(addresses) == 1:
            return self.voices[addresses[0]]
        if addresses:  # one voice id at several addresses: the first in the state's order
            return next(r for a, r in self.voices.items() if a in addresses)
        return self.orphans[min(p for p in places if isinstance(p, int))]

    def without(self, record: VoiceRecord) -> None:
        for place in self.where.pop(record.voice_id, []):
            if isinstance(place, str):
                del self.voices[place]
            else:
                del self.orphans[place]

    def placed(self, record: VoiceRecord, at: str) -> None:
        """``record`` at its address. A different voice still there (its address taken
        over in a chain of renames whose other half is not applied yet) is kept as an
        orphan, where the rest of the plan finds it: never dropped."""
        displaced = self.voices.get(record.address)
        if displaced is not None and displaced.voice_id != record.voice_id:
            self.where[displaced.voice_id].remove(record.address)
            self._orphan(replace(displaced, orphaned_at=at))
        elif displaced is not None:  # the same voice id: its place is already known
            self.voices[record.address] = record
            return
        self.voices[record.address] = record
        self.where.setdefault(record.voice_id, []).append(record.address)

    def indexed(self, record: VoiceRecord, done: Done) -> None:
        sha = record.take.sha256
        entry = TakeEntry(
            record.voice_id,
            record.address,
            record.clones_used,
            done.at,
            done.logid,
            done.commit,
            done.uncommitted,
        )
        if sha not in self.grown:
            self.takes[sha] = list(self.takes.get(sha, ()))
            self.grown.add(sha)
        entries = self.takes[sha]
        assert isinstance(entries, list)
        entries.append(entry)

    def apply(self, done: Done) -> None:
        change, at, voice_id = done.change, done.at, done.voice_id
        if change.action in (Action.CREATE, Action.REPLACE):
            if voice_id is None:
                raise ValueError(f"{change.action} needs the new voice id")
            if change.action == Action.REPLACE and change.voice_id:
                old = self.find(change.voice_id)
                self.without(old)
                self._orphan(replace(old, orphaned_at=at))
            record = replace(_created(change, voice_id, at), unproven=done.unproven)
            self.indexed(record, done)
            self.placed(record, at)
            for other in done.passed_over:
                if other not in self.where:  # never dropped: it may be this clone, paid for
                    self._orphan(replace(record, voice_id=other, orphaned_at=at, unproven=PASSED))
            return
        if change.voice_id is None:
            raise ValueError(f"{change.action} of {change.address} names no voice id")
        old = self.find(change.voice_id)
        self.without(old)
        if change.action == Action.RETRAIN:
            # A retrain proven this apply's own lifts an earlier retrain's doubt.
            record = replace(_retrained(old, change, at), unproven=done.unproven)
            self.indexed(record, done)
            self.placed(record, at)
        elif change.action in (Action.MOVE, Action.UPDATE):
            self.placed(_moved(old, change), at)
        elif change.action == Action.ORPHAN:
            self._orphan(replace(old, orphaned_at=at))
        else:
            raise ValueError(f"{change.action} changes nothing in the state")


def imported(state: State, address: str, after: VoiceSpec, remote: RemoteVoice, at: str) -> State:
    """The state with an existing Coze voice adopted at ``address`` without a clone.

    Coze keeps no copy of the take a voice was cloned from, so the declared take and
    text are recorded as unverified; the clones used come from Coze's own count. A voice
    imported again at its own address keeps when it was made and its protection.
    """
    used = min(CLONE_LIMIT, max(1, CLONE_LIMIT - remote.available_training_times))
    held = state.voices.get(address)
    again = held if held is not None and held.voice_id == remote.voice_id else None
    record = VoiceRecord(
        address=address,
        voice_id=remote.voice_id,
        space=after.space,
        name=remote.name,
        language=remote.language or after.language,
        text=after.text,
        preview_text=after.preview_text,
        take=_take(after),
        clones_used=used,
        protect=_protect(again, after),
        created_at=again.created_at if again is not None else at,
        updated_at=at,
        verified=False,
        remote=facts(remote, at),
    )
    return replace(state, voices={**state.voices, address: record})


def confirmed(state: State, address: str) -> State:
    """The state with ``address``'s voice confirmed by a person: no longer unproven."""
    record = replace(state.voices[address], unproven=None)
    return replace(state, voices={**state.voices, address: record})


def facts(remote: RemoteVoice, at: str) -> RemoteFacts:
    """What Coze said of a voice; a count below zero (Coze has been seen to) reads as 0."""
    left = max(0, remote.available_training_times)
    return RemoteFacts(remote.name, left, remote.update_time, at, remote.model_type)


def refreshed(
    state: State, remote: Mapping[str, RemoteVoice], at: str, *, trained_here: bool = False
) -> State:
    """The state with Coze's current facts recorded for every voice it still lists.
    ``trained_here``: the voices listed were just trained by this apply, on their
    declared takes, so a higher count on Coze is not a training on another take."""

    def read(record: VoiceRecord) -> VoiceRecord:
        found = remote.get(record.voice_id)
        if found is None:
            return record
        # One budget per voice: the count takes the lower of voicectl's and Coze's, so
        # that the progress, the summary, `state list` and the plan all say the same.
        coze_used = CLONE_LIMIT - max(0, found.available_training_times)
        used = max(record.clones_used, coze_used)
        # Trained more times than voicectl trained it: retrained outside (the console),
        # on a take voicectl never saw; its next retrain sends the declared one again.
        verified = record.verified and (trained_here or coze_used <= record.clones_used)
        said = facts(found, at)
        if record.remote is not None and replace(record.remote, read_at=at) == said:
            said = record.remote  # nothing new: the state is not rewritten for a reading
        return replace(
            record,
            remote=said,
            clones_used=min(used, CLONE_LIMIT),
            verified=verified,
        )

    return replace(
        state,
        voices={a: read(r) for a, r in state.voices.items()},
        orphans=tuple(read(r) for r in state.orphans),
    )


def renamed(state: State, old: str, new: str) -> State:
    """``voicectl state mv``: the voice at ``old`` now lives at ``new`` (no clone)."""
    voices = {a: r for a, r in state.voices.items() if a != old}
    voices[new] = replace(state.voices[old], address=new)
    return replace(state, voices=voices)


def forgotten(state: State, address: str, at: str) -> State:
    """``voicectl state rm``: stop managing ``address``; its voice id is kept as an orphan."""
    record = state.voices[address]
    voices = {a: r for a, r in state.voices.items() if a != address}
    retired = replace(record, orphaned_at=at)
    return replace(state, voices=voices, orphans=(*state.orphans, retired))
