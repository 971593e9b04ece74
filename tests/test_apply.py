"""voicectl apply against the emulator on a real loopback socket, faults included."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import (
    TOKEN,
    Background,
    Coze,
    VoiceRepo,
    assert_converged,
    holding_lock,
    many,
    sealed_journal,
    state_of,
)
from voicectl.emulator.server import running_emulator

PROJECT = Path(__file__).resolve().parent.parent


def test_apply_the_bundled_example_end_to_end(tmp_path: Path, coze: Coze, run) -> None:
    root = tmp_path / "example"
    root.mkdir()
    shutil.copy(PROJECT / "voicectl.yaml", root)
    shutil.copytree(PROJECT / "examples", root / "examples")
    result = run(root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    assert "Apply complete: 3 create. Clones spent: 3. Spent 414 CNY one-time, +3 CNY/month." in (
        result.output
    )
    assert_converged(root, coze)
    assert [c["voice_name"] for c in coze.ledger()].count("工作室导游声音") == 1
    # The state is written once, when the apply ends (the journal made each clone durable).
    assert len(list((root / ".voicectl" / "state-versions").iterdir())) == 1
    assert run(root, "plan").stdout == "No changes.\n"


def test_apply_with_nothing_to_do_makes_no_clone_call(repo: VoiceRepo, coze: Coze, run) -> None:
    many(repo, 2)
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    before = coze.ledger()
    again = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert again.exit_code == 0 and "No changes." in again.output
    assert coze.ledger() == before


def test_retrain_spends_exactly_one_clone_and_budget_matches_coze(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    many(repo, 2)
    run(repo.root, "apply", "--auto-approve", env=coze.env())
    repo.audio("v00.wav", freq=999)
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    ledger = coze.ledger()
    voice_id = state_of(repo.root)["voices"]["v00"]["voice_id"]
    assert [c["kind"] for c in ledger if c["voice_id"] == voice_id] == ["create", "retrain"]
    assert len(ledger) == 3
    assert state_of(repo.root)["voices"]["v00"]["clones_used"] == 2
    assert coze.voices()[voice_id]["available_training_times"] == 8
    assert_converged(repo.root, coze)
    entries = state_of(repo.root)["takes"]
    assert sorted(e["clone"] for v in entries.values() for e in v if e["voice_id"] == voice_id) == [
        1,
        2,
    ]


def test_a_rename_and_a_move_spend_nothing(repo: VoiceRepo, coze: Coze, run) -> None:
    many(repo, 1)
    run(repo.root, "apply", "--auto-approve", env=coze.env())
    (repo.root / "audio" / "v00.wav").rename(repo.root / "audio" / "renamed.wav")
    body = {"name": "V00 voice", "audio": "../audio/renamed.wav", "text": "The take of v00."}
    repo.declare({"narrator": body})
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    assert len(coze.ledger()) == 1
    assert list(state_of(repo.root)["voices"]) == ["narrator"]


def test_latency_and_parallelism_still_converge(repo: VoiceRepo, coze: Coze, run) -> None:
    many(repo, 6)
    coze.faults(latency_ms=150)
    result = run(repo.root, "apply", "--auto-approve", "--parallelism", "3", env=coze.env())
    assert result.exit_code == 0, result.output
    assert_converged(repo.root, coze)


def test_a_5xx_on_clone_is_reconciled_before_anything_is_resent(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    many(repo, 3)
    coze.faults(fail={"code": 5000, "http_status": 502, "count": 2, "endpoint": "clone"})
    stopped = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert stopped.exit_code == 1 and "nothing was sent again" in stopped.output
    assert len(coze.ledger()) == 1  # the one the 5xx did not hit
    # What was done and spent is said before why it stopped; the clones stay journaled.
    assert "Apply complete" not in stopped.output
    assert "the state was not written: the journal keeps the clones" in stopped.stdout
    assert "Clones spent: 1. Spent 138 CNY one-time" in stopped.stdout
    # Once the clones' time in Coze's hands is over (1200 s; here 0), absent is absent.
    env = {**coze.env(), "VOICECTL_UNANSWERED_WAIT": "0"}
    result = run(repo.root, "apply", "--auto-approve", env=env)
    assert result.exit_code == 0, result.output
    assert_converged(repo.root, coze)
    assert len(coze.ledger()) == 3


def test_an_apply_whose_state_was_replaced_meanwhile_does_not_say_it_is_complete(
    repo: VoiceRepo, coze: Coze
) -> None:
    """The state file replaced while an apply runs (a `git pull`, say): its clones stay in
    the journal for the next apply, and its summary says so, not "Apply complete"."""
    command = [sys.executable, "-m", "voicectl", "-C", str(repo.root), "apply", "--auto-approve"]
    env = {**os.environ, **coze.env()}
    many(repo, 1)
    first = subprocess.run(command, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    many(repo, 3)
    coze.faults(latency_ms=700)
    process = subprocess.Popen(
        [*command, "--parallelism", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while len(coze.ledger()) < 2:
        time.sleep(0.02)
    path = repo.root / "state" / "voicectl.state.json"
    pulled = json.loads(path.read_text())
    pulled["serial"] += 1  # another state put there while the apply runs
    path.write_text(json.dumps(pulled, indent=2) + "\n")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, out + err
    assert "Apply complete" not in out
    assert "the state was not written: the journal keeps the clones" in out
    assert "the journal was kept" in err
    assert json.loads(path.read_text())["serial"] == pulled["serial"]  # not written over
    assert len(coze.ledger()) == 3
    # The next apply refuses to bury the kept journal's clones under that state, and its
    # advice works as written: move the journal aside, import each new voice.
    again = subprocess.run(command, env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "Nothing was changed" in again.stderr, again.stderr
    moved = re.search(r"`mv (\S+) (\S+)` in (\S+)\)", again.stderr)
    assert moved is not None, again.stderr
    folder = Path(moved.group(3))
    (folder / moved.group(1)).rename(folder / moved.group(2))
    for address, voice_id in re.findall(r"`voicectl import (\S+) (\d+)`", again.stderr):
        imported = subprocess.run(
            [*command[:-2], "import", address, voice_id], env=env, capture_output=True, text=True
        )
        assert imported.returncode == 0, imported.stderr
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(coze.ledger()) == 3  # the kept journal's clones recorded, none sent again


def test_a_json_apply_stopped_by_a_clone_of_unknown_outcome_ends_with_its_summary(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    many(repo, 3)
    coze.faults(fail={"code": 5000, "http_status": 502, "count": 2, "endpoint": "clone"})
    stopped = run(repo.root, "apply", "--auto-approve", "--json", env=coze.env())
    assert stopped.exit_code == 1
    events = [json.loads(line) for line in stopped.stdout.splitlines()]
    summary = events[-1]
    assert summary["event"] == "summary" and summary["ok"] is False, summary
    assert summary["recorded"] is False and len(summary["done"]) == 1
    assert "nothing was sent again" in stopped.stderr


def test_a_lost_reply_after_commit_is_adopted_not_cloned_again(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    many(repo, 4)
    coze.faults(drop_after_commit=2)
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    assert "found on Coze after a lost reply" in result.output
    assert len(coze.ledger()) == 4
    assert_converged(repo.root, coze)


def test_a_lost_retrain_reply_is_adopted(repo: VoiceRepo, coze: Coze, run) -> None:
    many(repo, 1)
    run(repo.root, "apply", "--auto-approve", env=coze.env())
    repo.audio("v00.wav", freq=777)
    coze.faults(drop_after_commit=1)
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    assert [c["kind"] for c in coze.ledger()] == ["create", "retrain"]
    assert_converged(repo.root, coze)


def test_a_429_storm_slows_down_and_converges(repo: VoiceRepo, coze: Coze, run) -> None:
    many(repo, 2)
    coze.faults(fail={"code": 4020, "http_status": 429, "count": 2})
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    assert len(coze.ledger()) == 2
    assert_converged(repo.root, coze)


def test_one_failing_voice_does_not_stop_the_others(repo: VoiceRepo, coze: Coze, run) -> None:
    many(repo, 2)
    bad = repo.voice("bad", freq=1234, text="[wer-mismatch] this is not what is said")
    repo.declare({"bad": bad}, file="voices/bad.yaml")
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 1
    assert "Coze error 1109" in result.output and "logid" in result.output
    assert "transcript" in result.output
    assert sorted(state_of(repo.root)["voices"]) == ["v00", "v01"]
    again = json.loads(run(repo.root, "plan", "--json").stdout)
    assert [c["address"] for c in again["changes"] if c["action"] != "noop"] == ["bad"]


def test_a_full_voice_record_in_the_clone_reply_changes_nothing(
    tmp_path: Path, repo: VoiceRepo, run
) -> None:
    """The fixture's emulator answers as Coze documents ({voice_id}); the superset too."""
    many(repo, 2)
    with (
        running_emulator(tmp_path / "full", full_clone_reply=True) as base,
        Coze(base, TOKEN) as coze,
    ):
        result = run(repo.root, "apply", "--auto-approve", env=coze.env())
        assert result.exit_code == 0, result.output
        assert_converged(repo.root, coze)


