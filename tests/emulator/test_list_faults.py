"""List fault modes: capped pages, a repeated page, a list that never ends."""

from __future__ import annotations

import time
from itertools import islice

import cozepy
import httpx
import pytest

LIST = "/v1/audio/voices"
OWN = {"filter_system_voice": "true"}


@pytest.fixture
def five(raw: httpx.Client, wav: bytes) -> list[str]:
    """Five cloned voices, as the list orders them (newest first)."""
    for n in range(5):
        fields = {"voice_name": f"v{n}", "audio_format": "wav"}
        assert raw.post("/v1/audio/voices/clone", data=fields, files={"file": wav}).is_success
    return [v["voice_id"] for v in raw.get(LIST, params=OWN).json()["data"]["voice_list"]]


def page(raw: httpx.Client, page_num: int, page_size: int = 100) -> tuple[list[str], bool]:
    params = {**OWN, "page_num": page_num, "page_size": page_size}
    data = raw.get(LIST, params=params).json()["data"]
    return [v["voice_id"] for v in data["voice_list"]], data["has_more"]


def faults(admin: httpx.Client, **settings: object) -> None:
    admin.post("/_emulator/faults", json=settings).raise_for_status()


def test_list_page_cap_cuts_pages_short_with_an_exact_has_more(
    raw: httpx.Client, admin: httpx.Client, five: list[str]
) -> None:
    faults(admin, list_page_cap=2)
    assert [page(raw, n) for n in (1, 2, 3, 4)] == [
        (five[0:2], True),
        (five[2:4], True),
        (five[4:5], False),
        ([], False),
    ]


def test_list_page_cap_leaves_smaller_pages_alone(
    raw: httpx.Client, admin: httpx.Client, five: list[str]
) -> None:
    faults(admin, list_page_cap=3)
    assert [page(raw, n, page_size=2) for n in (1, 2, 3)] == [
        (five[0:2], True),
        (five[2:4], True),
        (five[4:5], False),
    ]


def test_cozepy_reads_every_voice_through_short_pages_by_following_has_more(
    coze: cozepy.Coze, admin: httpx.Client, five: list[str]
) -> None:
    faults(admin, list_page_cap=2)
    paged = coze.audio.voices.list(filter_system_voice=True, page_size=100)
    pages = [[v.voice_id for v in p.items] for p in paged.iter_pages()]
    assert pages == [five[0:2], five[2:4], five[4:5]]


def test_list_repeat_from_serves_page_n_minus_1_again_for_every_later_page(
    raw: httpx.Client, admin: httpx.Client, five: list[str]
) -> None:
    faults(admin, list_repeat_from=3)
    assert page(raw, 1, 2) == (five[0:2], True)
    assert page(raw, 2, 2) == (five[2:4], True)
    assert page(raw, 3, 2) == page(raw, 7, 2) == (five[2:4], True)


def test_a_client_trusting_has_more_loops_on_a_repeated_page(
    coze: cozepy.Coze, admin: httpx.Client, five: list[str]
) -> None:
    faults(admin, list_page_cap=2, list_repeat_from=2)
    paged = coze.audio.voices.list(filter_system_voice=True)
    pages = [[v.voice_id for v in p.items] for p in islice(paged.iter_pages(), 6)]
    assert pages == [five[0:2]] * 6  # it would go on for ever


def test_list_repeat_from_loops_even_when_page_n_minus_1_holds_the_whole_list(
    raw: httpx.Client, admin: httpx.Client, five: list[str]
) -> None:
    faults(admin, list_repeat_from=2)
    assert page(raw, 1) == page(raw, 2) == page(raw, 50) == (five, True)


def test_list_repeat_from_has_nothing_to_repeat_in_an_empty_list(
    raw: httpx.Client, admin: httpx.Client
) -> None:
    faults(admin, list_page_cap=1, list_repeat_from=2)
    assert page(raw, 1) == page(raw, 2) == ([], False)


def test_list_endless_keeps_has_more_true_past_the_end_with_empty_pages(
    raw: httpx.Client, admin: httpx.Client, five: list[str]
) -> None:
    faults(admin, list_endless=True)
    assert page(raw, 1, 3) == (five[0:3], True)
    assert page(raw, 2, 3) == (five[3:5], True)
    assert page(raw, 3, 3) == page(raw, 99, 3) == ([], True)


def test_list_faults_cleared_with_null_or_reset_give_exact_pages_again(
    raw: httpx.Client, admin: httpx.Client, five: list[str]
) -> None:
    faults(admin, list_page_cap=1, list_repeat_from=2, list_endless=True)
    shown = admin.get("/_emulator/faults").json()
    assert (shown["list_page_cap"], shown["list_repeat_from"], shown["list_endless"]) == (
        1,
        2,
        True,
    )
    faults(admin, list_page_cap=None, list_repeat_from=None, list_endless=None)
    assert page(raw, 1) == (five, False)
    faults(admin, list_page_cap=2, list_endless=True)
    admin.post("/_emulator/reset").raise_for_status()
    shown = admin.get("/_emulator/faults").json()
    assert (shown["list_page_cap"], shown["list_repeat_from"], shown["list_endless"]) == (
        None,
        None,
        False,
    )


def test_clock_skew_moves_coze_s_timestamps_not_the_client_s(
    admin: httpx.Client, coze: cozepy.Coze, wav: bytes
) -> None:
    admin.post("/_emulator/faults", json={"clock_skew_s": -3600}).raise_for_status()
    voice = coze.audio.voices.clone(voice_name="skewed", file=("a.wav", wav), audio_format="wav")
    assert abs(voice.create_time - (time.time() - 3600)) < 60
    assert admin.post("/_emulator/faults", json={"clock_skew_s": 1e9}).status_code == 400
    assert admin.get("/_emulator/faults").json()["clock_skew_s"] == -3600
