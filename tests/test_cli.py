"""The command line end to end: real repositories on disk, the real entry point."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from jsonschema import Draft202012Validator

from tests.conftest import VoiceRepo, write_wav
from voicectl.cli import cli
from voicectl.emulator.tones import tone_wav
from voicectl.files import schemas
from voicectl.plan.planner import plan as make_plan
from voicectl.plan.repository import open_config, read_valid
from voicectl.state import statefile as state_io
from voicectl.state.transition import applied

PROJECT = Path(__file__).resolve().parent.parent


def record_plan(root: Path) -> None:
    """Carry out the current plan in the state as apply would (no Coze involved)."""
    cfg = open_config(root)
    snapshot = read_valid(cfg)
    current = state_io.load(cfg.state_path, cfg.state) or state_io.new_state()
    for n, change in enumerate(make_plan(snapshot.desired, current).actionable):
        voice_id = f"74{n:017d}" if change.action in ("create", "replace") else None
        current = applied(current, change, "2026-11-25T06:00:00Z", voice_id)
    state_io.save(cfg.state_path, current)


def test_bundled_example_plans_three_creates_and_their_cost(run, tmp_path: Path) -> None:
    result = run(PROJECT, "plan")
    assert result.exit_code == 0, result.output
    assert result.output.count("create") >= 3
    assert "Plan: 3 to create. Clones spent: 3. Cost: 414 CNY one-time, +3 CNY/month." in (
        result.output
    )


def test_bundled_example_is_valid_and_spans_two_languages_and_formats(run) -> None:
    result = run(PROJECT, "validate", "--json")
    body = json.loads(result.stdout)
    assert result.exit_code == 0 and body["valid"] and body["voices"] == 3
    plan = json.loads(run(PROJECT, "plan", "--json").stdout)
    formats = {c["after"]["audio"]["format"] for c in plan["changes"]}
    languages = {c["after"]["language"] for c in plan["changes"]}
    durations = [c["after"]["audio"]["duration"] for c in plan["changes"]]
    assert len(formats) >= 2 and len(languages) >= 2
    assert all(10 <= d <= 20 for d in durations)


def test_plan_json_follows_the_plan_schema(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a"), "b": repo.voice("b", freq=500)})
    body = json.loads(run(repo.root, "plan", "--json").stdout)
    Draft202012Validator(schemas.load("plan")).validate(body)
    assert body["summary"]["create"] == 2
    assert body["cost"] == {"one_time_cny": 276, "monthly_cny_delta": 2}
    change = body["changes"][0]
    for key in ("address", "action", "reasons", "voice_id", "before", "after", "budget", "cost"):
        assert key in change


def test_plan_json_is_byte_for_byte_stable(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a"), "b": repo.voice("b", freq=500)})
    assert run(repo.root, "plan", "--json").stdout == run(repo.root, "plan", "--json").stdout


def test_after_recording_the_plan_there_are_no_changes(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a"), "b": repo.voice("b", freq=500)})
    record_plan(repo.root)
    result = run(repo.root, "plan")
    assert result.exit_code == 0 and result.stdout == "No changes.\n"


def test_moving_a_take_and_renaming_an_address_cost_nothing(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a")})
    record_plan(repo.root)
    (repo.root / "audio" / "a.wav").rename(repo.root / "audio" / "moved.wav")
    repo.declare(
        {"renamed": {"name": "A", "audio": "../audio/moved.wav", "text": "The take of a."}}
    )
    body = json.loads(run(repo.root, "plan", "--json").stdout)
    assert [(c["address"], c["action"]) for c in body["changes"]] == [("renamed", "move")]
    assert body["clones_spent"] == 0 and body["cost"]["one_time_cny"] == 0


def test_changed_audio_retrains_with_budget_shown(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a")})
    record_plan(repo.root)
    repo.audio("a.wav", freq=880)
    result = run(repo.root, "plan")
    assert "retrain" in result.output and "audio_changed" in result.output
    assert "clones left 9 -> 8" in result.output


def test_detailed_exitcode(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "plan", "--detailed-exitcode").exit_code == 2
    record_plan(repo.root)
    assert run(repo.root, "plan", "--detailed-exitcode").exit_code == 0
    repo.write("voices/voices.yaml", "voices: [")
    assert run(repo.root, "plan", "--detailed-exitcode").exit_code == 1


def test_markdown_puts_the_summary_first_and_collapses_details(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a")})
    out = run(repo.root, "plan", "--format", "markdown").stdout
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].startswith("**Plan: 1 to create")
    assert "<details>" in out and "| `+` | `a` | create |" in out


def test_policy_limit_fails_the_plan_naming_the_limit(repo: VoiceRepo, run) -> None:
    repo.write_config(policy={"max_new_voices": 1})
    repo.declare({"a": repo.voice("a"), "b": repo.voice("b", freq=500)})
    result = run(repo.root, "plan")
    assert result.exit_code == 1
    assert "policy.max_new_voices is 1" in result.output and "Traceback" not in result.output


def test_target_and_exclude(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a"), "b": repo.voice("b", freq=500)})
    only_b = json.loads(run(repo.root, "plan", "--json", "--target", "b").stdout)
    assert [c["address"] for c in only_b["changes"]] == ["b"]
    not_b = json.loads(run(repo.root, "plan", "--json", "--exclude", "b").stdout)
    assert [c["address"] for c in not_b["changes"]] == ["a"]


def test_unknown_target_is_a_user_error(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a")})
    result = run(repo.root, "plan", "--target", "ghost")
    assert result.exit_code == 1 and "unknown address(es): ghost" in result.output


def test_corrupt_state_fails_the_plan_and_is_left_alone(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a")})
    path = repo.write("state/voicectl.state.json", '{"format_version": 1,')
    result = run(repo.root, "plan")
    assert result.exit_code == 1 and "state/voicectl.state.json:1:" in result.output
    assert path.read_text() == '{"format_version": 1,' and "Traceback" not in result.output


def test_init_scaffolds_a_repository_that_plans_cleanly(tmp_path: Path, run) -> None:
    result = run(tmp_path, "init", "--language", "en", "--space", "7350000000000000001")
    assert result.exit_code == 0, result.output
    for name in ("voicectl.yaml", "voices/voices.yaml", "state/.gitkeep", ".gitignore"):
        assert (tmp_path / name).exists()
    assert (tmp_path / ".gitignore").read_text().splitlines() == [
        ".voicectl/",
        "*.journal.torn",
        "/state/voicectl.state.json.lock",  # the holder's host, pid and user: not shared
    ]
    assert run(tmp_path, "validate").exit_code == 0
    assert run(tmp_path, "plan").stdout == "No changes.\n"
    # Files are made as open() would make them, not private to their writer.
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("voicectl.yaml", "voices/voices.yaml", "state/.gitkeep", ".gitignore"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    from voicectl.files.atomic import write_atomic

    path = tmp_path / "state.json"
    path.write_text("{}")
    path.chmod(0o640)
    write_atomic(path, b"{ }")
    assert path.read_bytes() == b"{ }" and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_init_refuses_an_existing_repository(tmp_path: Path, run) -> None:
    run(tmp_path, "init")
    before = (tmp_path / "voicectl.yaml").read_text()
    result = run(tmp_path, "init")
    assert result.exit_code == 1 and "already exists" in result.output
    assert (tmp_path / "voicectl.yaml").read_text() == before


@pytest.mark.parametrize("name", ["config", "voices", "state", "plan"])
def test_schema_prints_a_schema_with_an_id(run, tmp_path: Path, name: str) -> None:
    result = run(tmp_path, "schema", name)
    body = json.loads(result.stdout)
    assert result.exit_code == 0 and body["$id"].endswith(f"/{name}.schema.json")
    Draft202012Validator.check_schema(body)


def test_no_repository_found_suggests_init(tmp_path: Path, run) -> None:
    result = run(tmp_path, "plan")
    assert result.exit_code == 1 and "voicectl init" in result.output


def test_bad_arguments_exit_1_with_one_message(run, tmp_path: Path) -> None:
    result = run(tmp_path, "plan", "--format", "yaml")
    assert result.exit_code == 1 and "Invalid value" in result.output
    assert "Traceback" not in result.output


def test_unexpected_error_exits_3_with_traceback_only_under_debug(run, tmp_path: Path) -> None:
    @cli.command("explode-for-test", hidden=True)
    def explode() -> None:
        raise RuntimeError("boom")

    try:
        quiet = run(tmp_path, "explode-for-test")
        loud = run(tmp_path, "--debug", "explode-for-test")
    finally:
        cli.commands.pop("explode-for-test")
    assert quiet.exit_code == 3 and "this is a bug" in quiet.output
    assert "Traceback" not in quiet.output
    assert loud.exit_code == 3 and "Traceback" in loud.output


def test_ctrl_c_exits_130(run, tmp_path: Path) -> None:
    @cli.command("interrupt-for-test", hidden=True)
    def interrupt() -> None:
        raise KeyboardInterrupt

    try:
        result = run(tmp_path, "interrupt-for-test")
    finally:
        cli.commands.pop("interrupt-for-test")
    assert result.exit_code == 130


def test_python_dash_m_and_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voicectl", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("voicectl ")


def test_version_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from voicectl.cli import main\n"
        "try: main(['--version'])\n"
        "except SystemExit: pass\n"
        "print(sorted(m for m in ('httpx', 'jsonschema', 'deepdiff', 'mutagen', 'yaml',"
        " 'subprocess', 'voicectl.declare.citemplates', 'voicectl.declare.gitrepo')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().endswith("[]")


def test_click_is_only_imported_by_the_cli() -> None:
    import ast

    for path in (PROJECT / "voicectl").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {
            a.name.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import)
            for a in n.names
        }
        names |= {
            (n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
        }
        if "cli" not in path.parts:
            assert "click" not in names, path
        yaml_readers = ("yamlload.py", "yamlcompose.py", "yamlbuild.py")
        if path.name not in yaml_readers and "emulator" not in path.parts:
            assert "yaml" not in names, path
        # One I/O seam to Coze: the clone and list client, its transport, and speech.
        seam = path.parent.name == "coze" and path.name in (
            "client.py",
            "transport.py",
            "speech.py",
        )
        if not seam and "emulator" not in path.parts:
            assert "httpx" not in names, path
        pure = ("planner.py", "voicediff.py", "changeparts.py", "matching.py")
        if path.name in (*pure, "replies.py", "reconcile.py"):
            assert not names & {"os", "pathlib", "httpx", "click", "yaml", "io"}, path
    assert click  # the CLI itself is click


def test_a_file_size_limit_is_a_clear_error_and_leaves_no_half_file(tmp_path: Path) -> None:
    """`ulimit -f` stands for a full disk: one message, exit 1, no traceback, no bug."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20, 20))

    result = subprocess.run(
        [sys.executable, "-m", "voicectl", "-C", str(tmp_path), "init"],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "the file size limit is reached" in result.stderr
    assert "bug" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "voicectl.yaml").exists()


