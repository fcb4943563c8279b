"""`s2s style eval`: does a style model speak in the asked voice, at the asked rate and pitch, and does
conversion keep the words? The figures of the style transfer issue, on a styled manifest's held-out sentences.

For each row with a voice prompt (a reference in the row's reply voice), with the pipeline's voice converter
rendering the model's answer in each voice and style (or, with none, the voice prompt in the model's prompt):
  voice      the reply to its (written) question with that prompt: classified as the prompt's voice by the
             speaker-ID model (`voice_accuracy`), and its embedding's cosine with the prompt's (`voice_similarity`)
  style      the same reply asked for slow, fast, low and high: did the speaking rate (syllables of its words
             per second of speech) or the median F0 move from the normal reply in the asked direction
             (`style_followed`, per style and all together)?
  conversion the reply recording of another row (another voice) said in this row's voice (`s2s convert`, by
             the pipeline's voice converter; left out when it has none):
             classified as this voice (`conversion_voice_accuracy`), and the judge's WER on it against the
             source's words, beside the judge's WER on the source itself (`conversion_wer`, `source_wer`)
Chance for the voice figures is one over the speaker model's number of voices.
"""
from __future__ import annotations

from pathlib import Path

from s2s import audio
from s2s.data.manifest import read_manifest
from s2s.eval.metrics import FractionRight, ReplyErrorRates, wilson_interval
from s2s.eval.reasoning import hear
from s2s.style.measure import median_f0, speaking_rate
from s2s.style.metrics import STYLES, StyleFollowed, style_axis

ASKED = ("slow", "fast", "low", "high")
DEFAULT_SPEAKER = Path(__file__).resolve().parents[1] / "assets" / "models" / "s2s-speaker-tiny"


def load_speaker(speaker):
    """A SpeakerClassifier: itself, a folder it was saved in, or "default" (the shipped DEFAULT_SPEAKER)."""
    from s2s.style.speaker import SpeakerClassifier

    if isinstance(speaker, SpeakerClassifier):
        return speaker
    folder = DEFAULT_SPEAKER if speaker == "default" else Path(speaker)
    if not folder.is_dir():
        raise FileNotFoundError(f"speaker model folder not found: {folder}; train one with "
                                "configs/style/speaker-id-styles.yaml and s2s export it")
    return SpeakerClassifier.from_folder(folder).eval()


class SameVoice(FractionRight):
    """The fraction of recordings the speaker model puts in the asked voice."""

    ITEMS = ("classified voices", "asked voices")

    @staticmethod
    def right(pred: str, target: str) -> bool:
        return pred == target


def _measure(style: str, reply) -> float | None:
    """The measure a style moves in a reply: its speaking rate (syllables of its words per second of speech) for
    slow/fast, its median F0 for low/high; None when it cannot be measured (no or too little speech)."""
    wav, rate = reply.waveform, reply.sample_rate
    if wav.shape[-1] == 0:
        return None
    return speaking_rate(wav, rate, reply.reply_text) if style_axis(style) == "rate" else median_f0(wav, rate)


def _styled_reply(pipeline, plain, row: dict, prompt: str, style: str | None, options: dict):
    """The reply to `row`'s question in the prompt's voice and `style`: `plain` (the model's own answer)
    converted when the pipeline has a converter, else answered with the voice and style in the model's prompt."""
    if plain is not None:
        return pipeline.restyle(plain, voice=prompt, style=style)
    return pipeline(text=row["question_written"], voice=prompt, style=style, **options)


