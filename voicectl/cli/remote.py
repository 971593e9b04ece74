"""apply: carry out the plan on Coze, journaled, and record every outcome."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from voicectl.apply import service
from voicectl.apply.recovery import NEVER_MADE
from voicectl.cli import account, waits
from voicectl.cli.progress import Output, Progress
from voicectl.cli.repo import _plan_options, plan_options, show_warnings
from voicectl.cli.root import _start, lock_timeout, lock_timeout_option
from voicectl.errors import EXIT_USER_ERROR, Problem, UsageError
from voicectl.model import Plan
from voicectl.plan import repository, savedplan


def _adoptions(values: Sequence[str]) -> dict[str, str]:
    found = {}
    for value in values:
        address, _, voice_id = value.partition("=")
        if not address or not (
            (voice_id.isascii() and voice_id.isdigit()) or voice_id == NEVER_MADE
        ):
            raise UsageError(f"--adopt {value!r}: expected ADDRESS=VOICE_ID or ADDRESS=never")
        found[address] = voice_id
    return found


@click.command()
@click.argument(
    "plan_file", metavar="[FILE]", required=False, type=click.Path(dir_okay=False, path_type=Path)
)
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
    help="Settle a lost clone reply by naming the voice it created (or 'never': it was not made).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a streaming event log, one JSON object per line (needs --auto-approve or FILE).",
)
@_plan_options
@lock_timeout_option
@click.pass_context
def apply(
    ctx: click.Context,
    /,
    plan_file: Path | None,
    auto_approve: bool,
    parallelism: int,
    adopt: tuple[str, ...],
    as_json: bool,
    **opts: Any,
) -> int:
    """Carry out the plan on Coze and record every outcome in the state.

    With FILE (saved by `voicectl plan --out FILE`), carry out exactly that plan, without
    asking, and refuse it if anything it is bound to has changed since.
    """
    start = _start(ctx)
    cfg = repository.open_config(start)
    adoptions = _adoptions(adopt)
    saved = None
    if plan_file is not None:
        flags = {"targets": "--target", "excludes": "--exclude"}
        given = sorted(
            flags.get(k, "--" + k.replace("_", "-"))
            for k, v in opts.items()
            if v and k != "no_snapshot"  # fewer speech calls than it shows: always safe
        )
        if given:
            raise UsageError(
                f"{', '.join(given)}: a saved plan carries its own options; make a new one "
                "with `voicectl plan --out FILE`"
            )
        saved = savedplan.load(start / plan_file, str(plan_file))
    if as_json and not (auto_approve or saved):
        raise UsageError("--json cannot ask for confirmation: pass --auto-approve or a FILE")
    client = account.client_for(cfg, "apply")
    request = service.Request(
        options=saved.options if saved is not None else plan_options(opts),
        saved=saved,
        saved_display=str(plan_file),
        confirmed=bool(auto_approve or saved),
        parallelism=parallelism,
        adopt=adoptions,
        settle=waits.settle(),  # read before anything is done
        in_hands=waits.in_hands(),
        lock_timeout=lock_timeout(),
        snapshots=not opts["no_snapshot"],  # with a saved plan too: fewer calls, never more
    )
    out = Output(as_json)
    applied = service.run(cfg, client, request, _Reporter(out))
    if applied.declined:
        return EXIT_USER_ERROR
    done, failed = (applied.outcome.done, applied.outcome.failed) if applied.outcome else ([], [])
    out.speech(applied.speech_calls)  # before the summary, which a reader may stop at
    out.summary(done, failed, applied.blocked, applied.final, recorded=applied.folded)
    if applied.stopped is not None:  # after what was done and spent: why it stopped
        raise applied.stopped
    return 0 if applied.ok else EXIT_USER_ERROR


class _Reporter:
    """An apply's words, on the terminal (or as JSON events): see service.Reporter."""

    def __init__(self, out: Output) -> None:
        self.out = out

    def notice(self, message: str) -> None:
        _echo_err(message)

    def warnings(self, problems: list[Problem]) -> tuple[str, ...]:
        return show_warnings(problems, quiet=self.out.as_json)

    def plan(self, result: Plan) -> None:
        self.out.plan(result)

    def progress(self, total: int) -> Progress:
        return self.out.progress(total) if total else Progress(0)

    def confirm(self, result: Plan) -> bool:
        if not sys.stdin.isatty():
            raise UsageError(
                "no terminal to confirm on: review the plan and pass --auto-approve "
                "(or save it with `voicectl plan --out FILE` and run `voicectl apply FILE`)"
            )
        # Money is spent on the answer: a stray "y" is not enough (as in Terraform).
        spends = result.cost.one_time_cny > 0 or result.clones_spent > 0
        asked = (
            "Carry out this plan? It spends what it shows. Only 'yes' is accepted"
            if spends
            else "Carry out this plan? Only 'yes' is accepted"
        )
        answer = click.prompt(asked, default="", show_default=False).strip()
        if answer == "yes":
            return True
        typed = f" (you typed {answer!r}; only 'yes' carries it out)" if answer else ""
        click.echo(f"Nothing was changed{typed}.")
        return False


def _echo_err(message: str) -> None:
    click.echo(f"notice: {message}", err=True)
