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
from typing import Any, TypeVar

from voicectl.coze.speech import (
    REFERENCE_SENTENCES,
    Speaker,
    SpeechAsk,
    fetch_preview,
    synthesize,
)
from voicectl.errors import StateError, VoicectlError
from voicectl.model import CLONE_LIMIT, Action, Change, RemoteVoice, State
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
    clone: int  # its training now, by Coze's count when its list said; the retrain's is next
    sentence: str
    language: str
    facts: tuple[int, int] | None  # Coze's (update_time, trainings left): which training
    trained_on: str  # the take it is trained on now, when that is known ("" when not)
    after: str  # the take the retrain trains it on


def planned(
    work: Sequence[Change], state: State, remote: Mapping[str, RemoteVoice]
) -> list[Planned]:
    """The retrains among ``work``, each with its voice's sentence (by its language now)
    and which training it is now: by Coze's count, so that a voice retrained outside
    voicectl (in the console) is not taken for the training voicectl last made. A list
    that counts fewer trainings than the state lags behind Coze: its facts name no
    training. A console slot never trained has no sound to keep."""
    found = []
    for change in work:
        record = state.voices.get(change.address)
        if change.action != Action.RETRAIN or record is None or change.after is None:
            continue
        listed = remote.get(record.voice_id)
        if listed is not None and listed.state not in ("cloned", ""):
            continue  # an empty slot: its first upload is no retrain of a voice
        language = record.language if record.language in REFERENCE_SENTENCES else "en"
        facts = (listed.update_time, listed.available_training_times) if listed else None
        counted = CLONE_LIMIT - facts[1] if facts else record.clones_used
        if counted < record.clones_used:  # the list lags behind: trust the state
            facts, counted = None, record.clones_used
        seen = record.remote
        ours = counted == record.clones_used and (
            facts is None
            or seen is None
            or facts == (seen.update_time, seen.available_training_times)
        )
        found.append(
            Planned(
                change.address,
                record.voice_id,
                max(1, counted),
                REFERENCE_SENTENCES[language],
                language,
                facts,
                record.take.sha256 if ours else "",
                change.after.audio.sha256,
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
    anything is cloned when one cannot be kept (the places are checked before any
    speech is paid for, and the error counts the speeches made)."""
    try:
        for voice in retrains:
            directory = sounds.snapshot_dir(root, voice.voice_id, voice.clone)
            sounds.check_place(root, directory, (REFERENCE, PREVIEW))
    except StateError as exc:
        raise _not_kept(exc.message, 0) from None
    made: list[int] = []

    def keep(voice: Planned) -> int:
        directory = sounds.snapshot_dir(root, voice.voice_id, voice.clone)
        kept = sounds.read(root, directory)
        files: dict[str, bytes] = {}
        # Kept already (by the last apply, after its retrain) for this very training, and
        # saying this very sentence? Then it is heard again, not paid for again.
        reused = (
            kept is not None
            and voice.facts is not None
            and REFERENCE in kept[1]
            and kept[0].get("facts") == list(voice.facts)
            and kept[0].get("sentence") == voice.sentence
        )
        if not reused:
            files[REFERENCE] = _spoken(client, voice)
            made.append(1)
        link = remote[voice.voice_id].preview_audio if voice.voice_id in remote else ""
        if link:
            try:
                files[PREVIEW] = fetch_preview(link, client.base_url)
            except VoicectlError as exc:
                notice(f"{voice.address}: its preview was not kept ({exc.message})")
        if reused and kept is not None:  # what it says of the sound stays as it was
            meta = {k: v for k, v in kept[0].items() if k not in ("kind", "files", "where")}
            _store(root, directory, files, meta)
        else:
            facts = list(voice.facts) if voice.facts else None
            _put(root, directory, files, voice, "before the retrain", facts, voice.trained_on)
        return 0 if reused else 1

    try:
        return sum(_each(keep, retrains, parallelism))
    except VoicectlError as exc:
        raise _not_kept(exc.message, len(made)) from None


def _not_kept(why: str, made: int) -> VoicectlError:
    paid = f" ({made} speech call(s) were made, billed by Coze)" if made else ""
    return VoicectlError(
        f"could not keep a voice's sound before its retrain ({why}), so nothing was "
        f"cloned{paid}: the retrain overwrites the voice, and nothing on Coze keeps the "
        "old one. Mend it, or apply with --no-snapshot to retrain without keeping it"
    )


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
    wanted: list[tuple[Planned, int, list[int] | None]] = []
    for voice in retrains:
        record = final.voices.get(voice.address)
        if voice.address not in finished or record is None:
            continue
        seen = record.remote
        facts = (seen.update_time, seen.available_training_times) if seen else None
        if facts is None or CLONE_LIMIT - facts[1] <= voice.clone:  # not read after it
            wanted.append((voice, voice.clone + 1, None))
        else:
            wanted.append((voice, CLONE_LIMIT - facts[1], list(facts)))

    def keep(item: tuple[Planned, int, list[int] | None]) -> int:
        voice, clone, facts = item
        try:
            directory = sounds.snapshot_dir(root, voice.voice_id, clone)
            sounds.check_place(root, directory, (REFERENCE,))
        except StateError as exc:
            notice(f"{voice.address}: its sound after the retrain cannot be kept ({exc})")
            return 0
        try:
            audio = _spoken(client, voice)
        except VoicectlError as exc:
            notice(
                f"{voice.address}: its sound after the retrain was not kept ({exc.message}); "
                f"`voicectl speak {voice.address}` lets you hear it"
            )
            return 0
        try:  # paid for: counted, kept or not
            _put(
                root, directory, {REFERENCE: audio}, voice, "after the retrain", facts, voice.after
            )
        except VoicectlError as exc:
            notice(f"{voice.address}: its sound after the retrain was not kept ({exc.message})")
        return 1

    return sum(_each(keep, wanted, parallelism))


def _spoken(client: Speaker, voice: Planned) -> bytes:
    ask = SpeechAsk(voice.voice_id, voice.sentence, "wav", SPEECH_RATE, 1.0)
    return synthesize(client, ask).audio


def _put(
    root: Path,
    directory: Path,
    files: dict[str, bytes],
    voice: Planned,
    when: str,
    facts: list[int] | None,
    trained_on: str,
) -> None:
    meta = {
        "address": voice.address,
        "voice_id": voice.voice_id,
        "sentence": voice.sentence,
        "language": voice.language,
        "taken": when,
        "taken_at": now(),
        "facts": facts,  # Coze's update_time and trainings left: which training it is
        "trained_on": trained_on,  # the take's sha256, when known
    }
    _store(root, directory, files, meta)


def _store(root: Path, directory: Path, files: dict[str, bytes], meta: dict[str, Any]) -> None:
    try:
        sounds.put(root, directory, files, meta)
    except (OSError, StateError) as exc:
        raise VoicectlError(f"cannot keep it under {directory}: {exc}") from None


def _each(keep: Callable[[T], int], items: Sequence[T], parallelism: int) -> list[int]:
    if len(items) <= 1:
        return [keep(item) for item in items]
    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(items)))) as pool:
        try:
            return list(pool.map(keep, items))
        except BaseException:  # ^C, or a sound that cannot be kept: no more are paid for
            pool.shutdown(wait=True, cancel_futures=True)
            raise
