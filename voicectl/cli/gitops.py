"""Commands for a team's GitOps flow: drift, refresh, state, history (import: cli.adopt)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import click

from voicectl import render
from voicectl.apply import recovery
from voicectl.cli import account, complete, waits
from voicectl.cli.root import _start, lock_timeout, lock_timeout_option
from voicectl.errors import EXIT_CHANGES, UsageError, visible
from voicectl.model import ADDRESS_PATTERN
from voicectl.plan import drift as drifts
from voicectl.plan import planning, repository
from voicectl.state import sounds, transition
from voicectl.state import statefile as state
from voicectl.state import statefile as states
from voicectl.state.journal import journal_path

if TYPE_CHECKING:
    from voicectl.declare.config import Config
    from voicectl.model import State, TakeEntry

ADDRESS = re.compile(ADDRESS_PATTERN)


def notice(message: str) -> None:
    click.echo(f"notice: {message}", err=True)


@contextmanager
def _writing(cfg: Config, command: str) -> Iterator[tuple[State, Callable[[State], State]]]:
    """The state under the apply lock, with a finished journal folded in; yields it with a
    function that saves a new state (serial bumped, atomic)."""
    home = repository.home(cfg)
    with home.locked(command, notice, lock_timeout()):
        stored = home.read()
        recovery.bring(home, journal_path(cfg.state_path), notice)  # another runner's
        # A first apply's journal holds clones of a state not written yet: folded too.
        current = recovery.fold(
            cfg.state_path, stored or states.new_state(), home=home,
            stored=stored is not None, ours=account.journal_check(cfg),
        )  # fmt: skip
        if stored is None and current.serial == 0:
            raise UsageError(f"{cfg.state}: there is no state yet; `voicectl apply` creates it")
        yield current, lambda new: home.write(new, base=current)


def _heard(cfg: Config, entries: list[tuple[str, TakeEntry]]) -> dict[tuple[str, int], str]:
    """Where the sound of each clone's training was kept (this machine's, sealed), by
    voice id and clone number: a snapshot that heard the clone's take, the one of its
    number first (a take used twice is two trainings), else the nearest (a training
    made outside voicectl shifts Coze's count from history's)."""
    kept = {v: sounds.snapshots(cfg.root, v) for v in {e.voice_id for _, e in entries}}
    found = {}
    for sha, e in entries:
        heard = [c for c, (meta, _) in kept[e.voice_id].items() if meta.get("trained_on") == sha]
        if heard:
            clone = min(heard, key=lambda c: (abs(c - e.clone), c))
            where = sounds.snapshot_dir(cfg.root, e.voice_id, clone).relative_to(cfg.root)
            found[e.voice_id, e.clone] = f"{where.as_posix()}/"
    return found


def effective_state(cfg: Config) -> tuple[State, str]:
    """The state to read: with an interrupted apply's completed clones, and the warning
    that says so, said on stderr."""
    current, warning = repository.effective_state(cfg, account.journal_check(cfg))
    if warning:
        click.echo(f"warning: {warning}", err=True)
    return current, warning


def config_for(ctx: click.Context) -> Config:

    return repository.open_config(_start(ctx))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@lock_timeout_option
@click.pass_context
def drift(ctx: click.Context, as_json: bool) -> int:
    """Compare the state with Coze's account (read-only): exit 0 in sync, 2 on drift."""
    cfg = config_for(ctx)
    waits.for_apply(cfg, "drift")
    seen = repository.interrupted(cfg, account.journal_check(cfg))
    current, warning = seen.state, seen.warning
    if warning:
        click.echo(f"warning: {warning}", err=True)
    remote = planning.remote_voices(account.client_for(cfg, "drift"), current)
    found = drifts.find(current, remote)
    if warning:  # an interrupted apply's own clone is not someone else's change
        unsettled = seen.unknown
        found = [
            replace(
                d,
                kind="unsettled",
                detail="was sent a clone by an interrupted apply, its outcome unknown: "
                "`voicectl apply` looks for it on Coze and settles it",
            )
            if d.address in unsettled
            else d
            for d in found
        ]
    if as_json:
        click.echo(
            render.json_text(
                {
                    "in_sync": not found,
                    "voices": len(current.voices),
                    "drift": [
                        {
                            "address": d.address,
                            "kind": d.kind,
                            "voice_id": d.voice_id,
                            "detail": d.detail,
                        }
                        for d in found
                    ],
                }
            ),
            nl=False,
        )
    else:
        for d in found:
            click.echo(f"{d.address}: {d.kind}: voice {d.voice_id} {d.detail}")
        if found:
            click.echo(
                f"Drift: {len(found)} finding(s) over {len(current.voices)} voice(s). "
                "`voicectl refresh` records Coze's facts in the state."
            )
        else:
            click.echo(f"In sync: {len(current.voices)} voice(s) match Coze's account.")
    return EXIT_CHANGES if found else 0


