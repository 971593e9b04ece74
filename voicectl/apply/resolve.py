"""Settling clones of unknown outcome through Coze's voice list.

A clone whose reply never came is looked for on a complete listing of the account it
was sent to (:mod:`voicectl.apply.reconcile` judges each voice): found, it is journaled
as done; absent for a while and out of Coze's hands, as failed, to be sent again;
absent while Coze may still be carrying it out, it stays in the journal for a later
apply. A listing that cannot be read to its end concludes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from voicectl.apply import reconcile
from voicectl.apply.events import Event, EventKind, Outcome
from voicectl.errors import Ambiguous, VoicectlError
from voicectl.model import Action, Change, RemoteVoice
from voicectl.plan import drift
from voicectl.state.journal import Journal, Pending
from voicectl.state.statefile import now


class Listing(Protocol):
    """What settling needs of Coze: the voice list, and the facts to judge it by."""

    @property
    def base_url(self) -> str: ...

    @property
    def deadline(self) -> float: ...

    def voices(self, *, expected: int = 0) -> Iterable[RemoteVoice]: ...


class Resolver:
    """Settles clones of unknown outcome; each complete listing it reads is handed to
    ``on_listing`` (with when reading it began), as the witness of what is sent again."""

    def __init__(
        self,
        client: Listing,
        journal: Journal,
        on_event: Callable[[Event], None],
        on_listing: Callable[[Iterable[RemoteVoice], float], None],
        clock: Callable[[], float],
        settle: Sequence[float],
        sleep: Callable[[float], None],
        in_hands: float,
    ) -> None:
        self.client, self.journal = client, journal
        self.on_event, self.on_listing = on_event, on_listing
        self.clock, self.settle, self.sleep = clock, tuple(settle), sleep
        self.in_hands = in_hands

    def resolve(
        self,
        unknown: Sequence[Pending],
        known: set[str],
        outcome: Outcome,
        ended: Mapping[int, float],
        adopt: Mapping[str, str] | None = None,
    ) -> list[Change]:
        """Settle clones of unknown outcome through the list; returns those to send again.

        ``ended`` says when each clone of this apply ended (by seq); ``adopt`` names the
        voice a person chose for an address. Only a listing read to its end can show
        that a clone was never carried out: when it cannot be read, nothing is concluded
        or resent, and the journal keeps the clones for the next apply.
        """
        remote, began, read_at = self._settled_listing(unknown, known)
        self.on_listing(remote, began)  # the witness of what is sent again
        again, still = [], []
        for pending in unknown:
            found, chosen, passed_over = _chosen(pending, remote, known, adopt or {})
            if found is not None:
                # A person who named the voice (--adopt) has decided; else only a short
                # window between witness and listing makes it this clone's.
                # (a clone of an earlier apply flew until its deadline, at the latest)
                end = ended.get(pending.seq, pending.started_unix + self.client.deadline)
                why = None if chosen else reconcile.unproven(pending, found, read_at, end)
                self._found(pending, found, known, outcome, why, passed_over)
            elif self.clock() < self._in_hands_until(pending):
                still.append(pending)  # Coze may be carrying it out still: not yet absent
            else:
                self.journal.failed(pending.seq, now(), "not found on Coze: never carried out")
                again.append(pending.change)
        if still:
            raise self._still_in_hands(still)
        return again

    def _settled_listing(
        self, unknown: Sequence[Pending], known: set[str]
    ) -> tuple[list[RemoteVoice], float, float]:
        """A complete listing, and when reading it began and ended. Coze's docs do not
        promise that the list shows a voice the moment its clone is committed: "absent"
        is concluded only once it stays absent a while (``settle``)."""
        remote, began, read_at = self._account(unknown, known)
        absent = [p for p in unknown if not reconcile.candidates(p, remote, known)]
        for delay in self.settle:
            if not absent:
                break
            self.sleep(delay)
            remote, began, read_at = self._account(unknown, known)
            absent = [p for p in absent if not reconcile.candidates(p, remote, known)]
        return remote, began, read_at

    def _account(
        self, unknown: Sequence[Pending], known: set[str]
    ) -> tuple[list[RemoteVoice], float, float]:
        """A complete listing of the account the clones went to, and when reading it
        began and ended; else nothing is settled."""
        began = self.clock()
        try:
            remote = list(self.client.voices(expected=len(known)))
        except VoicectlError as exc:
            names = ", ".join(sorted(p.change.address for p in unknown))
            raise VoicectlError(
                f"cannot settle the clone(s) of unknown outcome ({names}): {exc.message}. "
                "Nothing was sent again; the journal keeps them and the next "
                "`voicectl apply` looks for them first"
            ) from None
        reason = drift.wrong_account(known, {v.voice_id for v in remote}, self.client.base_url)
        if reason is not None:  # another account's list proves nothing about this one
            raise VoicectlError(
                f"cannot settle the clone(s) of unknown outcome: {reason}. Nothing was sent "
                "again; the journal keeps them for an apply on the right account"
            )
        return remote, began, self.clock()

    def _found(
        self,
        pending: Pending,
        found: RemoteVoice,
        known: set[str],
        outcome: Outcome,
        unproven: str | None,
        passed_over: Sequence[str],
    ) -> None:
        """Journal the clone as done, by the voice the list shows for it."""
        change = pending.change
        voice_id = (
            found.voice_id if change.action in (Action.CREATE, Action.REPLACE) else change.voice_id
        )
        known.add(found.voice_id)
        self.journal.done(
            pending.seq,
            now(),
            voice_id,
            reconciled=True,
            unproven=unproven,
            passed_over=passed_over,
        )
        outcome.done.append((change, voice_id))
        self.on_event(
            Event(
                EventKind.RECONCILE,
                change.address,
                change.action,
                voice_id,
                clones_left=change.budget.after,
                unproven=unproven or "",
                passed_over=tuple(passed_over),
            )
        )

    def _in_hands_until(self, pending: Pending) -> float:
        """Until when a clone of unknown outcome may be in Coze's hands."""
        return pending.started_unix + self.in_hands

    def _still_in_hands(self, still: Sequence[Pending]) -> VoicectlError:
        return VoicectlError(
            f"{', '.join(p.change.address for p in still)}: no reply proved what became "
            "of the clone, and Coze does not list its result yet, but it may still be "
            "carrying it out (a gateway may have answered, or the connection or the "
            "apply ended, while Coze trained on), so nothing was sent again. The "
            "journal keeps it: `voicectl apply` "
            f"from {_utc(max(self._in_hands_until(p) for p in still))} on looks for it "
            "first and sends it again only if Coze still does not list it"
        )


