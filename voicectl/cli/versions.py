"""`voicectl state versions`, `state pull` and `state migrate`: the versions of the state
its store keeps, and moving it between the state file and PostgreSQL."""

from __future__ import annotations

import contextlib
import dataclasses
import sys

import click

from voicectl import render
from voicectl.cli.gitops import config_for, notice, state_group
from voicectl.cli.root import lock_timeout, lock_timeout_option
from voicectl.declare.config import Config
from voicectl.errors import UsageError
from voicectl.files import safefile
from voicectl.files.atomic import write_atomic
from voicectl.model import State
from voicectl.plan import repository
from voicectl.state import store
from voicectl.state.journal import journal_path


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
    click.echo(
        f"{'LINEAGE':<8}  {'SERIAL':>6}  {'WRITTEN AT':<20}  {'BY':<24}  {'COMMIT':<12}  SHA256"
    )
    for v in versions:
        by = v.written_by or "-"
        click.echo(
            f"{v.lineage[:8]:<8}  {v.serial:>6}  {v.written_at:<20}  {by:<24}  "
            f"{v.git_commit[:12] or '-':<12}  {v.sha256[:16]}"
        )
    click.echo(f"{len(versions)} version(s) in {home.display}.")


@state_group.command("pull")
@click.option("--serial", type=click.IntRange(min=1), help="That version, not the latest.")
@click.option(
    "--lineage",
    metavar="LINEAGE",
    help="Of that lineage (as `state versions` shows it, or a prefix), not the current one.",
)
@click.pass_context
def state_pull(ctx: click.Context, serial: int | None, lineage: str | None) -> None:
    """Print the state as stored (or its version --serial N) to stdout, byte for byte."""
    home = repository.home(config_for(ctx))
    if lineage is not None:
        lineage = _lineage(home, lineage)
    body = home.pull(serial, lineage)
    if body is None:
        which = "no state yet" if serial is None else f"no version with serial {serial}"
        which += f" of lineage {lineage}" if lineage else ""
        hint = (
            ""
            if serial is None or home.keeps_versions
            else " (the state file's store keeps its current text only: git keeps the others)"
        )
        raise UsageError(f"{home.display} holds {which}{hint}")
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()


def _lineage(home: store.StateStore, given: str) -> str:
    """The one lineage of the versions kept that ``given`` names (whole, or a prefix)."""
    known = sorted({v.lineage for v in home.versions()})
    found = [lineage for lineage in known if lineage.startswith(given)] if given else []
    if len(found) != 1:
        said = "names none" if not found else f"names {len(found)}"
        raise UsageError(
            f"--lineage {given!r} {said} of the lineages {home.display} keeps versions of "
            f"({', '.join(known) or 'none'})"
        )
    return found[0]


