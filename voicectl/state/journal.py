"""The apply journal: every clone's outcome is durable the moment it is known.

An append-only file of JSON lines beside the state (``<state>.journal``), each line
fsync'd before the next step. Before a clone is sent a ``pending`` line records what is
about to happen; once Coze answers, a ``done`` line records the voice id. Replaying the
journal over the state it began from rebuilds the state, so a crash (even kill -9) never
forgets a clone Coze completed; a ``pending`` line without an outcome is a clone whose
fate must be reconciled through Coze's list before anything is sent again. At the end
of an apply the journal is folded into the state (one atomic write) and removed. Appending
costs the same whatever the size of the state.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from voicectl.errors import StateError
from voicectl.files import jsontext, safefile
from voicectl.model import NEW_VOICE_ACTIONS, Change, State
from voicectl.planfile import change_from_json, change_to_json
from voicectl.state.transition import Done, applied_all


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


@dataclass
class Replayed:
    state: State
    pending: list[Pending] = field(default_factory=list)
    entries: int = 0
    stale: bool = False  # the journal had already been folded into this state
    account: dict[str, Any] | None = None  # the account its clones were sent to


class Journal:
    """Appends fsync'd records; safe to share between the threads of one apply."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # orders the writes
        self._sync_lock = threading.Lock()  # one fsync at a time
        self._written = self._synced = 0  # lines handed to the OS, lines known on disk
        _set_aside_torn_tail(path)  # else the next line would follow a torn one
        # held open for the whole apply; readable, so that it can be put back if removed
        self._handle = safefile.open_regular(path, "a+b")
        self._seq = _last_seq(path)

    @classmethod
    def begin(
        cls,
        path: Path,
        base: State,
        at: str,
        commit: str = "",
        account: dict[str, str] | None = None,
        uncommitted: bool | None = None,
    ) -> Journal:
        """Start a journal over ``base`` (the state as last written); ``commit`` is the
        git commit applied from, recorded in the take index; ``account`` says which Coze
        account the clones go to (see CozeClient.account_record)."""
        journal = cls(path)
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
            journal.append(record)
        return journal

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` and return once it is on disk.

        A group commit: the fsync is made outside the write lock, and one fsync makes
        every line written before it durable, so workers finishing together share one
        instead of queueing for a disk flush each behind a lock.
        """
        line = json.dumps(record, sort_keys=True, ensure_ascii=False).encode() + b"\n"
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
        self._handle = safefile.open_regular(self.path, "ab")

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
    ) -> None:
        """The clone was made; ``unproven`` says why a reconciled one may not be this
        apply's own (see :func:`voicectl.apply.reconcile.unproven`)."""
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
    last = 0
    for _, record in _records(path):
        if isinstance(record.get("seq"), int):
            last = max(last, record["seq"])
    return last


def _records(path: Path) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Each record with its line, read one line at a time (a migration's journal runs to
    megabytes: it is never held whole, as bytes or as parsed records)."""
    try:
        handle = safefile.open_regular(path)  # closed below, after the last line
    except FileNotFoundError:
        return
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = jsontext.loads(line)
            except ValueError:
                if not line.endswith(b"\n"):  # torn by a crash mid-write: it never happened
                    break
                raise StateError(
                    f"{path}:{number}: the apply journal is corrupt; it was left unchanged. "
                    "It records paid clones: note the voice ids in its `done` lines, move "
                    "it aside, and `voicectl import ADDRESS VOICE_ID` each that the state "
                    "lacks"
                ) from None
            if isinstance(record, dict):
                yield line, record


def replay(path: Path, state: State) -> Replayed | None:
    """The state with the journal's completed changes applied, and what is unresolved.

    Changes are kept as their journal lines until they are folded, one at a time, so
    replaying 10,000 clones holds a few megabytes of text, not 10,000 parsed changes.
    """
    records = _records(path)
    first = next(records, None)
    if first is None:
        return None
    begin = first[1]
    if begin.get("type") != "begin":
        raise StateError(f"{path}: the apply journal has no begin record; it was left unchanged")
    began = int(begin.get("serial", 0))
    fresh = state.serial == 0 and not state.voices and not state.orphans
    if begin.get("lineage") != state.lineage and fresh and begin.get("empty") is True:
        # The state file is gone, and the journal began from an empty one: the same.
        state = replace(state, lineage=str(begin.get("lineage")), serial=began)
    if begin.get("lineage") != state.lineage:
        keep = (
            "It records paid clones: do not move it aside before each voice id in its "
            "`done` lines is in a state (`voicectl import ADDRESS VOICE_ID`)"
        )
        if fresh:
            raise StateError(
                f"{path}: there is no state file, but an interrupted apply's journal "
                f"began from state serial {began} (lineage {begin.get('lineage')}). Restore "
                "that state (e.g. `git checkout` it) and run `voicectl apply` to fold the "
                f"journal into it. {keep}"
            )
        raise StateError(
            f"{path}: the apply journal belongs to another state (lineage "
            f"{begin.get('lineage')}, the state's is {state.lineage}). {keep}"
        )
    if state.serial < began:
        raise StateError(
            f"{path}: an interrupted apply's journal began from state serial {began}, but "
            f"the state is at serial {state.serial}: an older state was checked out over "
            "it. Nothing was changed. Restore the state the journal began from (e.g. "
            "`git checkout` the newer commit) and run `voicectl apply` to fold it"
        )
    newer = state.serial > began
    started: dict[int, bytes] = {}
    outcome: dict[int, dict[str, Any]] = {}
    entries = 0
    for line, record in records:
        entries += 1
        seq = record.get("seq")
        if not isinstance(seq, int):
            continue
        if record.get("type") == "pending":
            started[seq] = line
        elif record.get("type") in ("done", "failed"):
            outcome[seq] = {
                k: record.get(k) for k in ("type", "at", "voice_id", "logid", "unproven")
            }
    commit = str(begin.get("commit") or "")
    uncommitted = begin.get("uncommitted") is True
    pending = [_pending(seq, started[seq]) for seq in sorted(started) if seq not in outcome]
    if newer:  # a state written since: folded already, or another clone's over this one
        _check_contains(path, state, pending, started, outcome)
        return Replayed(state, [], entries, stale=True)

    def done() -> Iterator[Done]:
        for seq in sorted(started):
            result = outcome.get(seq)
            if result is not None and result["type"] == "done":
                change = _pending(seq, started.pop(seq)).change
                logid = str(result.get("logid") or "")
                why = result.get("unproven")
                unproven = why if isinstance(why, str) else None
                yield Done(
                    change,
                    result["at"],
                    result.get("voice_id"),
                    logid,
                    commit,
                    unproven,
                    uncommitted,
                )

    account = begin.get("account")
    return Replayed(
        applied_all(state, done()),
        pending,
        entries,
        account=account if isinstance(account, dict) else None,
    )


def _check_contains(
    path: Path,
    state: State,
    pending: list[Pending],
    started: dict[int, bytes],
    outcome: dict[int, dict[str, Any]],
) -> None:
    """A journal under a newer state is set aside only when the state proves it holds
    the journal's outcomes: every clone it recorded, its voice id trained on its take.
    A newer state that does not (a `git pull` of another clone's state over a crashed
    apply) would otherwise bury paid clones, and the next plan would pay for them again."""
    missing = []
    held_ids = state.voice_ids()
    for seq, result in outcome.items():
        voice_id = result.get("voice_id")
        if result["type"] != "done" or not voice_id or seq not in started:
            continue
        change = _pending(seq, started[seq]).change
        sha = str(((change.after or {}).get("audio") or {}).get("sha256", ""))
        trained = any(e.voice_id == voice_id for e in state.takes.get(sha, ()))
        # A new voice id held at all (imported, say) is kept; a retrain must show its take.
        held = change.action in NEW_VOICE_ACTIONS and voice_id in held_ids
        if not (trained or held):
            missing.append(f"{change.address} (voice {voice_id})")
    if not missing and not pending:
        return
    found = []
    if missing:
        found.append(f"clones it made that the state does not hold: {', '.join(missing)}")
    if pending:
        names = ", ".join(p.change.address for p in pending)
        found.append(f"clones of unknown outcome: {names}")
    raise StateError(
        f"{path}: an interrupted apply's journal lies under a state written since (serial "
        f"{state.serial}, perhaps pulled from another clone of the repository), with "
        + "; ".join(found)
        + ". Nothing was changed. Run `voicectl apply` with the state the journal began "
        "from (e.g. before the pull) to fold it, then merge; or record those voices with "
        "`voicectl import ADDRESS VOICE_ID` and move the journal aside"
    )


def _pending(seq: int, line: bytes) -> Pending:
    record = jsontext.loads(line)
    before = record.get("before")
    return Pending(
        seq,
        change_from_json(record["change"]),
        record["started_at"],
        float(record["started_unix"]),
        before if isinstance(before, dict) else None,
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
        if record.get("type") == "pending" and isinstance(record.get("change"), dict):
            addresses[record.get("seq", -1)] = str(record["change"].get("address"))
        elif record.get("type") == "done" and isinstance(record.get("voice_id"), str):
            made.append((addresses.get(record.get("seq", -1), "?"), record["voice_id"]))
    return made
