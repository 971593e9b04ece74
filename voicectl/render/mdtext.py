"""Text made safe for a pull-request comment (GitHub, GitLab): table cells and code
spans that whatever a voice's name, text or path holds stay data, never markup."""

from __future__ import annotations

import re

_NOT_LINKED = (("@", "@\u200b"), ("://", ":\u200b//"), ("www.", "www\u200b."))
_MARKDOWN_SPECIALS = frozenset("\\`*_[]()#+!|~")


def md_cell(value: object) -> str:
    """``value`` as the text of a table cell for GitHub and GitLab: data, never markup
    (no HTML, link, emphasis or code span of its own; one line; no cell break)."""
    text = "" if value is None else str(value)
    text = "".join(" " if not c.isprintable() else c for c in text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = "".join("\\" + c if c in _MARKDOWN_SPECIALS else c for c in text)
    # GitHub would turn @org/team and @user into mentions (people paged by a voice name)
    # and bare addresses into links: a zero-width space keeps both plain text.
    for token, plain in _NOT_LINKED:
        text = text.replace(token, plain)
    return text


def md_code(value: object) -> str:
    """``value`` as a code span whatever backticks it holds (CommonMark: a fence longer
    than any run of backticks inside)."""
    text = "".join(" " if not c.isprintable() else c for c in str(value))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def short(value: object, width: int = 60) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def md_value(value: object) -> str:
    """A field's value in a table cell: booleans as YAML writes them, the rest shortened."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return md_cell(short(value, 200))


def audio_facts(audio: dict[str, object] | None) -> str:
    """A take in a table cell: the words of :func:`~voicectl.plan.fielddiff.describe_take`,
    path and sha256 in code spans no backtick can close."""
    if not audio:
        return ""
    size, duration = audio.get("size"), audio.get("duration")
    parts = [
        md_code(audio.get("path")),
        md_cell(audio.get("format") or ""),
        f"{duration:.1f} s" if isinstance(duration, (int, float)) else "",
        f"{size:,} bytes" if isinstance(size, int) else "",
        f"sha256 `{str(audio.get('sha256') or '')[:12]}`",
    ]
    return ", ".join(p for p in parts if p)
