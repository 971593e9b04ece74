"""Folding an apply journal into the state, after a crash or at the end of an apply."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from voicectl.apply.events import Event, Outcome
from voicectl.apply.executor import Executor
from voicectl.errors import StateError
from voicectl.files import safefile
from voicectl.files.atomic import write_atomic
from voicectl.model import State
from voicectl.state import journal
from voicectl.state import statefile as state
from voicectl.state.replay import Replayed, replay
from voicectl.state.store import FileStore, StateStore


def fold(
    state_path: Path,
    current: State,
    finish: Callable[[State], State] | None = None,
    home: StateStore | None = None,
    *,
    stored: bool = True,
    ours: Ours | None = None,
) -> State:
    """Write the journal's completed changes into the state and remove the journal.

    ``ours`` tells whether a journal's account record is this token's and API base's;
    a journal it does not vouch for (or, without it, any) is not folded (see
    :func:`_vouched`).

    ``finish`` adds what else the state learns (Coze's facts, say) before the one write,
    so that the file is checked to be the one the journal began from just before it is
    replaced. Refuses while a clone's outcome is unknown: those must be reconciled first.
    ``stored`` False: ``current`` is the empty state of a first apply, not yet written
    (the journal's begin record says so), so the write expects no state stored.
    """
    path = journal.journal_path(state_path)
    bring(home, path)
    replayed = replay(path, current)
    if replayed is None:
        _forget(home, path)
        return current
    if replayed.pending:
        names = ", ".join(p.change.address for p in replayed.pending)
        raise StateError(
            f"{path}: clones of unknown outcome ({names}) must be settled first: "
            "`voicectl apply` looks for them on Coze"
        )
    if replayed.stale or _nothing_completed(replayed.state, current):
        # No clone ended (every one refused, say): the state stays as it was, its serial
        # too, so that a saved plan made from it can be carried out again once fixed.
        _forget(home, path)
        return current
    else:
        _vouched(path, replayed, current, ours)
        new = replayed.state if finish is None else finish(replayed.state)
        # Through the state's store (its lock is held), from the state the journal began
        # from: a state put there since is refused, the journal kept. Only when the
        # write is refused is the file read again, to say why (or, deleted meanwhile, to
        # write it from none: that mends it).
        home = home or FileStore(state_path, str(state_path))
        try:
            result = home.write(new, base=current if stored else None, settles_journal=True)
        except StateError:
            if _still(home, current, path):
                raise  # the file is the one it began from again: a race, said as it was
            result = home.write(new, base=None, settles_journal=True)
    path.unlink()
    return result


Ours = Callable[[Mapping[str, object]], bool]


def _vouched(path: Path, replayed: Replayed, current: State, ours: Ours | None) -> None:
    """Refuse to fold clones a journal says were made unless it was written with this
    token and API base: its account record holds a salted hash of both, which nobody
    without the token can make. A journal added by hand, or in a pull request, would
    otherwise make voicectl adopt (and later retrain) voices it never made."""
    record = replayed.account
    if ours is not None and record is not None and ours(record):
        return
    said = recorded(current, replayed.state) or "none"
    if ours is not None:
        # Under another token (the apply's was rotated since, say): trainings of voice ids
        # the state holds are folded, as is what a person settled with --adopt; a voice
        # id new to the state is taken in only by `voicectl import`.
        known = current.voice_ids()
        new = {a: r for a, r in replayed.state.voices.items() if r.voice_id not in known}
        if not new:
            return
        said = recorded(current, replace(current, voices={**current.voices, **new}))
    if ours is None:
        raise StateError(
            f"{path}: an interrupted apply's journal records clones ({said}) that only "
            "`voicectl apply` (with the COZE_API_TOKEN that apply used) folds into the "
            "state, once it has checked the journal was written with that token. Nothing "
            "was changed"
        )
    why = "names no account" if record is None else "names another token or API base"
    raise StateError(
        f"{path}: this apply journal was not written with this COZE_API_TOKEN and "
        f"COZE_API_BASE (it {why}), so the clones it records ({said}) are not folded: a "
        "journal added by hand or in a pull request would make voicectl take in voices it "
        "never made. Nothing was changed. If they are yours, run `voicectl apply` with the "
        "token and base that apply used; or move the journal aside and `voicectl import "
        "ADDRESS VOICE_ID` each"
    )


def bring(home: StateStore | None, path: Path) -> None:
    """Where the store keeps the journal (PostgreSQL), make the runner's file at ``path``
    from it: an apply a runner left unfinished is recovered by the next runner, on any
    machine. This runner's own file is kept when it holds every line the store does (it
    may hold one more: a crash between writing it here and there)."""
    if home is None or not home.keeps_journal:
        return
    lines = home.journal_lines()
    if not lines:
        return
    try:
        here = safefile.read_bytes(path)
    except FileNotFoundError:
        here = None
    if here is not None:
        if Counter(here.splitlines(keepends=True)) >= Counter(lines):
            return
        raise StateError(
            f"{path}: this machine's apply journal and the one kept in {home.display} "
            "differ: two applies' records. Nothing was changed; move this file aside (it "
            "records paid clones: note the voice ids of its `done` lines) and run "
            "`voicectl apply` again to recover the one the store keeps"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, b"".join(lines))


def _forget(home: StateStore | None, path: Path) -> None:
    """The journal, found to hold nothing left to fold, removed here and in the store."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    if home is not None and home.keeps_journal:
        home.journal_clear()


def _still(home: StateStore, base: State, journal_path: Path) -> bool:
    """Refuse to write over a state file that is no longer ``base``, the state the
    journal began from: one replaced while the apply ran (a `git pull`, another clone's
    state copied in) holds what this apply cannot know. The journal keeps the clones."""
    way_out = (
        f"so it was not written over: {journal_path.name} keeps this apply's clones. Put "
        "back the state it began from and run `voicectl apply` to fold them, then merge"
    )
    try:
        on_disk = home.read()
    except StateError:  # a merge's conflict markers, say: someone else's work is in it
        raise StateError(
            f"{home.display}: the state was changed while this apply ran and is no "
            f"longer readable (a merge conflict?), {way_out}"
        ) from None
    if on_disk is None:
        return False  # gone (deleted): writing it mends it
    if on_disk == base:
        return True
    raise StateError(
        f"{home.display}: the state changed while this apply ran (serial {on_disk.serial} "
        f"now, {base.serial} when it began; a `git pull`?), {way_out}"
    )


def _nothing_completed(replayed: State, current: State) -> bool:
    return (replayed.voices, replayed.orphans, replayed.takes) == (
        current.voices,
        current.orphans,
        current.takes,
    )


def fold_or_keep(
    state_path: Path,
    current: State,
    notice: Callable[[str], None],
    finish: Callable[[State], State] | None = None,
    home: StateStore | None = None,
    *,
    stored: bool = True,
    ours: Ours | None = None,
) -> tuple[State, bool]:
    """Fold at the end of an apply: the state written, and True. With clones of unknown
    outcome left, or a state file replaced meanwhile, keep the journal (the next apply
    recovers it) and nothing is written: the state as the journal leaves it, and False."""
    try:
        return fold(state_path, current, finish, home, stored=stored, ours=ours), True
    except StateError as exc:
        notice(f"{exc.message}; the journal was kept and `voicectl apply` will recover it")
        replayed = replay(journal.journal_path(state_path), current)
        return (replayed.state if replayed else current), False


def recover(
    state_path: Path,
    current: State,
    executor_for: Callable[[journal.Journal], Executor],
    adopt: dict[str, str],
    notice: Callable[[str], None],
    home: StateStore | None = None,
    *,
    stored: bool = True,
    ours: Ours | None = None,
) -> State:
    """Finish what an interrupted apply left: reconcile unknown clones, then fold."""
    path = journal.journal_path(state_path)
    bring(home, path)
    replayed = replay(path, current)
    if replayed is None:
        return current
    if not replayed.stale:
        notice(
            f"recovering an interrupted apply from {path.name}: {replayed.entries} "
            f"journal {'entry' if replayed.entries == 1 else 'entries'}, "
            f"{len(replayed.pending)} clone(s) of unknown outcome"
        )
    if replayed.pending and not replayed.stale:
        log = journal.Journal(path, _mirror(home))
        try:
            executor = executor_for(log)
            known = replayed.state.voice_ids()
            _check_account(path, replayed, executor, adopt)
            left = []
            for pending in replayed.pending:
                if adopt.get(pending.change.address) == NEVER_MADE:  # a person's word
                    log.failed(pending.seq, state.now(), "never made, as --adopt said")
                else:
                    left.append(pending)
            chosen = {a: v for a, v in adopt.items() if v != NEVER_MADE}
            executor.resolve(left, known, Outcome(), chosen)
        finally:
            log.close()
    folded = fold(state_path, current, home=home, stored=stored, ours=ours)
    said = recorded(current, folded)
    if said and not replayed.stale:
        notice(f"the interrupted apply's clones, now in the state: {said}")
    return folded


NEVER_MADE = "never"
"""``--adopt ADDRESS=never``: a person's word that a clone of unknown outcome was not made."""


def recorded(before: State, after: State, shown: int = 10) -> str:
    """The voices the fold changed, in words: address, voice id, clone number."""
    said = [
        f"{record.address} (voice {record.voice_id}, clone {record.clones_used}/10)"
        for address, record in sorted(after.voices.items())
        if (old := before.voices.get(address)) is None
        or (old.voice_id, old.clones_used) != (record.voice_id, record.clones_used)
    ]
    more = f", and {len(said) - shown} more" if len(said) > shown else ""
    return ", ".join(said[:shown]) + more


def _check_account(
    path: Path,
    replayed: Replayed,
    executor: Executor,
    adopt: dict[str, str],
) -> None:
    """Only the account a clone was sent to, seen through the token it was sent with, can
    show it was never made: another token may see fewer workspaces, even of the same
    account. So under another token or API base nothing is concluded, unless the person
    names the voice made for every clone (``--adopt``), which reconcile then checks."""
    record = replayed.account
    addresses = {p.change.address for p in replayed.pending}
    if record is None or addresses <= adopt.keys():
        return
    if executor.client.same_account(record):
        return
    names = ", ".join(sorted(addresses))
    raise StateError(
        f"the interrupted apply in {path.name} sent {len(replayed.pending)} clone(s) of "
        f"unknown outcome ({names}) to {record.get('api_base', 'another API base')} with "
        "another COZE_API_TOKEN or COZE_API_BASE than this one: only that account's voice "
        "list can tell whether they were made. Run `voicectl apply` with that token and "
        "base. If that token is gone, look for each on Coze and name what became of it: "
        "`--adopt ADDRESS=VOICE_ID` for the voice a clone made, `--adopt ADDRESS=never` "
        "for a clone that was not made (a retrain is made when the voice's clones left "
        "dropped by one after it was sent). Nothing was sent"
    )


__all__ = ["Event", "fold", "fold_or_keep", "recover"]


def _mirror(home: StateStore | None) -> Callable[[bytes], None] | None:
    """What keeps a journal line in the store too, where it keeps journals."""
    return home.journal_add if home is not None and home.keeps_journal else None
