"""One declared voice against the voice id the state records for it: what it becomes.

What costs a clone follows the README's "What costs a clone": a take's bytes, its
transcript or its language changing costs a retrain; a new address or path holding the
same take is a ``move`` (state only); a name or preview text change alone waits for the
next retrain unless asked for; a new workspace needs a new voice id (``replace``). Pure,
like the planner that calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from voicectl.model import (
    CLONE_LIMIT,
    Action,
    Budget,
    Change,
    DesiredVoice,
    PlanOptions,
    RemoteVoice,
    VoiceRecord,
    VoiceSpec,
)
from voicectl.plan import drift
from voicectl.plan.changeparts import (
    FREE,
    NEW_VOICE_COST,
    PRICE,
    clones_left,
    protected_message,
    unproven_note,
)


def diff(
    voice: DesiredVoice,
    record: VoiceRecord,
    moved_from: str | None,
    remote: Mapping[str, RemoteVoice] | None,
    options: PlanOptions,
    same_name: Sequence[str] = (),
) -> Change:
    """A replace or a retrain (either perhaps blocked), else a change of the state only
    (move, update) or none; ``moved_from`` is the address the voice comes from, if not
    its own, and ``same_name`` the voice ids on Coze of its name the state does not know."""
    return _VoiceDiff(voice, record, moved_from, remote, options, same_name).change()


@dataclass(frozen=True)
class Reasons:
    """Why a declared voice differs from its record, grouped by what each costs."""

    data: tuple[str, ...]  # the take, its transcript or language: a clone
    meta: tuple[str, ...]  # the name or preview text: Coze takes them only with a clone
    move: tuple[str, ...]  # another address or path: the state only
    protect: tuple[str, ...]  # protection recorded or lifted: the state only


def reasons(voice: DesiredVoice, record: VoiceRecord, moved_from: str | None) -> Reasons:
    decl, take = voice.decl, voice.take
    data = []
    if take.sha256 != record.take.sha256:
        data.append("audio_changed")
    if decl.text != record.text:
        data.append("text_changed")
    if decl.language != record.language:
        data.append("language_changed")
    meta = []
    if decl.name != record.name:
        meta.append("name_changed")
    if (decl.preview_text or None) != (record.preview_text or None):
        meta.append("preview_text_changed")
    moved = moved_from is not None or take.path != record.take.path
    # An orphan declared again at its old address is taken back, not moved.
    move = ("taken_back" if moved_from == decl.address else "moved",) if moved else ()
    protect = protection(voice, record)
    lifted_or_recorded = "protect_recorded" if protect else "protect_lifted"
    return Reasons(
        data=tuple(data),
        meta=tuple(meta),
        move=move,
        protect=(lifted_or_recorded,) if protect != record.protect else (),
    )


def protection(voice: DesiredVoice, record: VoiceRecord) -> bool:
    """Whether the voice is protected: as declared, else as recorded (a removed line
    does not lift a protection)."""
    return record.protect if voice.decl.protect is None else voice.decl.protect


class _VoiceDiff:
    def __init__(
        self,
        voice: DesiredVoice,
        record: VoiceRecord,
        moved_from: str | None,
        remote: Mapping[str, RemoteVoice] | None,
        options: PlanOptions,
        same_name: Sequence[str],
    ) -> None:
        self.voice, self.record, self.moved_from = voice, record, moved_from
        self.options = options
        self.address = voice.decl.address
        self.why = reasons(voice, record, moved_from)
        self.left = clones_left(record, remote)
        self.protected = protection(voice, record) and not options.allow_protected
        self.missing = remote is not None and record.voice_id not in remote
        listed = None if remote is None or self.missing else remote[record.voice_id]
        self.drift = drift.changes(record, listed) if listed is not None else []
        # A retrain or a replace settles the first notes (its clone carries the name and
        # sends the take), and says only the standing ones.
        self.standing = self._standing()
        self.notes = [*self._settled_by_clone(), *self.standing]
        # Said once: as the note of an unchanged voice, or as the message of a blocked
        # retrain.
        self.missing_advice = self._missing_advice(same_name) if self.missing else ""

    def make(self, **fields: Any) -> Change:
        """The change of this voice, its data before and after, with ``fields``."""
        return Change(
            address=self.address,
            voice_id=self.record.voice_id,
            before=VoiceSpec.recorded(self.record),
            after=VoiceSpec.declared(self.voice),
            from_address=self.moved_from,
            **fields,
        )

    def change(self) -> Change:
        if self.address in self.options.replace or self.voice.decl.space != self.record.space:
            return self._replace()
        if self.why.data or self.address in self.options.retrain:
            return self._retrain()
        return self._state_only()

    def _settled_by_clone(self) -> list[str]:
        """What waits for the next clone: the name or preview text, the take never seen."""
        address, take = self.address, self.voice.take
        notes = [
            f"{r.removesuffix('_changed').replace('_', ' ')} changed: Coze takes it only with a "
            f"clone; it takes effect with the next retrain (or `--retrain {address}` now)"
            for r in self.why.meta
        ]
        if not self.record.verified:
            # Short: it stays on every plan until the next retrain (Coze keeps no copy of
            # the audio an imported voice was cloned from, so nothing else can verify it).
            notes.append(
                "trained on a take voicectl never saw (imported, or retrained outside "
                f"voicectl): the next retrain (or `--retrain {address}`) sends {take.path} "
                f"(sha256 {take.sha256[:12]})"
            )
        return notes

    def _standing(self) -> list[str]:
        """What a reviewer must know of the voice id whatever is done: that it is
        unproven, or changed on Coze (a retrain would train over the change)."""
        record, notes = self.record, []
        if record.unproven is not None:
            notes.append(unproven_note(self.address, record.voice_id, record.unproven))
        notes += [
            f"voice {record.voice_id} {detail} (see `voicectl drift`; `voicectl refresh` "
            "acknowledges it)"
            for _, detail in self.drift
        ]
        return notes

    def _missing_advice(self, same_name: Sequence[str]) -> str:
        address, voice_id = self.address, self.record.voice_id
        advice = (
            f"voice {voice_id} is not on Coze's voice list, so it cannot be retrained "
            f"(Coze would answer 4200): `--replace {address}` clones a new voice id ({PRICE}), "
            f"or `voicectl state rm {address}` forgets it"
        )
        if self.missing and same_name:  # a reply's id that was not the voice made, say
            advice += "; Coze has " + ", ".join(
                f"voice {other} named like it, unknown to the state "
                f"(`voicectl import {address} {other}` takes it in, free)"
                for other in same_name
            )
        return advice

    def _blocked(
        self, reasons: list[str], message: str, notes: Sequence[str] | None = None
    ) -> Change:
        return self.make(
            action=Action.BLOCKED,
            reasons=tuple(reasons),
            budget=Budget(self.left, self.left),
            cost=FREE,
            message=message,
            notes=tuple(self.notes if notes is None else notes),
        )

    def _replace(self) -> Change:
        why, voice_id = self.why, self.record.voice_id
        asked = self.address in self.options.replace
        first = ["replace_requested"] if asked else ["space_changed"]
        said = [*first, *why.move, *why.data, *why.meta, *why.protect]
        if self.protected:
            return self._blocked([*said, "protected"], protected_message("replaced"))
        return self.make(
            action=Action.REPLACE,
            reasons=tuple(said),
            budget=Budget(self.left, CLONE_LIMIT - 1),
            cost=NEW_VOICE_COST,
            message=f"a new voice id ({PRICE}); voice {voice_id} "
            + (
                "is not on Coze's voice list; the state keeps it as an orphan"
                if self.missing
                else "stays on Coze as an orphan, billed 1 CNY a month"
            ),
            notes=tuple(self.standing),
        )

    def _retrain(self) -> Change:
        why, address, voice_id, left = self.why, self.address, self.record.voice_id, self.left
        said = [*why.move, *why.data, *why.meta, *why.protect]
        if not why.data:
            said.append("retrain_requested")
        # A voice that may be someone else's (a create found, not proven) is not trained over.
        unproven = self.record.unproven
        foreign = unproven is not None and not unproven.startswith("the retrain")
        if self.protected:
            return self._blocked([*said, "protected"], protected_message("retrained"))
        if self.missing:
            return self._blocked([*said, "missing_on_coze"], self.missing_advice)
        if foreign:
            return self._blocked(
                [*said, "unproven"],
                f"voice {voice_id} may be someone else's (see its note), so it is not "
                f"retrained until `voicectl import {address} {voice_id}` confirms it "
                f"or `--replace {address}` clones a new voice id",
            )
        trained = [detail for kind, detail in self.drift if kind == "retrained"]
        if trained and address not in self.options.retrain:
            message = _trained_on_coze(self, trained[0])
            notes = [n for n in self.notes if trained[0] not in n]  # said in the message
            return self._blocked([*said, "retrained_on_coze"], message, notes)
        if left < 1:
            return self._blocked(
                [*said, "budget_exhausted"],
                f"voice {voice_id} has no clones left (limit {CLONE_LIMIT}); "
                f"`--replace {address}` clones a new voice id ({PRICE}) and leaves the old "
                "one as an orphan",
            )
        return self.make(
            action=Action.RETRAIN,
            reasons=tuple(said),
            budget=Budget(left, left - 1),
            cost=FREE,
            message=f"one clone of voice {voice_id}",
            notes=tuple(self.standing),
        )

    def _state_only(self) -> Change:
        why, moved_from = self.why, self.moved_from
        if moved_from == self.address:
            message = f"state only: voice {self.record.voice_id}, orphaned, is declared again"
        elif moved_from:
            message = f"state only: renamed from {moved_from}"
        elif why.move:
            message = f"state only: the same take, now at {self.voice.take.path}"
        elif why.protect:
            message = "state only: " + (
                "protection recorded (removing the line from YAML will not lift it; "
                "`protect: false` does)"
                if protection(self.voice, self.record)
                else "protection lifted"
            )
        else:
            message = ""
        action = Action.MOVE if why.move else Action.UPDATE if why.protect else Action.NOOP
        notes = [*self.notes, self.missing_advice] if self.missing else self.notes
        return self.make(
            action=action,
            reasons=tuple([*why.move, *why.protect, *why.meta]),
            budget=Budget(self.left, self.left),
            cost=FREE,
            message=message,
            notes=tuple(notes),
        )


def _trained_on_coze(voice: _VoiceDiff, detail: str) -> str:
    """Why a voice trained on Coze since the state recorded it is not retrained unasked:
    an apply whose journal was lost may have trained it on this very take already."""
    address, voice_id = voice.address, voice.record.voice_id
    return (
        f"voice {voice_id} {detail}: an apply whose record was lost (a journal removed "
        "after a crash) may have trained it on this take already, or someone retrained "
        f"it by other means. If it holds this take, `voicectl import "
        f"{address} {voice_id}` records it without a clone; else `voicectl refresh` "
        f"acknowledges Coze's count (the next plan retrains it), or `--retrain {address}` "
        f"retrains it now ({voice.left} clone(s) left)"
    )
