"""A retrained voice's sound, kept before the retrain overwrites it and heard after: the
plan shows the speech calls, apply makes at most those, the review page plays the two
trainings side by side in Chromium, and history points at them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOKEN, Coze, VoiceRepo
from tests.test_review import browser, load  # noqa: F401 (a fixture)
from voicectl.coze.speech import REFERENCE_SENTENCES
from voicectl.model import Action
from voicectl.sound.decode import decode
from voicectl.sound.pitch import pitch


def declare(repo: VoiceRepo, freq: float, **fields: Any) -> None:
    repo.declare({"host": repo.voice("host", freq=freq, **fields)})


@pytest.fixture
def applied(repo: VoiceRepo, coze: Coze, run) -> VoiceRepo:
    """One voice applied from a 150 Hz take, then its take changed to 220 Hz: a retrain."""
    declare(repo, 150)
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    declare(repo, 220)
    return repo


def voice_id(repo: VoiceRepo) -> str:
    state = json.loads((repo.root / "state" / "voicectl.state.json").read_text())
    return str(state["voices"]["host"]["voice_id"])


def kept(repo: VoiceRepo, clone: int) -> Path:
    return repo.root / ".voicectl" / "snapshots" / voice_id(repo) / str(clone)


def test_the_plan_shows_the_speech_calls_of_a_retrain(applied: VoiceRepo, coze: Coze, run) -> None:
    text = run(applied.root, "plan", env=coze.env())
    assert "Speech calls: up to 2 (billed by Coze)" in text.stdout
    assert (
        json.loads(run(applied.root, "plan", "--json", env=coze.env()).stdout)["speech_calls"] == 2
    )
    off = run(applied.root, "plan", "--json", "--no-snapshot", env=coze.env())
    assert json.loads(off.stdout)["speech_calls"] == 0
    assert "Speech calls" not in run(applied.root, "plan", "--no-snapshot", env=coze.env()).stdout
    declare(applied, 150, name="Another name")  # a create or a note only: no speech
    assert (
        json.loads(run(applied.root, "plan", "--json", env=coze.env()).stdout)["speech_calls"] == 0
    )


def test_apply_keeps_the_sound_before_and_after_a_retrain(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    result = run(applied.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    assert "Speech calls: 2 (billed by Coze)" in result.stdout
    requests = coze.requests()
    assert requests["speech"] == 2
    assert requests["preview"] == 1 and requests["preview_with_token"] == 0
    before, after = kept(applied, 1), kept(applied, 2)
    assert sorted(p.name for p in before.iterdir()) == [
        "preview.mp3",
        "reference.wav",
        "sound.json",
    ]
    assert sorted(p.name for p in after.iterdir()) == ["reference.wav", "sound.json"]
    old = decode((before / "reference.wav").read_bytes(), "wav")
    new = decode((after / "reference.wav").read_bytes(), "wav")
    assert (pitch(new) or 0) / (pitch(old) or 1) == pytest.approx(220 / 150, rel=0.05)
    assert decode((before / "preview.mp3").read_bytes(), "mp3").duration > 1
    meta = json.loads((before / "sound.json").read_text())
    assert meta["sentence"] == REFERENCE_SENTENCES["en"] and meta["taken"] == "before the retrain"
    assert [c["kind"] for c in coze.ledger()] == ["create", "retrain"]


def test_a_second_retrain_reuses_the_sound_kept_after_the_first(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    declare(applied, 330)
    result = run(applied.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    assert coze.requests()["speech"] == 3  # 2, then only the sound after the second
    assert "Speech calls: 1 (billed by Coze)" in result.stdout
    assert (kept(applied, 2) / "preview.mp3").exists()  # the preview of training 2, added
    assert (kept(applied, 3) / "reference.wav").exists()


def test_no_snapshot_makes_no_speech_call(applied: VoiceRepo, coze: Coze, run) -> None:
    result = run(applied.root, "apply", "--auto-approve", "--no-snapshot", env=coze.env())
    assert result.exit_code == 0, result.output
    assert coze.requests()["speech"] == 0 and coze.requests()["preview"] == 0
    assert not (applied.root / ".voicectl" / "snapshots").exists()
    assert "Speech calls" not in result.output


def test_a_saved_plan_does_the_speech_it_showed(applied: VoiceRepo, coze: Coze, run) -> None:
    saved = run(applied.root, "plan", "--no-snapshot", "--out", "plan.json", env=coze.env())
    assert saved.exit_code == 0, saved.output
    assert json.loads((applied.root / "plan.json").read_text())["speech_calls"] == 0
    assert run(applied.root, "apply", "plan.json", env=coze.env()).exit_code == 0
    assert coze.requests()["speech"] == 0
    declare(applied, 330)
    assert run(applied.root, "plan", "--out", "plan.json", env=coze.env()).exit_code == 0
    result = run(applied.root, "apply", "plan.json", env=coze.env())
    assert result.exit_code == 0, result.output
    assert coze.requests()["speech"] == 2


def test_a_saved_plan_whose_speech_calls_were_edited_is_refused(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    """adv20 #4: the figure is bound to the plan's options, as its changes are: edited
    up (two billed calls the reviewer never saw) or down, the plan is refused."""
    path = applied.root / "plan.json"
    for options, edited in (("--no-snapshot", 2), (None, 1)):
        args = ["plan", "--out", "plan.json", *([options] if options else [])]
        assert run(applied.root, *args, env=coze.env()).exit_code == 0
        body = json.loads(path.read_text())
        body["speech_calls"] = edited
        path.write_text(json.dumps(body))
        result = run(applied.root, "apply", "plan.json", env=coze.env())
        assert result.exit_code == 1, result.output
        assert f"it shows {edited} speech call(s) where its options make" in result.stderr
    assert coze.requests()["speech"] == 0
    assert [c["kind"] for c in coze.ledger()] == ["create"]


def test_apply_file_no_snapshot_makes_none(applied: VoiceRepo, coze: Coze, run) -> None:
    assert run(applied.root, "plan", "--out", "plan.json", env=coze.env()).exit_code == 0
    result = run(applied.root, "apply", "plan.json", "--no-snapshot", env=coze.env())
    assert result.exit_code == 0, result.output
    assert coze.requests()["speech"] == 0
    assert [c["kind"] for c in coze.ledger()] == ["create", "retrain"]


@pytest.mark.emulator(tokens=(f"{TOKEN}:scopes=listVoice,createVoice",))
def test_a_sound_that_cannot_be_kept_before_stops_the_apply_before_any_clone(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    result = run(applied.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 1
    assert "could not keep a voice's sound before its retrain" in result.stderr
    assert "createSpeech" in result.stderr and "--no-snapshot" in result.stderr
    assert [c["kind"] for c in coze.ledger()] == ["create"]  # no retrain spent
    assert run(applied.root, "plan", env=coze.env()).stdout.count("retrain") >= 1
    again = run(applied.root, "apply", "--auto-approve", "--no-snapshot", env=coze.env())
    assert again.exit_code == 0, again.output
    assert [c["kind"] for c in coze.ledger()] == ["create", "retrain"]


def test_a_sound_not_kept_after_the_retrain_is_a_notice(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    declare(applied, 330)  # training 2's sound is kept already: the one speech is the after
    coze.faults(fail={"endpoint": "speech", "code": 4000, "count": 1})
    result = run(applied.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    assert "its sound after the retrain was not kept" in result.stderr
    assert "`voicectl speak host` lets you hear it" in result.stderr
    assert [c["kind"] for c in coze.ledger()] == ["create", "retrain", "retrain"]
    assert not kept(applied, 3).exists()


def test_history_points_at_each_training_s_sound(applied: VoiceRepo, coze: Coze, run) -> None:
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    text = run(applied.root, "history", "host").stdout
    vid = voice_id(applied)
    assert f"sound .voicectl/snapshots/{vid}/1/" in text
    assert f"sound .voicectl/snapshots/{vid}/2/" in text
    body = json.loads(run(applied.root, "history", "host", "--json").stdout)
    assert [e.get("sound") for e in body] == [
        f".voicectl/snapshots/{vid}/1/",
        f".voicectl/snapshots/{vid}/2/",
    ]


def test_a_snapshot_this_machine_did_not_seal_is_never_shown(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    """A pull request can add files under .voicectl/ (git add -f): a made-up or edited
    snapshot is not on the review page, nor in history."""
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    # Edited: the sound after replaced by other audio, its sound.json left as it was.
    after = kept(applied, 2)
    shutil.copy(kept(applied, 1) / "reference.wav", after / "reference.wav")
    # Made up: a copy of a sealed snapshot under another voice id and clone.
    forged = applied.root / ".voicectl" / "snapshots" / "7400000000000000001" / "1"
    shutil.copytree(kept(applied, 1), forged)
    text = run(applied.root, "history").stdout
    assert "/2/" not in text and "7400000000000000001" not in text
    assert run(applied.root, "review", "-o", "out", env=coze.env()).exit_code == 0
    page = (applied.root / "out" / "index.html").read_text()
    assert page.count('data-role="heard"') == 1  # clone 1 alone


def test_the_review_page_plays_before_and_after_side_by_side(
    applied: VoiceRepo,
    coze: Coze,
    run,
    browser: Any,  # noqa: F811
) -> None:
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    declare(applied, 330)  # the next retrain under review: the last one is heard with it
    made = run(applied.root, "review", "-o", "out", env=coze.env())
    assert made.exit_code == 0, made.output
    page, errors, requests = load(browser, (applied.root / "out" / "index.html").as_uri())
    assert errors == [] and all(url.startswith("file:") for url in requests), requests
    assert page.query_selector("[data-summary=speech_calls]").inner_text() == "2"
    heard = page.query_selector("[data-action=retrain] .heard")
    assert heard is not None
    cards = heard.query_selector_all('[data-role="heard"]')
    assert [c.get_attribute("data-clone") for c in cards] == ["1", "2"]
    assert [c.query_selector("h3").inner_text() for c in cards] == ["Clone 1", "Clone 2 (now)"]
    players = heard.query_selector_all("audio")
    assert len(players) == 3  # clone 1's sentence and preview, clone 2's sentence
    for player in players:
        assert player.evaluate("a => a.error") is None
        assert player.evaluate("a => a.duration") > 1.0
    assert (
        heard.query_selector("button").inner_text() == "Play the earlier training, then the later"
    )
    # Both trainings say the same sentence, one at the old take's pitch, one at the new.
    assert REFERENCE_SENTENCES["en"] in heard.inner_text()
    boxes = [c.bounding_box() for c in cards]
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[0]["x"] < boxes[1]["x"]  # side by side
    page.context.close()


def test_apply_json_says_the_speech_calls(applied: VoiceRepo, coze: Coze, run) -> None:
    result = run(applied.root, "apply", "--auto-approve", "--json", env=coze.env())
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[0]["speech_calls"] == 2
    (snapshots,) = [e for e in events if e["event"] == "snapshots"]
    assert snapshots["speech_calls"] == 2 == coze.requests()["speech"]


def retrain_outside(coze: Coze, voice: str, freq: float) -> None:
    """A retrain in the Coze console: voicectl does not make it, the account has it."""
    import httpx

    from voicectl.emulator.tones import tone_wav

    reply = httpx.post(
        f"{coze.base}/v1/audio/voices/clone",
        headers={"Authorization": f"Bearer {TOKEN}"},
        data={"voice_name": "Host voice", "audio_format": "wav", "voice_id": voice},
        files={"file": ("take.wav", tone_wav(6, 16000, freq))},
    )
    assert reply.json()["code"] == 0, reply.text


def test_a_training_made_outside_voicectl_is_kept_as_itself(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    """adv20 #3: after a retrain in the console, the sound before the next retrain is that
    training's (a fresh speech, under Coze's count), never the one voicectl kept of its
    own last training; history links each clone to the sound of its own take."""
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    vid = voice_id(applied)
    ours = (kept(applied, 2) / "reference.wav").read_bytes()
    retrain_outside(coze, vid, 400)
    declare(applied, 330)
    result = run(applied.root, "apply", "--auto-approve", "--retrain", "host", env=coze.env())
    assert result.exit_code == 0, result.output
    assert coze.requests()["speech"] == 4  # 2, then a fresh before and the after
    assert (kept(applied, 2) / "reference.wav").read_bytes() == ours  # untouched
    outside = decode((kept(applied, 3) / "reference.wav").read_bytes(), "wav")
    latest = decode((kept(applied, 4) / "reference.wav").read_bytes(), "wav")
    assert (pitch(outside) or 0) / (pitch(latest) or 1) == pytest.approx(400 / 330, rel=0.05)
    body = json.loads(run(applied.root, "history", "host", "--json").stdout)
    sounds = {e["clone"]: e.get("sound") for e in body}
    assert sounds[1] == f".voicectl/snapshots/{vid}/1/"
    assert sounds[2] == f".voicectl/snapshots/{vid}/2/"
    assert sounds[max(sounds)] == f".voicectl/snapshots/{vid}/4/"


def test_a_snapshot_copied_to_another_voice_is_not_shown(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    """adv20 #7: the seal names the place: this machine's sound of one voice, copied
    under another voice's (or training's) directory, is not that voice's."""
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    declare(applied, 330)
    shutil.rmtree(kept(applied, 2))
    shutil.copytree(kept(applied, 1), kept(applied, 2))  # clone 1's sound as clone 2's
    assert run(applied.root, "review", "-o", "out", env=coze.env()).exit_code == 0
    page = (applied.root / "out" / "index.html").read_text()
    assert page.count('data-role="heard"') == 1 and 'data-clone="2"' not in page


