"""Where Coze's documentation is stricter than the emulator's kindness: never a double clone.

Each test drives `voicectl apply` against the emulator on a real socket, with a fault that
Coze's docs allow, and checks the emulator's ledger (the clones Coze really made).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    TOKEN,
    Coze,
    VoiceRepo,
    assert_converged,
    http_client,
    many,
    reseal,
    state_of,
    write_wav,
)
from voicectl.apply.events import Event, Outcome
from voicectl.apply.executor import Executor
from voicectl.coze.client import CozeClient, Retry
from voicectl.emulator.server import running_emulator
from voicectl.errors import ListingIncomplete, VoicectlError
from voicectl.plan import planner, repository
from voicectl.state.journal import Journal
from voicectl.state.replay import replay

HTML = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def apply(run: Any, repo: VoiceRepo, coze: Coze, *args: str) -> Any:
    return run(repo.root, "apply", "--auto-approve", *args, env=coze.env())


UNREADABLE_LIST = {"list_page_cap": 1, "list_repeat_from": 2}  # a page served again


def lose_replies_and_the_list(coze: Coze, lost: int = 1, **faults: Any) -> None:
    """The next ``lost`` clones are made but their replies lost, and the list cannot be
    read to its end: an apply must stop with them in its journal, nothing concluded."""
    coze.faults(drop_after_commit=lost, **UNREADABLE_LIST, **faults)


def settle(run: Any, repo: VoiceRepo, coze: Coze, clones: int) -> None:
    """With the list readable again, the next apply settles the journal: ``clones`` on
    the ledger, no more, and the state equal to the account."""
    coze.faults(**dict.fromkeys(UNREADABLE_LIST))
    result = apply(run, repo, coze)
    assert result.exit_code == 0, result.output
    assert len(coze.ledger()) == clones
    assert_converged(repo.root, coze)


def missing_on_coze(repo: VoiceRepo, address: str) -> None:
    """Hand-edit the state so ``address`` names a voice id the account does not have."""
    path = repo.root / "state" / "voicectl.state.json"
    state = json.loads(path.read_text())
    state["voices"][address]["voice_id"] = "7999999999999999999"
    path.write_text(json.dumps(state, indent=2))


# -- the resend rule ------------------------------------------------------------------


COMMITTED_THEN = {
    "4013 model error": {"code": 4013, "http_status": 200},
    "4013 at HTTP 429": {"code": 4013, "http_status": 429},
    "5000 at HTTP 429": {"code": 5000, "http_status": 429},
    "5000 at 502": {"code": 5000, "http_status": 502},
    "5000 at 500": {"code": 5000, "http_status": 500},
    "undocumented code": {"code": 4999, "http_status": 200},
    "undocumented code at 400": {"code": 7777, "http_status": 400},
    "4200 on a create": {"code": 4200, "http_status": 200},
    "HTML page from a gateway": {"http_status": 502, "body": HTML},
    "empty body": {"http_status": 200, "body": "", "content_type": "application/json"},
    "JSON without a code": {
        "http_status": 200,
        "body": '{"msg": "ok"}',
        "content_type": "application/json",
    },
}


@pytest.mark.parametrize("reply", COMMITTED_THEN.values(), ids=COMMITTED_THEN.keys())
def test_a_create_committed_then_answered_with_no_proof_of_refusal_is_cloned_once(
    repo: VoiceRepo, coze: Coze, run: Any, reply: dict[str, Any]
) -> None:
    many(repo, 2)
    coze.faults(fail_after_commit={**reply, "count": 2})
    result = apply(run, repo, coze)
    assert result.exit_code == 0, result.output
    assert [c["kind"] for c in coze.ledger()] == ["create", "create"]
    assert "found on Coze after a lost reply" in result.output
    assert_converged(repo.root, coze)


@pytest.mark.parametrize("code", [4013, 5000, 4999])
def test_a_retrain_committed_then_answered_with_an_error_is_cloned_once(
    repo: VoiceRepo, coze: Coze, run: Any, code: int
) -> None:
    many(repo, 1)
    assert apply(run, repo, coze).exit_code == 0
    repo.audio("v00.wav", freq=777)
    coze.faults(fail_after_commit={"code": code, "http_status": 500 if code == 5000 else 200})
    result = apply(run, repo, coze)
    assert result.exit_code == 0, result.output
    assert [c["kind"] for c in coze.ledger()] == ["create", "retrain"]
    assert state_of(repo.root)["voices"]["v00"]["clones_used"] == 2
    assert_converged(repo.root, coze)


@pytest.mark.parametrize("code", [4013, 5000, 4999])
def test_an_unknown_outcome_that_was_not_committed_is_sent_again_after_the_list(
    repo: VoiceRepo, coze: Coze, run: Any, code: int
) -> None:
    """Once its time in Coze's hands is over (1200 s; here 0), absent is absent."""
    many(repo, 1)
    coze.faults(fail={"code": code, "http_status": 200, "endpoint": "clone"})
    env = {**coze.env(), "VOICECTL_UNANSWERED_WAIT": "0"}
    result = run(repo.root, "apply", "--auto-approve", env=env)
    assert result.exit_code == 0, result.output
    assert "checking Coze's voice list" in result.output
    assert len(coze.ledger()) == 1
    assert_converged(repo.root, coze)


@pytest.mark.parametrize(("code", "status"), [(4009, 200), (4020, 200), (4020, 429), (4009, 429)])
def test_a_rate_refusal_is_sent_again_without_looking(
    repo: VoiceRepo, coze: Coze, run: Any, code: int, status: int
) -> None:
    many(repo, 1)
    coze.faults(fail={"code": code, "http_status": status, "count": 2, "endpoint": "clone"})
    result = apply(run, repo, coze)
    assert result.exit_code == 0, result.output
    assert "checking Coze's voice list" not in result.output
    assert len(coze.ledger()) == 1
    assert_converged(repo.root, coze)


REFUSALS = {
    4000: "parameter",
    4100: "token is invalid",
    4008: "daily limit",
    4011: "balance",
    4019: "voice slot",
    4101: "permission",
    4300: "no audio file",
    4301: "one audio file",
    4302: "10 MB",
    4303: "format",
    4304: "invalid",
    1109: "transcript",
    1123: "all 10 clones",
}


@pytest.mark.parametrize(("code", "hint"), REFUSALS.items(), ids=[str(c) for c in REFUSALS])
def test_a_request_error_is_final_and_explained(
    repo: VoiceRepo, coze: Coze, run: Any, code: int, hint: str
) -> None:
    """The fault answers once: a resend would succeed and show on the ledger."""
    many(repo, 1)
    coze.faults(fail={"code": code, "http_status": 200, "endpoint": "clone"})
    result = apply(run, repo, coze)
    assert result.exit_code == 1
    assert f"Coze error {code}" in result.output and hint in result.output
    assert "Traceback" not in result.output
    assert coze.ledger() == []
    assert not (repo.root / "state" / "voicectl.state.json.journal").exists()


