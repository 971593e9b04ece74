"""Reading a voice repository from disk into the planner's inputs.

The one place that strings together config, declarations, audio inspection (with its
cache) and the state; the CLI calls it, the planner never sees a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from voicectl import audio, config, state
from voicectl.errors import Problem, ValidationFailed
from voicectl.hashing import TakeCache
from voicectl.model import DesiredVoice, State

CACHE_FILE = Path(".voicectl") / "cache" / "takes.json"


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


def read(cfg: config.Config, *, use_cache: bool = True) -> Snapshot:
    """Load declarations and inspect their takes; problems are collected, not raised."""
    loaded = config.load_declarations(cfg)
    cache = TakeCache(cfg.root / CACHE_FILE if use_cache else None)
    inspection = audio.inspect(cfg.root, loaded.declarations, cache)
    cache.save()
    desired = [
        DesiredVoice(d, inspection.takes[d.audio])
        for d in loaded.declarations
        if d.audio in inspection.takes
    ]
    problems = sorted([*loaded.problems, *inspection.problems])
    return Snapshot(cfg, desired, problems, loaded.files)


def read_valid(cfg: config.Config) -> Snapshot:
    """Like :func:`read`, but any error stops here with every problem listed."""
    snapshot = read(cfg)
    if snapshot.errors:
        raise ValidationFailed(snapshot.problems)
    return snapshot


def load_state(cfg: config.Config) -> tuple[State, bool]:
    """The repository's state as last written, or a fresh empty one (flag: it existed)."""
    current = state.load(cfg.state_path, cfg.state)
    if current is None:
        return state.new_state(), False
    return current, True


def effective_state(cfg: config.Config) -> tuple[State, str]:
    """For read-only commands: the state with an interrupted apply's journal replayed in
    memory (so completed clones are not planned again), and a warning if there was one."""
    from voicectl.recovery import pending_warning

    current, _ = load_state(cfg)
    return pending_warning(cfg.state_path, current)
