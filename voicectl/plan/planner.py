"""The planner: a pure function of declarations, state and (optionally) the remote account.

No filesystem, no network, no printing. What costs a clone follows PRODUCT.md: a
take's bytes, its transcript or its language changing costs a retrain; a new address
or path holding a take some voice is already trained on is a ``move`` (state only); a
name or preview text change alone waits for the next retrain unless asked for; a new
workspace needs a new voice id (``replace``); a removed declaration leaves an orphan,
because Coze cannot delete.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from voicectl.model import (
    CLONE_LIMIT,
    CNY_PER_NEW_VOICE,
    CNY_PER_VOICE_MONTH,
    Budget,
    Change,
    Cost,
    DesiredVoice,
    Plan,
    PlanOptions,
    RemoteVoice,
    State,
    VoiceRecord,
)
from voicectl.plan import drift
from voicectl.plan.matching import match

PRICE = f"{CNY_PER_NEW_VOICE} CNY"  # of a new voice id, as messages say it
NO_OPTIONS = PlanOptions()  # a plan of the declarations as they are
NEW_VOICE_COST = Cost(one_time_cny=CNY_PER_NEW_VOICE, monthly_cny_delta=CNY_PER_VOICE_MONTH)
FREE = Cost()
ORDER = {
    "blocked": 0,
    "replace": 1,
    "create": 2,
    "retrain": 3,
    "move": 4,
    "update": 5,
    "orphan": 6,
    "noop": 7,
}


def desired_json(voice: DesiredVoice) -> dict[str, Any]:
    d, t = voice.decl, voice.take
    return {
        "name": d.name,
        "language": d.language,
        "space": d.space,
        "text": d.text,
        "preview_text": d.preview_text,
        "protect": d.protect,
        "audio": {
            "sha256": t.sha256,
            "path": t.path,
            "format": t.format,
            "size": t.size,
            "duration": t.duration,
        },
    }


def recorded_json(record: VoiceRecord) -> dict[str, Any]:
    t = record.take
    audio: dict[str, Any] = {
        "sha256": t.sha256,
        "path": t.path,
        "format": t.format,
        "size": t.size,
        "duration": t.duration,
    }
    if not record.verified:
        audio["verified"] = False
    return {
        "name": record.name,
        "language": record.language,
        "space": record.space,
        "text": record.text,
        "preview_text": record.preview_text,
        "protect": record.protect,
        "audio": audio,
    }


def clones_left(record: VoiceRecord, remote: Mapping[str, RemoteVoice] | None) -> int:
    """The budget left on a voice id: the lower of the state's and Coze's count (read now,
    or as ``voicectl refresh`` last recorded it)."""
    left = record.clones_left
    if record.remote is not None:
        left = min(left, max(0, record.remote.available_training_times))
    if remote is not None and record.voice_id in remote:
        left = min(left, max(0, remote[record.voice_id].available_training_times))
    return left


def unknown_addresses(
    options: PlanOptions, desired: Iterable[DesiredVoice], state: State
) -> list[str]:
    known = {v.decl.address for v in desired} | set(state.voices)
    named = options.targets | options.excludes | options.retrain | options.replace
    return sorted(named - known)


def plan(
    desired: Sequence[DesiredVoice],
    state: State,
    remote: Mapping[str, RemoteVoice] | None = None,
    options: PlanOptions = NO_OPTIONS,
) -> Plan:
    """Every change needed to make Coze match the declarations, in a stable order."""
    wanted = {v.decl.address: v for v in desired}
    records = match(wanted, state)
    unknown = unknown_by_name(state, remote)
    claimed = {r.voice_id for r in records.values()}
    changes: list[Change] = []
    for address in sorted(wanted):
        voice = wanted[address]
        record = records.get(address)
        if record is None:
            same_name = unknown.get(voice.decl.name, ())
            if address in options.in_doubt:
                changes.append(_in_doubt(voice, same_name))
            else:
                changes.append(_create(voice, same_name, options.allow_duplicate_name))
        else:
            # Any voice but this address's own (another's, or an orphan, even one once
            # at this address) is moved here: the state must take it back into voices.
            moved_from = None if state.voices.get(address) is record else record.address
            same_name = unknown.get(voice.decl.name, ())
            changes.append(_diff(voice, record, moved_from, remote, options, same_name))
    for address in sorted(set(state.voices) - set(wanted)):
        record = state.voices[address]
        if record.voice_id not in claimed:
            changes.append(_orphan(record, remote, options))
    changes = _renames_noted(changes)
    changes = [c for c in changes if _selected(c, options)]
    changes.sort(key=lambda c: (ORDER[c.action], c.address))
    return Plan(tuple(changes))


def _renames_noted(changes: list[Change]) -> list[Change]:
    """A new voice and a voice leaving in one plan may be one voice renamed along with a
    new take: nothing ties them (no take is shared), so the plan pays for a new voice id.
    Each create says which leaving voice it may be, and how to keep its voice id."""
    leaving = [c for c in changes if c.after is None and c.before is not None and c.voice_id]
    if not leaving:
        return changes
    noted = []
    for change in changes:
        if change.action != "create" or change.after is None:
            noted.append(change)
            continue
        same = [
            c
            for c in leaving
            if c.before and c.before.get("language") == change.after.get("language")
        ]
        if len(same) > 3:
            same = [
                c for c in same if c.before and c.before.get("name") == change.after.get("name")
            ]
        notes = [
            f"if this is {c.address} renamed, `voicectl state mv {c.address} {change.address}` "
            f"first keeps voice {c.voice_id}: a retrain instead of a new voice "
            f"({PRICE})"
            for c in same[:3]
        ]
        noted.append(
            dataclasses.replace(change, notes=(*change.notes, *notes)) if notes else change
        )
    return noted


def _selected(change: Change, options: PlanOptions) -> bool:
    names = {change.address} | ({change.from_address} if change.from_address else set())
    if options.targets and not names & options.targets:
        return False
    return not names & options.excludes


def unknown_by_name(
    state: State, remote: Mapping[str, RemoteVoice] | None
) -> dict[str, tuple[str, ...]]:
    """Voice ids on Coze that the state does not know, by name (a lost state file, or a
    voice made in the console): a create of the same name may be one of them."""
    if not remote:
        return {}
    known = state.voice_ids()
    found: dict[str, list[str]] = {}
    for voice in remote.values():
        if voice.voice_id not in known:
            found.setdefault(voice.name, []).append(voice.voice_id)
    return {name: tuple(sorted(ids)) for name, ids in found.items()}


def _create(
    voice: DesiredVoice, same_name: Sequence[str] = (), allow_duplicate_name: bool = False
) -> Change:
    """A new voice id; blocked while Coze has a voice of that name the state does not
    know (a lost state file, a voice made in the console): importing it costs nothing."""
    address, name = voice.decl.address, voice.decl.name
    imports = ", ".join(f"`voicectl import {address} {voice_id}`" for voice_id in same_name)
    create = partial(
        Change,
        address=address,
        voice_id=None,
        before=None,
        after=desired_json(voice),
    )
    if same_name and not allow_duplicate_name:
        return create(
            action="blocked",
            reasons=("new_voice", "name_on_coze"),
            budget=Budget(before=None, after=None),
            cost=FREE,
            message=f"Coze already has voice(s) named {name!r} that the state does not know: "
            f"{imports} adopts one without a clone ({PRICE} saved); "
            "`--allow-duplicate-name` clones another",
        )
    notes = [
        f"Coze already has voice {voice_id} named {name!r}, unknown to the state; "
        "cloning another, as --allow-duplicate-name asked"
        for voice_id in same_name
    ]
    return create(
        action="create",
        reasons=("new_voice",),
        budget=Budget(before=None, after=CLONE_LIMIT - 1),
        cost=NEW_VOICE_COST,
        message=(
            f"a new voice id: {CNY_PER_NEW_VOICE} CNY once, then {CNY_PER_VOICE_MONTH} CNY a month"
        ),
        notes=tuple(notes),
    )


def _in_doubt(voice: DesiredVoice, same_name: Sequence[str]) -> Change:
    """A create an interrupted apply sent without learning its outcome: apply looks for
    it on Coze first (the voices of its name shown), and clones only if it is not there."""
    found = f" (Coze has {', '.join(same_name)} named like it)" if same_name else ""
    change = _create(voice)
    note = (
        f"an interrupted apply sent this clone and never learnt its outcome{found}: "
        "`voicectl apply` looks for it on Coze first and clones only if it is not there"
    )
    return dataclasses.replace(change, notes=(*change.notes, note))


def unproven_advice(address: str, voice_id: str | None, why: str = "") -> str:
    """What a person does about a voice found on Coze that may not be voicectl's clone
    (``why`` is the state's reason, from :func:`voicectl.apply.reconcile.unproven`)."""
    if why.startswith("the retrain"):  # the voice id is voicectl's; its training is not sure
        return (
            f"`voicectl apply --retrain {address}` trains it again from the take (one of its "
            f"clones); if its training is the take meant, `voicectl import {address} "
            f"{voice_id}` confirms it as it is"
        )
    return (
        f"If it is the voice meant, `voicectl import {address} {voice_id}` confirms it; "
        f"if not, `voicectl apply --replace {address}` clones a new voice id ({PRICE}; "
        f"voice {voice_id} stays on Coze, kept in the state as an orphan)"
    )


def unproven_note(address: str, voice_id: str | None, why: str) -> str:
    """The sentence plan and apply both say of a voice recorded as unproven."""
    return f"voice {voice_id} is unproven: {why}. {unproven_advice(address, voice_id, why)}"


def _diff(
    voice: DesiredVoice,
    record: VoiceRecord,
    moved_from: str | None,
    remote: Mapping[str, RemoteVoice] | None,
    options: PlanOptions,
    same_name: Sequence[str] = (),
) -> Change:
    decl, take = voice.decl, voice.take
    address = decl.address
    data_reasons = []
    if take.sha256 != record.take.sha256:
        data_reasons.append("audio_changed")
    if decl.text != record.text:
        data_reasons.append("text_changed")
    if decl.language != record.language:
        data_reasons.append("language_changed")
    meta_reasons = []
    if decl.name != record.name:
        meta_reasons.append("name_changed")
    if (decl.preview_text or None) != (record.preview_text or None):
        meta_reasons.append("preview_text_changed")
    moved = moved_from is not None or take.path != record.take.path
    # An orphan declared again at its old address is taken back, not moved.
    move_reasons = ["taken_back" if moved_from == address else "moved"] if moved else []
    left = clones_left(record, remote)
    protect = record.protect if decl.protect is None else decl.protect
    protected = protect and not options.allow_protected
    protect_reasons = []
    if protect != record.protect:
        protect_reasons.append("protect_recorded" if protect else "protect_lifted")
    notes = [
        f"{r.removesuffix('_changed').replace('_', ' ')} changed: Coze takes it only with a "
        f"clone; it takes effect with the next retrain (or `--retrain {address}` now)"
        for r in meta_reasons
    ]
    if not record.verified:
        # Short: it stays on every plan until the next retrain (Coze keeps no copy of
        # the audio an imported voice was cloned from, so nothing else can verify it).
        notes.append(
            "trained on a take voicectl never saw (imported, or retrained outside "
            f"voicectl): the next retrain (or `--retrain {address}`) sends {take.path} "
            f"(sha256 {take.sha256[:12]})"
        )
    if record.unproven is not None:
        notes.append(unproven_note(address, record.voice_id, record.unproven))
    # A voice that may be someone else's (a create found, not proven) is not trained over.
    foreign = record.unproven is not None and not record.unproven.startswith("the retrain")
    missing = remote is not None and record.voice_id not in remote
    # Said once: as the note of an unchanged voice, or as the message of a blocked retrain.
    missing_advice = (
        f"voice {record.voice_id} is not on Coze's voice list, so it cannot be retrained "
        f"(Coze would answer 4200): `--replace {address}` clones a new voice id ({PRICE}), "
        f"or `voicectl state rm {address}` forgets it"
    )
    if missing and same_name:  # a reply's id that was not the voice made, say
        missing_advice += "; Coze has " + ", ".join(
            f"voice {voice_id} named like it, unknown to the state "
            f"(`voicectl import {address} {voice_id}` takes it in, free)"
            for voice_id in same_name
        )
    if remote is not None and not missing:
        notes += [
            f"voice {record.voice_id} {detail} (see `voicectl drift`; `voicectl refresh` "
            "acknowledges it)"
            for _, detail in drift.changes(record, remote[record.voice_id])
        ]
    change = partial(
        Change,
        address=address,
        voice_id=record.voice_id,
        before=recorded_json(record),
        after=desired_json(voice),
        from_address=moved_from,
    )

    def blocked(reasons: list[str], message: str) -> Change:
        return change(
            action="blocked",
            reasons=tuple(reasons),
            budget=Budget(left, left),
            cost=FREE,
            message=message,
            notes=tuple(notes),
        )

    if address in options.replace or decl.space != record.space:
        why = ["replace_requested"] if address in options.replace else ["space_changed"]
        reasons = [*why, *move_reasons, *data_reasons, *meta_reasons, *protect_reasons]
        if protected:
            return blocked([*reasons, "protected"], _protected_message("replaced"))
        return change(
            action="replace",
            reasons=tuple(reasons),
            budget=Budget(left, CLONE_LIMIT - 1),
            cost=NEW_VOICE_COST,
            message=f"a new voice id ({PRICE}); voice {record.voice_id} "
            + (
                "is not on Coze's voice list; the state keeps it as an orphan"
                if missing
                else "stays on Coze as an orphan, billed 1 CNY a month"
            ),
        )
    asked = address in options.retrain
    if data_reasons or asked:
        reasons = [*move_reasons, *data_reasons, *meta_reasons, *protect_reasons]
        if asked and not data_reasons:
            reasons.append("retrain_requested")
        if protected:
            return blocked([*reasons, "protected"], _protected_message("retrained"))
        if missing:
            return blocked([*reasons, "missing_on_coze"], missing_advice)
        if foreign:
            return blocked(
                [*reasons, "unproven"],
                f"voice {record.voice_id} may be someone else's (see its note), so it is not "
                f"retrained until `voicectl import {address} {record.voice_id}` confirms it "
                f"or `--replace {address}` clones a new voice id",
            )
        if left < 1:
            return blocked(
                [*reasons, "budget_exhausted"],
                f"voice {record.voice_id} has no clones left (limit {CLONE_LIMIT}); "
                f"`--replace {address}` clones a new voice id ({PRICE}) and leaves the old "
                "one as an orphan",
            )
        return change(
            action="retrain",
            reasons=tuple(reasons),
            budget=Budget(left, left - 1),
            cost=FREE,
            message=f"one clone of voice {record.voice_id}",
        )
    if moved_from == address:
        message = f"state only: voice {record.voice_id}, orphaned, is declared again"
    elif moved_from:
        message = f"state only: renamed from {moved_from}"
    elif moved:
        message = f"state only: the same take, now at {take.path}"
    elif protect_reasons:
        message = "state only: " + (
            "protection recorded (removing the line from YAML will not lift it; "
            "`protect: false` does)"
            if protect
            else "protection lifted"
        )
    else:
        message = ""
    action = "move" if moved else "update" if protect_reasons else "noop"
    return change(
        action=action,
        reasons=tuple([*move_reasons, *protect_reasons, *meta_reasons]),
        budget=Budget(left, left),
        cost=FREE,
        message=message,
        notes=tuple([*notes, missing_advice] if missing else notes),
    )


def _protected_message(verb: str) -> str:
    return f"protected, and would be {verb}; pass --allow-protected if intended"


def _orphan(
    record: VoiceRecord, remote: Mapping[str, RemoteVoice] | None, options: PlanOptions
) -> Change:
    left = clones_left(record, remote)
    change = partial(
        Change,
        address=record.address,
        voice_id=record.voice_id,
        before=recorded_json(record),
        after=None,
        budget=Budget(left, left),
        cost=FREE,
    )
    if record.protect and not options.allow_protected:
        return change(
            action="blocked",
            reasons=("removed_from_config", "protected"),
            message=_protected_message("orphaned"),
        )
    return change(
        action="orphan",
        reasons=("removed_from_config",),
        message=f"Coze cannot delete: voice {record.voice_id} stays and is still billed "
        "1 CNY a month; the state keeps its id",
    )


def policy_violations(
    plan_: Plan,
    max_new_voices: int | None,
    max_one_time_cny: int | None,
    max_voices: int | None = None,
    *,
    on_account: int,
) -> list[str]:
    """Guardrails from voicectl.yaml's policy that this plan exceeds.

    ``max_voices`` is the account's voice slots and ``on_account`` the cloned voices it
    holds now (from Coze's list, or offline the state's): every new voice id takes a slot,
    and Coze cannot free one.
    """
    found = []
    new = sum(1 for c in plan_.changes if c.action in ("create", "replace"))
    if max_voices is not None and new and on_account + new > max_voices:
        short = on_account + new - max_voices
        found.append(
            f"policy.max_voices is {max_voices} (the account's voice slots) but the account "
            f"holds {on_account} cloned voice(s) and the plan makes {new} new: "
            f"{on_account + new} slots are needed; an administrator must buy {short} "
            f"voice-clone expansion pack(s) ({PRICE} each) before this plan can be applied, "
            "then raise policy.max_voices"
        )
    if max_new_voices is not None and new > max_new_voices:
        found.append(
            f"policy.max_new_voices is {max_new_voices} but the plan makes {new} new voice(s)"
        )
    spend = plan_.cost.one_time_cny
    if max_one_time_cny is not None and spend > max_one_time_cny:
        found.append(
            f"policy.max_one_time_cny is {max_one_time_cny} but the plan spends {spend} CNY"
        )
    return found
