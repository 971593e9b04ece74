"""Helpers for the bad-input catalogue: located findings, untouched trees, audited I/O.

``audited()`` records, through a Python audit hook (PEP 578), every file the process
opens and every socket it resolves or connects while the block runs. It proves what
voicectl does *not* touch (a 10 GB take, a FIFO, a file outside the repository, the
network) without timing anything and without patching voicectl.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import Result

FINDING = re.compile(
    r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<column>\d+): (?P<severity>error|warning):"
    r"(?: (?P<field>[^\s:]+):)? (?P<message>.*)$"
)
# The hash cache (.voicectl/cache, with the .gitignore that keeps .voicectl/ out of
# git) is local and git-ignored; it is the one thing a read-only command may write.
CACHE = ".voicectl"


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    column: int
    severity: str
    field: str
    message: str


def findings(output: str) -> list[Finding]:
    found = []
    for line in output.splitlines():
        match = FINDING.match(line)
        if match:
            found.append(
                Finding(
                    match["file"],
                    int(match["line"]),
                    int(match["column"]),
                    match["severity"],
                    match["field"] or "",
                    match["message"],
                )
            )
    return found


@dataclass(frozen=True)
class Expect:
    """One finding as the user must see it: where, which field, and what it says."""

    file: str
    line: int
    column: int
    field: str
    says: str
    severity: str = "error"


def assert_no_crash(result: Result) -> None:
    assert "Traceback" not in result.output, result.output
    assert "unexpected error" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output


def assert_reported(result: Result, expected: Expect) -> None:
    """Exit status by severity, and exactly one finding: the expected one."""
    assert_no_crash(result)
    assert result.exit_code == (1 if expected.severity == "error" else 0), result.output
    got = findings(result.output)
    assert len(got) == 1, result.output
    (finding,) = got
    assert (finding.file, finding.line, finding.column, finding.field, finding.severity) == (
        expected.file,
        expected.line,
        expected.column,
        expected.field,
        expected.severity,
    ), result.output
    assert expected.says in finding.message, result.output
    assert len(result.output) < 2000, "a message must not echo a huge input"


def assert_one_error(result: Result, *says: str) -> None:
    """A non-validation user error: exit 1, one `Error:` message saying all of ``says``."""
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    assert result.output.count("Error") == 1, result.output
    message = result.output[result.output.index("Error") :]
    for part in says:
        assert part in message, result.output


def tree(root: Path) -> dict[str, tuple[Any, ...]]:
    """Kind, size, mtime and content digest of everything under ``root`` (links unfollowed).

    Large files are compared by stat only, so a sparse 10 GB take is never read here
    either; the hash cache is left out (see CACHE).
    """
    found: dict[str, tuple[Any, ...]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            relative = path.relative_to(root).as_posix()
            if CACHE in path.relative_to(root).parts:
                continue
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[relative] = ("dir",)
            elif stat.S_ISREG(st.st_mode) and st.st_size <= 1 << 20:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[relative] = ("file", st.st_size, st.st_mtime_ns, digest)
            else:
                found[relative] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns)
    return found


@dataclass
class Audit:
    opened: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)

    def touched(self, path: Path) -> bool:
        """Whether ``path`` (or the file it names through links) was opened."""
        targets = {os.fspath(path), os.path.realpath(path)}
        return any(o in targets or os.path.realpath(o) in targets for o in self.opened)


_ACTIVE: list[Audit] = []


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _ACTIVE:
        return
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _ACTIVE[-1].opened.append(os.fsdecode(args[0]))
    elif event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
        _ACTIVE[-1].network.append(f"{event} {args[1] if event == 'socket.connect' else args[0]}")


sys.addaudithook(_hook)


@contextlib.contextmanager
def audited() -> Iterator[Audit]:
    audit = Audit()
    _ACTIVE.append(audit)
    try:
        yield audit
    finally:
        _ACTIVE.remove(audit)
