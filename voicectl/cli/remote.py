"""Commands that talk to Coze or guard the state: apply, force-unlock, emulator."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from voicectl.cli.repo import _check_policy, _plan_options, _planned
from voicectl.cli.root import _start, cli
from voicectl.errors import (
    EXIT_USER_ERROR,
    UsageError,
)

if TYPE_CHECKING:
    from voicectl.config import Config


def _adoptions(values: Sequence[str]) -> dict[str, str]:
    found = {}
    for value in values:
        address, _, voice_id = value.partition("=")
        if not address or not voice_id.isdigit():
            raise UsageError(f"--adopt {value!r}: expected ADDRESS=VOICE_ID")
        found[address] = voice_id
    return found


def _client(cfg: Config) -> Any:
    from voicectl.client import CN_BASE, CozeClient, http_client

    token = os.environ.get("COZE_API_TOKEN", "").strip()
    if not token:
        raise UsageError(
            "COZE_API_TOKEN is not set: apply needs a Coze token with the "
            "createVoice and listVoice permissions"
        )
    base = os.environ.get("COZE_API_BASE", "").strip() or cfg.api_base or CN_BASE
    return CozeClient(http_client(base), token)


@cli.command()
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="How many clones to run at once.",
)
@click.option(
    "--adopt",
    multiple=True,
    metavar="ADDRESS=VOICE_ID",
    help="Settle a lost clone reply by naming the voice it created.",
)
@_plan_options
@click.pass_context
def apply(
    ctx: click.Context,
    /,
    auto_approve: bool,
    parallelism: int,
    adopt: tuple[str, ...],
    **opts: Any,
) -> int:
    """Carry out the plan on Coze and record every outcome in the state."""
    from voicectl import lock, recovery, render, repository
    from voicectl.executor import Executor
    from voicectl.journal import Journal, journal_path
    from voicectl.state import now
    from voicectl.state import save as save_state

    cfg = repository.open_config(_start(ctx))
    adoptions = _adoptions(adopt)
    client = _client(cfg)
    notice = _echo_err
    with lock.locked(cfg.state_path, "voicectl apply", now(), notice):
        current, existed = repository.load_state(cfg)
        current = recovery.recover(
            cfg.state_path,
            current,
            lambda log: Executor(client, cfg.root, log, 1, _Progress(0)),
            adoptions,
            notice,
        )
        result = _planned(ctx, cfg, current, opts)
        click.echo(render.render_text(result), nl=False)
        _check_policy(cfg, result)
        work = result.actionable
        blocked = [c for c in result.changes if c.action == "blocked"]
        if not work:
            return EXIT_USER_ERROR if blocked else 0
        if not auto_approve:
            if not sys.stdin.isatty():
                raise UsageError(
                    "no terminal to confirm on: review the plan and pass --auto-approve"
                )
            if not click.confirm("Carry out this plan?", default=False):
                click.echo("Nothing was changed.")
                return EXIT_USER_ERROR
        if not existed:  # the journal must name a lineage that is on disk
            current = save_state(cfg.state_path, current)
        progress = _Progress(len(work), bar=_interactive())
        log = Journal.begin(journal_path(cfg.state_path), current, now())
        try:
            outcome = Executor(client, cfg.root, log, parallelism, progress).run(
                work, recovery.known_ids(current)
            )
        finally:
            progress.close()
            log.close()
            final = recovery.fold_or_keep(cfg.state_path, current, notice)
    click.echo(render.apply_summary(outcome.done, outcome.failed, blocked, final), nl=False)
    return EXIT_USER_ERROR if outcome.failed or blocked else 0


class _Progress:
    """Renders executor events: a progress bar on a terminal, one plain line per voice in CI.

    Events arrive from the worker threads; a lock keeps lines whole.
    """

    def __init__(self, total: int, bar: bool = False) -> None:
        self.total, self.finished = total, 0
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

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def __call__(self, event: Any) -> None:
        with self.lock:
            if event.kind == "voice_start":
                return
            if event.kind == "voice_error":
                line = (
                    f"{event.address}: {event.action} failed after {event.elapsed:.1f}s: "
                    f"{event.error}"
                )
                click.echo(("\n" if self.bar else "") + line, err=True)
                return
            self.finished += 1
            how = " (found on Coze after a lost reply)" if event.kind == "reconcile" else ""
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


def _interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def _echo_err(message: str) -> None:
    click.echo(f"notice: {message}", err=True)


@cli.command("force-unlock")
@click.pass_context
def force_unlock(ctx: click.Context) -> None:
    """Remove a stale lock on the state (make sure no apply is running)."""
    from voicectl import lock, repository

    cfg = repository.open_config(_start(ctx))
    holder = lock.force_unlock(cfg.state_path)
    if holder is None:
        click.echo("The state is not locked.")
    else:
        click.echo(f"Removed the lock held by {lock.describe(holder)}.")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8787, show_default=True)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".voicectl/emulator"),
    show_default=True,
    help="Where the emulator keeps its voices and ledger.",
)
@click.option(
    "--token",
    "tokens",
    multiple=True,
    help="Accept this bearer token (repeatable; TOKEN:scopes=...,spaces=... limits "
    "it). With none, any non-empty token is accepted.",
)
@click.option(
    "--strict-docs", is_flag=True, help="Clone replies carry only {voice_id}, as Coze documents."
)
def emulator(
    host: str, port: int, data_dir: Path, tokens: tuple[str, ...], strict_docs: bool
) -> None:
    """Run a local Coze-compatible voice API (for tests, demos and CI)."""
    from voicectl.emulator.server import serve

    serve(host, port, data_dir, tokens, strict_docs, click.echo)
