"""`voicectl force-unlock`: remove a lock file nobody holds."""

from __future__ import annotations

import socket
import sys

import click

from voicectl.cli.root import _start
from voicectl.errors import StateError
from voicectl.plan import repository
from voicectl.state import lock


@click.command("force-unlock")
@click.argument("lock_id")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def force_unlock(ctx: click.Context, lock_id: str, force: bool) -> None:
    """Remove the lock file with id LOCK_ID (the message of a locked command shows it),
    if no running process holds it (one a running apply holds is refused: stop that
    process; its lock is freed when it ends). Asks first on a terminal."""
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
