"""What git knows about the repository, asked of the ``git`` command; never required.

Every function answers "" (or nothing) when git is absent or the repository is not a
git work tree: voicectl works the same without git, it only records less.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path


def _git(root: Path, *args: str) -> str:
    """git's output as text, stripped, or "" when git is absent or fails."""
    out = _git_bytes(root, *args, timeout=10)
    return "" if out is None else out.decode("utf-8", "surrogateescape").strip()


def head(root: Path) -> str:
    """The commit checked out at ``root`` (40 hex digits), or ""."""
    commit = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    return commit if len(commit) >= 40 and all(c in "0123456789abcdef" for c in commit) else ""


def remote_url(root: Path, name: str) -> str:
    """The URL of the remote ``name`` of the checkout at ``root``, or ""."""
    return _git(root, "config", "--get", f"remote.{name}.url")


def branch(root: Path) -> str:
    """The branch checked out at ``root``, or "" (none, or not a git work tree)."""
    return _git(root, "symbolic-ref", "--quiet", "--short", "HEAD")


def top_level(root: Path) -> str:
    """The top directory of the git work tree ``root`` is in, or ""."""
    return _git(root, "rev-parse", "--show-toplevel")


def tracked(root: Path, path: Path) -> bool:
    """Whether git tracks the file at ``path`` in the work tree ``root`` is in."""
    return bool(_git_bytes(root, "ls-files", "-z", "--", str(path), timeout=10))


def uncommitted(root: Path, paths: Sequence[str]) -> bool | None:
    """Whether any of ``paths`` (relative to ``root``: an apply's inputs) differs from the
    commit checked out: changed, staged or not; not tracked (new, or ignored, so in no
    commit); inside a submodule with changes; or, for a file git was told to stop looking
    at (assume-unchanged, skip-worktree), different from its blob. A path is looked at as
    given and through any symbolic link to where it leads (outside the work tree: not
    committed). Other files (a saved plan, an editor's backup) are not inputs. None when
    git cannot tell. Read-only: ``--no-optional-locks`` leaves the index as it is.
    """
    if not paths:
        return False
    top = top_level(root)
    if not top or shutil.which("git") is None:
        return None
    base = Path(top).resolve()
    inputs: set[str] = set()
    for path in paths:
        given = Path(os.path.realpath(root)) / path
        for where in (given, Path(os.path.realpath(given))):
            try:
                inputs.add(where.relative_to(base).as_posix())
            except ValueError:
                return True  # leads outside the work tree: in no commit of it
    status = _git_bytes(
        base,
        "--no-optional-locks",
        "status",
        "--porcelain",
        "-z",
        "--untracked-files=normal",
        "--ignore-submodules=none",
    )
    listing = _git_bytes(base, "ls-files", "-z", "-s", "-v")
    if status is None or listing is None:
        return None
    changed = _status_paths(status)
    if any(_within(path, changed) for path in inputs):
        return True
    index = _index(listing)
    gitlinks = {path for path, (_, mode, _) in index.items() if mode == "160000"}
    unseen = [path for path in inputs if path not in index and not _within(path, gitlinks)]
    if unseen:
        return True  # never committed: new and untracked, or ignored
    return _hidden_changes(base, inputs, index)


def _index(listing: bytes) -> dict[str, tuple[str, str, str]]:
    """``git ls-files -z -s -v`` read: path to (tag, mode, blob)."""
    index: dict[str, tuple[str, str, str]] = {}
    for entry in listing.split(b"\0"):
        if b"\t" in entry:
            head, name = entry.split(b"\t", 1)
            tag, mode, blob, _ = head.decode().split(" ")
            index[os.fsdecode(name)] = (tag, mode, blob)
    return index


def _hidden_changes(
    base: Path, inputs: set[str], index: dict[str, tuple[str, str, str]]
) -> bool | None:
    """Whether a file git was told to stop looking at (assume-unchanged: a lower-case
    tag; skip-worktree: S) differs from its blob; None when git cannot tell."""
    flagged = sorted(
        path
        for path in inputs
        if path in index and (index[path][0].islower() or index[path][0] == "S")
    )
    if not flagged:
        return False
    hashed = _git_bytes(base, "hash-object", "--", *flagged)
    if hashed is None:
        return None
    blobs = hashed.decode().split()
    if len(blobs) != len(flagged):
        return None
    return any(blob != index[path][2] for path, blob in zip(flagged, blobs, strict=True))


def _status_paths(status: bytes) -> set[str]:
    """The paths ``git status --porcelain -z`` names (a rename's both), untracked
    directories with their trailing slash."""
    found: set[str] = set()
    fields = status.split(b"\0")
    i = 0
    while i < len(fields):
        field = fields[i]
        i += 1
        if len(field) < 4:
            continue
        found.add(os.fsdecode(field[3:]))
        if field[:1] in (b"R", b"C"):  # the path it came from follows
            if i < len(fields):
                found.add(os.fsdecode(fields[i]))
            i += 1
    return found


def _worktree_changes(status: bytes, prefix: bytes) -> set[bytes]:
    """The paths, relative to where ``prefix`` leads, whose work-tree copy differs from
    the index, from ``git status --porcelain -z`` (second column; a rename's source,
    which follows it, skipped)."""
    found: set[bytes] = set()
    fields = iter(status.split(b"\0"))
    for field in fields:
        if len(field) < 4:
            continue
        if field[:1] in (b"R", b"C"):
            next(fields, None)
        if field[1:2] != b" " and field[3:].startswith(prefix):
            found.add(field[3 + len(prefix) :])
    return found


