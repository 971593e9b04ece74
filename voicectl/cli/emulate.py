"""`voicectl emulator`: a local Coze-compatible voice API."""

from __future__ import annotations

from pathlib import Path

import click

from voicectl.emulator import EmulatorError, serve
from voicectl.errors import UsageError


@click.command()
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