def test_without_a_terminal_apply_needs_auto_approve(repo: VoiceRepo, coze: Coze, run) -> None:
    many(repo, 1)
    result = run(repo.root, "apply", env=coze.env())
    assert result.exit_code == 1 and "--auto-approve" in result.output
    assert coze.ledger() == [] and not (repo.root / "state" / "voicectl.state.json").exists()


def test_apply_needs_a_token(repo: VoiceRepo, coze: Coze, run) -> None:
    many(repo, 1)
    result = run(
        repo.root, "apply", "--auto-approve", env={"COZE_API_BASE": coze.base, "COZE_API_TOKEN": ""}
    )
    assert result.exit_code == 1 and "COZE_API_TOKEN is not set" in result.output


def test_a_wrong_token_is_explained_and_never_shown(tmp_path: Path, repo: VoiceRepo, run) -> None:
    many(repo, 1)
    with running_emulator(tmp_path / "auth", tokens=["pat_the_right_one"]) as base:
        result = run(
            repo.root,
            "apply",
            "--auto-approve",
            env={"COZE_API_BASE": base, "COZE_API_TOKEN": TOKEN},
        )
    assert result.exit_code == 1 and "4100" in result.output and "region" in result.output
    assert TOKEN not in result.output


@pytest.mark.parametrize("base", ["http://example.com", "ftp://127.0.0.1", "not a url"])
def test_bad_api_base_is_refused(repo: VoiceRepo, run, base: str) -> None:
    many(repo, 1)
    result = run(
        repo.root, "apply", "--auto-approve", env={"COZE_API_BASE": base, "COZE_API_TOKEN": TOKEN}
    )
    assert result.exit_code == 1 and "COZE_API_BASE" in result.output
    assert "Traceback" not in result.output


