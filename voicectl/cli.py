"""The command line: the composition root and the one error funnel.

Only this module knows click. Commands parse options, call the library and render;
errors a user can cause print one message and exit 1; anything else is a bug and
exits 3, with a traceback only under ``--debug``. Heavy modules (jsonschema, yaml,
mutagen, httpx) are imported inside the commands that need them, so
``voicectl --version`` stays quick.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from voicectl import __version__
from voicectl.errors import (
    EXIT_CHANGES,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    PolicyError,
    UsageError,
    ValidationFailed,
    VoicectlError,
)

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(
    __version__, "--version", prog_name="voicectl", message="%(prog)s %(version)s"
)
@click.option(
    "-C",
    "--chdir",
    "chdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run as if started in DIR (the voice repository or below it).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, chdir: Path | None, debug: bool) -> None:
    """GitOps for cloned voices on Coze: declare voices in YAML, plan, apply."""
    ctx.obj = {"start": chdir or Path.cwd(), "debug": debug}


def _start(ctx: click.Context) -> Path:
    start: Path = ctx.obj["start"]
    if not start.is_dir():
        raise UsageError(f"-C {start}: no such directory")
    return start


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


def _addresses(values: Sequence[str]) -> frozenset[str]:
    return frozenset(values)


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
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="ADDRESS",
    help="Plan only this address (repeatable).",
)
@click.option(
    "--exclude",
    "excludes",
    multiple=True,
    metavar="ADDRESS",
    help="Leave this address out of the plan (repeatable).",
)
@click.option(
    "--retrain",
    "retrain",
    multiple=True,
    metavar="ADDRESS",
    help="Retrain this voice even if only its name or preview text changed.",
)
@click.option(
    "--replace",
    "replace",
    multiple=True,
    metavar="ADDRESS",
    help="Clone this voice into a new voice id; the old one becomes an orphan.",
)
@click.option(
    "--allow-protected", is_flag=True, help="Allow retrain, replace and orphan of protected voices."
)
@click.pass_context
def plan(
    ctx: click.Context,
    as_json: bool,
    fmt: str | None,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    retrain: tuple[str, ...],
    replace: tuple[str, ...],
    allow_protected: bool,
) -> int:
    """Show what apply would create, retrain, move or orphan, and what it costs."""
    from voicectl import planner, render, repository

    if as_json and fmt not in (None, "json"):
        raise UsageError("--json and --format cannot disagree; use one of them")
    fmt = "json" if as_json else fmt or "text"
    cfg = repository.open_config(_start(ctx))
    snapshot = repository.read_valid(cfg)
    current, _ = repository.load_state(cfg)
    options = planner.PlanOptions(
        targets=_addresses(targets),
        excludes=_addresses(excludes),
        retrain=_addresses(retrain),
        replace=_addresses(replace),
        allow_protected=allow_protected,
    )
    unknown = planner.unknown_addresses(options, snapshot.desired, current)
    if unknown:
        raise UsageError(
            f"unknown address(es): {', '.join(unknown)} (neither declared nor in the state)"
        )
    if snapshot.warnings:
        click.echo(render.render_problems(snapshot.warnings), nl=False, err=True)
    result = planner.plan(snapshot.desired, current, None, options)
    click.echo(render.PLAN_RENDERERS[fmt](result), nl=False)
    violations = planner.policy_violations(result, cfg.max_new_voices, cfg.max_one_time_cny)
    if violations:
        raise PolicyError(
            "the plan exceeds the repository policy (voicectl.yaml):\n  " + "\n  ".join(violations)
        )
    if detailed_exitcode and result.has_changes:
        return EXIT_CHANGES
    return 0


@cli.command()
@click.argument("name", type=click.Choice(["config", "voices", "state", "plan"]))
def schema(name: str) -> None:
    """Print the JSON Schema NAME (for editors and other tools)."""
    from voicectl import schemas

    click.echo(schemas.schema_path(name).read_text(encoding="utf-8"), nl=False)


def _debug_requested(argv: Sequence[str]) -> bool:
    return "--debug" in argv or os.environ.get("VOICECTL_DEBUG", "") not in ("", "0")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI and turn every outcome into one exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code: Any = cli.main(args=args, prog_name="voicectl", standalone_mode=False)
    except ValidationFailed as exc:
        click.echo("".join(p.render() + "\n" for p in exc.problems), nl=False, err=True)
        errors = sum(1 for p in exc.problems if p.severity == "error")
        click.echo(f"Error: {errors} error(s); nothing was changed.", err=True)
        code = exc.exit_code
    except VoicectlError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USER_ERROR  # bad arguments are a user error like any other
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        code = 0
        sys.stdout = None  # nothing more can be written
    except Exception as exc:
        if _debug_requested(args):
            traceback.print_exc()
        click.echo(
            f"voicectl: unexpected error ({type(exc).__name__}: {exc}); this is a bug. "
            "Run again with --debug for the traceback.",
            err=True,
        )
        code = EXIT_INTERNAL
    sys.exit(code if isinstance(code, int) else 0)
