"""Injected replies: clones committed then answered badly, and replies that are no envelope."""

from __future__ import annotations

import cozepy
import httpx
import pytest

CLONE = "/v1/audio/voices/clone"
GATEWAY_PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"


def clone(raw: httpx.Client, wav: bytes, name: str = "v", **extra: str) -> httpx.Response:
    fields = {"voice_name": name, "audio_format": "wav", **extra}
    return raw.post(CLONE, data=fields, files={"file": wav})


def ledger(admin: httpx.Client) -> list[str]:
    return [e["voice_name"] for e in admin.get("/_emulator/ledger").json()["clones"]]


def listed(raw: httpx.Client) -> list[str]:
    reply = raw.get("/v1/audio/voices", params={"filter_system_voice": "true"})
    return [v["name"] for v in reply.json()["data"]["voice_list"]]


def test_fail_after_commit_commits_count_clones_then_answers_the_chosen_envelope(
    raw: httpx.Client, admin: httpx.Client, wav: bytes
) -> None:
    rule = {"code": 5000, "http_status": 502, "count": 2}
    admin.post("/_emulator/faults", json={"fail_after_commit": rule}).raise_for_status()
    replies = [clone(raw, wav, f"v{n}") for n in range(3)]
    assert [(r.status_code, r.json()["code"]) for r in replies] == [(502, 5000)] * 2 + [(200, 0)]
    assert all(r.json()["msg"] and "data" not in r.json() for r in replies[:2])
    assert replies[0].json()["detail"]["logid"] == replies[0].headers["x-tt-logid"]
    assert ledger(admin) == ["v0", "v1", "v2"]
    assert listed(raw) == ["v2", "v1", "v0"]
    assert admin.get("/_emulator/faults").json()["fail_after_commit"] is None


def test_fail_after_commit_also_spoils_a_retrain_that_was_carried_out(
    raw: httpx.Client, admin: httpx.Client, wav: bytes
) -> None:
    voice_id = clone(raw, wav, "draft").json()["data"]["voice_id"]
    admin.post("/_emulator/faults", json={"fail_after_commit": {"code": 4013, "http_status": 200}})
    reply = clone(raw, wav, "final", voice_id=voice_id)
    assert (reply.status_code, reply.json()["code"]) == (200, 4013)
    params = {"filter_system_voice": "true"}
    [voice] = raw.get("/v1/audio/voices", params=params).json()["data"]["voice_list"]
    assert (voice["name"], voice["available_training_times"]) == ("final", 8)


def test_cozepy_raises_for_a_clone_that_was_committed(
    coze: cozepy.Coze, admin: httpx.Client, wav: bytes
) -> None:
    admin.post("/_emulator/faults", json={"fail_after_commit": {"code": 5000}})
    with pytest.raises(cozepy.CozeAPIError) as caught:
        coze.audio.voices.clone(voice_name="billed", file=wav, audio_format="wav")
    assert caught.value.code == 5000
    assert [v.name for v in coze.audio.voices.list(filter_system_voice=True)] == ["billed"]


def test_fail_after_commit_with_an_empty_body_sends_nothing_but_the_status(
    raw: httpx.Client, admin: httpx.Client, coze: cozepy.Coze, wav: bytes
) -> None:
    rule = {"body": "", "http_status": 502, "count": 2}
    admin.post("/_emulator/faults", json={"fail_after_commit": rule}).raise_for_status()
    reply = clone(raw, wav, "empty")
    assert (reply.status_code, reply.content) == (502, b"")
    assert "x-tt-logid" not in reply.headers
    with pytest.raises(cozepy.CozeAPIError) as caught:  # not JSON: the HTTP status as code
        coze.audio.voices.clone(voice_name="empty-sdk", file=wav, audio_format="wav")
    assert caught.value.code == 502
    assert ledger(admin) == ["empty", "empty-sdk"]


def test_fail_after_commit_with_a_gateway_page_sends_it_verbatim_as_html(
    raw: httpx.Client, admin: httpx.Client, wav: bytes
) -> None:
    rule = {"body": GATEWAY_PAGE, "http_status": 502}
    admin.post("/_emulator/faults", json={"fail_after_commit": rule}).raise_for_status()
    reply = clone(raw, wav, "behind-the-gateway")
    assert (reply.status_code, reply.text) == (502, GATEWAY_PAGE)
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert ledger(admin) == ["behind-the-gateway"]


def test_fail_with_a_body_refuses_before_anything_and_commits_nothing(
    raw: httpx.Client, admin: httpx.Client, wav: bytes
) -> None:
    rule = {"body": GATEWAY_PAGE, "http_status": 504, "endpoint": "clone"}
    admin.post("/_emulator/faults", json={"fail": rule}).raise_for_status()
    reply = clone(raw, wav)
    assert (reply.status_code, reply.text) == (504, GATEWAY_PAGE)
    assert ledger(admin) == []
    assert clone(raw, wav).json()["code"] == 0


def test_a_body_at_429_has_the_given_content_type_and_retry_after(
    raw: httpx.Client, admin: httpx.Client
) -> None:
    rule = {"body": "slow down", "content_type": "text/plain", "http_status": 429}
    admin.post("/_emulator/faults", json={"fail": rule}).raise_for_status()
    reply = raw.get("/v1/audio/voices")
    assert (reply.status_code, reply.text, reply.headers["retry-after"]) == (429, "slow down", "1")
    assert reply.headers["content-type"] == "text/plain"


def test_fail_after_commit_is_spent_only_by_clones_that_commit(
    raw: httpx.Client, admin: httpx.Client, wav: bytes
) -> None:
    admin.post("/_emulator/faults", json={"fail_after_commit": {"code": 5000}})
    assert clone(raw, wav, "").json()["code"] == 4000  # refused: commits nothing
    assert raw.get("/v1/audio/voices").json()["code"] == 0  # not a clone
    assert admin.get("/_emulator/faults").json()["fail_after_commit"]["count"] == 1
    assert clone(raw, wav).json()["code"] == 5000


def test_a_clone_spends_drop_after_commit_before_fail_after_commit(
    raw: httpx.Client, admin: httpx.Client, wav: bytes
) -> None:
    faults = {"drop_after_commit": 1, "fail_after_commit": {"code": 5000}}
    admin.post("/_emulator/faults", json=faults).raise_for_status()
    with pytest.raises(httpx.RemoteProtocolError):
        clone(raw, wav, "lost")
    assert clone(raw, wav, "spoiled").json()["code"] == 5000
    assert clone(raw, wav, "answered").json()["code"] == 0
    assert ledger(admin) == ["lost", "spoiled", "answered"]


def test_get_shows_fail_after_commit_without_an_endpoint_and_reset_clears_it(
    admin: httpx.Client,
) -> None:
    rule = {"code": 4013, "count": 2, "body": "", "content_type": "text/plain"}
    admin.post("/_emulator/faults", json={"fail_after_commit": rule}).raise_for_status()
    shown = admin.get("/_emulator/faults").json()["fail_after_commit"]
    assert shown == {
        "code": 4013,
        "http_status": 500,
        "count": 2,
        "msg": "The model service failed. Please try again later.",
        "body": "",
        "content_type": "text/plain",
        "retry_after": None,
    }
    admin.post("/_emulator/reset").raise_for_status()
    assert admin.get("/_emulator/faults").json()["fail_after_commit"] is None