def test_the_token_never_reaches_output_or_state(repo: VoiceRepo, coze: Coze, run) -> None:
    many(repo, 2)
    coze.faults(drop_after_commit=1)
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0
    assert TOKEN not in result.output
    for path in (repo.root / "state").rglob("*"):
        assert TOKEN not in path.read_text()


def test_a_second_apply_fails_at_once_naming_the_holder(repo: VoiceRepo, coze: Coze, run) -> None:
    many(repo, 1)
    state = repo.root / "state" / "voicectl.state.json"
    with holding_lock(state) as pid:
        result = run(repo.root, "apply", "--auto-approve", env=coze.env())
        assert result.exit_code == 1 and f"pid {pid}" in result.output
        assert "running `voicectl apply`" in result.output and coze.ledger() == []
        lock_id = json.loads((state.parent / "voicectl.state.json.lock").read_text())["id"]
        assert f"(lock id {lock_id})" in result.output
        wrong = run(repo.root, "force-unlock", "beef0000")
        assert wrong.exit_code == 1 and f"the lock's id is {lock_id}, not beef0000" in wrong.output
        refused = run(repo.root, "force-unlock", lock_id)
        assert refused.exit_code == 1 and "held by a running process" in refused.output
        planned = run(repo.root, "plan", env=coze.env())  # would call its clones interrupted
        assert planned.exit_code == 1 and "an apply is running: " in planned.output
        assert f"pid {pid}" in planned.output and "--lock-timeout DURATION" in planned.output
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0