def _chosen(
    pending: Pending,
    remote: Sequence[RemoteVoice],
    known: set[str],
    adopt: Mapping[str, str],
) -> tuple[RemoteVoice | None, str | None, list[str]]:
    """The one voice that is ``pending``'s result (None: none is), the voice id a person
    chose for it with --adopt, and the other candidates passed over for that choice.
    More than one candidate and no choice: Ambiguous."""
    change = pending.change
    found = reconcile.candidates(pending, remote, known)
    ids = ", ".join(v.voice_id for v in found)
    chosen = adopt.get(change.address)
    passed_over: list[str] = []
    if chosen is not None:
        # A wrong id must not read as "never carried out": that would clone again.
        if chosen not in {v.voice_id for v in found}:
            raise Ambiguous(
                f"--adopt {change.address}={chosen}: voice {chosen} cannot be the "
                f"result of the {change.action} sent at {pending.started_at} "
                + (
                    f"(the voices that can: {ids})"
                    if found
                    else "(Coze lists no voice that can, so it was never carried out; "
                    f"drop --adopt {change.address} to send it again)"
                )
            )
        passed_over = [v.voice_id for v in found if v.voice_id != chosen]
        found = [v for v in found if v.voice_id == chosen]
    if len(found) > 1:
        raise Ambiguous(
            f"{change.address}: a {change.action} sent at {pending.started_at} got no "
            f"answer and {len(found)} voices on Coze could be its result ({ids}); "
            f"rerun with `voicectl apply --adopt {change.address}=VOICE_ID` naming the "
            "right one"
        )
    return (found[0] if found else None), chosen, passed_over


def _utc(unix: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix))
