"""What generation does besides sampling the model: each feature is one small hook with one interface.

A `ReplyGenerator` (`generate.py`) writes a reply one id at a time and calls its hooks, in order, at four
points of each id. A hook overrides only the points it needs; the others leave everything as it is.

    force(gen, allowed)          -> (ids, allowed)  ids to write for the model now, without asking it (the
                                                    first hook that gives some wins), and the ids it may choose from
    adjust(gen, logits)          -> logits          the model's scores before sampling
    chosen(gen, token, allowed)  -> (ids, token)    replace the sampled id (and queue ids to write after it)
    written(gen, token)          -> ids or None     after an id is written: ids to write next (None: no change)
    draft(gen)                   -> (ids, signals)  ids the model may write next, checked in the next forward

The hooks: the phase rules' only legal id (`PhaseRules`), the calculator tool (`Calculator`), reading a
word_timed reply aloud (`ReadAloud`), its word decoder (`WordDecoderFrames`), the corpus's speech prior
(`SpeechPrior`), words given to read (`SayWords`, `SayAll`) and the two drafters of speculative decoding
(`TextDrafts`, `SpeechDrafts`). `reply_hooks` picks those a model and its options call for.
"""
from __future__ import annotations

import copy
from collections import deque

import torch

from s2s.lm.batching import word_runs
from s2s.lm.formats import REPLY_TEXT, SPEECH, THOUGHT, TimedState, WordTimedPhases, WordTimedWhileThinkingPhases
from s2s.lm.speculate import Drafter, lookup_context
from s2s.lm.tools import calculator_result


