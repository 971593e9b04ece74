"""Drift: where Coze's account no longer matches the state. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from voicectl.model import RemoteVoice, State, VoiceRecord


@dataclass(frozen=True, order=True)
class Drift:
    address: str
    kind: str  # "missing" | "retrained" | "renamed"
    voice_id: str
    detail: str


def find(state: State, remote: Mapping[str, RemoteVoice]) -> list[Drift]:
    """Every managed voice that is missing on Coze, retrained or renamed outside voicectl.

    The baseline is what voicectl last knew: its own record, and Coze's facts as last
    read (``voicectl refresh`` records them, so a change it has seen is no longer drift).
    """
    found = []
    for address, record in state.voices.items():
        voice = remote.get(record.voice_id)
        if voice is None:
            found.append(
                Drift(
                    address,
                    "missing",
                    record.voice_id,
                    "not on Coze's voice list (another account or region, or a token without "
                    "access to its space?)",
                )
            )
            continue
        found += [
            Drift(address, kind, record.voice_id, detail) for kind, detail in changes(record, voice)
        ]
    return sorted(found)


def changes(record: VoiceRecord, voice: RemoteVoice) -> list[tuple[str, str]]:
    """(kind, detail) of each way ``voice`` on Coze differs from what voicectl knew of it."""
    seen = record.remote
    found = []
    expected = record.clones_left
    if seen is not None:
        expected = min(expected, seen.available_training_times)
    if voice.available_training_times < expected:
        found.append(
            (
                "retrained",
                f"retrained outside voicectl (Coze has {voice.available_training_times} "
                f"clones left, voicectl expects {expected})",
            )
        )
    elif seen is not None and voice.update_time > seen.update_time:
        found.append(
            (
                "retrained",
                f"updated on Coze (update_time {voice.update_time}) after voicectl last read "
                f"it ({seen.update_time})",
            )
        )
    known = {record.name} | ({seen.name} if seen is not None else set())
    if voice.name not in known:
        found.append(("renamed", f"named {voice.name!r} on Coze, {record.name!r} in the state"))
    return found


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
