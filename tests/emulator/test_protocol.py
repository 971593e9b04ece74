"""The wire protocol, seen with plain httpx: envelope, logid, routes, auth and multipart."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.emulator.conftest import FULL
from voicectl.emulator import EmulatorError, parse_token_specs, running_emulator

LOGID = re.compile(r"^\d{14}[0-9A-F]{20}$")
CLONE = "/v1/audio/voices/clone"


def multipart(*parts: tuple[str, str | None, str | None, bytes]) -> tuple[bytes, str]:
    """A hand-built multipart body: (name, filename, content type, payload) per part."""
    chunks = []
    for name, filename, content_type, payload in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--b0undary\r\nContent-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        chunks.append(head.encode() + b"\r\n" + payload + b"\r\n")
    return b"".join(chunks) + b"--b0undary--\r\n", "multipart/form-data; boundary=b0undary"


def post_parts(raw: httpx.Client, *parts: tuple[str, str | None, str | None, bytes]) -> dict:
    body, content_type = multipart(*parts)
    return raw.post(CLONE, content=body, headers={"Content-Type": content_type}).json()


def test_success_and_error_replies_carry_the_same_logid_in_body_and_header(
    raw: httpx.Client,
) -> None:
    for reply in (raw.get("/v1/audio/voices"), raw.get("/v1/audio/voices?page_num=0")):
        body = reply.json()
        assert set(body) >= {"code", "msg", "detail"}
        assert LOGID.match(reply.headers["x-tt-logid"])
        assert body["detail"]["logid"] == reply.headers["x-tt-logid"]
    assert raw.get("/v1/audio/voices").json()["msg"] == ""


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/audio/nothing"),
        ("DELETE", "/v1/audio/voices"),
        ("PATCH", "/v1/audio/voices"),
        ("DELETE", "/v1/audio/voices/7400000000000000001"),
        ("GET", CLONE),
    ],
)
def test_unsupported_routes_are_404_with_a_json_envelope(
    raw: httpx.Client, method: str, path: str
) -> None:
    reply = raw.request(method, path)
    assert reply.status_code == 404
    body = reply.json()
    assert body["code"] != 0 and body["msg"]
    assert body["detail"]["logid"] == reply.headers["x-tt-logid"]


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer pat_nobody", "Basic cGF0Ong=", f"Token {FULL}"]
)
def test_missing_or_malformed_authorization_is_4100_http_401(
    url: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    reply = httpx.get(f"{url}/v1/audio/voices", headers=headers)
    assert reply.status_code == 401
    assert (reply.json()["code"], reply.json()["msg"]) == (4100, "authentication is invalid")


def test_a_missing_scope_is_4101_http_403(url: str) -> None:
    reply = httpx.post(f"{url}/v1/audio/speech", headers={"Authorization": "Bearer pat_list_only"})
    assert (reply.status_code, reply.json()["code"]) == (403, 4101)


def test_without_configured_tokens_any_non_empty_bearer_token_is_accepted(data_dir: Path) -> None:
    with running_emulator(data_dir) as url:
        good = httpx.get(f"{url}/v1/audio/voices", headers={"Authorization": "Bearer whatever"})
        bad = httpx.get(f"{url}/v1/audio/voices", headers={"Authorization": "Bearer"})
    assert (good.json()["code"], bad.json()["code"]) == (0, 4100)


def test_the_file_is_found_by_part_name_whatever_its_filename_or_content_type(
    raw: httpx.Client, wav: bytes
) -> None:
    fields = [("voice_name", None, None, b"n"), ("audio_format", None, None, b"wav")]
    for filename, content_type in [
        ("", None),
        ("upload", "application/octet-stream"),
        (None, None),
    ]:
        body = post_parts(raw, ("file", filename, content_type, wav), *fields)
        assert body["code"] == 0, (filename, content_type, body)
    ledger = raw.get("/_emulator/ledger").json()["clones"]
    assert len({entry["audio_sha256"] for entry in ledger}) == 1  # the same bytes every time


def test_text_parts_are_utf8_even_with_a_text_plain_type_or_a_filename(
    raw: httpx.Client, wav: bytes
) -> None:
    body = post_parts(
        raw,
        ("file", "a.wav", "multipart/form-data", wav),
        ("voice_name", None, "text/plain", "旁白".encode()),
        ("audio_format", "x.txt", None, b"wav"),
    )
    assert (body["code"], body["data"]["name"]) == (0, "旁白")


def test_no_file_part_is_4300(raw: httpx.Client) -> None:
    assert post_parts(raw, ("voice_name", None, None, b"n"))["code"] == 4300


def test_an_empty_file_is_4300(raw: httpx.Client) -> None:
    body = post_parts(raw, ("file", "a.wav", None, b""), ("voice_name", None, None, b"n"))
    assert body["code"] == 4300


def test_a_non_multipart_body_is_4300(raw: httpx.Client) -> None:
    reply = raw.post(CLONE, json={"voice_name": "n", "audio_format": "wav"})
    assert reply.json()["code"] == 4300


def test_two_file_parts_are_4301(raw: httpx.Client, wav: bytes) -> None:
    body = post_parts(
        raw,
        ("file", "a.wav", None, wav),
        ("file", "b.wav", None, wav),
        ("voice_name", None, None, b"n"),
        ("audio_format", None, None, b"wav"),
    )
    assert body["code"] == 4301


def test_missing_voice_name_or_audio_format_is_4000(raw: httpx.Client, wav: bytes) -> None:
    assert (
        post_parts(raw, ("file", "a", None, wav), ("audio_format", None, None, b"wav"))["code"]
        == 4000
    )
    assert post_parts(raw, ("file", "a", None, wav), ("voice_name", None, None, b"n"))["code"] == (
        4000
    )


def test_a_multipart_body_without_a_boundary_is_4000(raw: httpx.Client) -> None:
    headers = {"Content-Type": "multipart/form-data"}
    reply = raw.post(CLONE, content=b"--x\r\nnonsense", headers=headers)
    assert reply.json()["code"] == 4000


@pytest.mark.parametrize(
    "spec", ["", " pat", "pat:scopes", "pat:colour=red", "pat:scopes=deleteVoice"]
)
def test_bad_token_specs_are_refused_without_echoing_the_token(spec: str) -> None:
    with pytest.raises(EmulatorError) as caught:
        parse_token_specs(["pat_fine", spec])
    assert "#2" in str(caught.value)
    assert "pat" not in str(caught.value).replace("token spec", "")


def test_token_specs_limit_scopes_and_spaces() -> None:
    grants = parse_token_specs(["a", "b:scopes=listVoice,createSpeech:spaces=1,2", "c:scopes="])
    assert grants["a"].scopes is None and grants["a"].spaces is None
    assert grants["b"].scopes == {"listVoice", "createSpeech"}
    assert grants["b"].covers("2") and not grants["b"].covers("3")
    assert grants["c"].scopes == frozenset()


def test_a_repeated_token_is_refused() -> None:
    with pytest.raises(EmulatorError, match="repeats"):
        parse_token_specs(["same", "same:scopes=listVoice"])