class Hook:
    """A feature of generation; every point does nothing until a subclass says otherwise."""

    needs_clock = False  # reads gen.clock (where the word_timed speech stands)

    def force(self, gen, allowed: torch.Tensor) -> tuple[list[int], torch.Tensor]:
        return [], allowed

    def adjust(self, gen, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def chosen(self, gen, token: int, allowed: torch.Tensor) -> tuple[list[int], int]:
        return [], token

    def written(self, gen, token: int) -> list[int] | None:
        return None

    def draft(self, gen) -> tuple[list[int], list]:
        return [], []

    def frame_posteriors(self, gen, frame: list[int]) -> torch.Tensor | None:
        """The probabilities [K, C] that `frame`'s codes (just written) were chosen from, where this hook chose
        them; None otherwise."""
        return None


class PhaseRules(Hook):
    """Where the phase machine allows one id only (a cap reached, a chunk's end), it is written for the model:
    fed with the next id the model chooses, it costs no forward of its own."""

    def force(self, gen, allowed):
        only = gen.machine.forced(gen.state)
        return ([only] if only is not None else []), allowed


class Calculator(Hook):
    """A tool: after every "EXPRESSION =" of the thought, the result is written for the model (`tools.py`)."""

    def __init__(self):
        self.calls = 0

    def written(self, gen, token):
        if gen.state.phase != THOUGHT or gen.forced or not gen.piece.endswith("="):
            return None
        result = calculator_result(gen.texts[THOUGHT].text)
        if result is None:
            return None
        self.calls += 1
        return gen.model.tokenizer(result, add_special_tokens=False)["input_ids"]


class ReadAloud(Hook):
    """word_timed: after `<speak>` the reply's words are read aloud. Between words the next word is written for
    the model (or `<eot>` when none is left); right after a word only a duration may come, where the caps
    leave one; inside a word's frames nothing changes."""

    def __init__(self):
        self.reading: list[list[int]] | None = None  # the reply's words still to read, from <speak> on

    def force(self, gen, allowed):
        if self.reading is None:
            return [], allowed
        return read_aloud(gen.machine, gen.state, allowed, self.reading)

    def written(self, gen, token):
        if token == gen.vocab.speak:
            self.reading = word_runs(gen.model.tokenizer, gen.state.reply)
        return None


def read_aloud(machine: WordTimedPhases, state: TimedState, allowed: torch.Tensor,
               reading: list[list[int]]) -> tuple[list[int], torch.Tensor]:
    """(ids to write for the model, the ids it may choose from) at one step of reading `reading` (consumed)."""
    if state.frames_due or state.speech_tokens % machine.vocab.num_codebooks:
        return [], allowed  # inside a word's frames
    if state.word_open:  # a word was just read: its duration comes next
        durations = allowed & machine.duration_mask
        return [], durations if bool(durations.any()) else allowed
    return (reading.pop(0) if reading else [machine.vocab.eot]), allowed


class WordDecoderFrames(Hook):
    """word_timed with a word decoder (`word_decoder.py`): once a word's duration is chosen, the decoder says all
    its frames at once and they are written for the model, so it cannot drift within a word. A decoder that
    predicts durations (FastSpeech's duration predictor) chooses each word's duration too."""

    needs_clock = True

    def __init__(self, decoder, read: ReadAloud, posteriors: bool = False):
        """`posteriors`: keep the probabilities each frame's codes were chosen from (`frame_posteriors`), for a
        codec that decodes them."""
        self.decoder, self.read, self.keeps_posteriors = decoder, read, posteriors
        self.said_words = []  # the words said so far
        self.after_word_text = False  # the last id written was a word's text: a duration now starts the word
        self.posteriors = deque()  # [K, C] per frame said and not yet written

    def force(self, gen, allowed):
        clock = gen.clock
        if self.read.reading is None or not (self.decoder.predicts_durations and clock.in_word_text):
            return [], allowed
        durations = allowed[gen.vocab.duration_id(1): gen.vocab.duration_id(gen.vocab.durations) + 1].cpu()
        after = tuple(self.read.reading[0]) if self.read.reading else ()
        before = self.said_words[-1] if self.said_words else ()
        return [gen.vocab.duration_id(self.decoder.duration(clock.word, before, after, durations))], allowed

    def written(self, gen, token):
        vocab, clock = gen.vocab, gen.clock
        first_chunk, self.after_word_text = self.after_word_text, clock.speaking and clock.in_word_text
        if not (vocab.is_duration(token) and clock.speaking):
            return None
        if first_chunk:
            self.said_words.append(clock.word)
        said = self.said_words
        before = said[-2] if len(said) > 1 else ()
        after = tuple(self.read.reading[0]) if self.read.reading else ()
        codes, probs = self.decoder.say_with_posteriors(clock.word, before, after, clock.duration,
                                                        0 if first_chunk else 1, gen.last_frame)
        if self.keeps_posteriors:
            self.posteriors.extend(probs)
        return [vocab.speech_id(k, code) for frame_codes in codes for k, code in enumerate(frame_codes)]

    def frame_posteriors(self, gen, frame):
        if not self.posteriors:
            return None
        probs = self.posteriors.popleft()
        return probs if probs.argmax(-1).tolist() == frame else None  # a frame not as the decoder said it


class SpeechPrior(Hook):
    """Mixes how the corpus's voice says the word being read into the model's distribution over each speech
    code, as kNN-LM mixes its datastore into an LM (Khandelwal et al., 2020): p = (1 - w) p_model + w [code =
    the corpus's code for this word, length, frame and codebook]."""

    needs_clock = True

    def __init__(self, words_said, weight: float):
        self.words_said, self.weight = words_said, weight

    def adjust(self, gen, logits):
        clock = gen.clock
        at = clock.next_frame()
        grid = self.words_said.codes.get((clock.word, clock.duration)) if at is not None else None
        if grid is None or at[0] >= len(grid):
            return logits
        mixed = (1.0 - self.weight) * torch.softmax(logits.float(), dim=-1)
        mixed[gen.vocab.speech_id(at[1], grid[at[0]][at[1]])] += self.weight
        return mixed.log()


class SayWords(Hook):
    """word_aligned reading given words aloud: the thought closes at once, and each time the model ends a word
    (it writes text or <eot>) the next word is written for it, timed as it likes; after the last, <eot>."""

    def __init__(self, words: list[list[int]]):
        self.words = words

    def force(self, gen, allowed):
        return ([gen.vocab.end_think] if gen.state.phase == THOUGHT else []), allowed

    def chosen(self, gen, token, allowed):
        vocab = gen.vocab
        if not (vocab.is_text(token) or token == vocab.eot or not gen.state.reply_tokens):
            return [], token
        if self.words and bool(allowed[self.words[0][0]]):
            word = self.words.pop(0)
            return word[1:], word[0]
        return [], vocab.eot  # no word left, or no room for one under the caps


class SayAll(Hook):
    """think_then_speak and word_timed reading given words aloud: no thought, the words as the reply text, then
    `<speak>`; the model says them."""

    def __init__(self, ids: list[int]):
        self.ids = ids

    def force(self, gen, allowed):
        ids, self.ids = self.ids, []
        return ids, allowed


class TextDrafts(Hook):
    """Speculation over the thought and reply text: the phrase table's and the prompt's likely next ids."""

    def __init__(self, drafter: Drafter):
        self.drafter = drafter

    def written(self, gen, token):
        self.drafter.append(token)
        return None

    def draft(self, gen):
        if gen.state.phase not in (THOUGHT, REPLY_TEXT):
            return [], []
        ids = self.drafter.draft()
        return ids, [None] * len(ids)


class SpeechDrafts(Hook):
    """Speculation over a word_timed reply's speech: how the corpus's voice says the word being read, its
    duration (right after the word) and its frames (`WordFrames`)."""

    needs_clock = True

    def __init__(self, words_said, max_draft: int):
        self.words_said, self.max_draft = words_said, max_draft

    def draft(self, gen):
        clock, vocab = gen.clock, gen.vocab
        if not (gen.state.phase == SPEECH or clock.in_word_text):
            return [], []
        if clock.speaking and clock.in_word_text:
            ids = self.words_said.draft(vocab, clock.word, None, 0, 0, self.max_draft)
        else:
            at = clock.next_frame()
            ids = [] if at is None else self.words_said.draft(vocab, clock.word, clock.duration, *at, self.max_draft)
        shadow = copy.copy(clock)  # the drafted ids' signals, without moving the clock itself
        return ids, [shadow.push(token) for token in ids]


def reply_hooks(model, machine, prompt_ids: torch.Tensor, heard=None, *, calculator: bool = False,
                say: list[list[int]] | None = None, speculate: int = 0, speech_prior: float = 0.0,
                word_decoder: bool = False, can_draft: bool = True, posteriors: bool = False) -> list[Hook]:
    """The hooks `stream`'s options ask for, in the order they are consulted. `can_draft`: the forward can take
    back drafted ids (FastDecoder), which speculation needs; `posteriors`: the codec decodes code posteriors."""
    vocab, hooks = model.vocab, []
    words = [list(word) for word in say if word] if say is not None else None
    timed = isinstance(machine, WordTimedPhases)
    if words is not None and model.format.name in ("think_then_speak", "word_timed"):
        hooks.append(SayAll([vocab.end_think, *(i for word in words for i in word), vocab.speak]))
        words = None
    decoder = getattr(model, "word_decoder", None) if timed and word_decoder else None
    if timed:
        read = ReadAloud()
        hooks += [read] + ([WordDecoderFrames(decoder, read, posteriors)] if decoder is not None else [])
    hooks.append(PhaseRules())
    if words is not None:
        hooks.append(SayWords(words))
    if calculator:
        hooks.append(Calculator())
    says_words = timed or isinstance(machine, WordTimedWhileThinkingPhases)  # words, durations, frames
    words_said = getattr(model, "speech_drafts", None) if says_words else None
    if speech_prior and words_said is not None:  # never with a decoder (`stream` refuses)
        hooks.append(SpeechPrior(words_said, float(speech_prior)))
    if speculate and can_draft:
        if words_said is not None and decoder is None:
            hooks.append(SpeechDrafts(words_said, speculate))
        hooks.append(TextDrafts(Drafter(lookup_context(prompt_ids, vocab, heard), vocab,
                                        phrases=getattr(model, "phrases", None), max_draft=speculate)))
    return hooks