def _within(path: str, names: set[str]) -> bool:
    """Whether ``path`` is one of ``names`` or below one of them (a directory)."""
    if path in names:
        return True
    parts = path.split("/")
    return any(
        "/".join(parts[:n]) in names or "/".join(parts[:n]) + "/" in names
        for n in range(1, len(parts))
    )


def _git_bytes(
    root: Path, *args: str, timeout: float = 120, stdin: bytes | None = None
) -> bytes | None:
    """git's output as bytes (paths need not be UTF-8), or None when git fails."""
    exe = shutil.which("git")
    if exe is None:
        return None
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PATHSPECS")}
    env["GIT_LITERAL_PATHSPECS"] = "1"  # a path is a name, never a pattern
    try:
        done = subprocess.run(
            [exe, "-C", str(root), *args],
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
            env=env,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def blobs(root: Path, blob_ids: Iterable[str], limit: int) -> dict[str, bytes]:
    """The content of each git blob of ``blob_ids`` the repository holds, by id, those
    over ``limit`` bytes left out: two git processes in all (sizes, then contents)."""
    wanted = sorted({b for b in blob_ids if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", b)})
    if not wanted:
        return {}
    sizes = _git_bytes(root, "cat-file", "--batch-check", stdin="\n".join(wanted).encode())
    small = []
    for line in (sizes or b"").splitlines():
        oid, kind, *rest = line.decode("ascii", "replace").split()
        if kind == "blob" and rest and rest[0].isdigit() and int(rest[0]) <= limit:
            small.append(oid)
    if not small:
        return {}
    out = _git_bytes(root, "cat-file", "--batch", stdin="\n".join(small).encode()) or b""
    found, at = {}, 0
    for oid in small:  # "<oid> blob <size>\n<content>\n", in the order asked
        end = out.find(b"\n", at)
        header = out[at:end].split()
        if len(header) != 3 or header[1] != b"blob":
            break
        length = int(header[2])
        found[oid] = out[end + 1 : end + 1 + length]
        at = end + 1 + length + 1
    return found


class CleanBlobs:
    """The blob id of every tracked regular file under ``root`` whose work-tree copy git
    reports unmodified, by path relative to ``root``; {} when git cannot tell.

    Three questions, asked once for the whole tree and started together as soon as the
    object is made, so that git works while voicectl parses YAML: ``ls-files --stage``
    gives the index's blob ids, ``status`` the files whose work-tree copy differs from
    the index, ``rev-parse --show-prefix`` where ``root`` is in the work tree (status
    names paths from its top). Read-only (``--no-optional-locks``). ``status``, unlike
    ``diff-files``, compares content wherever stat data differs: a take whose inode
    changed but not its bytes (hard-linked, touched, copied back) is clean, as git
    itself says. A file marked assume-unchanged or skip-worktree
    is left out, since git no longer looks at it, and so is anything in a merge conflict.
    A file git calls clean holds exactly its blob's content after git's own filters (for
    Git LFS, the blob is the pointer).
    """

    def __init__(self, root: Path) -> None:
        self.children: list[subprocess.Popen[bytes]] = []
        exe = shutil.which("git")
        if exe is None:
            return
        questions = (
            ["ls-files", "--stage", "-v", "-z"],
            [
                "--no-optional-locks",
                "status",
                "--porcelain",
                "-z",
                "--untracked-files=no",
                "--ignore-submodules=all",
                "--",
                ".",
            ],
            ["rev-parse", "--show-prefix"],
        )
        try:
            for args in questions:
                self.children.append(
                    subprocess.Popen(
                        [exe, "-C", str(root), *args],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                    )
                )
        except OSError:
            self.close()

    def _answers(self) -> list[bytes] | None:
        if len(self.children) != 3:
            return None
        answers = []
        for child in self.children:
            try:
                out, _ = child.communicate(timeout=120)
            except subprocess.SubprocessError:
                return None
            if child.returncode != 0:
                return None
            answers.append(out)
        return answers

    def result(self) -> dict[str, str]:
        try:
            answers = self._answers()
        finally:
            self.close()
        if answers is None:
            return {}
        listing, status, prefix = answers
        dirty = _worktree_changes(status, prefix.rstrip(b"\n"))
        blobs: dict[str, str] = {}
        for item in listing.split(b"\0"):
            info, _, name = item.partition(b"\t")
            parts = info.split(b" ")
            if len(parts) != 4 or parts[0] != b"H" or parts[3] != b"0" or name in dirty:
                continue
            if parts[1] not in (b"100644", b"100755"):  # symlinks, submodules
                continue
            try:
                blobs[name.decode()] = parts[2].decode("ascii")
            except UnicodeDecodeError:
                continue
        return blobs

    def close(self) -> None:
        """Stop and reap whatever is still running (the answer was not needed)."""
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
        self.children = []


def clean_blobs(root: Path) -> dict[str, str]:
    """See :class:`CleanBlobs`: asked and answered at once."""
    return CleanBlobs(root).result()
