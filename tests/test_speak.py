"""`voicectl speak`: a cloned voice heard through the emulator's speech endpoint, a repeat
served free from the cache (counted by the emulator), every documented limit checked
before anything is sent, and `--all` into a directory."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TOKEN, Coze, VoiceRepo
from voicectl.coze.speech import REFERENCE_SENTENCES, SpeechAsk, problem
from voicectl.emulator.voicing import NOTE_SECONDS
from voicectl.sound.decode import decode
from voicectl.sound.pitch import pitch

PROJECT = Path(__file__).resolve().parent.parent
VOICECTL = [sys.executable, "-m", "voicectl"]


def environment(coze: Coze) -> dict[str, str]:
    """voicectl in a process of its own, on this checkout, with the emulator's account."""
    return {**os.environ, **coze.env(), "PYTHONPATH": str(PROJECT)}


@pytest.fixture
def applied(repo: VoiceRepo, coze: Coze, run) -> VoiceRepo:
    """Two voices applied: ``low`` (a 150 Hz take) and ``high`` (300 Hz), with preview text."""
    repo.declare(
        {
            "low": repo.voice("low", freq=150, preview_text="Hello from the low voice."),
            "high": repo.voice("high", freq=300, preview_text="Hello from the high voice."),
        }
    )
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    return repo


def speeches(coze: Coze) -> int:
    return coze.requests()["speech"]


