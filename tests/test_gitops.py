"""The GitOps flow: saved plans, refresh and drift, import, state commands, history.

Coze is the project's emulator on a loopback socket; a voice is retrained "outside
voicectl" with the official cozepy SDK, as a colleague in the console would.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    SDK,
    TOKEN,
    Background,
    Coze,
    VoiceRepo,
    assert_converged,
    holding_lock,
    many,
    state_of,
    write_wav,
)
from voicectl.coze.replies import Seal
from voicectl.emulator.server import running_emulator

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import cozepy


# cozepy stands in for a colleague's console here; its clone() needs the whole record.
pytestmark = pytest.mark.emulator(full_clone_reply=True)


def retrain_outside(coze: Coze, voice_id: str, name: str = "Console edit") -> None:
    """A colleague retrains the voice directly on Coze, bypassing voicectl."""
    wav = write_wav(Path(coze.base.split(":")[-1] + ".wav").resolve(), freq=999)
    try:
        with cozepy.SyncHTTPClient() as http:
            console = cozepy.Coze(
                auth=cozepy.TokenAuth(TOKEN), base_url=coze.base, http_client=http
            )
            console.audio.voices.clone(
                voice_name=name,
                file=("take.wav", wav.read_bytes()),
                audio_format="wav",
                language="en",
                voice_id=voice_id,
            )
    finally:
        wav.unlink()


def applied_repo(repo: VoiceRepo, coze: Coze, run, n: int = 2) -> None:
    repo.declare({f"v{i}": repo.voice(f"v{i}", freq=300 + 40 * i) for i in range(n)})
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".voicectl" not in p.parts
    }


# --- saved plans -------------------------------------------------------------------


def test_a_saved_plan_is_applied_exactly_without_asking(repo: VoiceRepo, coze: Coze, run) -> None:
    repo.declare({"a": repo.voice("a"), "b": repo.voice("b", freq=520)})
    saved = run(repo.root, "plan", "--out", "plan.json", env=coze.env())
    assert saved.exit_code == 0, saved.output
    body = json.loads((repo.root / "plan.json").read_text())
    assert body["saved"]["binding"]["remote"] == {}  # refreshed: no voice touched yet
    assert set(body["saved"]["binding"]["files"]) == {"voicectl.yaml", "voices/voices.yaml"}
    result = run(repo.root, "apply", "plan.json", env=coze.env())  # no --auto-approve, no TTY
    assert result.exit_code == 0, result.output
    assert sorted(c["voice_name"] for c in coze.ledger()) == ["A voice", "B voice"]
    # Applied once, the same plan is stale: the state moved on.
    again = run(repo.root, "apply", "plan.json", env=coze.env())
    assert again.exit_code == 1
    assert "serial" in again.output and "nothing was applied" in again.output
    assert len(coze.ledger()) == 2


def test_a_saved_plan_whose_every_clone_was_refused_can_be_applied_again(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """Refused clones commit nothing (Coze's docs): the state is not written, its serial
    stays, and the same reviewed plan goes through once the cause is fixed."""
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    before = (repo.root / "state" / "voicectl.state.json").read_bytes()
    repo.declare({"a": repo.voice("a", freq=600), "b": repo.voice("b", freq=520)})
    assert run(repo.root, "plan", "--out", "plan.json", env=coze.env()).exit_code == 0
    coze.faults(fail={"code": 4000, "http_status": 200, "count": 2, "endpoint": "clone"})
    refused = run(repo.root, "apply", "plan.json", env=coze.env())
    assert refused.exit_code == 1 and "Coze error 4000" in refused.output, refused.output
    assert (repo.root / "state" / "voicectl.state.json").read_bytes() == before
    assert not (repo.root / "state" / "voicectl.state.json.journal").exists()
    assert len(coze.ledger()) == 1
    coze.clear_faults()
    again = run(repo.root, "apply", "plan.json", env=coze.env())
    assert again.exit_code == 0, again.output
    assert sorted(c["kind"] for c in coze.ledger()) == ["create", "create", "retrain"]


def _stale(repo: VoiceRepo, coze: Coze, run, change, offline: bool = False) -> str:
    applied_repo(repo, coze, run)
    repo.declare(
        {
            "v0": repo.voice("v0", freq=300, text="A new transcript."),
            "v1": repo.voice("v1", freq=340),
        }
    )
    env = {} if offline else coze.env()
    assert run(repo.root, "plan", "--out", "plan.json", env=env).exit_code == 0
    change()
    before, ledger = tree_bytes(repo.root), coze.ledger()
    result = run(repo.root, "apply", "plan.json", env=coze.env())
    assert result.exit_code == 1, result.output
    assert "the saved plan is stale, nothing was applied" in result.output
    assert "Traceback" not in result.output
    assert coze.ledger() == ledger
    assert tree_bytes(repo.root) == before
    return result.output


def test_saved_plan_refused_when_the_state_changed(repo: VoiceRepo, coze: Coze, run) -> None:
    def bump() -> None:
        assert run(repo.root, "state", "mv", "v1", "v9").exit_code == 0

    assert "the state was written since the plan was made" in _stale(repo, coze, run, bump)


def test_saved_plan_refused_when_a_declaration_changed(repo: VoiceRepo, coze: Coze, run) -> None:
    def edit() -> None:
        path = repo.root / "voices" / "voices.yaml"
        path.write_text(path.read_text() + "# a reviewer's comment\n")

    assert "voices/voices.yaml: changed since the plan was made" in _stale(repo, coze, run, edit)


def test_saved_plan_refused_when_an_audio_byte_changed(repo: VoiceRepo, coze: Coze, run) -> None:
    def flip() -> None:
        path = repo.root / "audio" / "v0.wav"
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))

    assert "audio/v0.wav: audio changed since the plan" in _stale(repo, coze, run, flip)


def test_saved_plan_refused_when_coze_retrained_the_voice(repo: VoiceRepo, coze: Coze, run) -> None:
    def console() -> None:
        retrain_outside(coze, state_of(repo.root)["voices"]["v0"]["voice_id"])

    out = _stale(repo, coze, run, console)
    assert "changed on Coze since the plan" in out and "retrained outside voicectl" in out


@pytest.mark.parametrize("how", ["offline", "binding-edited"])
def test_a_plan_saved_without_coze_facts_is_refused_over_drift_it_would_overwrite(
    repo: VoiceRepo, coze: Coze, run, how: str
) -> None:
    """A plan saved without a token (or whose recorded Coze facts were edited out) binds
    no Coze facts; apply still refuses to retrain a voice changed on Coze since the state
    recorded it, which that plan could not show to its reviewers."""

    def console() -> None:
        retrain_outside(coze, state_of(repo.root)["voices"]["v0"]["voice_id"])
        if how == "binding-edited":
            path = repo.root / "plan.json"
            body = json.loads(path.read_text())
            body["saved"]["binding"]["remote"] = None
            path.write_text(json.dumps(body))

    out = _stale(repo, coze, run, console, offline=how == "offline")
    assert "v0: retrained outside voicectl" in out and "made without Coze's facts" in out


def test_a_saved_plan_overtaken_on_coze_says_what_changed_not_edited_by_hand(
    repo: VoiceRepo, coze: Coze, run, sdk_at: SDK
) -> None:
    """A voice of a planned create's name cloned in the console after the plan: the
    refusal names it and what is planned now, instead of blaming a hand edit."""
    repo.declare({"a": repo.voice("a"), "b": repo.voice("b", freq=520)})
    assert run(repo.root, "plan", "--out", "plan.json", env=coze.env()).exit_code == 0
    wav = write_wav(repo.root / "console.wav", freq=999)
    sdk_at(coze.base, TOKEN).audio.voices.clone(
        voice_name="B voice", file=("take.wav", wav.read_bytes()), audio_format="wav"
    )
    result = run(repo.root, "apply", "plan.json", env=coze.env())
    assert result.exit_code == 1, result.output
    assert "b: the plan says create, now blocked" in result.output
    assert "edited by hand" not in result.output
    assert len(coze.ledger()) == 1  # the console's; nothing applied


def test_saved_plan_refused_when_edited_by_hand(repo: VoiceRepo, coze: Coze, run) -> None:
    def tamper() -> None:
        path = repo.root / "plan.json"
        body = json.loads(path.read_text())
        body["changes"][0]["after"]["audio"]["path"] = "/etc/passwd"
        path.write_text(json.dumps(body))

    assert "differ from what voicectl plans now" in _stale(repo, coze, run, tamper)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not a plan file (invalid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"format_version": 1}', "field (top level): 'changes' is a required property"),
        (None, "no such plan file"),
    ],
    ids=["corrupt", "binary", "incomplete", "missing"],
)
def test_unreadable_plan_files_are_one_clear_error(
    repo: VoiceRepo, coze: Coze, run, content: bytes | None, message: str
) -> None:
    repo.declare({"a": repo.voice("a")})
    if content is not None:
        (repo.root / "plan.json").write_bytes(content)
    result = run(repo.root, "apply", "plan.json", env=coze.env())
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert coze.ledger() == []


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("format_version", 1.0, "field format_version: 1.0 is not of type 'integer'"),
        ("created_at", "yesterday", "field saved.created_at: 'yesterday' does not match"),
        ("created_at", "2026-12-07T14:56:13Z\n", "field saved.created_at"),
        ("serial", 0.0, "field saved.binding.serial: 0.0 is not of type 'integer'"),
        ("one_time_cny", float("nan"), "NaN is not JSON"),
        ("one_time_cny", "9" * 4401, "too many digits"),  # written as a number, below
    ],
    ids=["float-version", "garbage-time", "time-and-newline", "float-serial", "nan", "huge"],
)
def test_a_saved_plan_with_a_field_voicectl_never_writes_is_refused(
    repo: VoiceRepo, coze: Coze, run, field: str, value: object, says: str
) -> None:
    """Fields JSON Schema alone would let by (1.0 counts as an integer there; a plain
    string as a time) are refused like any other edit, before anything is applied."""
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "plan", "--out", "plan.json", env=coze.env()).exit_code == 0
    path = repo.root / "plan.json"
    body = json.loads(path.read_text())
    if field == "format_version":
        body[field] = value
    elif field == "serial":
        body["saved"]["binding"][field] = value
    elif field == "one_time_cny":
        body["cost"][field] = value
    else:
        body["saved"][field] = value
    text = json.dumps(body)
    if isinstance(value, str) and value.isdigit():
        text = text.replace(f'"{value}"', value)  # a number of that many digits
    path.write_text(text)
    for command in ("apply", "show"):
        result = run(repo.root, command, "plan.json", env=coze.env())
        assert result.exit_code == 1 and says in result.output, result.output
        assert "Traceback" not in result.output
    assert coze.ledger() == []


@pytest.mark.parametrize("command", ["apply", "show"])
def test_an_endless_plan_file_is_refused_at_its_bound(
    repo: VoiceRepo, coze: Coze, run, command: str
) -> None:
    """/dev/zero (or any file past 64 MB) is not read whole into memory."""
    repo.declare({"a": repo.voice("a")})
    result = run(repo.root, command, "/dev/zero", env=coze.env())
    assert result.exit_code == 1 and "larger than 67,108,864 bytes" in result.output
    assert coze.ledger() == []


def test_a_plan_from_another_repository_is_refused(
    tmp_path: Path, repo: VoiceRepo, coze: Coze, run
) -> None:
    applied_repo(repo, coze, run)
    other = VoiceRepo(tmp_path / "other")
    other.declare({"v0": other.voice("v0", freq=300, text="changed", name="Other v0 voice")})
    assert run(other.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    other.declare({"v0": other.voice("v0", freq=301, name="Other v0 voice")})
    assert run(other.root, "plan", "--out", "../theirs.json").exit_code == 0
    result = run(repo.root, "apply", "../theirs.json", env=coze.env())
    assert result.exit_code == 1
    assert "the plan was made for another state (lineage" in result.output


def test_a_plan_from_plan_json_is_not_a_saved_plan(repo: VoiceRepo, coze: Coze, run) -> None:
    repo.declare({"a": repo.voice("a")})
    (repo.root / "plan.json").write_text(run(repo.root, "plan", "--json").stdout)
    result = run(repo.root, "apply", "plan.json", env=coze.env())
    assert result.exit_code == 1 and "voicectl plan --out FILE" in result.output


def test_a_saved_plan_takes_no_plan_options(repo: VoiceRepo, coze: Coze, run) -> None:
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "plan", "--out", "plan.json").exit_code == 0
    result = run(repo.root, "apply", "plan.json", "--target", "a", env=coze.env())
    assert result.exit_code == 1 and "--targets" not in result.output
    assert "a saved plan carries its own options" in result.output


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_show_renders_a_saved_plan(repo: VoiceRepo, run, fmt: str) -> None:
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "plan", "--out", "plan.json").exit_code == 0
    result = run(repo.root, "show", "plan.json", "--format", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "json":
        assert json.loads(result.stdout)["saved"]["kind"] == "voicectl-saved-plan"
    else:
        assert "1 to create" in result.stdout


# --- refresh and drift ---------------------------------------------------------------


def test_drift_exit_codes(repo: VoiceRepo, coze: Coze, run, tmp_path: Path) -> None:
    applied_repo(repo, coze, run)
    in_sync = run(repo.root, "drift", env=coze.env())
    assert in_sync.exit_code == 0 and "In sync: 2 voice(s)" in in_sync.output
    voice_id = state_of(repo.root)["voices"]["v0"]["voice_id"]
    retrain_outside(coze, voice_id)
    drifted = run(repo.root, "drift", "--json", env=coze.env())
    assert drifted.exit_code == 2
    kinds = {(d["address"], d["kind"]) for d in json.loads(drifted.stdout)["drift"]}
    assert kinds == {("v0", "retrained"), ("v0", "renamed")}
    # An account holding none of the state's voices is another account: an error (1),
    # not drift; so is a bad token.
    with running_emulator(tmp_path / "elsewhere") as other:
        wrong = run(repo.root, "drift", env={"COZE_API_BASE": other, "COZE_API_TOKEN": TOKEN})
    assert wrong.exit_code == 1 and "none of the state's 2 voice id(s)" in wrong.output
    no_token = run(repo.root, "drift", env={"COZE_API_BASE": coze.base, "COZE_API_TOKEN": ""})
    assert no_token.exit_code == 1 and "COZE_API_TOKEN is not set" in no_token.output


def _lost_retrain(repo: VoiceRepo, coze: Coze, run) -> str:
    """v0 retrained on a new take by a CI runner that died before its state was committed
    (its disk, and the journal on it, gone): Coze has the retrain, the state does not.
    Returns v0's voice id."""
    applied_repo(repo, coze, run, n=1)
    state_file = repo.root / "state" / "voicectl.state.json"
    before = state_file.read_bytes()
    repo.declare({"v0": repo.voice("v0", freq=777)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    state_file.write_bytes(before)
    return str(json.loads(before)["voices"]["v0"]["voice_id"])


def _v0(plan_json: str) -> dict[str, Any]:
    changes = json.loads(plan_json)["changes"]
    return next(c for c in changes if c["address"] == "v0")


def test_a_retrain_whose_record_was_lost_is_not_planned_again(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """Coze shows v0 trained more than the state records: the plan does not spend another
    clone on it unasked, and says how to record it (import, no clone) or go on."""
    voice_id = _lost_retrain(repo, coze, run)
    clones = len(coze.ledger())
    plan = run(repo.root, "plan", env=coze.env())
    assert "may have trained it on this take already" in plan.output, plan.output
    assert f"`voicectl import v0 {voice_id}` records it without a clone" in plan.output
    change = _v0(run(repo.root, "plan", "--json", env=coze.env()).stdout)
    assert change["action"] == "blocked" and "retrained_on_coze" in change["reasons"]
    run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert len(coze.ledger()) == clones
    # The team knows the runner trained this take: recorded, free; nothing left to do.
    imported = run(repo.root, "import", "v0", voice_id, env=coze.env())
    assert imported.exit_code == 0, imported.output
    assert "the declared take replaces the one recorded" in imported.output
    record = state_of(repo.root)["voices"]["v0"]
    assert record["voice_id"] == voice_id and record["clones_used"] == 2
    assert (
        record["audio"]["sha256"]
        == hashlib.sha256((repo.root / "audio" / "v0.wav").read_bytes()).hexdigest()
    )
    again = run(repo.root, "plan", "--detailed-exitcode", env=coze.env())
    assert again.exit_code == 0, again.output
    assert len(coze.ledger()) == clones


def test_a_voice_trained_on_coze_is_retrained_when_asked_or_once_acknowledged(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    _lost_retrain(repo, coze, run)
    asked = _v0(run(repo.root, "plan", "--json", "--retrain", "v0", env=coze.env()).stdout)
    assert asked["action"] == "retrain"
    assert run(repo.root, "refresh", env=coze.env()).exit_code == 0
    assert _v0(run(repo.root, "plan", "--json", env=coze.env()).stdout)["action"] == "retrain"


def test_importing_a_voice_recorded_with_its_declared_take_changes_nothing(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """The import a plan advised before an apply recovered the voice: already done, so it
    says so, writes nothing and needs no token."""
    applied_repo(repo, coze, run, n=1)
    voice_id = state_of(repo.root)["voices"]["v0"]["voice_id"]
    before = tree_bytes(repo.root)
    result = run(repo.root, "import", "v0", voice_id, env={"COZE_API_TOKEN": ""})
    assert result.exit_code == 0, result.output
    assert "with its declared take (audio/v0.wav): nothing to import" in result.output
    assert tree_bytes(repo.root) == before


def test_refresh_acknowledges_drift_and_plan_shows_it_until_then(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """A voice retrained and renamed in the console: drift and the plan both say so;
    after `voicectl refresh` records Coze's facts, drift is in sync again."""
    applied_repo(repo, coze, run, n=1)
    voice_id = state_of(repo.root)["voices"]["v0"]["voice_id"]
    retrain_outside(coze, voice_id)
    plan = run(repo.root, "plan", env=coze.env())
    assert plan.exit_code == 0 and "retrained outside voicectl" in plan.output
    assert run(repo.root, "drift", env=coze.env()).exit_code == 2
    assert run(repo.root, "refresh", env=coze.env()).exit_code == 0
    recorded = (repo.root / "state" / "voicectl.state.json").read_bytes()
    again = run(repo.root, "refresh", env=coze.env())  # nothing new on Coze: nothing written
    assert again.exit_code == 0 and "nothing was written" in again.output
    assert (repo.root / "state" / "voicectl.state.json").read_bytes() == recorded
    after = run(repo.root, "drift", env=coze.env())
    assert after.exit_code == 0 and "In sync" in after.output, after.output
    acknowledged = run(repo.root, "plan", env=coze.env()).output
    assert "see `voicectl drift`" not in acknowledged  # no longer drift, but not forgotten:
    assert "trained on a take voicectl never saw" in acknowledged  # the voice is not the take
    assert "`--retrain v0`" in acknowledged
    retrain_outside(coze, voice_id)  # and again: new drift after the acknowledged one
    assert run(repo.root, "drift", env=coze.env()).exit_code == 2


def test_plan_uses_the_lower_budget_and_refresh_records_it(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    applied_repo(repo, coze, run, n=1)
    voice_id = state_of(repo.root)["voices"]["v0"]["voice_id"]
    retrain_outside(coze, voice_id)
    repo.declare({"v0": repo.voice("v0", freq=300, text="New words.")})
    offline = json.loads(run(repo.root, "plan", "--json", "--no-refresh").stdout)
    assert offline["changes"][0]["budget"] == {"limit": 10, "before": 9, "after": 8}
    online = json.loads(run(repo.root, "plan", "--json", env=coze.env()).stdout)
    assert online["changes"][0]["action"] == "blocked"  # trained on Coze since: asked first
    assert online["changes"][0]["budget"] == {"limit": 10, "before": 8, "after": 8}
    asked = run(repo.root, "plan", "--json", "--retrain", "v0", env=coze.env())
    assert json.loads(asked.stdout)["changes"][0]["budget"] == {
        "limit": 10,
        "before": 8,
        "after": 7,
    }
    refreshed = run(repo.root, "refresh", env=coze.env())
    assert refreshed.exit_code == 0, refreshed.output
    assert "v0: retrained" in refreshed.output
    remote = state_of(repo.root)["voices"]["v0"]["remote"]
    assert remote["available_training_times"] == 8 and remote["name"] == "Console edit"
    offline = json.loads(run(repo.root, "plan", "--json", "--no-refresh").stdout)
    assert offline["changes"][0]["budget"]["before"] == 8
    assert len(coze.ledger()) == 2  # refresh and plan never clone


def test_plan_offline_says_so(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a")})
    result = run(repo.root, "plan")
    assert result.exit_code == 0 and "planned offline" in result.stderr
    forced = run(repo.root, "plan", "--refresh", env={"COZE_API_TOKEN": ""})
    assert forced.exit_code == 1 and "COZE_API_TOKEN is not set" in forced.output


# --- import and state commands -------------------------------------------------------


def test_import_then_plan(repo: VoiceRepo, coze: Coze, run, sdk_at: SDK) -> None:
    console = sdk_at(coze.base, TOKEN).audio.voices.clone(
        voice_name="Made in the console",
        file=("take.wav", write_wav(repo.root / "console.wav", freq=777).read_bytes()),
        audio_format="wav",
        language="en",
    )
    retrain_outside(coze, console.voice_id, name="Made in the console")
    repo.declare({"narrator": repo.voice("narrator", name="Made in the console")})
    result = run(repo.root, "import", "narrator", console.voice_id, env=coze.env())
    assert result.exit_code == 0, result.output
    assert "2 of 10 clones used, 8 left" in result.output
    record = state_of(repo.root)["voices"]["narrator"]
    assert record["audio"]["verified"] is False and record["clones_used"] == 2
    plan = run(repo.root, "plan", "--json", "--no-refresh")
    (change,) = json.loads(plan.stdout)["changes"]
    assert change["action"] == "noop" and "a take voicectl never saw" in change["notes"][0]
    retrain = json.loads(run(repo.root, "plan", "--json", "--retrain", "narrator").stdout)
    assert retrain["changes"][0]["action"] == "retrain"
    assert retrain["changes"][0]["budget"] == {"limit": 10, "before": 8, "after": 7}
    assert len(coze.ledger()) == 2  # import cloned nothing
    told = run(repo.root, "history", "narrator").stdout.splitlines()
    assert told[0] == "0 clone(s)." and told[1].startswith(
        f"narrator: voice {console.voice_id} has used 2 of 10 clones, 2 of them outside voicectl"
    )
    before = tree_bytes(repo.root)
    again = run(repo.root, "import", "narrator", console.voice_id, env=coze.env())
    assert again.exit_code == 0 and "unverified): nothing to import" in again.output
    assert tree_bytes(repo.root) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ghost", "7400000000000000001"), "ghost: not declared"),
        (("a", "12ab"), "a Coze voice id is digits (0-9) only"),
        (("a", "7400000000000000999"), "is not on Coze's voice list"),
    ],
)
def test_import_errors(
    repo: VoiceRepo, coze: Coze, run, args: tuple[str, str], message: str
) -> None:
    repo.declare({"a": repo.voice("a")})
    result = run(repo.root, "import", *args, env=coze.env())
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (repo.root / "state" / "voicectl.state.json").exists()


def test_state_list_show_mv_rm(repo: VoiceRepo, coze: Coze, run) -> None:
    applied_repo(repo, coze, run)
    listed = run(repo.root, "state", "list", "--json")
    assert [v["address"] for v in json.loads(listed.stdout)["voices"]] == ["v0", "v1"]
    shown = json.loads(run(repo.root, "state", "show", "v0").stdout)
    assert shown["v0"]["history"][0]["clone"] == 1
    serial = state_of(repo.root)["serial"]
    assert run(repo.root, "state", "mv", "v0", "intro").exit_code == 0
    assert state_of(repo.root)["serial"] == serial + 1
    voice_id = state_of(repo.root)["voices"]["v1"]["voice_id"]
    removed = run(repo.root, "state", "rm", "v1")
    assert removed.exit_code == 0 and "kept among the orphans" in removed.output
    after = state_of(repo.root)
    assert set(after["voices"]) == {"intro"}
    assert [o["voice_id"] for o in after["orphans"]] == [voice_id]  # never lost
    for args, message in [
        (("mv", "nope", "x"), "nope: not in the state"),
        (("mv", "intro", "Bad Name"), "an address is lower-case"),
        (("rm", "nope"), "nope: not in the state"),
        (("show", "nope"), "nope: not in the state"),
    ]:
        bad = run(repo.root, "state", *args)
        assert bad.exit_code == 1 and message in bad.output, (args, bad.output)
    assert state_of(repo.root) == after


def test_state_commands_wait_for_no_one_and_refuse_a_held_lock(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    applied_repo(repo, coze, run)
    with holding_lock(repo.root / "state" / "voicectl.state.json") as pid:
        result = run(repo.root, "state", "mv", "v0", "v9")
    assert result.exit_code == 1 and f"pid {pid}" in result.output
    assert "v0" in state_of(repo.root)["voices"]


def test_state_commands_see_what_an_interrupted_first_apply_left(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """A first apply killed with one clone done and one in flight: no state file yet, a
    journal. The reading commands show the done clone's voice id and say why; the editing
    ones send the operator to `voicectl apply`, not to "there is no state yet"."""
    many(repo, 2)
    coze.faults(latency_ms=1500)
    apply = Background(repo, coze, parallelism=1, stderr=False)
    apply.wait_for_clones(1)
    time.sleep(0.5)  # the first one answered and journaled, the second in Coze's hands
    apply.process.send_signal(signal.SIGKILL)
    apply.process.wait()
    coze.faults(latency_ms=0)
    assert not (repo.root / "state" / "voicectl.state.json").exists()
    first = coze.ledger()[0]["voice_id"]
    for command in (["state", "list"], ["history"], ["state", "show", "v00"]):
        shown = run(repo.root, *command)
        assert shown.exit_code == 0, shown.output
        assert first in shown.stdout
        assert "an apply was interrupted" in shown.stderr and "v01" in shown.stderr
    for command in (["state", "rm", "v00"], ["state", "mv", "v00", "v09"], ["refresh"]):
        refused = run(repo.root, *command, env=coze.env())
        assert refused.exit_code == 1, refused.output
        assert "unknown outcome (v01)" in refused.output and "voicectl apply" in refused.output
        assert "no state yet" not in refused.output
    assert not (repo.root / "state" / "voicectl.state.json").exists()
    with holding_lock(repo.root / "state" / "voicectl.state.json") as pid:
        drift = run(repo.root, "drift", env=coze.env())
    assert drift.exit_code == 1 and "an apply is running" in drift.output
    assert f"pid {pid}" in drift.output
    time.sleep(1.1)  # the clone the kill cut is out of Coze's hands (the wait is 1 s here)
    assert apply.again().returncode == 0
    assert_converged(repo.root, coze)


# --- protection ----------------------------------------------------------------------


def test_protect_survives_removal_from_yaml(repo: VoiceRepo, coze: Coze, run) -> None:
    repo.declare({"host": repo.voice("host", protect=True), "b": repo.voice("b", freq=600)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    assert state_of(repo.root)["voices"]["host"]["protect"] is True
    # The protect line deleted and the take changed in the same pull request.
    repo.declare({"host": repo.voice("host", freq=900), "b": repo.voice("b", freq=600)})
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 1 and "host: protected, and would be retrained" in result.output
    repo.declare({"b": repo.voice("b", freq=600)})
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 1 and "would be orphaned" in result.output
    assert len(coze.ledger()) == 2 and "host" in state_of(repo.root)["voices"]
    allowed = run(repo.root, "apply", "--auto-approve", "--allow-protected", env=coze.env())
    assert allowed.exit_code == 0, allowed.output
    assert state_of(repo.root)["orphans"][0]["address"] == "host"


# --- apply's event log and history ---------------------------------------------------


def test_apply_json_is_a_stream_of_events(repo: VoiceRepo, coze: Coze, run) -> None:
    repo.declare({"a": repo.voice("a"), "b": repo.voice("b", freq=520)})
    result = run(repo.root, "apply", "--auto-approve", "--json", env=coze.env())
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "summary"
    assert sorted(kinds[1:-1]) == ["voice_complete"] * 2 + ["voice_start"] * 2
    assert events[-1]["ok"] and events[-1]["one_time_cny"] == 276
    assert all(isinstance(e["elapsed"], float) for e in events)
    needs_approval = run(repo.root, "apply", "--json", env=coze.env())
    assert needs_approval.exit_code == 1 and "--auto-approve" in needs_approval.output


def test_history_names_the_take_logid_and_commit(repo: VoiceRepo, coze: Coze, run) -> None:
    git = ["git", "-C", str(repo.root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    repo.declare({"a": repo.voice("a")})
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "declare a"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    repo.declare({"a": repo.voice("a", freq=700)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    entries: list[dict[str, Any]] = json.loads(run(repo.root, "history", "a", "--json").stdout)
    assert [e["clone"] for e in entries] == [1, 2]
    assert entries[0]["commit"] == head and all(e["logid"] for e in entries)
    assert entries[0]["sha256"] != entries[1]["sha256"]
    # The retrain ran from a work tree whose declaration and take were not committed:
    # its commit alone does not reproduce it, and history says so.
    assert "uncommitted" not in entries[0] and entries[1]["uncommitted"] is True
    text = run(repo.root, "history").stdout
    assert "clone  2/10" in text and head[:12] in text and "2 clone(s)." in text
    first, second = text.splitlines()[:2]
    assert "uncommitted" not in first and f"commit {head[:12]} + uncommitted changes" in second
    assert second.endswith("/2/")  # where apply kept how that training sounds
    repo.declare({"a": repo.voice("a", freq=700), "long.address": repo.voice("b", freq=900)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    rows = run(repo.root, "history").stdout.splitlines()[:-1]
    assert len({row.index(" voice ") for row in rows}) == 1  # columns line up


def test_drift_stays_in_sync_after_an_interrupted_and_recovered_apply(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """voicectl's own clones, however the apply that made them ended (killed mid-way,
    then recovered by the next apply), are never drift."""
    import signal

    applied_repo(repo, coze, run, n=3)
    time.sleep(1.1)  # Coze's update_time counts seconds: the retrains come after
    repo.declare({f"v{i}": repo.voice(f"v{i}", freq=700 + 40 * i) for i in range(3)})
    coze.faults(latency_ms=600)
    apply = Background(repo, coze, parallelism=1, stderr=False)
    apply.wait_for_clones(len(coze.ledger()) + 1)
    process, command, env = apply.process, apply.command, apply.env
    process.send_signal(signal.SIGKILL)
    process.wait()
    coze.faults(latency_ms=0)
    time.sleep(1.1)  # the clone the kill cut is out of Coze's hands
    recovered = subprocess.run(command, env=env, capture_output=True, text=True)
    assert recovered.returncode == 0, recovered.stderr
    assert "recovering an interrupted apply" in recovered.stderr
    drift = run(repo.root, "drift", env=coze.env())
    assert drift.exit_code == 0 and "In sync: 3 voice(s)" in drift.output, drift.output


def test_an_apply_never_acknowledges_drift_of_voices_it_did_not_clone(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """Only `voicectl refresh` takes Coze's facts as the new baseline: an apply records
    those of the voices it cloned, not of a voice a colleague retrained meanwhile."""
    applied_repo(repo, coze, run, n=2)
    retrain_outside(coze, state_of(repo.root)["voices"]["v0"]["voice_id"])
    repo.declare({"v0": repo.voice("v0", freq=300), "v1": repo.voice("v1", freq=999)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    drift = run(repo.root, "drift", "--json", env=coze.env())
    assert drift.exit_code == 2
    assert {d["address"] for d in json.loads(drift.stdout)["drift"]} == {"v0"}


def test_a_plan_with_a_blocked_change_fails_at_review_and_apply_says_what_was_left(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """A blocked change would fail the apply after the merge: the plan fails the pull
    request instead, saying which and how to unblock; nothing is saved to apply."""
    applied_repo(repo, coze, run, n=2)
    path = repo.root / "state" / "voicectl.state.json"
    state = json.loads(path.read_text())
    state["voices"]["v0"]["voice_id"] = "7999999999999999999"  # not on Coze: blocked
    path.write_text(json.dumps(state, indent=2))
    repo.declare({"v0": repo.voice("v0", freq=777), "v1": repo.voice("v1", freq=340)})
    planned = run(repo.root, "plan", "--out", "plan.json", env=coze.env())
    assert planned.exit_code == 1
    assert "1 change(s) blocked, which apply would not carry out: v0: voice" in planned.stderr
    assert "--replace v0" in planned.stderr and "no plan was saved" in planned.stderr
    assert "blocked" in planned.stdout  # the plan itself is still shown
    assert not (repo.root / "plan.json").exists()
    applied = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert applied.exit_code == 1
    assert "Apply incomplete (1 blocked, see above); nothing was done." in applied.stdout


def test_one_budget_per_voice_in_every_output_after_coze_counted_lower(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """A colleague's retrain, acknowledged by refresh: Coze counts one clone more than
    voicectl made. Progress, summary, `state list` and the plan say the same figure."""
    applied_repo(repo, coze, run, n=1)
    retrain_outside(coze, state_of(repo.root)["voices"]["v0"]["voice_id"])
    assert run(repo.root, "refresh", env=coze.env()).exit_code == 0
    listed = json.loads(run(repo.root, "state", "list", "--json").stdout)
    assert [v["clones_left"] for v in listed["voices"]] == [8]
    repo.declare({"v0": repo.voice("v0", freq=555)})
    planned = run(repo.root, "plan", env=coze.env())
    assert "[clones left 8 -> 7]" in planned.stdout
    applied = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert applied.exit_code == 0, applied.output
    assert "7 clones left" in applied.stdout and "7 left" in applied.stdout
    assert "8 left" not in applied.stdout
    listed = json.loads(run(repo.root, "state", "list", "--json").stdout)
    assert [v["clones_left"] for v in listed["voices"]] == [7]


def test_orphans_are_visible_in_state_list_show_and_import(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """A voice id still billed on Coze, no longer declared: never out of sight."""
    applied_repo(repo, coze, run, n=2)
    orphan_id = state_of(repo.root)["voices"]["v1"]["voice_id"]
    repo.declare({"v0": repo.voice("v0", freq=300)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    listed = run(repo.root, "state", "list").output
    assert f"v1       {orphan_id}" in listed and "orphan since" in listed
    assert "1 voice(s), 1 orphan(s)" in listed
    shown = json.loads(run(repo.root, "state", "show", "v1").output)
    assert [o["voice_id"] for o in shown["v1"]["orphans"]] == [orphan_id]
    repo.declare({"v0": repo.voice("v0", freq=300), "v9": repo.voice("v9", freq=340)})
    imported = run(repo.root, "import", "v9", orphan_id, env=coze.env())
    assert imported.exit_code == 1
    assert f"voice {orphan_id} is an orphan in the state (once v1" in imported.output
    assert "`voicectl apply` takes it back" in imported.output
    planned = run(repo.root, "plan", env=coze.env())  # the same take: taken back
    assert "(from v1)" in planned.output and f"voice {orphan_id}" in planned.output


def _complete(root: Path, words: str) -> list[str]:
    """What bash completion offers for ``words`` (click's bash_complete protocol)."""
    from click.testing import CliRunner

    from voicectl.cli import cli

    line = f"voicectl -C {root} {words}"
    env = {
        "_VOICECTL_COMPLETE": "bash_complete",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(line.split()) - (0 if line.endswith(" ") else 1)),
    }
    result = CliRunner().invoke(cli, [], env=env, prog_name="voicectl")
    assert result.exit_code == 0, result.output
    return [item.partition(",")[2] for item in result.output.splitlines() if item]


def test_shell_completion_offers_addresses(repo: VoiceRepo, coze: Coze, run) -> None:
    applied_repo(repo, coze, run)  # v0 and v1 in the state
    repo.declare({"v1": repo.voice("v1", freq=340), "new.one": repo.voice("new.one")})
    assert _complete(repo.root, "plan --target ") == ["new.one", "v0", "v1"]  # v0: orphaning
    assert _complete(repo.root, "apply --exclude n") == ["new.one"]
    assert _complete(repo.root, "import ") == ["new.one", "v1"]  # what is declared
    assert _complete(repo.root, "state show ") == ["v0", "v1"]  # what the state records
    assert _complete(repo.root, "history v") == ["v0", "v1"]
    assert _complete(repo.root, "state mv v0 ") == ["new.one"]  # declared, not recorded
    assert _complete(repo.root, "pl") == ["plan"]  # click's own, unchanged
    (repo.root / "voicectl.yaml").write_text("voices: [\n")  # unreadable: nothing, no noise
    assert _complete(repo.root, "plan --target ") == []


def test_uncommitted_asks_git_about_the_apply_inputs_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicectl.declare.gitrepo import uncommitted

    top = tmp_path / "top"
    root = top / "voice repo [1]"  # a voice repository below the git top, glob characters
    git = ["git", "-C", str(top), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    (root / "audio").mkdir(parents=True)
    (root / "voicectl.yaml").write_text("voices: ['*.yaml']\n")
    (root / "v.yaml").write_text("voices: {}\n")
    write_wav(root / "audio" / "a*.wav")
    inputs = ["voicectl.yaml", "v.yaml", "audio/a*.wav"]
    assert uncommitted(top, ["x"]) is None  # not a git repository yet: git cannot tell
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    assert uncommitted(root, inputs) is False
    (root / "plan.json").write_text("{}")  # a saved plan, an editor's backup: not inputs
    (root / "audio" / "a.wav").write_bytes(b"")  # a name the glob a*.wav would match
    assert uncommitted(root, inputs) is False
    monkeypatch.setenv("GIT_GLOB_PATHSPECS", "1")  # the user's git settings change nothing
    assert uncommitted(root, inputs) is False
    write_wav(root / "audio" / "a*.wav", freq=500)  # an input changed, not committed
    assert uncommitted(root, inputs) is True
    subprocess.run([*git, "checkout", "-q", "--", "."], check=True)
    (root / "w.yaml").write_text("voices: {}\n")  # a new declaration file, untracked
    assert uncommitted(root, [*inputs, "w.yaml"]) is True
    index = (top / ".git" / "index").stat().st_mtime_ns
    assert (
        uncommitted(root, inputs) is False and (top / ".git" / "index").stat().st_mtime_ns == index
    )


def test_applying_a_saved_plan_from_a_clean_commit_is_not_uncommitted(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    git = ["git", "-C", str(repo.root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    repo.declare({"a": repo.voice("a")})
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "declare a"], check=True)
    planned = run(repo.root, "plan", "--out", "plan.json", env=coze.env())
    assert planned.exit_code == 0, planned.output
    assert run(repo.root, "apply", "plan.json", env=coze.env()).exit_code == 0
    (entry,) = json.loads(run(repo.root, "history", "--json").stdout)
    assert "uncommitted" not in entry and len(entry["commit"]) == 40


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s["voices"].__setitem__("v0\n", s["voices"].pop("v0")),
        lambda s: next(iter(s["takes"].values()))[0].__setitem__("address", "v0\x1b]0;pwned\x07"),
    ],
    ids=["voice-key-with-newline", "take-entry-with-escape"],
)
def test_a_state_whose_addresses_are_not_addresses_is_refused(
    repo: VoiceRepo, coze: Coze, run, edit: Any
) -> None:
    applied_repo(repo, coze, run, n=1)
    path = repo.root / "state" / "voicectl.state.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    for command in (("state", "list"), ("history",), ("plan", "--no-refresh")):
        result = run(repo.root, *command)
        assert result.exit_code == 1, command  # refused by the schema or the loader
        assert "is not an address" in result.output or "does not match" in result.output
        assert "\x1b" not in result.output and "\x07" not in result.output


def test_history_and_the_comment_show_a_hostile_state_text_escaped(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    applied_repo(repo, coze, run, n=1)
    path = repo.root / "state" / "voicectl.state.json"
    data = json.loads(path.read_text())
    next(iter(data["takes"].values()))[0]["logid"] = "x\x1b]0;pwned\x07"
    data["voices"]["v0"]["text"] = "old \u202e\x1b[2J words"
    path.write_text(json.dumps(data))
    history = run(repo.root, "history").output
    assert "\x1b" not in history and "\\x1b" in history
    repo.declare({"v0": repo.voice("v0", freq=300, text="new words")})
    comment = run(repo.root, "plan", "--no-refresh", "--format", "markdown").output
    assert "\x1b" not in comment and "\u202e" not in comment


def test_history_of_an_address_a_voice_has_left_is_that_voices_history(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    applied_repo(repo, coze, run, n=1)  # v0 cloned at v0
    repo.declare({"renamed": repo.voice("v0", freq=300)})  # the same take: a move
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    repo.declare({"renamed": repo.voice("v0", freq=310)})  # retrained at its new address
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    old = run(repo.root, "history", "v0")
    assert old.exit_code == 0, old.output
    assert "2 clone(s)." in old.output and "renamed" in old.output


def _committed(tmp_path: Path) -> tuple[Path, list[str]]:
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "voicectl.yaml").write_text("voices: ['*.yaml']\n")
    write_wav(tmp_path / "takes" / "real.wav")
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "a.wav").symlink_to("../takes/real.wav")  # a take through a link
    write_wav(tmp_path / "audio" / "b.wav", freq=500)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    return tmp_path, ["voicectl.yaml", "audio/a.wav", "audio/b.wav"]


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.mark.parametrize(
    "change",
    [
        # A take reached through a link, its target changed.
        lambda r: write_wav(r / "takes" / "real.wav", freq=900),
        # git told to stop looking at a take, which then changed.
        lambda r: (
            _git(r, "update-index", "--assume-unchanged", "audio/b.wav"),
            write_wav(r / "audio" / "b.wav", freq=901),
        ),
        lambda r: (
            _git(r, "update-index", "--skip-worktree", "audio/b.wav"),
            write_wav(r / "audio" / "b.wav", freq=902),
        ),
        # A take git ignores: in no commit at all.
        lambda r: (
            (r / ".git" / "info" / "exclude").write_text("audio/c.wav\n"),
            write_wav(r / "audio" / "c.wav", freq=903),
        ),
    ],
    ids=["through-a-link", "assume-unchanged", "skip-worktree", "ignored"],
)
def test_uncommitted_sees_what_git_is_told_not_to_show(tmp_path: Path, change: Any) -> None:
    from voicectl.declare.gitrepo import uncommitted

    root, inputs = _committed(tmp_path)
    assert uncommitted(root, [*inputs, "audio/c.wav"][:3]) is False
    change(root)
    assert (
        uncommitted(
            root, [*inputs, "audio/c.wav"] if (root / "audio" / "c.wav").exists() else inputs
        )
        is True
    )


def test_an_assume_unchanged_take_that_did_not_change_is_committed(tmp_path: Path) -> None:
    from voicectl.declare.gitrepo import uncommitted

    root, inputs = _committed(tmp_path)
    _git(root, "update-index", "--assume-unchanged", "audio/b.wav")
    assert uncommitted(root, inputs) is False


# --- a journal voicectl did not write -------------------------------------------------------


def _forged_journal(
    repo: VoiceRepo, coze: Coze, voice_id: str, account: dict[str, str] | None
) -> None:
    """A journal, as a pull request could add one, saying a create of ``v9`` made
    ``voice_id``: another team's voice on the same account."""
    state = state_of(repo.root)
    take = repo.root / "audio" / "v9.wav"
    after = {
        "audio": {
            "duration": 12.0,
            "format": "wav",
            "path": "audio/v9.wav",
            "sha256": hashlib.sha256(take.read_bytes()).hexdigest(),
            "size": take.stat().st_size,
        },
        "language": "en",
        "name": "V9 voice",
        "preview_text": None,
        "protect": None,
        "space": "7350000000000000001",
        "text": "The take of v9.",
    }
    begin: dict[str, Any] = {
        "type": "begin",
        "at": "2026-12-07T15:31:32Z",
        "lineage": state["lineage"],
        "serial": state["serial"],
    }
    if account is not None:
        begin["account"] = account
    lines = [
        begin,
        {
            "type": "pending",
            "seq": 1,
            "started_at": "2026-12-07T15:31:32Z",
            "started_unix": 1796657492.39,
            "change": {
                "action": "create",
                "address": "v9",
                "after": after,
                "before": None,
                "budget": {"after": 9, "before": None, "limit": 10},
                "cost": {"monthly_cny_delta": 1, "one_time_cny": 138},
                "message": "a new voice id",
                "reasons": ["new_voice"],
                "voice_id": None,
            },
        },
        {
            "type": "done",
            "seq": 1,
            "at": "2026-12-07T15:31:33Z",
            "voice_id": voice_id,
            "logid": "x",
        },
    ]
    (repo.root / "state" / "voicectl.state.json.journal").write_text(
        "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines)
    )


@pytest.mark.parametrize(
    "account",
    [None, {"api_base": "http://127.0.0.1:1", "key": "0" * 24, "salt": "0" * 16}, "copied"],
    ids=["no-account", "forged-account", "copied-real-account"],
)
def test_a_journal_not_written_with_this_token_is_never_folded(
    tmp_path: Path, repo: VoiceRepo, coze: Coze, run, account: Any
) -> None:
    """A pull request adds a journal naming another team's voice as the clone of a new
    address: the plan does not show it as ours, and no command folds it (so nothing is
    later retrained over that voice)."""
    theirs = VoiceRepo(tmp_path / "theirs")
    theirs.declare({"t": theirs.voice("t", freq=610, name="Theirs voice")})
    assert run(theirs.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    victim = state_of(theirs.root)["voices"]["t"]["voice_id"]
    applied_repo(repo, coze, run, n=1)
    repo.declare({"v0": repo.voice("v0", freq=300), "v9": repo.voice("v9", freq=777)})
    if account == "copied":  # a real journal's account record (from git history, say)
        account = Seal(coze.base, coze.token).record()
    _forged_journal(repo, coze, victim, account)
    clones = len(coze.ledger())
    plan = run(repo.root, "plan", "--json", env=coze.env())
    changes = {c["address"]: c for c in json.loads(plan.stdout)["changes"]}
    assert changes["v9"]["action"] == "create"  # not taken in as the other team's voice
    assert "was not written with this COZE_API_TOKEN" in plan.stderr
    for command in (["apply", "--auto-approve"], ["state", "mv", "v0", "v1"], ["refresh"]):
        refused = run(repo.root, *command, env=coze.env())
        assert refused.exit_code == 1, refused.output
        assert "not folded" in refused.output and f"v9 (voice {victim}" in refused.output
    offline = run(repo.root, "state", "rm", "v0", env={"COZE_API_TOKEN": ""})
    assert offline.exit_code == 1 and "only `voicectl apply`" in offline.output
    assert "v9" not in state_of(repo.root)["voices"]
    assert len(coze.ledger()) == clones


def test_import_again_does_not_move_a_voice_to_another_workspace(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """v0 declared in another workspace with a new take needs a replace (a voice cannot
    move); importing its own voice id again must not record the new workspace instead."""
    applied_repo(repo, coze, run, n=1)
    voice_id = state_of(repo.root)["voices"]["v0"]["voice_id"]
    repo.declare({"v0": repo.voice("v0", freq=777, space="7350000000000000999")})
    before = tree_bytes(repo.root)
    result = run(repo.root, "import", "v0", voice_id, env=coze.env())
    assert result.exit_code == 1 and "cannot move between workspaces" in result.output
    assert "--replace v0" in result.output
    assert tree_bytes(repo.root) == before
    plan = json.loads(run(repo.root, "plan", "--json", env=coze.env()).stdout)
    assert plan["changes"][0]["action"] == "replace"


@pytest.mark.parametrize("voice_id", ["²³", "７４０", "74\u0663"])
def test_a_voice_id_of_other_digits_is_refused_at_once(repo: VoiceRepo, run, voice_id: str) -> None:
    repo.declare({"a": repo.voice("a")})
    result = run(repo.root, "import", "a", voice_id, env={"COZE_API_TOKEN": ""})
    assert result.exit_code == 1 and "digits (0-9) only" in result.output


def test_a_journal_claiming_a_retrain_voicectl_did_not_make_is_not_folded(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """A pull request's journal says v0 was retrained on its new take: folded, the state
    would record a training Coze never did, and the plan would then show nothing to do."""
    applied_repo(repo, coze, run, n=1)
    record = state_of(repo.root)["voices"]["v0"]
    repo.declare({"v0": repo.voice("v0", freq=300, text="New words.")})
    before = tree_bytes(repo.root)
    state = state_of(repo.root)
    voice = {**record, "text": "New words."}
    change = {
        "action": "retrain",
        "address": "v0",
        "after": {k: voice[k] for k in ("audio", "language", "name", "text", "space")},
        "before": {k: record[k] for k in ("audio", "language", "name", "text", "space")},
        "budget": {"after": 8, "before": 9, "limit": 10},
        "cost": {"monthly_cny_delta": 0, "one_time_cny": 0},
        "reasons": ["text_changed"],
        "voice_id": record["voice_id"],
    }
    lines = [
        {
            "type": "begin",
            "at": "2026-12-07T15:31:32Z",
            "lineage": state["lineage"],
            "serial": state["serial"],
        },
        {
            "type": "pending",
            "seq": 1,
            "started_at": "2026-12-07T15:31:32Z",
            "started_unix": 1.0,
            "change": change,
        },
        {"type": "done", "seq": 1, "at": "2026-12-07T15:31:33Z", "voice_id": record["voice_id"]},
    ]
    journal = repo.root / "state" / "voicectl.state.json.journal"
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 1 and "not folded" in result.output, result.output
    assert state_of(repo.root)["voices"]["v0"] == record
    assert len(coze.ledger()) == 1
    assert tree_bytes(repo.root) == {
        **before,
        "state/voicectl.state.json.journal": journal.read_bytes(),
    }


def test_recovery_seals_nothing_for_a_pending_line_someone_else_wrote(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """An apply killed with a clone in flight; its pending line swapped for an unsealed
    one naming a voice cloned in the console. The token holder's apply must not settle
    (and seal) that line: its outcome would later be spliced back as a sealed one."""
    many(repo, 2)
    coze.faults(latency_ms=1500)
    apply = Background(repo, coze, parallelism=1, stderr=False)
    apply.wait_for_clones(1)
    time.sleep(0.5)  # the first answered and journaled, the second in Coze's hands
    apply.process.send_signal(signal.SIGKILL)
    apply.process.wait()
    coze.faults(latency_ms=0)
    journal = repo.root / "state" / "voicectl.state.json.journal"
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    settled = {line["seq"] for line in lines if line["type"] in ("done", "failed")}
    pending = next(x for x in lines if x["type"] == "pending" and x["seq"] not in settled)
    forged = {**pending, "change": {**pending["change"]}}
    forged["change"]["after"] = {**pending["change"]["after"], "name": "Evil voice"}
    forged.pop("mac")
    journal.write_text(
        "".join(json.dumps(forged if line is pending else line) + "\n" for line in lines)
    )
    wav = write_wav(repo.root / "console.wav", freq=999)
    with cozepy.SyncHTTPClient() as http:  # a colleague's voice of that name
        console = cozepy.Coze(auth=cozepy.TokenAuth(TOKEN), base_url=coze.base, http_client=http)
        console.audio.voices.clone(
            voice_name="Evil voice", file=("take.wav", wav.read_bytes()), audio_format="wav"
        )
    before = journal.read_bytes()
    time.sleep(1.1)
    env = {**coze.env(), "VOICECTL_UNANSWERED_WAIT": "1"}
    refused = run(repo.root, "apply", "--auto-approve", env=env)
    assert refused.exit_code == 1 and "not folded" in refused.output, refused.output
    assert journal.read_bytes() == before  # nothing appended, nothing sealed


def test_a_journal_of_blank_lines_is_an_empty_one(repo: VoiceRepo, coze: Coze, run) -> None:
    """An editor's or a merge's blank line where no journal was: the apply begins its
    journal as if there were none, and folds it."""
    many(repo, 2)
    journal = repo.root / "state" / "voicectl.state.json.journal"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text("\n")
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    assert not journal.exists() and len(state_of(repo.root)["voices"]) == 2
