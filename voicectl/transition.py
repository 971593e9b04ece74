"""How a carried-out change updates the state: pure functions, no I/O.

Apply (and tests) call :func:`applied` once per completed change; the result is what
gets written. A voice id, once in the state, is never dropped: orphaned and replaced
voices move to ``orphans``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from voicectl.model import (
    CLONE_LIMIT,
    Change,
    RemoteFacts,
    RemoteVoice,
    State,
    TakeEntry,
    TakeRef,
    VoiceRecord,
)


def _take(after: dict[str, Any]) -> TakeRef:
    audio = after["audio"]
    return TakeRef(
        audio["sha256"], audio["path"], audio["format"], audio["size"], float(audio["duration"])
    )


def _protect(old: VoiceRecord | None, after: dict[str, Any]) -> bool:
    """A declaration's ``protect`` wins when said; unsaid, the recorded one stays."""
    said = after.get("protect")
    if said is None:
        return bool(old and old.protect)
    return bool(said)


def _indexed(
    state: State, record: VoiceRecord, at: str, logid: str = "", commit: str = ""
) -> dict[str, tuple[TakeEntry, ...]]:
    takes = dict(state.takes)
    entry = TakeEntry(record.voice_id, record.address, record.clones_used, at, logid, commit)
    takes[record.take.sha256] = (*takes.get(record.take.sha256, ()), entry)
    return takes


def _find(state: State, voice_id: str) -> VoiceRecord:
    for record in (*state.voices.values(), *state.orphans):
        if record.voice_id == voice_id:
            return record
    raise KeyError(voice_id)


def _placed(state: State, record: VoiceRecord, at: str) -> State:
    """``record`` at its address. A different voice still there (its address is taken
    over in a chain of renames whose other half is not applied yet) is kept as an orphan,
    where the rest of the plan finds it; it is never dropped."""
    displaced = state.voices.get(record.address)
    orphans = state.orphans
    if displaced is not None and displaced.voice_id != record.voice_id:
        orphans = (*orphans, replace(displaced, orphaned_at=at))
    return replace(state, voices={**state.voices, record.address: record}, orphans=orphans)


def _without(state: State, record: VoiceRecord) -> State:
    voices = {a: r for a, r in state.voices.items() if r.voice_id != record.voice_id}
    orphans = tuple(r for r in state.orphans if r.voice_id != record.voice_id)
    return replace(state, voices=voices, orphans=orphans)


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
    if change.action in ("create", "replace"):
        if voice_id is None:
            raise ValueError(f"{change.action} needs the new voice id")
        after = change.after or {}
        if change.action == "replace" and change.voice_id:
            old = _find(state, change.voice_id)
            state = _without(state, old)
            retired = replace(old, orphaned_at=at)
            state = replace(state, orphans=(*state.orphans, retired))
        record = VoiceRecord(
            address=change.address,
            voice_id=voice_id,
            space=after.get("space"),
            name=after["name"],
            language=after["language"],
            text=after["text"],
            preview_text=after.get("preview_text"),
            take=_take(after),
            clones_used=1,
            protect=_protect(None, after),
            created_at=at,
            updated_at=at,
        )
        state = replace(state, takes=_indexed(state, record, at, logid, commit))
        return _placed(state, record, at)
    if change.voice_id is None:
        raise ValueError(f"{change.action} of {change.address} names no voice id")
    old = _find(state, change.voice_id)
    state = _without(state, old)
    if change.action == "retrain":
        after = change.after or {}
        record = replace(
            old,
            address=change.address,
            name=after["name"],
            language=after["language"],
            text=after["text"],
            preview_text=after.get("preview_text"),
            take=_take(after),
            clones_used=old.clones_used + 1,
            protect=_protect(old, after),
            updated_at=at,
            orphaned_at=None,
            verified=True,
        )
        state = replace(state, takes=_indexed(state, record, at, logid, commit))
        return _placed(state, record, at)
    if change.action in ("move", "update"):
        after = change.after or {}
        audio = after["audio"]
        record = replace(
            old,
            address=change.address,
            take=replace(old.take, path=audio["path"]),
            protect=_protect(old, after),
            orphaned_at=None,
        )
        return _placed(state, record, at)
    if change.action == "orphan":
        return replace(state, orphans=(*state.orphans, replace(old, orphaned_at=at)))
    raise ValueError(f"{change.action} changes nothing in the state")


def imported(
    state: State, address: str, after: dict[str, Any], remote: RemoteVoice, at: str
) -> State:
    """The state with an existing Coze voice adopted at ``address`` without a clone.

    Coze keeps no copy of the take a voice was cloned from, so the declared take and
    text are recorded as unverified; the clones used come from Coze's own count.
    """
    used = min(CLONE_LIMIT, max(1, CLONE_LIMIT - remote.available_training_times))
    record = VoiceRecord(
        address=address,
        voice_id=remote.voice_id,
        space=after.get("space"),
        name=remote.name,
        language=remote.language or after["language"],
        text=after["text"],
        preview_text=after.get("preview_text"),
        take=_take(after),
        clones_used=used,
        protect=_protect(None, after),
        created_at=at,
        updated_at=at,
        verified=False,
        remote=facts(remote, at),
    )
    return replace(state, voices={**state.voices, address: record})


def facts(remote: RemoteVoice, at: str) -> RemoteFacts:
    """What Coze said of a voice; a count below zero (Coze has been seen to) reads as 0."""
    left = max(0, remote.available_training_times)
    return RemoteFacts(remote.name, left, remote.update_time, at)


def refreshed(state: State, remote: Mapping[str, RemoteVoice], at: str) -> State:
    """The state with Coze's current facts recorded for every voice it still lists."""

    def read(record: VoiceRecord) -> VoiceRecord:
        found = remote.get(record.voice_id)
        return record if found is None else replace(record, remote=facts(found, at))

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
