"""`voicectl import`: adopt a voice already on Coze into the state, without a clone."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import click

from voicectl.apply import recovery
from voicectl.cli import account, complete
from voicectl.cli.gitops import config_for, notice
from voicectl.cli.root import lock_timeout, lock_timeout_option
from voicectl.declare.config import Config
from voicectl.errors import UsageError
from voicectl.model import DesiredVoice, RemoteVoice, State, VoiceRecord, VoiceSpec
from voicectl.plan import planning, repository, voicediff
from voicectl.state import statefile as state
from voicectl.state import transition
from voicectl.state.journal import journal_path
from voicectl.state.store import StateStore


@click.command("import")
@click.argument("address", shell_complete=complete.declared)
@click.argument("voice_id")
@lock_timeout_option
@click.pass_context
def import_(ctx: click.Context, address: str, voice_id: str) -> None:
    """Adopt an existing Coze voice (cloned in the console, say) into the state, no clone.

    For a voice the state holds as unproven (found on Coze after a lost reply), naming
    the same address and voice id confirms it is the voice meant."""
    if not (voice_id.isascii() and voice_id.isdigit()):
        raise UsageError(f"VOICE_ID {voice_id!r}: a Coze voice id is digits (0-9) only")
    cfg = config_for(ctx)
    wanted = _declared(cfg, address)
    home = repository.home(cfg)
    with home.locked("voicectl import", notice, lock_timeout()):
        stored = home.read()
        current = stored or state.new_state()
        recovery.bring(home, journal_path(cfg.state_path), notice)  # another runner's
        folded = recovery.fold(
            cfg.state_path, current, home=home, stored=stored is not None,
            ours=account.journal_check(cfg),
        )  # fmt: skip
        base = stored if folded is current else folded  # the state as stored now
        current = folded
        held = current.voices.get(address)
        mine = held if held is not None and held.voice_id == voice_id else None
        if mine is not None and _settled_here(home, current, base, wanted, mine):
            return
        if mine is None:
            _refuse_known(current, address, voice_id)
        elif wanted.decl.space != mine.space:
            raise UsageError(
                f"{address}: voice {voice_id} is in workspace {mine.space}, but {address} is "
                f"declared in {wanted.decl.space}; a voice cannot move between workspaces: "
                f"`voicectl apply --replace {address}` clones a new one there"
            )
        client = account.client_for(cfg, "import")
        remote = planning.remote_voices(client)
        if voice_id not in remote:
            raise UsageError(
                f"voice {voice_id} is not on Coze's voice list for this token (wrong account, "
                "region or space permission?)"
            )
        found = remote[voice_id]
        if mine is not None:
            aside = f" It was {address} already; the declared take replaces the one recorded."
        else:
            current, aside = _set_aside(current, held, remote, address)
        updated = transition.imported(
            current, address, VoiceSpec.declared(wanted), found, state.now()
        )
        written = home.write(updated, base=base)
    record = written.voices[address]
    click.echo(
        f"Imported voice {voice_id} ({found.name!r}) as {address}: {record.clones_used} of "
        f"{record.limit} clones used, {record.clones_left} left. Its take is unverified "
        "(Coze keeps no copy); `voicectl plan` shows what the next retrain sends." + aside
    )


def _settled_here(
    home: StateStore, current: State, base: State | None, wanted: DesiredVoice, mine: VoiceRecord
) -> bool:
    """Whether importing the voice the state holds at its address needs nothing of Coze:
    a person's word confirms an unproven one; one with its declared take needs nothing."""
    address, voice_id = mine.address, mine.voice_id
    if mine.unproven is not None:
        # A person's word, no request: no token is needed to give it.
        home.write(transition.confirmed(current, address), base=base)
        click.echo(f"Confirmed voice {voice_id} as {address}: it is no longer marked unproven.")
        return True
    if _as_declared(wanted, mine):
        # As an import advised before an apply recovered the voice finds it: done.
        proof = "" if mine.verified else ", unverified"
        click.echo(
            f"Voice {voice_id} is already {address} in the state, with its declared "
            f"take ({mine.take.path}{proof}): nothing to import."
        )
        return True
    return False


def _declared(cfg: Config, address: str) -> DesiredVoice:
    """The voice declared at ``address``: the take an import records for it."""
    wanted = {v.decl.address: v for v in repository.read_valid(cfg).desired}
    if address not in wanted:
        raise UsageError(
            f"{address}: not declared; declare it (name, audio, text) first, so the state "
            "knows which take the voice stands for"
        )
    return wanted[address]


def _as_declared(voice: DesiredVoice, held: VoiceRecord) -> bool:
    """Whether the voice recorded at its address has its declared take, text and
    language: imported again, it would record nothing new (or forget that its take is
    verified)."""
    return not voicediff.reasons(voice, held, None).data


def _refuse_known(current: State, address: str, voice_id: str) -> None:
    """A voice id the state holds already is not imported twice."""
    for record in (*current.voices.values(), *current.orphans):
        if record.voice_id == voice_id and record.orphaned_at:
            raise UsageError(
                f"voice {voice_id} is an orphan in the state (once {record.address}, since "
                f"{record.orphaned_at}): declare {address} with the take it was cloned "
                f"from ({record.take.path}, sha256 {record.take.sha256[:12]}) and "
                "`voicectl apply` takes it back (without a clone when its text, name and "
                "language are as recorded)"
            )
        if record.voice_id == voice_id:
            raise UsageError(f"voice {voice_id} is already in the state (at {record.address})")


def _set_aside(
    current: State, held: VoiceRecord | None, remote: Mapping[str, RemoteVoice], address: str
) -> tuple[State, str]:
    """The state with the voice ``address`` holds now kept as an orphan, and a sentence
    saying so; refused when Coze lists that voice (a paid voice is never dropped)."""
    if held is None:
        return current, ""
    if held.voice_id in remote:
        raise UsageError(
            f"{address}: already in the state as voice {held.voice_id}, which Coze "
            f"lists; `voicectl apply --replace {address}` clones a new voice id"
            + (
                f", or `voicectl import {address} {held.voice_id}` confirms it"
                if held.unproven is not None
                else ""
            )
        )
    # Not a voice Coze has (a reply that named another): kept, never lost.
    orphan = dataclasses.replace(held, orphaned_at=state.now())
    current = dataclasses.replace(current, orphans=(*current.orphans, orphan))
    return current, f" Voice {held.voice_id}, which Coze does not list, is kept as an orphan."
