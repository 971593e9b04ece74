"""A retrained voice's sound, kept before the retrain overwrites it and heard after.

Coze keeps no earlier training of a voice: a retrain overwrites it under the same id.
So before an apply retrains, it keeps, for each voice it retrains, under
``.voicectl/snapshots/<voice_id>/<clone>/`` (:mod:`voicectl.state.sounds`):

- ``preview.mp3``: the voice's preview as Coze's list links it (fetched without the
  token; free), when the list gives a link that can be fetched;
- ``reference.wav``: one fixed sentence in the voice's language
  (:data:`voicectl.coze.speech.REFERENCE_SENTENCES`), spoken by the voice as it is
  (one billed speech; none when an earlier apply already kept it for this training).

After the retrain, the same sentence spoken with the new training is kept under the
next clone number (one billed speech). So a plan shows at most two speech calls a
retrain (``Plan.speech_calls``), and none are made when it shows none (``--no-snapshot``).

The sound before is the one that cannot be had later: when it cannot be kept (the
token lacks ``createSpeech``, Coze refuses), nothing is cloned, and the error says so
and names ``--no-snapshot``. The sound after can always be heard with ``voicectl
speak``, so its failure is a notice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from voicectl.coze.speech import (
    REFERENCE_SENTENCES,
    Speaker,
    SpeechAsk,
    fetch_preview,
    synthesize,
)
from voicectl.errors import StateError, VoicectlError
from voicectl.model import Action, Change, RemoteVoice, State
from voicectl.state import sounds
from voicectl.state.statefile import now

T = TypeVar("T")
REFERENCE = "reference.wav"
PREVIEW = "preview.mp3"
SPEECH_RATE = 24000


@dataclass(frozen=True)
class Planned:
    """A voice this apply retrains, and the sentence it is heard saying."""

    address: str
    voice_id: str
    clone: int  # its training now; the retrain makes the next
    sentence: str
    language: str


def planned(work: Sequence[Change], state: State) -> list[Planned]:
    """The retrains among ``work``, each with its voice's sentence (by its language now)."""
    found = []
    for change in work:
        record = state.voices.get(change.address)
        if change.action != Action.RETRAIN or record is None:
            continue
        language = record.language if record.language in REFERENCE_SENTENCES else "en"
        found.append(
            Planned(
                change.address,
                record.voice_id,
                record.clones_used,
                REFERENCE_SENTENCES[language],
                language,
            )
        )
    return found


def before(
    root: Path,
    client: Speaker,
    retrains: Sequence[Planned],
    remote: Mapping[str, RemoteVoice],
    notice: Callable[[str], None],
    parallelism: int = 4,
) -> int:
    """Keep each voice's sound as it is; returns the speech calls made. Raises before
    anything is cloned when one cannot be kept."""

    def keep(voice: Planned) -> int:
        directory = sounds.snapshot_dir(root, voice.voice_id, voice.clone)
        kept = sounds.read(root, directory)
        files: dict[str, bytes] = {}
        calls = 0
        if kept is None or REFERENCE not in kept[1]:
            files[REFERENCE] = _spoken(client, voice)
            calls = 1
        link = remote[voice.voice_id].preview_audio if voice.voice_id in remote else ""
        if link:
            try:
                files[PREVIEW] = fetch_preview(link, client.base_url)
            except VoicectlError as exc:
                notice(f"{voice.address}: its preview was not kept ({exc.message})")
        _put(root, directory, files, voice, "before the retrain")
        return calls

    try:
        return sum(_each(keep, retrains, parallelism))
    except VoicectlError as exc:
        raise VoicectlError(
            f"could not keep a voice's sound before its retrain ({exc.message}), so nothing "
            "was cloned: the retrain overwrites the voice, and nothing on Coze keeps the "
            "old one. Mend it, or apply with --no-snapshot to retrain without keeping it"
        ) from None


def after(
    root: Path,
    client: Speaker,
    retrains: Sequence[Planned],
    done: Sequence[tuple[Change, str | None]],
    final: State,
    notice: Callable[[str], None],
    parallelism: int = 4,
) -> int:
    """The same sentence with each new training, for the retrains that were carried
    out; returns the speech calls made. A failure is a notice (`voicectl speak` can)."""
    finished = {c.address for c, _ in done if c.action == Action.RETRAIN}
    wanted = []
    for voice in retrains:
        record = final.voices.get(voice.address)
        if voice.address in finished and record is not None:
            wanted.append((voice, record.clones_used))

    def keep(item: tuple[Planned, int]) -> int:
        voice, clone = item
        try:
            audio = _spoken(client, voice)
            directory = sounds.snapshot_dir(root, voice.voice_id, clone)
            _put(root, directory, {REFERENCE: audio}, voice, "after the retrain")
        except VoicectlError as exc:
            notice(
                f"{voice.address}: its sound after the retrain was not kept ({exc.message}); "
                f"`voicectl speak {voice.address}` lets you hear it"
            )
            return 0
        return 1

    return sum(_each(keep, wanted, parallelism))


def _spoken(client: Speaker, voice: Planned) -> bytes:
    ask = SpeechAsk(voice.voice_id, voice.sentence, "wav", SPEECH_RATE, 1.0)
    return synthesize(client, ask).audio


def _put(root: Path, directory: Path, files: dict[str, bytes], voice: Planned, when: str) -> None:
    meta = {
        "address": voice.address,
        "voice_id": voice.voice_id,
        "sentence": voice.sentence,
        "language": voice.language,
        "taken": when,
        "taken_at": now(),
    }
    try:
        sounds.put(root, directory, files, meta)
    except (OSError, StateError) as exc:
        raise VoicectlError(f"cannot keep it under {directory}: {exc}") from None


def _each(keep: Callable[[T], int], items: Sequence[T], parallelism: int) -> list[int]:
    if len(items) <= 1:
        return [keep(item) for item in items]
    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(items)))) as pool:
        return list(pool.map(keep, items))
