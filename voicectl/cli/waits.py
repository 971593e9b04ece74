"""How long one command waits on Coze, as the operator sets it in the environment, and
the notices that say so."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import click

from voicectl.cli.root import lock_timeout
from voicectl.coze.pacing import IN_HANDS_SECONDS, SETTLE_SECONDS, WAIT_BUDGET_SECONDS, WaitBudget
from voicectl.errors import UsageError
from voicectl.state import lock, store

if TYPE_CHECKING:
    from voicectl.declare.config import Config

WAIT_VARIABLE = "VOICECTL_WAIT_BUDGET"


def wait_budget() -> WaitBudget:
    """``VOICECTL_WAIT_BUDGET``: the seconds one command may spend waiting on Coze (rate
    limits, backoff) before it gives up on the requests still to send (default 600).
    Each wait of a second or more is announced on stderr."""
    total = _seconds(WAIT_VARIABLE, WAIT_BUDGET_SECONDS)
    return WaitBudget(total, announce=notice, to_raise=f"raise {WAIT_VARIABLE} (seconds)")


def _seconds(variable: str, default: float) -> float:
    """The seconds, 0 to 86400, the environment variable ``variable`` sets, or ``default``."""
    raw = os.environ.get(variable, "").strip()
    try:
        seconds = float(raw) if raw else default
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86_400:
        raise UsageError(f"{variable}={raw!r}: expected seconds, from 0 to 86400")
    return seconds


# The progress bar being drawn on stderr, if any: a notice from a worker thread must not
# be written into the middle of it.
bars: list[Any] = []


def notice(line: str) -> None:
    """One ``notice:`` line on stderr, whole, on a line of its own."""
    if not bars:
        click.echo(f"notice: {line}", err=True)
        return
    progress = bars[-1]
    with progress.lock:
        click.echo(f"\nnotice: {line}", err=True)


def settle() -> tuple[float, ...]:
    """``VOICECTL_RECONCILE_SETTLE``: the waits (seconds, comma-separated) before a lost
    clone that Coze's list does not show is concluded never made (default 2,5)."""
    raw = os.environ.get("VOICECTL_RECONCILE_SETTLE", "").strip()
    if not raw:
        return SETTLE_SECONDS
    try:
        waits = tuple(float(part) for part in raw.split(","))
    except ValueError:
        waits = ()
    if not waits or not all(0 <= w <= 600 for w in waits):
        raise UsageError(
            f"VOICECTL_RECONCILE_SETTLE={raw!r}: expected seconds (0..600) separated by commas"
        )
    return waits


def in_hands() -> float:
    """``VOICECTL_UNANSWERED_WAIT``: the seconds after a clone was sent during which, if
    no reply proved what became of it, it may still be in Coze's hands (default 1200)."""
    return _seconds("VOICECTL_UNANSWERED_WAIT", IN_HANDS_SECONDS)


def for_apply(
    cfg: Config, command: str, why: str = "show its clones in flight as interrupted"
) -> None:
    """A read-only ``command`` (plan, drift) run while an apply runs would call its clones
    in flight interrupted, and the voices they are making unknown: it waits for the apply
    (``--lock-timeout``), or says it is running. The lock is not taken, so that an apply
    starting now is not refused because of a read."""
    until = time.monotonic() + lock_timeout()
    home = store.for_repository(cfg)
    running = home.holder()
    if running is not None and lock_timeout() > 0:
        notice(f"waiting up to {lock_timeout():g} s for {lock.describe(running)}")
    while running is not None and time.monotonic() < until:
        time.sleep(0.25)
        running = home.holder()
    if running is not None:
        raise UsageError(
            f"an apply is running: {lock.describe(running)}. `voicectl {command}` now would "
            f"{why}; run it when the apply ends, or wait for it with `--lock-timeout DURATION`"
        )
