"""Carrying out a plan: clones in parallel, every outcome journaled at once.

The executor never prints: it reports :class:`Event`s through a callback the CLI
renders. It never re-sends a clone whose outcome is unknown before the list endpoint
has shown that it did not happen.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from voicectl.apply import reconcile
from voicectl.apply.events import Event, EventKind, Failed, Outcome
from voicectl.apply.resolve import Listing, Resolver
from voicectl.coze import upload
from voicectl.coze.pacing import IN_HANDS_SECONDS, SETTLE_SECONDS
from voicectl.coze.replies import CloneResult
from voicectl.errors import OutcomeUnknown, VoicectlError
from voicectl.model import NEW_VOICE_ACTIONS, Action, Change, RemoteVoice
from voicectl.state.journal import Journal, Pending
from voicectl.state.statefile import now

RECONCILE_ROUNDS = 3


Answer = str | Failed | Pending  # a clone's new voice id, or why it has none


class Coze(Listing, Protocol):
    """What carrying out a plan needs of Coze (:class:`voicectl.coze.client.CozeClient` has it):
    the voice list, a clone, and the facts to judge a lost reply by."""

    def same_account(self, record: Mapping[str, object]) -> bool: ...

    def clone(
        self,
        *,
        audio: Path | upload.Readable,
        audio_format: str,
        voice_name: str,
        language: str,
        text: str,
        preview_text: str | None,
        space_id: str | None,
        voice_id: str | None = None,
    ) -> CloneResult: ...


REWITNESS_SECONDS = 120.0  # a witness older than this is read again before a clone


class Executor:
    def __init__(
        self,
        client: Coze,
        root: Path,
        journal: Journal,
        parallelism: int,
        on_event: Callable[[Event], None],
        clock: Callable[[], float] = time.time,
        settle: Sequence[float] = SETTLE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        rewitness: float = REWITNESS_SECONDS,
        in_hands: float = IN_HANDS_SECONDS,
    ) -> None:
        self.client, self.root, self.journal = client, root, journal
        self.parallelism = max(1, parallelism)
        self.outcome = Outcome()  # the last run's, as far as it went
        self.on_event, self.clock, self.rewitness = on_event, clock, rewitness
        self.resolver = Resolver(
            client, journal, on_event, self._listed, clock, settle, sleep, in_hands
        )
        self._unknown: dict[str, str] = {}  # why each clone's outcome was last unknown
        self._known: set[str] = set()  # voice ids taken: the state's and this apply's
        self._claims = threading.Lock()  # workers claim new ids one at a time
        self._listing: dict[str, RemoteVoice] | None = None  # the account, as last read
        self._listed_at = 0.0  # when reading it began (Unix time)
        self._by_name: dict[str, list[str]] = {}
        self._ended: dict[int, float] = {}  # when each clone of unknown outcome ended
        self._unjournaled: dict[str, str] = {}  # made, but the journal could not say so

    def run(
        self,
        changes: Sequence[Change],
        known_ids: Iterable[str],
        listing: Mapping[str, RemoteVoice] | None,
        listed_at: float,
    ) -> Outcome:
        """Carry out ``changes``; ``listing`` is the account as read before (complete),
        from ``listed_at`` (Unix time), so that each clone's witness (what tells its
        outcome) is kept with it."""
        if listing is not None:
            self._listed(listing.values(), listed_at)
        outcome = self.outcome = Outcome()  # what was done, should the run be stopped
        clones = []
        for change in changes:
            if change.spends_clone:
                clones.append(change)
            elif change.action in (Action.MOVE, Action.UPDATE, Action.ORPHAN):
                self.journal.state_only(change, now())
                outcome.done.append((change, change.voice_id))
                self.on_event(
                    Event(
                        EventKind.DONE,
                        change.address,
                        change.action,
                        change.voice_id,
                        clones_left=change.budget.after,
                    )
                )
        known = self._known = set(known_ids)
        sends: Counter[str] = Counter()
        while clones:
            unknown, deferred = self._clone_all(clones, outcome, sends)
            again = self.resolve(unknown, known, outcome) if unknown else []
            clones = []
            for change in again:
                if sends[change.address] >= RECONCILE_ROUNDS:
                    last = self._unknown.get(change.address, "no answer")
                    outcome.failed.append(
                        (
                            change,
                            f"sent {sends[change.address]} times without a reply that says "
                            f"what became of it (the last: {last}); Coze's voice list shows "
                            "none was carried out; apply again later",
                        )
                    )
                else:
                    clones.append(change)
            clones += deferred
        return outcome

    def _clone_all(
        self,
        changes: Sequence[Change],
        outcome: Outcome,
        sends: Counter[str],
    ) -> tuple[list[Pending], list[Change]]:
        """Send ``changes``, ``parallelism`` at a time; returns the clones of unknown outcome
        and the changes held back for the next round.

        Coze's list tells a lost create's result only by name, so two new voices of one
        name are never in doubt at once: a create or replace waits until the one before it
        of the same name has an answer, and for the next round if that one has none. New
        ids join the known ones as they come back (:meth:`_claim`), so they are never taken
        for a lost one.
        """
        ready: deque[Change] = deque()
        waiting: dict[str, deque[Change]] = {}  # by name: the new voices after one in flight
        for change in changes:
            name = _new_voice_name(change)
            if name is not None and name in waiting:
                waiting[name].append(change)
                continue
            if name is not None:
                waiting[name] = deque()
            ready.append(change)
        results: dict[str, Answer] = {}
        try:
            deferred = self._send(ready, waiting, sends, results)
        except BaseException:  # stopped: what was answered so far is still this apply's
            self._tally(changes, results, outcome)
            raise
        return self._tally(changes, results, outcome), deferred

    def _tally(
        self, changes: Sequence[Change], results: Mapping[str, Answer], outcome: Outcome
    ) -> list[Pending]:
        """Each answer into ``outcome``; returns the clones of unknown outcome. A clone
        made whose journal line could not be kept (the run stops there) is done: paid."""
        unknown = []
        for change in changes:
            answer = results.get(change.address, self._unjournaled.get(change.address))
            if answer is None:
                continue  # held back, or never sent
            if isinstance(answer, Pending):
                unknown.append(answer)
            elif isinstance(answer, Failed):
                outcome.failed.append((change, answer.message))
            else:
                outcome.done.append((change, answer))
        return unknown

    def _send(
        self,
        ready: deque[Change],
        waiting: dict[str, deque[Change]],
        sends: Counter[str],
        results: dict[str, Answer],
    ) -> list[Change]:
        """Each answer into ``results`` by address (see :meth:`_clone`), once ``ready``
        and, as the one before of their name is answered, ``waiting`` are sent; returns the
        changes held back.

        Only twice ``parallelism`` clones are handed to the pool at a time (a worker that
        finishes finds the next one waiting), and each reports through a queue: waiting
        on all of 10,000 futures at once costs O(N) per answer, and an interrupted apply
        must not leave thousands queued to be sent anyway."""
        deferred: list[Change] = []
        answers: Answers = queue.SimpleQueue()
        in_flight = 0
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            try:
                while ready or in_flight:
                    while ready and in_flight < 2 * self.parallelism:
                        self._rewitness()
                        change = ready.popleft()
                        sends[change.address] += 1
                        future = pool.submit(self._clone, change)
                        future.add_done_callback(functools.partial(_answered, answers, change))
                        in_flight += 1
                    change, future = answers.get()
                    in_flight -= 1
                    result = results[change.address] = future.result()
                    deferred += _next_of_name(change, result, waiting, ready)
            except BaseException:
                # ^C or a bug: clones not yet started are never sent; those on the wire
                # finish and are journaled as the with-block waits for them.
                pool.shutdown(wait=True, cancel_futures=True)
                _collect(answers, results)
                raise
        return deferred

    def _rewitness(self) -> None:
        """Read the account again once the witness is ``rewitness`` seconds old, so that
        a clone sent late in a long apply is told by a recent one (see
        :func:`voicectl.apply.reconcile.unproven`). A listing that fails keeps the old one."""
        if self._listing is None or self.clock() - self._listed_at < self.rewitness:
            return
        began = self.clock()
        try:
            voices = list(self.client.voices(expected=len(self._known)))
        except VoicectlError:
            return
        self._listed(voices, began)

    def _clone(self, change: Change) -> Answer:
        """The new voice id, a Failed clone, or the Pending whose outcome is unknown."""
        started, at = self.clock(), now()
        listing = self._listing  # the account as read before this clone was sent
        before = (
            reconcile.witness(change, listing, self._by_name, self._listed_at)
            if listing is not None
            else None
        )
        seq = self.journal.pending(change, at, started, before)  # stops here: nothing sent
        self.on_event(Event(EventKind.START, change.address, change.action, change.voice_id))
        after = change.after
        assert after is not None  # every cloning change carries the voice it makes
        audio = after.audio
        try:
            with upload.open_take(self.root, audio.path, audio.sha256) as take:
                result = self.client.clone(
                    audio=take,
                    audio_format=audio.format,
                    voice_name=after.name,
                    language=after.language,
                    text=after.text,
                    preview_text=after.preview_text,
                    space_id=after.space,
                    voice_id=change.voice_id if change.action == Action.RETRAIN else None,
                )
        except OutcomeUnknown as exc:
            self._ended[seq] = self.clock()
            self._unknown[change.address] = exc.message
            self._event_error(change, started, f"{exc.message}; checking Coze's voice list")
            return Pending(seq, change, at, started, before)
        except (VoicectlError, OSError) as exc:
            message = exc.message if isinstance(exc, VoicectlError) else str(exc)
            self.journal.failed(seq, now(), message)
            self._event_error(change, started, message)
            return Failed(message)
        suspect = self._claim(change, result.voice_id, listing)
        if suspect is not None:  # a reply that cannot be this clone's proves nothing
            self._ended[seq] = self.clock()
            self._unknown[change.address] = suspect
            self._event_error(change, started, f"{suspect}; checking Coze's voice list")
            return Pending(seq, change, at, started, before)
        try:
            self.journal.done(seq, now(), result.voice_id, result.logid)
        except VoicectlError:
            self._unjournaled[change.address] = result.voice_id
            self._said_done(change, result, started)  # made and paid for: said, then stop
            raise
        self._said_done(change, result, started)
        return result.voice_id

    def _said_done(self, change: Change, result: CloneResult, started: float) -> None:
        self.on_event(
            Event(
                EventKind.DONE,
                change.address,
                change.action,
                result.voice_id,
                self.clock() - started,
                clones_left=change.budget.after,
            )
        )

    def _listed(self, voices: Iterable[RemoteVoice], listed_at: float) -> None:
        """Keep a complete listing, read from ``listed_at``, as the account before the
        next clones."""
        self._listing = {v.voice_id: v for v in voices}
        self._listed_at = listed_at
        by_name: dict[str, list[str]] = {}
        for voice in self._listing.values():
            by_name.setdefault(voice.name, []).append(voice.voice_id)
        self._by_name = by_name

    def _claim(
        self, change: Change, voice_id: str, listing: Mapping[str, RemoteVoice] | None
    ) -> str | None:
        """Why ``voice_id`` cannot be what ``change`` made, or None once it is claimed:
        a retrain keeps its voice id; a new voice id is one nobody holds (the state's,
        or one this apply already recorded: two addresses never share a voice) and that
        was not on the account before the clone."""
        if change.action == Action.RETRAIN:
            if voice_id == change.voice_id:
                return None
            return f"Coze's reply to a retrain of voice {change.voice_id} names voice {voice_id}"
        if listing is not None and voice_id in listing:
            return f"Coze's reply names voice {voice_id} as new, but it was there before"
        with self._claims:
            if voice_id in self._known:
                return f"Coze's reply names voice {voice_id} as new, but it is already taken"
            self._known.add(voice_id)
        return None

    def _event_error(self, change: Change, started: float, message: str) -> None:
        self.on_event(
            Event(
                EventKind.ERROR,
                change.address,
                change.action,
                change.voice_id,
                self.clock() - started,
                error=message,
            )
        )

    def resolve(
        self,
        unknown: Sequence[Pending],
        known: set[str],
        outcome: Outcome,
        adopt: Mapping[str, str] | None = None,
    ) -> list[Change]:
        """Settle clones of unknown outcome through the list; returns those to send again
        (see :meth:`voicectl.apply.resolve.Resolver.resolve`)."""
        return self.resolver.resolve(unknown, known, outcome, self._ended, adopt)


Answers = queue.SimpleQueue[tuple[Change, Future[Answer]]]


def _answered(answers: Answers, change: Change, future: Future[Answer]) -> None:
    answers.put((change, future))


def _collect(answers: Answers, results: dict[str, Answer]) -> None:
    """The answers of the clones that finished while a stopped run waited for them."""
    while not answers.empty():
        change, future = answers.get()
        if not future.cancelled() and future.exception() is None:
            results[change.address] = future.result()


def _next_of_name(
    change: Change,
    result: Answer,
    waiting: dict[str, deque[Change]],
    ready: deque[Change],
) -> list[Change]:
    """Once ``change`` is answered, the next new voice of its name is ready; all of them
    are held back (returned) when its outcome is unknown."""
    name = _new_voice_name(change)
    if name is None:
        return []
    if isinstance(result, Pending):
        return list(waiting.pop(name))
    if waiting[name]:
        ready.append(waiting[name].popleft())
    else:
        del waiting[name]
    return []


def _new_voice_name(change: Change) -> str | None:
    """The voice_name a create or replace gives its new voice id; None for a retrain."""
    if change.action not in NEW_VOICE_ACTIONS:
        return None
    return change.after.name if change.after else ""
