"""Renderers: the pull-request comment's size limit, stability and content."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.test_planner import rec, sha, state, want
from voicectl.errors import Problem
from voicectl.model import AudioSpec, RemoteVoice, VoiceSpec
from voicectl.plan.fielddiff import Budget, field_changes, word_diff
from voicectl.plan.planner import plan
from voicectl.render import (
    FIELD_DIFFS_SHOWN,
    MARKDOWN_LIMIT,
    MARKDOWN_MARKER,
    json_text,
    problems_json,
    render_json,
    render_markdown,
    render_text,
    summary_line,
)

LONG = "A transcript long enough to matter in a comment, spoken slowly and clearly. " * 13


def big_plan(n: int = 500):  # type: ignore[no-untyped-def]
    """n changed voices: half new, half retrained with a new transcript, all with long text."""
    desired, records = [], []
    for i in range(n):
        address = f"voice-{i:04d}"
        desired.append(want(address, i + 1, text=LONG + str(i), name=f"Voice {i}"))
        if i % 2:
            records.append(rec(address, i + 1, voice_id=f"7400000000{i:09d}", text="old words"))
    return plan(desired, state(*records))


def test_a_comment_for_500_changed_voices_fits_with_its_summary_intact() -> None:
    result = big_plan()
    assert result.summary["create"] == 250 and result.summary["retrain"] == 250
    text = render_markdown(result)
    assert len(text) <= MARKDOWN_LIMIT
    assert text.splitlines()[0] == f"**{summary_line(result)}**"
    assert "250 to create, 250 to retrain" in text.splitlines()[0]
    assert "more change(s) left out to stay under 65,536 characters" in text
    assert text.rstrip().endswith(MARKDOWN_MARKER)
    assert text == render_markdown(big_plan())  # stable from run to run
    # Every change is still in the table even though details were shortened.
    assert all(f"`voice-{i:04d}`" in text for i in range(500))


def test_a_tiny_limit_shortens_the_table_but_never_the_summary() -> None:
    result = big_plan(50)
    text = render_markdown(result, limit=3000)
    assert len(text) <= 3000
    assert text.startswith(f"**{summary_line(result)}**")
    assert "more change(s), not shown" in text


def test_details_show_field_diffs_audio_facts_and_a_text_diff() -> None:
    old = rec("a", 1, name="Old name", text="hello there\nsecond line")
    result = plan(
        [want("a", 2, name="New name", text="hello there\nsecond line, edited")], state(old)
    )
    text = render_markdown(result)
    assert "| name | Old name | New name |" in text
    # before and after: sha256 prefix, duration, size, format, path
    assert text.count("`audio/a.wav`, wav, 12.0 s, 100 bytes, sha256 `000000000000`") == 2
    assert "```diff" in text and "-second line" in text and "+second line, edited" in text


def test_markdown_escapes_what_would_break_a_table_or_inject_html() -> None:
    result = plan([want("a", name="a | b <script>")], state())
    text = render_markdown(result)
    assert "a \\| b &lt;script&gt;" in text and "<script>" not in text


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        (
            "![x](https://evil.example/pixel.png)",
            "\\!\\[x\\]\\(https:\u200b//evil.example/pixel.png\\)",
        ),
        ("ping @org/voice-team and @alice", "ping @\u200borg/voice-team and @\u200balice"),
        ("see www.evil.example or http://x.example", "www\u200b.evil.example or http:\u200b//x"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert\\(1\\)&gt;"),
        ("`code` **bold** _em_ ~~del~~", "\\`code\\` \\*\\*bold\\*\\* \\_em\\_ \\~\\~del\\~\\~"),
        ("a\rb\nc", "a b c"),
    ],
)
def test_a_name_in_the_comment_is_data_not_markup(name: str, shown: str) -> None:
    result = plan([want("a", 2, name=name)], state(rec("a", 1, name="Narrator voice")))
    text = render_markdown(result)
    assert shown in text


def test_a_saved_plan_s_text_reaches_the_terminal_escaped() -> None:
    """A saved plan is a file: an edited one must not drive the terminal through `show`."""
    result = plan([want("a")], state())
    (change,) = result.changes
    edited = replace(change, message="\x1b]0;owned\x07\rfine", notes=("\x1b[2J",))
    text = render_text(replace(result, changes=(edited,)))
    assert "\x1b" not in text and "\r" not in text and "\\x1b]0;owned" in text


def test_an_unproven_voice_s_note_is_shown_first_when_notes_are_cut() -> None:
    """Hundreds of renamed voices' notes must not push the one a reviewer must see into
    "…and N more"."""
    wanted = [want(f"v{i:03d}", i + 1, name=f"New name {i}") for i in range(300)]
    records = [rec(f"v{i:03d}", i + 1, name=f"Old name {i}") for i in range(299)]
    records.append(replace(rec("v299", 300, name="Old name 299"), unproven="the create sent"))
    text = render_markdown(plan(wanted, state(*records)), limit=3000)
    assert "v299`: voice 74000000000000000300 is unproven" in text
    assert "more note(s)" in text


def test_a_backtick_in_a_file_name_cannot_close_its_code_span() -> None:
    result = plan([want("a", 2, path="audio/a`b`.wav")], state(rec("a", 1)))
    assert "``audio/a`b`.wav``" in render_markdown(result)


def test_no_changes_is_one_line_and_the_marker() -> None:
    text = render_markdown(plan([want("a")], state(rec("a"))))
    assert text == f"**voicectl plan: no changes.**\n\n{MARKDOWN_MARKER}\n"


def test_protect_left_unsaid_is_no_field_change() -> None:
    """Deleting nothing and saying nothing keeps the recorded protection: not a diff row."""
    result = plan([want("a", 2)], state(rec("a", 1)))
    assert "| protect |" not in render_markdown(result)
    lifted = plan([want("a", 2, protect=False)], state(rec("a", 1, protect=True)))
    assert "| protect | true | false |" in render_markdown(lifted, limit=MARKDOWN_LIMIT)


def test_a_plan_with_only_notes_says_so_in_text_markdown_and_json() -> None:
    """A name changed, to take effect at the next retrain: nothing to clone, yet not "no
    changes" to a reviewer, and the note is in the JSON's own list."""
    result = plan([want("a", 1, name="New name")], state(rec("a", 1, name="Old name")))
    assert not result.has_changes
    assert render_text(result).endswith("No changes to Coze; read the notes above.\n")
    assert render_markdown(result).startswith(
        "**voicectl plan: no changes to Coze. 1 note(s) to read.**"
    )
    (note,) = json.loads(render_json(result))["notes"]
    assert note["address"] == "a" and note["note"].startswith("name changed")


