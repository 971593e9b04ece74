"""Take quality: decoding every format Coze accepts, and the figures on known signals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import VoiceRepo
from voicectl.sound import checks
from voicectl.sound.decode import Decoded, DecodeError, decode
from voicectl.sound.encode import encode
from voicectl.sound.quality import measure

RATE = 48_000


def tone(seconds: float, freq: float = 997.0, amplitude: float = 0.5, rate: int = RATE):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32).reshape(1, -1)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg", "m4a", "aac", "pcm"])
def test_every_format_coze_accepts_decodes_to_the_take_it_holds(tmp_path: Path, fmt: str) -> None:
    """Each format, encoded by FFmpeg, decodes to its duration (codec padding aside: AAC
    adds up to two frames) and its level."""
    rate = 24_000  # the one rate every format here takes, pcm's
    path = tmp_path / f"take.{fmt}"
    path.write_bytes(encode(tone(3.0, 440, rate=rate), rate, fmt))
    decoded = decode(path, fmt)
    assert decoded.channels == 1
    assert 3.0 <= decoded.duration <= 3.0 + 2 * 1024 / rate + 0.01
    peak = float(np.abs(decoded.samples).max())
    assert 0.45 < peak < 0.56  # lossy codecs overshoot a little


def test_a_file_that_is_not_audio_is_one_decode_error(tmp_path: Path) -> None:
    path = tmp_path / "take.mp3"
    path.write_bytes(b"ID3" + bytes(500))
    with pytest.raises(DecodeError):
        decode(path, "mp3")


def test_a_minus_20_lufs_tone_measures_minus_20_lufs() -> None:
    """BS.1770: a 997 Hz sine of peak amplitude A reads 20 log10(A) - 3.01 LUFS."""
    amplitude = 10 ** ((-20 + 3.01) / 20)
    quality = measure(Decoded(tone(5.0, amplitude=amplitude), RATE))
    assert quality.loudness_lufs == pytest.approx(-20.0, abs=0.1)
    assert quality.peak_dbfs == pytest.approx(-16.99, abs=0.1)
    assert quality.clipped_samples == 0 and quality.silent_channels == ()


def test_a_clipped_sine_counts_its_flattened_samples() -> None:
    clipped = np.clip(tone(2.0, amplitude=2.0), -1.0, 1.0)
    quality = measure(Decoded(clipped, RATE))
    flat = int((np.abs(clipped) >= 0.999).sum())
    assert quality.clipped_samples == pytest.approx(flat, rel=0.01)
    assert quality.clipped_samples > RATE  # a third of every cycle, for 2 s
    assert quality.peak_dbfs == 0.0
    assert measure(Decoded(tone(2.0, amplitude=1.0), RATE)).clipped_samples == 0  # one peak


def test_a_take_silent_for_its_second_half() -> None:
    half = np.concatenate([tone(2.0), np.zeros((1, 2 * RATE), np.float32)], axis=1)
    quality = measure(Decoded(half, RATE))
    assert quality.silence_share == pytest.approx(0.5, abs=0.02)
    assert quality.leading_silence == 0.0
    assert quality.trailing_silence == pytest.approx(2.0, abs=0.05)
    assert quality.duration == 4.0


def test_noise_under_speech_shows_in_the_snr() -> None:
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 10 ** (-40 / 20), (1, 4 * RATE)).astype(np.float32)
    bursts = np.concatenate([tone(1.0), np.zeros((1, RATE), np.float32)] * 2, axis=1)
    quality = measure(Decoded(bursts + noise, RATE))
    assert quality.noise_floor_dbfs == pytest.approx(-40, abs=1.5)
    assert quality.snr_db == pytest.approx(-9 + 40, abs=2)  # a 0.5 sine's RMS: -9 dBFS


def test_a_stereo_take_with_a_silent_channel() -> None:
    stereo = np.concatenate([tone(2.0), np.zeros((1, 2 * RATE), np.float32)], axis=0)
    quality = measure(Decoded(stereo, RATE))
    assert quality.channels == 2 and quality.silent_channels == (2,)
    assert "channel 2 of 2 is silent" in checks.Thresholds().warnings(quality)


def phrases(amplitude: float) -> Decoded:
    """Speech-like: a second of sound, a fifth of a second of pause, three times."""
    pause = np.zeros((1, RATE // 5), np.float32)
    return Decoded(np.concatenate([tone(1.0, amplitude=amplitude), pause] * 3, axis=1), RATE)


def test_thresholds_say_what_is_wrong_and_nothing_else() -> None:
    fine = measure(phrases(0.3))
    assert checks.Thresholds().warnings(fine) == []
    quiet = measure(phrases(0.01))
    assert [w.split(":")[0] for w in checks.Thresholds().warnings(quiet)] == ["quiet"]
    assert checks.Thresholds(min_loudness_lufs=-50).warnings(quiet) == []
    steady = measure(Decoded(tone(3.0, amplitude=0.3), RATE))  # no pause: no floor to tell
    assert steady.snr_db is None and checks.Thresholds().warnings(steady) == []
    rng = np.random.default_rng(3)
    hum = phrases(0.3).samples + rng.normal(0, 0.05, (1, int(3.6 * RATE))).astype(np.float32)
    noisy = measure(Decoded(hum, RATE))
    assert [w.split(":")[0] for w in checks.Thresholds().warnings(noisy)] == ["noisy"]


def test_the_quality_cache_vouches_only_for_what_this_machine_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A take measured once is not decoded again; an entry written without this
    machine's key (a pull request's) is measured afresh, not believed."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    clipped = tmp_path / "take.wav"
    clipped.write_bytes(encode(np.clip(tone(2.0, amplitude=2.0), -1, 1), RATE, "wav"))
    cache = tmp_path / ".voicectl" / "cache" / "quality.json"
    take = checks.TakeToMeasure(clipped, "ab" * 32, "wav")
    first = checks.measure_all([take], cache)["ab" * 32]
    assert isinstance(first, checks.Quality) and first.clipped_samples > 0
    clipped.write_bytes(b"not audio any more")  # a second measure would fail
    assert checks.measure_all([take], cache)["ab" * 32] == first
    planted = json.loads(cache.read_text())
    entry = planted["entries"]["ab" * 32]
    entry["figures"]["clipped_samples"] = 0
    cache.write_text(json.dumps(planted))
    assert "cannot be decoded" in str(checks.measure_all([take], cache)["ab" * 32])


# --- in validate, plan and review: the repository's takes ------------------------------


def clipped_take(repo: VoiceRepo, name: str) -> str:
    """A take flattened at full scale, with pauses (so loud, and clipped only)."""
    pause = np.zeros((1, RATE // 5), np.float32)
    loud = np.clip(tone(1.0, amplitude=3.0), -1.0, 1.0)
    path = repo.root / "audio" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(np.concatenate([loud, pause] * 11, axis=1), RATE, "wav"))
    return f"../audio/{name}"


def test_a_clipped_take_is_warned_of_by_validate_plan_and_the_comment(repo: VoiceRepo, run) -> None:
    voices = {"a": repo.voice("a"), "b": repo.voice("b", freq=520)}
    voices["b"]["audio"] = clipped_take(repo, "b-clipped.wav")
    repo.declare(voices)
    validated = run(repo.root, "validate")
    assert validated.exit_code == 0, validated.output
    assert "voices.b.audio: audio/b-clipped.wav: clipped:" in validated.output
    assert "1 warning(s)" in validated.output
    planned = run(repo.root, "plan", "--no-refresh", "--json")
    assert planned.exit_code == 0
    assert "clipped:" in planned.stderr
    takes = json.loads(planned.stdout)["takes"]
    assert sorted(len(t["warnings"]) for t in takes.values()) == [0, 1]
    assert all(t["duration"] > 0 for t in takes.values())
    comment = run(repo.root, "plan", "--no-refresh", "--format", "markdown").stdout
    assert "| ⚠ clipped: " in comment and "| ok |" in comment
    repo.write_config(policy={"takes": {"max_clipped_samples": 10**9}})
    assert "clipped:" not in run(repo.root, "plan", "--no-refresh").output


def test_under_strict_takes_a_warned_take_stops_the_plan(repo: VoiceRepo, run) -> None:
    voices = {"b": repo.voice("b")}
    voices["b"]["audio"] = clipped_take(repo, "b-clipped.wav")
    repo.declare(voices)
    repo.write_config(policy={"strict_takes": True})
    planned = run(repo.root, "plan", "--no-refresh", "--out", "plan.json")
    assert planned.exit_code == 1, planned.output
    assert "clipped:" in planned.output and "(policy.strict_takes)" in planned.output
    assert not (repo.root / "plan.json").exists()


def test_a_plan_measures_only_the_takes_it_clones(repo: VoiceRepo, run, coze) -> None:
    """A take already cloned is not decoded again by every plan: only a change that
    clones has its take measured (a plan of 10,000 voices with nothing to do decodes
    nothing)."""
    repo.declare({"a": repo.voice("a")})
    assert run(repo.root, "apply", "--auto-approve", env=coze.env()).exit_code == 0
    cache = repo.root / ".voicectl" / "cache" / "quality.json"
    cache.unlink()
    planned = run(repo.root, "plan", "--no-refresh", "--json")
    assert json.loads(planned.stdout)["takes"] == {}
    assert not cache.exists()


def test_a_saved_plan_keeps_its_takes_verdicts(repo: VoiceRepo, run) -> None:
    voices = {"b": repo.voice("b")}
    voices["b"]["audio"] = clipped_take(repo, "b-clipped.wav")
    repo.declare(voices)
    assert run(repo.root, "plan", "--no-refresh", "--out", "plan.json").exit_code == 0
    saved = json.loads((repo.root / "plan.json").read_text())
    (verdict,) = saved["takes"].values()
    assert verdict["warnings"][0].startswith("clipped:")
    shown = run(repo.root, "show", "plan.json", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["takes"] == saved["takes"]


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000, 11025 * 3 + 1])
def test_the_loudness_is_pyloudnorms_to_the_tenth(rate: int) -> None:
    """The same integrated loudness as pyloudnorm's own meter (whose filters it uses),
    for any rate, one to three channels, any length from one gating block up."""
    import pyloudnorm

    from voicectl.sound.quality import _loudness

    def loudness_by_pyloudnorm(samples: np.ndarray, rate: int) -> float:
        return float(pyloudnorm.Meter(rate).integrated_loudness(samples.T.astype(np.float64)))

    rng = np.random.default_rng(rate)
    for channels in (1, 2, 3):
        for seconds in (0.41, 1.0, 3.33):
            frames = int(rate * seconds)
            envelope = np.sin(np.arange(frames) / rate * 3)
            samples = (rng.normal(0, 0.1, (channels, frames)) * envelope).astype(np.float32)
            assert _loudness(samples, rate) == round(loudness_by_pyloudnorm(samples, rate), 1)


# --- hostile and odd takes (what a fresh adversary found) --------------------------------


def wav_of(path: Path, frames: bytes, channels: int, rate: int = 24_000, tag: int = 1) -> Path:
    """A WAV of 16-bit ``frames`` (or, with another format ``tag``, of any codec)."""
    import struct

    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * 2, channels * 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
    body += struct.pack("<I", len(frames)) + frames
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def test_takes_of_many_channels_decode_or_are_refused_in_words(tmp_path: Path) -> None:
    """Eight channels decode (FFmpeg's resampler crashed the process on some layouts:
    voicectl scales each sample format itself); nine are refused as no take."""
    wave = (tone(1.0, rate=24_000, amplitude=0.3)[0] * 32767).astype("<i2")
    eight = wav_of(tmp_path / "eight.wav", np.repeat(wave, 8).tobytes(), 8)
    decoded = decode(eight, "wav")
    assert decoded.channels == 8 and decoded.duration == pytest.approx(1.0)
    assert float(np.abs(decoded.samples).max()) == pytest.approx(0.3, abs=0.01)
    nine = wav_of(tmp_path / "nine.wav", np.repeat(wave, 9).tobytes(), 9)
    with pytest.raises(DecodeError, match="9 channels"):
        decode(nine, "wav")


def test_a_codec_ffmpeg_lacks_and_a_take_too_long_are_decode_errors(tmp_path: Path) -> None:
    odd = wav_of(tmp_path / "odd.wav", bytes(48_000), 1, tag=0x7777)
    with pytest.raises(DecodeError):
        decode(odd, "wav")
    long = tmp_path / "long.wav"
    long.write_bytes(encode(tone(2.0), RATE, "wav"))
    with pytest.raises(DecodeError, match="far longer than a take"):
        decode(long, "wav", limit=RATE)  # the budget is of samples, whatever the header says
    raw = tmp_path / "long.pcm"
    raw.write_bytes(bytes(4 * 24_000))
    with pytest.raises(DecodeError, match="far longer than a take"):
        decode(raw, "pcm", limit=24_000)


def test_a_lossy_take_that_was_clipped_is_warned_of(tmp_path: Path) -> None:
    """A codec smears a flattened wave into ripples near and beyond full scale: counted
    there; a clean take with the headroom loudness standards ask for stays under it."""
    t = np.arange(4 * RATE) / RATE
    envelope = np.sin(np.pi * t / 1.2) ** 2  # phrases that swell and fade: no clicks
    wave = (np.sin(2 * np.pi * 220 * t) * envelope).astype(np.float32).reshape(1, -1)
    clipped = np.clip(wave * 2.0, -1.0, 1.0)
    clean = wave * 0.79  # -2 dBFS
    for fmt in ("mp3", "m4a", "aac", "ogg"):
        take = tmp_path / f"clip.{fmt}"
        take.write_bytes(encode(clipped, RATE, fmt))
        assert measure(decode(take, fmt), fmt).clipped_samples > 0, fmt
        take.write_bytes(encode(clean, RATE, fmt))
        assert measure(decode(take, fmt), fmt).clipped_samples == 0, fmt


def test_figures_that_used_to_mislead() -> None:
    """White noise is noise; one channel inverted is not silence; a DC offset does not
    hide a pause; NaN samples are said, not taken for silence."""
    rng = np.random.default_rng(5)
    noise = measure(Decoded(rng.normal(0, 0.1, (1, 4 * RATE)).astype(np.float32), RATE))
    assert any(w.startswith("sounds like noise") for w in checks.Thresholds().warnings(noise))
    voice = phrases(0.3).samples
    inverted = measure(Decoded(np.concatenate([voice, -voice]), RATE))
    assert inverted.silence_share < 0.3 and inverted.loudness_lufs is not None
    offset = np.concatenate([voice, np.zeros((1, 2 * RATE), np.float32)], axis=1) + 0.2
    assert measure(Decoded(offset.astype(np.float32), RATE)).trailing_silence == pytest.approx(
        2.2,
        abs=0.1,  # the last phrase's pause, and the 2 s after it
    )
    with_nan = voice.copy()
    with_nan[0, :10] = np.nan
    from voicectl.sound.decode import _finite

    quality = measure(_finite(Decoded(with_nan, RATE)))
    assert quality.nonfinite_samples == 10 and quality.loudness_lufs is not None
    assert "10 samples are not numbers" in " ".join(checks.Thresholds().warnings(quality))


def test_a_take_shorter_than_its_header_says_is_warned_of() -> None:
    quality = measure(phrases(0.3))
    said = checks.Thresholds().warnings(quality, declared=12.0)
    assert said and said[0].startswith("decodes to 3.6 s of audio, though its header says 12.0 s")
    assert checks.Thresholds().warnings(quality, declared=3.7) == []


def test_thresholds_that_are_not_finite_are_refused(repo: VoiceRepo, run) -> None:
    repo.declare({"a": repo.voice("a")})
    (repo.root / "voicectl.yaml").write_text("policy:\n  takes:\n    min_snr_db: .nan\n")
    result = run(repo.root, "validate")
    assert result.exit_code == 1
    assert "policy.takes.min_snr_db: nan is not a finite number" in result.output


def test_the_comments_verdict_carries_validates_warnings_too(repo: VoiceRepo, run) -> None:
    """A take validate warns of (too short) is not "ok" in the plan's take verdicts."""
    repo.declare({"short": repo.voice("short")})
    write = repo.root / "audio" / "short.wav"
    write.write_bytes(encode(phrases(0.3).samples, RATE, "wav"))  # 3.6 s: under 10
    planned = json.loads(run(repo.root, "plan", "--no-refresh", "--json").stdout)
    (verdict,) = planned["takes"].values()
    assert any("Coze recommends 10-30 s" in w for w in verdict["warnings"])
    comment = run(repo.root, "plan", "--no-refresh", "--format", "markdown").stdout
    assert "| ok |" not in comment and "| ⚠ " in comment


