"""What git knows about the repository, asked of the ``git`` command; never required.

Every function answers "" (or nothing) when git is absent or the repository is not a
git work tree: voicectl works the same without git, it only records less.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def _git(root: Path, *args: str) -> str:
    exe = shutil.which("git")
    if exe is None:
        return ""
    try:
        done = subprocess.run(
            [exe, "-C", str(root), *args],
            capture_output=True,
            text=True,
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
