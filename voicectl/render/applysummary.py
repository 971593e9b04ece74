"""The end of an apply as the terminal shows it: each voice's id and budget, what was
spent, what failed or was blocked."""

from __future__ import annotations

from collections.abc import Sequence

from voicectl.model import Change, State


def apply_summary(
    done: Sequence[tuple[Change, str | None]],
    failed: Sequence[tuple[Change, str]],
    blocked: Sequence[Change],
    state: State,
    recorded: bool = True,
) -> str:
    """The end of an apply: each voice's id and budget, what was spent, what failed.
    ``recorded`` False: the state could not be written, the journal keeps the clones."""
    lines = _voices(done, state, recorded)
    one_time = sum(c.cost.one_time_cny for c, _ in done)
    monthly = sum(c.cost.monthly_cny_delta for c, _ in done)
    clones = sum(1 for c, _ in done if c.spends_clone)
    counts: dict[str, int] = {}
    for change, _ in done:
        counts[change.action] = counts.get(change.action, 0) + 1
    did = ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "nothing"
    for change, error in sorted(failed, key=lambda item: item[0].address):
        lines.append(f"failed: {change.address}: {change.action}: {error}")
    for change in blocked:
        lines.append(f"blocked: {change.address}: {change.message}")
    spent = f"Clones spent: {clones}. Spent {one_time} CNY one-time, {monthly:+d} CNY/month."
    if failed or blocked or not recorded:
        left = [f"{len(failed)} failed"] if failed else []
        left += [f"{len(blocked)} blocked"] if blocked else []
        if not recorded:
            left.append(
                "the state was not written: the journal keeps the clones, and the next "
                "`voicectl apply` records them"
            )
        done_text = f"done: {did}" if counts else "nothing was done"
        lines.append(f"Apply incomplete ({' and '.join(left)}, see above); {done_text}. {spent}")
    else:
        lines.append(f"Apply complete: {did}. {spent}")
    return "\n".join(lines) + "\n"


def _voices(done: Sequence[tuple[Change, str | None]], state: State, recorded: bool) -> list[str]:
    """A line for each voice done: its voice id and the clones it has left (or, the
    state not written, that the journal keeps it)."""
    if not done:
        return []
    lines = ["", "Voices:"]
    width = max(len(c.address) for c, _ in done)
    for change, voice_id in sorted(done, key=lambda item: item[0].address):
        record = state.voices.get(change.address)
        if record is not None and (recorded or record.voice_id == voice_id):
            budget = f"clones used {record.clones_used}/{record.limit}, {record.clones_left} left"
        elif not recorded:
            budget = "not in the state yet: the next `voicectl apply` records it"
        else:
            budget = "orphaned"
        lines.append(
            f"  {change.address:<{width}}  {change.action:<7}  voice {voice_id or '-'}  {budget}"
        )
    return lines