def test_a_clone_reply_with_a_malformed_voice_id_is_reconciled_not_recorded(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 1)
    coze.faults(
        fail_after_commit={
            "http_status": 200,
            "body": json.dumps({"code": 0, "msg": "", "data": {"voice_id": "../../etc/passwd"}}),
            "content_type": "application/json",
        }
    )
    result = apply(run, repo, coze)
    assert result.exit_code == 0, result.output
    assert len(coze.ledger()) == 1
    assert_converged(repo.root, coze)


# -- paging follows has_more only ---------------------------------------------------------


def client(base: str) -> CozeClient:
    return CozeClient(http_client(base), TOKEN, Retry(sleep=lambda _: None))


def test_short_pages_that_say_has_more_are_read_to_the_end(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 5)
    assert apply(run, repo, coze).exit_code == 0
    coze.faults(list_page_cap=2)
    assert len(list(client(coze.base).voices())) == 5
    drift = run(repo.root, "drift", env=coze.env())
    assert drift.exit_code == 0, drift.output
    plan = run(repo.root, "plan", env=coze.env())
    assert plan.stdout == "No changes.\n" and "not on Coze" not in plan.output


@pytest.mark.parametrize(
    "fault", [{"list_repeat_from": 2}, {"list_endless": True}], ids=["repeated", "endless"]
)
def test_a_listing_that_never_ends_is_an_error_not_an_answer(
    repo: VoiceRepo, coze: Coze, run: Any, fault: dict[str, Any]
) -> None:
    many(repo, 3)
    assert apply(run, repo, coze).exit_code == 0
    coze.faults(list_page_cap=1, **fault)
    with pytest.raises(ListingIncomplete):
        list(client(coze.base).voices())
    drift = run(repo.root, "drift", env=coze.env())
    assert drift.exit_code == 1 and "could not be read to its end" in drift.output


def test_reconcile_never_concludes_not_sent_from_an_incomplete_listing(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 1)
    lose_replies_and_the_list(coze)
    first = apply(run, repo, coze)
    assert first.exit_code == 1 and "Nothing was sent again" in first.output
    assert len(coze.ledger()) == 1
    assert (repo.root / "state" / "voicectl.state.json.journal").exists()
    settle(run, repo, coze, clones=1)


# -- voice slots --------------------------------------------------------------------------


def test_max_voices_counts_the_account_and_fails_before_any_clone(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 2)
    assert apply(run, repo, coze).exit_code == 0
    repo.write_config(policy={"max_voices": 3})
    more = {f"n{i}": repo.voice(f"n{i}", freq=900 + i) for i in range(2)}
    repo.declare(more, file="voices/more.yaml")
    for args in (("plan",), ("apply", "--auto-approve")):
        result = run(repo.root, *args, env=coze.env())
        assert result.exit_code == 1
        assert "policy.max_voices is 3" in result.output
        assert "4 slots are needed" in result.output and "buy 1 voice-clone" in result.output
    offline = run(repo.root, "plan")  # counted from the state
    assert offline.exit_code == 1 and "holds 2 cloned voice(s)" in offline.output
    assert len(coze.ledger()) == 2
    repo.write_config(policy={"max_voices": 4})
    assert apply(run, repo, coze).exit_code == 0
    assert len(coze.ledger()) == 4


def test_out_of_slots_on_coze_is_explained(tmp_path: Path, repo: VoiceRepo, run: Any) -> None:
    many(repo, 2)
    with running_emulator(tmp_path / "slots", slot_quota=1) as base, Coze(base, TOKEN) as coze:
        result = apply(run, repo, coze, "--parallelism", "1")
        assert result.exit_code == 1
        assert "Coze error 4019" in result.output and "expansion pack" in result.output
        assert len(coze.ledger()) == 1
        assert len(state_of(repo.root)["voices"]) == 1


# -- the wrong account --------------------------------------------------------------------


def test_an_account_holding_none_of_the_state_is_refused_before_any_clone(
    tmp_path: Path, repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 2)
    assert apply(run, repo, coze).exit_code == 0
    repo.declare({"extra": repo.voice("extra", freq=1500)}, file="voices/extra.yaml")
    with running_emulator(tmp_path / "other-account") as base, Coze(base, TOKEN) as other:
        for args in (("plan",), ("apply", "--auto-approve"), ("drift",), ("refresh",)):
            result = run(repo.root, *args, env=other.env())
            assert result.exit_code == 1, result.output
            assert "none of the state's 2 voice id(s)" in result.output
            assert "region" in result.output and "COZE_API_BASE" in result.output
        assert other.ledger() == []


def test_a_voice_missing_on_coze_is_never_planned_as_a_retrain(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 2)
    assert apply(run, repo, coze).exit_code == 0
    missing_on_coze(repo, "v01")
    repo.audio("v01.wav", freq=1999)
    plan = json.loads(run(repo.root, "plan", "--json", env=coze.env()).stdout)
    (change,) = [c for c in plan["changes"] if c["address"] == "v01"]
    assert change["action"] == "blocked" and "missing_on_coze" in change["reasons"]
    text = run(repo.root, "plan", env=coze.env()).output
    assert "--replace v01" in text and "voicectl state rm v01" in text
    drift = run(repo.root, "drift", env=coze.env())
    assert drift.exit_code == 2 and "v01: missing" in drift.output
    result = apply(run, repo, coze)
    assert result.exit_code == 1
    assert len(coze.ledger()) == 2
    replaced = apply(run, repo, coze, "--replace", "v01")
    assert replaced.exit_code == 0, replaced.output
    assert [c["kind"] for c in coze.ledger()] == ["create", "create", "create"]


