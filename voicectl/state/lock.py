"""A lock on the state: one apply (or state command) at a time.

The lock is the operating system's (``flock`` on ``<state>.lock``): it is held while the
process lives and freed by the kernel the moment it ends, even by kill -9, so a dead
holder's lock is free at once and there is no takeover step for two processes to race
through. The holder's details (user, host, pid, time, command) are written inside the
file, for the message a second writer gets; the file is removed when the lock is
released. A lock file nobody holds (left by a crash, or empty after a full disk) is
simply taken. The same lock is taken first on a file of this user's cache directory
named for the state's real path, which no `git clean` of the repository removes: one
apply per state on this machine even when the file beside the state is deleted.

Not filelock: it truncates the lock file when it opens it, before it holds the lock,
which would erase the holder's details that the message is made of.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import hashlib
import json
import os
import secrets
import socket
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from voicectl.errors import StateError
from voicectl.files import jsontext


def lock_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


def holder(command: str, at: str) -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {
        "id": secrets.token_hex(4),  # what `voicectl force-unlock` is given
        "user": user,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "time": at,
        "command": command,
    }


def lock_id(info: dict[str, Any]) -> str:
    """The id a lock's holder wrote, or "unknown" (a lock file left empty, or older)."""
    value = info.get("id")
    return value if isinstance(value, str) and value.isalnum() else "unknown"


def describe(info: dict[str, Any]) -> str:
    """Who holds a lock, in words; what a holder wrote is shown escaped (a lock file, or
    a row in PostgreSQL, could hold a line break that forges another message)."""
    user, host, pid, time_, command = (
        _shown(info.get(key, "?")) for key in ("user", "host", "pid", "time", "command")
    )
    return f"{user}@{host} pid {pid} since {time_} running `{command}` (lock id {lock_id(info)})"


