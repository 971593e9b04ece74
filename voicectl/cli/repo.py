"""Commands that read the repository: init, validate, plan, schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from voicectl.cli.root import _start, cli
from voicectl.errors import (
    EXIT_CHANGES,
    EXIT_USER_ERROR,
    PolicyError,
    UsageError,
)

if TYPE_CHECKING:
    from voicectl.config import Config
    from voicectl.model import Plan as Planned
    from voicectl.model import State


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--space", help="Default Coze workspace id for the repository's voices.")
@click.option(
    "--language",
    type=click.Choice(["zh", "en", "ja", "es", "id", "pt"]),
    help="Default language for the repository's voices.",
)
@click.pass_context
def init(ctx: click.Context, directory: Path, space: str | None, language: str | None) -> None:
    """Create a voice repository in DIRECTORY (default: here)."""
    from voicectl.scaffold import init_repository

    directory = _start(ctx) / directory
    if space is not None and not space.isdigit():
        raise UsageError(f"--space {space!r}: a Coze workspace id is digits only")
    for path in init_repository(directory, space, language):
        click.echo(f"created {path}")
    click.echo("Next: declare voices in voices/*.yaml, then run `voicectl plan`.")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
def validate(ctx: click.Context, as_json: bool) -> int:
    """Check the configuration, declarations and audio takes; report every problem."""
    from voicectl import render, repository

    cfg = repository.open_config(_start(ctx))
    snapshot = repository.read(cfg)
    voices = len(snapshot.desired)
    if as_json:
        click.echo(render.problems_json(snapshot.problems, len(snapshot.files), voices), nl=False)
    else:
        click.echo(render.render_problems(snapshot.problems), nl=False)
        errors, warnings = len(snapshot.errors), len(snapshot.warnings)
        verdict = "invalid" if errors else "valid"
        click.echo(
            f"{verdict}: {len(snapshot.files)} file(s), {voices} voice(s), "
            f"{errors} error(s), {warnings} warning(s)"
        )
    return EXIT_USER_ERROR if snapshot.errors else 0


def _plan_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options plan and apply share, applied in one place."""
    options = [
        click.option(
            "--target",
            "targets",
            multiple=True,
            metavar="ADDRESS",
            help="Only this address (repeatable).",
        ),
        click.option(
            "--exclude",
            "excludes",
            multiple=True,
            metavar="ADDRESS",
            help="Leave this address out (repeatable).",
        ),
        click.option(
            "--retrain",
            multiple=True,
            metavar="ADDRESS",
            help="Retrain this voice even if only its name or preview text changed.",
        ),
        click.option(
            "--replace",
            multiple=True,
            metavar="ADDRESS",
            help="Clone this voice into a new voice id; the old one becomes an orphan.",
        ),
        click.option(
            "--allow-protected",
            is_flag=True,
            help="Allow retrain, replace and orphan of protected voices.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _planned(ctx: click.Context, cfg: Config, current: State, opts: dict[str, Any]) -> Planned:
    """Read the repository and plan it against ``current``; shows warnings."""
    from voicectl import planner, render, repository

    snapshot = repository.read_valid(cfg)
    options = planner.PlanOptions(
        targets=frozenset(opts["targets"]),
        excludes=frozenset(opts["excludes"]),
        retrain=frozenset(opts["retrain"]),
        replace=frozenset(opts["replace"]),
        allow_protected=opts["allow_protected"],
    )
    unknown = planner.unknown_addresses(options, snapshot.desired, current)
    if unknown:
        raise UsageError(
            f"unknown address(es): {', '.join(unknown)} (neither declared nor in the state)"
        )
    if snapshot.warnings:
        click.echo(render.render_problems(snapshot.warnings), nl=False, err=True)
    return planner.plan(snapshot.desired, current, None, options)


def _check_policy(cfg: Config, result: Planned) -> None:
    from voicectl import planner

    violations = planner.policy_violations(result, cfg.max_new_voices, cfg.max_one_time_cny)
    if violations:
        raise PolicyError(
            "the plan exceeds the repository policy (voicectl.yaml):\n  " + "\n  ".join(violations)
        )


@cli.command()
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
@_plan_options
@click.pass_context
def plan(
    ctx: click.Context, /, as_json: bool, fmt: str | None, detailed_exitcode: bool, **opts: Any
) -> int:
    """Show what apply would create, retrain, move or orphan, and what it costs."""
    from voicectl import render, repository

    if as_json and fmt not in (None, "json"):
        raise UsageError("--json and --format cannot disagree; use one of them")
    fmt = "json" if as_json else fmt or "text"
    cfg = repository.open_config(_start(ctx))
    current, warning = repository.effective_state(cfg)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    result = _planned(ctx, cfg, current, opts)
    click.echo(render.PLAN_RENDERERS[fmt](result), nl=False)
    _check_policy(cfg, result)
    return EXIT_CHANGES if detailed_exitcode and result.has_changes else 0


@cli.command()
@click.argument("name", type=click.Choice(["config", "voices", "state", "plan"]))
def schema(name: str) -> None:
    """Print the JSON Schema NAME (for editors and other tools)."""
    from voicectl import schemas

    click.echo(schemas.schema_path(name).read_text(encoding="utf-8"), nl=False)
