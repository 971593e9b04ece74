"""The review page's HTML: a static page, readable with script off, on a phone and in dark
mode, that asks for nothing over the network (its Content-Security-Policy forbids it)."""

from __future__ import annotations

import base64
import difflib
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

from voicectl.model import Action, AudioSpec, Change, Plan
from voicectl.review.heard import Training
from voicectl.review.takes import Shown

STYLE = """
:root{color-scheme:light dark;--fg:#1f2328;--bg:#fff;--muted:#59636e;--line:#d1d9e0;
--card:#f6f8fa;--warn:#9a6700;--warnbg:#fff8c5;--bad:#d1242f;--ok:#1a7f37;--new:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;
--line:#3d444d;--card:#151b23;--warn:#d29922;--warnbg:#3a2d00;--bad:#f85149;--ok:#3fb950;
--new:#4493f8}}
*{box-sizing:border-box}body{overflow-wrap:anywhere;margin:0 auto;max-width:1100px;
padding:1rem;font:15px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin:0 0 .3rem}h3{font-size:1rem;margin:.2rem 0}
table{border-collapse:collapse}td,th{border:1px solid var(--line);padding:.2rem .5rem;
text-align:left}.muted{color:var(--muted)}.change{border:1px solid var(--line);
border-radius:8px;padding:1rem;margin:1rem 0}.takes{display:flex;flex-wrap:wrap;gap:1rem}
.take{flex:1 1 420px;min-width:0;background:var(--card);border-radius:6px;padding:.7rem}
.take img{display:block;width:100%;height:90px;margin:.3rem 0;border-radius:4px}
.take img.spectrogram{height:120px}
audio{width:100%}.warn{color:var(--warn);background:var(--warnbg);padding:.1rem .4rem;
border-radius:4px}.bad{color:var(--bad)}.ok{color:var(--ok)}
.badge{display:inline-block;border-radius:1rem;padding:0 .6rem;border:1px solid currentColor;
font-size:.85rem}.budget{display:flex;gap:3px;margin:.3rem 0}.budget span{width:1.3rem;
height:1.3rem;border-radius:3px;border:1px solid var(--line)}.budget .used{background:var(--muted)}
.budget .now{background:var(--new)}del{color:var(--bad)}ins{color:var(--ok)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:0 .8rem;margin:.3rem 0}dd{margin:0}
code{overflow-wrap:anywhere}
"""

SCRIPT = """
document.querySelectorAll('.takes[data-pair]').forEach(function (pair) {
  var players = pair.querySelectorAll('audio:not([data-preview])');
  if (players.length !== 2) return;
  var button = document.createElement('button');
  button.textContent = pair.dataset.pair || 'Play the old take, then the new';
  button.addEventListener('click', function () {
    players[1].pause(); players[0].currentTime = 0; players[0].play();
    players[0].addEventListener('ended', function () {
      players[1].currentTime = 0; players[1].play();
    }, {once: true});
  });
  pair.parentNode.insertBefore(button, pair);
});
"""

TITLES = {"old": "Trained on now", "new": "The new take"}
ORDER = {Action.RETRAIN: 0, Action.REPLACE: 1, Action.CREATE: 2, Action.BLOCKED: 3}
# the rest after these; unchanged voices with a note to read (noop) last
Inline = Callable[[str], str]  # --single-file: a path under the review to a data: URI
GENERATOR = '<meta name="generator" content="voicectl review">'


@dataclass(frozen=True)
class Review:
    """What the page shows, gathered (see voicectl.review.build)."""

    plan: Plan
    takes: Mapping[str, Shown]  # by sha256
    policy: Sequence[str]  # violations; none: within policy
    source: str  # what was reviewed: a saved plan's file, or the repository at a commit
    inline: Inline | None = None
    # By address: how it sounded at its two latest trainings kept (voicectl.review.heard).
    heard: Mapping[str, Sequence[Training]] = field(default_factory=dict)


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def html(review: Review) -> str:
    policy = (
        "default-src 'none'; img-src 'self' data:; media-src 'self' data:; "
        f"style-src {_hash(STYLE)}; script-src {_hash(SCRIPT)}; base-uri 'none'; "
        "form-action 'none'"
    )
    changed = sorted(  # what overwrites a voice first, then what makes one, then the rest
        (
            c
            for c in review.plan.changes
            if c.action != Action.NOOP or c.notes or c.address in review.heard
        ),
        key=lambda c: (ORDER.get(c.action, len(ORDER)), c.address),
    )
    body = [_summary(review), *(_change(review, c) for c in changed)]
    if not review.plan.has_changes:
        body.append("<p>No changes: apply would do nothing.</p>")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"{GENERATOR}"
        f"<title>voicectl review: {len(changed)} change(s)</title><style>{STYLE}</style>"
        "</head><body><header><h1>Review of a voicectl plan</h1>"
        f'<p class="muted">{escape(review.source)}</p></header>'
        + "".join(body)
        + f"<script>{SCRIPT}</script></body></html>\n"
    )


