"""Shell completion of addresses: from the declarations, the state, or both.

click completes commands and options itself (``_VOICECTL_COMPLETE=bash_source voicectl``,
see the README); these functions give it the addresses a command takes. Completion runs
on every Tab press, so it never fails loudly: a repository it cannot read completes
nothing, and it writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.shell_completion import CompletionItem

from voicectl.declare.declarations import load_declarations
from voicectl.plan import repository
from voicectl.state import statefile as state

if TYPE_CHECKING:
    from voicectl.declare.config import Config

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _config(ctx: click.Context) -> Config:

    start = ctx.find_root().params.get("chdir") or Path.cwd()
    return repository.open_config(Path(start))


def _declared(ctx: click.Context) -> Iterable[str]:

    return [d.address for d in load_declarations(_config(ctx)).declarations]


def _recorded(ctx: click.Context) -> Iterable[str]:

    cfg = _config(ctx)
    if cfg.pg is not None:
        return []  # a database a keystroke should not wait on
    current = state.load(cfg.state_path, cfg.state, None)
    if current is None:
        return []
    return [*current.voices, *(r.address for r in current.orphans)]


def _completer(*sources: Callable[[click.Context], Iterable[str]]) -> Completer:
    def complete(
        ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        found: set[str] = set()
        for source in sources:
            try:
                found.update(source(ctx))
            except Exception:
                continue
        return [CompletionItem(a) for a in sorted(found) if a.startswith(incomplete)]

    return complete


def _unrecorded(ctx: click.Context) -> Iterable[str]:

    return sorted(set(_declared(ctx)) - set(_recorded(ctx)))


declared = _completer(_declared)
"""Addresses declared in the repository (``import``)."""
recorded = _completer(_recorded)
"""Addresses the state records, orphans' old ones included (``state show``, ``history``)."""
either = _completer(_declared, _recorded)
"""Both: what a plan can target (a voice removed from YAML is still in the state)."""
unrecorded = _completer(_unrecorded)
"""Declared and not in the state: where ``state mv`` can move a voice to."""
