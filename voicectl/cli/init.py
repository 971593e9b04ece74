"""`voicectl init`: a new voice repository, and its CI workflow."""

from __future__ import annotations

from pathlib import Path

import click

from voicectl.cli.root import _start
from voicectl.declare import citemplates
from voicectl.declare.config import CONFIG_FILE
from voicectl.declare.scaffold import init_repository
from voicectl.errors import UsageError
from voicectl.files.atomic import write_atomic
from voicectl.model import LANGUAGES
from voicectl.plan import repository

# citemplates.KINDS's names, spelled here so that start-up does not import the CI
# templates' module (and git's helpers); a test keeps the two equal.
CI_KINDS = ("github", "gitlab")


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--space", help="Default Coze workspace id for the repository's voices.")
@click.option(
    "--language",
    type=click.Choice(LANGUAGES),
    help="Default language for the repository's voices.",
)
@click.option(
    "--ci",
    "ci_kinds",
    multiple=True,
    type=click.Choice(CI_KINDS),
    help="Also write the CI workflow for this host (repeatable); in an existing voice "
    "repository, write only that.",
)
@click.option(
    "--ci-package",
    metavar="REQUIREMENT",
    help="The pip requirement CI installs voicectl from (default: where this voicectl "
    "was installed from, e.g. its git URL at the exact commit).",
)
@click.pass_context
def init(
    ctx: click.Context,
    directory: Path,
    space: str | None,
    language: str | None,
    ci_kinds: tuple[str, ...],
    ci_package: str | None,
) -> None:
    """Create a voice repository in DIRECTORY (default: here)."""
    directory = _start(ctx) / directory
    if space is not None and not (space.isascii() and space.isdigit()):
        raise UsageError(f"--space {space!r}: a Coze workspace id is digits only")
    existing = (directory / CONFIG_FILE).exists()
    if existing and ci_kinds and (space or language):
        raise UsageError(
            f"{directory / CONFIG_FILE} exists: --space and --language only shape a new "
            "voice repository; set defaults in voicectl.yaml"
        )
    workflows: dict[Path, str] = {}
    cautions: list[str] = []
    pg = False
    if ci_kinds:  # everything is checked before anything is written
        source = citemplates.source(ci_package)
        cfg = repository.open_config(directory) if existing else None
        pg = cfg is not None and cfg.pg is not None  # the state in PostgreSQL: its variant
        workflows = citemplates.workflows(directory, ci_kinds, source.requirement, pg=pg)
        cautions = citemplates.cautions(directory, cfg, ci_kinds)
    created = [] if existing and ci_kinds else init_repository(directory, space, language)
    for path, text in workflows.items():
        write_atomic(path, text.encode("utf-8"))
        created.append(path)
    for path in created:
        click.echo(f"created {path}")
    if workflows:
        click.echo(f"CI installs {source.requirement} (from {source.origin}).")
        for kind in ci_kinds:
            secrets = citemplates.PG_SECRETS[kind] if pg else citemplates.SECRETS[kind]
            click.echo(f"For {kind}, set {secrets}.")
    for caution in cautions:
        click.echo(f"warning: {caution}", err=True)
    if not existing:
        click.echo("Next: declare voices in voices/*.yaml, then run `voicectl plan`.")
