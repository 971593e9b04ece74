"""Commands that run beside the plan/apply cycle: force-unlock, and the local emulator."""

from __future__ import annotations

from pathlib import Path

import click

from voicectl.cli.root import _start, cli
from voicectl.errors import UsageError


@cli.command("force-unlock")
@click.argument("lock_id")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def force_unlock(ctx: click.Context, lock_id: str, force: bool) -> None:
    """Remove the lock file with id LOCK_ID (the message of a locked command shows it),
    if no running process holds it (one a running apply holds is refused: stop that
    process; its lock is freed when it ends). Asks first on a terminal."""
    import socket
    import sys

    from voicectl.errors import StateError
    from voicectl.plan import repository
    from voicectl.state import lock

    cfg = repository.open_config(_start(ctx))
    info = lock.read_holder(lock.lock_path(cfg.state_path))
    if info is None:
        click.echo("The state is not locked.")
        return
    # What would refuse is said before anything is asked.
    if lock.lock_id(info) != lock_id:
        raise StateError(
            f"the lock's id is {lock.lock_id(info)}, not {lock_id} ({lock.describe(info)}); "
            "nothing was removed"
        )
    if info.get("host") == socket.gethostname() and lock.running_holder(cfg.state_path):
        raise StateError(
            f"the lock is held by a running process ({lock.describe(info)}); stop that "
            "process instead: its lock is freed the moment it ends"
        )
    asked = not force and sys.stdin.isatty()
    if asked and not click.confirm(f"Remove the lock of {lock.describe(info)}?", default=False):
        click.echo("Nothing was changed.")
        return
    holder = lock.force_unlock(cfg.state_path, lock_id)
    if holder is None:
        click.echo("The state is not locked.")
    else:
        click.echo(f"Removed a lock file nobody held (it named {lock.describe(holder)}).")


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
    "--full-clone-reply",
    is_flag=True,
    help="Answer a clone with the whole voice record, not only {voice_id} as Coze documents "
    "(cozepy 0.20.0's clone() needs it: it raises on the documented reply).",
)
@click.option(
    "--slots",
    type=click.IntRange(0),
    default=None,
    help="The account's voice slots (Coze's plans include one; packs buy more): a new "
    "clone beyond them is refused with 4019. Unlimited by default.",
)
@click.option("--access-log", is_flag=True, help="Log every request on stderr (uvicorn's log).")
@click.option("--verbose", is_flag=True, help="Say at start how it answers and what it accepts.")
def emulator(
    host: str,
    port: int,
    data_dir: Path,
    tokens: tuple[str, ...],
    full_clone_reply: bool,
    slots: int | None,
    access_log: bool,
    verbose: bool,
) -> None:
    """Run a local Coze-compatible voice API (for tests, demos and CI)."""
    from voicectl.emulator import EmulatorError, serve

    try:
        serve(
            host,
            port,
            data_dir,
            tokens,
            click.echo,
            full_clone_reply=full_clone_reply,
            slot_quota=slots,
            access_log=access_log,
            verbose=verbose,
        )
    except EmulatorError as exc:
        raise UsageError(str(exc)) from None