def test_speak_writes_the_voice_s_speech_of_its_preview_text(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    out = tmp_path / "low.wav"
    result = run(applied.root, "speak", "low", "-o", str(out), env=coze.env())
    assert result.exit_code == 0, result.output
    decoded = decode(out.read_bytes(), "wav")
    text = "Hello from the low voice."
    assert decoded.rate == 24000
    assert decoded.duration == pytest.approx(len(text) * NOTE_SECONDS, abs=0.05)
    # The take's pitch (150 Hz), moved by the text's tune: -5 to +12 semitones.
    assert 150 * 2 ** (-5 / 12) * 0.97 <= (pitch(decoded) or 0) <= 150 * 2 * 1.03
    summary = result.stderr
    assert f"low: {out.stat().st_size:,} bytes, {decoded.duration:.2f} s of wav" in summary
    assert "logid 2026" in summary or "logid 20" in summary
    assert speeches(coze) == 1


def test_a_repeat_is_served_from_the_cache_without_a_request(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    first = run(
        applied.root, "speak", "high", "Same words.", "-o", str(tmp_path / "a.mp3"), env=coze.env()
    )
    assert first.exit_code == 0, first.output
    assert speeches(coze) == 1
    # A repeat sends no speech request: only the list (free) is read, to know the voice
    # has not been retrained since.
    lists = coze.requests()["list"]
    again = run(
        applied.root, "speak", "high", "Same words.", "-o", str(tmp_path / "b.mp3"), env=coze.env()
    )
    assert again.exit_code == 0, again.output
    assert speeches(coze) == 1 and coze.requests()["list"] == lists + 1
    assert "from the cache, no call made" in again.stderr
    assert (tmp_path / "a.mp3").read_bytes() == (tmp_path / "b.mp3").read_bytes()
    # Anything else asked is a new speech: other settings, other words, --no-cache.
    for extra in (["--speed", "1.5"], ["--sample-rate", "16000"], ["--no-cache"]):
        result = run(
            applied.root, "speak", "high", "Same words.", "-o", str(tmp_path / "c.mp3"), *extra,
            env=coze.env(),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    assert speeches(coze) == 4


def test_a_retrain_makes_the_cached_speech_stale(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    args = ("speak", "low", "Hello.", "-o", str(tmp_path / "x.wav"))
    assert run(applied.root, *args, env=coze.env()).exit_code == 0
    before = decode((tmp_path / "x.wav").read_bytes(), "wav")
    applied.declare(
        {
            "low": applied.voice("low", freq=220, preview_text="Hello from the low voice."),
            "high": applied.voice("high", freq=300, preview_text="Hello from the high voice."),
        }
    )
    result = run(applied.root, "apply", "--auto-approve", "--no-snapshot", env=coze.env())
    assert result.exit_code == 0, result.output
    calls = speeches(coze)
    again = run(applied.root, *args, env=coze.env())
    assert again.exit_code == 0 and "from the cache" not in again.stderr
    assert speeches(coze) == calls + 1
    after = decode((tmp_path / "x.wav").read_bytes(), "wav")
    assert pitch(after) / pitch(before) == pytest.approx(220 / 150, rel=0.05)


def test_json_prints_one_object(applied: VoiceRepo, coze: Coze, run, tmp_path: Path) -> None:
    out = tmp_path / "v.ogg"
    result = run(applied.root, "speak", "low", "-o", str(out), "--json", env=coze.env())
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    state = json.loads((applied.root / "state" / "voicectl.state.json").read_text())
    assert body == {
        "voice": "low",
        "voice_id": state["voices"]["low"]["voice_id"],
        "clone": 1,
        "out": str(out),
        "format": "ogg_opus",
        "sample_rate": 24000,
        "speed": 1.0,
        "bytes": out.stat().st_size,
        "duration": pytest.approx(decode(out.read_bytes(), "ogg").duration, abs=0.03),
        "logid": body["logid"],
        "cached": False,
    }
    assert len(body["logid"]) == 34
    assert out.read_bytes().startswith(b"OggS")


def test_text_from_a_file_and_from_stdin(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    (tmp_path / "words.txt").write_text("  Words from a file.\n", encoding="utf-8")
    by_file = run(
        applied.root,
        "speak",
        "low",
        "-f",
        str(tmp_path / "words.txt"),
        "-o",
        str(tmp_path / "f.pcm"),
        env=coze.env(),
    )
    assert by_file.exit_code == 0, by_file.output
    pcm = (tmp_path / "f.pcm").read_bytes()
    assert len(pcm) == 2 * round(len("Words from a file.") * NOTE_SECONDS * 24000)
    piped = subprocess.run(
        [*VOICECTL, "-C", str(applied.root), "speak", "low", "-", "-o", "-", "--format", "wav"],
        input=b"Piped words.", capture_output=True, env=environment(coze), check=False,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert decode(piped.stdout, "wav").duration == pytest.approx(12 * NOTE_SECONDS, abs=0.05)
    assert b"to standard output" in piped.stderr


def test_binary_audio_is_never_written_to_a_terminal(applied: VoiceRepo, coze: Coze) -> None:
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [*VOICECTL, "-C", str(applied.root), "speak", "low", "-o", "-"],
            stdout=follower, stderr=subprocess.PIPE, env=environment(coze), check=False,
        )  # fmt: skip
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 1
    assert b"standard output is a terminal" in done.stderr
    assert coze.requests()["speech"] == 0


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["字" * 342],
            "the text is 1,026 bytes in UTF-8, over Coze's limit of 1,024 bytes (342 characters",
        ),
        (["hi", "--speed", "2.5"], "the speed 2.5 is outside 0.5..2, what a big-model voice takes"),
        (["hi", "--speed", "0.3"], "the speed 0.3 is outside 0.5..2, what a big-model voice takes"),
        (["hi", "--format", "wav", "-o", "x.mp3"], "--format wav does not match 'x.mp3'"),
        (["hi", "-o", "x.flac"], "'x.flac': no audio format Coze speaks is a .flac"),
        (["-f", "nowhere.txt"], "nowhere.txt: cannot read the text"),
    ],
)
def test_what_coze_would_refuse_is_refused_before_any_call(
    applied: VoiceRepo, coze: Coze, run, args: list[str], said: str
) -> None:
    if "-o" not in args:
        args = [*args, "-o", "out.mp3"]
    result = run(applied.root, "speak", "low", *args, env=coze.env())
    assert result.exit_code == 1, result.output
    assert said in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert coze.requests()["speech"] == 0


def test_the_speed_range_is_the_model_type_s() -> None:
    """A small-model voice takes 0.2..3, a big one 0.5..2; one of unknown model only
    what both take."""
    ask = SpeechAsk("7400000000000000001", "hi", speed=2.5)
    assert problem(ask, "small") is None
    assert problem(ask, "big") == "the speed 2.5 is outside 0.5..2, what a big-model voice takes"
    assert "unknown model" in (problem(ask, None) or "")
    assert problem(SpeechAsk("1", "hi", speed=0.2), "small") is None
    assert problem(SpeechAsk("1", "hi", sample_rate=11025), "big") is not None


def test_the_model_type_is_recorded_and_read_from_the_account_when_not(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    state_path = applied.root / "state" / "voicectl.state.json"
    state = json.loads(state_path.read_text())
    assert state["voices"]["low"]["remote"]["model_type"] == "big"
    del state["voices"]["low"]["remote"]["model_type"]
    state_path.write_text(json.dumps(state))
    lists = coze.requests()["list"]
    result = run(
        applied.root, "speak", "low", "hi", "--speed", "2.5", "-o", "x.mp3", env=coze.env()
    )
    assert result.exit_code == 1
    assert "what a big-model voice takes" in result.stderr
    assert coze.requests()["list"] > lists and coze.requests()["speech"] == 0


def test_an_address_never_applied_gets_one_line(repo: VoiceRepo, coze: Coze, run) -> None:
    repo.declare({"fresh": repo.voice("fresh")})
    result = run(repo.root, "speak", "fresh", "-o", "x.mp3", env=coze.env())
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: fresh: not applied yet, so no voice on Coze speaks for it: run `voicectl "
        "apply` first\n"
    )
    unknown = run(repo.root, "speak", "nobody", "-o", "x.mp3", env=coze.env())
    assert unknown.exit_code == 1 and "no voice of that address" in unknown.stderr
    assert coze.requests()["speech"] == 0


def test_a_declaration_changed_since_the_apply_is_warned_of(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    applied.declare(
        {
            "low": applied.voice("low", freq=170, text="Another transcript."),
            "high": applied.voice("high", freq=300, preview_text="Hello from the high voice."),
        }
    )
    result = run(applied.root, "speak", "low", "Hi.", "-o", str(tmp_path / "x.mp3"), env=coze.env())
    assert result.exit_code == 0, result.output
    assert (
        "warning: low: its take and text changed since the last apply: the voice still has "
        "its old training (clone 1, take "
    ) in result.stderr
    high = run(applied.root, "speak", "high", "Hi.", "-o", str(tmp_path / "y.mp3"), env=coze.env())
    assert "warning" not in high.stderr


def test_voice_id_names_a_voice_directly(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    state = json.loads((applied.root / "state" / "voicectl.state.json").read_text())
    voice_id = state["voices"]["high"]["voice_id"]
    result = run(
        applied.root,
        "speak",
        "--voice-id",
        voice_id,
        "Hi.",
        "-o",
        str(tmp_path / "h.wav"),
        env=coze.env(),
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"voice {voice_id}: ")
    assert (
        300 * 2 ** (-5 / 12) * 0.97
        <= (pitch(decode((tmp_path / "h.wav").read_bytes(), "wav")) or 0)
        <= 600 * 1.03
    )
    missing = run(
        applied.root,
        "speak",
        "--voice-id",
        "7400000000000000009",
        "Hi.",
        "-o",
        "x.mp3",
        env=coze.env(),
    )
    assert missing.exit_code == 1 and "not on Coze's voice list" in missing.stderr


def test_speak_all_writes_every_applied_voice(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    out = tmp_path / "voices"
    result = run(
        applied.root, "speak", "--all", "Same for all.", "-o", str(out), "--format", "wav",
        "--json", env=coze.env(),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["high.wav", "low.wav"]
    body = json.loads(result.stdout)
    assert [v["voice"] for v in body["voices"]] == ["high", "low"] and body["failed"] == {}
    heard = {p.stem: pitch(decode(p.read_bytes(), "wav")) for p in out.iterdir()}
    assert heard["high"] / heard["low"] == pytest.approx(2.0, rel=0.05)
    assert speeches(coze) == 2
    # Each voice's own preview_text by default, into OUT/<address>.mp3.
    again = run(applied.root, "speak", "--all", "-o", str(out), env=coze.env())
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in out.iterdir()) == ["high.mp3", "high.wav", "low.mp3", "low.wav"]
    assert "2 of 2 voice(s) spoken" in again.stderr
    low = decode((out / "low.mp3").read_bytes(), "mp3").duration
    assert low == pytest.approx(len("Hello from the low voice.") * NOTE_SECONDS, abs=0.1)


def test_speak_all_paces_and_resends_a_speech_refused_for_its_rate(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    coze.faults(fail={"endpoint": "speech", "code": 4020, "http_status": 429, "count": 2})
    result = run(applied.root, "speak", "--all", "-o", str(tmp_path / "o"), env=coze.env())
    assert result.exit_code == 0, result.output
    assert speeches(coze) == 4  # two refused for their rate, then each voice once


def test_a_speech_whose_outcome_is_unknown_is_not_sent_again(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    """Billed, with no idempotency key: a 5xx proves nothing, so it is not resent; the
    other voices of --all go on, and the command fails."""
    coze.faults(fail={"endpoint": "speech", "code": 5000, "http_status": 502, "count": 1})
    result = run(
        applied.root, "speak", "--all", "-o", str(tmp_path / "o"), "-j", "1", env=coze.env()
    )
    assert result.exit_code == 1
    assert speeches(coze) == 2
    assert "1 of 2 voice(s) spoken" in result.stderr
    assert "Coze may have made (and billed) it, so it was not sent again" in result.stderr
    assert len(list((tmp_path / "o").iterdir())) == 1


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (
            {"body": "not audio", "content_type": "audio/mpeg", "http_status": 200},
            "Coze's speech reply is not mp3 audio, the format asked: it does not begin as mp3 does",
        ),
        (
            {"body": "ID3\u0004" + "x" * 300, "content_type": "audio/mpeg", "http_status": 200},
            "is not playable mp3 audio",
        ),
        (
            {"body": "RIFF....WAVEfmt ", "content_type": "audio/mpeg", "http_status": 200},
            "is not mp3 audio, the format asked",
        ),
        (
            {
                "body": '{"code": 0, "msg": ""}',
                "content_type": "application/json",
                "http_status": 200,
            },
            "without audio",
        ),
        ({"body": "<html>bad gateway</html>", "http_status": 502}, "not its JSON envelope"),
    ],
)
def test_a_reply_that_is_not_playable_audio_writes_nothing(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path, fault: dict[str, object], said: str
) -> None:
    coze.faults(fail={"endpoint": "speech", **fault})
    out = tmp_path / "x.mp3"
    result = run(applied.root, "speak", "low", "Hi.", "-o", str(out), env=coze.env())
    assert result.exit_code == 1
    assert said in result.stderr and "Traceback" not in result.output
    assert not out.exists()
    assert run(applied.root, "speak", "low", "Hi.", "-o", str(out), env=coze.env()).exit_code == 0
    assert speeches(coze) == 2  # nothing was cached from the bad reply


@pytest.mark.emulator(tokens=(f"{TOKEN}:scopes=listVoice,createVoice",))
def test_a_token_without_create_speech_is_told_so(applied: VoiceRepo, coze: Coze, run) -> None:
    result = run(applied.root, "speak", "low", "Hi.", "-o", "x.mp3", env=coze.env())
    assert result.exit_code == 1
    assert "Coze error 4101" in result.stderr and "createSpeech" in result.stderr


def test_the_help_says_speech_is_billed(run, tmp_path: Path) -> None:
    result = run(tmp_path, "speak", "--help")
    assert "Each speech is billed by Coze" in " ".join(result.stdout.split())


def test_audio_is_never_written_over_the_repository(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    """A take (declared, or applied while its declaration is broken), a declaration, the
    configuration, the state, a file git tracks, anything in .git/ (the repository's
    or an enclosing one's) or .voicectl/, or an alias of one (a hard link, a symbolic
    link): refused before anything is sent, and left as it was."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C"]
    top = applied.root.parent
    subprocess.run([*git, str(top), "init", "-q"], check=True)
    (top / "NOTES.md").write_text("tracked")
    subprocess.run([*git, str(top), "add", "NOTES.md"], check=True)
    os.link(applied.root / "audio" / "high.wav", tmp_path / "hard.wav")
    (tmp_path / "soft.wav").symlink_to(applied.root / "audio" / "low.wav")
    # high's declaration breaks: its take is still the one the state records
    (applied.root / "voices" / "voices.yaml").write_text("voices: [", encoding="utf-8")
    before = {p: p.read_bytes() for p in (applied.root / "audio").iterdir()}
    for target in (
        "audio/low.wav",
        "audio/high.wav",
        "voices/voices.yaml",
        "voicectl.yaml",
        "state/voicectl.state.json",
        ".voicectl/x.mp3",
        "../.git/config",
        "../NOTES.md",
        str(tmp_path / "hard.wav"),
        str(tmp_path / "soft.wav"),
    ):
        fmt = ["--format", "mp3"] if not target.endswith((".mp3", ".wav")) else []
        result = run(applied.root, "speak", "high", "Hi.", "-o", target, *fmt, env=coze.env())
        assert result.exit_code == 1, (target, result.output)
        said = ("is part of the voice repository", "is inside .git/", "is a link, a device")
        assert any(words in result.stderr for words in said), (target, result.stderr)
    assert {p: p.read_bytes() for p in (applied.root / "audio").iterdir()} == before
    assert (top / ".git" / "config").read_text().startswith("[core]")
    assert speeches(coze) == 0
    # OUT is relative to -C's directory, as plan --out and review -o are.
    fine = run(applied.root, "speak", "high", "Hi.", "-o", "heard/fine.wav", env=coze.env())
    assert fine.exit_code == 0, fine.output
    assert (applied.root / "heard" / "fine.wav").read_bytes().startswith(b"RIFF")
    assert "to heard/fine.wav" in fine.stderr


def test_an_out_that_cannot_be_written_is_refused_before_the_call(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    (tmp_path / "afile").write_text("x")
    for target in (str(tmp_path / "afile" / "x.mp3"), str(tmp_path)):
        result = run(applied.root, "speak", "low", "Hi.", "-o", target, env=coze.env())
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
    assert speeches(coze) == 0


def test_an_orphan_is_heard_by_its_voice_id(applied: VoiceRepo, coze: Coze, run) -> None:
    applied.declare({"high": applied.voice("high", freq=300)})
    assert run(applied.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    result = run(applied.root, "speak", "low", "-o", "x.mp3", env=coze.env())
    assert result.exit_code == 1
    assert "low: no longer declared; its voice " in result.stderr
    assert "`voicectl speak --voice-id " in result.stderr


def test_a_voice_without_preview_text_says_its_language_s_sentence(
    repo: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    repo.declare({"plain": repo.voice("plain", language="es")})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    out = tmp_path / "plain.pcm"
    assert run(repo.root, "speak", "plain", "-o", str(out), env=coze.env()).exit_code == 0
    sentence = REFERENCE_SENTENCES["es"]
    assert len(out.read_bytes()) == 2 * round(len(sentence) * NOTE_SECONDS * 24000)


def test_the_cache_is_keyed_by_the_base_as_the_client_spells_it(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    """adv20 #1: http://LOCALHOST:port is the base http://localhost:port: a repeat on it
    is served from the cache."""
    shouted = coze.base.replace("127.0.0.1", "LOCALHOST")
    env = {**coze.env(), "COZE_API_BASE": shouted}
    for n in range(3):
        result = run(
            applied.root, "speak", "low", "Case.", "-o", str(tmp_path / f"{n}.mp3"), env=env
        )
        assert result.exit_code == 0, result.output
    assert speeches(coze) == 1


def test_a_cached_speech_copied_under_another_key_is_not_served(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    """adv20 #7: the seal names the place: one voice's speech, sealed by this machine,
    copied over another request's entry, is not served as that request's answer."""
    cache = applied.root / ".voicectl" / "speech"
    assert (
        run(
            applied.root, "speak", "low", "One.", "-o", str(tmp_path / "a.mp3"), env=coze.env()
        ).exit_code
        == 0
    )
    (first,) = cache.iterdir()
    assert (
        run(
            applied.root, "speak", "high", "Two.", "-o", str(tmp_path / "b.mp3"), env=coze.env()
        ).exit_code
        == 0
    )
    (second,) = [p for p in cache.iterdir() if p != first]
    shutil.rmtree(second)
    shutil.copytree(first, second)
    again = run(
        applied.root, "speak", "high", "Two.", "-o", str(tmp_path / "c.mp3"), env=coze.env()
    )
    assert again.exit_code == 0 and "from the cache" not in again.stderr
    assert speeches(coze) == 3
    assert (tmp_path / "c.mp3").read_bytes() == (tmp_path / "b.mp3").read_bytes()


def test_a_reply_in_another_format_behind_the_right_magic_is_refused() -> None:
    """adv20 #8: each format is read by its own demuxer and must hold its own codec: an
    ID3 tag before AAC or FLAC is no mp3, an Ogg of Vorbis no ogg_opus."""
    import numpy as np

    from voicectl.coze.speech import _duration
    from voicectl.errors import TransportError
    from voicectl.sound.encode import encode

    tone = (0.3 * np.sin(np.arange(24000) / 24000 * 2 * np.pi * 200)).astype(np.float32)
    samples = tone.reshape(1, -1)
    id3 = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + bytes(10)
    ask = SpeechAsk("7400000000000000001", "hi", "mp3")
    for fake in (id3 + encode(samples, 24000, "aac"), id3 + b"fLaC" + bytes(200)):
        with pytest.raises(TransportError, match="is not playable mp3 audio"):
            _duration(fake, ask, "")
    assert _duration(encode(samples, 24000, "mp3"), ask, "") == pytest.approx(1.0, abs=0.06)
    vorbis = (PROJECT / "examples" / "audio" / "host.ogg").read_bytes()  # Ogg Vorbis
    with pytest.raises(TransportError, match="is not ogg_opus audio"):
        _duration(vorbis, SpeechAsk("7400000000000000001", "hi", "ogg_opus"), "")


def test_a_preview_link_holding_the_token_encoded_is_never_kept() -> None:
    """adv20 #10: percent-encoded (once or twice), the token in a link is still the token."""
    from voicectl.coze import replies

    token = "pat_a_long_secret_token_value_01"
    item = {
        "voice_id": "7400000000000000001", "name": "v", "is_system_voice": False,
        "available_training_times": 9, "create_time": 1, "update_time": 1,
        "model_type": "big", "language_code": "en",
    }  # fmt: skip
    for link, kept in (
        ("https://cdn.example/p.mp3?sig=abc", True),
        ("https://cdn.example/p.mp3?sig=pat%5Fa_long_secret_token_value_01", False),
        ("https://cdn.example/p.mp3?sig=pat%255Fa_long_secret_token_value_01", False),
        ("file:///etc/passwd", False),
    ):
        page = replies.page(
            {"voice_list": [{**item, "preview_audio": link}], "has_more": False}, token
        )
        assert (page.voices[0].preview_audio == link) is kept, link


def test_text_that_is_not_utf8_and_parallelism_without_all_are_refused(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    bad = run(applied.root, "speak", "low", "caf\udce9", "-o", "x.mp3", env=coze.env())
    assert bad.exit_code == 1 and "the text holds bytes that are not UTF-8" in bad.stderr
    lone = run(applied.root, "speak", "low", "-j", "8", "-o", "x.mp3", env=coze.env())
    assert lone.exit_code == 1 and "-j/--parallelism is for --all" in lone.stderr
    assert speeches(coze) == 0


def test_speak_while_an_apply_runs_says_so(applied: VoiceRepo, coze: Coze, run) -> None:
    """Not "an apply was interrupted": the apply may be retraining the very voice."""
    from tests.conftest import holding_lock

    with holding_lock(applied.root / "state" / "voicectl.state.json") as pid:
        result = run(applied.root, "speak", "low", "Hi.", "-o", "x.mp3", env=coze.env())
    assert result.exit_code == 1
    assert "an apply is running" in result.stderr and f"pid {pid}" in result.stderr
    assert "interrupted" not in result.stderr.split("would")[0]
    assert speeches(coze) == 0


def test_a_retrain_this_checkout_does_not_know_of_is_heard(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    """adv21 #1: a voice retrained elsewhere (the console, a teammate's apply not pulled)
    is heard as Coze has it: the cache is keyed by Coze's training, not the state's."""
    from tests.test_snapshots import retrain_outside

    state = json.loads((applied.root / "state" / "voicectl.state.json").read_text())
    args = ("speak", "low", "Hello.", "-o", str(tmp_path / "x.wav"))
    assert run(applied.root, *args, env=coze.env()).exit_code == 0
    before = pitch(decode((tmp_path / "x.wav").read_bytes(), "wav")) or 0
    retrain_outside(coze, state["voices"]["low"]["voice_id"], 300)
    again = run(applied.root, *args, env=coze.env())
    assert again.exit_code == 0, again.output
    assert "from the cache" not in again.stderr and speeches(coze) == 2
    assert "Coze counts 2 training(s)" in again.stderr and "the state 1" in again.stderr
    after = pitch(decode((tmp_path / "x.wav").read_bytes(), "wav")) or 0
    assert after / before == pytest.approx(2.0, rel=0.05)


def test_out_is_never_a_device_a_fifo_a_link_or_the_state_s_files_to_be(
    applied: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    """adv21 #4, #10: a node or a link would be replaced, not written through (as root,
    /dev/null); the journal and the lock beside the state are refused before they exist."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "link.mp3").symlink_to(tmp_path / "elsewhere.mp3")
    targets = [str(fifo), str(tmp_path / "link.mp3"), "/dev/null"]
    targets += ["state/voicectl.state.json.journal", "state/voicectl.state.json.lock"]
    for target in targets:
        result = run(
            applied.root, "speak", "low", "Hi.", "-o", target, "--format", "mp3", env=coze.env()
        )
        assert result.exit_code == 1, (target, result.output)
    assert fifo.exists() and not fifo.is_file() and (tmp_path / "link.mp3").is_symlink()
    assert not (applied.root / "state" / "voicectl.state.json.journal").exists()
    assert speeches(coze) == 0


def test_a_token_in_a_reply_s_content_type_is_never_shown_in_part(
    applied: VoiceRepo, coze: Coze, run
) -> None:
    """adv21 #6: a server that echoes the token into the Content-Type of a reply that is
    not text: the type is redacted before it is cut, and no part of the token shows."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx

    token = "pat_" + "k" * 40
    listing = httpx.get(
        f"{coze.base}/v1/audio/voices",
        params={"page_size": 100, "filter_system_voice": "true"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).content

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the list, as the emulator has it
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(listing)

        def do_POST(self) -> None:  # speech: bytes that are not text, the token echoed
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(500)
            self.send_header("Content-Type", f"application/octet-stream; x={token}")
            self.end_headers()
            self.wfile.write(b"\xff\xfe\xfd")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"COZE_API_BASE": f"http://127.0.0.1:{server.server_port}", "COZE_API_TOKEN": token}
        result = run(applied.root, "speak", "low", "Hi.", "-o", "x.mp3", env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1
    assert "3 bytes that are not text" in result.output and "[redacted]" in result.output
    assert "kkkk" not in result.output


def test_speak_all_stops_paying_once_it_cannot_write(
    repo: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    """adv22: a directory that cannot take the files is found before any call when it
    can be (a directory in a file's place), else at the first file it cannot write (a
    full disk): the run stops there, and no more speech is paid for."""
    repo.declare({f"v{n}": repo.voice(f"v{n}", freq=200 + 20 * n) for n in range(6)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    out = tmp_path / "voices"
    out.mkdir()
    (out / "v0.mp3").mkdir()  # in the way: checked as a directory before any call
    refused = run(repo.root, "speak", "--all", "-o", str(out), env=coze.env())
    assert refused.exit_code == 1 and speeches(coze) == 0
    (out / "v0.mp3").rmdir()
    import resource

    def small_files() -> None:  # a disk that takes no file over 4 kB: found when writing
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    done = subprocess.run(
        [*VOICECTL, "-C", str(repo.root), "speak", "--all", "-o", str(out), "-j", "1"],
        capture_output=True, env=environment(coze), preexec_fn=small_files, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert b"stopping" in done.stderr and b"0 of 6 voice(s) spoken" in done.stderr
    assert speeches(coze) <= 2  # the first, and at most the one already on the wire


def test_an_interrupted_speak_all_sends_no_more(repo: VoiceRepo, coze: Coze, run) -> None:
    """adv22 #1: ^C stops it as it stops an apply: the speeches not yet sent never are."""
    import signal
    import time

    repo.declare({f"v{n:02d}": repo.voice(f"v{n:02d}", freq=200 + 10 * n) for n in range(24)})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    coze.faults(latency_ms=300)
    speaking = subprocess.Popen(
        [*VOICECTL, "-C", str(repo.root), "speak", "--all", "-o", "out", "-j", "2"],
        env=environment(coze), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while speeches(coze) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    speaking.send_signal(signal.SIGINT)
    _, said = speaking.communicate(timeout=30)
    assert speaking.returncode == 130, said
    coze.settle()
    assert speeches(coze) <= 6  # those on the wire ended; none sent after
