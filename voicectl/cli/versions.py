"""`voicectl state versions` and `state pull`: the versions of the state its store keeps."""

from __future__ import annotations

import sys

import click

from voicectl import render
from voicectl.cli.gitops import config_for, state_group
from voicectl.errors import UsageError
from voicectl.plan import repository


@state_group.command("versions")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def state_versions(ctx: click.Context, as_json: bool) -> None:
    """Every version of the state its store kept, oldest first: serial, when, by whom,
    at which commit, and the sha256 of its bytes. PostgreSQL keeps each one; the state
    file's store keeps those written on this machine (git holds the rest)."""
    home = repository.home(config_for(ctx))
    versions = home.versions()
    if as_json:
        rows = [v.__dict__ for v in versions]
        click.echo(render.json_text({"store": home.display, "versions": rows}), nl=False)
        return
    click.echo(f"{'SERIAL':>6}  {'WRITTEN AT':<20}  {'BY':<24}  {'COMMIT':<12}  SHA256")
    for v in versions:
        by = v.written_by or "-"
        click.echo(
            f"{v.serial:>6}  {v.written_at:<20}  {by:<24}  {v.git_commit[:12] or '-':<12}  "
            f"{v.sha256[:16]}"
        )
    click.echo(f"{len(versions)} version(s) in {home.display}.")


@state_group.command("pull")
@click.option("--serial", type=click.IntRange(min=1), help="That version, not the latest.")
@click.pass_context
def state_pull(ctx: click.Context, serial: int | None) -> None:
    """Print the state as stored (or its version --serial N) to stdout, byte for byte."""
    home = repository.home(config_for(ctx))
    body = home.pull(serial)
    if body is None:
        which = "no state yet" if serial is None else f"no version with serial {serial}"
        hint = "" if serial is None or home.versions() else " (it keeps no bodies of older ones)"
        raise UsageError(f"{home.display} holds {which}{hint}")
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()
