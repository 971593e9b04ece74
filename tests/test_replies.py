"""The resend rule: what a reply from Coze proves, by Coze's documentation."""

from __future__ import annotations

import json

import pytest

from voicectl.coze.replies import MalformedPage, page, read, redact, verdict, voice_id
from voicectl.errors import CozeError, Verdict

REFUSALS = [4000, 4008, 4011, 4019, 4100, 4101, 4300, 4301, 4302, 4303, 4304, 1109, 1123]


@pytest.mark.parametrize("code", REFUSALS)
def test_request_errors_are_final_whatever_the_status(code: int) -> None:
    for status in (200, 400, 403, 500):
        assert verdict(status, code) is Verdict.REFUSED


@pytest.mark.parametrize(
    ("status", "code"),
    [(200, 4009), (200, 4020), (429, 4009), (429, 4020), (429, None), (500, 4020)],
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
        (429, 4013),  # a 429 whose own code is no rate limit contradicts itself
        (429, 5000),
        (301, None),  # a redirect on a billed POST
    ],
)
def test_everything_else_is_an_unknown_outcome(status: int, code: int | None) -> None:
    assert verdict(status, code) is Verdict.UNKNOWN


def reply(status: int, content: bytes, header: str = "") -> tuple[int, str, str]:
    """A reply as the client hands it over: status, body text, X-Tt-Logid header."""
    return status, content.decode(), header


@pytest.mark.parametrize(
    ("response", "code"),
    [
        (reply(502, b"<html><body>Bad Gateway</body></html>"), None),
        (reply(200, b""), None),
        (reply(200, b'{"msg": "no code"}'), None),
        (reply(200, b'{"code": "0", "data": {"voice_id": "7"}}'), None),  # not an integer
        (reply(200, b'{"code": true}'), None),
        (reply(200, b"[1, 2]"), None),
        (reply(200, b'{"code": 4013, "msg": "model error"}'), 4013),
        (reply(500, b'{"code": 0, "data": {"voice_id": "7"}}'), 0),
    ],
)
def test_only_a_code_0_envelope_at_2xx_is_a_success(
    response: tuple[int, str, str], code: int
) -> None:
    with pytest.raises(CozeError) as caught:
        read(*response)
    assert caught.value.code == code
    assert caught.value.verdict is not Verdict.REFUSED


def test_a_success_gives_data_and_the_logid() -> None:
    body = json.dumps({"code": 0, "msg": "", "data": {"voice_id": "7"}, "detail": {"logid": "L1"}})
    assert read(200, body, "20250101000000ABCDEF") == ({"voice_id": "7"}, "20250101000000ABCDEF")
    assert read(200, body, "") == ({"voice_id": "7"}, "L1")


def test_a_non_envelope_reply_is_shown_briefly_on_one_line() -> None:
    html = b"<html>\n<body>\n" + b"x" * 5000 + b"\n</body></html>"
    with pytest.raises(CozeError) as caught:
        read(*reply(502, html))
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
        read(*reply(502, body), token)
    shown = caught.value.message
    assert token not in shown and "[redacted]" in shown
    assert all(c.isprintable() for c in shown)
    envelope = json.dumps({"code": 4000, "msg": f"bad token {token}\x1b[31m"}).encode()
    with pytest.raises(CozeError) as caught:
        read(*reply(200, envelope), token)
    assert token not in caught.value.message and "\x1b" not in caught.value.message


@pytest.mark.parametrize(
    "logid",
    [
        "pat_echoed_back_by_a_proxy_9f2",  # the token itself
        "x" * 65,
        "2025\x1b[2J",
        "../../etc",
    ],
)
def test_a_logid_that_is_not_one_is_dropped_before_it_reaches_the_journal(logid: str) -> None:
    body = json.dumps({"code": 0, "data": {"voice_id": "7"}, "detail": {"logid": logid}})
    assert read(200, body, "", "pat_echoed_back_by_a_proxy_9f2") == ({"voice_id": "7"}, "")
    bare = json.dumps({"code": 0, "data": {"voice_id": "7"}})
    assert read(200, bare, logid, "pat_echoed_back_by_a_proxy_9f2") == ({"voice_id": "7"}, "")


def test_a_logid_holding_the_token_is_dropped_even_when_it_looks_like_one() -> None:
    token = "ABCDEF0123456789abcdef"
    body = json.dumps({"code": 0, "data": {"voice_id": "7"}})
    assert read(200, body, f"2025{token}", token) == ({"voice_id": "7"}, "")


GOOD_ITEM = {
    "voice_id": "7426720361733144585",
    "name": "Narrator",
    "is_system_voice": False,
    "available_training_times": 8,
    "create_time": 1729686510,
    "update_time": 1729686600,
}


