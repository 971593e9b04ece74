"""The list endpoint: filters, paging and order, as cozepy and plain httpx see them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import cozepy
import httpx
import pytest

from tests.emulator.conftest import NO_SCOPE, SPACE_A_ONLY
from voicectl.emulator import create_app

VOICE_FIELDS = {
    "voice_id",
    "name",
    "is_system_voice",
    "language_code",
    "language_name",
    "preview_text",
    "preview_audio",
    "available_training_times",
    "create_time",
    "update_time",
    "model_type",
    "state",
    "model_name",
}


def clone_many(coze: cozepy.Coze, wav: bytes, count: int) -> list[str]:
    return [
        coze.audio.voices.clone(
            voice_name=f"voice-{n}", file=("t.wav", wav), audio_format="wav"
        ).voice_id
        for n in range(count)
    ]


def test_cozepy_pages_through_five_voices_two_at_a_time_and_stops(
    coze: cozepy.Coze, wav: bytes
) -> None:
    ids = clone_many(coze, wav, 5)
    paged = coze.audio.voices.list(filter_system_voice=True, page_size=2)
    pages = [[v.voice_id for v in page.items] for page in paged.iter_pages()]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [v.voice_id for v in coze.audio.voices.list(filter_system_voice=True, page_size=2)] == (
        ids[::-1]  # newest first
    )


def test_has_more_is_exact_when_the_last_page_is_full(
    raw: httpx.Client, coze: cozepy.Coze, wav: bytes
) -> None:
    clone_many(coze, wav, 4)
    params = {"filter_system_voice": "true", "page_size": 2}
    assert raw.get("/v1/audio/voices", params={**params, "page_num": 1}).json()["data"]["has_more"]
    last = raw.get("/v1/audio/voices", params={**params, "page_num": 2}).json()["data"]
    assert (len(last["voice_list"]), last["has_more"]) == (2, False)
    beyond = raw.get("/v1/audio/voices", params={**params, "page_num": 3}).json()["data"]
    assert beyond == {"voice_list": [], "has_more": False}


def test_every_item_has_the_twelve_voice_fields_and_model_name(
    raw: httpx.Client, coze: cozepy.Coze, wav: bytes
) -> None:
    clone_many(coze, wav, 1)
    items = raw.get("/v1/audio/voices").json()["data"]["voice_list"]
    assert len(items) == 3  # one clone and two system voices
    assert all(set(item) == VOICE_FIELDS for item in items)
    assert all(isinstance(item["create_time"], int) for item in items)


def test_system_voices_are_listed_unless_filtered(coze: cozepy.Coze, wav: bytes) -> None:
    clone_many(coze, wav, 1)
    everything = list(coze.audio.voices.list())
    system = [v for v in everything if v.is_system_voice]
    assert len(system) == 2
    assert all(v.available_training_times == 0 and v.state == "cloned" for v in system)
    assert [v.is_system_voice for v in coze.audio.voices.list(filter_system_voice=True)] == [False]


def test_model_type_filters_voices(coze: cozepy.Coze) -> None:
    small = list(coze.audio.voices.list(model_type=cozepy.VoiceModelType.SMALL))
    assert [v.model_type for v in small] == ["small"]
    big = list(coze.audio.voices.list(model_type=cozepy.VoiceModelType.BIG))
    assert {v.model_type for v in big} == {"big"}


def test_voice_state_defaults_to_cloned_and_init_or_all_show_slots(
    coze: cozepy.Coze, admin: httpx.Client, wav: bytes
) -> None:
    slot = admin.post("/_emulator/voices", json={"name": "pending"}).json()
    [cloned] = clone_many(coze, wav, 1)

    def ids(state: cozepy.VoiceState | None) -> list[str]:
        return [
            v.voice_id for v in coze.audio.voices.list(filter_system_voice=True, voice_state=state)
        ]

    assert ids(None) == [cloned]
    assert ids(cozepy.VoiceState.CLONED) == [cloned]
    assert ids(cozepy.VoiceState.INIT) == [slot["voice_id"]]
    assert set(ids(cozepy.VoiceState.ALL)) == {cloned, slot["voice_id"]}


def test_order_is_newest_create_time_first_and_a_retrain_does_not_move_a_voice(
    coze: cozepy.Coze, wav: bytes
) -> None:
    first, second = clone_many(coze, wav, 2)
    coze.audio.voices.clone(voice_name="r", file=wav, audio_format="wav", voice_id=first)
    listed = [v.voice_id for v in coze.audio.voices.list(filter_system_voice=True)]
    assert listed == [second, first]


@pytest.mark.parametrize(
    "params",
    [
        {"page_num": 0},
        {"page_num": -1},
        {"page_num": "x"},
        {"page_size": 0},
        {"page_size": 101},
        {"voice_state": "done"},
        {"model_type": "huge"},
        {"filter_system_voice": "maybe"},
    ],
)
def test_out_of_range_list_parameters_are_4000(
    raw: httpx.Client, params: dict[str, object]
) -> None:
    body = raw.get("/v1/audio/voices", params=params).json()
    assert body["code"] == 4000 and body["msg"] and "data" not in body


def test_page_size_100_is_accepted(raw: httpx.Client) -> None:
    assert raw.get("/v1/audio/voices", params={"page_size": 100}).json()["code"] == 0


def test_list_needs_a_known_token_with_the_list_voice_scope(
    coze_as: Callable[[str], cozepy.Coze],
) -> None:
    for token, code in ((NO_SCOPE, 4101), ("pat_unknown", 4100)):
        with pytest.raises(cozepy.CozeAPIError) as caught:
            coze_as(token).audio.voices.list()
        assert caught.value.code == code


def test_a_space_limited_token_still_lists_voices_of_every_space(
    coze: cozepy.Coze, coze_as: Callable[[str], cozepy.Coze], wav: bytes
) -> None:
    [voice_id] = clone_many(coze, wav, 1)  # in the personal space, not in SPACE_A
    listed = coze_as(SPACE_A_ONLY).audio.voices.list(filter_system_voice=True)
    assert [v.voice_id for v in listed] == [voice_id]


def test_voices_cloned_in_the_same_second_are_listed_by_voice_id_descending(
    data_dir: Path, wav: bytes
) -> None:
    """In-process (no socket), with a frozen clock: the tie-break keeps the order stable."""
    app = create_app(data_dir, clock=lambda: 1_800_000_000.0)

    async def scenario() -> list[dict[str, object]]:
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": "Bearer t"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://e", headers=headers
        ) as client:
            for name in ("a", "b", "c"):
                fields = {"voice_name": name, "audio_format": "wav"}
                await client.post("/v1/audio/voices/clone", data=fields, files={"file": wav})
            reply = await client.get("/v1/audio/voices", params={"filter_system_voice": "true"})
        return list(reply.json()["data"]["voice_list"])

    voices = anyio.run(scenario)
    assert {v["create_time"] for v in voices} == {1_800_000_000}
    assert [v["name"] for v in voices] == ["c", "b", "a"]
    assert [v["voice_id"] for v in voices] == sorted(
        (str(v["voice_id"]) for v in voices), reverse=True
    )
