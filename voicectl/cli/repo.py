"""Commands that read the repository: validate, plan, show, schema."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from voicectl import render
from voicectl.cli import account, complete, waits
from voicectl.cli.root import _start, lock_timeout_option, verbose
from voicectl.errors import (
    EXIT_CHANGES,
    EXIT_USER_ERROR,
    TransportError,
    UsageError,
    VoicectlError,
)
from voicectl.files import schemas
from voicectl.files.atomic import write_atomic
from voicectl.model import Action, PlanOptions
from voicectl.plan import planning, repository, savedplan, takequality
from voicectl.state.pending import DOUBT_NOTE
from voicectl.state.statefile import now

if TYPE_CHECKING:
    from voicectl.declare.config import Config
    from voicectl.errors import Problem
    from voicectl.model import Plan as Planned
    from voicectl.model import PlanOptions, RemoteVoice, State
    from voicectl.plan.repository import Snapshot


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
def validate(ctx: click.Context, as_json: bool) -> int:
    """Check the configuration, declarations and audio takes; report every problem."""
    cfg = repository.open_config(_start(ctx))
    snapshot = repository.read(cfg)
    _, quality = takequality.judged(cfg, snapshot.desired)  # every take, not only changed
    snapshot = replace(snapshot, problems=sorted([*snapshot.problems, *quality]))
    voices = len(snapshot.desired)
    notes = render.take_notes(
        sorted({v.take.path for v in snapshot.desired if v.take.format == "pcm"})
    )
    if as_json:
        body = render.problems_json(snapshot.problems, len(snapshot.files), voices, notes)
        click.echo(body, nl=False)
    else:
        click.echo(render.render_problems(snapshot.problems, verbose()), nl=False)
        click.echo("".join(f"note: {note}\n" for note in notes), nl=False)
        errors, warnings = len(snapshot.errors), len(snapshot.warnings)
        verdict = "invalid" if errors else "valid"
        click.echo(
            f"{verdict}: {len(snapshot.files)} file(s), {voices} voice(s), "
            f"{errors} error(s), {warnings} warning(s)"
        )
    return EXIT_USER_ERROR if snapshot.errors else 0


refresh_option = click.option(
    "--refresh/--no-refresh",
    default=None,
    help="Read Coze's account first (default: when COZE_API_TOKEN is set).",
)


def _plan_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options plan and apply share, applied in one place."""
    options = [
        click.option(
            "--target",
            "targets",
            multiple=True,
            metavar="ADDRESS",
            shell_complete=complete.either,
            help="Only this address (repeatable).",
        ),
        click.option(
            "--exclude",
            "excludes",
            multiple=True,
            metavar="ADDRESS",
            shell_complete=complete.either,
            help="Leave this address out (repeatable).",
        ),
        click.option(
            "--retrain",
            multiple=True,
            metavar="ADDRESS",
            shell_complete=complete.either,
            help="Retrain this voice even if only its name or preview text changed.",
        ),
        click.option(
            "--replace",
            multiple=True,
            metavar="ADDRESS",
            shell_complete=complete.either,
            help="Clone this voice into a new voice id; the old one becomes an orphan.",
        ),
        click.option(
            "--allow-protected",
            is_flag=True,
            help="Allow retrain, replace and orphan of protected voices.",
        ),
        click.option(
            "--allow-duplicate-name",
            is_flag=True,
            help="Create a voice even though Coze has one of that name the state does not "
            "know (by default such a create is blocked: `voicectl import` adopts it free).",
        ),
        click.option(
            "--no-snapshot",
            is_flag=True,
            help="Do not keep a retrained voice's sound before and after (by default apply "
            "keeps its preview and a reference sentence spoken before and after the retrain "
            "under .voicectl/snapshots/: two billed speech calls a retrain).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def plan_options(opts: dict[str, Any]) -> PlanOptions:

    return PlanOptions(
        targets=frozenset(opts["targets"]),
        excludes=frozenset(opts["excludes"]),
        retrain=frozenset(opts["retrain"]),
        replace=frozenset(opts["replace"]),
        allow_protected=opts["allow_protected"],
        allow_duplicate_name=opts["allow_duplicate_name"],
        snapshots=not opts["no_snapshot"],
    )


def _planned(
    cfg: Config,
    current: State,
    options: PlanOptions,
    remote: Mapping[str, RemoteVoice] | None = None,
    *,
    quiet: bool = False,
) -> tuple[Planned, Snapshot]:
    """Read the repository and plan it against ``current``; shows warnings."""
    result, snapshot = planning.planned(cfg, current, options, remote)
    return replace(result, warnings=show_warnings(snapshot.warnings, quiet)), snapshot


def show_warnings(problems: list[Problem], quiet: bool = False) -> tuple[str, ...]:
    """The repository's warnings, on stderr unless ``quiet``; their lines, for the plan."""
    said = render.render_problems(problems, verbose())
    if said and not quiet:
        click.echo(said, nl=False, err=True)
    return tuple(said.splitlines())


def _read_remote(
    cfg: Config, current: State, refresh: bool | None
) -> dict[str, RemoteVoice] | None:
    """Coze's voices when refreshing (the default with a token), else None (offline)."""
    if refresh is None:
        refresh = account.has_token()
        if not refresh:
            click.echo(
                f"note: {account.TOKEN_VARIABLE} is not set: planned offline from the state "
                "(budgets as recorded; with a token, plan reads Coze's account first)",
                err=True,
            )
    if not refresh:
        return None

    client = account.client_for(cfg, "plan --refresh")
    try:
        return planning.remote_voices(client, current)
    except TransportError as exc:
        raise VoicectlError(
            f"{exc.message}. `voicectl plan --no-refresh` plans from the state alone; Coze is "
            f"reached at {client.base_url} (COZE_API_BASE sets it)"
        ) from None


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (plan.schema.json).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default=None,
    help="Output format (default text).",
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes, 1 on error."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan, bound to its inputs, for `voicectl apply FILE`.",
)
@refresh_option
@_plan_options
@lock_timeout_option
@click.pass_context
def plan(
    ctx: click.Context,
    /,
    as_json: bool,
    fmt: str | None,
    detailed_exitcode: bool,
    out: Path | None,
    refresh: bool | None,
    **opts: Any,
) -> int:
    """Show what apply would create, retrain, move or orphan, and what it costs."""
    if as_json and fmt not in (None, "json"):
        raise UsageError("--json and --format cannot disagree; use one of them")
    fmt = "json" if as_json else fmt or "text"
    start = _start(ctx)
    cfg = repository.open_config(start)
    waits.for_apply(cfg, "plan")
    seen = repository.interrupted(cfg, account.journal_check(cfg))
    current, warning = seen.state, seen.warning
    if warning:
        click.echo(f"warning: {warning}", err=True)
    remote = _read_remote(cfg, current, refresh)
    # An interrupted apply's creates in doubt are the next apply's to settle.
    options = replace(plan_options(opts), in_doubt=seen.in_doubt)
    doubtful = seen.unknown
    result, snapshot = _planned(cfg, current, options, remote)
    if warning and doubtful:  # what the plan counts may be done already: said on each
        result = replace(
            result,
            changes=tuple(
                replace(c, notes=(*c.notes, DOUBT_NOTE))
                if c.address in doubtful - options.in_doubt and c.action != Action.NOOP
                else c
                for c in result.changes
            ),
        )
    click.echo(render.PLAN_RENDERERS[fmt](result), nl=False)
    planning.check_policy(cfg, result, current, remote)
    blocked = [c for c in result.changes if c.action == Action.BLOCKED]
    if blocked:  # apply would stop on them: the pull request fails now, not after merge
        raise UsageError(
            f"{len(blocked)} change(s) blocked, which apply would not carry out: "
            + "; ".join(f"{c.address}: {c.message}" for c in blocked)
            + (". Unblock each as said, or leave it out with `--exclude ADDRESS`")
            + ("; no plan was saved" if out is not None else "")
        )
    if out is not None:
        _save_plan(start / out, cfg, current, result, snapshot, options, remote)
        click.echo(
            f"Saved the plan to {out}; `voicectl apply {out}` carries out exactly it.", err=True
        )
    return EXIT_CHANGES if detailed_exitcode and result.has_changes else 0


def _save_plan(
    path: Path,
    cfg: Config,
    current: State,
    result: Planned,
    snapshot: Snapshot,
    options: PlanOptions,
    remote: Mapping[str, RemoteVoice] | None,
) -> None:

    on_disk = current if current.serial > 0 else None  # a state stored (serial 1 on)
    binding = savedplan.bind(
        result, on_disk, planning.declaration_digests(cfg, snapshot.files), snapshot.desired, remote
    )
    saved = savedplan.SavedPlan(result, binding, options, now())
    try:
        write_atomic(path, savedplan.dumps(saved))
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot write the plan: {exc.strerror}") from None


@click.command()
@click.argument("plan_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default=None,
    help="Output format (default text).",
)
@click.pass_context
def show(ctx: click.Context, plan_file: Path, as_json: bool, fmt: str | None) -> None:
    """Render a plan saved by `plan --out FILE`."""
    if as_json and fmt not in (None, "json"):
        raise UsageError("--json and --format cannot disagree; use one of them")
    fmt = "json" if as_json else fmt or "text"
    saved = savedplan.load(_start(ctx) / plan_file, str(plan_file))
    if fmt == "json":
        click.echo(render.json_text(savedplan.to_json(saved)), nl=False)
    else:
        click.echo(render.PLAN_RENDERERS[fmt](saved.plan), nl=False)


@click.command()
@click.argument("name", type=click.Choice(["config", "voices", "state", "plan"]))
def schema(name: str) -> None:
    """Print the JSON Schema NAME (for editors and other tools)."""
    click.echo(schemas.schema_path(name).read_text(encoding="utf-8"), nl=False)
