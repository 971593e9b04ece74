"""What is checked before an apply spends anything: a saved plan against everything it
is bound to, and any plan against the account's facts."""

from __future__ import annotations

from collections.abc import Mapping

from voicectl.declare import config
from voicectl.declare.hashing import sha256_file
from voicectl.errors import SavedPlanError, VoicectlError
from voicectl.model import Action, Plan, RemoteVoice, State
from voicectl.plan import drift as drifts
from voicectl.plan import planner, planning, repository, savedplan
from voicectl.planfile import change_to_json
from voicectl.state.statefile import new_state


def verified(
    cfg: config.Config,
    current: State | None,
    saved: savedplan.SavedPlan,
    remote: Mapping[str, RemoteVoice],
    display: str,
) -> Plan:
    """The saved plan, if everything it is bound to is unchanged; else a clear refusal."""
    snapshot = repository.read_valid(cfg)
    bound_remote = remote if saved.binding.remote is not None else None
    takes = {v.take.path: v.take.sha256 for v in snapshot.desired}
    digests = planning.declaration_digests(cfg, snapshot.files)
    found = savedplan.differences(saved.binding, current, digests, takes, bound_remote)
    if saved.binding.remote is None and current is not None:
        found += _unseen_drift(saved.plan, current, remote)
    uploads = {c.address for c in saved.plan.actionable if c.spends_clone}
    for voice in snapshot.desired:  # what will be uploaded is hashed afresh, not from cache
        if voice.decl.address in uploads and (
            sha256_file(cfg.root / voice.take.path) != voice.take.sha256
        ):
            found.append(f"{voice.take.path}: audio changed while planning")
    if not found:
        base = current if current is not None else new_state()
        fresh, _ = planning.planned(cfg, base, saved.options, bound_remote)
        found += _replanned(saved.plan, fresh)
        if not found and fresh.speech_calls != saved.plan.speech_calls:
            found.append(
                f"it shows {saved.plan.speech_calls} speech call(s) where its options make "
                f"{fresh.speech_calls} (edited by hand?)"
            )
    if found:
        raise SavedPlanError(
            f"{display}: the saved plan is stale, nothing was applied:\n  - "
            + "\n  - ".join(found)
            + "\nMake and review a new one: `voicectl plan --out FILE`."
        )
    return saved.plan


def _unseen_drift(plan: Plan, current: State, remote: Mapping[str, RemoteVoice]) -> list[str]:
    """A plan saved without Coze's facts (no token, or its binding edited) could not show
    that a voice it changes was retrained or renamed on Coze since the state recorded it:
    carried out, it would overwrite that unseen, so it is refused over it."""
    changed = {c.address for c in plan.actionable}
    return [
        f"{d.address}: {d.detail}; the plan was made without Coze's facts, so it could not "
        "show this (plan with COZE_API_TOKEN set, or `voicectl refresh` first)"
        for d in drifts.find(current, remote)
        if d.address in changed and d.kind != "missing"  # missing: fits_account says it
    ]


def _replanned(saved: Plan, fresh: Plan, shown: int = 5) -> list[str]:
    """How the saved plan's changes differ from those planned now from the same inputs:
    by address, what it says and what is planned now, when an action differs (Coze's
    account changed since, say); else that it was edited (or made by another version)."""
    if [change_to_json(c) for c in fresh.changes] == [change_to_json(c) for c in saved.changes]:
        return []
    now = {c.address: c for c in fresh.changes}
    moved = []
    for change in saved.changes:
        again = now.get(change.address)
        if again is None or again.action != change.action:
            said = f"{again.action}" if again is not None else "nothing"
            why = f" ({again.message})" if again is not None and again.message else ""
            moved.append(f"{change.address}: the plan says {change.action}, now {said}{why}")
    if moved:
        more = f"; and {len(moved) - shown} more" if len(moved) > shown else ""
        return ["what voicectl plans now differs: " + "; ".join(moved[:shown]) + more]
    return [
        "its changes differ from what voicectl plans now from the same inputs "
        "(edited by hand, or made by another voicectl version)"
    ]


def fits_account(
    result: Plan, remote: Mapping[str, RemoteVoice], current: State, allow_duplicate_name: bool
) -> None:
    """What a plan saved offline could not know, checked against the account before any
    clone: a retrain of a voice that is not on Coze's list would fail (4200), and a
    create named like a voice Coze has and the state does not would pay for a voice that
    `voicectl import` adopts free."""
    problems = []
    missing = sorted(
        f"{c.address} (voice {c.voice_id})"
        for c in result.actionable
        if c.action == Action.RETRAIN and c.voice_id not in remote
    )
    if missing:
        problems.append(
            f"not on Coze's voice list, so they cannot be retrained: {', '.join(missing)} "
            "(`--replace ADDRESS` makes a new voice id, `voicectl state rm ADDRESS` forgets it)"
        )
    unknown = planner.unknown_by_name(current, remote)
    named = sorted(
        f"{c.address} (Coze has {', '.join(unknown[name])})"
        for c in result.actionable
        if c.action == Action.CREATE
        and (name := c.after.name if c.after else "") in unknown
        and not allow_duplicate_name
    )
    if named:
        problems.append(
            "a voice of that name is on Coze and not in the state: "
            f"{', '.join(named)} (`voicectl import ADDRESS VOICE_ID` adopts it free; "
            "`--allow-duplicate-name` clones another)"
        )
    if problems:
        raise VoicectlError(
            "the plan does not fit the account, nothing was cloned: "
            + "; ".join(problems)
            + ". A new `voicectl plan` shows each"
        )
