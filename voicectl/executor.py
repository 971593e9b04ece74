"""Carrying out a plan: clones in parallel, every outcome journaled at once.

The executor never prints: it reports :class:`Event`s through a callback the CLI
renders. It never re-sends a clone whose outcome is unknown before the list endpoint
has shown that it did not happen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from voicectl import reconcile
from voicectl.client import CozeClient, CozeError, OutcomeUnknown
from voicectl.errors import VoicectlError
from voicectl.journal import Journal, Pending
from voicectl.model import Change
from voicectl.state import now

RECONCILE_ROUNDS = 3


@dataclass(frozen=True)
class Event:
    kind: str  # "voice_start" | "voice_done" | "voice_error" | "reconcile"
    address: str
    action: str
    voice_id: str | None = None
    elapsed: float = 0.0
    error: str = ""
    clones_left: int | None = None


@dataclass
class Outcome:
    done: list[tuple[Change, str | None]] = field(default_factory=list)
    failed: list[tuple[Change, str]] = field(default_factory=list)


class Ambiguous(VoicectlError):
    """Several remote voices could be the result of one lost clone."""


class Executor:
    def __init__(
        self,
        client: CozeClient,
        root: Path,
        journal: Journal,
        parallelism: int,
        on_event: Callable[[Event], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.root, self.journal = client, root, journal
        self.parallelism = max(1, parallelism)
        self.on_event, self.clock = on_event, clock

    def run(self, changes: Sequence[Change], known_ids: Iterable[str]) -> Outcome:
        outcome = Outcome()
        clones = []
        for change in changes:
            if change.spends_clone:
                clones.append(change)
            elif change.action in ("move", "update", "orphan"):
                self.journal.state_only(change, now())
                outcome.done.append((change, change.voice_id))
                self.on_event(
                    Event(
                        "voice_done",
                        change.address,
                        change.action,
                        change.voice_id,
                        clones_left=change.budget.after,
                    )
                )
        known = set(known_ids)
        for _ in range(RECONCILE_ROUNDS):
            unknown = self._clone_all(clones, outcome)
            if not unknown:
                return outcome
            clones = self.resolve(unknown, known, outcome)
        for change in clones:
            outcome.failed.append((change, "the clone's outcome stayed unknown"))
        return outcome

    def _clone_all(self, changes: Sequence[Change], outcome: Outcome) -> list[Pending]:
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            results = list(pool.map(self._clone, changes))
        unknown = []
        for change, result in zip(changes, results, strict=True):
            if isinstance(result, Pending):
                unknown.append(result)
            elif isinstance(result, str) and result.startswith("error:"):
                outcome.failed.append((change, result.removeprefix("error:")))
            else:
                outcome.done.append((change, result))
        return unknown

    def _clone(self, change: Change) -> str | Pending:
        """The new voice id, "error:<message>", or the Pending whose outcome is unknown."""
        started, at = self.clock(), now()
        self.on_event(Event("voice_start", change.address, change.action, change.voice_id))
        seq = self.journal.pending(change, at, started)
        after = change.after or {}
        audio = after["audio"]
        try:
            result = self.client.clone(
                audio=self.root / audio["path"],
                audio_format=audio["format"],
                voice_name=after["name"],
                language=after["language"],
                text=after["text"],
                preview_text=after.get("preview_text"),
                space_id=after.get("space"),
                voice_id=change.voice_id if change.action == "retrain" else None,
            )
        except OutcomeUnknown as exc:
            self._event_error(change, started, f"{exc.message}; checking Coze's voice list")
            return Pending(seq, change, at, started)
        except (CozeError, VoicectlError, OSError) as exc:
            message = exc.message if isinstance(exc, VoicectlError) else str(exc)
            self.journal.failed(seq, now(), message)
            self._event_error(change, started, message)
            return f"error:{message}"
        self.journal.done(seq, now(), result.voice_id, result.logid)
        self.on_event(
            Event(
                "voice_done",
                change.address,
                change.action,
                result.voice_id,
                self.clock() - started,
                clones_left=change.budget.after,
            )
        )
        return result.voice_id

    def _event_error(self, change: Change, started: float, message: str) -> None:
        self.on_event(
            Event(
                "voice_error",
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
        adopt: dict[str, str] | None = None,
    ) -> list[Change]:
        """Settle clones of unknown outcome through the list; returns those to send again."""
        remote = list(self.client.voices())
        again = []
        for pending in unknown:
            change = pending.change
            found = reconcile.candidates(pending, remote, known)
            chosen = (adopt or {}).get(change.address)
            if chosen is not None:
                found = [v for v in found if v.voice_id == chosen]
            if len(found) > 1:
                ids = ", ".join(v.voice_id for v in found)
                raise Ambiguous(
                    f"{change.address}: a {change.action} sent at {pending.started_at} got no "
                    f"answer and {len(found)} voices on Coze could be its result ({ids}); "
                    f"rerun with `voicectl apply --adopt {change.address}=VOICE_ID` naming the "
                    "right one"
                )
            if found:
                voice_id = (
                    found[0].voice_id
                    if change.action in ("create", "replace")
                    else (change.voice_id)
                )
                known.add(found[0].voice_id)
                self.journal.done(pending.seq, now(), voice_id, reconciled=True)
                outcome.done.append((change, voice_id))
                self.on_event(
                    Event(
                        "reconcile",
                        change.address,
                        change.action,
                        voice_id,
                        clones_left=change.budget.after,
                    )
                )
            else:
                self.journal.failed(pending.seq, now(), "not found on Coze: never carried out")
                again.append(change)
        return again