def evaluate_style(pipeline, speaker, judge, manifest: str | Path, limit: int | None = None,
                   styles: tuple[str, ...] = ASKED, progress: bool = False, **options) -> dict:
    """The figures above over the first `limit` prompted rows of `manifest` (greedy unless `options` say)."""
    manifest = Path(manifest)
    rows = [row for row in read_manifest(manifest) if row.get("voice_audio") and row.get("reply_audio")]
    if not rows:
        raise ValueError(f"{manifest} has no rows with a voice prompt; make one with s2s data synth --reply-styles")
    unknown = sorted({row["reply_voice"] for row in rows} - set(speaker.voices))
    if unknown:
        raise ValueError(f"the speaker model does not know the voices {unknown}; train it on this corpus's voices "
                         "(configs/style/speaker-id-styles.yaml)")
    for style in styles:
        style_axis(style)
    converter = pipeline.voice_converter  # None: the model's own voice prompt, and no conversion figures
    sources, rows = rows, rows[:limit] if limit else rows
    voice, converted_voice = SameVoice(), SameVoice()
    followed = {style: StyleFollowed() for style in styles}
    every = StyleFollowed()
    converted_wer, source_wer = ReplyErrorRates(), ReplyErrorRates()
    similarity, conversions = [], 0
    for n, row in enumerate(rows):
        prompt = str(manifest.parent / row["voice_audio"])
        # With a converter: one answer in the model's own voice, rendered in each voice and style.
        plain = pipeline(text=row["question_written"], **options) if converter is not None else None
        reply = _styled_reply(pipeline, plain, row, prompt, None, options)
        rate = reply.sample_rate
        if reply.waveform.shape[-1] >= rate // 2:
            voice.update(speaker.classify(reply.waveform, rate), [row["reply_voice"]])
            ref, ref_rate = audio.load(prompt)
            similarity.append(speaker.similarity(reply.waveform, rate, ref, ref_rate))
        else:
            voice.update(["(no speech)"], [row["reply_voice"]])
        for style in styles:
            styled = _styled_reply(pipeline, plain, row, prompt, style, options)
            pair = (_measure(style, reply), _measure(style, styled))
            followed[style].update([pair], [style])
            every.update([pair], [style])
        # Conversion: the next row in another voice supplies the words.
        source = next((r for r in sources[n + 1:] + sources[:n] if r["reply_voice"] != row["reply_voice"]), None)
        if source is not None and converter is not None:
            from s2s.style.convert import convert

            wav, wav_rate = audio.load(manifest.parent / source["reply_audio"])
            out = convert(converter, wav[0], prompt, sample_rate=wav_rate).waveform
            ok = out.shape[-1] >= rate // 2
            converted_voice.update(speaker.classify(out, rate) if ok else ["(no speech)"], [row["reply_voice"]])
            converted_wer.update([hear(judge, out, rate)], [source["reply"]])
            source_wer.update([hear(judge, wav, wav_rate)], [source["reply"]])
            conversions += 1
        if progress:
            print(f"  {n + 1}/{len(rows)} {row['id']}", flush=True)
    figures = {"n": len(rows), "voices": len(speaker.voices), "chance": 1 / len(speaker.voices)}
    for name, metric in (("voice_accuracy", voice), ("conversion_voice_accuracy", converted_voice)):
        value = float(metric.compute()) if metric.total else None
        figures[name] = value
        figures[f"{name}_ci95"] = wilson_interval(value, int(metric.total))
    figures["voice_similarity"] = sum(similarity) / len(similarity) if similarity else None
    figures["style_followed"] = {style: float(m.compute()) for style, m in followed.items()}
    figures["style_followed_all"] = float(every.compute())
    figures["style_followed_all_ci95"] = wilson_interval(figures["style_followed_all"], int(every.total))
    if conversions:
        figures["conversion_wer"] = float(converted_wer.compute()["wer"])
        figures["source_wer"] = float(source_wer.compute()["wer"])
    return figures


def format_style_figures(figures: dict) -> str:
    """The figures as a few readable lines."""
    def pct(value):
        return "-" if value is None else f"{100 * value:.1f} %"

    lines = [f"{figures['n']} prompted rows, {figures['voices']} voices (chance {pct(figures['chance'])})",
             f"reply in the prompt's voice     : {pct(figures['voice_accuracy'])} "
             f"(cosine to the prompt {figures['voice_similarity'] or 0:.3f})",
             f"conversion in the prompt's voice: {pct(figures['conversion_voice_accuracy'])}"]
    if "conversion_wer" in figures:
        lines.append(f"conversion WER                  : {pct(figures['conversion_wer'])} "
                     f"(the source itself: {pct(figures['source_wer'])})")
    moved = ", ".join(f"{style} {pct(value)}" for style, value in figures["style_followed"].items())
    lines.append(f"style followed                  : {pct(figures['style_followed_all'])} ({moved})")
    axes = " / ".join("-".join(words) for words in STYLES.values())
    lines.append(f"  (rate and pitch measured from the audio against the normal reply; styles {axes})")
    return "\n".join(lines)