def test_a_lock_left_by_a_killed_apply_is_free_at_once(repo: VoiceRepo, coze: Coze, run) -> None:
    """kill -9 frees an OS lock: no takeover step, and so no race between two takers."""
    many(repo, 1)
    lock = repo.root / "state" / "voicectl.state.json.lock"
    with holding_lock(repo.root / "state" / "voicectl.state.json") as pid:
        pass  # killed on leaving: its lock file stays, naming it
    assert f'"pid": {pid}' in lock.read_text()
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    assert "the previous holder of the lock is gone" in result.output
    assert not lock.exists()


def test_an_empty_lock_file_left_by_a_full_disk_is_no_dead_end(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    many(repo, 1)
    repo.write("state/voicectl.state.json.lock", "")
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output


def test_concurrent_takers_of_a_dead_holder_s_lock_never_both_hold_it(tmp_path: Path) -> None:
    """The race the old read-unlink-create takeover lost 27 times in 100."""
    state = tmp_path / "state" / "s.json"
    with holding_lock(state):
        pass  # a dead holder's lock file is left
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from voicectl.state import lock\n"
        "from voicectl.errors import StateError\n"
        f"path = Path({str(state)!r})\n"
        "sys.stdin.readline()  # all start together\n"
        "try:\n"
        "    with lock.locked(path, 'apply', 'T', lambda m: None):\n"
        "        start = time.monotonic()\n"
        "        time.sleep(0.3)\n"
        "        print('HELD', start, time.monotonic(), flush=True)\n"
        "except StateError:\n"
        "    print('REFUSED', flush=True)\n"
    )
    held = []
    for _ in range(4):
        with holding_lock(state):
            pass  # a dead holder's lock file, each round
        takers = [
            subprocess.Popen(
                [sys.executable, "-c", script],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(12)
        ]
        time.sleep(1.5)  # every taker imported and waiting
        for taker in takers:
            assert taker.stdin is not None
            taker.stdin.write("go\n")
            taker.stdin.flush()
        outcomes = [t.communicate(timeout=60)[0].split() for t in takers]
        assert all(o and o[0] in ("HELD", "REFUSED") for o in outcomes), outcomes
        held += [(float(o[1]), float(o[2])) for o in outcomes if o[0] == "HELD"]
    held.sort()
    assert len(held) >= 4
    for (_, end), (start, _) in itertools.pairwise(held):
        assert end <= start, "two processes held the lock at once"


def test_kill_9_mid_apply_then_apply_again_converges(repo: VoiceRepo, coze: Coze) -> None:
    many(repo, 8)
    coze.faults(latency_ms=250)
    apply = Background(repo, coze, parallelism=2, stderr=False)
    apply.wait_for_clones(3)
    apply.process.send_signal(signal.SIGKILL)
    apply.process.wait()
    command, env = apply.command, apply.env
    assert 3 <= len(coze.ledger()) < 8
    coze.faults(latency_ms=0)
    plan = subprocess.run([*command[:5], "plan", "--json"], env=env, capture_output=True, text=True)
    assert plan.returncode == 0, plan.stderr
    assert "an apply was interrupted" in plan.stderr
    time.sleep(1)  # its clones cut by the kill are out of Coze's hands
    again = subprocess.run(command, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr + again.stdout
    assert "recovering an interrupted apply" in again.stderr
    # What the killed apply cloned is said, by address, voice id and clone number.
    assert "the interrupted apply's clones, now in the state: v0" in again.stderr
    assert len(coze.ledger()) == 8
    assert_converged(repo.root, coze)


def test_several_candidates_for_a_lost_clone_stop_until_one_is_adopted(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """A crash left a pending create; two same-named voices appeared since: no guessing."""
    from voicectl.plan.planner import plan
    from voicectl.plan.repository import open_config, read_valid
    from voicectl.state import statefile as state_io
    from voicectl.state.journal import journal_path

    many(repo, 1)
    cfg = open_config(repo.root)
    base = state_io.save(cfg.state_path, state_io.new_state())
    (change,) = plan(read_valid(cfg).desired, base).changes
    log = sealed_journal(journal_path(cfg.state_path), base, coze)
    log.pending(change, "2026-11-25T06:00:00Z", time.time())
    log.close()
    ids = []
    for _ in range(2):
        with open(repo.root / "audio" / "v00.wav", "rb") as handle:
            reply = coze.http.post(
                "/v1/audio/voices/clone",
                headers={"Authorization": f"Bearer {TOKEN}"},
                files={"file": handle},
                data={"voice_name": change.after.name, "audio_format": "wav"},
            )
        ids.append(reply.json()["data"]["voice_id"])
    stuck = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert stuck.exit_code == 1 and all(i in stuck.output for i in ids)
    assert "--adopt v00=VOICE_ID" in stuck.output and len(coze.ledger()) == 2
    adopted = run(repo.root, "apply", "--auto-approve", "--adopt", f"v00={ids[1]}", env=coze.env())
    assert adopted.exit_code == 0, adopted.output
    assert state_of(repo.root)["voices"]["v00"]["voice_id"] == ids[1]
    assert len(coze.ledger()) == 2
    # The one not chosen may be a clone paid for: it is said, and kept in the state as an
    # orphan (still billed, shown by `state list`), never passed over in silence.
    assert f"voice(s) {ids[0]}, also found and not chosen, stay on Coze" in adopted.stderr
    (kept,) = state_of(repo.root)["orphans"]
    assert kept["voice_id"] == ids[0] and "not the one --adopt chose" in kept["unproven"]
    listed = run(repo.root, "state", "list")
    assert ids[0] in listed.stdout and "1 orphan(s) (still billed on Coze)" in listed.stdout
    # With nothing left to settle, --adopt is a mistake said at once, not ignored.
    stray = run(repo.root, "apply", "--auto-approve", "--adopt", f"v00={ids[0]}", env=coze.env())
    assert stray.exit_code == 1 and "--adopt v00: no interrupted apply" in stray.output
    assert len(coze.ledger()) == 2


def test_a_policy_limit_stops_apply_before_any_clone(repo: VoiceRepo, coze: Coze, run) -> None:
    """voicectl.yaml's guardrails hold for apply too, not only for plan."""
    repo.write_config(policy={"max_new_voices": 1, "max_one_time_cny": 200})
    repo.declare({"a": repo.voice("a", freq=300), "b": repo.voice("b", freq=600)})
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 1
    assert "policy.max_new_voices is 1" in result.output
    assert "policy.max_one_time_cny is 200" in result.output
    assert coze.ledger() == []
    assert not (repo.root / "state" / "voicectl.state.json").exists()


CONFLICT = "<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> theirs\n"


@pytest.mark.parametrize("when", ["during the clones", "during the last listing"])
@pytest.mark.parametrize("how", ["pulled", "pulled, at the same serial", "conflicted"])
def test_a_state_replaced_while_apply_runs_is_never_written_over(
    repo: VoiceRepo, coze: Coze, run, when: str, how: str
) -> None:
    """A `git pull` lands mid-apply with a state another clone wrote, or leaves conflict
    markers: neither may be lost to this apply's write, even one made after the clones
    (Coze's facts). The journal keeps this apply's clones."""
    many(repo, 1)
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    many(repo, 3)
    path = repo.root / "state" / "voicectl.state.json"
    pulled = json.loads(path.read_text())
    pulled["serial"] += 0 if how == "pulled, at the same serial" else 5  # another clone's
    pulled["voices"]["elsewhere"] = {**pulled["voices"]["v00"], "voice_id": "7999999999999999991"}
    text = json.dumps(pulled, indent=2)
    if how == "conflicted":
        text = CONFLICT.format(path.read_text(), text)
    coze.faults(latency_ms=700)
    env = {**os.environ, **coze.env()}
    command = [sys.executable, "-m", "voicectl", "-C", str(repo.root), "apply", "--auto-approve"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    journal = path.with_name(path.name + ".journal")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if journal.exists() if when == "during the clones" else len(coze.ledger()) == 3:
            break
        time.sleep(0.01)
    path.write_text(text)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, out + err
    assert b"while this apply ran" in err
    assert b"so it was not written over" in err
    assert path.read_text() == text  # not written over
    assert journal.exists() and len(coze.ledger()) == 3
    assert b"Traceback" not in err


@pytest.mark.parametrize("how", ["journal removed", "state directory swapped for a link"])
def test_a_journal_taken_away_while_apply_runs_never_loses_its_voice_ids(
    repo: VoiceRepo, coze: Coze, run, tmp_path: Path, how: str
) -> None:
    """`git clean` or `git stash -u` removes the journal mid-apply, or the state directory
    is swapped for a link elsewhere: the fold must not find nothing and report success."""
    many(repo, 1)
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    many(repo, 3)
    path = repo.root / "state" / "voicectl.state.json"
    journal = path.with_name(path.name + ".journal")
    coze.faults(latency_ms=700)
    env = {**os.environ, **coze.env()}
    command = [sys.executable, "-m", "voicectl", "-C", str(repo.root), "apply", "--auto-approve"]
    process = subprocess.Popen(
        [*command, "--parallelism", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 30
    while len(coze.ledger()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    if how == "journal removed":
        journal.unlink()
    else:
        elsewhere = tmp_path / "elsewhere"
        (repo.root / "state").rename(elsewhere)
        (repo.root / "state").symlink_to(elsewhere)
    out, err = process.communicate(timeout=60)
    made = {c["voice_id"] for c in coze.ledger()}
    assert len(made) == 3
    if how == "journal removed":  # put back from the open file, and folded
        assert process.returncode == 0, out + err
        assert {r["voice_id"] for r in state_of(repo.root)["voices"].values()} == made
        assert not journal.exists()
    else:  # every id is in the state (written through the link) or said
        said = {i.decode() for i in re.findall(rb"voice (\d+)", err)}
        folded = json.loads((elsewhere / "voicectl.state.json").read_text())
        kept = {r["voice_id"] for r in folded["voices"].values()}
        assert made <= kept | said
        assert process.returncode == (0 if made <= kept else 1), out + err
    assert b"Traceback" not in err


def test_lock_timeout_waits_for_a_running_apply_instead_of_failing(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """Terraform's -lock-timeout: plan and apply wait for the holder to end."""
    import threading

    many(repo, 1)
    state = repo.root / "state" / "voicectl.state.json"
    with holding_lock(state) as pid:
        threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()  # it ends in a second
        planned = run(repo.root, "plan", "--lock-timeout", "30s", env=coze.env())
        assert planned.exit_code == 0, planned.output
        assert "waiting up to 30 s for" in planned.output
    with holding_lock(state) as pid:
        threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()
        applied = run(repo.root, "apply", "--auto-approve", "--lock-timeout", "1m", env=coze.env())
        assert applied.exit_code == 0, applied.output
        assert "waiting up to 60 s for the lock held by" in applied.output
    assert len(coze.ledger()) == 1
    bad = run(repo.root, "apply", "--lock-timeout", "soon", env=coze.env())
    assert bad.exit_code == 1 or bad.exit_code == 2
    assert "expected a duration such as 30s, 5m or 1h" in bad.output


def _apply_on_a_terminal(
    repo: VoiceRepo, coze: Coze, answer: str, meanwhile: Callable[[], None] | None = None
) -> str:
    """apply run on a pseudo-terminal, answering its question with ``answer`` (after
    ``meanwhile``, what others do while the plan is read)."""
    import pty
    import select

    leader, follower = pty.openpty()
    env = {**os.environ, **coze.env()}
    env.pop("CI", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "voicectl", "-C", str(repo.root), "apply"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    seen = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: apply ended
                break
            if not chunk:
                break
            seen += chunk
            if not answered and b"accepted" in seen:
                if meanwhile is not None:
                    meanwhile()
                os.write(leader, answer.encode() + b"\n")
                answered = True
        elif process.poll() is not None:
            break
    process.wait(timeout=30)
    os.close(leader)
    return seen.decode(errors="replace")


def test_on_a_terminal_only_yes_spends_money(repo: VoiceRepo, coze: Coze) -> None:
    """Terraform's habit: a stray "y" (or Enter) changes nothing; "yes" applies."""
    many(repo, 1)
    for answer in ("y", ""):
        said = _apply_on_a_terminal(repo, coze, answer)
        assert "Only 'yes' is accepted" in said and "Nothing was changed" in said
        assert (f"you typed '{answer}'" in said) == bool(answer)  # a near miss is named
        assert coze.ledger() == []
    said = _apply_on_a_terminal(repo, coze, "yes")
    assert "Apply complete: 1 create" in said, said
    assert len(coze.ledger()) == 1


def test_what_changed_while_the_plan_was_read_is_checked_before_a_clone(
    repo: VoiceRepo, coze: Coze, tmp_path: Path
) -> None:
    """A teammate's apply on the account, or a `git pull` of the state, while the person
    reads the plan: their "yes" was to a plan that no longer holds, so nothing is paid."""
    from tests.test_fidelity import colleague_clones

    many(repo, 2)
    said = _apply_on_a_terminal(
        repo, coze, "yes", lambda: colleague_clones(coze, "V00 voice", tmp_path)
    )
    assert "a voice of that name is on Coze and not in the state" in said, said
    assert len(coze.ledger()) == 1  # the colleague's alone
    state = repo.root / "state" / "voicectl.state.json"
    from voicectl.state.statefile import new_state, save

    said = _apply_on_a_terminal(repo, coze, "yes", lambda: save(state, new_state()))
    assert "the state changed while the plan waited for an answer" in said, said
    assert len(coze.ledger()) == 1  # a teammate's state, pulled: left as it came
    assert json.loads(state.read_text())["serial"] == 1


def test_a_failure_after_coze_has_answered_is_retried_with_each_wait_said(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """Once Coze has answered, a failure is a blip: retried, each wait announced."""
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    coze.faults(fail={"endpoint": "list", "count": 2, "http_status": 502, "body": ""})
    result = run(repo.root, "plan", env=coze.env())
    assert result.exit_code == 0, result.output
    assert "notice: waiting 1.0 s before the next request to Coze" in result.stderr


def test_ctrl_c_says_what_is_in_the_state_and_the_next_apply_carries_on(
    repo: VoiceRepo, coze: Coze
) -> None:
    import signal
    import time

    many(repo, 6)
    coze.faults(latency_ms=300)
    apply = Background(repo, coze, parallelism=1, stderr=True)
    apply.wait_for_clones(2)
    process = apply.process
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Interrupted: in the state now: v00 (voice " in err
    assert "the changes not started were not sent" in err and "Traceback" not in err
    coze.faults(latency_ms=0)
    time.sleep(1)  # a clone cut by ^C is out of Coze's hands
    again = apply.again()
    assert again.returncode == 0, again.stderr + again.stdout
    assert len(coze.ledger()) == 6
    assert_converged(repo.root, coze)
