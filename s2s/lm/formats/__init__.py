"""Sequence formats: one spoken reasoning turn as one stream of joint-vocabulary ids, and back.

Every format starts with the same prompt, then lays out the reply its own way:

    prompt             <question> Q..Q </question>    (or <text_question> q..q </question>,
                                                      or <question> <heard>..<heard> </question>)
                       [<voice> s..s V..V </voice>]   (optional: style words as text, then a voice prompt)
    think_then_speak   <think> t..t </think> r..r <speak> S..S <eot>
    think_while_speaking
                       <think> N text </think> <speak> M frames <think> N text </think> <speak> ... <eot>
    text_guided        <think> t..t </think> r*offset S*M r*N S*M r*N ... <eot>
    word_aligned       <think> t..t </think> w1 S(w1) w2 S(w2) ... <eot>   (text-guided by word timing)
    word_timed         <think> t..t </think> r..r <speak> w1 d1 S(w1) w2 d2 S(w2) ... <eot>
                                                      (the reply text, then read aloud word by word,
                                                      each word's length d in frames first)
    word_timed_while_thinking
                       <think> N t </think> <speak> w1 d1 S(w1) <think> N t </think> <speak> w2 d2 S(w2)
                       <think> t..t </think> <speak> w3 d3 S(w3) w4 d4 S(w4) ... <eot>
                                                      (the reply's opening words, which commit to no
                                                      answer, one after each N thought ids; the rest
                                                      once the thought is whole)

(t thought, r reply text, s style words such as "fast low", Q/V/S the K ids of each audio frame; a heard question
holds one `<heard>` id per segment the audio encoder heard, and the model puts
that segment's vector there, see `s2s/hearing/ctc.py`; chapter 3 of
the tutorials draws real examples.) `build(turn)` gives a `Sequence`: the ids
and a segment label per position (THOUGHT, SPEECH, ...), so the model can
weight its loss per modality and mask logits per phase. `parse(sequence)`
gives the `Turn` back, exactly; `parse(..., strict=False)` reads generated
sequences, which may stop anywhere.

Audio inside a format is always the FLAT pattern: frame by frame, K ids a
frame, codebook 0 first. A sequence is therefore one 1-D stream with one id a
position, easy to check, draw and parse. A model that uses the delay pattern
needs no other format: it groups the speech of a sequence into delayed steps
and treats each step (K ids) as one position, a job for its input and output
layers, not for the layout of a turn.

Each format is one module of this package: its layout (`build` / `parse`, a `Format`) and its phase rules for
generation (which ids may come next, a `PhaseMachine`), joined by the format's `phases` attribute and registered
once, in `FORMATS` below. Adding a format is adding a module and a line here (tutorial 3, "How to add a format").
"""
from __future__ import annotations

from s2s.lm.formats.base import (
    DONE,
    DURATION,
    QUESTION_AUDIO,
    QUESTION_TEXT,
    READ_ALOUD,
    REPLY_TEXT,
    SEGMENT_NAMES,
    SPECIAL,
    SPEECH,
    STYLE,
    THOUGHT,
    VOICE,
    Format,
    PhaseMachine,
    PhaseState,
    Sequence,
    Turn,
)
from s2s.lm.formats.text_guided import TextGuided, TextGuidedPhases
from s2s.lm.formats.think_then_speak import ThinkThenSpeak, ThinkThenSpeakPhases
from s2s.lm.formats.think_while_speaking import ChunkState, ThinkWhileSpeaking, ThinkWhileSpeakingPhases
from s2s.lm.formats.word_aligned import GuidedState, WordAligned, WordAlignedPhases, even_alignment
from s2s.lm.formats.word_timed import TimedState, WordTimed, WordTimedPhases
from s2s.lm.formats.word_timed_while_thinking import SaidState, WordTimedWhileThinking, WordTimedWhileThinkingPhases
from s2s.lm.vocab import JointVocab

__all__ = ["ChunkState", "DONE", "DURATION", "Format", "GuidedState", "PhaseMachine", "PhaseState", "QUESTION_AUDIO",
           "QUESTION_TEXT", "READ_ALOUD", "REPLY_TEXT", "SEGMENT_NAMES", "SPECIAL", "SPEECH", "STYLE",
           "SaidState", "Sequence", "THOUGHT", "TextGuided", "TextGuidedPhases", "ThinkThenSpeak",
           "ThinkThenSpeakPhases", "ThinkWhileSpeaking", "ThinkWhileSpeakingPhases", "TimedState", "Turn",
           "VOICE", "WordAligned", "WordAlignedPhases", "WordTimed", "WordTimedPhases",
           "WordTimedWhileThinking", "WordTimedWhileThinkingPhases", "even_alignment", "FORMATS",
           "build_format", "format_class"]

FORMATS = {"think_then_speak": ThinkThenSpeak, "think_while_speaking": ThinkWhileSpeaking,
           "text_guided": TextGuided, "word_aligned": WordAligned, "word_timed": WordTimed,
           "word_timed_while_thinking": WordTimedWhileThinking}


def format_class(name: str) -> type[Format]:
    """The format class called `name` (a key of FORMATS)."""
    if name not in FORMATS:
        raise ValueError(f"unknown sequence format {name!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[name]


def build_format(name: str, vocab: JointVocab, **kwargs) -> Format:
    """The format called `name` (a key of FORMATS), with its options (chunk sizes, offset)."""
    return format_class(name)(vocab, **kwargs)
