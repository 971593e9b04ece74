"""The apply journal: every clone's outcome is durable the moment it is known.

An append-only file of JSON lines beside the state (``<state>.journal``), each fsync'd
before the next step: a ``pending`` line before a clone is sent, a ``done`` line with the
voice id once Coze answers. Replayed over the state it began from, it rebuilds the state,
so a crash (even kill -9) never forgets a clone Coze completed; a ``pending`` line with no
outcome is a clone to reconcile through Coze's list before anything is sent again. An
apply folds it into the state (one atomic write) and removes it. Appending costs the same
whatever the state's size. Reading it back is :mod:`voicectl.state.replay`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicectl.coze.replies import canonical
from voicectl.errors import StateError
from voicectl.files import jsontext, safefile
from voicectl.model import Change, State
from voicectl.planfile import change_to_json
from voicectl.state import journalcheck


def journal_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".journal")


@dataclass(frozen=True)
class Pending:
    """A clone that was (perhaps) sent and whose outcome is not recorded."""

    seq: int
    change: Change
    started_at: str
    started_unix: float
    before: dict[str, Any] | None = None  # what Coze showed before it was sent (reconcile)


class Journal:
    """Appends fsync'd records; safe to share between the threads of one apply."""

    def __init__(
        self,
        path: Path,
        mirror: Callable[[bytes], None] | None = None,
        sign: Callable[[bytes], str] | None = None,
    ) -> None:
        self.path = path
        # Each line's seal (voicectl.coze.replies.Seal): proof it was written with the
        # token; a journal without it is not folded (voicectl.apply.recovery).
        self.sign = sign
        # Where else a line is made durable before append returns (PostgreSQL's journal).
        self.mirror = mirror
        self._lock = threading.Lock()  # orders the writes
        self._sync_lock = threading.Lock()  # one fsync at a time
        self._written = self._synced = 0  # lines handed to the OS, lines known on disk
        _set_aside_torn_tail(path)  # else the next line would follow a torn one
        # held open for the whole apply; readable, so that it can be put back if removed
        self._handle = safefile.open_regular(path, "a+b")
        try:
            self._seq = _last_seq(path)
        except BaseException:
            self._handle.close()
            raise

    @classmethod
    def begin(
        cls,
        path: Path,
        base: State,
        at: str,
        commit: str = "",
        account: dict[str, str] | None = None,
        uncommitted: bool | None = None,
        mirror: Callable[[bytes], None] | None = None,
        sign: Callable[[bytes], str] | None = None,
    ) -> Journal:
        """Start a journal over ``base`` (the state as last written); ``commit`` is the
        git commit applied from, recorded in the take index; ``account`` says which Coze
        account the clones go to (see CozeClient.account_record)."""
        # The state may live elsewhere (PostgreSQL): its directory need not exist yet.
        path.parent.mkdir(parents=True, exist_ok=True)
        journal = cls(path, mirror, sign)
        if 0 < path.stat().st_size <= 4096 and not safefile.read_bytes(path).strip():
            journal._handle.truncate(0)  # blank lines only (an editor's): no journal yet
        if path.stat().st_size == 0:
            record: dict[str, Any] = {
                "type": "begin",
                "lineage": base.lineage,
                "serial": base.serial,
                "at": at,
            }
            if commit:
                record["commit"] = commit
            if uncommitted:
                record["uncommitted"] = True
            if not base.voices and not base.orphans:
                record["empty"] = True  # a lost state file then loses nothing
            if account:
                record["account"] = account
            try:
                journal.append(record)
            except BaseException:
                journal.close()
                raise
        return journal

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` and return once it is on disk.

        A group commit: the fsync is made outside the write lock, and one fsync makes
        every line written before it durable, so workers finishing together share one
        instead of queueing for a disk flush each behind a lock.
        """
        if self.sign is not None:
            record = {**record, "mac": self.sign(canonical(record))}
        line = canonical(record) + b"\n"
        with self._lock:
            start = self._handle.tell()
            try:
                self._handle.write(line)
                self._handle.flush()
            except OSError as exc:
                # Disk full, a size limit: take back any part of the line, so that the
                # journal stays whole lines, and say so (a pending line: nothing is sent).
                self._take_back(start)
                raise self._error(exc) from None
            self._written += 1
            mine = self._written
        self._sync(mine)
        if self.mirror is not None:  # a pending line there too before its clone is sent
            try:
                self.mirror(line)
            except BaseException:
                if record.get("type") == "pending":  # its clone is not sent: no intent
                    self._take_back_last(line)
                raise

    def _take_back_last(self, line: bytes) -> None:
        """Take back ``line`` if still last: an intent the store did not keep is not sent."""
        with self._lock:
            end = self._handle.seek(0, os.SEEK_END)
            self._handle.seek(max(0, end - len(line)))
            if self._handle.read() == line:
                self._take_back(end - len(line))

    def _sync(self, mine: int) -> None:
        """Return once line ``mine`` is on disk (one fsync serves every line before it)."""
        with self._sync_lock:
            if self._synced >= mine:
                return  # another thread's fsync, begun after this line was written
            with self._lock:
                upto = self._written
            try:
                os.fsync(self._handle.fileno())
            except OSError as exc:
                raise self._error(exc) from None
            self._synced = upto

    def _take_back(self, size: int) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()  # drops what the buffer still holds of the line
        with safefile.open_regular(self.path, "r+b") as raw:
            raw.truncate(size)
        self._handle = safefile.open_regular(self.path, "a+b")

    def _error(self, exc: OSError) -> StateError:
        return StateError(
            f"cannot write the apply journal {self.path}: {exc.strerror or exc}. A clone "
            "whose intent could not be written was not sent; one whose outcome could not be "
            "written is looked for on Coze by the next `voicectl apply`"
        )

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def pending(
        self, change: Change, at: str, unix: float, before: dict[str, Any] | None = None
    ) -> int:
        """The intent, durable before the clone is sent; ``before`` is what Coze showed
        that tells its outcome (see :func:`voicectl.apply.reconcile.witness`)."""
        seq = self.next_seq()
        record: dict[str, Any] = {
            "type": "pending",
            "seq": seq,
            "change": change_to_json(change),
            "started_at": at,
            "started_unix": unix,
        }
        if before is not None:
            record["before"] = before
        self.append(record)
        return seq

    def done(
        self,
        seq: int,
        at: str,
        voice_id: str | None,
        logid: str = "",
        reconciled: bool = False,
        unproven: str | None = None,
        passed_over: Sequence[str] = (),
    ) -> None:
        """The clone was made; ``unproven`` says why a reconciled one may not be this
        apply's own (see :func:`voicectl.apply.reconcile.unproven`); ``passed_over`` are
        the other voices found for it and not chosen (``--adopt``), kept as orphans:
        one of them may be this clone, paid for."""
        record: dict[str, Any] = {
            "type": "done",
            "seq": seq,
            "at": at,
            "voice_id": voice_id,
            "logid": logid,
            "reconciled": reconciled,
        }
        if unproven is not None:
            record["unproven"] = unproven
        if passed_over:
            record["passed_over"] = list(passed_over)
        self.append(record)

    def failed(self, seq: int, at: str, error: str) -> None:
        """Coze said no: the clone certainly did not happen."""
        self.append({"type": "failed", "seq": seq, "at": at, "error": error})

    def state_only(self, change: Change, at: str) -> None:
        seq = self.next_seq()
        self.append(
            {
                "type": "pending",
                "seq": seq,
                "change": change_to_json(change),
                "started_at": at,
                "started_unix": 0,
            }
        )
        self.done(seq, at, None)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def keep_in_place(self) -> None:
        """Make sure the journal's path still names the file this journal wrote: one
        removed while the apply ran (`git clean`, `git stash -u`) is put back from the open
        file. One replaced, or a directory that is gone or no longer a real directory,
        raises with the voice ids the journal recorded: nothing else would keep them."""
        mine = os.fstat(self._handle.fileno())
        try:
            here = os.lstat(self.path)
        except FileNotFoundError:
            here = None
        if here is not None and (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino):
            return
        with self._lock:
            self._handle.flush()
            data = os.pread(self._handle.fileno(), mine.st_size, 0)
        try:
            if here is not None:
                raise OSError("another file is in its place")
            parent = os.lstat(self.path.parent)
            if not stat.S_ISDIR(parent.st_mode):  # lstat: a link to a directory is not one
                raise OSError("its directory is no longer a directory of the repository")
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as restored:
                restored.write(data)
                restored.flush()
                os.fsync(restored.fileno())
        except OSError as exc:
            made = _done_ids(data)
            raise StateError(
                f"{self.path}: the journal this apply wrote was removed or replaced while it "
                f"ran and cannot be put back ({exc.strerror or exc}). It recorded these paid "
                "clones, which are in no state now: "
                + (
                    ", ".join(f"{address} = voice {voice_id}" for address, voice_id in made)
                    or "none"
                )
                + ". Record each with `voicectl import ADDRESS VOICE_ID`"
            ) from None


def _set_aside_torn_tail(path: Path) -> None:
    """A last line without its newline was torn by a crash, a full disk or a size limit:
    it never happened. Keep its bytes in ``<journal>.torn`` for a person, and cut it."""
    try:
        handle = safefile.open_regular(path, "r+b")
    except FileNotFoundError:
        return
    with handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        end = size
        while end > 0:  # the last newline, read backwards a block at a time
            start = max(0, end - 65536)
            handle.seek(start)
            block = handle.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                end = start + cut + 1
                break
            end = start
        handle.seek(end)
        torn = handle.read()
        try:
            whole = isinstance(jsontext.loads(torn), dict)
        except ValueError:
            whole = False
        if whole:  # only its newline was lost: the record is complete, and replay reads it
            handle.seek(size)
            handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())
            return
        with safefile.open_regular(path.with_name(path.name + ".torn"), "ab") as aside:
            aside.write(torn + b"\n")
            aside.flush()
            os.fsync(aside.fileno())
        handle.truncate(end)
        handle.flush()
        os.fsync(handle.fileno())


def _last_seq(path: Path) -> int:
    return max((int(r["seq"]) for _, _, r in records(path) if "seq" in r), default=0)


def records(path: Path) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
    """Each record with its line number and line, read one line at a time (a migration's
    journal runs to megabytes: it is never held whole, as bytes or as parsed records),
    and checked as it is read (:func:`voicectl.state.journalcheck.check`)."""
    try:
        handle = safefile.open_regular(path)  # closed below, after the last line
    except FileNotFoundError:
        return
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = jsontext.loads(line, strict=True)
            except ValueError:
                if not line.endswith(b"\n"):  # torn by a crash mid-write: it never happened
                    break
                raise corrupt(path, number) from None
            if not line.endswith(b"\n") and not isinstance(record, dict):
                break  # torn, as _set_aside_torn_tail takes it
            try:
                checked = journalcheck.check(record)
            except journalcheck.Damaged as exc:
                raise corrupt(path, number, str(exc)) from None
            yield number, line, checked


def corrupt(path: Path, number: int, why: str = "") -> StateError:
    """The error for line ``number`` of the journal at ``path``, and ``why``."""
    return StateError(
        f"{path}:{number}: the apply journal is corrupt{f' ({why})' if why else ''}; it was "
        "left unchanged. It records paid clones: note the voice ids in its `done` lines, "
        "move it aside, and `voicectl import ADDRESS VOICE_ID` each that the state lacks"
    )


def _done_ids(data: bytes) -> list[tuple[str, str]]:
    """(address, voice id) of each clone a journal's text records as done."""
    addresses: dict[int, str] = {}
    made = []
    for line in data.splitlines():
        try:
            record = jsontext.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        seq = record.get("seq", -1)
        seq = -1 if isinstance(seq, (list, dict)) else seq  # a hand's garbage: no key
        if record.get("type") == "pending" and isinstance(record.get("change"), dict):
            addresses[seq] = str(record["change"].get("address"))
        elif record.get("type") == "done" and isinstance(record.get("voice_id"), str):
            made.append((addresses.get(seq, "?"), record["voice_id"]))
    return made
