"""What apply shows while it works: a progress bar, plain lines in CI, or JSON events."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from voicectl import render
from voicectl.apply.events import Event, EventKind
from voicectl.cli import waits
from voicectl.plan.changeparts import unproven_note

if TYPE_CHECKING:
    from voicectl.model import Change, Plan, State


class Output:
    """Where apply's output goes: text for people, or one JSON event per line."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.started = time.monotonic()

    def emit(self, event: str, **fields: Any) -> None:
        body = {"event": event, "elapsed": round(time.monotonic() - self.started, 3), **fields}
        click.echo(json.dumps(body, sort_keys=True, ensure_ascii=False))

    def plan(self, result: Plan) -> None:

        if not self.as_json:
            click.echo(render.render_text(result), nl=False)
            return
        cost = result.cost
        self.emit(
            "start",
            changes=len(result.actionable),
            summary=result.summary,
            clones_to_spend=result.clones_spent,
            speech_calls=result.speech_calls,
            one_time_cny=cost.one_time_cny,
            monthly_cny_delta=cost.monthly_cny_delta,
        )

    def speech(self, calls: int) -> None:
        """The billed speeches apply made to keep retrained voices' sound, if any."""
        if not calls:
            return
        if self.as_json:
            self.emit("snapshots", speech_calls=calls, directory=".voicectl/snapshots")
            return
        click.echo(
            f"Speech calls: {calls} (billed by Coze), keeping the retrained voices' sound "
            "before and after under .voicectl/snapshots/ (`voicectl review` plays them)."
        )

    def progress(self, total: int) -> Progress:
        if self.as_json:
            return Progress(total, events=self.emit)
        return Progress(total, bar=interactive())

    def summary(
        self,
        done: Sequence[tuple[Change, str | None]],
        failed: Sequence[tuple[Change, str]],
        blocked: Sequence[Change],
        final: State,
        recorded: bool = True,
    ) -> None:
        """The apply's end; ``recorded`` False: the state was not written."""
        if not self.as_json:
            click.echo(render.apply_summary(done, failed, blocked, final, recorded), nl=False)
            return
        voices = []
        for change, voice_id in sorted(done, key=lambda item: item[0].address):
            record = final.voices.get(change.address)
            voices.append(
                {
                    "address": change.address,
                    "action": change.action,
                    "voice_id": voice_id,
                    "clones_used": record.clones_used if record else None,
                    "clones_left": record.clones_left if record else None,
                }
            )
        self.emit(
            "summary",
            ok=not failed and not blocked and recorded,
            recorded=recorded,
            done=voices,
            failed=[{"address": c.address, "action": c.action, "error": e} for c, e in failed],
            blocked=[{"address": c.address, "message": c.message} for c in blocked],
            clones_spent=sum(1 for c, _ in done if c.spends_clone),
            one_time_cny=sum(c.cost.one_time_cny for c, _ in done),
            monthly_cny_delta=sum(c.cost.monthly_cny_delta for c, _ in done),
        )


class Progress:
    """Renders executor events: a progress bar on a terminal, one plain line per voice in CI.

    Events arrive from the worker threads; a lock keeps lines whole.
    """

    def __init__(
        self,
        total: int,
        bar: bool = False,
        events: Callable[..., None] | None = None,
    ) -> None:
        self.total, self.finished = total, 0
        self.events = events
        self.lock = threading.Lock()
        self.bar: Any = None
        if bar and total:
            self.bar = click.progressbar(
                length=total,
                label="Applying",
                file=sys.stderr,
                show_pos=True,
                item_show_func=lambda item: item,
            )
            self.bar.__enter__()
            waits.bars.append(self)  # notices (waits) keep off the bar's line

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
            waits.bars.remove(self)

    def __call__(self, event: Event) -> None:
        with self.lock:
            if self.events is not None:
                ended = event.kind in (EventKind.DONE, EventKind.RECONCILE)
                kind = "voice_complete" if ended else event.kind.value
                fields: dict[str, Any] = {
                    "address": event.address,
                    "action": event.action.value,
                    "voice_id": event.voice_id,
                    "seconds": round(event.elapsed, 3),
                }
                if event.kind == EventKind.ERROR:
                    fields["error"] = event.error
                if event.kind == EventKind.RECONCILE:
                    fields["reconciled"] = True
                if event.unproven:
                    fields["unproven"] = event.unproven
                if event.passed_over:
                    fields["passed_over"] = list(event.passed_over)
                if event.clones_left is not None:
                    fields["clones_left"] = event.clones_left
                self.events(kind, **fields)
                return
            if event.kind == EventKind.START:
                return
            if event.kind == EventKind.ERROR:
                line = (
                    f"{event.address}: {event.action} failed after {event.elapsed:.1f}s: "
                    f"{event.error}"
                )
                click.echo(("\n" if self.bar else "") + line, err=True)
                return
            self.finished += 1
            how = " (found on Coze after a lost reply)" if event.kind == EventKind.RECONCILE else ""
            left = "" if event.clones_left is None else f", {event.clones_left} clones left"
            line = (
                f"{event.address}: {event.action} done: voice {event.voice_id}{left} in "
                f"{event.elapsed:.1f}s{how}"
            )
            if self.bar is not None:
                self.bar.update(1, event.address)
            else:
                count = f"[{self.finished}/{self.total}] " if self.total else ""
                click.echo(count + line)
            if event.unproven:
                note = unproven_note(event.address, event.voice_id, event.unproven)
                click.echo(("\n" if self.bar else "") + f"{event.address}: {note}", err=True)
            if event.passed_over:  # one of them may be a clone paid for: never unsaid
                others = ", ".join(event.passed_over)
                click.echo(
                    ("\n" if self.bar else "")
                    + f"{event.address}: voice(s) {others}, also found and not chosen, stay on "
                    "Coze (billed 1 CNY a month each) and are kept in the state as orphans "
                    "(`voicectl state list`); `voicectl import ADDRESS VOICE_ID` records one "
                    "at another address",
                    err=True,
                )


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")