def test_coze_unreachable_is_said_at_once_and_named_with_the_way_out(repo: VoiceRepo, run) -> None:
    """Not 15 s of retries and then `ConnectError`: a base where nothing has ever answered
    is a setting, said at once with its cause, its URL and the way out."""
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    repo.declare({"a": repo.voice("a")})
    env = {"COZE_API_BASE": f"http://127.0.0.1:{port}", "COZE_API_TOKEN": "pat_unreachable"}
    result = run(repo.root, "plan", env=env)
    assert result.exit_code == 1 and "notice: waiting" not in result.stderr  # no retry
    assert (
        f"Coze's voice list could not be read: cannot reach Coze: connection refused at "
        f"http://127.0.0.1:{port} (is the emulator running?" in result.stderr
    )
    assert "read to its end" not in result.stderr  # no page was read: nothing partial
    assert "`voicectl plan --no-refresh`" in result.stderr and "COZE_API_BASE" in result.stderr


def test_the_init_template_works_once_uncommented(tmp_path: Path, run) -> None:
    """As written, the template declares nothing; with its example's lines uncommented
    (and a take where it says), it declares the example voice."""
    from tests.conftest import write_wav

    assert run(tmp_path, "init").exit_code == 0
    assert run(tmp_path, "validate").exit_code == 0
    path = tmp_path / "voices" / "voices.yaml"
    lines = path.read_text().splitlines()
    start = lines.index("voices:") + 1
    path.write_text("\n".join([*lines[:start], *(line[1:] for line in lines[start:])]) + "\n")
    write_wav(tmp_path / "audio" / "narrator.wav")
    result = run(tmp_path, "validate")
    assert result.exit_code == 0, result.output
    # voicectl.yaml likewise: every line its comments offer, taken as they say.
    config = tmp_path / "voicectl.yaml"
    config.write_text(config.read_text().replace("\n  # ", "\n  "))
    assert 'space: "7350000000000000001"' in config.read_text()
    taken = run(tmp_path, "validate")
    assert taken.exit_code == 0, taken.output
    assert "1 voice(s)" in result.output


