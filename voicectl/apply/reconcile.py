"""Finding out what became of a clone whose answer never came: pure matching.

Coze has no idempotency key and no get-by-id, so the list endpoint is the witness, and
only Coze's own facts decide, never this machine's clock (Coze's may disagree). Before
each clone, what the account showed is kept with the clone in the journal
(:func:`witness`): for a create, the ids of the voices of that name; for a retrain, the
voice's ``update_time`` and ``available_training_times``. After a lost answer, a create
is a voice of that name that was not there before and that no address holds; a retrain
is that voice updated since, or with fewer trainings left.

A journal written before witnesses were kept falls back to the times: a create is the
voice of that name created at or after the request left, a retrain that voice updated
since with fewer trainings left than the plan said.

A voice found so is voicectl's own clone only as far as the time between the witness
and the listing that found it, beyond the clone's own flight, is short: a colleague who
clones a voice of the same name in the console (or retrains the voice) within it looks
the same. Beyond ``PROVEN_WINDOW_SECONDS`` (on this machine's clock, every end of it read
here), or when the witness is not sure (no witness kept; a retrain that used more than
one training, or none), the voice is recorded as unproven (:func:`unproven`) and every
plan says so until a person confirms it or replaces it (or, for a retrain, retrains it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from voicectl.model import NEW_VOICE_ACTIONS, Change, RemoteVoice
from voicectl.state.journal import Pending

CLOCK_SLACK_SECONDS = 5  # the fallback only: Coze's timestamps are another clock's
PROVEN_WINDOW_SECONDS = 300  # from the witness listing to the one that finds the clone


def witness(
    change: Change,
    listing: Mapping[str, RemoteVoice],
    by_name: Mapping[str, Sequence[str]],
    listed_at: float,
) -> dict[str, Any]:
    """What the account shows, before ``change`` is sent, that its outcome is told by.

    ``listing`` is a complete listing by voice id, ``by_name`` its ids by name, and
    ``listed_at`` when reading it began (Unix time, this machine's clock)."""
    if change.action in NEW_VOICE_ACTIONS:
        ids = sorted(by_name.get(change.after.name if change.after else "", ()))
        return {"ids": ids, "listed_at": round(listed_at, 3)}
    voice = listing.get(change.voice_id or "")
    if voice is None:
        return {"absent": True}
    return {
        "update_time": voice.update_time,
        "available_training_times": voice.available_training_times,
        "listed_at": round(listed_at, 3),
    }


def unproven(pending: Pending, found: RemoteVoice, read_at: float, ended: float) -> str | None:
    """Why ``found``, the one voice that can be what ``pending`` made, is not proven its
    result, or None.

    The clone's own flight (from when it was sent until ``ended``: its error, or the
    latest its deadline allowed) is when its result can appear; the time around it,
    from the witness listing to the send and from ``ended`` to ``read_at`` (when the
    listing that found the voice was read to its end), is when anyone else's could. Up
    to ``PROVEN_WINDOW_SECONDS`` of that is taken as short enough (all on this machine's
    clock, as the witness's ``listed_at``)."""
    change, before = pending.change, pending.before or {}
    sent = f"the {change.action} sent at {pending.started_at} got no reply"
    listed_at = before.get("listed_at")
    if not isinstance(listed_at, int | float):
        kept = "the voice was not on the list" if before.get("absent") else "none was kept"
        return f"{sent}, and no reading of the account from just before it ({kept}) tells it by"
    around = max(0.0, pending.started_unix - listed_at) + max(0.0, read_at - ended)
    if around > PROVEN_WINDOW_SECONDS:
        return (
            f"{sent}; voice {found.voice_id} was found on Coze's list with {around:.0f} s "
            f"outside that clone's own flight (more than {PROVEN_WINDOW_SECONDS} s), long "
            "enough for anyone's clone to look like voicectl's"
        )
    if change.action not in NEW_VOICE_ACTIONS:
        used = before.get("available_training_times", 0) - found.available_training_times
        if used > 1:
            return (
                f"{sent}; voice {found.voice_id} used {used} trainings since, so someone "
                "else retrained it too and its last training may not be this take"
            )
        if used < 1:
            return (
                f"{sent}; voice {found.voice_id} was updated since but used no training, so "
                "the update may be someone else's and this take may not be trained"
            )
    return None


def candidates(
    pending: Pending, remote: Sequence[RemoteVoice], known_ids: Iterable[str]
) -> list[RemoteVoice]:
    change, before = pending.change, pending.before
    if change.action in NEW_VOICE_ACTIONS:
        name = change.after.name if change.after else None
        known = set(known_ids)
        if before is not None:
            there = set(before.get("ids", ()))
            return [v for v in remote if v.name == name and v.voice_id not in there | known]
        since = int(pending.started_unix) - CLOCK_SLACK_SECONDS
        return [
            v
            for v in remote
            if v.name == name and v.create_time >= since and v.voice_id not in known
        ]
    found = [v for v in remote if v.voice_id == change.voice_id]
    if before is not None and "update_time" in before:
        return [
            v
            for v in found
            if v.update_time > before["update_time"]
            or v.available_training_times < before["available_training_times"]
        ]
    since = int(pending.started_unix) - CLOCK_SLACK_SECONDS
    planned = change.budget.before
    return [
        v
        for v in found
        if v.update_time >= since and planned is not None and v.available_training_times < planned
    ]
