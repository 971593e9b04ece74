"""Plan at scale, correctness only: the declaration cache, the compiled schema check,
and trusting takes by git blob id on a fresh clone (git absent, file modified, Git LFS
content not pulled, clean clone). Timings live in bench/, never here."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Coze, VoiceRepo, state_of, write_wav
from voicectl.declare import gitrepo
from voicectl.declare.declarations import Loaded, load_declarations
from voicectl.declare.declcache import DeclarationCache
from voicectl.files import schemacheck, schemas
from voicectl.plan import repository

TAKES_CACHE = Path(".voicectl") / "cache" / "takes.json"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    )
    return done.stdout


def commit_all(root: Path, message: str) -> None:
    if not (root / ".git").exists():
        git(root, "init", "-q", "-b", "main")
        git(root, "config", "user.email", "test@example.invalid")
        git(root, "config", "user.name", "voicectl test")
        git(root, "config", "core.hooksPath", "/dev/null")
        (root / ".gitignore").write_text(".voicectl/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", message)


def applied_and_committed(repo: VoiceRepo, coze: Coze, run, n: int = 3) -> None:
    """Voices declared and committed, applied, and the state committed: a team's repo."""
    repo.declare({f"v{i}": repo.voice(f"v{i}", freq=300 + 40 * i) for i in range(n)})
    commit_all(repo.root, "voices")
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    commit_all(repo.root, "state")


def clone(repo: VoiceRepo, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(repo.root), str(dest)], check=True)
    return dest


def cached_facts(root: Path) -> dict[str, dict[str, Any]]:
    """What the take cache learnt, by path: read facts carry a sample rate, facts taken
    from the state on git's word carry none."""
    data = json.loads((root / TAKES_CACHE).read_text())
    return {path: entry["facts"] for path, entry in data["entries"].items()}


# --- trusting takes by git blob id -----------------------------------------------------


def test_apply_records_each_takes_git_blob_in_the_state(repo: VoiceRepo, coze: Coze, run) -> None:
    applied_and_committed(repo, coze, run)
    voices = state_of(repo.root)["voices"]
    for record in voices.values():
        path = record["audio"]["path"]
        assert record["audio"]["git_blob"] == git(repo.root, "rev-parse", f"HEAD:{path}").strip()