@pytest.mark.parametrize("access_log", [False, True])
def test_the_emulator_is_quiet_unless_asked_and_says_how_to_stop_it(
    tmp_path: Path, access_log: bool
) -> None:
    """As a demo beside apply's prompt: one line at start, no line per request."""
    import signal
    import socket

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "voicectl", "emulator", "--port", str(port)]
    command += ["--data", str(tmp_path / "emu")] + (["--access-log"] if access_log else [])
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert f"listening on http://127.0.0.1:{port}" in first and "Ctrl+C" in first
        for _ in range(100):
            try:
                httpx.get(
                    f"http://127.0.0.1:{port}/v1/audio/voices",
                    headers={"Authorization": "Bearer pat_demo"},
                    timeout=5,
                )
                break
            except httpx.TransportError:
                time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=20)
    assert ("GET /v1/audio/voices" in out + err) is access_log
    if not access_log:
        assert out == ""  # the one line, and no more


def test_warnings_of_one_kind_show_the_first_few_and_a_count(repo: VoiceRepo, run) -> None:
    """Ten short takes: three warnings and "7 more", not ten lines (--verbose: all ten)."""
    from tests.conftest import write_wav

    voices = {}
    for i in range(10):
        voices[f"v{i}"] = repo.voice(f"v{i}", freq=300 + 10 * i)
        write_wav(repo.root / "audio" / f"v{i}.wav", seconds=5, freq=300 + 10 * i)
    repo.declare(voices)
    result = run(repo.root, "validate")
    assert result.exit_code == 0, result.output
    assert result.output.count("s long; Coze recommends 10-30 s") == 3
    assert "and 7 more audio warning(s) like these; `voicectl --verbose` lists them all" in (
        result.output
    )
    every = run(repo.root, "--verbose", "validate")
    assert every.output.count("s long; Coze recommends 10-30 s") == 10


