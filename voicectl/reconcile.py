"""Finding out what became of a clone whose answer never came: pure matching.

Coze has no idempotency key and no get-by-id, so the list endpoint is the witness. A
create is the voice with the same name, created at or after the request left, whose id
the state does not know; a retrain is the same voice id, updated at or after the request
left, with fewer trainings left than before.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from voicectl.journal import Pending
from voicectl.model import RemoteVoice

CLOCK_SLACK_SECONDS = 5  # Coze's timestamps are whole seconds from another clock


def candidates(
    pending: Pending, remote: Sequence[RemoteVoice], known_ids: Iterable[str]
) -> list[RemoteVoice]:
    change = pending.change
    since = int(pending.started_unix) - CLOCK_SLACK_SECONDS
    if change.action in ("create", "replace"):
        name = (change.after or {}).get("name")
        known = set(known_ids)
        return [
            v
            for v in remote
            if v.name == name and v.create_time >= since and v.voice_id not in known
        ]
    before = change.budget.before
    return [
        v
        for v in remote
        if v.voice_id == change.voice_id
        and v.update_time >= since
        and before is not None
        and v.available_training_times < before
    ]


def wrong_account(known: Collection[str], listed: Collection[str], api_base: str) -> str | None:
    """Why a complete listing that holds none of the ``known`` voice ids (the state's) is
    another account, or None. There, every voice would be cloned anew, and every lost
    clone would look never carried out."""
    if not known or any(voice_id in listed for voice_id in known):
        return None
    return (
        f"none of the state's {len(known)} voice id(s) is on this account's voice list "
        f"({len(listed)} voice(s), read to the end): COZE_API_TOKEN is likely a token of "
        "another account or team, or of the other region (the API base is "
        f"{api_base}; coze.cn and coze.com are separate accounts), or it lacks access to "
        "the voices' workspaces; check the token and COZE_API_BASE"
    )