@pytest.mark.parametrize("where", ["link", "file", "directory at a file's name"])
def test_a_snapshot_place_that_cannot_hold_it_stops_before_any_billed_call(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path, where: str
) -> None:
    """adv20 #6, adv21 #5: checked before the speech is paid for, so a retry is not
    billed again."""
    place = applied.root / ".voicectl" / "snapshots"
    place.parent.mkdir(exist_ok=True)
    if where == "link":
        (tmp_path / "elsewhere").mkdir()
        place.symlink_to(tmp_path / "elsewhere")
    elif where == "file":
        place.write_text("not a directory")
    else:
        (place / voice_id(applied) / "1" / "reference.wav").mkdir(parents=True)
    for _ in range(2):
        result = run(applied.root, "apply", "--auto-approve", env=coze.env())
        assert result.exit_code == 1
        assert "could not keep a voice's sound before its retrain" in result.stderr
    assert coze.requests()["speech"] == 0 and coze.requests()["preview"] == 0
    assert [c["kind"] for c in coze.ledger()] == ["create"]
    if where == "link":  # nothing written where the link points
        assert not any((tmp_path / "elsewhere").iterdir())


def test_a_billed_sound_after_that_cannot_be_kept_is_still_counted(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    """adv20 #9: the place of the sound after is refused before its speech is asked."""
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    declare(applied, 330)
    kept(applied, 3).parent.mkdir(parents=True, exist_ok=True)
    kept(applied, 3).write_text("in the way")
    result = run(applied.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    assert "its sound after the retrain cannot be kept" in result.stderr
    assert coze.requests()["speech"] == 2  # none for the after: nothing was paid for


def test_which_training_a_retrain_overwrites_is_told_by_coze_s_count() -> None:
    """A table: the state's count and facts against the list's (adv20 #3, adv21 #2)."""
    from voicectl.apply.snapshots import planned
    from voicectl.model import (
        AudioSpec,
        Budget,
        Change,
        Cost,
        RemoteFacts,
        RemoteVoice,
        State,
        TakeRef,
        VoiceRecord,
        VoiceSpec,
    )  # fmt: skip

    take = TakeRef("a" * 64, "audio/x.wav", "wav", 1, 1.0)
    recorded = RemoteFacts("v", 8, 200, "2026-01-01T00:00:00Z")
    record = VoiceRecord(
        "v", "7400000000000000001", None, "v", "en", "t", None, take, 2, False,
        "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", remote=recorded,
    )  # fmt: skip
    state = State("l", 1, {"v": record})
    spec = VoiceSpec(
        "v", "en", None, "t", None, None, AudioSpec("b" * 64, "audio/x.wav", "wav", 1, 1.0)
    )
    change = Change("v", Action.RETRAIN, (), record.voice_id, spec, spec, Budget(8, 7), Cost())

    def listed(left: int, updated: int, state_: str = "cloned") -> dict[str, RemoteVoice]:
        return {
            record.voice_id: RemoteVoice(record.voice_id, "v", left, 100, updated, "en", state_)
        }

    (same,) = planned([change], state, listed(8, 200))
    assert (same.clone, same.facts, same.trained_on) == (2, (200, 8), "a" * 64)
    (outside,) = planned([change], state, listed(7, 300))  # retrained in the console
    assert (outside.clone, outside.facts, outside.trained_on) == (3, (300, 7), "")
    (lagging,) = planned([change], state, listed(9, 150))  # the list is behind the state
    assert (lagging.clone, lagging.facts, lagging.trained_on) == (2, None, "a" * 64)
    assert planned([change], state, listed(10, 100, "init")) == []  # a slot: no sound yet
    (unlisted,) = planned([change], state, {})
    assert (unlisted.clone, unlisted.facts, unlisted.trained_on) == (2, None, "a" * 64)


def test_after_a_language_change_both_trainings_say_the_same_sentence(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    """adv21 #3: the sound kept after a retrain is reused only when it says the sentence
    of the voice's language now; else the training is heard again in that language."""
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    declare(applied, 220, language="es")
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    declare(applied, 330, language="es")
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    # 2; then the sound kept after, in English, reused, and the after in English (the
    # sentence of the language the voice had); then Spanish before and after.
    assert coze.requests()["speech"] == 5
    spanish = REFERENCE_SENTENCES["es"]
    for clone in (3, 4):
        assert json.loads((kept(applied, clone) / "sound.json").read_text())["sentence"] == spanish
    assert run(applied.root, "review", "-o", "out", env=coze.env()).exit_code == 0
    assert spanish in (applied.root / "out" / "index.html").read_text()


def test_history_links_each_clone_to_its_own_training_s_sound(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    """adv21 #8: takes A, B, then A again: the first clone's sound is the first's."""
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    declare(applied, 150)  # back to the first take
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    vid = voice_id(applied)
    body = json.loads(run(applied.root, "history", "host", "--json").stdout)
    assert [(e["clone"], e.get("sound")) for e in body] == [
        (n, f".voicectl/snapshots/{vid}/{n}/") for n in (1, 2, 3)
    ]


def test_a_saved_plan_naming_another_voice_id_does_not_borrow_its_sounds(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """adv21 #7: the review plays the sounds of the voice the state records at an
    address, never of an id an edited plan file names there."""
    repo.declare({"host": repo.voice("host", freq=150), "guest": repo.voice("guest", freq=260)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    repo.declare({"host": repo.voice("host", freq=220), "guest": repo.voice("guest", freq=260)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    state = json.loads((repo.root / "state" / "voicectl.state.json").read_text())
    host, guest = (state["voices"][a]["voice_id"] for a in ("host", "guest"))
    repo.declare({"host": repo.voice("host", freq=220), "guest": repo.voice("guest", freq=330)})
    assert run(repo.root, "plan", "--out", "plan.json", env=coze.env()).exit_code == 0
    path = repo.root / "plan.json"
    path.write_text(path.read_text().replace(guest, host))  # guest's change names host's id
    made = run(repo.root, "review", "plan.json", "-o", "out", env=coze.env())
    assert made.exit_code == 0, made.output
    page = (repo.root / "out" / "index.html").read_text()
    guest_section = page.split('id="voice-guest"')[1].split("</section>")[0]
    assert 'data-role="heard"' not in guest_section


def test_a_review_is_never_written_where_the_repository_keeps_its_files(
    repo: VoiceRepo, run
) -> None:
    """adv22 #3: not over the state's journal or lock before they exist, the state, the
    configuration, .voicectl/; a single-file review is an .html file."""
    repo.declare({"a": repo.voice("a")})
    for target, single in (
        ("state/voicectl.state.json.journal", True),
        ("state/voicectl.state.json.lock", False),
        ("state/voicectl.state.json", False),
        (".voicectl/review", False),
        ("voices/more.yaml", True),
    ):
        flags = ["--single-file"] if single else []
        result = run(repo.root, "review", "--no-refresh", "-o", target, *flags)
        assert result.exit_code == 1, (target, result.output)
        assert not (repo.root / target).exists(), target
    assert run(repo.root, "plan", "--no-refresh").exit_code == 0