def test_a_sample_rate_no_recording_has_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    """A 1 Hz WAV passes every size limit and once took 87 s and 3 GB to decode, one
    sample a frame: refused from its header."""
    wave = (tone(1.0, rate=24_000, amplitude=0.3)[0] * 32767).astype("<i2").tobytes()
    with pytest.raises(DecodeError, match="sampled at 1 Hz"):
        decode(wav_of(tmp_path / "slow.wav", wave, 1, rate=1), "wav")
    with pytest.raises(DecodeError, match="sampled at 768,000 Hz"):
        decode(wav_of(tmp_path / "fast.wav", wave, 1, rate=768_000), "wav")


def test_clean_speech_at_full_scale_is_not_clipped_once_coded(tmp_path: Path) -> None:
    """The bundled narrator take (real speech, 16 kHz) normalized to 0 dBFS: its peaks
    come out of each codec as lone samples near full scale, not runs: not counted."""
    speech = decode(Path(__file__).parent.parent / "examples" / "audio" / "narrator.wav", "wav")
    voice = (speech.samples / np.abs(speech.samples).max() * 0.999).astype(np.float32)
    for fmt in ("mp3", "m4a", "ogg"):
        take = tmp_path / f"clean.{fmt}"
        take.write_bytes(encode(voice, speech.rate, fmt))
        assert measure(decode(take, fmt), fmt).clipped_samples == 0, fmt


def test_a_loud_low_voice_is_not_clipped_once_coded(tmp_path: Path) -> None:
    """A hummed 120 Hz vowel normalized to 0 dBFS: its crests near full scale are shorter
    than the 1 ms a flat top lasts, in every lossy codec (ogg once counted 2,254)."""
    t = np.arange(4 * RATE) / RATE
    vowel = np.sin(2 * np.pi * 120 * t) + 0.3 * np.sin(2 * np.pi * 240 * t + 0.5)
    vowel *= np.sin(np.pi * t / 2.0) ** 2
    vowel = (vowel / np.abs(vowel).max() * 0.999).astype(np.float32).reshape(1, -1)
    for fmt in ("mp3", "m4a", "ogg"):
        take = tmp_path / f"vowel.{fmt}"
        take.write_bytes(encode(vowel, RATE, fmt))
        assert measure(decode(take, fmt), fmt).clipped_samples == 0, fmt
