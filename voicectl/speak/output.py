"""Where `voicectl speak` writes audio: anywhere the operator names, except over what the
voice repository is made of.

A speech is billed, so OUT is checked before it is asked for, not after: never a file
of the repository (a take, declared or recorded in the state, orphans' too; a
declaration file; the configuration; the state, its journal and lock; any file git
tracks), never inside ``.voicectl/`` or any ``.git/``, told by the file's identity (so a
link, ``..``, a hard link or a case-folding file system cannot alias one), and its
directory must be one a file can be written in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from voicectl.declare import gitrepo
from voicectl.declare.config import CONFIG_FILE, Config
from voicectl.errors import UsageError
from voicectl.files.atomic import write_atomic
from voicectl.model import DesiredVoice, State
from voicectl.plan import repository


@dataclass(frozen=True)
class Repository:
    """The repository as speak sees it: its declared voices, and the files it is made of."""

    root: Path
    voices: dict[str, DesiredVoice]  # by address
    files: tuple[Path, ...]
    errors: int  # in the declarations: their voices are not among ``voices``


def read(cfg: Config, current: State) -> Repository:
    snapshot = repository.read(cfg, recorded=current)
    voices = {v.decl.address: v for v in snapshot.desired}
    state = cfg.state_path
    records = (*current.voices.values(), *current.orphans)
    made_of = (
        cfg.root / CONFIG_FILE,
        state,
        state.with_name(state.name + ".journal"),
        state.with_name(state.name + ".lock"),
        *(cfg.root / f for f in snapshot.files),
        *(cfg.root / d.take.path for d in voices.values()),
        *(cfg.root / r.take.path for r in records),  # an applied take, declared or not
    )
    return Repository(cfg.root, voices, made_of, len(snapshot.errors))


def check(repo: Repository, out: Path, shown: str) -> None:
    """Refuse ``out`` (shown as ``shown``) when it is part of the repository, or cannot
    be written; make its directory."""
    where = out.resolve()
    root = repo.root.resolve()
    inside = where.is_relative_to(root)
    if ".git" in where.parts or (inside and ".voicectl" in where.relative_to(root).parts):
        raise UsageError(f"{shown}: is inside .git/ or .voicectl/: name a file elsewhere")
    if where.is_dir():
        raise UsageError(f"{shown}: is a directory; -o names a file (--all writes into one)")
    if out.is_symlink() or (where.exists() and not where.is_file()):
        # A device (/dev/null), a FIFO or a link would be replaced by a regular file, not
        # written through: as root, a system's node.
        raise UsageError(
            f"{shown}: is a link, a device or a FIFO; voicectl writes a regular file "
            "(`-o -` writes to standard output, to pipe it)"
        )
    if where in {p.resolve() for p in repo.files} or (
        where.exists() and (_same_as_any(where, repo.files) or gitrepo.tracked(root, where))
    ):
        raise UsageError(
            f"{shown}: is part of the voice repository (a take, a declaration, the "
            "configuration, the state, or a file git tracks): name another file"
        )
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{shown}: cannot make its directory: {exc.strerror}") from None
    if not os.access(where.parent, os.W_OK | os.X_OK):
        raise UsageError(f"{shown}: its directory cannot be written in")


def _same_as_any(where: Path, files: tuple[Path, ...]) -> bool:
    try:
        mine = where.stat()
    except OSError:
        return False
    for path in files:
        try:
            theirs = path.stat()
        except OSError:
            continue
        if (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino):
            return True
    return False


def write(out: Path, shown: str, audio: bytes) -> None:
    try:
        write_atomic(out, audio, durable=False)
    except OSError as exc:
        raise UsageError(f"{shown}: cannot write the audio: {exc.strerror}") from None
