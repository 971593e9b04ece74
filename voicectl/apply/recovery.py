"""Folding an apply journal into the state, after a crash or at the end of an apply."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voicectl.apply.events import Event, Outcome
from voicectl.apply.executor import Executor
from voicectl.coze.replies import Seal
from voicectl.errors import StateError
from voicectl.files import safefile
from voicectl.files.atomic import write_atomic
from voicectl.model import State
from voicectl.state import journal
from voicectl.state import statefile as state
from voicectl.state.replay import Replayed, replay, sealed
from voicectl.state.store import FileStore, StateStore


def fold(
    state_path: Path,
    current: State,
    finish: Callable[[State], State] | None = None,
    home: StateStore | None = None,
    *,
    stored: bool = True,
    ours: Seal | None = None,
) -> State:
    """Write the journal's completed changes into the state and remove the journal
    (the runner's file: where the store keeps the journal, :func:`bring` it here first).

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


def _vouched(path: Path, replayed: Replayed, current: State, ours: Seal | None) -> None:
    """Refuse to fold what a journal says was done unless it was written with this token:
    its begin record holds a salted hash of token and API base, and each of its lines a
    seal made with the token (:class:`voicectl.coze.replies.Seal`), which nobody without
    it can make or copy onto another line. A journal added by hand, or in a pull
    request, would otherwise make voicectl take in (and later retrain) voices it never
    made, or record trainings Coze never did."""
    if ours is not None and sealed(path, ours):
        return
    said = recorded(current, replayed.state) or "none"
    if ours is None:
        raise StateError(
            f"{path}: an interrupted apply's journal records clones ({said}) that only "
            "`voicectl apply` (with the COZE_API_TOKEN that apply used) folds into the "
            "state, once it has checked the journal was written with that token. Nothing "
            "was changed"
        )
    raise StateError(
        f"{path}: this apply journal was not written with this COZE_API_TOKEN and "
        f"COZE_API_BASE, so the clones it records ({said}) are not folded: a journal "
        "added by hand or in a pull request would make voicectl take in voices it never "
        "made. Nothing was changed. If they are yours, run `voicectl apply` with the token "
        "and base that apply used; if that token is gone, move the journal aside and "
        "`voicectl import ADDRESS VOICE_ID` each"
    )


def bring(home: StateStore | None, path: Path, notice: Callable[[str], None] | None = None) -> None:
    """Where the store keeps the journal (PostgreSQL), it is the journal: the runner's
    file at ``path`` is made from it, so that an apply a runner left unfinished is
    recovered by the next runner, on any machine. This runner's own file is kept only
    when it holds every line the store does (it may hold more: lines a crash kept from
    the store, whose clones were never sent, since a line is kept there before its clone
    is sent), or when the store holds neither a journal nor a state (a first apply's,
    begun while the state was a file). Any other file here is set aside
    (``<journal>.aside``), said on ``notice``: another runner folded it, or it is another
    apply's."""
    if home is None or not home.keeps_journal:
        return
    lines = home.journal_lines()
    try:
        here = safefile.read_bytes(path)
    except FileNotFoundError:
        here = None
    if here is not None:
        if lines and Counter(here.splitlines(keepends=True)) >= Counter(lines):
            return
        if not lines and home.read() is None:
            # Nothing was ever folded there: not another runner's finished apply, but
            # this one's first, begun while the state was a file here (or whose lines
            # never reached the store, their clones unsent). Recovered as it is.
            return
        aside = path.with_name(path.name + ".aside")
        os.replace(path, aside)
        if notice is not None:
            notice(
                f"{path.name} held an apply journal {home.display} does not keep (another "
                f"runner folded it, or its clones were never sent): set aside as {aside.name}"
            )
    if lines:
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
    ours: Seal | None = None,
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
    ours: Seal | None = None,
) -> State:
    """Finish what an interrupted apply left: reconcile unknown clones, then fold."""
    path = journal.journal_path(state_path)
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
        # Checked whole before reconcile adds a line sealed with this token: else the
        # apply would seal an outcome for a pending line someone else wrote.
        _vouched(path, replayed, current, ours)
        log = journal.Journal(path, _mirror(home), _signer(ours, replayed.account))
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
        "base. If that token is gone, look for each on Coze, move the journal aside, and "
        "`voicectl import ADDRESS VOICE_ID` each voice it made (its `done` lines name "
        "them; a retrain was made when the voice's clones left dropped by one after it "
        "was sent). Nothing was sent"
    )


__all__ = ["Event", "fold", "fold_or_keep", "recover"]


def _mirror(home: StateStore | None) -> Callable[[bytes], None] | None:
    """What keeps a journal line in the store too, where it keeps journals."""
    return home.journal_add if home is not None and home.keeps_journal else None


def _signer(ours: Seal | None, account: dict[str, Any] | None) -> Callable[[bytes], str] | None:
    """What seals the lines reconcile adds to a journal of this token's; none otherwise
    (that journal is not folded anyway)."""
    if ours is None or account is None or not ours.vouches(account):
        return None
    return ours.signer(account)
