"""The resend rule: what a reply from Coze proves, by Coze's documentation."""

from __future__ import annotations

import json

import httpx
import pytest

from voicectl.replies import CozeError, Verdict, read, verdict, voice_id

REFUSALS = [4000, 4008, 4011, 4019, 4100, 4101, 4300, 4301, 4302, 4303, 4304, 1109, 1123]


@pytest.mark.parametrize("code", REFUSALS)
def test_request_errors_are_final_whatever_the_status(code: int) -> None:
    for status in (200, 400, 403, 500):
        assert verdict(status, code) is Verdict.REFUSED


@pytest.mark.parametrize(
    ("status", "code"),
    [(200, 4009), (200, 4020), (429, 4009), (429, 4020), (429, 4013), (429, 5000), (429, None)],
)
def test_only_429_4009_and_4020_prove_a_rate_refusal(status: int, code: int | None) -> None:
    assert verdict(status, code) is Verdict.THROTTLED


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (200, 4013),  # a model error, not a rate limit
        (500, 5000),
        (502, 5000),
        (200, 5000),
        (502, None),  # a gateway's HTML page
        (200, None),  # an empty body
        (200, 4999),  # a code the table does not list
        (200, 4200),
        (200, 4102),
        (200, 4022),
        (503, 0),  # a success envelope at an error status
        (429, 0),
        (301, None),  # a redirect on a billed POST
    ],
)
def test_everything_else_is_an_unknown_outcome(status: int, code: int | None) -> None:
    assert verdict(status, code) is Verdict.UNKNOWN


def reply(status: int, content: bytes, content_type: str = "application/json") -> httpx.Response:
    return httpx.Response(status, content=content, headers={"content-type": content_type})


@pytest.mark.parametrize(
    ("response", "code"),
    [
        (reply(502, b"<html><body>Bad Gateway</body></html>", "text/html"), None),
        (reply(200, b""), None),
        (reply(200, b'{"msg": "no code"}'), None),
        (reply(200, b'{"code": "0", "data": {"voice_id": "7"}}'), None),  # not an integer
        (reply(200, b'{"code": true}'), None),
        (reply(200, b"[1, 2]"), None),
        (reply(200, b'{"code": 4013, "msg": "model error"}'), 4013),
        (reply(500, b'{"code": 0, "data": {"voice_id": "7"}}'), 0),
    ],
)
def test_only_a_code_0_envelope_at_2xx_is_a_success(response: httpx.Response, code: int) -> None:
    with pytest.raises(CozeError) as caught:
        read(response)
    assert caught.value.code == code
    assert caught.value.verdict is not Verdict.REFUSED


def test_a_success_gives_data_and_the_logid() -> None:
    response = httpx.Response(
        200,
        json={"code": 0, "msg": "", "data": {"voice_id": "7"}, "detail": {"logid": "L1"}},
        headers={"x-tt-logid": "20250101000000ABCDEF"},
    )
    assert read(response) == ({"voice_id": "7"}, "20250101000000ABCDEF")


def test_a_non_envelope_reply_is_shown_briefly_on_one_line() -> None:
    html = b"<html>\n<body>\n" + b"x" * 5000 + b"\n</body></html>"
    with pytest.raises(CozeError) as caught:
        read(reply(502, html, "text/html"))
    assert "not its JSON envelope (HTTP 502)" in caught.value.message
    assert "\n" not in caught.value.message and len(caught.value.message) < 400


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("7426720361733144585", True),
        ("1", True),
        ("", False),
        ("abc", False),
        ("../../etc/passwd", False),
        ("1" * 33, False),
        ("74267\n", False),
        ("٧٤٢", False),  # Unicode digits are not a voice id
        (7426720361733144585, False),
        (None, False),
    ],
)
def test_a_voice_id_from_a_reply_is_checked(value: object, ok: bool) -> None:
    assert (voice_id(value) is not None) is ok
    if ok:
        assert voice_id(value) == value


def test_what_an_error_shows_of_a_reply_is_printable_and_never_the_token() -> None:
    token = "pat_echoed_back_by_a_proxy_9f2"
    body = f"<pre>\x1b[2J\x1b]0;owned\x07Authorization: Bearer {token}\r\n</pre>".encode()
    with pytest.raises(CozeError) as caught:
        read(reply(502, body, "text/html"), token)
    shown = caught.value.message
    assert token not in shown and "[redacted]" in shown
    assert all(c.isprintable() for c in shown)
    envelope = json.dumps({"code": 4000, "msg": f"bad token {token}\x1b[31m"}).encode()
    with pytest.raises(CozeError) as caught:
        read(reply(200, envelope), token)
    assert token not in caught.value.message and "\x1b" not in caught.value.message