def test_the_text_plan_shows_what_changed_field_by_field() -> None:
    old = rec("a", 1, name="Old name", text="The quick brown fox jumps.")
    moved = want("a", 2, name="New name", text="The quick red fox jumps.", path="audio/b.wav")
    moved = replace(moved, take=replace(moved.take, size=2048, duration=15.5))
    lines = render_text(plan([moved, want("n", 3)], state(old))).splitlines()
    assert lines[0] == "Symbols: + create, ~ retrain"  # the legend names the symbols used
    at = next(i for i, line in enumerate(lines) if "  ~ a" in line)
    assert [line.strip() for line in lines[at + 2 : at + 8]] == [
        'text:           "The quick [-brown-]{+red+} fox jumps."',
        f"audio.sha256:   {sha(1)[:12]} -> {sha(2)[:12]}",
        "audio.duration: 12.0 s -> 15.5 s",
        "audio.size:     100 bytes -> 2,048 bytes",
        'audio.path:     "audio/a.wav" -> "audio/b.wav"',
        'name:           "Old name" -> "New name"',
    ]
    assert not lines[at + 8].startswith("    ")  # and nothing else (protect left out)
    new = next(line.strip() for line in lines if line.strip().startswith("audio: audio/n.wav"))
    assert new == f"audio: audio/n.wav (wav, 12.0 s, 100 bytes, sha256 {sha(3)[:12]})"


def test_protect_left_out_keeps_the_recorded_value_and_is_no_change() -> None:
    kept = plan([want("a", 1, name="Renamed")], state(rec("a", 1, protect=True)))
    assert "protect" not in render_text(kept) and "protect" not in render_markdown(kept)
    lifted = plan([want("a", 2, protect=False)], state(rec("a", 1, protect=True)))
    assert "protect:      true -> false" in render_text(lifted)


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("a b c", "a x c", '"a [-b-]{+x+} c"'),
        ("one two", "zero one two three", '"{+zero +}one two{+ three+}"'),
        ("今天天气很好。", "今天天气不好。", '"今天天气[-很-]{+不+}好。"'),  # CJK by character
        (
            "w1 w2 w3 w4 w5 w6 w7 w8 w9 old w10 w11 w12 w13 w14 w15 w16",
            "w1 w2 w3 w4 w5 w6 w7 w8 w9 new w10 w11 w12 w13 w14 w15 w16",
            '"… w6 w7 w8 w9 [-old-]{+new+} w10 w11 w12 w13 …"',  # long stretches cut
        ),
        ("line one\nline two", "line one\nline 2", '"line one\nline [-two-]{+2+}"'),
    ],
)
def test_a_transcript_is_diffed_word_by_word(old: str, new: str, said: str) -> None:
    assert word_diff(old, new) == said


