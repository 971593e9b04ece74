"""Running one measured process: its wall time, CPU time and peak RSS, or why it failed.

Shared by the scale benchmark and its profiles (``bench.scale``, ``bench.profiles``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

STATE = "state/voicectl.state.json"
TOKEN = "pat_bench"


class BenchError(Exception):
    """A command failed or gave a wrong answer: the figures cannot be trusted."""


@dataclass(frozen=True)
class Proc:
    """One finished process: wall time, CPU time (user + system), peak RSS, output."""

    wall: float
    cpu: float
    rss_mb: float
    code: int
    out: str
    err: str


def run(cmd: Sequence[str], env: dict[str, str], codes: Sequence[int] = (0,)) -> Proc:
    """Run ``cmd`` to completion; its own rusage comes from wait4, not from all children."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if code not in codes:
        tail = (errors or text)[-2000:]
        raise BenchError(f"{' '.join(cmd)} exited {code} (expected {list(codes)}):\n{tail}")
    return Proc(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code, text, errors)


def clear_cache(root: Path) -> None:
    shutil.rmtree(root / ".voicectl", ignore_errors=True)