def _summary(review: Review) -> str:
    plan = review.plan
    counts = "".join(
        f'<tr><th>{escape(action)}</th><td data-summary="{escape(action)}">{n}</td></tr>'
        for action, n in plan.summary.items()
        if n
    )
    cost = plan.cost
    new = {c.after.audio.sha256 for c in plan.changes if c.spends_clone and c.after}
    warned = sum(1 for sha in new if _warnings(review, sha))
    policy = (
        '<p class="ok" id="policy">Within the repository\'s policy.</p>'
        if not review.policy
        else '<div id="policy" class="bad"><p>Over the repository\'s policy:</p><ul>'
        + "".join(f"<li>{escape(v)}</li>" for v in review.policy)
        + "</ul></div>"
    )
    takes = (
        f'<p class="warn" id="take-warnings">{warned} take(s) with warnings: see below.</p>'
        if warned
        else '<p class="ok" id="take-warnings">No take is warned of.</p>'
    )
    return (
        '<section id="summary"><h2>Summary</h2><table>'
        f"{counts or '<tr><td>no changes</td></tr>'}</table><p>"
        f'<strong data-summary="clones_spent">{plan.clones_spent}</strong> clone(s) spent; '
        f'<strong data-summary="one_time_cny">{cost.one_time_cny}</strong> CNY once, '
        f'<strong data-summary="monthly_cny_delta">{cost.monthly_cny_delta:+d}</strong> '
        f"CNY a month.{_speech(plan)}</p>{policy}{takes}</section>"
    )


def _speech(plan: Plan) -> str:
    if not plan.speech_calls:
        return ""
    return (
        f' Up to <strong data-summary="speech_calls">{plan.speech_calls}</strong> billed '
        "speech call(s), to keep the retrained voices' sound before and after."
    )


def _warnings(review: Review, sha: str) -> tuple[str, ...]:
    """What a take is warned of: as shown (the plan's verdict merged in), else the plan's."""
    shown = review.takes.get(sha)
    if shown is not None and shown.verdict is not None:
        return shown.verdict.warnings
    verdict = review.plan.takes.get(sha)
    return verdict.warnings if verdict is not None else ()


def _change(review: Review, change: Change) -> str:
    why = [change.message] if change.message else list(change.reasons)
    notes = "".join(f'<p class="warn">{escape(n)}</p>' for n in change.notes)
    voice = (
        f' <code class="muted">voice {escape(change.voice_id)}</code>' if change.voice_id else ""
    )
    moved = (
        f"<p>Moves from <code>{escape(change.from_address)}</code>.</p>"
        if change.from_address
        else ""
    )
    return (
        f'<section class="change" id="voice-{escape(change.address)}" '
        f'data-action="{escape(change.action)}">'
        f"<h2><code>{escape(change.address)}</code> "
        f'<span class="badge">{escape(change.action)}</span>{voice}</h2>'
        f"<p>{escape('; '.join(why))}</p>{moved}{notes}{_budget(change)}"
        f"{_transcript(change)}{_takes(review, change)}{_heard(review, change)}</section>"
    )


def _heard(review: Review, change: Change) -> str:
    """The voice's sound at its two latest trainings kept, side by side."""
    trainings = review.heard.get(change.address, ())
    if not trainings:
        return ""
    src = review.inline or (lambda path: path)
    cards = []
    for t in trainings:
        title = f"Clone {t.clone}" + (" (now)" if t.current else "")
        players = (
            f'<audio controls preload="metadata" src="{escape(src(t.reference))}" '
            f'data-clone="{t.clone}"></audio>'
            if t.reference
            else ""
        )
        if t.preview:
            players += (
                f'<p class="muted">Coze\'s preview of this training:</p><audio controls '
                f'preload="metadata" data-preview src="{escape(src(t.preview))}"></audio>'
            )
        cards.append(
            f'<div class="take" data-role="heard" data-clone="{t.clone}"><h3>{title}</h3>'
            f'{players}<p class="muted">{escape(t.taken)}, {escape(t.taken_at)}</p></div>'
        )
    pair = ' data-pair="Play the earlier training, then the later"' if len(cards) == 2 else ""
    sentence = escape(trainings[-1].sentence)
    return (
        f'<section class="heard"><h3>How the voice sounds</h3><p class="muted">Kept by '
        f"apply around a retrain, saying: <q>{sentence}</q></p>"
        f'<div class="takes"{pair}>{"".join(cards)}</div></section>'
    )


def _budget(change: Change) -> str:
    """The voice id's ten clones: used before, spent by this change, left after."""
    budget = change.budget
    if budget.after is None and budget.before is None:
        return ""
    before = budget.limit - (budget.before if budget.before is not None else budget.limit)
    after = budget.limit - (budget.after if budget.after is not None else budget.limit - before)
    cells = "".join(
        '<span class="used" title="used"></span>'
        if i < before
        else '<span class="now" title="this change"></span>'
        if i < after
        else '<span title="left"></span>'
        for i in range(budget.limit)
    )
    left = budget.after if budget.after is not None else budget.before
    return (
        f'<div class="budget" role="img" aria-label="{after} of {budget.limit} clones used '
        f'after this change, {left} left">{cells}</div>'
        f'<p class="muted">Clones: {before} used before, {after} after, {left} left.</p>'
    )