@state_group.command("migrate")
@click.option(
    "--to",
    "target",
    type=click.Choice(["pg", "local"]),
    required=True,
    help="pg: from the state file to PostgreSQL (backend.pg); local: back.",
)
@lock_timeout_option
@click.pass_context
def state_migrate(ctx: click.Context, target: str) -> None:
    """Copy the state, and an interrupted apply's journal, between the state file and
    PostgreSQL (the database backend.pg in voicectl.yaml names), under both locks. The
    copy is refused where the other store holds another state (another lineage) or a
    newer version of this one; the source is left as it was."""
    cfg = config_for(ctx)
    if cfg.pg is None:
        raise UsageError(
            "voicectl.yaml names no backend.pg: add it (see the README's Team state), "
            "then `voicectl state migrate --to pg`"
        )
    local = store.FileStore(cfg.state_path, cfg.state, cfg.root, cfg.root / store.STATE_CHECKED)
    database = repository.home(cfg, migrating=True)
    source, dest = (local, database) if target == "pg" else (database, local)
    command = f"voicectl state migrate --to {target}"
    with (
        source.locked(command, notice, lock_timeout()),
        dest.locked(command, notice, lock_timeout()),
    ):
        moving, there, lines = source.read(), dest.read(), _journal(source, cfg)
        if moving is None and not lines:
            raise UsageError(f"{source.display} holds no state to copy")
        held = _journal(dest, cfg)  # this journal, when copied before (or brought here)
        if held and held != lines:
            raise UsageError(_held_message(dest, cfg))
        if moving is None:  # a first apply, interrupted before it wrote a state
            _first_journal(dest, cfg, there, lines, copied=held == lines)
            return
        _refuse_over(dest.display, moving, there)
        # The copy keeps the serial (a write bumps it): an interrupted apply's journal,
        # and a saved plan, bound to it hold there as here.
        dest.write(dataclasses.replace(moving, serial=moving.serial - 1), base=there)
        if held != lines:
            _put_journal(dest, cfg, lines)
        _drop_local_copy(dest, cfg)
    kept = f", with a journal of {len(lines)} line(s)" if lines else ""
    after = (
        "voicectl reads it there from now on; `git rm` the state file, so that nobody "
        "takes it for the state"
        if target == "pg"
        else "remove backend.pg from voicectl.yaml to use it"
    )
    click.echo(
        f"Copied state serial {moving.serial} (lineage {moving.lineage}){kept} to "
        f"{dest.display}; {after}."
    )


def _first_journal(
    dest: store.StateStore, cfg: Config, there: State | None, lines: list[bytes], copied: bool
) -> None:
    """Copy the journal of a first apply, which wrote no state yet, to ``dest`` (unless
    ``copied`` there already)."""
    if there is not None:
        raise UsageError(
            f"{dest.display} holds a state already, and the journal here is of a first "
            "apply (begun from no state): finish it where it is (`voicectl apply`) and "
            "copy the state then; nothing was copied"
        )
    if not copied:
        _put_journal(dest, cfg, lines)
    _drop_local_copy(dest, cfg)
    click.echo(
        f"Copied an interrupted first apply's journal ({len(lines)} line(s)) to "
        f"{dest.display}; `voicectl apply` there records its clones."
    )


def _held_message(dest: store.StateStore, cfg: Config) -> str:
    if dest.keeps_journal:
        return (
            f"{dest.display} holds an interrupted apply's journal: run `voicectl apply` with "
            "the state there first (it recovers that apply); nothing was copied"
        )
    return (
        f"{journal_path(cfg.state_path)} holds an apply journal the state being copied "
        "does not (a copy an apply on PostgreSQL left, or an apply of this clone's own): "
        "if `voicectl plan` shows no interrupted apply, it is stale: move it away; nothing "
        "was copied"
    )


def _drop_local_copy(dest: store.StateStore, cfg: Config) -> None:
    """The state file's journal, once the database keeps it: a copy left here would be
    taken for an apply of this clone's own, were the state moved back."""
    if dest.keeps_journal:
        with contextlib.suppress(FileNotFoundError):
            journal_path(cfg.state_path).unlink()


def _refuse_over(display: str, moving: State, there: State | None) -> None:
    if there is None:
        return
    if there.lineage != moving.lineage:
        raise UsageError(
            f"{display} holds another state (lineage {there.lineage}, not "
            f"{moving.lineage}): nothing was copied"
        )
    if there.serial >= moving.serial:
        raise UsageError(
            f"{display} holds serial {there.serial} of this state already (this one is "
            f"serial {moving.serial}): nothing was copied"
        )


def _journal(home: store.StateStore, cfg: Config) -> list[bytes]:
    if home.keeps_journal:
        return home.journal_lines()
    try:
        raw = safefile.read_bytes(journal_path(cfg.state_path))
    except FileNotFoundError:
        return []
    return raw.splitlines(keepends=True)


def _put_journal(home: store.StateStore, cfg: Config, lines: list[bytes]) -> None:
    if not lines:
        return
    if home.keeps_journal:
        for line in lines:
            home.journal_add(line)
        return
    write_atomic(journal_path(cfg.state_path), b"".join(lines))