def _shown(value: object) -> str:
    text = str(value)[:200]
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def running_holder(state_path: Path) -> dict[str, Any] | None:
    """Whose lock on the state a running process holds, as far as can be told without
    taking it (a read-only command must not make an apply starting now fail): a lock file
    naming a live process of this host, or any other host's. None when free."""
    info = read_holder(lock_path(state_path))
    if info is None:
        return None
    pid = info.get("pid")
    if info.get("host") == socket.gethostname() and isinstance(pid, int) and pid > 0:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # left by a process that is gone: free
        except PermissionError:
            pass  # alive, another user's
        if _zombie(pid):
            return None  # ended (its lock freed), not yet reaped by its parent
    return info


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has ended and waits to be reaped (Linux's /proc; elsewhere, no)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rpartition(")")[2].split()[:1] == ["Z"]


def parse_duration(text: str) -> float:
    """Seconds in ``text``: "90", "90s", "5m", "1h" or "500ms" (as Terraform's
    -lock-timeout takes them); ValueError for anything else."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    number = text.strip().rstrip("mshMSH")
    unit = text.strip()[len(number) :].lower() or "s"
    if unit not in units or not (number.isascii() and number.replace(".", "", 1).isdigit()):
        raise ValueError(text)
    return float(number) * units[unit]


def read_holder(path: Path) -> dict[str, Any] | None:
    """The details written in the lock file; None without one, {} when unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return {}
    with os.fdopen(fd, "rb") as handle:
        try:
            info = jsontext.loads(handle.read(4096).decode("utf-8"))
        except (OSError, ValueError):
            return {}
    return info if isinstance(info, dict) else {}


def _open(path: Path) -> int:
    """The lock file, opened without following a link (a pull request may plant one)
    and refused unless it is a regular file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR):
            kind = "a symbolic link" if exc.errno == errno.ELOOP else "a directory"
            raise StateError(f"{path}: the lock file is {kind}; remove it") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        what = "not a regular file" if not stat.S_ISREG(info.st_mode) else "a hard link"
        raise StateError(f"{path}: the lock file is {what}; remove it")
    return fd


def _try_lock(path: Path) -> int | None:
    """A descriptor holding the lock on the file ``path`` names now, or None if held.

    The holder removes the file when it lets go: a lock won on a file that ``path`` no
    longer names is worth nothing, so it is let go and tried again.
    """
    for _ in range(100):
        fd = _open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.path.samestat(os.fstat(fd), os.lstat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # removed or replaced by the holder that just let go
    raise StateError(f"{path}: the lock file keeps changing; try again")


def _write_holder(fd: int, info: dict[str, Any]) -> None:
    data = json.dumps(info, sort_keys=True).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


@contextlib.contextmanager
def locked(
    state_path: Path,
    command: str,
    at: str,
    notice: Callable[[str], None],
    timeout: float = 0.0,
) -> Iterator[None]:
    """The state's lock, held for the block; a holder's lock is waited for up to
    ``timeout`` seconds (said once on ``notice``), then refused naming it."""
    path = lock_path(state_path)
    until = time.monotonic() + timeout
    with _machine_lock(state_path, path, notice, until, timeout):
        fd = _wait(lambda: _try_lock(path), path, notice, until, timeout)
        try:
            previous = read_holder(path)
            if previous:
                notice(f"the previous holder of the lock is gone: {describe(previous)}")
            _write_holder(fd, holder(command, at))
            try:
                yield
            finally:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # while still held: the next one makes a new file
        finally:
            os.close(fd)


def _wait(
    take: Callable[[], int | None],
    path: Path,
    notice: Callable[[str], None],
    until: float,
    timeout: float,
    removed: bool = False,
) -> int:
    """A descriptor ``take`` won, tried until ``until``; else refused naming the holder
    (whose file may have been ``removed`` while it ran)."""
    fd = take()
    if fd is None and timeout > 0:
        notice(f"waiting up to {timeout:g} s for the lock held by {_holder_said(path, removed)}")
    while fd is None and time.monotonic() < until:
        time.sleep(min(0.25, max(0.0, until - time.monotonic())))
        fd = take()
    if fd is None:
        raise StateError(
            f"the state is locked by {_holder_said(path, removed)}; wait for it to finish, "
            "or wait for it with `--lock-timeout DURATION` (a lock is freed the moment its "
            "process ends, however it ends)"
        )
    return fd


def _holder_said(path: Path, removed: bool) -> str:
    info = read_holder(path)
    if info or not removed:
        return describe(info or {})
    return (
        f"another voicectl on this machine, though its lock file {path.name} was removed "
        "while it ran (by `git clean`?)"
    )


@contextlib.contextmanager
def _machine_lock(
    state_path: Path, path: Path, notice: Callable[[str], None], until: float, timeout: float
) -> Iterator[None]:
    """The same lock, on a file of this user's cache directory named for the state's real
    path: a `git clean` (or an `rm`) of the lock file beside the state while an apply
    runs must not let a second apply in beside it. Its holder removes it as it lets go,
    as the lock beside the state is removed (a waiter that wins a file no longer there
    tries again): none is left behind; where the cache directory cannot be written, the
    lock beside the state is the only one."""
    machine = _machine_lock_path(state_path)
    fd = None
    if machine is not None:
        with contextlib.suppress(OSError):
            machine.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # held beyond the timeout: StateError, raised
            fd = _wait(lambda: _try_lock(machine), path, notice, until, timeout, removed=True)
    try:
        yield
    finally:
        if fd is not None and machine is not None:
            with contextlib.suppress(OSError):
                machine.unlink()  # while still held: the next one makes a new file
            os.close(fd)


def _machine_lock_path(state_path: Path) -> Path | None:
    try:
        real = os.path.realpath(state_path)
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except (OSError, RuntimeError):  # no home directory
        return None
    name = hashlib.sha256(os.fsencode(real)).hexdigest()[:32]
    return base / "voicectl" / "locks" / f"{name}.lock"


def force_unlock(state_path: Path, expected: str) -> dict[str, Any] | None:
    """Remove a lock file nobody holds, if its id is ``expected``; returns whose details
    it held. A lock a running process holds is refused: removing its file would let a
    second writer in."""
    path = lock_path(state_path)
    if not path.exists() and not path.is_symlink():
        return None
    info = read_holder(path)
    if path.is_symlink():
        path.unlink()
        return info or {}
    if path.is_dir():
        raise StateError(f"{path}: the lock file is a directory; remove it by hand")
    if lock_id(info or {}) != expected:
        raise StateError(
            f"the lock's id is {lock_id(info or {})}, not {expected} ({describe(info or {})}); "
            "nothing was removed"
        )
    fd = _try_lock(path)
    if fd is None:
        raise StateError(
            f"the lock is held by a running process ({describe(info or {})}); stop that "
            "process instead: its lock is freed the moment it ends"
        )
    try:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    finally:
        os.close(fd)
    return info or {}