def _transcript(change: Change) -> str:
    old = change.before.text if change.before else None
    new = change.after.text if change.after else None
    if new is None or old is None or old == new:
        shown = new if new is not None else old
        return f"<p>Transcript: {escape(shown)}</p>" if shown else ""
    a, b = old.split(), new.split()
    words = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            words.append(f"<del>{escape(' '.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            words.append(f"<ins>{escape(' '.join(b[j1:j2]))}</ins>")
        if op == "equal":
            words.append(escape(" ".join(a[i1:i2])))
    return f'<p class="transcript">Transcript: {" ".join(words)}</p>'


def _takes(review: Review, change: Change) -> str:
    if change.action == Action.NOOP:  # shown for its notes only
        return ""
    before = change.before.audio if change.before else None
    after = change.after.audio if change.after else None
    if change.action in (Action.CREATE, Action.RETRAIN, Action.REPLACE) and after is not None:
        pair = before is not None and before.sha256 != after.sha256
        cards = [("old", before)] if pair else []
        cards.append(("new", after))
    elif before is not None:  # move, update, orphan, blocked: the take as it stands
        cards, pair = [("old", before)], False
    else:
        return ""
    inner = "".join(_take(review, role, spec) for role, spec in cards if spec)
    return f'<div class="takes"{" data-pair" if pair else ""}>{inner}</div>'


def _take(review: Review, role: str, spec: AudioSpec) -> str:
    """A take's card: its facts as this change names them (two voices may share the
    bytes under two names), its player and pictures as gathered by sha256."""
    shown = review.takes.get(spec.sha256)
    title = TITLES[role]
    if shown is None:
        return f'<div class="take" data-role="{role}"><h3>{title}</h3></div>'
    facts = (
        f"<dl><dt>File</dt><dd><code>{escape(spec.path)}</code></dd>"
        f"<dt>Format</dt><dd>{escape(spec.format)}</dd>"
        f"<dt>Duration</dt><dd>{shown.duration or spec.duration:.2f} s</dd>"
        f"<dt>Size</dt><dd>{spec.size:,} bytes</dd>"
        f"<dt>sha256</dt><dd><code>{escape(spec.sha256[:12])}</code></dd></dl>"
    )
    if shown.missing:
        return (
            f'<div class="take" data-role="{role}"><h3>{title}</h3>'
            f'<p class="warn">Not available: {escape(shown.missing)}.</p>{facts}</div>'
        )
    src = review.inline or (lambda path: path)
    decoded = "" if shown.duration is None else f' data-duration="{shown.duration:.3f}"'
    media = (
        f'<audio controls preload="metadata" src="{escape(src(shown.audio))}"{decoded} '
        f'data-sha256="{escape(spec.sha256)}"></audio>'
    )
    if shown.waveform:
        media += (
            f'<img class="waveform" src="{escape(src(shown.waveform))}" width="800" '
            f'height="120" alt="waveform of {escape(spec.path)}">'
            f'<img class="spectrogram" src="{escape(src(shown.spectrogram))}" width="400" '
            f'height="120" alt="spectrogram of {escape(spec.path)}">'
        )
    return (
        f'<div class="take" data-role="{role}"><h3>{title}</h3>{media}{facts}'
        f"{_quality(shown)}</div>"
    )


def _quality(shown: Shown) -> str:
    verdict = shown.verdict
    if verdict is None:
        return ""
    warnings = "".join(f'<li class="warn">{escape(w)}</li>' for w in verdict.warnings)
    f = verdict.figures
    if not f:
        return f"<ul>{warnings}</ul>"
    rows = [
        ("Loudness", _unit(f.get("loudness_lufs"), "LUFS")),
        ("Peak", _unit(f.get("peak_dbfs"), "dBFS")),
        ("Clipped samples", f"{f.get('clipped_samples', 0):,}"),
        ("Silence", f"{f.get('silence_share', 0):.0%}"),
        ("Silence at start / end", f"{f.get('leading_silence')} s / {f.get('trailing_silence')} s"),
        ("Noise floor (est.)", _unit(f.get("noise_floor_dbfs"), "dBFS")),
        ("SNR (est.)", _unit(f.get("snr_db"), "dB")),
        ("Sample rate, channels", f"{f.get('sample_rate'):,} Hz, {f.get('channels')}"),
    ]
    table = "".join(f"<tr><th>{name}</th><td>{escape(value)}</td></tr>" for name, value in rows)
    verdict_line = (
        f'<ul class="warnings">{warnings}</ul>' if warnings else '<p class="ok">No warnings.</p>'
    )
    return f'<table class="quality">{table}</table>{verdict_line}'


def _unit(value: object, unit: str) -> str:
    return "—" if value is None else f"{value} {unit}"
