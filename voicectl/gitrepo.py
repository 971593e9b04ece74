"""What git knows about the repository, asked of the ``git`` command; never required.

Every function answers "" (or nothing) when git is absent or the repository is not a
git work tree: voicectl works the same without git, it only records less.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path


def _git(root: Path, *args: str) -> str:
    exe = shutil.which("git")
    if exe is None:
        return ""
    try:
        done = subprocess.run(
            [exe, "-C", str(root), *args],
            capture_output=True,
            encoding="utf-8",
            errors="surrogateescape",  # a path git prints need not be UTF-8
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def head(root: Path) -> str:
    """The commit checked out at ``root`` (40 hex digits), or ""."""
    commit = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    return commit if len(commit) >= 40 and all(c in "0123456789abcdef" for c in commit) else ""


def remote_url(root: Path, name: str) -> str:
    """The URL of the remote ``name`` of the checkout at ``root``, or ""."""
    return _git(root, "config", "--get", f"remote.{name}.url")


def top_level(root: Path) -> str:
    """The top directory of the git work tree ``root`` is in, or ""."""
    return _git(root, "rev-parse", "--show-toplevel")


def uncommitted(root: Path, paths: Sequence[str]) -> bool | None:
    """Whether any of ``paths`` (relative to ``root``: an apply's inputs) differs from the
    commit checked out: changed, staged or not, or a file git does not track (and does not
    ignore). Other files (a saved plan, an editor's backup) are not the apply's inputs.
    None when git cannot tell. Read-only: ``--no-optional-locks`` leaves the index as it is.
    """
    exe = shutil.which("git")
    if exe is None or not paths:
        return None if exe is None else False
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PATHSPECS")}
    env["GIT_LITERAL_PATHSPECS"] = "1"  # a path is a name, never a pattern
    status = [exe, "--no-optional-locks", "-C", str(root), "status", "--porcelain", "-z"]
    status += ["--untracked-files=normal", "--ignored=no", "--"]
    for batch in _batches(paths):  # git status reads pathspecs from its arguments only
        try:
            done = subprocess.run(
                [*status, *batch], capture_output=True, timeout=120, check=False, env=env
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode != 0:
            return None
        if done.stdout:
            return True
    return False


def _batches(paths: Sequence[str], budget: int = 64_000) -> list[list[str]]:
    """``paths`` in argument lists well under any system's limit on a command's length."""
    batches: list[list[str]] = [[]]
    size = 0
    for path in paths:
        if batches[-1] and size + len(path) + 1 > budget:
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += len(path.encode()) + 1
    return batches


class CleanBlobs:
    """The blob id of every tracked regular file under ``root`` whose work-tree copy git
    reports unmodified, by path relative to ``root``; {} when git cannot tell.

    Two cheap questions, asked once for the whole tree and started together as soon as
    the object is made, so that git works while voicectl parses YAML: ``ls-files
    --stage`` gives the index's blob ids, ``diff-files`` the files whose work-tree copy
    differs from the index (read-only: it compares stat data, and content where stat
    cannot decide, as on a fresh clone). A file marked assume-unchanged or skip-worktree
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
            ["diff-files", "--name-only", "--relative", "-z"],
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
        if len(self.children) != 2:
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
        listing, modified = answers
        dirty = set(modified.split(b"\0"))
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