@click.command()
@lock_timeout_option
@click.pass_context
def refresh(ctx: click.Context) -> None:
    """Record Coze's facts (name, clones left, update time) in the state; never clones."""
    cfg = config_for(ctx)
    client = account.client_for(cfg, "refresh")
    with _writing(cfg, "voicectl refresh") as (current, save):
        remote = planning.remote_voices(client, current)
        for d in drifts.find(current, remote):
            click.echo(f"{d.address}: {d.kind}: voice {d.voice_id} {d.detail}")
        updated = transition.refreshed(current, remote, state.now())
        if updated == current:  # no new fact: no write, no diff in git, no stale saved plan
            seen = sum(1 for r in current.voices.values() if r.voice_id in remote)
            click.echo(
                f"Coze says what the state records of {seen} of {len(current.voices)} "
                "voice(s); nothing was written."
            )
            return
        written = save(updated)
    seen = sum(1 for r in written.voices.values() if r.voice_id in remote)
    click.echo(
        f"Refreshed {seen} of {len(written.voices)} voice(s) from Coze "
        f"(state serial {written.serial})."
    )


@click.group("state")
def state_group() -> None:
    """Read or edit the state: list, show, mv, rm (under the apply lock); its versions,
    and pull to print one."""


@state_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def state_list(ctx: click.Context, as_json: bool) -> None:
    """Every voice in the state, with its voice id and budget."""
    cfg = config_for(ctx)
    current, _ = effective_state(cfg)
    rows: list[dict[str, Any]] = [
        {
            "address": a,
            "voice_id": r.voice_id,
            "clones_used": r.clones_used,
            "clones_left": r.clones_left,
            "protect": r.protect,
            "verified": r.verified,
            "updated_at": r.updated_at,
        }
        for a, r in sorted(current.voices.items())
    ]
    if as_json:
        orphans = [
            {"address": r.address, "voice_id": r.voice_id, "orphaned_at": r.orphaned_at}
            for r in current.orphans
        ]
        click.echo(render.json_text({"voices": rows, "orphans": orphans}), nl=False)
        return
    width = max([len(r["address"]) for r in rows] + [len(r.address) for r in current.orphans] + [7])
    click.echo(f"{'ADDRESS':<{width}}  {'VOICE ID':<19}  CLONES  FLAGS")
    for row in rows:
        flags = ",".join(
            f
            for f, on in (
                ("protect", row["protect"]),
                ("unverified", not row["verified"]),
                ("unproven", current.voices[row["address"]].unproven is not None),
            )
            if on
        )
        click.echo(
            f"{row['address']:<{width}}  {row['voice_id']:<19}  "
            f"{row['clones_used']:>2}/10   {flags or '-'}"
        )
    for orphan in current.orphans:  # still billed: never out of sight
        click.echo(
            visible(
                f"{orphan.address:<{width}}  {orphan.voice_id:<19}  "
                f"{orphan.clones_used:>2}/10   orphan since {orphan.orphaned_at}"
            )
        )
    billed = " (still billed on Coze)" if current.orphans else ""
    click.echo(f"{len(rows)} voice(s), {len(current.orphans)} orphan(s){billed}.")


@state_group.command("show")
@click.argument("address", shell_complete=complete.recorded)
@click.pass_context
def state_show(ctx: click.Context, address: str) -> None:
    """One voice's record, as the state holds it, and its clone history."""
    cfg = config_for(ctx)
    current, _ = effective_state(cfg)
    record = current.voices.get(address)
    orphans = [r for r in current.orphans if r.address == address]
    if record is None and not orphans:
        raise UsageError(f"{address}: not in the state ({cfg.state})")
    if record is None:  # only orphans were here: shown, with how to take one back
        shown = [
            {"voice_id": r.voice_id}
            | states.record_json(r)
            | {"take_back": f"declare {address} again with this take, or `voicectl import`"}
            for r in orphans
        ]
        click.echo(render.json_text({address: {"orphans": shown}}), nl=False)
        return
    body = states.record_json(record)
    body["history"] = [
        states.entry_json(e) | {"sha256": sha} for sha, e in _history(current, address)
    ]
    click.echo(render.json_text({address: body}), nl=False)


