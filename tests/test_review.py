"""`voicectl review`: the page, loaded in a real headless Chromium (Debian's `chromium`,
driven by Playwright: no browser download), with script on and off.

A voice repository in git is applied to the emulator, its state committed, then a take
is changed (a retrain, whose old take comes back from git) and voices in other formats
added (creates). The page must make no network request, log no console error, play every
take for its duration, show every picture, and say what `plan --json` says.
"""

from __future__ import annotations

import html
import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import Coze, VoiceRepo
from voicectl.sound.encode import encode

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("VOICECTL_ARTIFACTS", Path(__file__).parent.parent / "build"))
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (`apt-get install chromium`; .ci/run does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def speech_like(freq: float, seconds: float = 11.0, rate: int = 24_000) -> np.ndarray:
    """Phrases of a tone with pauses between them: a take no threshold warns of."""
    t = np.arange(int(rate * seconds)) / rate
    envelope = (np.sin(2 * np.pi * t / 2.2) > -0.8).astype(np.float32)  # 20% pauses
    return (0.3 * np.sin(2 * np.pi * freq * t) * envelope).astype(np.float32).reshape(1, -1)


def git(root: Path, *args: str) -> None:
    subprocess.run([*GIT, "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def reviewed(repo: VoiceRepo, coze: Coze, run) -> tuple[VoiceRepo, dict[str, Any]]:
    """A repository with one retrain and three creates (mp3, ogg, m4a), and its plan."""
    takes = repo.root / "audio"
    repo.declare({"host": repo.voice("host", audio="../audio/host.wav", text="Hello there.")})
    (takes / "host.wav").write_bytes(encode(speech_like(300), 24_000, "wav"))  # after voice()
    git(repo.root, "init", "-q", "-b", "main")
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-q", "-m", "voices")
    applied = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert applied.exit_code == 0, applied.output
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-q", "-m", "state")
    voices = {"host": repo.voice("host", audio="../audio/host.wav", text="Hello there, again.")}
    for name, fmt in (("guide", "mp3"), ("radio", "ogg"), ("studio", "m4a")):
        voices[name] = repo.voice(name, audio=f"../audio/{name}.{fmt}")
        (takes / f"{name}.wav").unlink()  # voice() writes a tone there: not declared
        (takes / f"{name}.{fmt}").write_bytes(encode(speech_like(350), 24_000, fmt))
    (takes / "host.wav").write_bytes(encode(speech_like(420), 24_000, "wav"))
    repo.declare(voices)
    plan = run(repo.root, "plan", "--json", env=coze.env())
    assert plan.exit_code == 0, plan.output
    return repo, json.loads(plan.stdout)


def durations(plan: dict[str, Any]) -> dict[str, float]:
    """The decoded duration of each take a change clones, by its sha256 prefix (as the
    page names its file)."""
    return {sha[:16]: take["duration"] for sha, take in plan["takes"].items()}


def load(browser: Any, url: str, *, script: bool = True) -> tuple[Any, list[str], list[str]]:
    context = browser.new_context(
        java_script_enabled=script, viewport={"width": 1100, "height": 900}
    )
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url)
    page.wait_for_function(
        "() => [...document.querySelectorAll('audio')].every(a => a.readyState >= 1 || a.error)"
    ) if script else page.wait_for_timeout(1500)
    return page, errors, requests


def check_page(page: Any, plan: dict[str, Any], errors: list[str], requests: list[str]) -> None:
    from PIL import Image

    assert errors == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    summary = {
        el.get_attribute("data-summary"): int(el.inner_text())
        for el in page.query_selector_all("[data-summary]")
    }
    assert summary["clones_spent"] == plan["clones_spent"]
    assert summary["one_time_cny"] == plan["cost"]["one_time_cny"]
    assert summary["monthly_cny_delta"] == plan["cost"]["monthly_cny_delta"]
    for action, count in plan["summary"].items():
        if count and action != "noop":
            assert summary[action] == count
    expected = durations(plan)
    players = page.query_selector_all("audio")
    assert len(players) == 5  # the retrain's two takes, and three new ones
    for player in players:
        assert player.evaluate("a => a.error") is None
        decoded = float(player.get_attribute("data-duration"))
        assert player.evaluate("a => a.duration") == pytest.approx(decoded, abs=0.05)
        sha = player.get_attribute("data-sha256")
        if player.evaluate("a => a.closest('.take').dataset.role") == "new":
            assert expected[sha[:16]] == pytest.approx(decoded, abs=0.001)
    images = page.query_selector_all("img")
    assert len(images) == 10
    for image in images:
        assert image.evaluate("i => i.complete && i.naturalWidth > 0")
        shot = Image.open(io.BytesIO(image.screenshot())).convert("L")
        assert np.asarray(shot).std() > 5, "a blank picture"


def test_a_review_page_plays_every_take_and_says_what_the_plan_says(
    reviewed: tuple[VoiceRepo, dict[str, Any]], run, browser: Any, coze: Coze
) -> None:
    repo, plan = reviewed
    made = run(repo.root, "review", "-o", "review", env=coze.env())
    assert made.exit_code == 0, made.output
    index = repo.root / "review" / "index.html"
    page, errors, requests = load(browser, index.as_uri())
    check_page(page, plan, errors, requests)
    retrain = page.query_selector("[data-action=retrain]")
    assert retrain is not None
    assert [t.get_attribute("data-role") for t in retrain.query_selector_all(".take")] == [
        "old",
        "new",
    ]
    transcript = retrain.query_selector(".transcript").inner_html()
    assert transcript == "Transcript: Hello <del>there.</del> <ins>there, again.</ins>"
    assert retrain.query_selector("button") is not None  # script: old, then new
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review.png"), full_page=True)
    page.context.close()


def test_a_review_reads_with_script_off(
    reviewed: tuple[VoiceRepo, dict[str, Any]], run, browser: Any, coze: Coze
) -> None:
    repo, _ = reviewed
    assert run(repo.root, "review", "-o", "review", env=coze.env()).exit_code == 0
    page, errors, requests = load(
        browser, (repo.root / "review" / "index.html").as_uri(), script=False
    )
    assert errors == [] and all(url.startswith("file:") for url in requests)
    assert len(page.query_selector_all("section.change")) == 4
    assert len(page.query_selector_all("audio[controls]")) == 5
    assert page.query_selector("button") is None  # only script adds it
    page.context.close()


def test_a_single_file_review_holds_everything(
    reviewed: tuple[VoiceRepo, dict[str, Any]], run, browser: Any, coze: Coze
) -> None:
    repo, plan = reviewed
    made = run(repo.root, "review", "-o", "review.html", "--single-file", env=coze.env())
    assert made.exit_code == 0, made.output
    page_file = repo.root / "review.html"
    assert page_file.is_file() and not (repo.root / "audio" / "review").exists()
    page, errors, requests = load(browser, page_file.as_uri())
    assert [r for r in requests if not r.startswith("data:")] == [page_file.as_uri()]
    check_page(page, plan, errors, requests)
    page.context.close()


# --- what the page says, and where it is written (no browser needed) -------------------


def test_an_old_take_git_never_held_is_shown_as_not_available(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """Applied outside git: the state has no blob id for the take a retrain replaces."""
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    repo.declare({"a": repo.voice("a", freq=520)})
    made = run(repo.root, "review", "-o", "out", env=coze.env())
    assert made.exit_code == 0, made.output
    page = (repo.root / "out" / "index.html").read_text()
    assert 'data-action="retrain"' in page
    assert "Not available: it was never committed while recorded." in page
    assert page.count("<audio") == 1


def test_a_saved_plan_is_reviewed_as_saved(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a"), "b": repo.voice("b", freq=520)})
    assert run(repo.root, "plan", "--no-refresh", "--out", "plan.json").exit_code == 0
    repo.declare({"a": repo.voice("a")})  # the repository moved on: the saved plan did not
    made = run(repo.root, "review", "plan.json", "-o", "out")
    assert made.exit_code == 0, made.output
    page = (repo.root / "out" / "index.html").read_text()
    assert page.count('class="change"') == 2 and "The saved plan plan.json" in page
    refused = run(repo.root, "review", "plan.json", "-o", "out", "--target", "a")
    assert refused.exit_code == 1 and "a saved plan carries its own options" in refused.output


def test_a_review_replaces_its_own_folder_and_refuses_any_other(repo: VoiceRepo, run) -> None:
    """Its own folder, as it left it, is replaced; one someone added a file to is not,
    nor one whose marker was copied there (a pull request can commit a marker, not seal
    one with this machine's key)."""
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "review", "--no-refresh", "-o", "out").exit_code == 0
    assert run(repo.root, "review", "--no-refresh", "-o", "out").exit_code == 0
    (repo.root / "out" / "audio" / "mine.txt").write_text("a note")
    refused = run(repo.root, "review", "--no-refresh", "-o", "out")
    assert refused.exit_code == 1 and (repo.root / "out" / "audio" / "mine.txt").exists()
    docs = repo.root / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# guide")
    marker = (repo.root / "out" / ".voicectl-review").read_text()
    (docs / ".voicectl-review").write_text(marker)
    assert run(repo.root, "review", "--no-refresh", "-o", "docs").exit_code == 1
    assert (docs / "guide.md").read_text() == "# guide"
    (repo.root / "notes").mkdir()
    (repo.root / "notes" / "mine.txt").write_text("keep me")
    refused = run(repo.root, "review", "--no-refresh", "-o", "notes")
    assert refused.exit_code == 1 and "holds other files" in refused.output
    assert (repo.root / "notes" / "mine.txt").read_text() == "keep me"
    assert not [p for p in repo.root.iterdir() if p.name.startswith(".voicectl-review")]


def test_an_unchanged_voice_with_a_note_is_shown_for_its_note(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """A renamed voice is a note (the name takes effect at the next retrain): nothing is
    cloned, and the reviewer reads the note on the page."""
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    repo.declare({"a": repo.voice("a", name="A new name")})
    plan = json.loads(run(repo.root, "plan", "--json", env=coze.env()).stdout)
    (note,) = plan["notes"]
    assert run(repo.root, "review", "-o", "out", env=coze.env()).exit_code == 0
    page = (repo.root / "out" / "index.html").read_text()
    assert 'data-action="noop"' in page and "<audio" not in page
    assert html.escape(note["note"]) in page


# --- what a fresh adversary found ----------------------------------------------------------


def test_a_review_never_writes_over_what_it_did_not_write(repo: VoiceRepo, run) -> None:
    """A folder holding an index.html of someone else's, the repository itself, a file
    that is not a review page: each refused, and left as it was."""
    repo.declare({"a": repo.voice("a")})
    (repo.root / "index.html").write_text("<p>the team's page</p>")
    site = repo.root / "site"
    (site / "blog").mkdir(parents=True)
    (site / "index.html").write_text("<p>home</p>")
    (site / "blog" / "post.html").write_text("<p>post</p>")
    for target in (".", "site", str(repo.root.parent)):
        refused = run(repo.root, "review", "--no-refresh", "-o", target)
        assert refused.exit_code == 1, (target, refused.output)
    assert (site / "blog" / "post.html").read_text() == "<p>post</p>"
    assert (repo.root / "index.html").read_text() == "<p>the team's page</p>"
    state = repo.root / "notes.html"
    state.write_text("mine")
    refused = run(repo.root, "review", "--no-refresh", "--single-file", "-o", "notes.html")
    assert refused.exit_code == 1 and "is not a review page" in refused.output
    assert state.read_text() == "mine"
    assert run(repo.root, "review", "--no-refresh", "--single-file", "-o", "r.html").exit_code == 0
    again = run(repo.root, "review", "--no-refresh", "--single-file", "-o", "r.html")
    assert again.exit_code == 0, again.output  # its own page: written over


def test_a_review_killed_midway_leaves_nothing_the_next_does_not_sweep(
    repo: VoiceRepo, run
) -> None:
    repo.declare({"a": repo.voice("a")})
    left = repo.root / ".voicectl-review-abc"  # a review killed midway: its lock is free
    (left / "review" / "audio").mkdir(parents=True)
    (left / ".lock").write_text("")
    (left / ".gitignore").write_text("*\n")
    kept = repo.root / ".voicectl-review-notes"  # not one of a review's: kept
    kept.mkdir()
    (kept / "notes.md").write_text("mine")
    assert run(repo.root, "review", "--no-refresh", "-o", "out").exit_code == 0
    assert not left.exists()
    assert (kept / "notes.md").read_text() == "mine"


def test_a_saved_plan_reads_no_take_outside_the_repository(
    repo: VoiceRepo, run, tmp_path: Path
) -> None:
    """A saved plan is a file a pull request can edit: a take path leading out of the
    repository (or a take changed since) refuses the review; nothing is copied."""
    import hashlib

    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "plan", "--no-refresh", "--out", "plan.json").exit_code == 0
    secret = tmp_path / "secret.wav"
    secret.write_bytes((repo.root / "audio" / "a.wav").read_bytes() + b"private")
    plan = json.loads((repo.root / "plan.json").read_text())
    audio = plan["changes"][0]["after"]["audio"]
    audio["path"] = "../secret.wav"
    audio["sha256"] = hashlib.sha256(secret.read_bytes()).hexdigest()
    (repo.root / "plan.json").write_text(json.dumps(plan))
    refused = run(repo.root, "review", "plan.json", "-o", "out")
    assert refused.exit_code == 1 and "changed since the plan was saved" in refused.output
    assert not (repo.root / "out").exists()
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "plan", "--no-refresh", "--out", "plan.json").exit_code == 0
    (repo.root / "audio" / "a.wav").write_bytes((repo.root / "audio" / "a.wav").read_bytes() + b"x")
    stale = run(repo.root, "review", "plan.json", "-o", "out")
    assert stale.exit_code == 1 and "audio/a.wav" in stale.output


def test_takes_that_do_not_decode_are_said_on_the_page(repo: VoiceRepo, run) -> None:
    """A damaged mp3 and a WAV of a codec FFmpeg lacks: exit 0, the page says why there
    are no figures (the review used to stop as "a bug")."""
    voices = {"bad": repo.voice("bad", audio="../audio/bad.mp3")}
    voices["odd"] = repo.voice("odd")
    repo.declare(voices)
    good = (repo.root / "audio" / "odd.wav").read_bytes()
    coded = encode(speech_like(300), 24_000, "mp3")
    noise = np.random.default_rng(1).integers(0, 256, len(coded) - 64, dtype=np.uint8)
    (repo.root / "audio" / "bad.mp3").write_bytes(coded[:64] + noise.tobytes())
    odd = bytearray(good)
    odd[20:22] = (0x7777).to_bytes(2, "little")
    (repo.root / "audio" / "odd.wav").write_bytes(bytes(odd))
    made = run(repo.root, "review", "--no-refresh", "-o", "out")
    assert made.exit_code == 0, made.output
    page = (repo.root / "out" / "index.html").read_text()
    assert page.count("its quality could not be measured") == 2  # each of the two


def test_a_marker_that_is_a_link_is_no_marker(repo: VoiceRepo, run) -> None:
    """A pull request can commit `.voicectl-review` as a link to /dev/zero: it is never
    read through (it once read without end), and the folder is not replaced."""
    repo.declare({"a": repo.voice("a")})
    out = repo.root / "rev"
    out.mkdir()
    (out / "page.html").write_text("theirs")
    (out / ".voicectl-review").symlink_to("/dev/zero")
    refused = run(repo.root, "review", "--no-refresh", "-o", "rev")
    assert refused.exit_code == 1 and "holds other files" in refused.output
    assert (out / "page.html").read_text() == "theirs"
