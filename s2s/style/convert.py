"""Voice conversion: the words of one recording, spoken in the voice of another.

A cascade through text, as many voice converters go through a content
bottleneck: the judge (a character CTC recogniser) writes down what SRC says,
and the reasoning LM reads those words aloud with REF as its voice prompt
(`S2SPipeline.stream(say=...)`). The words survive
as well as the judge hears them; the voice is the LM's to clone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from s2s.pipeline import S2SPipeline, SpokenReply, read_question

MAX_SOURCE_SECONDS = 30.0


@dataclass
class Converted:
    words: str  # what the judge heard in the source, as spoken
    reply: SpokenReply  # the same words in the new voice: `waveform`, `audio` (the written path), timings


def heard_words(judge, source, sample_rate: int | None = None) -> str:
    """The source recording's words as a sentence ("It is forty two."), heard by `judge`."""
    from s2s.eval.reasoning import hear

    wav, rate, _ = read_question(source, sample_rate, max_seconds=MAX_SOURCE_SECONDS, what="recording to convert")
    words = hear(judge, wav, rate).split()
    if not words:
        raise ValueError("no words were heard in the recording to convert; give a recording of speech")
    return " ".join(words).capitalize() + "."  # as the corpus writes a reply: the model reads it best so


def convert(pipeline: S2SPipeline, judge, source, voice, *, sample_rate: int | None = None,
            voice_rate: int | None = None, style: str | list[str] | None = None,
            out: str | os.PathLike | None = None, overwrite: bool = False, **options) -> Converted:
    """Speak the words of `source` (a file or a waveform at `sample_rate`) in the voice of `voice` (a file or a
    waveform at `voice_rate`), in `style`; written to `out` when given (never over a file unless `overwrite`)."""
    from s2s.style.prompt import read_voice

    read_voice(voice, voice_rate)  # a bad reference fails before the source is transcribed
    words = heard_words(judge, source, sample_rate)
    reply = pipeline(say=words, voice=voice, voice_rate=voice_rate, style=style, out=out, overwrite=overwrite,
                     **options)
    return Converted(words, reply)
