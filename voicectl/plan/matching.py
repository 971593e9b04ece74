"""Which recorded voice each declared address becomes: the planner's identity rule.

Pure, like the planner that calls it: declarations and state in, a mapping out.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from voicectl.model import DesiredVoice, State, VoiceRecord


def match(wanted: Mapping[str, DesiredVoice], state: State) -> dict[str, VoiceRecord]:
    """Which recorded voice each declared address becomes; an address left out is created.

    A voice follows its take, so that renaming addresses or moving files never costs a
    clone (the README's "What costs a clone": the address renamed, same audio, is free):

    1. an address whose recorded voice is still trained on its declared take keeps it;
    2. an address without one takes a voice trained on exactly its declared take, in its
       workspace: a voice leaving the configuration, an orphan, or the voice of an
       address that itself takes another voice this way (so chains ``a -> b, b -> c``
       and swaps are moves). Among several, the one whose transcript and language match
       wins, then a leaving voice over another address's over an orphan, then the
       latest trained: this tells apart two voices cloned from one take;
    3. an address still unmatched keeps its own recorded voice (a retrain or a replace
       follows), or is a new voice.

    An address never gives up its recorded voice unless another address takes that voice
    (the plan never orphans a voice at an address it keeps). Takes are matched by each
    record's current take, imported voices included, not by the index of past clones: a
    voice retrained since no longer sounds like an old take.
    """
    pinned: set[str] = set()
    while True:
        matched = _attempt(wanted, state, pinned)
        claimed = {r.voice_id for r in matched.values()}
        stranded = {
            address
            for address, record in matched.items()
            if (own := state.voices.get(address)) is not None
            and own is not record
            and own.voice_id not in claimed
        }
        if not stranded:
            return matched
        pinned |= stranded  # these keep their own voice; match the rest again


def _attempt(
    wanted: Mapping[str, DesiredVoice], state: State, pinned: set[str]
) -> dict[str, VoiceRecord]:
    """One pass of the three rules of :func:`match`, the ``pinned`` addresses keeping
    their own voice."""
    matched = _keeping_their_take(wanted, state, pinned)
    taken = {r.voice_id for r in matched.values()}
    by_take = _free_by_take(state, taken)

    def owner(record: VoiceRecord) -> str | None:
        """The declared, still unmatched address whose own voice ``record`` is."""
        address = record.address
        if state.voices.get(address) is record and address in wanted and address not in matched:
            return address
        return None

    def candidates(address: str, able: set[str] | None) -> list[VoiceRecord]:
        voice = wanted[address]
        return [
            r
            for r in by_take.get(voice.take.sha256, ())
            if r.voice_id not in taken
            and r.space == voice.decl.space
            and ((o := owner(r)) is None or (able is not None and o in able and o != address))
        ]

    def able() -> set[str]:
        """Unmatched addresses that can each take some voice, given that the others do."""
        group = {a for a in wanted if a not in matched and voice_ids_for(a)}
        while True:
            keep = {a for a in group if candidates(a, group)}
            if keep == group:
                return group
            group = keep

    def voice_ids_for(address: str) -> bool:
        return bool(by_take.get(wanted[address].take.sha256))

    def rank(voice: DesiredVoice, record: VoiceRecord) -> tuple[Any, ...]:
        same_words = record.text == voice.decl.text and record.language == voice.decl.language
        place = 2 if record.orphaned_at is not None else 1 if owner(record) else 0
        return (not same_words, place, _neg(record.updated_at), record.address)

    for start in sorted(wanted):
        step: str | None = start
        while step is not None and step not in matched:
            found = candidates(step, None)
            if any(owner(r) for r in by_take.get(wanted[step].take.sha256, ())):
                found = candidates(step, able())
            if not found:
                break
            chosen = min(found, key=partial(rank, wanted[step]))
            next_step = owner(chosen)
            matched[step] = chosen
            taken.add(chosen.voice_id)
            step = next_step  # its voice was taken: it must take another now
    _keep_own(wanted, state, matched, taken)
    return matched


def _keeping_their_take(
    wanted: Mapping[str, DesiredVoice], state: State, pinned: set[str]
) -> dict[str, VoiceRecord]:
    """Rule 1: the addresses whose recorded voice is still trained on the declared take
    (in its workspace), and the ``pinned`` ones, keep it."""
    matched: dict[str, VoiceRecord] = {}
    for address, voice in wanted.items():
        record = state.voices.get(address)
        if record is not None and (
            address in pinned
            or (record.take.sha256 == voice.take.sha256 and record.space == voice.decl.space)
        ):
            matched[address] = record
    return matched


def _free_by_take(state: State, taken: set[str]) -> dict[str, list[VoiceRecord]]:
    """The recorded voices, declared or orphaned, that no address has taken, by take."""
    by_take: dict[str, list[VoiceRecord]] = {}
    for record in (*state.voices.values(), *state.orphans):
        if record.voice_id not in taken:
            by_take.setdefault(record.take.sha256, []).append(record)
    return by_take


def _keep_own(
    wanted: Mapping[str, DesiredVoice],
    state: State,
    matched: dict[str, VoiceRecord],
    taken: set[str],
) -> None:
    """Rule 3: an address still unmatched keeps its own recorded voice, if no other
    address took it (``matched`` and ``taken`` are updated)."""
    for address in sorted(set(wanted) - set(matched)):
        record = state.voices.get(address)
        if record is not None and record.voice_id not in taken:
            matched[address] = record
            taken.add(record.voice_id)


def _neg(timestamp: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in timestamp)
