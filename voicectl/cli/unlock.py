"""`voicectl force-unlock`: remove a lock file nobody holds, or end the PostgreSQL session
holding the lock."""

from __future__ import annotations

import socket
import sys
from typing import Any

import click

from voicectl.cli.root import _start
from voicectl.errors import StateError
from voicectl.plan import repository
from voicectl.state import lock
from voicectl.state.store import StateStore


@click.command("force-unlock")
@click.argument("lock_id")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def force_unlock(ctx: click.Context, lock_id: str, force: bool) -> None:
    """Remove the lock file with id LOCK_ID (the message of a locked command shows it),
    if no running process holds it (one a running apply holds is refused: stop that
    process; its lock is freed when it ends). Asks first on a terminal."""
    cfg = repository.open_config(_start(ctx))
    if cfg.pg is not None:
        _end_holder(repository.home(cfg), lock_id, force)
        return
    info = lock.read_holder(lock.lock_path(cfg.state_path))
    if info is None:
        click.echo("The state is not locked.")
        return
    # What would refuse is said before anything is asked.
    _same_id(info, lock_id, "nothing was removed")
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


def _end_holder(home: StateStore, lock_id: str, force: bool) -> None:
    """PostgreSQL's lock: its holder's database session is ended (the lock goes with it),
    where this role may."""
    info = home.holder()
    if info is None:
        home.force_unlock(lock_id)  # refuses a lock held by a session that said nothing
        click.echo("The state is not locked.")
        return
    _same_id(info, lock_id, "nothing was done")
    asked = not force and sys.stdin.isatty()
    question = (
        f"End the database session of {lock.describe(info)}, which holds the lock? If that "
        "process still runs, it learns so only when it next writes: do this only for a "
        "holder that is gone"
    )
    if asked and not click.confirm(question, default=False):
        click.echo("Nothing was changed.")
        return
    ended = home.force_unlock(lock_id)
    if ended is None:
        click.echo("The state is not locked (its holder ended meanwhile).")
    else:
        click.echo(f"Ended the database session holding the lock ({lock.describe(ended)}).")


def _same_id(info: dict[str, Any], lock_id: str, nothing: str) -> None:
    if lock.lock_id(info) != lock_id:
        raise StateError(
            f"the lock's id is {lock.lock_id(info)}, not {lock_id} ({lock.describe(info)}); "
            f"{nothing}"
        )