def test_a_fresh_clone_trusts_clean_takes_without_reading_them(
    repo: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    applied_and_committed(repo, coze, run)
    copy = clone(repo, tmp_path / "clone")
    result = run(copy, "plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert "No changes" in result.output
    facts = cached_facts(copy)
    assert len(facts) == 3
    assert all(f["sample_rate"] is None for f in facts.values())  # from the state, unread


def test_a_modified_take_in_a_clone_is_read_and_planned(
    repo: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    applied_and_committed(repo, coze, run)
    copy = clone(repo, tmp_path / "clone")
    before = (copy / "audio" / "v1.wav").stat().st_size
    write_wav(copy / "audio" / "v1.wav", freq=997.0)  # same size, other bytes
    assert (copy / "audio" / "v1.wav").stat().st_size == before
    result = run(copy, "plan", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert "retrain" in result.output and "v1" in result.output
    facts = cached_facts(copy)
    assert facts["audio/v1.wav"]["sample_rate"] == 16000  # read, not trusted
    assert facts["audio/v0.wav"]["sample_rate"] is None


def test_without_git_takes_are_hashed(
    repo: VoiceRepo, coze: Coze, run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied_and_committed(repo, coze, run)
    copy = clone(repo, tmp_path / "clone")
    empty = tmp_path / "no-git-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = run(copy, "plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert all(f["sample_rate"] == 16000 for f in cached_facts(copy).values())


def test_outside_a_git_work_tree_takes_are_hashed(
    repo: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    applied_and_committed(repo, coze, run)
    copy = tmp_path / "export"
    shutil.copytree(repo.root, copy, ignore=shutil.ignore_patterns(".git", ".voicectl"))
    result = run(copy, "plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert all(f["sample_rate"] == 16000 for f in cached_facts(copy).values())


def test_a_take_whose_inode_changed_but_not_its_bytes_keeps_its_blob_id(
    repo: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    """Hard-linked elsewhere (ctime), touched (mtime): git's stat data no longer matches
    its index, yet the bytes are the committed blob's. The apply records the blob id all
    the same (git status compares content), so that a fresh clone trusts the take."""
    repo.declare({f"v{i}": repo.voice(f"v{i}", freq=300 + 40 * i) for i in range(3)})
    commit_all(repo.root, "voices")
    os.link(repo.root / "audio" / "v0.wav", tmp_path / "linked.wav")
    later = time.time() + 5
    os.utime(repo.root / "audio" / "v1.wav", (later, later))
    result = run(repo.root, "apply", "--auto-approve", env=coze.env())
    assert result.exit_code == 0, result.output
    voices = state_of(repo.root)["voices"]
    for address in ("v0", "v1", "v2"):
        path = voices[address]["audio"]["path"]
        blob = git(repo.root, "rev-parse", f"HEAD:{path}").strip()
        assert voices[address]["audio"].get("git_blob") == blob, address


def test_clean_blobs_reads_git_from_a_subdirectory(tmp_path: Path) -> None:
    """The voice repository below the top of the git work tree: paths come relative to
    it. A file whose bytes differ from its index entry, staged or not, is left out; a
    file staged and unchanged since is in, with the staged blob; a renamed one too."""
    top = tmp_path / "top"
    voices = top / "team" / "voices"
    voices.mkdir(parents=True)
    for name in ("same", "edited", "staged", "old"):
        (voices / f"{name}.wav").write_bytes(name.encode() * 100)
    (top / "outside.wav").write_bytes(b"outside")
    commit_all(top, "takes")
    (voices / "edited.wav").write_bytes(b"EDITED" * 100)  # same size, other bytes
    (voices / "staged.wav").write_bytes(b"STAGED" * 100)
    git(top, "add", "team/voices/staged.wav")
    git(top, "mv", "team/voices/old.wav", "team/voices/new.wav")
    later = time.time() + 5
    os.utime(voices / "same.wav", (later, later))  # stat-dirty only
    blobs = gitrepo.clean_blobs(top / "team")
    hashed = {
        name: git(top, "hash-object", f"team/voices/{name}.wav").strip()
        for name in ("same", "staged", "new")
    }
    assert blobs == {f"voices/{name}.wav": blob for name, blob in hashed.items()}


def test_a_take_this_machine_has_seen_is_never_trusted_on_gits_word(
    repo: VoiceRepo, coze: Coze, run
) -> None:
    """git's stat check has blind spots its users choose (core.trustctime false) or meet
    (a same-size edit whose mtime a copy put back): a take the take cache has seen, whose
    stat changed, is read again, not taken from the state on git's word."""
    applied_and_committed(repo, coze, run)
    git(repo.root, "config", "core.trustctime", "false")
    take = repo.root / "audio" / "v1.wav"
    os.utime(take, (1577836800, 1577836800))  # 2020: older than the index, never racy
    git(repo.root, "update-index", "--refresh")
    old = take.stat()
    assert run(repo.root, "plan").exit_code == 0  # the take cache knows every take
    data = bytearray(take.read_bytes())
    data[5000:5010] = b"\x01" * 10
    take.write_bytes(bytes(data))
    os.utime(take, ns=(old.st_atime_ns, old.st_mtime_ns))  # as `cp -p` or `rsync -t` keep it
    assert git(repo.root, "diff-files", "--name-only") == ""  # git sees no change
    result = run(repo.root, "plan", "--detailed-exitcode", env=coze.env())
    assert result.exit_code == 2, result.output
    assert "v1" in result.output and "retrain" in result.output


def lfs_pointer(data: bytes) -> bytes:
    oid = hashlib.sha256(data).hexdigest()
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n"
    ).encode()


def test_an_lfs_pointer_not_pulled_is_an_error_not_a_take(
    repo: VoiceRepo, coze: Coze, run, tmp_path: Path
) -> None:
    """A repository whose takes live in Git LFS, cloned without the LFS content: the work
    tree holds pointers whose blob ids are the ones the state recorded. The pointer is
    never trusted as the take nor hashed as audio."""
    applied_and_committed(repo, coze, run)
    take = repo.root / "audio" / "v2.wav"
    take.write_bytes(lfs_pointer(take.read_bytes()))  # what git stores for an LFS file
    pointer_blob = git(repo.root, "hash-object", "-w", "audio/v2.wav").strip()
    data = state_of(repo.root)
    data["voices"]["v2"]["audio"]["git_blob"] = pointer_blob  # as an LFS apply records
    (repo.root / "state" / "voicectl.state.json").write_text(json.dumps(data, indent=2))
    commit_all(repo.root, "takes in LFS")
    copy = clone(repo, tmp_path / "clone")
    for command in ("plan", "validate"):
        result = run(copy, command)
        assert result.exit_code == 1, result.output
        assert "audio/v2.wav: is a Git LFS pointer" in result.output
        assert "git lfs pull" in result.output


def test_validate_refuses_an_lfs_pointer_as_a_take(repo: VoiceRepo, run) -> None:
    audio = repo.audio("a.wav")
    (repo.root / "audio" / "a.wav").write_bytes(lfs_pointer(b"x" * 1000))
    repo.declare({"a": {"name": "A", "audio": audio, "text": "Hello."}})
    result = run(repo.root, "validate")
    assert result.exit_code == 1
    assert "is a Git LFS pointer, not audio" in result.output


# --- the declaration cache ---------------------------------------------------------------


def load(repo: VoiceRepo, cache: DeclarationCache | None) -> Loaded:
    cfg = repository.open_config(repo.root)
    return load_declarations(cfg, cache)


def cache_for(repo: VoiceRepo, path: Path) -> DeclarationCache:
    cfg = repository.open_config(repo.root)
    cache = DeclarationCache(path, repository._cache_identity(cfg))
    cache.started_ns = time.time_ns() + 10**10  # as if ten seconds later: nothing is racy
    return cache


def test_cached_declarations_and_problems_equal_a_fresh_load(
    repo: VoiceRepo, tmp_path: Path
) -> None:
    repo.declare({"a": repo.voice("a"), "b": repo.voice("b", freq=500)})
    repo.write("voices/bad.yaml", "voices:\n  c:\n    name: C\n    text: 1\n  a:\n    name: x\n")
    fresh = load(repo, None)
    assert fresh.problems  # the bad file has problems worth caching
    path = tmp_path / "decl.json"
    first = cache_for(repo, path)
    assert load(repo, first) == fresh
    first.save()
    second = cache_for(repo, path)
    assert len(second.entries) == 2
    assert load(repo, second) == fresh
    assert not second.dirty  # every file came from the cache


def test_a_changed_declaration_file_is_never_taken_from_the_cache(
    repo: VoiceRepo, tmp_path: Path
) -> None:
    file = repo.declare({"a": repo.voice("a")})
    path = tmp_path / "decl.json"
    cache = cache_for(repo, path)
    load(repo, cache)
    cache.save()
    st = file.stat()
    file.write_text(file.read_text().replace("name: A voice", "name: Z voice"))  # same size
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
    assert file.stat().st_size == st.st_size
    loaded = load(repo, cache_for(repo, path))
    assert loaded.declarations[0].name == "Z voice"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"format": 1, "identity": {}, "files": {}}',
        b"[1, 2]",
        b'{"format": 1, "identity": null, "files": {"voices/voices.yaml": {"stat": 1}}}',
    ],
)
def test_a_corrupt_or_foreign_declaration_cache_is_ignored(
    repo: VoiceRepo, tmp_path: Path, body: bytes
) -> None:
    repo.declare({"a": repo.voice("a")})
    path = tmp_path / "decl.json"
    path.write_bytes(body)
    assert load(repo, cache_for(repo, path)) == load(repo, None)


def test_a_hand_edited_cache_entry_is_ignored(repo: VoiceRepo, tmp_path: Path) -> None:
    repo.declare({"a": repo.voice("a")})
    path = tmp_path / "decl.json"
    cache = cache_for(repo, path)
    load(repo, cache)
    for entry in cache.entries.values():
        entry["declarations"][0][4] = "klingon"  # not a language voicectl knows
    cache.save()
    assert load(repo, cache_for(repo, path)) == load(repo, None)


def test_the_declaration_cache_belongs_to_one_voicectl_yaml(
    repo: VoiceRepo, tmp_path: Path
) -> None:
    repo.declare({"a": {"name": "A", "audio": repo.audio("a.wav"), "text": "Hi."}})
    path = tmp_path / "decl.json"
    cache = cache_for(repo, path)
    load(repo, cache)
    cache.save()
    repo.write_config(defaults={"language": "ja", "space": "7350000000000000001"})
    assert load(repo, cache_for(repo, path)).declarations[0].language == "ja"


def test_plan_writes_and_uses_the_declaration_cache(repo: VoiceRepo, run) -> None:
    file = repo.declare({"a": repo.voice("a")})
    past = time.time_ns() - 10**10
    os.utime(file, ns=(past, past))
    assert run(repo.root, "plan").exit_code == 0
    assert (repo.root / repository.DECLARATIONS_CACHE).is_file()


# --- the compiled schema check -------------------------------------------------------------


VALID_VOICES: list[Any] = [
    {"voices": {}},
    {"voices": {"a": {"name": "A", "audio": "a.wav", "text": "t", "space": 12}}},
]
INVALID_OR_DOUBTFUL_VOICES: list[Any] = [
    {},
    [],
    {"voices": {"A": {"name": "A", "audio": "a.wav", "text": "t"}}},
    {"voices": {"a": {"name": "", "audio": "a.wav", "text": "t"}}},
    {"voices": {"a": {"name": "A", "audio": "a.wav"}}},
    {"voices": {"a": {"name": "A", "audio": "a.wav", "text": "t", "protect": 1}}},
    {"voices": {"a": {"name": "A", "audio": "a.wav", "text": "t", "space": True}}},
    {"voices": {"a": {"name": "A", "audio": "a.wav", "text": "t", "space": "x1"}}},
    {"voices": {"a": {"name": "A", "audio": "a.wav", "text": "t", "language": "xx"}}},
    {"voices": {"a": {"name": "A", "audio": "a.wav", "text": "t", "extra": 1}}},
    {"voices": {"a": {"name": "A", "audio": "a.wav", "text": "t"}}, "more": 1},
]


@pytest.mark.parametrize("data", VALID_VOICES)
def test_the_compiled_check_passes_valid_declarations(data: Any) -> None:
    assert schemacheck.surely_valid("voices", data)
    assert not list(schemas.validator("voices").iter_errors(data))


@pytest.mark.parametrize("data", INVALID_OR_DOUBTFUL_VOICES)
def test_the_compiled_check_never_passes_what_jsonschema_refuses(data: Any) -> None:
    assert not schemacheck.surely_valid("voices", data)
    assert list(schemas.validator("voices").iter_errors(data))


def test_every_schema_compiles() -> None:
    for name in schemas.NAMES:
        assert schemacheck.checker(name) is not None, name


def test_an_unknown_keyword_leaves_the_check_to_jsonschema() -> None:
    assert schemacheck.compile_schema({"type": "object", "dependentRequired": {}}) is None
    check = schemacheck.compile_schema({"type": "integer", "minimum": 0})
    assert check is not None
    assert check(3) and not check(True) and not check(-1) and not check(1.0)


# --- libyaml's composer where it is safe -------------------------------------------------

YAML_CASES = [
    "voices:\n  a:\n    name: A\n    text: 'x: y'\n",
    "voices: {a: {name: A}, b: [1, 2.5, null, true, 2020-01-01]}\n",
    "a: 1\na: 2\n",
    "a: 1\n---\nb: 2\n",
    "a: [1, 2\n",
    "a: &x {b: 1}\nc: *x\n",
    "a: !!python/object:os.system x\n",
    "[" * 65 + "]" * 65 + "\n",
    "[" * 64 + "]" * 64 + "\n",
    "",
]


@pytest.mark.parametrize("text", YAML_CASES)
def test_the_c_composer_fast_path_agrees_with_the_careful_composer(text: str) -> None:
    from voicectl.files import yamlload

    fast = yamlload.load_text(text, "f.yaml")
    careful = yamlload.load_text(text, "f.yaml", fast=False)
    assert (fast.data, fast.values, fast.keys, fast.problems) == (
        careful.data,
        careful.values,
        careful.keys,
        careful.problems,
    )


def _valid_state() -> dict[str, Any]:
    from voicectl.model import State, TakeEntry, TakeRef, VoiceRecord
    from voicectl.state import statefile as state

    sha = "a" * 64
    record = VoiceRecord(
        "narrator",
        "7400000000000000001",
        "7350000000000000001",
        "Narrator",
        "en",
        "Hello.",
        None,
        TakeRef(sha, "audio/n.wav", "wav", 1000, 12.5, "b" * 40),
        1,
        False,
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z",
    )
    entry = TakeEntry("7400000000000000001", "narrator", 1, "2026-01-01T00:00:00Z")
    current = State(
        "12345678-1234-1234-1234-123456789abc",
        3,
        voices={"narrator": record},
        takes={sha: (entry,)},
    )
    return state.to_json(current)


STATE_MUTATIONS: list[tuple[str, Any]] = [
    ("voices.narrator.voice_id", "abc"),
    ("voices.narrator.clones_used", 11),
    ("voices.narrator.clones_used", True),
    ("voices.narrator.audio.format", "flac"),
    ("voices.narrator.audio.git_blob", "not-a-blob"),
    ("voices.narrator.audio.duration", -1),
    ("voices.narrator.audio.size", 1.5),
    ("voices.narrator.extra", 1),
    ("voices.narrator.protect", "no"),
    ("lineage", "nope"),
    ("serial", -1),
    ("format_version", 3),
    ("orphans", {}),
]


@pytest.mark.parametrize(("where", "value"), STATE_MUTATIONS)
def test_the_compiled_state_check_never_passes_what_jsonschema_refuses(
    where: str, value: Any
) -> None:
    data = _valid_state()
    assert schemacheck.surely_valid("state", data)
    assert not list(schemas.validator("state").iter_errors(data))
    *parents, last = where.split(".")
    target = data
    for part in parents:
        target = target[part]
    target[last] = value
    assert not schemacheck.surely_valid("state", data)
    assert list(schemas.validator("state").iter_errors(data))


def test_a_state_without_git_blobs_is_still_read(tmp_path: Path) -> None:
    """States written before git_blob existed stay readable (the field is optional)."""
    from voicectl.state import statefile as state

    data = _valid_state()
    del data["voices"]["narrator"]["audio"]["git_blob"]
    path = tmp_path / "state.json"
    path.write_text(json.dumps(data))
    loaded = state.load(path, "state.json")
    assert loaded is not None
    assert loaded.voices["narrator"].take.git_blob == ""
    assert "git_blob" not in state.to_json(loaded)["voices"]["narrator"]["audio"]


def test_every_cache_keeps_voicectl_s_folder_out_of_git(repo: VoiceRepo, run) -> None:
    """Whichever cache is written first (declarations, state check, takes), git ignores
    ``.voicectl/`` in a repository that has no .gitignore of its own; before, only the
    take cache wrote it, so the others showed up in `git status`."""
    from voicectl.files.cache import write_cache

    for name in ("declarations.json", "state-checked.json", "takes.json"):
        folder = repo.root / f"fresh-{name}" / ".voicectl"
        write_cache(folder / "cache" / name, b"{}")
        assert (folder / ".gitignore").read_text() == "*\n"
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "validate").exit_code == 0
    assert (repo.root / ".voicectl" / ".gitignore").read_text() == "*\n"