def test_a_reply_naming_a_voice_id_coze_does_not_have_is_said_and_the_real_one_offered(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    """Something between (a proxy) rewrote the reply's voice id to a well-formed one that
    is no voice: the voice made must not go unmentioned."""
    many(repo, 1)
    assert apply(run, repo, coze).exit_code == 0
    many(repo, 2)
    body = '{"code": 0, "msg": "", "data": {"voice_id": "7400000000000000001"}}'
    coze.faults(fail_after_commit={"http_status": 200, "body": body, "count": 1})
    result = apply(run, repo, coze)
    assert "voice 7400000000000000001, as Coze's reply named it, is not on" in result.stderr
    made = coze.ledger()[-1]["voice_id"]
    plan = run(repo.root, "plan", env=coze.env()).output
    assert "voice 7400000000000000001 is not on Coze's voice list" in plan
    assert f"`voicectl import v01 {made}` takes it in, free" in plan
    imported = run(repo.root, "import", "v01", made, env=coze.env())
    assert imported.exit_code == 0, imported.output
    assert "Voice 7400000000000000001, which Coze does not list, is kept as an orphan" in (
        imported.output
    )
    after = state_of(repo.root)
    assert after["voices"]["v01"]["voice_id"] == made
    assert [o["voice_id"] for o in after["orphans"]] == ["7400000000000000001"]


class _Notices:
    """An apply's reporter that keeps its notices (record_remote only gives notices)."""

    def __init__(self, said: list[str]) -> None:
        self.said = said

    def notice(self, message: str) -> None:
        self.said.append(message)


def test_a_create_whose_reply_names_a_voice_listed_under_another_name_is_unproven(
    repo: VoiceRepo, coze: Coze, tmp_path: Path
) -> None:
    """The reply named a colleague's voice made meanwhile (rewritten, or swapped with
    another clone's): what is recorded must not be relied on, nor retrained over."""
    from dataclasses import replace

    from voicectl.apply.service import record_remote
    from voicectl.model import TakeRef, VoiceRecord
    from voicectl.state import statefile as state_io

    many(repo, 1)
    cfg = repository.open_config(repo.root)
    current, _ = repository.effective_state(cfg)
    (change,) = planner.plan(repository.read_valid(cfg).desired, current).actionable
    theirs = colleague_clones(coze, "Colleague Voice", tmp_path)
    after = change.after
    assert after is not None
    a = after.audio
    record = VoiceRecord(
        address="v00",
        voice_id=theirs,
        space=after.space,
        name=after.name,
        language=after.language,
        text=after.text,
        preview_text=None,
        take=TakeRef(a.sha256, a.path, a.format, a.size, 12.0),
        clones_used=1,
        protect=False,
        created_at="2027-01-01T00:00:00Z",
        updated_at="2027-01-01T00:00:00Z",
    )
    folded = replace(current, voices={"v00": record})
    client = CozeClient(http_client(coze.base), TOKEN, Retry(attempts=2))
    said: list[str] = []
    learnt = record_remote(client, folded, [(change, theirs)], _Notices(said))
    assert any("not as it was sent" in line for line in said)  # and the person is told
    why = learnt.voices["v00"].unproven
    assert why is not None and "which Coze lists as 'Colleague Voice'" in why
    assert learnt.voices["v00"].remote is None  # its facts are not taken as v00's
    state_io.save(cfg.state_path, learnt)
    assert "unproven" in state_of(repo.root)["voices"]["v00"]


# -- readings that cannot cost money --------------------------------------------------------


def test_a_take_over_10_000_000_bytes_is_refused(repo: VoiceRepo, run: Any) -> None:
    repo.declare({"big": repo.voice("big")})
    (repo.root / "audio" / "big.wav").write_bytes(b"RIFF" + bytes(10_000_001 - 4))
    result = run(repo.root, "validate")
    assert result.exit_code == 1 and "10,000,001 bytes" in result.output


def test_a_short_voice_name_is_warned_about(repo: VoiceRepo, run: Any) -> None:
    repo.declare({"jay": repo.voice("jay", name="jay")})
    result = run(repo.root, "validate")
    assert result.exit_code == 0
    assert "warning: voices.jay.name: 'jay' is 3 characters" in result.output


def test_a_reply_echoing_the_token_never_shows_it(repo: VoiceRepo, coze: Coze, run: Any) -> None:
    """A gateway page that reflects the request's headers: the run fixture fails the test
    if the token appears in any output."""
    many(repo, 1)
    page = f"<html><pre>Authorization: Bearer {TOKEN}</pre>\x1b[2J</html>"
    coze.faults(fail={"http_status": 403, "body": page, "endpoint": "clone", "count": 3})
    result = apply(run, repo, coze)
    assert result.exit_code == 1 and "[redacted]" in result.output
    assert "\x1b" not in result.output
    assert coze.ledger() == []


def _id3(body: bytes) -> bytes:
    return b"ID3\x04\x00\x00\x00\x00\x00\x14" + bytes(20) + body


SAMPLES = {
    "wav": ("a.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40)),
    "ogg": ("a.ogg", b"OggS" + bytes(60)),
    "m4a": ("a.m4a", b"\x00\x00\x00\x20ftypM4A " + bytes(52)),
    "tagged mp3": ("a.mp3", _id3(b"\xff\xfb\x90\xc4" + bytes(40))),
    "tagged aac": ("a.aac", _id3(b"\xff\xf1\x50\x80" + bytes(40))),
    "adif aac": ("a.aac", b"ADIF" + bytes(60)),
    "bare mp3": ("a.mp3", b"\xff\xfb\x90\xc4" + bytes(60)),
    "bare aac": ("a.aac", b"\xff\xf1\x50\x80" + bytes(60)),
    "pcm whose first sample is -1": ("a.pcm", b"\xff\xff\xfe\xff" + bytes(60)),
    "pcm": ("a.pcm", b"\x01\x00\x02\x00" + bytes(60)),
}


@pytest.mark.parametrize("sample", SAMPLES.values(), ids=SAMPLES.keys())
def test_a_take_validate_accepts_is_what_the_emulator_accepts_on_upload(
    sample: tuple[str, bytes],
) -> None:
    """voicectl's format sniffing and the emulator's 4304 check read bytes alike."""
    from voicectl.declare.formats import id3_end, sniff
    from voicectl.emulator.audiocheck import check_audio

    name, data = sample
    after = data[id3_end(data) :][:2] if data[:3] == b"ID3" else b""
    fmt = sniff(data[:64], name, after)
    assert fmt is not None
    check_audio(data, fmt)  # raises ApiError 4304 where the two disagree


# -- replies that cannot be this clone's -----------------------------------------------


def test_a_create_answered_with_a_voice_id_already_taken_is_reconciled(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 1)
    assert apply(run, repo, coze).exit_code == 0
    taken = state_of(repo.root)["voices"]["v00"]["voice_id"]
    repo.declare({"extra": repo.voice("extra", freq=1500)}, file="voices/extra.yaml")
    body = json.dumps({"code": 0, "msg": "", "data": {"voice_id": taken}})
    coze.faults(fail_after_commit={"http_status": 200, "body": body, "content_type": "x/json"})
    result = apply(run, repo, coze)
    assert result.exit_code == 0, result.output
    assert "it was there before" in result.output
    ids = {r["voice_id"] for r in state_of(repo.root)["voices"].values()}
    assert len(ids) == 2 and len(coze.ledger()) == 2
    assert_converged(repo.root, coze)


def test_a_retrain_answered_with_another_voice_id_is_reconciled(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 1)
    assert apply(run, repo, coze).exit_code == 0
    repo.audio("v00.wav", freq=777)
    body = json.dumps({"code": 0, "msg": "", "data": {"voice_id": "7123456789012345678"}})
    coze.faults(fail_after_commit={"http_status": 200, "body": body, "content_type": "x/json"})
    result = apply(run, repo, coze)
    assert result.exit_code == 0, result.output
    assert "names voice 7123456789012345678" in result.output
    assert [c["kind"] for c in coze.ledger()] == ["create", "retrain"]
    assert_converged(repo.root, coze)


# -- the account a lost clone was sent to ----------------------------------------------------


def test_a_lost_clone_is_never_settled_on_another_account(
    tmp_path: Path, repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    """First apply of an empty state: its reply is lost and the listing cannot be read,
    so the journal keeps the clone. An apply with another account's token must not read
    that account's list as "never carried out" and clone again there."""
    many(repo, 1)
    lose_replies_and_the_list(coze)
    first = apply(run, repo, coze)  # the empty account lists; once cloned, it cannot
    assert first.exit_code == 1 and "Nothing was sent again" in first.output
    with running_emulator(tmp_path / "other-account") as base, Coze(base, TOKEN) as other:
        result = apply(run, repo, other)
        assert result.exit_code == 1, result.output
        assert "not written with this COZE_API_TOKEN and COZE_API_BASE" in result.output
        assert other.ledger() == []
    assert (repo.root / "state" / "voicectl.state.json.journal").exists()
    settle(run, repo, coze, clones=1)


def test_a_saved_plan_made_offline_never_retrains_a_voice_missing_on_coze(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 2)
    assert apply(run, repo, coze).exit_code == 0
    missing_on_coze(repo, "v01")
    repo.audio("v01.wav", freq=1999)
    saved = run(repo.root, "plan", "--out", "p.json")  # offline: no token
    assert saved.exit_code == 0, saved.output
    result = run(repo.root, "apply", "p.json", env=coze.env())
    assert result.exit_code == 1
    assert "v01 (voice 7999999999999999999)" in result.output
    assert "nothing was cloned" in result.output
    assert len(coze.ledger()) == 2


def test_plan_stops_on_a_listing_it_cannot_read_to_the_end(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 3)
    assert apply(run, repo, coze).exit_code == 0
    coze.faults(**UNREADABLE_LIST)
    result = run(repo.root, "plan", env=coze.env())
    assert result.exit_code == 1
    assert "could not be read to its end (page 2 repeats the page before it)" in result.output


# -- Coze's clock is not this machine's --------------------------------------------------------


@pytest.mark.parametrize("skew", [-8, -3600, 8, 3600])
def test_a_lost_reply_is_found_whatever_coze_s_clock_says(
    repo: VoiceRepo, coze: Coze, run: Any, skew: int
) -> None:
    many(repo, 2)
    coze.faults(clock_skew_s=skew, drop_after_commit=1)
    created = apply(run, repo, coze)
    assert created.exit_code == 0, created.output
    assert [c["kind"] for c in coze.ledger()] == ["create", "create"]
    repo.audio("v00.wav", freq=777)
    coze.faults(drop_after_commit=1)
    retrained = apply(run, repo, coze)
    assert retrained.exit_code == 0, retrained.output
    assert [c["kind"] for c in coze.ledger()] == ["create", "create", "retrain"]
    assert_converged(repo.root, coze)


def test_a_crash_with_a_lost_reply_recovers_from_the_witness_in_the_journal(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    """The recovery runs in another apply, long after: no time window could help."""
    many(repo, 1)
    lose_replies_and_the_list(coze, clock_skew_s=-3600)
    assert apply(run, repo, coze).exit_code == 1  # lost, and the listing cannot settle it
    journal = (repo.root / "state" / "voicectl.state.json.journal").read_text()
    assert '"before": {"ids": [], "listed_at": ' in journal
    settle(run, repo, coze, clones=1)


def test_a_lost_state_file_under_a_live_journal_is_recovered_or_named_never_buried(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    """A first apply's journal began from an empty state: with the state file gone, the
    journal alone holds everything, and apply recovers from it. A later apply's began
    from voices only the state knew: that state must come back first."""
    many(repo, 2)
    lose_replies_and_the_list(coze)
    assert apply(run, repo, coze, "--parallelism", "1").exit_code == 1
    path = repo.root / "state" / "voicectl.state.json"
    # A first apply writes the state once, when it ends: with clones unsettled, never.
    assert not path.exists()
    coze.faults(**dict.fromkeys(UNREADABLE_LIST))
    recovered = apply(run, repo, coze)
    assert recovered.exit_code == 0, recovered.output
    assert len(coze.ledger()) == 2
    assert_converged(repo.root, coze)
    many(repo, 3)
    # two voices list whole; with v02's clone made, its page is served again
    coze.faults(drop_after_commit=1, list_page_cap=1, list_repeat_from=4)
    assert apply(run, repo, coze).exit_code == 1
    path.unlink()
    coze.faults(**dict.fromkeys(UNREADABLE_LIST))
    for args in (["plan"], ["apply", "--auto-approve"]):
        stopped = run(repo.root, *args, env=coze.env())
        assert stopped.exit_code == 1, (args, stopped.output)
        assert "there is no state file, but an interrupted apply's journal" in stopped.output
        assert "clones of unknown outcome (v02) may be on Coze" in stopped.output
    assert len(coze.ledger()) == 3 and not path.exists()
    # The state was never committed: the way out it gives works as written. The journal
    # moved aside, each voice on Coze imported (the plan names v00's and v01's), none paid
    # for twice.
    moved = re.search(r"`mv (\S+) (\S+)` in (\S+)\)", stopped.output)
    assert moved is not None, stopped.output
    folder = Path(moved.group(3))
    (folder / moved.group(1)).rename(folder / moved.group(2))
    coze.clear_faults()
    by_name = {v["name"]: v["voice_id"] for v in coze.voices().values()}
    for address in ("v00", "v01", "v02"):
        voice_id = by_name[f"{address.title()} voice"]
        assert run(repo.root, "import", address, voice_id, env=coze.env()).exit_code == 0
    assert apply(run, repo, coze).exit_code == 0
    assert len(coze.ledger()) == 3


def test_a_plan_after_an_interrupted_apply_leaves_its_creates_in_doubt_to_apply(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    """The interrupted apply's clone is on Coze, unknown to the state: the plan must not
    block it and tell a person to import it, when the next apply settles it by itself."""
    many(repo, 1)
    lose_replies_and_the_list(coze)
    assert apply(run, repo, coze).exit_code == 1
    coze.faults(**dict.fromkeys(UNREADABLE_LIST))
    planned = run(repo.root, "plan", "--json", env=coze.env())
    assert planned.exit_code == 0, planned.output
    assert "1 clone(s) of unknown outcome: v00)" in planned.stderr  # which one, named
    (change,) = json.loads(planned.stdout)["changes"]
    assert change["action"] == "create"
    (made,) = coze.ledger()
    assert any(
        "an interrupted apply sent this clone and never learnt its outcome" in note
        and made["voice_id"] in note
        for note in change["notes"]
    )
    settle(run, repo, coze, clones=1)


# -- a voice found after a lost reply that cannot be proven this apply's ----------------------


def colleague_clones(coze: Coze, name: str, tmp: Path) -> str:
    """Someone clones a voice named ``name`` in the console, outside voicectl."""
    wav = write_wav(tmp / "colleague.wav", freq=999)
    reply = coze.http.post(
        "/v1/audio/voices/clone",
        headers={"Authorization": f"Bearer {TOKEN}"},
        data={"voice_name": name, "audio_format": "wav", "language": "en"},
        files={"file": ("take.wav", wav.read_bytes())},
    ).json()
    assert reply["code"] == 0, reply
    return str(reply["data"]["voice_id"])


def age_the_witness(repo: VoiceRepo, seconds: float, coze: Coze) -> None:
    """The interrupted apply read the account ``seconds`` earlier than it did."""
    path = repo.root / "state" / "voicectl.state.json.journal"
    lines = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "before" in record:
            record["before"]["listed_at"] -= seconds
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
    reseal(path, coze)


def test_a_same_named_voice_found_long_after_a_lost_clone_is_recorded_unproven(
    repo: VoiceRepo, coze: Coze, run: Any, tmp_path: Path
) -> None:
    """v00's clone never reached Coze (a gateway's 502), and the apply stopped with it
    unknown (v01's clone made the list too long to read); an hour later a colleague's
    voice named like v00 is on the account. It is not passed off as voicectl's: the state
    marks it, every plan says so, until a person decides."""
    many(repo, 2)
    another = colleague_clones(coze, "Another voice", tmp_path)
    coze.faults(
        fail={"endpoint": "clone", "http_status": 502, "body": HTML},
        list_page_cap=1,
        list_repeat_from=3,  # a listing of two voices or more cannot be read
    )
    stopped = apply(run, repo, coze, "--parallelism", "1")
    assert stopped.exit_code == 1, stopped.output
    assert len(coze.ledger()) == 2  # and v01's; the 502 came before v00's was committed
    theirs = colleague_clones(coze, "V00 voice", tmp_path)
    age_the_witness(repo, 3600, coze)
    coze.faults(list_page_cap=None, list_repeat_from=None)
    recovered = apply(run, repo, coze)
    assert recovered.exit_code == 0, recovered.output
    assert len(coze.ledger()) == 3  # the colleague's: voicectl sent nothing again
    assert f"v00: voice {theirs} is unproven" in recovered.stderr
    record = state_of(repo.root)["voices"]["v00"]
    assert record["voice_id"] == theirs and "3600 s outside" in record["unproven"]
    plan = run(repo.root, "plan", env=coze.env())
    assert plan.exit_code == 0
    assert f"voice {theirs} is unproven" in plan.output
    assert f"voicectl import v00 {theirs}` confirms it" in plan.output
    assert "voicectl apply --replace v00` clones a new voice id" in plan.output
    markdown = run(repo.root, "plan", "--format", "markdown", env=coze.env())
    assert f"voice {theirs} is unproven" in markdown.output
    # Importing another voice there is refused, naming both ways a person can decide.
    refused = run(repo.root, "import", "v00", another, env=coze.env())
    assert refused.exit_code == 1
    assert f"already in the state as voice {theirs}, which Coze lists" in refused.output
    assert f"`voicectl import v00 {theirs}` confirms it" in refused.output
    # It may be the colleague's voice: it is not trained over until a person decides.
    retrain = json.loads(
        run(repo.root, "plan", "--json", "--retrain", "v00", env=coze.env()).stdout
    )
    (change,) = [c for c in retrain["changes"] if c["address"] == "v00"]
    assert change["action"] == "blocked" and "unproven" in change["reasons"]
    # Not the voice meant: replace it; the colleague's stays an orphan, not a lost id.
    replaced = apply(run, repo, coze, "--replace", "v00")
    assert replaced.exit_code == 0, replaced.output
    after = state_of(repo.root)
    assert after["voices"]["v00"]["voice_id"] != theirs
    assert "unproven" not in after["voices"]["v00"]
    assert [o["voice_id"] for o in after["orphans"]] == [theirs]
    assert [c["kind"] for c in coze.ledger()] == ["create"] * 4


def test_a_person_confirms_an_unproven_voice_with_import(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 1)
    lose_replies_and_the_list(coze)
    assert apply(run, repo, coze).exit_code == 1
    age_the_witness(repo, 900, coze)  # recovered 15 minutes on: anyone's clone could be it
    coze.faults(**dict.fromkeys(UNREADABLE_LIST))
    assert apply(run, repo, coze).exit_code == 0
    voice_id = state_of(repo.root)["voices"]["v00"]["voice_id"]
    assert "unproven" in state_of(repo.root)["voices"]["v00"]
    confirmed = run(repo.root, "import", "v00", voice_id)  # a person's word: no token
    assert confirmed.exit_code == 0, confirmed.output
    assert f"Confirmed voice {voice_id} as v00" in confirmed.output
    assert "unproven" not in state_of(repo.root)["voices"]["v00"]
    assert run(repo.root, "plan", env=coze.env()).stdout == "No changes.\n"
    assert len(coze.ledger()) == 1


def test_a_clone_found_right_after_its_lost_reply_is_recorded_as_proven(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 2)
    coze.faults(drop_after_commit=1)
    result = apply(run, repo, coze)
    assert result.exit_code == 0, result.output
    assert "found on Coze after a lost reply" in result.output
    assert "unproven" not in result.output
    assert not any("unproven" in r for r in state_of(repo.root)["voices"].values())
    assert run(repo.root, "plan", env=coze.env()).stdout == "No changes.\n"


def test_a_retrain_found_having_used_two_trainings_is_unproven(
    repo: VoiceRepo, coze: Coze, run: Any, tmp_path: Path
) -> None:
    """Someone else retrained the voice too while the reply was lost: the last training
    may be theirs, not this take."""
    repo.declare({"v00": repo.voice("v00")})
    assert apply(run, repo, coze).exit_code == 0
    voice_id = state_of(repo.root)["voices"]["v00"]["voice_id"]
    repo.declare({"v00": repo.voice("v00", freq=777), "v01": repo.voice("v01", freq=555)})
    coze.faults(drop_after_commit=2, list_page_cap=1, list_repeat_from=3)
    stopped = apply(run, repo, coze, "--parallelism", "1")
    assert stopped.exit_code == 1, stopped.output
    assert sorted(c["kind"] for c in coze.ledger()) == ["create", "create", "retrain"]
    wav = write_wav(tmp_path / "other.wav", freq=999)
    coze.http.post(
        "/v1/audio/voices/clone",
        headers={"Authorization": f"Bearer {TOKEN}"},
        data={"voice_name": "V00", "audio_format": "wav", "language": "en", "voice_id": voice_id},
        files={"file": ("take.wav", wav.read_bytes())},
    ).raise_for_status()
    coze.faults(list_page_cap=None, list_repeat_from=None)
    assert apply(run, repo, coze).exit_code == 0
    record = state_of(repo.root)["voices"]["v00"]
    assert "used 2 trainings" in record["unproven"]
    assert sorted(c["kind"] for c in coze.ledger()) == ["create", "create", "retrain", "retrain"]
    assert "unproven" not in state_of(repo.root)["voices"]["v01"]  # found at once: its own
    # The voice id is voicectl's; only its training is in doubt, so training it again is
    # the advice, and a retrain whose reply comes lifts the doubt.
    plan = run(repo.root, "plan", env=coze.env()).output
    assert "`voicectl apply --retrain v00` trains it again from the take" in plan
    assert "--replace v00" not in plan
    retrained = apply(run, repo, coze, "--retrain", "v00")
    assert retrained.exit_code == 0, retrained.output
    assert "unproven" not in state_of(repo.root)["voices"]["v00"]
    assert run(repo.root, "plan", env=coze.env()).stdout == "No changes.\n"


def test_a_clone_sent_late_in_a_long_apply_is_told_by_a_fresh_reading_of_the_account(
    repo: VoiceRepo, coze: Coze, tmp_path: Path
) -> None:
    """The account read before the plan grows old while an apply goes on: read again
    before a later clone, a lost reply found at once is proven that clone's; told by the
    old reading, it would not be."""
    many(repo, 2)
    cfg = repository.open_config(repo.root)
    current, _ = repository.effective_state(cfg)
    work = planner.plan(repository.read_valid(cfg).desired, current).actionable
    client = CozeClient(http_client(coze.base), TOKEN, Retry(attempts=2))
    coze.faults(drop_after_commit=2)
    an_hour_ago = time.time() - 3600  # when the account was read, before a long apply
    found = {}
    for change, rewitness in zip(work, (float("inf"), 0.0), strict=True):
        events: list[Event] = []
        path = tmp_path / f"{change.address}.journal"
        path.touch()
        with Journal.begin(path, current, "2027-01-01T00:00:00Z") as log:
            executor = Executor(
                client, repo.root, log, 1, events.append, settle=(0.1,), rewitness=rewitness
            )
            listing = {v.voice_id: v for v in client.voices()}
            executor.run([change], current.voice_ids(), listing, an_hour_ago)
        (event,) = [e for e in events if e.kind == "reconcile"]
        found[change.address] = event.unproven
    assert "outside that clone's own flight" in found["v00"]  # told by the hour-old reading
    assert found["v01"] == ""  # read again just before it was sent
    assert len(coze.ledger()) == 2


@pytest.mark.parametrize(
    "name", ["旁白\u3000男声朗读者", "Studio\u00a0Narrator", "Crew 👩\u200d🚀"]
)
def test_a_lost_clone_of_a_name_with_any_space_or_joiner_is_found_not_sent_again(
    repo: VoiceRepo, coze: Coze, run: Any, name: str
) -> None:
    repo.declare({"v00": repo.voice("v00", name=name)})
    coze.faults(drop_after_commit=1)
    result = apply(run, repo, coze)
    assert result.exit_code == 0, result.output
    (clone,) = coze.ledger()
    assert state_of(repo.root)["voices"]["v00"]["voice_id"] == clone["voice_id"]
    (repo.root / "state" / "voicectl.state.json").unlink()  # lost: the name still guards
    blocked = run(repo.root, "plan", "--json", env=coze.env())
    (change,) = json.loads(blocked.stdout)["changes"]
    assert change["action"] == "blocked" and "name_on_coze" in change["reasons"]


def test_a_clone_given_up_at_its_deadline_is_not_sent_again_while_coze_may_have_it(
    repo: VoiceRepo, coze: Coze, tmp_path: Path
) -> None:
    """Given up on at its deadline, a clone may still be in Coze's hands: its voice can
    appear on the list long after a quick look found nothing. It is sent again only once
    its time in Coze's hands is over (1200 s from the send; here 30, then none) and if
    Coze still does not list it."""
    many(repo, 1)
    cfg = repository.open_config(repo.root)
    current, _ = repository.effective_state(cfg)
    (change,) = planner.plan(repository.read_valid(cfg).desired, current).actionable
    client = CozeClient(http_client(coze.base), TOKEN, Retry(attempts=2), deadlines=(0.5, 10))
    listing = {v.voice_id: v for v in client.voices()}
    coze.faults(latency_ms=1500, list_lag=1000)  # slow to answer; the list lags behind
    path = repo.root / "state" / "voicectl.state.json.journal"
    path.parent.mkdir(exist_ok=True)
    path.touch()
    log = Journal.begin(path, current, "2027-01-01T00:00:00Z")
    executor = Executor(client, repo.root, log, 1, lambda _: None, settle=(0.1,), in_hands=30)
    with pytest.raises(VoicectlError, match="may still be carrying it out"):
        executor.run([change], current.voice_ids(), listing, time.time())
    log.close()
    for _ in range(100):  # carried out after voicectl gave up on it
        if coze.ledger():
            break
        time.sleep(0.1)
    assert len(coze.ledger()) == 1
    coze.faults(latency_ms=0, list_lag=0)
    replayed = replay(path, current)
    assert replayed is not None
    (pending,) = replayed.pending
    log = Journal(path)
    events: list[Event] = []
    executor = Executor(client, repo.root, log, 1, events.append, settle=(0.1,), in_hands=0)
    assert executor.resolve([pending], set(), Outcome()) == []  # found, not sent again
    log.close()
    assert [e.kind for e in events] == ["reconcile"]
    assert len(coze.ledger()) == 1


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param({"http_status": 504, "body": HTML}, id="a gateway's 504 page"),
        pytest.param(
            {"http_status": 502, "body": "", "content_type": "text/plain"}, id="an empty 502"
        ),
        pytest.param({"code": 5000, "http_status": 504}, id="5000 at 504, in Coze's format"),
        pytest.param({"code": 5000, "http_status": 200}, id="5000"),
        pytest.param({"code": 4013, "http_status": 200}, id="4013"),
    ],
)
def test_a_clone_of_unknown_outcome_waits_its_time_in_coze_s_hands_before_it_is_resent(
    repo: VoiceRepo, coze: Coze, run: Any, reply: dict[str, Any]
) -> None:
    """A gateway gave up on the clone at once, in Coze's format or not, while Coze may be
    training it still: found absent a few seconds later proves nothing yet."""
    many(repo, 1)
    coze.faults(fail={"endpoint": "clone", "count": 1, **reply})
    stopped = apply(run, repo, coze)
    assert stopped.exit_code == 1
    assert "no reply proved what became of the clone" in stopped.output
    assert "nothing was sent again" in stopped.output
    assert coze.ledger() == []
    assert run(repo.root, "plan", env=coze.env()).exit_code == 0  # says it is interrupted
    env = {**coze.env(), "VOICECTL_UNANSWERED_WAIT": "0"}
    later = run(repo.root, "apply", "--auto-approve", env=env)
    assert later.exit_code == 0, later.output  # its time is over: never made, sent again
    assert len(coze.ledger()) == 1


# -- waits are bounded and announced ------------------------------------------------------------


def test_a_wait_notice_while_the_progress_bar_is_drawn_takes_a_line_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Workers announce waits while the bar is on stderr: a notice must not be written
    into the middle of the bar's line, nor two at once into each other."""
    from voicectl.cli import waits
    from voicectl.cli.progress import Progress

    progress = Progress(3, bar=True)
    try:
        assert waits.bars == [progress]
        waits.notice("waiting 2 s before the next request to Coze")
    finally:
        progress.close()
    assert "\nnotice: waiting 2 s before the next request to Coze\n" in capsys.readouterr().err
    assert waits.bars == []


def test_waits_for_coze_are_announced_with_what_is_left_of_the_budget(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 1)
    coze.faults(fail={"code": 4020, "http_status": 429, "endpoint": "clone"})
    result = run(
        repo.root, "apply", "--auto-approve", env={**coze.env(), "VOICECTL_WAIT_BUDGET": "30"}
    )
    assert result.exit_code == 0, result.output
    import re

    said = (
        r"notice: waiting (1\.\d) s before the next request to Coze \(\1 s of the 30 s wait budget"
    )
    assert re.search(said, result.stderr), result.stderr  # a rate-limit wait has jitter
    assert len(coze.ledger()) == 1


def test_a_server_that_keeps_asking_for_patience_stops_the_apply_within_its_budget(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    """Retry-After: 60 on every clone, a budget of 3 s: the apply gives up at once, with
    no clone made, nothing pending, and the way on in the message."""
    many(repo, 2)
    coze.faults(
        fail={
            "code": 4020,
            "http_status": 429,
            "count": 100,
            "retry_after": "60",
            "endpoint": "clone",
        }
    )
    started = time.monotonic()
    result = run(
        repo.root, "apply", "--auto-approve", env={**coze.env(), "VOICECTL_WAIT_BUDGET": "3"}
    )
    assert time.monotonic() - started < 30  # (no wait of a minute was begun)
    assert result.exit_code == 1
    assert "would pass the 3 s wait budget" in result.output
    assert "VOICECTL_WAIT_BUDGET" in result.output and "Traceback" not in result.output
    assert coze.ledger() == []
    assert not (repo.root / "state" / "voicectl.state.json.journal").exists()
    coze.faults(fail=None)
    assert apply(run, repo, coze).exit_code == 0
    assert len(coze.ledger()) == 2


@pytest.mark.parametrize("variable", ["VOICECTL_WAIT_BUDGET", "VOICECTL_UNANSWERED_WAIT"])
@pytest.mark.parametrize("value", ["soon", "-1", "nan", "1e9"])
def test_a_wait_that_is_not_seconds_is_a_clear_error(
    repo: VoiceRepo, coze: Coze, run: Any, value: str, variable: str
) -> None:
    many(repo, 1)
    result = run(repo.root, "apply", "--auto-approve", env={**coze.env(), variable: value})
    assert result.exit_code == 1
    assert f"{variable}={value!r}: expected seconds" in result.output
    assert coze.ledger() == []


# -- a create named like a voice the account has --------------------------------------------


def test_a_lost_state_never_pays_again_for_voices_the_account_has(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    """A CI runner's workspace lost the state: every create would pay again (138 CNY)."""
    many(repo, 2)
    assert apply(run, repo, coze).exit_code == 0
    ids = {a: r["voice_id"] for a, r in state_of(repo.root)["voices"].items()}
    (repo.root / "state" / "voicectl.state.json").unlink()
    saved = run(repo.root, "plan", "--out", "p.json")  # offline: it cannot know
    assert saved.exit_code == 0
    plan = json.loads(run(repo.root, "plan", "--json", env=coze.env()).stdout)
    assert {c["action"] for c in plan["changes"]} == {"blocked"}
    assert all("name_on_coze" in c["reasons"] for c in plan["changes"])
    text = run(repo.root, "plan", env=coze.env()).output
    assert f"voicectl import v00 {ids['v00']}" in text
    for args in (("apply", "--auto-approve"), ("apply", "p.json")):
        result = run(repo.root, *args, env=coze.env())
        assert result.exit_code == 1, result.output
        assert len(coze.ledger()) == 2
    assert "a voice of that name is on Coze and not in the state" in result.output
    for address, voice_id in ids.items():
        assert run(repo.root, "import", address, voice_id, env=coze.env()).exit_code == 0
    planned = run(repo.root, "plan", env=coze.env()).stdout  # notes: imported, unverified
    assert planned.endswith("No changes to Coze; read the notes above.\n")


def test_allow_duplicate_name_clones_another_on_purpose(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 1)
    assert apply(run, repo, coze).exit_code == 0
    (repo.root / "state" / "voicectl.state.json").unlink()
    result = apply(run, repo, coze, "--allow-duplicate-name")
    assert result.exit_code == 0, result.output
    assert "as --allow-duplicate-name asked" in result.output
    assert [c["kind"] for c in coze.ledger()] == ["create", "create"]


def test_a_429_whose_body_names_a_code_of_another_type_is_not_a_rate_refusal(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    """cozepy reads a numeric string as a code: such a reply is no bare 429."""
    many(repo, 1)
    body = json.dumps({"code": "4013", "msg": "model error"})
    coze.faults(
        fail_after_commit={"http_status": 429, "body": body, "content_type": "application/json"}
    )
    result = apply(run, repo, coze)
    assert result.exit_code == 0, result.output
    assert len(coze.ledger()) == 1
    assert_converged(repo.root, coze)


def test_a_create_answered_with_a_voice_that_was_already_on_the_account_is_reconciled(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    colleague = coze.http.post("/_emulator/voices", json={"name": "Colleague"}).json()
    many(repo, 1)
    body = json.dumps({"code": 0, "msg": "", "data": {"voice_id": colleague["voice_id"]}})
    coze.faults(fail_after_commit={"http_status": 200, "body": body, "content_type": "x/json"})
    result = apply(run, repo, coze)
    assert result.exit_code == 0, result.output
    assert "it was there before" in result.output
    recorded = state_of(repo.root)["voices"]["v00"]["voice_id"]
    assert recorded != colleague["voice_id"] and [c["voice_id"] for c in coze.ledger()] == [
        recorded
    ]


def test_adopting_one_lost_clone_under_another_account_settles_none(
    tmp_path: Path, repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    many(repo, 2)
    lose_replies_and_the_list(coze, lost=2)
    assert apply(run, repo, coze, "--parallelism", "1").exit_code == 1
    with running_emulator(tmp_path / "other-account") as base, Coze(base, TOKEN) as other:
        result = apply(run, repo, other, "--adopt", "v01=7400000000000000001")
        assert result.exit_code == 1, result.output
        assert "not written with this COZE_API_TOKEN and COZE_API_BASE" in result.output
        assert other.ledger() == []
    settle(run, repo, coze, clones=2)


def test_under_another_token_a_journal_is_not_folded_and_its_way_out_works(
    repo: VoiceRepo, coze: Coze, run: Any
) -> None:
    """An apply's retrain of one voice is made, another's gets a 502 (outcome unknown);
    the next apply runs with another token, which can neither tell nor prove the journal
    its own: nothing is folded or sent. Its advice, followed: the journal moved aside and
    the retrain made imported; the next apply sends only the retrain never made."""
    many(repo, 2)
    assert apply(run, repo, coze).exit_code == 0
    repo.declare({f"v{i:02d}": repo.voice(f"v{i:02d}", freq=900 + 10 * i) for i in range(2)})
    coze.faults(fail={"code": 5000, "http_status": 502, "count": 1, "endpoint": "clone"})
    assert apply(run, repo, coze, "--parallelism", "1").exit_code == 1
    assert len(coze.ledger()) == 3  # two creates, one retrain made
    other = {**coze.env(), "COZE_API_TOKEN": "pat_another_token_of_the_team_42"}
    refused = run(repo.root, "apply", "--auto-approve", env=other)
    assert refused.exit_code == 1 and "`voicectl import ADDRESS VOICE_ID`" in refused.output
    assert len(coze.ledger()) == 3
    journal = repo.root / "state" / "voicectl.state.json.journal"
    done = [json.loads(line) for line in journal.read_text().splitlines()]
    made = {r["voice_id"] for r in done if r.get("type") == "done"}
    journal.rename(journal.with_name("journal.aside"))
    state = state_of(repo.root)["voices"]
    for address, record in state.items():
        if record["voice_id"] in made:  # its retrain was made: its new take recorded
            assert run(repo.root, "import", address, record["voice_id"], env=other).exit_code == 0
    assert apply(run, repo, coze).exit_code == 0
    assert sorted(c["kind"] for c in coze.ledger()) == ["create", "create", "retrain", "retrain"]
    assert run(repo.root, "plan", "--detailed-exitcode", env=other).exit_code == 0


# -- the bytes uploaded are the bytes the plan showed ------------------------------------------


def _while_the_first_clone_is_in_flight(coze: Coze, swap: Any) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if coze.http.get("/_emulator/activity").json()["in_flight"]["clone"]:
                swap()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("how", ["rewritten", "symlink outside"])
def test_a_take_changed_during_the_apply_is_never_uploaded(
    tmp_path: Path, repo: VoiceRepo, coze: Coze, run: Any, how: str
) -> None:
    many(repo, 2)  # v00 then v01, one at a time
    second = repo.root / "audio" / "v01.wav"
    outside = tmp_path / "secret.wav"
    write_wav(outside, freq=1234)

    def swap() -> None:
        if how == "rewritten":
            write_wav(second, freq=999)
        else:
            second.unlink()
            second.symlink_to(outside)

    coze.faults(latency_ms=700)
    watcher = _while_the_first_clone_is_in_flight(coze, swap)
    result = apply(run, repo, coze, "--parallelism", "1")
    watcher.join()
    assert result.exit_code == 1
    assert "v01" in result.output and "nothing was" in result.output
    uploaded = {c["audio_sha256"] for c in coze.ledger()}
    assert len(coze.ledger()) == 1
    assert hashlib.sha256(outside.read_bytes()).hexdigest() not in uploaded
    assert hashlib.sha256(second.read_bytes()).hexdigest() not in uploaded


@pytest.mark.parametrize("lag", [1, 2])
def test_a_list_that_lags_behind_a_lost_clone_never_makes_it_sent_twice(
    repo: VoiceRepo, coze: Coze, run: Any, monkeypatch: pytest.MonkeyPatch, lag: int
) -> None:
    """The docs do not say the list shows a new voice at once: absent is concluded only
    once the voice stays absent over the settle waits."""
    monkeypatch.setenv("VOICECTL_RECONCILE_SETTLE", "0.1,0.1")
    many(repo, 1)
    coze.faults(drop_after_commit=1)
    result = apply_with_lag(run, repo, coze, lag)  # from the reconcile's first read on
    assert result.exit_code == 0, result.output
    assert len(coze.ledger()) == 1
    assert_converged(repo.root, coze)


def apply_with_lag(run: Any, repo: VoiceRepo, coze: Coze, lag: int) -> Any:
    """Arm list_lag once the clone is in flight (the apply's first listing is before it)."""
    coze.faults(latency_ms=300)

    def arm() -> None:
        coze.faults(list_lag=lag)

    watcher = _while_the_first_clone_is_in_flight(coze, arm)
    result = apply(run, repo, coze)
    watcher.join()
    return result


def test_bad_settle_waits_are_one_clear_error(
    repo: VoiceRepo, coze: Coze, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICECTL_RECONCILE_SETTLE", "2,soon")
    many(repo, 1)
    result = apply(run, repo, coze)
    assert result.exit_code == 1 and "VOICECTL_RECONCILE_SETTLE" in result.output
    assert coze.ledger() == []
