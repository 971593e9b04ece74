"""The README stays true to the code: its plan legend, its commands, its links."""

from __future__ import annotations

import re
from pathlib import Path

from voicectl.model import ACTIONS
from voicectl.render import SYMBOLS

PROJECT = Path(__file__).resolve().parent.parent
README = (PROJECT / "README.md").read_text(encoding="utf-8")


def test_the_legend_names_every_symbol_a_plan_shows() -> None:
    legend = dict(re.findall(r"^\| `([^`]+)` \| ([a-z]+) \|", README, re.MULTILINE))
    shown = {SYMBOLS[a]: a for a in ACTIONS if a != "noop"}
    assert legend == shown


def test_the_readme_begins_with_setup_the_example_and_the_tests() -> None:
    block = re.search(r"```sh\n(.*?)```", README, re.DOTALL)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands[0].startswith("python3 -m venv .venv") and "pip install -e" in commands[0]
    assert commands[1] == ".venv/bin/voicectl plan"
    # .ci/run ends with exactly the README's test command.
    ci = (PROJECT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == commands[2] == ".venv/bin/python -m pytest"


def test_every_page_the_readme_links_exists() -> None:
    links = re.findall(r"\]\(((?!https?:|#)[^)]+)\)", README)
    assert "docs/safety.md" in links
    for link in links:
        assert (PROJECT / link).is_file(), link
    for page in (PROJECT / "docs").glob("*.md"):
        for link in re.findall(r"\]\(((?!https?:|#)[^)]+)\)", page.read_text(encoding="utf-8")):
            assert (page.parent / link).is_file(), f"{page.name}: {link}"


def test_the_emulator_page_lists_every_fault() -> None:
    from voicectl.emulator.faults import Faults

    page = (PROJECT / "docs" / "emulator.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", page, re.MULTILINE))
    assert set(Faults().to_json()) <= listed
