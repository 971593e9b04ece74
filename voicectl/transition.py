"""How a carried-out change updates the state: pure functions, no I/O.

Apply (and tests) call :func:`applied` once per completed change; the result is what
gets written. A voice id, once in the state, is never dropped: orphaned and replaced
voices move to ``orphans``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from voicectl.model import Change, State, TakeEntry, TakeRef, VoiceRecord


def _take(after: dict[str, Any]) -> TakeRef:
    audio = after["audio"]
    return TakeRef(
        audio["sha256"], audio["path"], audio["format"], audio["size"], float(audio["duration"])
    )


def _indexed(state: State, record: VoiceRecord, at: str) -> dict[str, tuple[TakeEntry, ...]]:
    takes = dict(state.takes)
    entry = TakeEntry(record.voice_id, record.address, record.clones_used, at)
    takes[record.take.sha256] = (*takes.get(record.take.sha256, ()), entry)
    return takes


def _find(state: State, voice_id: str) -> VoiceRecord:
    for record in (*state.voices.values(), *state.orphans):
        if record.voice_id == voice_id:
            return record
    raise KeyError(voice_id)


def _without(state: State, record: VoiceRecord) -> State:
    voices = {a: r for a, r in state.voices.items() if r.voice_id != record.voice_id}
    orphans = tuple(r for r in state.orphans if r.voice_id != record.voice_id)
    return replace(state, voices=voices, orphans=orphans)


def applied(state: State, change: Change, at: str, voice_id: str | None = None) -> State:
    """The state after ``change`` was carried out at ``at`` (new ``voice_id`` for a clone)."""
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
            protect=bool(after.get("protect")),
            created_at=at,
            updated_at=at,
        )
        voices = {**state.voices, change.address: record}
        return replace(state, voices=voices, takes=_indexed(state, record, at))
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
            protect=old.protect or bool(after.get("protect")),
            updated_at=at,
            orphaned_at=None,
        )
        return replace(
            state,
            voices={**state.voices, change.address: record},
            takes=_indexed(state, record, at),
        )
    if change.action == "move":
        after = change.after or {}
        audio = after["audio"]
        record = replace(
            old,
            address=change.address,
            take=replace(old.take, path=audio["path"]),
            protect=old.protect or bool(after.get("protect")),
            orphaned_at=None,
        )
        return replace(state, voices={**state.voices, change.address: record})
    if change.action == "orphan":
        return replace(state, orphans=(*state.orphans, replace(old, orphaned_at=at)))
    raise ValueError(f"{change.action} changes nothing in the state")
