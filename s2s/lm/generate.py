"""Generation: a reply, token by token, with a KV cache, phase masks and streamed audio.

The model writes the reply of a sequence format (`formats/`) one id at a
time. A phase machine says which ids may come next, so whatever the model
prefers, the ids always make a well-formed reply that ends. For
think-then-speak:

    prompt  <question> Q..Q </question> [<voice> V..V </voice>] <think>     (given: `build_prompt`)
    THOUGHT     text ids or </think>          </think> forced at max_thought_tokens
    REPLY_TEXT  text ids or <speak>           <speak> forced at max_reply_tokens
    SPEECH      codebook k's ids, k = 0..K-1 in turn; <eot> only between frames, forced at max_speech_frames
    DONE

Every format has a machine (its `phases`, in the format's own module) with the same three caps. In
think-while-speaking, text-guided and word-aligned the model still decides where the
thought, the reply text and the speech end, and the machine sizes every
chunk around that choice as the format's `build` would, so a reply it lets
through is exactly the format's layout of some turn. The phases are the
formats' segment labels (THOUGHT, REPLY_TEXT, SPEECH), so the reply's pieces
keep one name from layout to loss to stream. The state of a machine is a
small dataclass (`PhaseState`), as the codec's decode stream is
(`codecs/base.py`): one streaming idea.

`stream` is the one generation loop: one forward over the prompt, then one
forward per new id that reuses the attention keys and values of every id
before it (`past_key_values`). With `calculator=True`, a thought that ends in
an expression and `=` gets its result written for the model (`tools.py`). It yields events as they happen: pieces of the
thought and of the reply text, and audio as soon as whole speech frames have
passed through the codec's streaming decoder; in the formats that
interleave them, text pieces and audio come interleaved too. `generate`
drains it.
"""
from __future__ import annotations

import inspect
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial

import torch

from s2s.codecs.base import certain
from s2s.lm.fast_decode import fast_decoder
from s2s.lm.formats import (
    DONE,
    REPLY_TEXT,
    SEGMENT_NAMES,
    THOUGHT,
    Format,
    PhaseMachine,
    Turn,
    WordTimedPhases,
)
from s2s.lm.hooks import Calculator, Hook, reply_hooks
from s2s.lm.word_clock import ClockReader


def phase_machine(format: Format, device: torch.device | str = "cpu", **caps) -> PhaseMachine:
    """The phase machine of `format` (its own `phases`; chunk sizes come from the format), with its caps
    (max_thought_tokens, ...). A format must declare its own: a new layout under its parent's rules would
    generate the parent's replies."""
    phases = type(format).__dict__.get("phases")
    if phases is None:
        raise NotImplementedError(f"{format.name} declares no phase machine (`phases`), so generation cannot "
                                  f"write it; give its module a PhaseMachine, not {format.name}'s parent's")
    return phases(format, device=device, **caps)


# ---------------------------------------------------------------------- prompt
def build_prompt(format: Format, *, question_codes: torch.Tensor | None = None,
                 question_text_ids: list[int] | None = None, heard_length: int | None = None,
                 voice_codes: torch.Tensor | None = None, style_ids: list[int] | None = None) -> torch.Tensor:
    """The ids a reply is generated after: question, style and voice prompt, and the <think> that opens the reply.

    Every format opens its reply with <think>, and the prompt holds no
    <think> of its own (it is question text or audio), so the prompt is the
    format's own `build` of a turn with an empty reply, cut after its first
    <think>: one layout, written in one place.
    """
    vocab = format.vocab
    empty = torch.zeros(vocab.num_codebooks, 0, dtype=torch.long)
    turn = Turn(question_codes=question_codes, question_text_ids=question_text_ids, heard_length=heard_length,
                voice_codes=voice_codes, style_ids=style_ids, thought_ids=[], reply_ids=[], reply_codes=empty)
    ids = format.build(turn).ids
    opener = int((ids == vocab.think).nonzero()[0])
    return ids[: opener + 1]


