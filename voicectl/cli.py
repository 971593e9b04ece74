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
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from voicectl.config import Config
    from voicectl.model import Plan as Planned
    from voicectl.model import State

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


def _adoptions(values: Sequence[str]) -> dict[str, str]:
    found = {}
    for value in values:
        address, _, voice_id = value.partition("=")
        if not address or not voice_id.isdigit():
            raise UsageError(f"--adopt {value!r}: expected ADDRESS=VOICE_ID")
        found[address] = voice_id
    return found


def _client(cfg: Config) -> Any:
    from voicectl.client import CN_BASE, CozeClient, http_client

    token = os.environ.get("COZE_API_TOKEN", "").strip()
    if not token:
        raise UsageError(
            "COZE_API_TOKEN is not set: apply needs a Coze token with the "
            "createVoice and listVoice permissions"
        )
    base = os.environ.get("COZE_API_BASE", "").strip() or cfg.api_base or CN_BASE
    return CozeClient(http_client(base), token)


@cli.command()
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="How many clones to run at once.",
)
@click.option(
    "--adopt",
    multiple=True,
    metavar="ADDRESS=VOICE_ID",
    help="Settle a lost clone reply by naming the voice it created.",
)
@_plan_options
@click.pass_context
def apply(
    ctx: click.Context,
    /,
    auto_approve: bool,
    parallelism: int,
    adopt: tuple[str, ...],
    **opts: Any,
) -> int:
    """Carry out the plan on Coze and record every outcome in the state."""
    from voicectl import lock, recovery, render, repository
    from voicectl.executor import Executor
    from voicectl.journal import Journal, journal_path
    from voicectl.state import now
    from voicectl.state import save as save_state

    cfg = repository.open_config(_start(ctx))
    adoptions = _adoptions(adopt)
    client = _client(cfg)
    notice = _echo_err
    with lock.locked(cfg.state_path, "voicectl apply", now(), notice):
        current, existed = repository.load_state(cfg)
        current = recovery.recover(
            cfg.state_path,
            current,
            lambda log: Executor(client, cfg.root, log, 1, _Progress(0)),
            adoptions,
            notice,
        )
        result = _planned(ctx, cfg, current, opts)
        click.echo(render.render_text(result), nl=False)
        _check_policy(cfg, result)
        work = result.actionable
        blocked = [c for c in result.changes if c.action == "blocked"]
        if not work:
            return EXIT_USER_ERROR if blocked else 0
        if not auto_approve:
            if not sys.stdin.isatty():
                raise UsageError(
                    "no terminal to confirm on: review the plan and pass --auto-approve"
                )
            if not click.confirm("Carry out this plan?", default=False):
                click.echo("Nothing was changed.")
                return EXIT_USER_ERROR
        if not existed:  # the journal must name a lineage that is on disk
            current = save_state(cfg.state_path, current)
        progress = _Progress(len(work), bar=_interactive())
        log = Journal.begin(journal_path(cfg.state_path), current, now())
        try:
            outcome = Executor(client, cfg.root, log, parallelism, progress).run(
                work, recovery.known_ids(current)
            )
        finally:
            progress.close()
            log.close()
            final = recovery.fold_or_keep(cfg.state_path, current, notice)
    click.echo(render.apply_summary(outcome.done, outcome.failed, blocked, final), nl=False)
    return EXIT_USER_ERROR if outcome.failed or blocked else 0


class _Progress:
    """Renders executor events: a progress bar on a terminal, one plain line per voice in CI.

    Events arrive from the worker threads; a lock keeps lines whole.
    """

    def __init__(self, total: int, bar: bool = False) -> None:
        self.total, self.finished = total, 0
        self.lock = threading.Lock()
        self.bar: Any = None
        if bar and total:
            self.bar = click.progressbar(
                length=total,
                label="Applying",
                file=sys.stderr,
                show_pos=True,
                item_show_func=lambda item: item,
            )
            self.bar.__enter__()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def __call__(self, event: Any) -> None:
        with self.lock:
            if event.kind == "voice_start":
                return
            if event.kind == "voice_error":
                line = (
                    f"{event.address}: {event.action} failed after {event.elapsed:.1f}s: "
                    f"{event.error}"
                )
                click.echo(("\n" if self.bar else "") + line, err=True)
                return
            self.finished += 1
            how = " (found on Coze after a lost reply)" if event.kind == "reconcile" else ""
            left = "" if event.clones_left is None else f", {event.clones_left} clones left"
            line = (
                f"{event.address}: {event.action} done: voice {event.voice_id}{left} in "
                f"{event.elapsed:.1f}s{how}"
            )
            if self.bar is not None:
                self.bar.update(1, event.address)
            else:
                count = f"[{self.finished}/{self.total}] " if self.total else ""
                click.echo(count + line)


def _interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def _echo_err(message: str) -> None:
    click.echo(f"notice: {message}", err=True)


@cli.command("force-unlock")
@click.pass_context
def force_unlock(ctx: click.Context) -> None:
    """Remove a stale lock on the state (make sure no apply is running)."""
    from voicectl import lock, repository

    cfg = repository.open_config(_start(ctx))
    holder = lock.force_unlock(cfg.state_path)
    if holder is None:
        click.echo("The state is not locked.")
    else:
        click.echo(f"Removed the lock held by {lock.describe(holder)}.")


@cli.command()
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
    "--strict-docs", is_flag=True, help="Clone replies carry only {voice_id}, as Coze documents."
)
def emulator(
    host: str, port: int, data_dir: Path, tokens: tuple[str, ...], strict_docs: bool
) -> None:
    """Run a local Coze-compatible voice API (for tests, demos and CI)."""
    from voicectl.emulator.server import serve

    serve(host, port, data_dir, tokens, strict_docs, click.echo)


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
