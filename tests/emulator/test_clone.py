"""Clone and retrain, driven by the official SDK (cozepy) over a loopback socket."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cozepy
import httpx
import pydantic
import pytest

from tests.conftest import SDK
from tests.emulator.conftest import FULL, LIST_ONLY, SPACE_A, SPACE_A_ONLY, make_wav
from voicectl.emulator import DEFAULT_SPACE_ID, WER_MARKER, running_emulator


def clone(coze: cozepy.Coze, audio: bytes, **fields: object) -> cozepy.Voice:
    fields.setdefault("voice_name", "narrator-zh")
    fields.setdefault("audio_format", "wav")
    return coze.audio.voices.clone(file=("take.wav", audio), **fields)


def api_error(call: Callable[[], object]) -> cozepy.CozeAPIError:
    with pytest.raises(cozepy.CozeAPIError) as caught:
        call()
    return caught.value


def test_new_clone_returns_the_full_voice_record(coze: cozepy.Coze, wav: bytes) -> None:
    before = int(time.time())
    voice = clone(coze, wav, language="en", preview_text="Hello there.")
    assert voice.voice_id.isdigit() and len(voice.voice_id) == 19
    assert voice.voice_id.startswith("7")
    assert voice.name == "narrator-zh"
    assert voice.state == "cloned" and voice.model_type == "big"
    assert voice.is_system_voice is False
    assert voice.available_training_times == 9
    assert voice.language_code == "en"
    assert voice.preview_text == "Hello there."
    assert before <= voice.create_time == voice.update_time <= int(time.time())
    assert "x-expires=" in voice.preview_audio and "x-signature=" in voice.preview_audio
    assert voice.preview_audio.startswith(coze.audio.voices._base_url)
    assert len(voice.response.logid) == 34


def test_new_clone_defaults_language_to_zh_and_preview_to_the_built_in_sentence(
    coze: cozepy.Coze, wav: bytes
) -> None:
    voice = clone(coze, wav)
    assert (voice.language_code, voice.language_name) == ("zh", "中文")
    assert voice.preview_text.startswith("你好")


def test_new_clone_ids_are_unique_and_increasing(coze: cozepy.Coze, wav: bytes) -> None:
    ids = [clone(coze, wav, voice_name=f"v{i}").voice_id for i in range(5)]
    assert ids == sorted(ids, key=int) and len(set(ids)) == 5


def test_concurrent_clones_do_not_race(coze: cozepy.Coze, wav: bytes, admin: httpx.Client) -> None:
    with ThreadPoolExecutor(8) as pool:
        voices = list(pool.map(lambda i: clone(coze, wav, voice_name=f"p{i}"), range(16)))
    assert len({v.voice_id for v in voices}) == 16
    assert len(admin.get("/_emulator/ledger").json()["clones"]) == 16


def test_retrain_keeps_the_id_and_create_time_and_spends_one_training(
    coze: cozepy.Coze, wav: bytes
) -> None:
    first = clone(coze, wav, voice_name="draft", language="zh")
    again = clone(
        coze,
        make_wav(seconds=2),
        voice_id=first.voice_id,
        voice_name="final",
        language="ja",
        preview_text="こんにちは",
    )
    assert again.voice_id == first.voice_id
    assert again.available_training_times == 8
    assert again.create_time == first.create_time
    assert again.update_time >= first.update_time
    assert (again.name, again.language_code, again.preview_text) == ("final", "ja", "こんにちは")


def test_the_eleventh_upload_is_rejected_with_1123_and_the_voice_stays_intact(
    coze: cozepy.Coze, wav: bytes
) -> None:
    voice = clone(coze, wav, voice_name="v0")
    for n in range(1, 10):
        voice = clone(coze, wav, voice_id=voice.voice_id, voice_name=f"v{n}")
    assert voice.available_training_times == 0
    error = api_error(lambda: clone(coze, wav, voice_id=voice.voice_id, voice_name="v10"))
    assert error.code == 1123 and "10" in error.msg and error.logid
    [listed] = coze.audio.voices.list(filter_system_voice=True).items
    assert (listed.voice_id, listed.name, listed.available_training_times) == (
        voice.voice_id,
        "v9",
        0,
    )


def test_retrain_of_an_unknown_voice_is_4200(coze: cozepy.Coze, wav: bytes) -> None:
    error = api_error(lambda: clone(coze, wav, voice_id="7400000000000000001"))
    assert error.code == 4200


def test_retrain_of_a_system_voice_is_refused(coze: cozepy.Coze, wav: bytes) -> None:
    system = next(v for v in coze.audio.voices.list() if v.is_system_voice)
    assert api_error(lambda: clone(coze, wav, voice_id=system.voice_id)).code == 4101


def test_retrain_into_another_space_is_4000(coze: cozepy.Coze, wav: bytes) -> None:
    voice = clone(coze, wav)
    error = api_error(lambda: clone(coze, wav, voice_id=voice.voice_id, space_id=SPACE_A))
    assert error.code == 4000


def test_wer_marker_in_text_gives_1109_and_commits_nothing(
    coze: cozepy.Coze, wav: bytes, admin: httpx.Client
) -> None:
    error = api_error(lambda: clone(coze, wav, text=f"some words {WER_MARKER}"))
    assert error.code == 1109 and "WER" in error.msg
    assert admin.get("/_emulator/ledger").json() == {"clones": []}
    assert coze.audio.voices.list(filter_system_voice=True).items == []


def test_wer_marker_on_retrain_leaves_the_voice_unchanged(coze: cozepy.Coze, wav: bytes) -> None:
    voice = clone(coze, wav)
    error = api_error(
        lambda: clone(coze, wav, voice_id=voice.voice_id, voice_name="x", text=WER_MARKER)
    )
    assert error.code == 1109
    [listed] = coze.audio.voices.list(filter_system_voice=True).items
    assert (listed.name, listed.available_training_times) == ("narrator-zh", 9)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"voice_name": ""}, "empty voice_name"),
        ({"voice_name": "x" * 129}, "voice_name over 128 bytes"),
        ({"voice_name": "声" * 43}, "voice_name over 128 bytes in UTF-8 (129)"),
        ({"audio_format": ""}, "empty audio_format"),
        ({"language": "fr"}, "unsupported language"),
        ({"text": "a" * 1025}, "text over 1024 bytes"),
        ({"text": "字" * 342}, "text over 1024 bytes in UTF-8 (1026)"),
    ],
)
def test_invalid_clone_fields_are_4000(
    coze: cozepy.Coze, wav: bytes, admin: httpx.Client, fields: dict[str, str], why: str
) -> None:
    assert api_error(lambda: clone(coze, wav, **fields)).code == 4000, why
    assert admin.get("/_emulator/ledger").json() == {"clones": []}


def test_limits_are_inclusive_128_byte_name_and_1024_byte_text(
    coze: cozepy.Coze, wav: bytes
) -> None:
    voice = clone(coze, wav, voice_name="n" * 128, text="字" * 341)
    assert voice.name == "n" * 128


def test_file_over_10_mb_is_4302(coze: cozepy.Coze) -> None:
    big = make_wav(seconds=1) + bytes(10 * 1024 * 1024)
    assert api_error(lambda: clone(coze, big)).code == 4302


def test_unknown_token_is_4100_with_the_logid_of_the_header(
    coze_as: Callable[[str], cozepy.Coze], wav: bytes
) -> None:
    error = api_error(lambda: clone(coze_as("pat_nobody"), wav))
    assert (error.code, error.msg) == (4100, "authentication is invalid")
    assert error.logid is not None and len(error.logid) == 34


def test_token_without_create_voice_scope_is_4101(
    coze_as: Callable[[str], cozepy.Coze], wav: bytes
) -> None:
    assert api_error(lambda: clone(coze_as(LIST_ONLY), wav)).code == 4101


def test_token_limited_to_a_space_clones_there_and_nowhere_else(
    coze_as: Callable[[str], cozepy.Coze], wav: bytes, admin: httpx.Client
) -> None:
    limited = coze_as(SPACE_A_ONLY)
    voice = clone(limited, wav, space_id=SPACE_A)
    assert api_error(lambda: clone(limited, wav)).code == 4101  # personal space
    other = clone(coze_as(FULL), wav, voice_name="elsewhere")
    assert api_error(lambda: clone(limited, wav, voice_id=other.voice_id)).code == 4101
    spaces = [
        (e["voice_id"], e["space_id"]) for e in admin.get("/_emulator/ledger").json()["clones"]
    ]
    assert spaces == [(voice.voice_id, SPACE_A), (other.voice_id, DEFAULT_SPACE_ID)]


def test_a_console_slot_in_init_state_becomes_cloned_on_its_first_upload(
    coze: cozepy.Coze, wav: bytes, admin: httpx.Client
) -> None:
    slot = admin.post("/_emulator/voices", json={"name": "slot"}).json()
    assert (slot["state"], slot["available_training_times"]) == ("init", 10)
    voice = clone(coze, wav, voice_id=slot["voice_id"], voice_name="trained")
    assert (voice.state, voice.available_training_times) == ("cloned", 9)


def test_by_default_a_clone_is_answered_with_only_the_voice_id(data_dir: Path, wav: bytes) -> None:
    """The documented reply: ``data`` is exactly ``{"voice_id": ...}``."""
    with running_emulator(data_dir) as url:
        reply = httpx.post(
            f"{url}/v1/audio/voices/clone",
            headers={"Authorization": "Bearer anything"},
            data={"voice_name": "documented", "audio_format": "wav"},
            files={"file": ("upload", wav)},
        )
    body = reply.json()
    assert body["code"] == 0 and body["msg"] == ""
    assert list(body["data"]) == ["voice_id"] and body["data"]["voice_id"].isdigit()
    assert body["detail"]["logid"] == reply.headers["x-tt-logid"]


def test_cozepy_fails_validation_on_the_documented_reply_after_the_clone_committed(
    data_dir: Path, wav: bytes, sdk_at: SDK
) -> None:
    """Why cozepy users need full_clone_reply: the clone is billed, then cozepy raises."""
    with running_emulator(data_dir) as url:
        coze = sdk_at(url)
        with pytest.raises(pydantic.ValidationError) as caught:
            clone(coze, wav, voice_name="billed")
        ledger = httpx.get(f"{url}/_emulator/ledger").json()["clones"]
        [listed] = coze.audio.voices.list(filter_system_voice=True)
    assert not isinstance(caught.value, cozepy.CozeAPIError)
    assert {e["loc"][0] for e in caught.value.errors()} >= {"name", "state", "preview_audio"}
    assert [(e["kind"], e["voice_name"]) for e in ledger] == [("create", "billed")]
    assert listed.voice_id == ledger[0]["voice_id"]


def test_full_clone_reply_answers_the_whole_voice_record(
    data_dir: Path, wav: bytes, sdk_at: SDK
) -> None:
    with running_emulator(data_dir, full_clone_reply=True) as url:
        coze = sdk_at(url)
        voice = clone(coze, wav, voice_name="full")
    assert (voice.name, voice.state, voice.available_training_times) == ("full", "cloned", 9)


def test_slot_quota_exhausted_gives_4019_saying_an_expansion_pack_is_needed(
    data_dir: Path, wav: bytes, sdk_at: SDK
) -> None:
    with running_emulator(data_dir, slot_quota=1, full_clone_reply=True) as url:
        coze = sdk_at(url)
        voice = clone(coze, wav)
        error = api_error(lambda: clone(coze, wav))
        assert error.code == 4019
        assert "no voice slot left" in error.msg.lower()
        assert "voice-clone expansion pack" in error.msg
        assert clone(coze, wav, voice_id=voice.voice_id).voice_id == voice.voice_id
        # The slots are the account's, not a workspace's (the stricter reading).
        assert api_error(lambda: clone(coze, wav, space_id=SPACE_A)).code == 4019


def test_ledger_records_each_committed_clone_with_the_audio_sha256(
    coze: cozepy.Coze, wav: bytes, admin: httpx.Client
) -> None:
    voice = clone(coze, wav, voice_name="a")
    second = make_wav(seconds=2)
    clone(coze, second, voice_id=voice.voice_id, voice_name="b")
    clones = admin.get("/_emulator/ledger").json()["clones"]
    assert [(e["kind"], e["voice_name"], e["audio_sha256"]) for e in clones] == [
        ("create", "a", hashlib.sha256(wav).hexdigest()),
        ("retrain", "b", hashlib.sha256(second).hexdigest()),
    ]
    assert {e["voice_id"] for e in clones} == {voice.voice_id}
    assert all(e["at"].endswith("Z") for e in clones)