@state_group.command("mv")
@click.argument("old", shell_complete=complete.recorded)
@click.argument("new", shell_complete=complete.unrecorded)
@lock_timeout_option
@click.pass_context
def state_mv(ctx: click.Context, old: str, new: str) -> None:
    """Record that the voice at OLD is now declared at NEW (no clone)."""
    if not ADDRESS.fullmatch(new):
        raise UsageError(f"{new!r}: an address is lower-case letters, digits, '_', '.', '-'")
    cfg = config_for(ctx)
    with _writing(cfg, "voicectl state mv") as (current, save):
        if old not in current.voices:
            raise UsageError(f"{old}: not in the state ({cfg.state})")
        if new in current.voices:
            raise UsageError(f"{new}: already in the state as voice {current.voices[new].voice_id}")
        written = save(transition.renamed(current, old, new))
    click.echo(
        f"Moved {old} -> {new} (voice {written.voices[new].voice_id}; state serial "
        f"{written.serial})."
    )


@state_group.command("rm")
@click.argument("address", shell_complete=complete.recorded)
@lock_timeout_option
@click.pass_context
def state_rm(ctx: click.Context, address: str) -> None:
    """Stop managing ADDRESS; its voice id is kept among the orphans (Coze cannot delete)."""
    cfg = config_for(ctx)
    with _writing(cfg, "voicectl state rm") as (current, save):
        record = current.voices.get(address)
        if record is None:
            raise UsageError(f"{address}: not in the state ({cfg.state})")
        if record.protect:
            raise UsageError(f"{address} is protected; lift it with `protect: false` first")
        written = save(transition.forgotten(current, address, states.now()))
    click.echo(
        f"Removed {address} from the state; voice {record.voice_id} stays on Coze (billed "
        f"1 CNY a month) and is kept among the orphans (state serial {written.serial})."
    )


def _history(current: State, address: str | None) -> list[tuple[str, TakeEntry]]:
    """(sha256, entry) for every clone, oldest first; of one address's voice if named."""
    ids: set[str] | None = None
    if address is not None:
        ids = {
            r.voice_id for r in (*current.voices.values(), *current.orphans) if r.address == address
        }
        ids |= {  # a voice once at this address, since moved: its whole history
            e.voice_id
            for entries in current.takes.values()
            for e in entries
            if e.address == address
        }
    found = [
        (sha, e)
        for sha, entries in current.takes.items()
        for e in entries
        if ids is None or e.voice_id in ids or e.address == address
    ]
    return sorted(found, key=lambda item: (item[1].applied_at, item[1].voice_id, item[1].clone))


@click.command()
@click.argument("address", required=False, shell_complete=complete.recorded)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def history(ctx: click.Context, address: str | None, as_json: bool) -> None:
    """Every clone of every voice (or of ADDRESS): when, which take, logid, commit."""
    cfg = config_for(ctx)
    current, _ = effective_state(cfg)
    known = set(current.voices) | {r.address for r in current.orphans}
    known |= {e.address for entries in current.takes.values() for e in entries}  # moved
    if address is not None and address not in known:
        raise UsageError(f"{address}: no voice in the state has been at this address")
    found = _history(current, address)
    heard = _heard(cfg, found)
    if as_json:
        body: list[dict[str, Any]] = [
            states.entry_json(e)
            | {"sha256": s}
            | ({"sound": heard[e.voice_id, e.clone]} if (e.voice_id, e.clone) in heard else {})
            for s, e in found
        ]
        click.echo(render.json_text(body), nl=False)
        return
    width = max((len(e.address) for _, e in found), default=0)
    for sha, e in found:
        sound = heard.get((e.voice_id, e.clone))
        click.echo(
            visible(  # a state is a file a pull request can edit: its text, escaped
                f"{e.applied_at}  {e.address:<{width}}  voice {e.voice_id}  clone "
                f"{e.clone:>2}/10  take {sha[:12]}  logid {e.logid or '-'}  commit "
                f"{e.commit[:12] or '-'}"
                + (" + uncommitted changes" if e.uncommitted else "")
                + (f"  sound {sound}" if sound else "")
            )
        )
    click.echo(f"{len(found)} clone(s).")
    # History lists the clones voicectl made; a voice's count includes any made elsewhere.
    records = [r for r in current.voices.values() if address in (None, r.address)]
    for record in records:
        made = sum(1 for _, e in found if e.voice_id == record.voice_id)
        elsewhere = record.clones_used - made
        if elsewhere > 0:
            click.echo(
                f"{record.address}: voice {record.voice_id} has used {record.clones_used} of "
                f"10 clones, {elsewhere} of them outside voicectl (in the Coze console, or "
                "before it was imported), which history cannot list"
            )
