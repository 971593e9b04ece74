"""Hearing a cloned voice: which voice an address names, and its speech, paid for once.

A speech is billed, so what was heard is kept (:mod:`voicectl.state.sounds`) under the
sha256 of the API base, the voice's training as Coze's list shows it now (its update
time and trainings left: a retrain anywhere makes every earlier speech stale) and the
request; a repeat is served from there and sends no speech request (the list, which is
free, is read each time: the state alone cannot know of a retrain made elsewhere).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

from voicectl.coze import replies
from voicectl.coze.client import CozeClient
from voicectl.coze.speech import SpeechAsk, synthesize
from voicectl.errors import StateError, UsageError, VoicectlError
from voicectl.model import CLONE_LIMIT, DesiredVoice, RemoteVoice, State, VoiceRecord
from voicectl.state import sounds
from voicectl.state.statefile import now


@dataclass(frozen=True)
class Target:
    """A voice to speak with, and what voicectl knows of it."""

    label: str  # the address, or "voice <id>"
    voice_id: str
    clone: int | None  # how many trainings (Coze's count once on_account read it); None: unknown
    model_type: str = ""  # big or small; "": not known
    language: str = ""
    text: str | None = None  # what it says by default: the declaration's preview_text
    stale: str | None = None  # why its training is not what is declared now
    training: tuple[int, int] | None = None  # Coze's (update_time, trainings left) now


@dataclass(frozen=True)
class Heard:
    target: Target
    ask: SpeechAsk
    audio: bytes
    logid: str
    duration: float
    cached: bool


def for_address(state: State, desired: Mapping[str, DesiredVoice], address: str) -> Target:
    """The voice the state records for ``address``; a clear refusal when there is none."""
    record = state.voices.get(address)
    declared = desired.get(address)
    if record is None:
        orphan = next((r for r in state.orphans if r.address == address), None)
        if orphan is not None:
            raise UsageError(
                f"{address}: no longer declared; its voice {orphan.voice_id} is an orphan "
                f"in the state: `voicectl speak --voice-id {orphan.voice_id} TEXT` hears it"
            )
        if declared is not None:
            raise UsageError(
                f"{address}: not applied yet, so no voice on Coze speaks for it: run "
                "`voicectl apply` first"
            )
        raise UsageError(f"{address}: no voice of that address is declared or in the state")
    stale = None
    if declared is not None:
        changed = [
            what
            for what, differs in (
                ("take", declared.take.sha256 != record.take.sha256),
                ("text", declared.decl.text != record.text),
            )
            if differs
        ]
        if changed:
            stale = (
                f"{address}: its {' and '.join(changed)} changed since the last apply: the "
                f"voice still has its old training (clone {record.clones_used}, take "
                f"{record.take.sha256[:12]}) until `voicectl apply` retrains it"
            )
    preview = declared.decl.preview_text if declared is not None else record.preview_text
    return _of_record(address, record, preview, stale)


def for_voice_id(state: State, voice_id: str) -> Target:
    """A voice named by id: the state's record of it, else one Coze's list must show."""
    if not voice_id:
        raise UsageError("--voice-id is empty: give a voice id")
    for record in (*state.voices.values(), *state.orphans):
        if record.voice_id == voice_id:
            return _of_record(f"voice {voice_id}", record, record.preview_text, None)
    return Target(f"voice {voice_id}", voice_id, None)


def on_account(target: Target, listed: Mapping[str, RemoteVoice]) -> Target:
    """``target`` as Coze's list shows it now: its training (what a cached speech is
    filed under: a retrain anywhere, in the console or by a teammate's apply this
    checkout has not pulled, makes every earlier speech stale), its model type and
    language; a voice not on the list, or not trained, is refused."""
    remote = listed.get(target.voice_id)
    if remote is None:
        raise UsageError(
            f"{target.label}: voice {target.voice_id} is not on Coze's voice list for this "
            "token (custom voices only; another account, or a workspace the token does "
            "not see?)"
        )
    if remote.state not in ("cloned", ""):
        raise UsageError(f"{target.label}: voice {target.voice_id} has not been trained yet")
    clone = CLONE_LIMIT - remote.available_training_times
    stale = target.stale
    if target.clone is not None and clone != target.clone:
        stale = (
            f"{target.label}: Coze counts {clone} training(s) of voice {target.voice_id}, the "
            f"state {target.clone} (retrained outside this checkout, or by an apply it has "
            "not pulled): it is heard as Coze has it now"
        )
    return replace(
        target,
        clone=clone,
        model_type=remote.model_type or target.model_type,
        language=target.language or remote.language,
        stale=stale,
        training=(remote.update_time, remote.available_training_times),
    )


def _of_record(label: str, record: VoiceRecord, text: str | None, stale: str | None) -> Target:
    model = record.remote.model_type if record.remote is not None else ""
    return Target(label, record.voice_id, record.clones_used, model, record.language, text, stale)


def cache_key(api_base: str, target: Target, ask: SpeechAsk) -> str:
    body = {"api_base": api_base, "training": target.training, "request": ask.body()}
    return hashlib.sha256(replies.canonical(body)).hexdigest()


def cached(root: Path, api_base: str, target: Target, ask: SpeechAsk) -> Heard | None:
    """What was heard before for exactly this, if this machine kept it."""
    if target.training is None:
        return None
    kept = sounds.read(root, sounds.speech_dir(root, cache_key(api_base, target, ask)))
    if kept is None or "audio" not in kept[1]:
        return None
    meta, files = kept
    audio = files["audio"]
    return Heard(target, ask, audio, str(meta.get("logid", "")), float(meta["duration"]), True)


def speak(
    client: CozeClient, root: Path, target: Target, ask: SpeechAsk, *, use_cache: bool = True
) -> Heard:
    """``ask`` spoken: from the cache when it holds it, else by Coze (and then kept)."""
    if use_cache:
        hit = cached(root, client.base_url, target, ask)
        if hit is not None:
            return hit
    spoken = synthesize(client, ask)
    heard = Heard(target, ask, spoken.audio, spoken.logid, spoken.duration, False)
    if target.training is not None:
        meta = {
            "voice_id": target.voice_id,
            "clone": target.clone,
            "request": ask.body(),
            "logid": spoken.logid,
            "duration": spoken.duration,
            "made_at": now(),
        }
        try:
            directory = sounds.speech_dir(root, cache_key(client.base_url, target, ask))
            sounds.put(root, directory, {"audio": spoken.audio}, meta)
        except (OSError, StateError):
            pass  # a cache: what was paid for is still written to the output
    return heard


def speak_all(
    client: CozeClient,
    root: Path,
    asks: Iterable[tuple[Target, SpeechAsk]],
    *,
    use_cache: bool,
    parallelism: int,
    done: Callable[[Heard | None, Target, VoicectlError | None], bool],
) -> bool:
    """Each ask spoken, ``parallelism`` at a time (paced by the client, as clones are);
    ``done`` is told of each as it ends, on this thread, in the order they end, and says
    whether to go on. On ^C, or when ``done`` says stop, the speeches not yet sent are
    never sent (they are billed); those on the wire end. False: stopped early."""
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        futures = {
            pool.submit(speak, client, root, target, ask, use_cache=use_cache): target
            for target, ask in asks
        }
        try:
            for future in as_completed(futures):
                target = futures[future]
                try:
                    heard = future.result()
                except VoicectlError as exc:
                    going = done(None, target, exc)
                else:
                    going = done(heard, target, None)
                if not going:
                    pool.shutdown(wait=True, cancel_futures=True)
                    return False
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return True