def test_a_blocked_create_shows_its_take_in_words_not_data() -> None:
    on_coze = {"7400000000000000077": RemoteVoice("7400000000000000077", "Voice", 9, 0, 0)}
    blocked = plan([want("n", 3)], state(), on_coze)  # a name the account already has
    (change,) = blocked.changes
    assert change.action == "blocked"
    text = render_text(blocked)
    assert f"audio: audio/n.wav (wav, 12.0 s, 100 bytes, sha256 {sha(3)[:12]})" in text
    assert "{" not in text and "(none) ->" not in text
    markdown = render_markdown(blocked)
    assert "False" not in markdown and "'sha256'" not in markdown


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("same words", "same words", '"same words"'),  # nothing differs: the text, unmarked
        (
            "我们今天一起去公园散步吧，好不好呢朋友们。",
            "我们今天一起去海边散步吧，好不好呢朋友们。",
            '"…天一起去[-公园-]{+海边+}散步吧，…"',  # no space the text did not have
        ),
        ('He said "hi".', 'He said "hello".', '"He said \\"[-hi-]{+hello+}\\"."'),
    ],
)
def test_word_diff_edges(old: str, new: str, said: str) -> None:
    assert word_diff(old, new) == said


def test_a_huge_text_plan_spells_out_the_first_thousand_changes_and_says_so() -> None:
    text = render_text(big_plan(FIELD_DIFFS_SHOWN + 2))
    assert text.count("    audio: ") + text.count("    text: ") >= FIELD_DIFFS_SHOWN
    assert f"spelled out for the first {FIELD_DIFFS_SHOWN:,} changes" in text
    assert "voice-1001" in text  # every change is still listed


def saying(text: str) -> VoiceSpec:
    """A voice that differs from another of this function's only by what it says."""
    take = AudioSpec("a" * 64, "a.wav", "wav", 1, 12.0)
    return VoiceSpec("Narrator", "en", None, text, None, None, take)


def test_a_long_rewrite_or_a_spent_budget_shows_the_two_texts_not_a_word_diff() -> None:
    long_old, long_new = "a " * 512, "b " * 512  # a word diff would compare 1,024 x 1,024
    said = word_diff(long_old, long_new)
    assert said.startswith('"[-a a a') and said.endswith('+}" (1,024 -> 1,024 characters)')
    before, after = saying("one two three"), saying("one 2 three")
    assert field_changes(before, after, Budget(60))[0][1] == '"one [-two-]{+2+} three"'
    spent = field_changes(before, after, Budget(0))[0][1]  # out of time: texts whole
    assert spent == '"[-one two three-]{+one 2 three+}" (13 -> 11 characters)'


def test_a_plan_of_a_thousand_rewritten_transcripts_renders_every_change() -> None:
    desired, records = [], []
    for i in range(1_000):
        address = f"voice-{i:04d}"
        desired.append(want(address, i + 1, text=f"b{i} " * 340))
        records.append(rec(address, i + 1, voice_id=f"7400000000{i:09d}", text=f"a{i} " * 340))
    text = render_text(plan(desired, state(*records)))
    assert text.count("  ~ voice-") == 1_000 and text.count("characters)") == 1_000


def test_a_transcript_that_only_looks_the_same_says_so() -> None:
    nfc, nfd = "un caf\u00e9", "un cafe\u0301"
    (said,) = field_changes(saying(nfc), saying(nfd))
    assert said[1].endswith("(the same letters in another Unicode form)")


def test_problems_json_is_written_in_the_one_json_style_with_sorted_keys() -> None:
    """`validate --json` is deterministic like every other JSON voicectl writes."""
    problems = [Problem("voices/a.yaml", 3, 5, "voices.a.name", "too long", "warning")]
    text = problems_json(problems, files=1, voices=2, notes=["a note"])
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert text == json_text(json.loads(text))