# ---------------------------------------------------------------------- sampling
def sample_next(logits: torch.Tensor, allowed: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> int:
    """One id from logits [V], only among `allowed` [V]: greedy at temperature 0, else top-k, then top-p.

    The mask comes first, so top-k and top-p choose among legal ids only.
    """
    logits = logits.float().masked_fill(~allowed, float("-inf"))
    if temperature == 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k is not None:
        kth_best = logits.topk(min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1.0:
        # Keep the most likely ids until they hold top_p of the probability; the first is always kept.
        sorted_probs, order = probs.sort(descending=True)
        outside = sorted_probs.cumsum(0) - sorted_probs >= top_p
        probs = probs.scatter(0, order[outside], 0.0)
    return int(torch.multinomial(probs, 1, generator=generator))


def _check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1 (or None for no limit), got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must lie in (0, 1] (or None for no limit), got {top_p}")


# ---------------------------------------------------------------------- text pieces
class _TextStream:
    """One text (the thought, or the reply text) decoded as its ids arrive; each id gives the new characters.

    Decoding all ids so far, rather than each id alone, gets multi-byte
    characters right: a byte-level BPE may split one character across ids.
    While the text ends in such a half character (U+FFFD) nothing is given.
    """

    def __init__(self, tokenizer):
        self.tokenizer, self.ids, self.emitted = tokenizer, [], ""

    @property
    def text(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.text
        if text.endswith("\ufffd"):
            return ""
        piece, self.emitted = text[len(self.emitted):], text
        return piece

    def flush(self) -> str:
        """What is still held back (a half character at the very end)."""
        text = self.text
        piece, self.emitted = text[len(self.emitted):], text
        return piece


# ---------------------------------------------------------------------- generation
# What happens before each of Reply.marks_ms: the stages of the time to first audio.
STAGE_NAMES = {"prompt": "prompt forward", "thought": "first thought piece", "reply_text": "thought",
               "speech": "reply text", "decoder": "speech ids", "audio": "decoder step"}


@dataclass
class Reply:
    """A generated reply: all ids, what they parse to, and how fast they came."""

    ids: torch.Tensor  # [L] prompt then reply, joint vocabulary, on the CPU
    prompt_length: int  # ids[:prompt_length] is the prompt
    turn: Turn  # the format's lenient parse: thought_ids, reply_ids, reply_codes [K, F]
    thought: str
    reply_text: str
    capped: list[int]  # phases (THOUGHT, REPLY_TEXT, SPEECH) closed by their cap, not by the model
    first_audio_ms: float | None  # from the start of generation to the first audio chunk; None without audio
    total_ms: float
    tokens_per_s: float  # ids generated per second of the whole call (prompt forward and decoding included)
    calculator_calls: int = 0  # results the calculator wrote into the thought
    forwards: int = 0  # model forwards, the prompt's included: fewer than ids where drafts were accepted
    # ms from the start of generation to when each part began: "prompt" (its forward done), "thought",
    # "reply_text" (their first piece), "speech" (the first speech id), "decoder" (the decoder step that gave
    # the first audio began) and "audio" (it ended: first_audio_ms); a part the reply lacks is left out.
    marks_ms: dict = field(default_factory=dict)

    @property
    def reply_codes(self) -> torch.Tensor:
        """[K, F] the reply speech."""
        return self.turn.reply_codes

    def ttfa_stages_ms(self) -> dict[str, float]:
        """Where the time from the start of generation to the first audio went, in ms, stage by stage in the
        order they happened (a stage the reply skipped is left out); empty for a reply without audio."""
        if "audio" not in self.marks_ms:
            return {}
        stages, before = {}, 0.0
        for mark, ms in sorted(self.marks_ms.items(), key=lambda item: item[1]):
            if ms > self.marks_ms["audio"]:
                continue
            stages[STAGE_NAMES[mark]], before = round(ms - before, 2), ms
        return stages

    @property
    def generated_ids(self) -> torch.Tensor:
        """[L - prompt_length] the ids the model wrote."""
        return self.ids[self.prompt_length:]


def _check_inputs(model, prompt_ids: torch.Tensor, codec, frames_per_chunk: int) -> None:
    vocab = model.vocab
    if not isinstance(prompt_ids, torch.Tensor) or prompt_ids.dim() != 1 or prompt_ids.numel() == 0:
        shape = tuple(prompt_ids.shape) if isinstance(prompt_ids, torch.Tensor) else type(prompt_ids).__name__
        raise ValueError(f"prompt_ids must be ids [L] of one prompt, got {shape}; make them with build_prompt")
    if int(prompt_ids[-1]) != vocab.think:
        raise ValueError(f"prompt_ids must end with the <think> that opens the reply, found "
                         f"{vocab.describe(prompt_ids[-1])}; make them with build_prompt")
    if codec is not None:
        if codec.codebook_size != vocab.codebook_size or codec.max_codebooks < vocab.num_codebooks:
            raise ValueError(f"the codec {codec.name} ({codec.max_codebooks} codebooks of {codec.codebook_size}) "
                             f"cannot decode this LM's speech ({vocab.num_codebooks} codebooks of "
                             f"{vocab.codebook_size}): pass the codec the LM was trained with")
        if frames_per_chunk < 1:
            raise ValueError(f"frames_per_chunk must be at least 1, got {frames_per_chunk}")


def stream(model, prompt_ids: torch.Tensor, codec=None, frames_per_chunk: int = 2, *,
           max_thought_tokens: int = 256, max_reply_tokens: int = 128, max_speech_frames: int = 500,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None, seed: int | None = 0,
           heard=None, calculator: bool = False, say: list[list[int]] | None = None, fast: bool = True,
           speculate: int = 8, speech_prior: float = 0.0, word_decoder: bool = True, soft_speech: bool = True):
    """Generate a reply of `model` (a SpeechReasoningLM, in eval mode) after `prompt_ids` [L], event by event.

    `heard` is the HeardQuestion whose segments fill the prompt's `<heard>` ids (a spoken question heard by
    the model's audio encoder, `s2s/hearing/ctc.py`); None for prompts without them. `calculator` writes the
    result after every "EXPRESSION =" of the thought (`s2s/lm/tools.py`) instead of letting the model guess it.

    Returns an iterator of ("thought", text piece), ("reply_text", text
    piece), ("audio", wav [1, T] at the codec's rate: only with a `codec`,
    every `frames_per_chunk` whole frames go through its streaming decoder)
    and last ("done", Reply). Text pieces still held back (a half character)
    come just before "done". `seed` seeds the sampling (None: a fresh random
    seed). Times run from this call, and include the time the caller spends
    between events. Arguments are checked here, before the first event.

    `say` reads words aloud instead of answering: the ids of each word to
    speak. The thought closes at once. In word_aligned, each time the model
    ends a word (it writes text or <eot>) the next word is written for it, so
    it speaks exactly these words, timed as it likes; after the last, its next
    text id becomes <eot>. In think_then_speak and word_timed the whole reply text is
    written for it, then `<speak>`. Voice conversion is this after a
    recogniser (`s2s/style/convert.py`).

    `fast` (the default) runs llama-family backbones through `FastDecoder`, which gives transformers'
    logits in a fraction of the time per id on a CPU; False keeps transformers' forward throughout.

    `speculate` (FastDecoder only) drafts up to that many ids of the thought and reply text, from the model
    folder's phrase table and from where the last ids occurred before (`speculate.py`), and checks them in
    the forward of the next id: the same reply in fewer forwards. 0 turns it off.

    `speech_prior` (word_timed models with speech drafts, `WordFrames`) mixes how the corpus's voice says
    the word being read into the model's distribution over each speech code, as kNN-LM mixes its datastore
    into an LM (Khandelwal et al., 2020): p = (1 - w) p_model + w [code = the corpus's code for this word,
    length, frame and codebook]. The model keeps the codes it is sure of, and the corpus decides where it
    wavers; 0 (the default) is the model alone.

    `word_decoder` (word_timed models that have one, `s2s/lm/word_decoder.py`): once a word's duration is
    chosen, its word decoder says all of the word's frames at once, and they are written for the model as the
    words read aloud are: the model chooses the words and cannot drift within one. A decoder that predicts
    durations (FastSpeech's duration predictor) chooses each word's duration too; an older one leaves it to
    the model. False lets the model say every code and duration itself.

    `soft_speech` (with a word decoder, and a codec that decodes posteriors: s2s-tiny): the codec says each
    frame from the word decoder's probabilities, each codebook's expected entry, rather than from the codes
    chosen from them (the model still reads the chosen codes). Where the decoder wavers between codes, the
    chosen one is a guess and the expectation is the clearer sound (`benchmarks/intelligibility.py`). The
    reply's codes are the same either way; only its audio differs from `codec.decode(reply codes)`.
    """
    start_s = time.perf_counter()
    reply = reply_generator(model, prompt_ids, lambda: _forward(model.backbone, prompt_ids.numel() + 256, fast),
                            codec=codec, frames_per_chunk=frames_per_chunk, start_s=start_s, seed=seed,
                            caps={"max_thought_tokens": max_thought_tokens, "max_reply_tokens": max_reply_tokens,
                                  "max_speech_frames": max_speech_frames},
                            sampling={"temperature": temperature, "top_k": top_k, "top_p": top_p}, heard=heard,
                            calculator=calculator, say=say, speculate=speculate, speech_prior=speech_prior,
                            word_decoder=word_decoder, soft_speech=soft_speech)
    return _run(reply, codec)


def reply_generator(model, prompt_ids: torch.Tensor, build_forward, *, caps: dict, sampling: dict, seed: int | None,
                    codec=None, frames_per_chunk: int = 1, start_s: float | None = None, heard=None,
                    calculator: bool = False, say: list[list[int]] | None = None, speculate: int = 0,
                    speech_prior: float = 0.0, word_decoder: bool = False,
                    soft_speech: bool = False) -> ReplyGenerator:
    """One reply's ReplyGenerator, its arguments checked first (as `stream` takes them). `build_forward()` makes its
    step function once they are; None where a batch feeds every row (`batch.py`), which also rules out drafts."""
    _check_inputs(model, prompt_ids, codec, frames_per_chunk)
    _check_sampling(**sampling)
    machine = phase_machine(model.format, model.device, **caps)
    _check_options(model, prompt_ids, machine, heard, say, speculate, speech_prior, word_decoder)
    forward = build_forward() if build_forward is not None else None
    hooks = reply_hooks(model, machine, prompt_ids, heard, calculator=calculator, say=say, speculate=speculate,
                        speech_prior=speech_prior, word_decoder=word_decoder, can_draft=hasattr(forward, "truncate"),
                        posteriors=soft_speech and getattr(codec, "decodes_posteriors", False))
    sampler = partial(sample_next, **sampling, generator=seeded(model.device, seed))
    return ReplyGenerator(model, prompt_ids, machine, sampler, hooks, forward, heard=heard, codec=codec,
                          frames_per_chunk=frames_per_chunk, start_s=start_s)


def seeded(device: torch.device | str, seed: int | None) -> torch.Generator:
    """A random generator on `device`, seeded with `seed` (None: a fresh random seed)."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def _check_options(model, prompt_ids: torch.Tensor, machine: PhaseMachine, heard, say, speculate, speech_prior,
                   word_decoder) -> None:
    heard_ids = int((prompt_ids == model.vocab.heard).sum())
    if heard_ids and (heard is None or len(heard) != heard_ids):
        raise ValueError(f"the prompt holds {heard_ids} <heard> ids, so it needs the HeardQuestion of as many "
                         f"segments (got {'none' if heard is None else len(heard)}); make both with the pipeline")
    if not isinstance(speculate, int) or speculate < 0:
        raise ValueError(f"speculate must be an integer >= 0 (the most ids drafted a forward; 0 is off), got "
                         f"{speculate!r}")
    if not isinstance(speech_prior, (int, float)) or not 0.0 <= speech_prior <= 1.0:
        raise ValueError(f"speech_prior must lie in [0, 1] (the corpus's weight in each speech code; 0 is the model "
                         f"alone), got {speech_prior!r}")
    if speech_prior and word_decoder and getattr(model, "word_decoder", None) is not None and \
            isinstance(machine, WordTimedPhases):  # where the decoder says the codes
        raise ValueError("speech_prior mixes the corpus into the codes the LM says, but this model's word decoder "
                         "says them: pass word_decoder=False (--no-word-decoder) with a speech prior")
    if say is not None and model.format.name not in ("word_aligned", "think_then_speak", "word_timed"):
        raise ValueError(f"reading words aloud (say) needs a word_aligned, think_then_speak or word_timed model, not "
                         f"{model.format.name}: its reply text must come before the speech that says it")


@torch.no_grad()  # not inference_mode: the Reply's tensors stay ordinary tensors a caller may change
def _forward(backbone, capacity: int, fast: bool = True):
    """One sequence's step function: (input_ids [1, n] or inputs_embeds [1, n, D]) -> logits [vocab] after its
    last position, keeping the keys and values of every position fed so far. `fast` uses FastDecoder where the
    backbone's layout allows (`fast_decode.py`: the same logits, a fraction of the time per id on a CPU);
    otherwise transformers' own forward with its cache."""
    decoder = fast_decoder(backbone, capacity) if fast else None
    if decoder is not None:
        return decoder
    # transformers 5 renamed the forward's `past_key_values` to `cache`: use the name this backbone takes.
    parameters = inspect.signature(backbone.forward).parameters
    cache_name = "cache" if "cache" in parameters else "past_key_values"
    # Only the last position's logits are needed: skip the output layer over the prompt where the model allows.
    options = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
    cache = None

    def step(input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        nonlocal cache
        out = backbone(input_ids=input_ids, inputs_embeds=inputs_embeds, use_cache=True, **{cache_name: cache},
                       **options)
        cache = getattr(out, cache_name)
        return out.logits[0, -1]

    return step


def _run(reply: ReplyGenerator, codec):
    """The generation loop behind `stream`: a ReplyGenerator stepped until the reply is done."""
    with codec.streaming(1) if codec is not None else nullcontext():
        while not reply.done:
            yield from reply.step()
    yield from reply.finish()


class ReplyGenerator:
    """One reply being generated, its state in fields (in the manner of moshi's LMGen): `step()` writes the
    reply's next id (one forward at most, none where the id was drafted or forced) and returns the events it
    gives; `finish()` the last text pieces and ("done", Reply). Built by `stream`, which checks its arguments.

    Ids come from, in order: ids queued for the model (`forced`), else the first hook that forces some (a word
    read aloud, a word decoder's duration, the one id a phase allows), else the model's own choice under the
    phase machine's mask. Everything else generation does (the calculator, drafts, the speech prior, word
    decoder frames) is a hook (`hooks.py`), called at its points of each step. `forward` is one sequence's step
    function (`_forward`); `sampler(logits, allowed)` picks an id.
    """

    def __init__(self, model, prompt_ids: torch.Tensor, machine: PhaseMachine, sampler, hooks: list[Hook], forward,
                 *, heard=None, codec=None, frames_per_chunk: int = 2, start_s: float | None = None):
        self.model, self.prompt_ids, self.machine, self.sampler, self.hooks = model, prompt_ids, machine, sampler, hooks
        self.forward, self.heard, self.codec, self.frames_per_chunk = forward, heard, codec, frames_per_chunk
        self.start_s = time.perf_counter() if start_s is None else start_s
        self.vocab, self.device = model.vocab, machine.device
        self.state, self.generated, self.forced, self.piece = machine.start(), [], [], ""
        self.allowed = None  # [V] the ids the model may choose next, as `forced_id` left them
        self.texts = {THOUGHT: _TextStream(model.tokenizer), REPLY_TEXT: _TextStream(model.tokenizer)}
        self.frame, self.frames, self.last_frame = [], [], None  # the frame being written; frames not yet decoded
        self.frame_posteriors = []  # beside frames: the probabilities [K, C] a hook chose each from, or None
        self.marks_ms: dict[str, float] = {}  # when each part of the reply began: see `Reply.marks_ms`
        # Ids not yet fed to the model. A forced id needs no logits before it, so forced runs are fed in one call
        # with the next id the model chooses: fewer steps to first audio.
        self.pending, self.logits, self.forwards = prompt_ids.tolist(), None, 0
        self.drafted = []  # drafted ids fed after the pending ones, each with the logits after it
        # A model with a word clock (word_clock.py) gets each pending id's signal added to its embedding; the
        # clock also says where a word_timed reply's speech stands, for the hooks that read it.
        self.clocked = getattr(model, "clock", None) is not None
        needs_clock = self.clocked or any(hook.needs_clock for hook in hooks)
        self.clock = ClockReader(self.vocab) if needs_clock else None
        self.signals = [self.clock.push(token) for token in self.pending] if self.clock is not None else []

    @property
    def done(self) -> bool:
        return self.state.phase == DONE

    def _mark(self, name: str) -> None:
        self.marks_ms.setdefault(name, 1000 * (time.perf_counter() - self.start_s))

    # ------------------------------------------------------------------ the model's side
    def _vectors(self, ids: list[int], signals: list) -> torch.Tensor:
        """[1, n, D] the input vectors of `ids`: the heard segments' in the prompt, the word clock's `signals` added."""
        heard = [self.heard] if self.heard is not None and self.logits is None else None
        return self.model.embed(torch.tensor([ids], device=self.device), heard,
                                signals=signals if self.clocked else None)

    def _feed(self, ids: list[int], fed_signals: list, keep: int | None = None) -> torch.Tensor:
        options = {"keep": keep} if keep is not None else {}
        prompt_heard = self.heard is not None and self.logits is None
        if prompt_heard or (self.clocked and any(signal is not None for signal in fed_signals)):  # a word's frames
            return self.forward(inputs_embeds=self._vectors(ids, fed_signals), **options)
        return self.forward(input_ids=torch.tensor([ids], device=self.device), **options)

    def _logits(self) -> torch.Tensor:
        """The logits after every id written so far: one forward of the pending ids (and any draft after them)."""
        if not self.pending:
            return self.logits
        pending, signals = self.pending, self.signals
        draft, draft_signals = ([], []) if self.logits is None else self._draft()
        if draft:
            out = self._feed(pending + draft, signals + draft_signals, keep=len(draft) + 1)
            self.drafted = list(zip(draft, out[1:]))
            self.fed(out[0])
        else:
            self.fed(self._feed(pending, signals))
        return self.logits

    def pending_vectors(self) -> torch.Tensor:
        """[n, D] the input vectors of the ids not yet fed (the heard segments' and the word clock's added), for
        a forward run elsewhere (`batch.py`); hand its logits back with `fed`."""
        return self._vectors(self.pending, self.signals)[0]

    def fed(self, logits: torch.Tensor) -> None:
        """The pending ids went through the model, which gave `logits` [V] after the last of them."""
        self.logits, self.pending, self.signals, self.forwards = logits, [], [], self.forwards + 1
        self._mark("prompt")

    def _draft(self) -> tuple[list[int], list]:
        for hook in self.hooks:
            ids, signals = hook.draft(self)
            if ids:
                return ids, signals
        return [], []

    def _written(self, token: int) -> None:
        """`token` is the reply's next id: already in the cache where it was drafted, else fed next time."""
        signal = self.clock.push(token) if self.clock is not None else None
        if self.drafted and self.drafted[0][0] == token:
            self.logits = self.drafted.pop(0)[1]
            return
        if self.drafted:  # the draft went wrong here: forget it from this id on
            self.forward.truncate(self.forward.length - len(self.drafted))
            self.drafted = []
        self.pending.append(token)
        if self.clock is not None:
            self.signals.append(signal if self.clocked else None)

    # ------------------------------------------------------------------ one id
    def forced_id(self) -> int | None:
        """The reply's next id where it is written for the model (queued, or a hook forces it); None where the
        model chooses it. Leaves `allowed` for `chosen_id`."""
        self.allowed = allowed = self.machine.allowed_mask(self.state)
        if not self.forced:
            for hook in self.hooks:
                self.forced, allowed = hook.force(self, allowed)
                if self.forced:
                    break
            self.allowed = allowed
        if self.forced and bool(allowed[self.forced[0]]):
            return self.forced.pop(0)
        self.forced = []  # nothing forced, or a cap came first
        return None

    def chosen_id(self, logits: torch.Tensor) -> int:
        """The model's choice after `logits` [V], among the ids `forced_id` left allowed."""
        for hook in self.hooks:
            logits = hook.adjust(self, logits)
        token = self.sampler(logits, self.allowed)
        for hook in self.hooks:
            queued, token = hook.chosen(self, token, self.allowed)
            self.forced = queued or self.forced
        return token

    def step(self) -> list[tuple[str, object]]:
        """Write the reply's next id; the events it gives (a text piece, an audio chunk), often none."""
        token = self.forced_id()
        if token is None:
            token = self.chosen_id(self._logits())
        return self.write(token)

    def write(self, token: int) -> list[tuple[str, object]]:
        """`token` becomes the reply's next id: the phase machine, the cache, the hooks and the events follow."""
        vocab, state = self.vocab, self.state
        self.machine.advance(state, token)
        self.generated.append(token)
        self._written(token)
        events, self.piece = [], ""
        if vocab.is_text(token) and state.phase in self.texts:  # words read aloud (word_timed) are not new text
            self.piece = self.texts[state.phase].push(token)
            if self.piece:
                self._mark(SEGMENT_NAMES[state.phase])
                events.append((SEGMENT_NAMES[state.phase], self.piece))
        for hook in self.hooks:
            queued = hook.written(self, token)
            if queued is not None:
                self.forced = queued
        if vocab.is_speech(token):
            self._mark("speech")
            self.frame.append(vocab.speech_code(token)[1])
            if len(self.frame) == vocab.num_codebooks:
                self.frames.append(self.frame)
                found = (hook.frame_posteriors(self, self.frame) for hook in self.hooks)
                self.frame_posteriors.append(next((p for p in found if p is not None), None))
                self.last_frame, self.frame = self.frame, []
        return events + self._audio()

    def _audio(self) -> list[tuple[str, torch.Tensor]]:
        """Whole frames through the codec's streaming decoder, every `frames_per_chunk` and at the end."""
        if self.codec is None or (len(self.frames) < self.frames_per_chunk and not self.done):
            return []
        codes = torch.tensor(self.frames, dtype=torch.long).view(-1, self.vocab.num_codebooks).T[None]  # [1, K, f]
        began_ms = 1000 * (time.perf_counter() - self.start_s)
        posteriors = self._posteriors(codes)
        # [1, 1, t]: the samples now final
        wav = self.codec.decode_step(codes) if posteriors is None else self.codec.decode_step(codes, posteriors)
        if self.done:
            wav = torch.cat([wav, self.codec.flush()], dim=-1)
        self.frames, self.frame_posteriors = [], []
        if not wav.shape[-1]:
            return []
        if "audio" not in self.marks_ms:
            self.marks_ms["decoder"] = began_ms
            self._mark("audio")
        return [("audio", wav[0])]

    def _posteriors(self, codes: torch.Tensor) -> torch.Tensor | None:
        """[1, K, f, C] of the frames not yet decoded, where a hook gave any (certain of the codes elsewhere)."""
        if all(p is None for p in self.frame_posteriors):
            return None
        sure = certain(codes[0].T, self.vocab.codebook_size)  # [f, K, C]
        return torch.stack([sure[i] if p is None else p.to(sure.device)
                            for i, p in enumerate(self.frame_posteriors)], dim=1)[None]

    def finish(self) -> list[tuple[str, object]]:
        """The text pieces still held back (a half character), then ("done", Reply)."""
        events = [(SEGMENT_NAMES[phase], piece) for phase, text in self.texts.items() if (piece := text.flush())]
        ids = torch.cat([self.prompt_ids.cpu(), torch.tensor(self.generated, dtype=torch.long)])
        total_s = time.perf_counter() - self.start_s
        calls = sum(hook.calls for hook in self.hooks if isinstance(hook, Calculator))
        reply = Reply(ids=ids, prompt_length=self.prompt_ids.numel(), turn=self.model.format.parse(ids, strict=False),
                      thought=self.texts[THOUGHT].text, reply_text=self.texts[REPLY_TEXT].text,
                      capped=self.state.capped, first_audio_ms=self.marks_ms.get("audio"), total_ms=1000 * total_s,
                      tokens_per_s=len(self.generated) / total_s, calculator_calls=calls, forwards=self.forwards,
                      marks_ms=dict(self.marks_ms))
        return events + [("done", reply)]


def generate(model, prompt_ids: torch.Tensor, **options) -> Reply:
    """The whole reply at once: `stream` (same options) drained; decode its `reply_codes` with the codec."""
    return next(value for kind, value in stream(model, prompt_ids, **options) if kind == "done")
