"""The command line: the composition root and the one error funnel.

Only this package knows click. Commands parse options, call the library and render;
errors a user can cause print one message and exit 1; anything else is a bug and exits
3, with a traceback only under ``--debug``. Each command's module is imported only when
that command runs (:class:`LazyGroup`), so ``voicectl --version`` loads click alone and
the modules import what they use at their top.
"""

from __future__ import annotations

import difflib
import errno
import gc
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from voicectl import __version__
from voicectl.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    UsageError,
    ValidationFailed,
    VoicectlError,
)

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
# Errors of the machine a user can mend (space, permissions, limits), not bugs.
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EFBIG: "the file size limit is reached",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


# Every command, by name: the module and attribute that define it.
COMMANDS = {
    "apply": "voicectl.cli.remote:apply",
    "drift": "voicectl.cli.gitops:drift",
    "emulator": "voicectl.cli.emulate:emulator",
    "force-unlock": "voicectl.cli.unlock:force_unlock",
    "history": "voicectl.cli.gitops:history",
    "import": "voicectl.cli.adopt:import_",
    "init": "voicectl.cli.init:init",
    "plan": "voicectl.cli.repo:plan",
    "refresh": "voicectl.cli.gitops:refresh",
    "review": "voicectl.cli.review:review",
    "schema": "voicectl.cli.repo:schema",
    "show": "voicectl.cli.repo:show",
    "speak": "voicectl.cli.speak:speak",
    "state": "voicectl.cli.versions:state_group",  # the group, with versions and pull added
    "validate": "voicectl.cli.repo:validate",
}


class LazyGroup(click.Group):
    """A group whose commands are imported when asked for (as click's documentation
    suggests for a large CLI): help lists them all, a run loads one."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return self.commands.get(cmd_name)
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command), target
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name.startswith("-") or ctx.resilient_parsing or self.get_command(ctx, name):
            return super().resolve_command(ctx, args)
        # click suggests from the commands registered, none here: from every name.
        close = difflib.get_close_matches(name, self.list_commands(ctx))
        said = f"No such command {name!r}."
        if close:
            said += f"\n\nDid you mean {close[0]!r}?"
        ctx.fail(said)


@click.group(cls=LazyGroup, context_settings=CONTEXT)
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
@click.option("--verbose", is_flag=True, help="List every warning, not the first few of a kind.")
@click.pass_context
def cli(ctx: click.Context, chdir: Path | None, debug: bool, verbose: bool) -> None:
    """GitOps for cloned voices on Coze: declare voices in YAML, plan, apply."""
    if chdir is None:
        try:
            chdir = Path.cwd()
        except FileNotFoundError:
            raise UsageError(
                "the current directory no longer exists (removed, or checked out away?): "
                "cd into the voice repository, or pass -C DIR"
            ) from None
    ctx.obj = {"start": chdir, "debug": debug, "verbose": verbose}


def verbose() -> bool:
    """Whether ``voicectl --verbose`` was given."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and isinstance(root.obj, dict) and root.obj.get("verbose"))


def _start(ctx: click.Context) -> Path:
    start: Path = ctx.obj["start"]
    if not start.is_dir():
        raise UsageError(f"-C {start}: no such directory")
    return start


def _debug_requested(argv: Sequence[str]) -> bool:
    return "--debug" in argv or os.environ.get("VOICECTL_DEBUG", "") not in ("", "0")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI and turn every outcome into one exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    # A plan holds a few objects per voice for its whole run and makes almost no cycles:
    # at CPython's default threshold (700) the collector walks them again and again
    # (a tenth of a 10,000-voice warm plan, bench/RESULTS.md). mypy's thresholds.
    gc.set_threshold(200_000, 30, 30)
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
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            # The machine, not voicectl: say which file and why, as for a user error.
            where = f" {exc.filename}:" if exc.filename else ""
            click.echo(
                f"Error:{where} {exc.strerror or exc} ({ENVIRONMENT_ERRNOS[exc.errno]}). "
                "voicectl replaces files whole and appends its journal a line at a time: "
                "nothing it wrote is left half-written",
                err=True,
            )
            sys.exit(EXIT_USER_ERROR)
        click.echo(
            f"voicectl: unexpected error ({type(exc).__name__}: {exc}); this is a bug. "
            "Run again with --debug for the traceback.",
            err=True,
        )
        code = EXIT_INTERNAL
    sys.exit(code if isinstance(code, int) else 0)


def _lock_timeout(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    from voicectl.state.lock import parse_duration

    try:
        seconds = parse_duration(value) if value else 0.0
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: expected a duration such as 30s, 5m or 1h", ctx, param
        ) from None
    ctx.meta["voicectl.lock_timeout"] = seconds


lock_timeout_option = click.option(
    "--lock-timeout",
    metavar="DURATION",
    callback=_lock_timeout,
    expose_value=False,
    help="Wait this long (30s, 5m, 1h) for a running apply's lock instead of failing at once.",
)


def lock_timeout() -> float:
    """The seconds the running command's ``--lock-timeout`` allows (0 without one)."""
    ctx = click.get_current_context(silent=True)
    return float(ctx.meta.get("voicectl.lock_timeout", 0.0)) if ctx is not None else 0.0
