"""Drift: where Coze's account no longer matches the state. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from voicectl.model import RemoteVoice, State


@dataclass(frozen=True, order=True)
class Drift:
    address: str
    kind: str  # "missing" | "retrained" | "renamed"
    voice_id: str
    detail: str


def find(state: State, remote: Mapping[str, RemoteVoice]) -> list[Drift]:
    """Every managed voice that is missing on Coze, retrained or renamed outside voicectl."""
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
        seen = record.remote
        if voice.available_training_times < record.clones_left:
            found.append(
                Drift(
                    address,
                    "retrained",
                    record.voice_id,
                    f"Coze has {voice.available_training_times} clones left, the state expects "
                    f"{record.clones_left}: retrained outside voicectl",
                )
            )
        elif seen is not None and voice.update_time > seen.update_time:
            found.append(
                Drift(
                    address,
                    "retrained",
                    record.voice_id,
                    f"updated on Coze (update_time {voice.update_time}) after voicectl last read "
                    f"it ({seen.update_time})",
                )
            )
        if voice.name != record.name:
            found.append(
                Drift(
                    address,
                    "renamed",
                    record.voice_id,
                    f"named {voice.name!r} on Coze, {record.name!r} in the state",
                )
            )
    return sorted(found)
