"""The fault campaign in CI size, and regressions for the bugs it found.

``tests/campaign.py`` runs randomized applies against the loopback emulator under
latency, 5xx, 429 storms, lost replies and kill -9 of the apply process, then applies
again until the plan is empty and checks the ledger, the list and the state.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.campaign import PROFILES, campaign
from tests.conftest import (
    TOKEN,
    Coze,
    VoiceRepo,
    assert_converged,
    sealed_journal,
    state_of,
    write_wav,
)
from voicectl.emulator.server import running_emulator


def test_a_ci_sized_fault_campaign_keeps_every_invariant(tmp_path: Path) -> None:
    """30 seeded runs: no double clone, no lost id, state == Coze, nothing pending."""
    counts = campaign(30, seed=20261125, workdir=tmp_path, profile=PROFILES["ci"])
    assert counts.violations == []
    assert (counts.runs, counts.double_clones, counts.lost_ids) == (30, 0, 0)
    assert counts.adoption_runs == 0  # every lost reply here is settled without --adopt
    # The seed arms every kind of fault, and the repositories see every kind of change.
    assert {"kill", "lost_reply", "5xx", "429_storm", "latency"} <= set(counts.faults)
    assert {"create", "retrain", "rename", "move_file"} <= set(counts.ops)


def twins(repo: VoiceRepo) -> None:
    """Two voices with one voice_name (Coze's names are not unique), distinct takes."""
    repo.declare(
        {
            "a": repo.voice("a", freq=310, name="Narrator"),
            "b": repo.voice("b", freq=620, name="Narrator"),
        }
    )


def assert_each_voice_holds_its_own_take(repo: VoiceRepo, coze: Coze) -> None:
    by_id = {e["voice_id"]: e["audio_sha256"] for e in coze.ledger()}
    for record in state_of(repo.root)["voices"].values():
        assert by_id[record["voice_id"]] == record["audio"]["sha256"]


def test_bug_lost_reply_of_a_same_named_create_is_ambiguous_with_its_answered_twin(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """The twin's id, answered in the same apply, is known: it is no candidate.

    The reply lost is the second create's, after its twin was answered (a slow Coze, and
    the fault armed once the first clone is in the ledger): both voices then match the
    lost one by name and time, and only the known id tells them apart.
    """
    import threading
    import time

    twins(repo)
    coze.faults(latency_ms=1000)

    def arm_after_the_first_clone() -> None:
        deadline = time.monotonic() + 20
        while not coze.ledger() and time.monotonic() < deadline:
            time.sleep(0.02)
        coze.faults(latency_ms=1000, drop_after_commit=1)

    armer = threading.Thread(target=arm_after_the_first_clone)
    armer.start()
    result = run(repo.root, "apply", "--auto-approve", "--parallelism", "1", env=coze.env())
    armer.join()
    assert result.exit_code == 0, result.output
    assert "found on Coze after a lost reply" in result.output
    assert len(coze.ledger()) == 2
    assert_converged(repo.root, coze)
    assert_each_voice_holds_its_own_take(repo, coze)


def test_bug_two_same_named_creates_with_lost_replies_need_adopt(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """Same-named creates are never in doubt at once, so each lost reply has one match."""
    twins(repo)
    coze.faults(drop_after_commit=2)
    result = run(repo.root, "apply", "--auto-approve", "--parallelism", "4", env=coze.env())
    assert result.exit_code == 0, result.output
    assert result.output.count("found on Coze after a lost reply") == 2
    assert len(coze.ledger()) == 2
    assert_converged(repo.root, coze)
    assert_each_voice_holds_its_own_take(repo, coze)


def test_the_emulator_reports_requests_in_flight(tmp_path: Path) -> None:
    """The campaign waits on this count after a kill -9: it must see a slow clone."""
    import threading
    import time

    take = write_wav(tmp_path / "take.wav")
    with running_emulator(tmp_path / "emulator") as base:
        idle = httpx.get(f"{base}/_emulator/activity").json()
        httpx.post(f"{base}/_emulator/faults", json={"latency_ms": 1500}).raise_for_status()

        def clone() -> None:
            httpx.post(
                f"{base}/v1/audio/voices/clone",
                headers={"Authorization": "Bearer t"},
                data={"voice_name": "slow", "audio_format": "wav"},
                files={"file": take.read_bytes()},
                timeout=10,
            )

        sender = threading.Thread(target=clone)
        sender.start()
        seen = []
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            counts = httpx.get(f"{base}/_emulator/activity").json()["in_flight"]
            if counts["clone"]:
                seen.append(counts)
            time.sleep(0.02)
        sender.join()
        after = httpx.get(f"{base}/_emulator/activity").json()
    assert idle["in_flight"] == {"clone": 0, "list": 0, "speech": 0}
    assert seen == [{"clone": 1, "list": 0, "speech": 0}]
    assert after["in_flight"] == idle["in_flight"]
    assert after["requests"]["clone"] == idle["requests"]["clone"] + 1


def test_bug_adopt_naming_a_voice_that_is_no_candidate_clones_the_take_again(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """A mistyped --adopt id is refused; it never makes a lost clone read as not sent."""
    import time

    from voicectl.plan.planner import plan
    from voicectl.plan.repository import open_config, read_valid
    from voicectl.state import statefile as state_io
    from voicectl.state.journal import journal_path

    repo.declare({"v00": repo.voice("v00", freq=330)})
    cfg = open_config(repo.root)
    base = state_io.save(cfg.state_path, state_io.new_state())
    (change,) = plan(read_valid(cfg).desired, base).changes
    log = sealed_journal(journal_path(cfg.state_path), base, coze)
    log.pending(change, "2026-11-25T06:00:00Z", time.time())
    log.close()
    ids = []
    for name in (change.after.name, "Somebody else"):  # the lost clone, and another voice
        with open(repo.root / "audio" / "v00.wav", "rb") as handle:
            reply = coze.http.post(
                "/v1/audio/voices/clone",
                headers={"Authorization": f"Bearer {TOKEN}"},
                files={"file": handle},
                data={"voice_name": name, "audio_format": "wav"},
            )
        ids.append(reply.json()["data"]["voice_id"])
    wrong = run(repo.root, "apply", "--auto-approve", "--adopt", f"v00={ids[1]}", env=coze.env())
    assert wrong.exit_code == 1 and f"the voices that can: {ids[0]}" in wrong.output
    assert len(coze.ledger()) == 2
    fixed = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert fixed.exit_code == 0, fixed.output
    assert state_of(repo.root)["voices"]["v00"]["voice_id"] == ids[0]
    assert len(coze.ledger()) == 2


def test_a_few_runs_of_two_runners_on_postgresql_converge_with_no_double_clone() -> None:
    """The CI-sized part of tests/pgcampaign.py (its full run: `python -m tests.pgcampaign
    --runs 100`): two runners, one PostgreSQL workspace, kills and ambiguous replies."""
    from tests.pgcampaign import campaign

    tally = campaign(runs=3, seed=11, log=lambda _: None)
    assert tally.runs == 3 and tally.clones > 0
    assert tally.violations == []
    assert (tally.double_clones, tally.lost_ids) == (0, 0)
