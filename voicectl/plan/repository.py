"""Reading a voice repository from disk into the planner's inputs.

The one place that strings together config, declarations, audio inspection (with its
cache) and the state; the CLI calls it, the planner never sees a file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from voicectl import __version__
from voicectl.coze.replies import Seal
from voicectl.declare import audio, config, gitrepo
from voicectl.declare.declarations import load_declarations
from voicectl.declare.declcache import DeclarationCache
from voicectl.declare.hashing import TakeCache, sha256_file
from voicectl.errors import ConfigError, Problem, ValidationFailed
from voicectl.files import schemas
from voicectl.model import DesiredVoice, State
from voicectl.state import pending
from voicectl.state import statefile as state
from voicectl.state.journal import journal_path
from voicectl.state.store import StateStore, for_repository

CACHE_FILE = Path(".voicectl") / "cache" / "takes.json"
DECLARATIONS_CACHE = Path(".voicectl") / "cache" / "declarations.json"


@dataclass
class Snapshot:
    """Everything read from the repository for one command."""

    config: config.Config
    desired: list[DesiredVoice] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def open_config(start: Path) -> config.Config:
    root = config.find_root(start)
    cfg, problems = config.load_config(root)
    if problems:
        raise ValidationFailed(problems)
    return cfg


def read(cfg: config.Config, *, use_cache: bool = True, recorded: State | None = None) -> Snapshot:
    """Load declarations and inspect their takes; problems are collected, not raised.

    With the ``recorded`` state, takes it knows by git blob id are trusted unread when
    git reports them clean (see :func:`audio.inspect`). ``use_cache=False`` reads every
    file afresh: no cache, no git.
    """
    blobs = _early_blobs(cfg, use_cache, recorded)
    try:
        declarations = DeclarationCache(
            cfg.root / DECLARATIONS_CACHE if use_cache else None, _cache_identity(cfg)
        )
        loaded = load_declarations(cfg, declarations)
        declarations.save()
        cache = TakeCache(cfg.root / CACHE_FILE if use_cache else None)
        refs = (
            []
            if recorded is None
            else [r.take for r in (*recorded.voices.values(), *recorded.orphans)]
        )
        inspection = audio.inspect(
            cfg.root,
            loaded.declarations,
            cache,
            recorded=refs,
            blobs=_blob_source(cfg, use_cache, blobs),
        )
        cache.save()
    finally:
        if blobs is not None:
            blobs.close()
    desired = [
        DesiredVoice(d, inspection.takes[d.audio])
        for d in loaded.declarations
        if d.audio in inspection.takes
    ]
    takes = inspection.problems
    if cfg.strict_takes:  # CI's choice: a questionable take stops the plan
        takes = [
            replace(p, severity="error", message=f"{p.message} (policy.strict_takes)")
            if p.severity == "warning"
            else p
            for p in takes
        ]
    problems = sorted([*loaded.problems, *takes])
    return Snapshot(cfg, desired, problems, loaded.files)


def _early_blobs(
    cfg: config.Config, use_cache: bool, recorded: State | None
) -> gitrepo.CleanBlobs | None:
    """Ask git right away when it will surely be needed (no take cache yet, as on a fresh
    clone, and a state that records blob ids): git then works while YAML is parsed."""
    if not use_cache or recorded is None or (cfg.root / CACHE_FILE).exists():
        return None
    if not any(r.take.git_blob for r in recorded.voices.values()):
        return None
    return gitrepo.CleanBlobs(cfg.root)


def _blob_source(
    cfg: config.Config, use_cache: bool, early: gitrepo.CleanBlobs | None
) -> Callable[[], Mapping[str, str]] | None:
    if early is not None:
        return early.result
    return (lambda: gitrepo.clean_blobs(cfg.root)) if use_cache else None


def _cache_identity(cfg: config.Config) -> dict[str, str]:
    """What every cached declaration depends on besides its own file."""
    schema = schemas.digest("voices")
    return {"voicectl": __version__, "config": cfg.digest, "schema": schema}


def read_valid(cfg: config.Config, recorded: State | None = None) -> Snapshot:
    """Like :func:`read`, but any error stops here with every problem listed."""
    snapshot = read(cfg, recorded=recorded)
    if snapshot.errors:
        raise ValidationFailed(snapshot.problems)
    return snapshot


def home(cfg: config.Config, *, migrating: bool = False) -> StateStore:
    """The store the repository's state lives in (its file, or PostgreSQL), which records
    the commit checked out with each version it keeps.

    With the state in PostgreSQL, a state file left in the repository is refused (but by
    `state migrate`): nothing would read it, and every voice it records but the database
    does not would be planned, and cloned, again."""
    if cfg.pg is not None and not migrating and os.path.lexists(cfg.state_path):
        raise ConfigError(
            f"{cfg.state}: a state file is here, but voicectl.yaml keeps the state in "
            "PostgreSQL (backend.pg): it would not be read, and the voices it records "
            "would be cloned again. If it was copied there (`voicectl state migrate --to "
            "pg`), `git rm` it; if not, copy it first"
        )
    return for_repository(cfg, lambda: gitrepo.head(cfg.root))


def load_state(cfg: config.Config) -> tuple[State, bool]:
    """The repository's state as last written, or a fresh empty one (flag: it existed),
    read from its store."""

    current = home(cfg).read()
    if current is None:
        return state.new_state(), False
    return current, True


def interrupted(cfg: config.Config, ours: Seal | None = None) -> pending.Interrupted:
    """What read-only commands see of an interrupted apply (see
    :func:`voicectl.state.pending.seen`): from the runner's journal, or the one the store
    keeps. Nothing is written."""
    store = home(cfg)
    stored = store.read() or state.new_state()
    if not store.keeps_journal:
        if os.path.lexists(journal_path(cfg.state_path)):
            return pending.seen(cfg.state_path, stored, ours)
        return pending.Interrupted(stored)  # the common case
    # The store's journal is the journal (a file here is a copy, or stale: apply sees).
    lines = store.journal_lines()
    if not lines:
        return pending.Interrupted(stored)
    # Another runner's, kept in the store (PostgreSQL): read from a copy.
    with tempfile.TemporaryDirectory(prefix="voicectl-journal-") as scratch:
        shadow = Path(scratch) / cfg.state_path.name
        journal_path(shadow).write_bytes(b"".join(lines))
        return pending.seen(shadow, stored, ours, f"the journal kept in {store.display}")


def effective_state(cfg: config.Config, ours: Seal | None = None) -> tuple[State, str]:
    """For read-only commands: the state with an interrupted apply's journal replayed in
    memory (so completed clones are not planned again), and a warning if there was one."""
    seen = interrupted(cfg, ours)
    return seen.state, seen.warning


def with_blobs(cfg: config.Config, current: State) -> State:
    """The state with the git blob id of each voice's take that git reports clean and
    whose bytes are the recorded take (checked through the local cache, else read), so
    that a fresh clone trusts it unread. Nothing is written here."""
    blobs = gitrepo.clean_blobs(cfg.root)
    if not blobs:
        return current
    cache = TakeCache(cfg.root / CACHE_FILE)
    voices = dict(current.voices)
    for address, record in current.voices.items():
        take = record.take
        blob = blobs.get(take.path)
        if blob is None or blob == take.git_blob or not record.verified:
            continue
        if _holds(cfg.root, take.path, take.sha256, take.size, cache):
            voices[address] = replace(record, take=replace(take, git_blob=blob))
    return current if voices == current.voices else replace(current, voices=voices)


def _holds(root: Path, relative: str, sha256: str, size: int, cache: TakeCache) -> bool:
    """Whether the regular file at ``relative`` is ``size`` bytes hashing to ``sha256``."""
    try:
        st = os.lstat(root / relative)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != size:
        return False
    facts = cache.get(relative, st)
    if facts is not None:
        return bool(facts["sha256"] == sha256)
    try:
        return sha256_file(root / relative) == sha256
    except OSError:
        return False
