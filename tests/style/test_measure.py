"""Rate and pitch measured from audio: exact on signals built to a known rate and F0, and moving the right way
when espeak-ng is asked to speak faster, slower, higher or lower."""
import math

import pytest
import torch

from s2s.data.espeak import render
from s2s.style.measure import count_syllables, median_f0, speaking_rate, speech_seconds, syllable_rate

SR = 16000


def harmonic_tone(f0: float, seconds: float = 1.0, sample_rate: int = SR) -> torch.Tensor:
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    return sum(0.3 / k * torch.sin(2 * math.pi * k * f0 * t) for k in range(1, 6))


def syllable_train(rate_hz: float, seconds: float = 3.0) -> torch.Tensor:
    """Vowel-like bursts (150 Hz harmonics with a 700 Hz formant-ish partial), `rate_hz` bursts a second."""
    t = torch.arange(int(seconds * SR)) / SR
    carrier = harmonic_tone(150, seconds) + 0.3 * torch.sin(2 * math.pi * 700 * t)
    gate = torch.sin(math.pi * rate_hz * t) ** 4  # one bump every 1 / rate_hz seconds
    return carrier * gate


@pytest.mark.parametrize("f0", [90.0, 150.0, 220.0, 310.0])
def test_median_f0_of_a_harmonic_tone_is_its_fundamental(f0):
    assert median_f0(harmonic_tone(f0), SR) == pytest.approx(f0, rel=0.03)


def test_median_f0_reads_any_rate_and_shape():
    tone = harmonic_tone(200.0, sample_rate=44100)
    assert median_f0(tone[None, None].repeat(1, 2, 1), 44100) == pytest.approx(200.0, rel=0.03)


@pytest.mark.parametrize("rate", [2.0, 4.0, 6.0])
def test_syllable_rate_counts_bursts_per_second(rate):
    assert syllable_rate(syllable_train(rate), SR) == pytest.approx(rate, rel=0.15)


def test_silence_and_scraps_have_no_rate_or_pitch():
    assert median_f0(torch.zeros(SR), SR) is None and syllable_rate(torch.zeros(SR), SR) is None
    assert syllable_rate(torch.randn(1000) * 0.1, SR) is None  # 60 ms: too short to have a rate
    assert median_f0(torch.randn(1000) * 0.1, SR) is None  # and too few frames to have a pitch
    assert median_f0(harmonic_tone(200.0, seconds=0.1), SR) == pytest.approx(200.0, rel=0.03)  # 100 ms is enough


TEXT = "The train leaves the station at nine fifteen and arrives at half past ten."


@pytest.mark.parametrize("voice", ["en-us", "en-us+f3", "en+m3", "en+grandpa"])
def test_espeak_pitch_and_speed_move_the_measures_the_right_way(voice):
    def measure(speed, pitch):
        samples, rate = render(TEXT, voice, speed, pitch)
        wav = torch.from_numpy(samples).float()
        return syllable_rate(wav, rate), median_f0(wav, rate)

    slow, normal, fast = (measure(speed, 50) for speed in (120, 175, 260))
    assert slow[0] < normal[0] < fast[0]
    low, high = measure(175, 20), measure(175, 80)
    assert low[1] < normal[1] < high[1] and high[1] / low[1] > 1.4


def test_style_followed_counts_moves_in_the_requested_direction():
    from s2s.style.metrics import StyleFollowed, style_axis

    metric = StyleFollowed()
    metric.update([(4.0, 5.5), (4.0, 3.0), (120.0, 100.0), (120.0, None)], ["fast", "fast", "low", "high"])
    assert float(metric.compute()) == pytest.approx(2 / 4)  # right, wrong way, right, unmeasurable
    assert style_axis("slow") == "rate" and style_axis("high") == "pitch"
    with pytest.raises(ValueError, match="unknown style 'loud'; choose one of fast, high, low, slow"):
        metric.update([(1.0, 2.0)], ["loud"])
    with pytest.raises(ValueError, match="asks for no change"):
        metric.update([(1.0, 2.0)], ["normal"])


def test_count_syllables_by_vowel_groups():
    assert count_syllables("It is four.") == 3
    assert count_syllables("The answer is forty two.") == 7  # the, an-swer, is, for-ty, two
    assert count_syllables("make little bee") == 4  # silent e dropped, but not in -le or -ee
    assert count_syllables("123 !") == 0


def test_speaking_rate_is_the_words_syllables_over_the_seconds_of_speech():
    sr = 16000
    burst = torch.sin(2 * math.pi * 800 * torch.arange(int(0.8 * sr)) / sr)  # 0.8 s of "speech"
    wav = torch.cat([torch.zeros(sr // 2), burst, torch.zeros(sr // 2)])  # with silence around it
    assert speech_seconds(wav, sr) == pytest.approx(0.8, abs=0.05)
    assert speaking_rate(wav, sr, "It is four.") == pytest.approx(3 / 0.8, rel=0.07)
    slower = torch.cat([torch.zeros(sr // 2), burst.repeat(2), torch.zeros(sr // 2)])
    assert speaking_rate(slower, sr, "It is four.") < speaking_rate(wav, sr, "It is four.")
    assert speaking_rate(torch.zeros(sr), sr, "It is four.") is None  # silence: nothing to time
    assert speaking_rate(wav, sr, "...") is None  # no words: no syllables


@pytest.mark.parametrize("voice", ["en+grandpa", "en-gb-x-rp+m1"])
def test_pitch_survives_a_codec_round_trip_of_a_short_low_voiced_reply(voice):
    """Generated and converted replies reach the measure through the codec, which smears phase: the measure
    must still read the harmonics (an autocorrelation tracker lost most of these frames)."""
    from s2s import audio
    from s2s.codecs import load_codec

    codec = load_codec("s2s-tiny")

    def f0(pitch: int) -> float | None:
        samples, rate = render("It is forty two.", voice, 170, pitch)
        wav = audio.prepare(audio.as_batch(torch.from_numpy(samples).float()), rate, codec.sample_rate)
        with torch.no_grad():
            return median_f0(codec.decode(codec.encode(wav, codec.sample_rate))[0], codec.sample_rate)

    low, normal, high = f0(20), f0(50), f0(80)
    assert None not in (low, normal, high) and low < normal < high