def test_a_take_below_16_khz_is_warned(repo: VoiceRepo, run) -> None:
    repo.declare({"low": repo.voice("low"), "fine": repo.voice("fine")})
    write_wav(repo.root / "audio" / "low.wav", rate=8000)
    result = run(repo.root, "validate")
    assert result.exit_code == 0, result.output
    assert "audio/low.wav: sampled at 8,000 Hz; a clone sounds like its take" in result.output
    assert "fine.wav" not in result.output  # 16 kHz is enough


def test_validate_states_the_pcm_rule_for_every_pcm_take(repo: VoiceRepo, run) -> None:
    repo.declare({"raw": repo.voice("raw", audio="../audio/raw.pcm"), "wav": repo.voice("wav")})
    repo.write("audio/raw.pcm", tone_wav(seconds=12, rate=24_000)[44:])  # samples, no header
    text = run(repo.root, "validate")
    assert text.exit_code == 0, text.output
    assert (
        "note: 1 take(s) are raw .pcm (audio/raw.pcm): Coze hears raw samples as "
        "24 kHz, 16-bit, mono, little-endian" in text.output
    )
    assert "0 warning(s)" in text.output  # a note, not a warning strict_takes would stop on
    body = json.loads(run(repo.root, "validate", "--json").output)
    assert body["warnings"] == 0 and "audio/raw.pcm" in body["notes"][0]
    repo.declare({"wav": repo.voice("wav")})
    assert "note:" not in run(repo.root, "validate").output


