"""The planner: a pure function of declarations, state and (optionally) the remote account.

No filesystem, no network, no printing. Each declared address is matched to a recorded
voice (:mod:`voicectl.plan.matching`) and diffed against it
(:mod:`voicectl.plan.voicediff`: retrain, replace, move, ...); an address without one is
a new voice id (``create``); a removed declaration leaves an orphan, because Coze cannot
delete.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from functools import partial

from voicectl.model import (
    CLONE_LIMIT,
    CNY_PER_NEW_VOICE,
    CNY_PER_VOICE_MONTH,
    Action,
    Budget,
    Change,
    DesiredVoice,
    Plan,
    PlanOptions,
    RemoteVoice,
    State,
    VoiceRecord,
    VoiceSpec,
)
from voicectl.plan.changeparts import (
    FREE,
    NEW_VOICE_COST,
    PRICE,
    clones_left,
    protected_message,
)
from voicectl.plan.matching import match
from voicectl.plan.voicediff import diff

NO_OPTIONS = PlanOptions()  # a plan of the declarations as they are
ORDER = {
    Action.BLOCKED: 0,
    Action.REPLACE: 1,
    Action.CREATE: 2,
    Action.RETRAIN: 3,
    Action.MOVE: 4,
    Action.UPDATE: 5,
    Action.ORPHAN: 6,
    Action.NOOP: 7,
}


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
            changes.append(diff(voice, record, moved_from, remote, options, same_name))
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
        if change.action != Action.CREATE or change.after is None:
            noted.append(change)
            continue
        same = [c for c in leaving if c.before and c.before.language == change.after.language]
        if len(same) > 3:
            same = [c for c in same if c.before and c.before.name == change.after.name]
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
        after=VoiceSpec.declared(voice),
    )
    if same_name and not allow_duplicate_name:
        return create(
            action=Action.BLOCKED,
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
        action=Action.CREATE,
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


def _orphan(
    record: VoiceRecord, remote: Mapping[str, RemoteVoice] | None, options: PlanOptions
) -> Change:
    left = clones_left(record, remote)
    change = partial(
        Change,
        address=record.address,
        voice_id=record.voice_id,
        before=VoiceSpec.recorded(record),
        after=None,
        budget=Budget(left, left),
        cost=FREE,
    )
    if record.protect and not options.allow_protected:
        return change(
            action=Action.BLOCKED,
            reasons=("removed_from_config", "protected"),
            message=protected_message("orphaned"),
        )
    return change(
        action=Action.ORPHAN,
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
    new = sum(1 for c in plan_.changes if c.action in (Action.CREATE, Action.REPLACE))
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
