"""A lock on the state: one apply (or state command) at a time.

The lock file ``<state>.lock`` names its holder (user, host, pid, time, command). A second
writer fails at once naming the holder. A lock left by a process that is gone on this
same host is taken over with a notice; any other stale lock needs `voicectl force-unlock`.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from voicectl.errors import StateError


def lock_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


def holder(command: str, at: str) -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {
        "user": user,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "time": at,
        "command": command,
    }


def describe(info: dict[str, Any]) -> str:
    return (
        f"{info.get('user', '?')}@{info.get('host', '?')} pid {info.get('pid', '?')} since "
        f"{info.get('time', '?')} running `{info.get('command', '?')}`"
    )


def read_holder(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _create(path: Path, info: dict[str, Any]) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(info, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    return True


@contextlib.contextmanager
def locked(
    state_path: Path, command: str, at: str, notice: Callable[[str], None]
) -> Iterator[None]:
    path = lock_path(state_path)
    me = holder(command, at)
    if not _create(path, me):
        other = read_holder(path) or {}
        pid = other.get("pid")
        if other.get("host") == me["host"] and isinstance(pid, int) and not _alive(pid):
            notice(f"taking over a stale lock: {describe(other)} (that process is gone)")
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            if not _create(path, me):
                raise StateError(
                    f"{path}: the state is locked by another voicectl that just started; try again"
                )
        else:
            raise StateError(
                f"the state is locked by {describe(other)}; if that run is "
                "gone, clear the lock with `voicectl force-unlock`"
            )
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def force_unlock(state_path: Path) -> dict[str, Any] | None:
    """Remove the lock, whoever holds it; returns who did."""
    path = lock_path(state_path)
    info = read_holder(path)
    if info is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return info
