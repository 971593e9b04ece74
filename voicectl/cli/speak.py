"""``voicectl speak``: hear a cloned voice (a billed speech; a repeat is free)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from voicectl import render
from voicectl.cli import account, complete, waits
from voicectl.cli.root import _start, lock_timeout_option
from voicectl.coze.speech import (
    DEFAULT_RATE,
    EXTENSIONS,
    FORMATS,
    REFERENCE_SENTENCES,
    SAMPLE_RATES,
    SUFFIX,
    SpeechAsk,
    problem,
)
from voicectl.errors import EXIT_USER_ERROR, UsageError, VoicectlError, visible
from voicectl.plan import planning, repository
from voicectl.speak import output, speaking
from voicectl.speak.speaking import Heard, Target

MAX_TEXT_FILE = 64 * 1024


@click.command()
@click.argument("address", required=False, shell_complete=complete.recorded)
@click.argument("text", required=False)
@click.option(
    "-f", "--file", "text_file", metavar="FILE", help="Read the text from FILE ('-': stdin)."
)
@click.option(
    "-o",
    "--out",
    "out",
    metavar="OUT",
    help="Write the audio to OUT ('-': stdout); with --all, a directory.",
)
@click.option("--all", "every", is_flag=True, help="Every applied voice, into OUT/<address>.<ext>.")
@click.option("--voice-id", metavar="ID", help="Speak with this voice id instead of an address.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="mp3, wav, pcm or ogg_opus (default: OUT's extension, else mp3).",
)
@click.option(
    "--sample-rate",
    type=click.Choice([str(r) for r in SAMPLE_RATES]),
    default=str(DEFAULT_RATE),
    show_default=True,
)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="0.5-2 for a big-model voice, 0.2-3 for a small one.",
)
@click.option(
    "--no-cache", is_flag=True, help="Ask Coze again even if this exact speech was heard before."
)
@click.option(
    "-j",
    "--parallelism",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="With --all: speeches at once.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the summary as JSON (one object).",
)
@lock_timeout_option
@click.pass_context
def speak(ctx: click.Context, /, **o: Any) -> int:
    """Hear a cloned voice: ADDRESS's voice says TEXT (default: its preview_text).

    Each speech is billed by Coze (its speech synthesis, not a clone). A repeat of the same
    text, voice, training and settings is served from .voicectl/speech/ and costs
    nothing (--no-cache asks again). With --all, every applied voice speaks into
    OUT/<address>.<ext>.
    """
    start = _start(ctx)
    cfg = repository.open_config(start)
    o = {**o, "start": start}  # OUT and -f FILE are relative to it, as -C says
    waits.for_apply(cfg, "speak", "hear a voice the apply may be retraining")
    if (o["every"] or o["voice_id"]) and o["address"] is not None and o["text"] is None:
        o = {**o, "text": o["address"], "address": None}  # the one argument is the text
    if o["every"]:
        return _speak_all(cfg, o)
    if ctx.get_parameter_source("parallelism") is click.core.ParameterSource.COMMANDLINE:
        raise UsageError("-j/--parallelism is for --all: one voice is one speech")
    text, fmt, out = _inputs(o)
    current, warning = repository.effective_state(cfg, account.journal_check(cfg))
    if warning:
        click.echo(f"warning: {warning}", err=True)
    declared = output.read(cfg, current)
    _warn(declared)
    if out != "-":
        output.check(declared, start / out, out)
    if o["voice_id"]:
        if o["address"]:
            raise UsageError("give ADDRESS or --voice-id, not both")
        target = speaking.for_voice_id(current, o["voice_id"])
    elif o["address"]:
        target = speaking.for_address(current, declared.voices, o["address"])
    else:
        raise UsageError("name the voice: ADDRESS, --voice-id ID, or --all")
    # Which training the voice has now, its model type: Coze's list says (free to read).
    client = account.client_for(cfg, "speak")
    target = speaking.on_account(target, planning.remote_voices(client, current))
    if target.stale:
        click.echo(f"warning: {visible(target.stale)}", err=True)
    ask = _ask(target, text, fmt, o)
    heard = None if o["no_cache"] else speaking.cached(cfg.root, client.base_url, target, ask)
    if heard is None:
        heard = speaking.speak(client, cfg.root, target, ask, use_cache=False)
    _write(start, out, heard.audio)
    body = _summary(heard, out, o["as_json"])
    if o["as_json"]:
        click.echo(render.json_text(body), nl=False)
    return 0


def _inputs(o: dict[str, Any]) -> tuple[str | None, str, str]:
    out = o["out"]
    if not out:
        raise UsageError("say where the audio goes: -o OUT (a file, or '-' for stdout)")
    fmt = _format(out, o["fmt"])
    if out == "-":
        if sys.stdout.isatty():
            raise UsageError("-o -: standard output is a terminal, not a place for audio")
        if o["as_json"]:
            raise UsageError("--json prints to standard output, where -o - writes the audio")
    return _text(o), fmt, out


def _format(out: str, given: str | None) -> str:
    suffix = Path(out).suffix.lower().lstrip(".") if out != "-" else ""
    implied = EXTENSIONS.get(suffix)
    if given and implied and given != implied:
        raise UsageError(f"--format {given} does not match {out!r} (a .{suffix} file)")
    if given or implied:
        return given or implied or "mp3"
    if suffix:
        known = ", ".join(f".{e}" for e in EXTENSIONS)
        raise UsageError(
            f"{out!r}: no audio format Coze speaks is a .{suffix} ({known}); give --format"
        )
    return "mp3"


def _text(o: dict[str, Any]) -> str | None:
    given, path = o["text"], o["text_file"]
    if given is not None and path is not None:
        raise UsageError("give TEXT or -f FILE, not both")
    if given == "-" or path == "-":
        raw = sys.stdin.buffer.read(MAX_TEXT_FILE + 1)
        where = "standard input"
    elif path is not None:
        try:
            with open(o["start"] / path, "rb") as handle:
                raw = handle.read(MAX_TEXT_FILE + 1)
        except OSError as exc:
            raise UsageError(f"{path}: cannot read the text: {exc.strerror}") from None
        where = path
    else:
        return str(given) if given is not None else None
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"{where}: the text is not UTF-8") from None
    if not text:
        raise UsageError(f"{where}: the text is empty")
    return text


def _ask(target: Target, text: str | None, fmt: str, o: dict[str, Any]) -> SpeechAsk:
    # Its preview_text by default, else the sentence apply's snapshots say in its language.
    said = text if text is not None else target.text or REFERENCE_SENTENCES.get(target.language)
    if not said:
        raise UsageError(
            f"{target.label}: no text to say: give TEXT, -f FILE or -, or set preview_text "
            "in its declaration"
        )
    ask = SpeechAsk(target.voice_id, said, fmt, int(o["sample_rate"]), float(o["speed"]))
    why = problem(ask, target.model_type or None)
    if why:
        raise UsageError(f"{target.label}: {why}; nothing was sent")
    return ask


def _warn(declared: output.Repository) -> None:
    if declared.errors:
        click.echo(
            f"warning: the declarations have {declared.errors} error(s) (`voicectl "
            "validate` lists them): the voices are spoken as the state records them",
            err=True,
        )


def _write(start: Path, out: str, audio: bytes) -> None:
    if out == "-":
        sys.stdout.buffer.write(audio)
        sys.stdout.buffer.flush()
        return
    output.write(start / out, out, audio)


def _summary(heard: Heard, out: str, as_json: bool) -> dict[str, Any]:
    """The summary of one speech: said on stderr, or returned for --json."""
    body = {
        "voice": heard.target.label,
        "voice_id": heard.target.voice_id,
        "clone": heard.target.clone,
        "out": out,
        "format": heard.ask.fmt,
        "sample_rate": heard.ask.sample_rate,
        "speed": heard.ask.speed,
        "bytes": len(heard.audio),
        "duration": heard.duration,
        "logid": heard.logid,
        "cached": heard.cached,
    }
    if as_json:
        return body
    where = "standard output" if out == "-" else out
    source = "from the cache, no call made" if heard.cached else f"logid {heard.logid or 'none'}"
    click.echo(
        visible(
            f"{heard.target.label}: {len(heard.audio):,} bytes, {heard.duration:.2f} s of "
            f"{heard.ask.fmt} at {heard.ask.sample_rate:,} Hz{_opus(heard)} to {where} ({source})"
        ),
        err=True,
    )
    return body


def _opus(heard: Heard) -> str:
    return " (Opus plays at 48,000 Hz)" if heard.ask.fmt == "ogg_opus" else ""


def _speak_all(cfg: Any, o: dict[str, Any]) -> int:
    if o["address"] or o["voice_id"]:
        raise UsageError("--all speaks every applied voice: no ADDRESS or --voice-id with it")
    out = o["out"]
    if not out or out == "-":
        raise UsageError("--all writes a file a voice: -o DIR")
    fmt = o["fmt"] or "mp3"
    text = _text(o)
    current, warning = repository.effective_state(cfg, account.journal_check(cfg))
    if warning:
        click.echo(f"warning: {warning}", err=True)
    declared = output.read(cfg, current)
    _warn(declared)
    asks = []
    client = account.client_for(cfg, "speak")
    listed = planning.remote_voices(client, current) if current.voices else {}
    for address in sorted(current.voices):
        target = speaking.for_address(current, declared.voices, address)
        target = speaking.on_account(target, listed)
        if target.stale:
            click.echo(f"warning: {visible(target.stale)}", err=True)
        asks.append((target, _ask(target, text, fmt, o)))
    if not asks:
        raise UsageError("no voice has been applied yet: `voicectl apply` first")
    directory = o["start"] / out
    for target, ask in asks:
        name = f"{target.label}.{SUFFIX[ask.fmt]}"
        output.check(declared, directory / name, str(Path(out) / name))
    failed: dict[str, str] = {}
    said: list[dict[str, Any]] = []

    def done(heard: Heard | None, target: Target, error: VoicectlError | None) -> bool:
        if heard is None:
            failed[target.label] = str(error)
            click.echo(visible(f"error: {target.label}: {error}"), err=True)
            return True
        name = f"{target.label}.{SUFFIX[heard.ask.fmt]}"
        try:
            output.write(directory / name, str(Path(out) / name), heard.audio)
        except UsageError as exc:  # a full disk, say: no more speech is paid for
            failed[target.label] = exc.message
            kept = "; stopping (a rerun is served from .voicectl/speech/ what it could keep)"
            click.echo(visible(f"error: {exc.message}{kept}"), err=True)
            return False
        said.append(_summary(heard, str(Path(out) / name), o["as_json"]))
        return True

    finished = speaking.speak_all(
        client, cfg.root, asks, use_cache=not o["no_cache"], parallelism=o["parallelism"], done=done
    )
    if o["as_json"]:
        voices = sorted(said, key=lambda s: str(s["voice"]))
        click.echo(render.json_text({"voices": voices, "failed": failed}), nl=False)
    stopped = "" if finished else " (stopped: the rest were not asked for)"
    click.echo(f"{len(said)} of {len(asks)} voice(s) spoken into {out}{stopped}.", err=True)
    return EXIT_USER_ERROR if failed else 0
