"""The pieces every change of a plan is made of: a voice as JSON (declared, recorded),
the price of a new voice id, the clones a voice id has left, and the sentences that plan
and apply both say (a protected voice, an unproven one).

Pure, like the planner that builds changes from them.
"""

from __future__ import annotations

from collections.abc import Mapping

from voicectl.model import (
    CNY_PER_NEW_VOICE,
    CNY_PER_VOICE_MONTH,
    Cost,
    RemoteVoice,
    VoiceRecord,
)

PRICE = f"{CNY_PER_NEW_VOICE} CNY"  # of a new voice id, as messages say it
NEW_VOICE_COST = Cost(one_time_cny=CNY_PER_NEW_VOICE, monthly_cny_delta=CNY_PER_VOICE_MONTH)
FREE = Cost()


def clones_left(record: VoiceRecord, remote: Mapping[str, RemoteVoice] | None) -> int:
    """The budget left on a voice id: the lower of the state's and Coze's count (read now,
    or as ``voicectl refresh`` last recorded it)."""
    left = record.clones_left
    if record.remote is not None:
        left = min(left, max(0, record.remote.available_training_times))
    if remote is not None and record.voice_id in remote:
        left = min(left, max(0, remote[record.voice_id].available_training_times))
    return left


def protected_message(verb: str) -> str:
    return f"protected, and would be {verb}; pass --allow-protected if intended"


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
