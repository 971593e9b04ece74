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


def test_the_schemas_and_the_model_name_the_same_facts() -> None:
    """One place each: the languages and the address rule are the model's, and every
    schema that spells them out spells out the same."""
    import json

    from voicectl.model import ADDRESS_PATTERN, LANGUAGES

    texts = {p.name: p.read_text() for p in (PROJECT / "schemas").glob("*.json")}
    ending = re.escape(r"(?![\\s\\S])")  # the end of the text, as the JSON spells it
    patterns = set(
        re.findall(r'"\^(\[a-z0-9\][^"]*?)(?:\$|' + ending + ')"', "".join(texts.values()))
    )
    assert patterns == {ADDRESS_PATTERN}
    enums = [
        node["enum"]
        for text in texts.values()
        for node in _walk(json.loads(text))
        if isinstance(node, dict) and "zh" in node.get("enum", [])
    ]
    assert enums and all(tuple(e) == LANGUAGES for e in enums)


def _walk(node: object):  # type: ignore[no-untyped-def]
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
