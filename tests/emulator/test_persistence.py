"""Voices and the ledger survive a restart with the same data dir; writes are atomic."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import SDK
from voicectl.emulator import EmulatorError, create_app, running_emulator
from voicectl.emulator.store import DATA_FILE

LOG = DATA_FILE + ".log"


def test_voices_and_ledger_survive_a_restart(data_dir: Path, wav: bytes, sdk_at: SDK) -> None:
    with running_emulator(data_dir, full_clone_reply=True) as url:
        voice = sdk_at(url).audio.voices.clone(voice_name="kept", file=wav, audio_format="wav")
        sdk_at(url).audio.voices.clone(
            voice_name="kept2", file=wav, audio_format="wav", voice_id=voice.voice_id
        )
        ledger = httpx.get(f"{url}/_emulator/ledger").json()
    with running_emulator(data_dir, full_clone_reply=True) as url:
        [listed] = sdk_at(url).audio.voices.list(filter_system_voice=True)
        assert httpx.get(f"{url}/_emulator/ledger").json() == ledger
        newer = sdk_at(url).audio.voices.clone(voice_name="new", file=wav, audio_format="wav")
    assert (listed.voice_id, listed.name, listed.available_training_times) == (
        voice.voice_id,
        "kept2",
        8,
    )
    assert listed.create_time == voice.create_time
    assert int(newer.voice_id) > int(voice.voice_id)  # the id sequence continues


def test_clones_are_appended_to_a_log_folded_into_the_data_file_on_restart(
    data_dir: Path, wav: bytes, sdk_at: SDK
) -> None:
    with running_emulator(data_dir, full_clone_reply=True) as url:
        for n in range(3):
            sdk_at(url).audio.voices.clone(voice_name=f"v{n}", file=wav, audio_format="wav")
        assert len((data_dir / LOG).read_text(encoding="utf-8").splitlines()) == 3
    with running_emulator(data_dir, full_clone_reply=True) as url:
        assert len(httpx.get(f"{url}/_emulator/ledger").json()["clones"]) == 3
    assert [p.name for p in data_dir.iterdir()] == [DATA_FILE]
    document = json.loads((data_dir / DATA_FILE).read_text(encoding="utf-8"))
    assert len(document["voices"]) == len(document["ledger"]) == 3


def test_a_torn_last_log_line_was_never_acknowledged_and_is_dropped(
    data_dir: Path, wav: bytes, sdk_at: SDK
) -> None:
    """The emulator killed mid-append: complete lines are clones it answered."""
    with running_emulator(data_dir, full_clone_reply=True) as url:
        for n in range(2):
            sdk_at(url).audio.voices.clone(voice_name=f"v{n}", file=wav, audio_format="wav")
    assert not (data_dir / DATA_FILE).exists()  # the log was never folded yet
    log = data_dir / LOG
    with open(log, "a", encoding="utf-8") as handle:
        handle.write('{"voice": {"voice_id": "74')
    with running_emulator(data_dir, full_clone_reply=True) as url:
        names = {v.name for v in sdk_at(url).audio.voices.list(filter_system_voice=True)}
    assert names == {"v0", "v1"}
    assert not log.exists()


def test_reset_clears_voices_ledger_and_faults_on_disk_too(
    data_dir: Path, wav: bytes, sdk_at: SDK
) -> None:
    with running_emulator(data_dir, full_clone_reply=True) as url:
        sdk_at(url).audio.voices.clone(voice_name="gone", file=wav, audio_format="wav")
        httpx.post(f"{url}/_emulator/faults", json={"latency_ms": 5})
        httpx.post(f"{url}/_emulator/reset").raise_for_status()
        assert httpx.get(f"{url}/_emulator/faults").json()["latency_ms"] == 0
    with running_emulator(data_dir, full_clone_reply=True) as url:
        assert list(sdk_at(url).audio.voices.list(filter_system_voice=True)) == []
        assert httpx.get(f"{url}/_emulator/ledger").json() == {"clones": []}


def test_a_corrupt_data_file_is_refused_with_a_clear_error(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / DATA_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(EmulatorError, match="corrupt"):
        create_app(data_dir)


def test_a_failed_write_answers_5000_and_commits_nothing(
    data_dir: Path, wav: bytes, sdk_at: SDK
) -> None:
    with running_emulator(data_dir, full_clone_reply=True) as url:
        blocker = data_dir / LOG / "in-the-way"
        blocker.mkdir(parents=True)  # the log's path is now a non-empty directory
        reply = httpx.post(
            f"{url}/v1/audio/voices/clone",
            headers={"Authorization": "Bearer t"},
            data={"voice_name": "unsaved", "audio_format": "wav"},
            files={"file": wav},
        )
        assert (reply.status_code, reply.json()["code"]) == (500, 5000)
        assert reply.json()["detail"]["logid"] == reply.headers["x-tt-logid"]
        assert list(sdk_at(url).audio.voices.list(filter_system_voice=True)) == []
        blocker.rmdir()
        (data_dir / LOG).rmdir()
        voice = sdk_at(url).audio.voices.clone(voice_name="saved", file=wav, audio_format="wav")
        assert [v.voice_id for v in sdk_at(url).audio.voices.list(filter_system_voice=True)] == [
            voice.voice_id
        ]
