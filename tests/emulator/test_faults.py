"""Fault injection over /_emulator/faults, seen by real clients over a loopback socket."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import cozepy
import httpx
import pytest

from voicectl.emulator import ConnectionDropped, create_app, running_emulator

CLONE = "/v1/audio/voices/clone"


def clone_fields(name: str = "v") -> dict[str, str]:
    return {"voice_name": name, "audio_format": "wav"}


def test_latency_delays_every_api_reply(raw: httpx.Client, admin: httpx.Client) -> None:
    admin.post("/_emulator/faults", json={"latency_ms": 150}).raise_for_status()
    started = time.monotonic()
    raw.get("/v1/audio/voices")
    assert time.monotonic() - started >= 0.15
    admin.post("/_emulator/faults", json={"latency_ms": None})
    started = time.monotonic()
    raw.get("/v1/audio/voices")
    assert time.monotonic() - started < 0.15


def test_an_injected_failure_is_served_count_times_then_requests_succeed(
    raw: httpx.Client, admin: httpx.Client
) -> None:
    fail = {"code": 5000, "http_status": 502, "count": 2}
    admin.post("/_emulator/faults", json={"fail": fail}).raise_for_status()
    replies = [raw.get("/v1/audio/voices") for _ in range(3)]
    assert [r.status_code for r in replies] == [502, 502, 200]
    assert [r.json()["code"] for r in replies] == [5000, 5000, 0]
    assert all(r.json()["msg"] for r in replies[:2])
    assert admin.get("/_emulator/faults").json()["fail"] is None


def test_a_failure_aimed_at_clone_spares_list_and_commits_nothing(
    raw: httpx.Client, admin: httpx.Client, wav: bytes
) -> None:
    admin.post(
        "/_emulator/faults", json={"fail": {"code": 4009, "endpoint": "clone", "http_status": 200}}
    )
    assert raw.get("/v1/audio/voices").json()["code"] == 0
    reply = raw.post(CLONE, data=clone_fields(), files={"file": wav})
    assert reply.json()["code"] == 4009
    assert admin.get("/_emulator/ledger").json() == {"clones": []}
    assert raw.post(CLONE, data=clone_fields(), files={"file": wav}).json()["code"] == 0


def test_cozepy_raises_the_injected_code_with_the_logid(
    coze: cozepy.Coze, admin: httpx.Client
) -> None:
    admin.post("/_emulator/faults", json={"fail": {"code": 4013, "http_status": 200}})
    with pytest.raises(cozepy.CozeAPIError) as caught:
        coze.audio.voices.list()
    assert caught.value.code == 4013 and caught.value.logid
    assert "model service" in caught.value.msg  # a model error, not a rate limit


def test_an_injected_429_carries_retry_after(raw: httpx.Client, admin: httpx.Client) -> None:
    admin.post("/_emulator/faults", json={"fail": {"code": 4020, "http_status": 429, "count": 3}})
    reply = raw.get("/v1/audio/voices")
    assert (reply.status_code, reply.headers["retry-after"], reply.json()["code"]) == (
        429,
        "1",
        4020,
    )


def test_an_injected_reply_carries_the_retry_after_it_is_given_verbatim(
    raw: httpx.Client, admin: httpx.Client
) -> None:
    rule = {"code": 4020, "http_status": 429, "retry_after": "1e8", "count": 2}
    admin.post("/_emulator/faults", json={"fail": rule}).raise_for_status()
    assert raw.get("/v1/audio/voices").headers["retry-after"] == "1e8"
    body = {"body": "<html>busy</html>", "http_status": 503, "retry_after": "inf"}
    admin.post("/_emulator/faults", json={"fail": body}).raise_for_status()
    assert raw.get("/v1/audio/voices").headers["retry-after"] == "inf"
    bad = admin.post("/_emulator/faults", json={"fail": {"retry_after": "1\r\nX-Evil: 1"}})
    assert bad.status_code == 400 and "retry_after" in bad.json()["msg"]


def test_rate_limit_answers_429_with_the_documented_rpm_code_4020_beyond_the_rate(
    raw: httpx.Client, admin: httpx.Client
) -> None:
    admin.post("/_emulator/faults", json={"rate_limit_qps": 2}).raise_for_status()
    replies = [raw.get("/v1/audio/voices") for _ in range(6)]
    limited = [r for r in replies if r.status_code == 429]
    assert replies[0].status_code == 200 and limited
    assert all(r.json()["code"] == 4020 and int(r.headers["retry-after"]) >= 1 for r in limited)
    assert all("RPM" in r.json()["msg"] for r in limited)
    admin.post("/_emulator/faults", json={"rate_limit_qps": None})
    assert raw.get("/v1/audio/voices").status_code == 200


def test_drop_after_commit_loses_the_reply_but_keeps_the_clone(
    raw: httpx.Client, admin: httpx.Client, coze: cozepy.Coze, wav: bytes
) -> None:
    admin.post("/_emulator/faults", json={"drop_after_commit": 2}).raise_for_status()
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        raw.post(CLONE, data=clone_fields("lost-1"), files={"file": wav})
    with pytest.raises(httpx.RemoteProtocolError):  # cozepy lets httpx errors through
        coze.audio.voices.clone(voice_name="lost-2", file=wav, audio_format="wav")
    ok = raw.post(CLONE, data=clone_fields("answered"), files={"file": wav})
    assert ok.json()["code"] == 0
    ledger = admin.get("/_emulator/ledger").json()["clones"]
    assert [e["voice_name"] for e in ledger] == ["lost-1", "lost-2", "answered"]
    listed = [v.name for v in coze.audio.voices.list(filter_system_voice=True)]
    assert listed == ["answered", "lost-2", "lost-1"]


def test_drop_after_commit_is_spent_only_by_clones_that_commit(
    raw: httpx.Client, admin: httpx.Client, wav: bytes
) -> None:
    admin.post("/_emulator/faults", json={"drop_after_commit": 1})
    assert raw.post(CLONE, data={"voice_name": ""}, files={"file": wav}).json()["code"] == 4000
    assert raw.get("/v1/audio/voices").json()["code"] == 0
    assert admin.get("/_emulator/faults").json()["drop_after_commit"] == 1


def test_in_process_a_dropped_reply_raises_httpx_remote_protocol_error(
    data_dir: Path, wav: bytes
) -> None:
    app = create_app(data_dir)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
            await client.post("/_emulator/faults", json={"drop_after_commit": 1})
            with pytest.raises(ConnectionDropped):
                await client.post(
                    CLONE,
                    headers={"Authorization": "Bearer t"},
                    data=clone_fields(),
                    files={"file": wav},
                )
            assert len((await client.get("/_emulator/ledger")).json()["clones"]) == 1

    anyio.run(scenario)
    assert issubclass(ConnectionDropped, httpx.RemoteProtocolError)


def test_latency_overlaps_for_concurrent_requests(data_dir: Path, wav: bytes) -> None:
    """Four clones sent at once at 200 ms latency take about 200 ms, not 800 ms."""
    with running_emulator(data_dir) as url:
        httpx.post(f"{url}/_emulator/faults", json={"latency_ms": 200})
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer t"}) as client:

            def send(n: int) -> int:
                reply = client.post(CLONE, data=clone_fields(f"p{n}"), files={"file": wav})
                return int(reply.json()["code"])

            started = time.monotonic()
            with ThreadPoolExecutor(4) as pool:
                codes = list(pool.map(send, range(4)))
            elapsed = time.monotonic() - started
    assert codes == [0, 0, 0, 0]
    assert 0.2 <= elapsed < 0.6


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"latency": 5},
        {"latency_ms": -1},
        {"latency_ms": True},
        {"fail": {"code": 5000, "endpoint": "delete"}},
        {"fail": {"http_status": 99}},
        {"fail": {"count": 0}},
        {"rate_limit_qps": 0},
        {"drop_after_commit": 1.5},
        {"fail": {"body": 5}},
        {"fail": {"content_type": "text/plain"}},  # a content type needs a body
        {"fail": {"body": "", "content_type": "text/html\r\nX-Evil: 1"}},
        {"fail_after_commit": {"endpoint": "clone"}},  # always the clone endpoint
        {"fail_after_commit": {"count": 0}},
        {"fail_after_commit": {"http_status": 600}},
        {"fail_after_commit": "yes"},
        {"list_page_cap": 0},
        {"list_page_cap": "2"},
        {"list_repeat_from": 1},
        {"list_endless": 1},
        {"latency_ms": 5, "list_repeat_from": 0},  # one bad key: the good one is not applied
    ],
)
def test_a_bad_faults_payload_is_refused_and_changes_nothing(
    admin: httpx.Client, payload: object
) -> None:
    before = admin.get("/_emulator/faults").json()
    reply = admin.post("/_emulator/faults", json=payload)
    assert reply.status_code == 400 and reply.json()["code"] == 4000
    assert admin.get("/_emulator/faults").json() == before


def test_faults_merge_and_get_shows_what_is_left(admin: httpx.Client) -> None:
    admin.post("/_emulator/faults", json={"latency_ms": 10, "fail": {"code": 4009, "count": 3}})
    admin.post("/_emulator/faults", json={"drop_after_commit": 2})
    shown = admin.get("/_emulator/faults").json()
    assert shown["latency_ms"] == 10 and shown["drop_after_commit"] == 2
    assert shown["rate_limit_qps"] is None
    assert {k: v for k, v in shown["fail"].items() if k != "msg"} == {
        "code": 4009,
        "http_status": 500,
        "count": 3,
        "endpoint": None,
        "body": None,
        "content_type": None,
        "retry_after": None,
    }