def test_a_well_formed_page_gives_its_custom_voices_and_every_id() -> None:
    system = {**GOOD_ITEM, "voice_id": "7382552865023201819", "is_system_voice": True}
    result = page({"voice_list": [GOOD_ITEM, system], "has_more": True})
    assert [v.voice_id for v in result.voices] == ["7426720361733144585"]
    assert result.ids == ("7426720361733144585", "7382552865023201819") and result.has_more
    assert result.voices[0].available_training_times == 8


@pytest.mark.parametrize("code", ["ko", "pat_secret_token_value", "", None, 7])
def test_a_listed_language_voicectl_does_not_know_is_no_fact(code: object) -> None:
    """An import records the listed language: one the state cannot hold would leave it
    unloadable, and an echoed token would be written to a committed file."""
    item = {**GOOD_ITEM, "language_code": code}
    (voice,) = page({"voice_list": [item], "has_more": False}, "pat_secret_token_value").voices
    assert voice.language == ""
    item = {**GOOD_ITEM, "language_code": "ja"}
    assert page({"voice_list": [item], "has_more": False}).voices[0].language == "ja"


def test_a_voice_with_trainings_below_zero_has_none_left_and_spoils_nothing() -> None:
    item = {**GOOD_ITEM, "available_training_times": -2}
    (voice,) = page({"voice_list": [item], "has_more": False}).voices
    assert voice.available_training_times == 0


@pytest.mark.parametrize(
    "change",
    [
        {"create_time": None},
        {"update_time": None},
        {"available_training_times": None},
        {"available_training_times": "8"},
        {"create_time": -1},
        {"create_time": 1729686510.5},
        {"name": None},
        {"voice_id": 7426720361733144585},
    ],
    ids=str,
)
def test_a_voice_without_the_facts_reconcile_stands_on_makes_the_page_unusable(
    change: dict[str, object],
) -> None:
    """Read as 0, a missing create_time makes a lost clone look never made."""
    item = {**GOOD_ITEM, **change}
    with pytest.raises(MalformedPage):
        page({"voice_list": [item], "has_more": False})
    del item[next(iter(change))]
    with pytest.raises(MalformedPage):
        page({"voice_list": [item], "has_more": False})


@pytest.mark.parametrize(
    "data",
    [None, [], {"voice_list": []}, {"has_more": False}, {"voice_list": {}, "has_more": False}],
    ids=str,
)
def test_a_reply_that_is_not_a_page_is_refused(data: object) -> None:
    with pytest.raises(MalformedPage):
        page(data)


@pytest.mark.parametrize("code", ['"4013"', "5000.0", '"0"', "null", "[4009]"])
def test_a_429_naming_a_code_of_any_other_type_is_an_unknown_outcome(code: str) -> None:
    body = '{"code": ' + code + ', "data": {"voice_id": "7"}}'
    with pytest.raises(CozeError) as caught:
        read(429, body, "")
    assert caught.value.verdict is Verdict.UNKNOWN


@pytest.mark.parametrize(
    "name",
    [
        "旁白\u3000男声朗读者",
        "Studio\u00a0Narrator",
        "Narrator\u2009Thin",
        "Crew 👩\u200d🚀 voice",
        "می\u200cخواهم",  # Persian: a zero-width non-joiner belongs to the word
    ],
)
def test_a_listed_name_that_a_declaration_can_hold_is_read_as_it_is(name: str) -> None:
    """Any rewriting would keep it from matching its declaration: reconcile and the
    same-name check would not find the voice."""
    (voice,) = page({"voice_list": [{**GOOD_ITEM, "name": name}], "has_more": False}).voices
    assert voice.name == name


def test_a_listed_name_reaches_people_printable_and_without_the_token() -> None:
    item = {**GOOD_ITEM, "name": "Narrator \x1b]0;owned\x07 pat_secret_token_value"}
    (voice,) = page({"voice_list": [item], "has_more": False}, "pat_secret_token_value").voices
    assert voice.name.isprintable() and "pat_secret" not in voice.name
    with pytest.raises(MalformedPage):
        page({"voice_list": [{**GOOD_ITEM, "name": "bad \ud800"}], "has_more": False})


@pytest.mark.parametrize(
    ("text", "token", "shown"),
    [
        ("Unsupported route", "t", "Unsupported route"),  # a demo token: words kept whole
        ("bad token t: retry", "t", "bad token [redacted]: retry"),
        (
            "Authorization=pat_0123456789abcdefXYZ;",
            "pat_0123456789abcdefXYZ",
            "Authorization=[redacted];",
        ),
        (
            "glued pat_0123456789abcdefXYZpat_0123456789abcdefXYZ",
            "pat_0123456789abcdefXYZ",
            "glued [redacted][redacted]",
        ),
    ],
)
def test_a_token_is_redacted_wherever_it_appears_but_a_short_one_only_as_a_word(
    text: str, token: str, shown: str
) -> None:
    assert redact(text, token) == shown
