"""Render text with festival: a second TTS engine, whose held-out voices (ked, slt) no model trains on, so
figures on them measure speech from voices the models have not heard.

festival's diphone voices leave the pause that closes each utterance unwritten: its last
samples differ from run to run (at times full-scale clicks). So `render` asks festival where
each utterance's speech ends (the start of its closing pause segment) and silences the rest,
which makes the same text the same samples every time."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from s2s.data.espeak import SynthesisError

# Debian packages festvox-kallpc16k, festvox-kdlpc16k and festvox-us-slt-hts.
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
PAUSES = ("pau", "#", "h#", "sil")
TAIL_S = 0.02  # kept after the last phone, faded out over FADE_S
FADE_S = 0.01

# text2wave's own hooks, with one between synthesis and saving that prints each utterance's sample count, rate,
# the start of its last segment and that segment's name.
_REPORT = ("(set! tts_hooks (list utt.synth (lambda (utt) (let ((info (wave.info (utt.wave utt))) "
           "(last (utt.relation.last utt 'Segment))) (format t \"utterance %d %d %f %s\\n\" "
           "(get_param 'num_samples info 0) (get_param 'sample_rate info 0) (item.feat last 'segment_start) "
           "(item.name last))) utt) save_record_wave_fp))")


def render(text: str, voice: str = "kal_diphone") -> tuple[np.ndarray, int]:
    """Speak `text` with a festival voice; returns (float32 samples [T], sample rate in Hz), each utterance's
    closing pause silent."""
    binary = shutil.which("text2wave")
    if binary is None:
        raise SynthesisError("festival is not installed: run `make setup` (or `apt-get install festival "
                             "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts`)")
    if not text.strip():
        raise SynthesisError("cannot synthesise empty text")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        proc = subprocess.run([binary, "-o", str(out), "-eval", f"(begin (voice_{voice}) {_REPORT})"],
                              input=text.encode(), capture_output=True, timeout=120)
        if proc.returncode != 0 or not out.exists():
            raise SynthesisError(f"festival failed for voice {voice!r}: {proc.stderr.decode(errors='replace').strip()}")
        samples, rate = sf.read(out, dtype="float32")
    return silence_closing_pauses(samples, rate, proc.stdout.decode(errors="replace")), rate


def silence_closing_pauses(samples: np.ndarray, rate: int, report: str) -> np.ndarray:
    """Zero each utterance's closing pause, as `_REPORT` printed the utterances (their lengths at their own
    rate, which text2wave resamples to the file's), fading out over FADE_S after TAIL_S of the pause."""
    samples, start = samples.copy(), 0
    for line in report.splitlines():
        fields = line.split()
        if len(fields) != 5 or fields[0] != "utterance":
            continue
        length = round(int(fields[1]) * rate / int(fields[2]))
        if fields[4] in PAUSES:
            quiet = start + round((float(fields[3]) + TAIL_S) * rate)
            fade = round(FADE_S * rate)
            end = min(start + length, len(samples))
            if quiet < end:
                ramp = samples[max(start, quiet - fade):quiet]
                ramp *= np.linspace(1.0, 0.0, len(ramp), dtype=samples.dtype)
                samples[quiet:end] = 0.0
        start += length
    return samples