def test_a_stereo_take_is_warned_and_strict_takes_makes_it_an_error(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a")})
    write_wav(repo.root / "audio" / "a.wav", channels=2)  # 12 s, two channels
    warned = run(repo.root, "validate")
    assert warned.exit_code == 0 and "2 channels; a voice is cloned from one speaker" in (
        warned.output
    )
    repo.write_config(policy={"strict_takes": True})
    strict = run(repo.root, "validate")
    assert strict.exit_code == 1
    assert "error: voices.a.audio:" in strict.output and "(policy.strict_takes)" in strict.output


def test_an_empty_declaration_file_declares_nothing(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a")})
    repo.write("voices/begun.yaml", "# to be written\n")
    result = run(repo.root, "validate")
    assert result.exit_code == 0 and "valid: 2 file(s), 1 voice(s), 0 error(s)" in result.output


def test_two_voices_of_one_name_in_one_workspace_are_warned_about(repo: VoiceRepo, run) -> None:
    repo.declare(
        {
            "a": repo.voice("a", name="Station Announcer"),
            "b": repo.voice("b", freq=500, name="Station Announcer"),
            "c": repo.voice("c", freq=600, name="Station Announcer", space="7350000000000000002"),
        }
    )
    result = run(repo.root, "validate")
    assert result.exit_code == 0, result.output
    assert result.output.count("Coze shows both under one name") == 1  # c: another space
    assert "voices.b.name: name 'Station Announcer' is also a's" in result.output


def test_take_warnings_reach_the_pull_request(repo: VoiceRepo, run) -> None:
    """A stereo or 8 kHz take is the reviewer's to see: in the comment and the JSON plan,
    and in a saved plan shown later, not only on the log's stderr."""
    repo.declare({"low": repo.voice("low"), "fine": repo.voice("fine", freq=500)})
    write_wav(repo.root / "audio" / "low.wav", rate=8000)
    comment = run(repo.root, "plan", "--format", "markdown").stdout
    assert "<summary>1 warning(s)</summary>" in comment
    assert "sampled at 8,000 Hz" in comment
    body = json.loads(run(repo.root, "plan", "--json").stdout)
    assert len(body["warnings"]) == 1 and "voices.low.audio" in body["warnings"][0]
    assert run(repo.root, "plan", "--out", "plan.json").exit_code == 0
    shown = run(repo.root, "show", "plan.json", "--format", "markdown").stdout
    assert "sampled at 8,000 Hz" in shown


def test_a_misspelled_command_is_answered_with_the_command_meant(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    """The commands load lazily; the suggestions still come from every one of them."""
    for typed, meant in (("aply", "apply"), ("plna", "plan"), ("stat", "state")):
        result = run(tmp_path, typed)
        assert result.exit_code == 1
        assert f"No such command '{typed}'." in result.output
        assert f"Did you mean '{meant}'?" in result.output
    assert "Did you mean" not in run(tmp_path, "zzz").output


def test_a_removed_working_directory_is_a_clear_error_not_a_bug(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    script = (
        "import os, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); "
        "from voicectl.cli import main; main(['plan'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(gone)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    assert "the current directory no longer exists" in done.stderr
    assert "this is a bug" not in done.stderr
