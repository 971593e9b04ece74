"""What carrying out a plan tells as it goes, and what it comes to.

The executor and the resolver never print: each step is an :class:`Event` handed to a
callback the CLI renders, and the whole apply ends as an :class:`Outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voicectl.model import Change


@dataclass(frozen=True)
class Event:
    kind: str  # "voice_start" | "voice_done" | "voice_error" | "reconcile"
    address: str
    action: str
    voice_id: str | None = None
    elapsed: float = 0.0
    error: str = ""
    clones_left: int | None = None
    unproven: str = ""  # a reconciled clone that may be someone else's: why
    passed_over: tuple[str, ...] = ()  # the other candidates --adopt did not choose


@dataclass
class Outcome:
    done: list[tuple[Change, str | None]] = field(default_factory=list)
    failed: list[tuple[Change, str]] = field(default_factory=list)
