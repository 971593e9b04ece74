"""Run one voicectl command under cProfile, every thread included.

    python bench/profile_child.py OUT -- [voicectl arguments]

``python -m cProfile`` sees the main thread only, and apply clones on worker threads, so
here each thread gets its own profiler. Writes ``OUT.main.prof`` (the main thread,
imports included: its cumulative times add up to the wall time) and, when threads ran,
``OUT.threads.prof`` (all other threads merged: their times overlap one another).
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
from pathlib import Path
from typing import Any

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_thread_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    profile = cProfile.Profile()
    with _lock:
        _profiles.append(profile)
    profile.enable()
    try:
        _thread_run(self)
    finally:
        profile.disable()


def main(argv: list[str]) -> None:
    out, args = Path(argv[0]), argv[argv.index("--") + 1 :]
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    profile = cProfile.Profile()
    code: Any = 0
    profile.enable()
    try:
        from voicectl.cli import main as voicectl

        voicectl(args)
    except SystemExit as exc:
        code = exc.code
    finally:
        profile.disable()
    profile.dump_stats(f"{out}.main.prof")
    with _lock:
        threads = list(_profiles)
    if threads:
        merged = pstats.Stats(threads[0])
        for other in threads[1:]:
            merged.add(other)
        merged.dump_stats(f"{out}.threads.prof")
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
