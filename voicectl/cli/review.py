"""review: a page to hear what a plan will clone, beside what it replaces."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from voicectl.cli import account, waits
from voicectl.cli.repo import _plan_options, _planned, _read_remote, plan_options, refresh_option
from voicectl.cli.root import _start, lock_timeout_option
from voicectl.declare import gitrepo
from voicectl.errors import UsageError
from voicectl.plan import planner, repository, savedplan
from voicectl.review import build, takes


@click.command()
@click.argument(
    "plan_file",
    metavar="[PLAN_FILE]",
    required=False,
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="The folder to write index.html, audio/ and images/ into (with --single-file: the "
    "HTML file).",
)
@click.option(
    "--single-file",
    is_flag=True,
    help="One HTML file with every take and picture inlined (for small plans).",
)
@refresh_option
@_plan_options
@lock_timeout_option
@click.pass_context
def review(
    ctx: click.Context,
    /,
    plan_file: Path | None,
    out: Path,
    single_file: bool,
    refresh: bool | None,
    **opts: Any,
) -> None:
    """Write a page to review a plan by ear: each take a change clones, beside the one
    the voice is trained on now (from git), with waveforms, spectrograms, the take's
    quality, the transcript's changes and the clone budget. Without PLAN_FILE (saved by
    `voicectl plan --out`), plans first, with plan's options. The page makes no network
    request and works with script off: open it in a browser, or upload it from CI."""
    start = _start(ctx)
    cfg = repository.open_config(start)
    waits.for_apply(cfg, "review")
    seen = repository.interrupted(cfg, account.journal_check(cfg))
    current = seen.state
    if plan_file is not None:
        given = sorted("--" + k.replace("_", "-") for k, v in opts.items() if v)
        if given or refresh is not None:
            raise UsageError(
                f"{', '.join(given) or '--refresh'}: a saved plan carries its own options"
            )
        result = savedplan.load(start / plan_file, str(plan_file)).plan
        stale = takes.changed_since(cfg.root, build.wanted(result, current))
        if stale:  # apply would refuse it too: the reviewer would hear other takes
            raise UsageError(
                f"{plan_file}: take(s) changed since the plan was saved: {', '.join(stale)}; "
                "make a new plan (`voicectl plan --out`) and review that; nothing was written"
            )
        source = f"The saved plan {plan_file}"
        remote = None
    else:
        remote = _read_remote(cfg, current, refresh)
        options = replace(plan_options(opts), in_doubt=seen.in_doubt)
        result, _ = _planned(cfg, current, options, remote)
        commit = gitrepo.head(cfg.root)
        source = f"The plan of {cfg.root.name}" + (f" at commit {commit[:12]}" if commit else "")
    on_account = len(remote) if remote is not None else len(current.voice_ids())
    policy = planner.policy_violations(
        result, cfg.max_new_voices, cfg.max_one_time_cny, cfg.max_voices, on_account=on_account
    )
    page = build.write(
        cfg, result, current, start / out, policy=policy, source=source, single_file=single_file
    )
    click.echo(f"Wrote the review of {len(result.actionable)} change(s) to {page}.", err=True)
