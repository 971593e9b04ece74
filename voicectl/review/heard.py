"""How a voice sounded before and after its last retrain, for the review page.

Apply keeps a retrained voice's sound (:mod:`voicectl.apply.snapshots`) under
``.voicectl/snapshots/``; the page shows, for each voice a change touches, the two latest
trainings kept there side by side: the reference sentence as each training spoke it,
and the preview Coze made of it when one was kept. Only snapshots this machine sealed
are shown (:mod:`voicectl.state.sounds`): a pull request cannot put a voice on the page
that was never heard. The files are copied into the review, which stands on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voicectl.model import CLONE_LIMIT, Plan, State
from voicectl.state import sounds

FOLDER = "sounds"


@dataclass(frozen=True)
class Training:
    """One training of a voice as the page plays it."""

    clone: int
    current: bool  # the voice's training now, as the plan knows it
    taken: str  # "before the retrain", "after the retrain"
    taken_at: str
    sentence: str
    reference: str | None  # paths inside the review
    preview: str | None


def gather(root: Path, made: Path, plan: Plan, state: State) -> dict[str, list[Training]]:
    """By address: its voice's two latest trainings with a sound kept, oldest first, copied
    into ``made`` (unchanged voices too: after an apply, its retrains are heard here).
    The voice is the one the state records at the change's address, never the id a plan
    file names (a saved plan is a file anyone can edit)."""
    found: dict[str, list[Training]] = {}
    for change in plan.changes:
        record = state.voices.get(change.address)
        voice_id = record.voice_id if record is not None else None
        if voice_id != change.voice_id:
            continue
        if not voice_id or change.address in found:
            continue
        kept = [
            (c, k) for c, k in sounds.snapshots(root, voice_id).items() if "reference.wav" in k[1]
        ]
        if not kept:
            continue
        left = change.budget.before
        now = CLONE_LIMIT - left if left is not None else None
        trainings = []
        for clone, (meta, files) in kept[-2:]:
            trainings.append(
                Training(
                    clone,
                    clone == now,
                    str(meta.get("taken", "")),
                    str(meta.get("taken_at", "")),
                    str(meta.get("sentence", "")),
                    _copy(made, voice_id, clone, files, "reference.wav"),
                    _copy(made, voice_id, clone, files, "preview.mp3"),
                )
            )
        found[change.address] = trainings
    return found


def _copy(made: Path, voice_id: str, clone: int, files: dict[str, bytes], name: str) -> str | None:
    """The file as it was verified, written into the review (never copied from its path
    again: it could have been swapped since)."""
    if name not in files:
        return None
    relative = f"{FOLDER}/{voice_id}-{clone}-{name}"
    (made / FOLDER).mkdir(exist_ok=True)
    (made / relative).write_bytes(files[name])
    return relative
