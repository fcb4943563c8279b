"""S2SPipeline: a spoken (or written) question in, a thought, a reply text and a spoken reply out.

    pipeline = S2SPipeline.from_pretrained("runs/lm-tiny/export")   # a SpeechReasoningLM.save_pretrained folder
    reply = pipeline(audio="question.wav", out="reply.wav")
    reply.thought, reply.reply_text, reply.answer, reply.audio, reply.timings

It joins the parts that already exist: `s2s.audio` reads the question,
`prompt` turns it into the ids a reply is generated after, and
`s2s.lm.generate.stream` writes the reply and streams its audio through the
codec's decoder. Every generation goes through `S2SPipeline.stream`, and
every prompt through `S2SPipeline.prompt`: the audio branch there (codec
tokens today) is the one place a learned audio encoder would plug in.

Timings count from the moment the question is complete (the call, after the
file is read): `ttfa_ms` to the first sample of reply audio, `total_ms` to the
last one (writing the wav is not counted), `rtf` = processing seconds per
second of reply audio (below 1: faster than real time).
"""
from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from s2s import audio as audio_io
from s2s.audio import MAX_QUESTION_SECONDS, check_question, is_chunks, read_question, refuse_long
from s2s.codecs import load_codec
from s2s.codecs.base import Codec
from s2s.hearing import abstain
from s2s.hearing.heard import SAMPLE_RATE as HEARING_RATE
from s2s.hearing.heard import Heard, to_16k
from s2s.hearing.listener import Listener
from s2s.hearing.normalise import normalise_question
from s2s.hearing.vad import enough_speech, speech_only, speech_spans
from s2s.lm.batching import tokenize
from s2s.lm.generate import build_prompt
from s2s.lm.generate import stream as generate_stream
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.thinker import CONFIG_FILE as THINKER_CONFIG
from s2s.lm.tools import answer_from_thought

DEFAULT_MODEL = Path(__file__).resolve().parent / "assets" / "models" / "s2s-reasoner-tiny"
JSON_FIELDS = ("thought", "reply_text", "answer", "audio", "timings", "abstained", "abstain_reason")


@dataclass
class SpokenReply:
    """What the pipeline answered. `to_json()` gives the first five fields; the waveform stays in Python."""

    thought: str
    reply_text: str
    answer: str | None  # from the thought's last line `So the answer is X.`
    audio: str | None  # path of the written wav; None when no `out` was given or the reply has no speech
    timings: dict  # ttfa_ms, total_ms, rtf, hear_ms, think_ms, ttfa_stages_ms (None where there is no speech)
    waveform: torch.Tensor = field(repr=False)  # [1, T] the spoken reply, on the CPU
    sample_rate: int = 0
    question_heard: str | None = None  # what the hearing wrote for a spoken question: perception, apart from reasoning
    abstained: bool = False  # no question was heard: the reply asks again, and `answer` is None
    abstain_reason: str | None = None  # why ("no speech found", "no question heard ('thank you')")

    def to_json(self) -> dict:
        """A JSON-ready dict with exactly the keys thought, reply_text, answer, audio, timings, abstained and
        abstain_reason."""
        return {name: getattr(self, name) for name in JSON_FIELDS}


class S2SPipeline:
    """A SpeechReasoningLM and the codec it was trained with: `pipeline(audio=...)` -> SpokenReply."""

    def __init__(self, model: SpeechReasoningLM, codec: Codec, converter=None):
        """`converter` (a VoiceConverter, its folder, or "default" for the shipped one, loaded when first needed)
        renders a reply asked for a voice or style: the model answers in its own voice and the converter says
        the reply in the reference's voice, rate and pitch. None: the voice prompt and style words go into the
        model's prompt instead (a model trained on `s2s data synth --reply-styles`)."""
        vocab = model.vocab
        if codec.codebook_size != vocab.codebook_size or codec.num_codebooks < vocab.num_codebooks:
            raise ValueError(f"the codec {codec.name} ({codec.num_codebooks} codebooks of {codec.codebook_size}) "
                             f"does not fit this model ({vocab.num_codebooks} codebooks of {vocab.codebook_size}): "
                             f"use the codec it was trained with ({model.init_args['codec']})")
        self.model, self.codec = model.eval(), codec.eval()
        self.max_question_seconds = MAX_QUESTION_SECONDS  # longer questions are refused, files from their header
        self.converter = converter

    @classmethod
    def from_pretrained(cls, ckpt_dir: str | os.PathLike | None = None, codec: str | os.PathLike | Codec | None = None,
                        device: str | torch.device = "cpu", converter="default",
                        hearing: str | list[str] | None = None) -> S2SPipeline:
        """Load a `SpeechReasoningLM.save_pretrained` folder (default: DEFAULT_MODEL) and its codec.

        `hearing` replaces the model's ear: "whisper-tiny.en", "hearing" (the folder's own CTC ear), another
        CTC ear folder, or a list of them asked in turn (`s2s/hearing/ears.py`).
        `codec` (a name, a folder or a Codec) replaces the codec the model was
        trained with (`model.init_args["codec"]`) for encoding and decoding. `converter`: see `__init__`.
        """
        if ckpt_dir is None:
            if not DEFAULT_MODEL.is_dir():
                raise FileNotFoundError(f"no default model is installed at {DEFAULT_MODEL} (it is still being "
                                        "trained); pass --ckpt DIR (ckpt_dir= in Python), a folder written by "
                                        "SpeechReasoningLM.save_pretrained")
            ckpt_dir = DEFAULT_MODEL
        if not Path(ckpt_dir).is_dir():
            raise FileNotFoundError(f"model folder not found: {ckpt_dir}; pass a folder written by "
                                    "SpeechReasoningLM.save_pretrained")
        if Path(ckpt_dir, THINKER_CONFIG).is_file() and cls is S2SPipeline:
            return ThinkerTalker.from_pretrained(ckpt_dir, codec, device, converter, hearing)
        model = SpeechReasoningLM.from_pretrained(ckpt_dir, hearing=hearing)
        if not isinstance(codec, Codec):
            # The codebooks the model reads, as the model itself loaded its codec (first K of them).
            k = model.init_args["num_codebooks"]
            codec = load_codec(codec or model.init_args["codec"], **({} if k is None else {"num_codebooks": k}))
        return cls(model.to(device), codec.to(device), converter)

    @property
    def sample_rate(self) -> int:
        """Hz of the spoken reply."""
        return self.codec.sample_rate

    # ------------------------------------------------------------------ the one prompt
    def prompt(self, audio_wav: torch.Tensor | None = None, sample_rate: int | None = None,
               text: str | None = None, voice=None, voice_rate: int | None = None,
               style: str | list[str] | None = None, heard: Heard | None = None) -> tuple[torch.Tensor, Heard | None]:
        """The ids [L] a reply is generated after, for a question wav [C, T] at `sample_rate`, or a text;
        and what the model's ear heard, whose `question` fills its `<heard>` ids (None unless it has an ear;
        `heard`: what it already heard of this audio, as `listen` gives).
        `voice` (a file, or a waveform at `voice_rate`) and `style` ("fast low") make the style prompt."""
        check_question(audio_wav, text)
        model = self.model
        styled = self._style_prompt(voice, voice_rate, style)
        if text is not None:
            return build_prompt(model.format, question_text_ids=tokenize(model.tokenizer, [text])[0], **styled), None
        if model.hearing is not None:  # heard segments through the ear and adapter
            heard = heard or model.hearing.listen(audio_wav, sample_rate)
            return build_prompt(model.format, heard_length=len(heard.question), **styled), heard
        # Otherwise the codec's tokens, the model's first K codebooks of them.
        return build_prompt(model.format, question_codes=self._codes(audio_wav, sample_rate), **styled), None

    def _codes(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """[K, F] the model's first K codebooks of the codec's tokens of wav [C, T]."""
        return self.codec.encode(wav[None], sample_rate)[0, : self.model.vocab.num_codebooks].cpu()

    def _style_prompt(self, voice, voice_rate: int | None, style) -> dict:
        """build_prompt's voice_codes and style_ids for a reference recording and style words (either or none)."""
        if voice is None and style is None:
            return {"style_ids": None}
        from s2s.style.prompt import read_voice, style_words

        words = style_words(style)
        styled = {"style_ids": tokenize(self.model.tokenizer, [words])[0] if words else None}
        if voice is not None:
            styled["voice_codes"] = self._codes(*read_voice(voice, voice_rate))
        return styled

    @property
    def voice_converter(self):
        """The VoiceConverter that renders voices and styles (loaded on first use), or None."""
        if self.converter is not None and not hasattr(self.converter, "convert"):
            from s2s.style.converter import load_converter

            self.converter = load_converter(self.converter).to(self.model.device)
            if self.converter.sample_rate != self.sample_rate:
                raise ValueError(f"the voice converter speaks at {self.converter.sample_rate} Hz, this model's codec "
                                 f"at {self.sample_rate} Hz: use a converter built on the model's codec")
        return self.converter

    def restyle(self, reply: SpokenReply, voice=None, voice_rate: int | None = None,
                style: str | list[str] | None = None) -> SpokenReply:
        """The same reply said in `voice` (a reference recording) at `style`'s rate and pitch, by the
        converter (the reply's own voice when no `voice` is given)."""
        from s2s.style.convert import restyle

        if self.voice_converter is None:
            raise ValueError("this pipeline has no voice converter; build it with converter='default' or a folder")
        if reply.waveform.shape[-1] == 0:
            return reply
        wav = restyle(self.voice_converter, reply.waveform, reply.sample_rate, voice, voice_rate, style)
        return replace(reply, waveform=wav, audio=None)

    def listen(self, chunks, sample_rate: int) -> tuple[torch.Tensor, Heard | None]:
        """A question as it arrives, chunks [T] or [C, T] at `sample_rate`: the VAD and the ear run while it is
        spoken (`s2s/hearing/listener.py`). Returns the question [1, T] at 16 kHz and what the ear heard of it
        at the speaker's last pause (None when there was none, or speech came after it)."""
        if sample_rate is None:
            raise ValueError("audio chunks need their sample_rate in Hz")
        listener = Listener(self.model.hearing)
        for chunk in chunks:
            if not isinstance(chunk, torch.Tensor) or chunk.dim() not in (1, 2):
                raise audio_io.AudioError(f"each audio chunk must be a waveform [T] or [C, T], got "
                                          f"{getattr(chunk, 'shape', type(chunk).__name__)}")
            listener.feed(chunk, sample_rate)
            refuse_long("the audio stream", listener.samples / HEARING_RATE, self.max_question_seconds)
        wav, heard = listener.finish()
        if wav.shape[-1] == 0:
            raise audio_io.AudioError("the audio stream held no samples: send the question's audio in chunks")
        return wav, heard

    # ------------------------------------------------------------------ the one generation call
    def stream(self, audio=None, sample_rate: int | None = None, text: str | None = None, *,
               temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
               seed: int | None = 0, max_thought_tokens: int = 256, max_reply_tokens: int = 128,
               max_speech_frames: int = 500, frames_per_chunk: int = 2, calculator: bool = True,
               voice=None, voice_rate: int | None = None, style: str | list[str] | None = None,
               say: str | None = None, fast: bool = True, speculate: int = 8, speech_prior: float = 0.0,
               word_decoder: bool = True, soft_speech: bool = True, heard: Heard | None = None,
               abstain_gates: bool = True):
        """The events of one question (`audio`: a file, a waveform, or an iterator of chunks as they arrive;
        `heard`: what the ear already heard of it): first ("heard", text) when a spoken question went through
        the model's ear; ("abstain", reason) then the spoken request to ask again ("audio", wav) when no speech
        or no question was heard (`s2s/hearing/abstain.py`), and nothing more; else those of
        `s2s.lm.generate.stream`:
        ("thought", piece), ("reply_text", piece), ("audio", wav [1, t] at `sample_rate`) and last ("done", Reply);
        a thought that declines the question (out of scope) is followed by ("abstain", "out of scope") and the
        spoken "I can only help with number and time questions for now." instead of a reply.
        `abstain_gates=False` answers whatever was heard, speech or not (to study a model without the gates).
        Inputs are checked before it returns.
        `calculator` (on by default) writes the result of every sum the thought sets up (`s2s/lm/tools.py`);
        off, the model does its own arithmetic. `voice` (a reference recording, a file or a waveform at
        `voice_rate`) and `style` ("slow", "fast high", ...) ask for the reply's voice and style (through the
        pipeline's voice converter when it has one, else through the model's prompt). `say`
        reads these words aloud instead of answering (the question is then "Say: ..."; see generate.stream).
        `fast=False` steps the LM through transformers' forward instead of FastDecoder (same ids, slower).
        `speculate` drafts up to that many thought and reply ids from the question and checks them in one
        forward (the same reply in fewer forwards; 0 turns it off; `s2s/lm/speculate.py`). `speech_prior` mixes
        how the corpus's voice says each word into the speech codes of a word-timed model (see
        `s2s.lm.generate.stream`; 0 is the model alone). `word_decoder` (on by default) lets a word-timed model
        that has one say each word's frames at once (`s2s/lm/word_decoder.py`); off, the LM says every code.
        `soft_speech` (on by default) decodes those frames from the word decoder's probabilities, not only from
        the codes it chose (clearer speech, the same codes; see `s2s.lm.generate.stream`)."""
        if say is not None:
            if not isinstance(say, str) or not say.split():
                raise ValueError("nothing to say: give the words to speak, such as say='It is four.'")
            audio, sample_rate, text = None, None, f"Say: {say}"
        wav, rate, text, heard = self._read(audio, sample_rate, text, heard, typed=say is None)
        converted = (voice is not None or style is not None) and self.voice_converter is not None
        if converted:  # checked now, used once the reply is spoken
            from s2s.style.prompt import read_voice, style_choice

            style_choice(style)
            if voice is not None:
                read_voice(voice, voice_rate)
        if wav is not None:  # the VAD first: no speech, no question; the ear hears the speech alone
            question = question_speech(wav, rate, ear=self.model.hearing is not None)
            if question is None and abstain_gates:
                return self._abstained(None, abstain.NO_SPEECH)
            wav, rate = question or (wav, rate)
        styled = {} if converted else {"voice": voice, "voice_rate": voice_rate, "style": style}
        prompt_ids, heard = self.prompt(wav, rate, text, heard=heard, **styled)
        reason = None
        if abstain_gates and heard is not None:
            reason = abstain.no_question(heard.text)
        elif abstain_gates and wav is None and say is None:  # typed
            reason = abstain.no_question(text, typed=True)
        if reason is not None:
            return self._abstained(heard and heard.text, reason)
        words = None
        if say is not None:
            words = [tokenize(self.model.tokenizer, [w if i == 0 else " " + w])[0] for i, w in enumerate(say.split())]
        events = generate_stream(self.model, prompt_ids, heard=heard and heard.question, codec=self.codec,
                                 frames_per_chunk=frames_per_chunk, max_thought_tokens=max_thought_tokens,
                                 max_reply_tokens=max_reply_tokens, max_speech_frames=max_speech_frames,
                                 temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                                 calculator=calculator, say=words, fast=fast,
                                 speculate=speculate, speech_prior=speech_prior, word_decoder=word_decoder,
                                 soft_speech=soft_speech)
        if abstain_gates:
            events = self._declining(events)
        if converted:
            events = self._converted(events, voice, voice_rate, style)
        return events if heard is None else itertools.chain([("heard", heard.text)], events)

    def _read(self, audio, sample_rate, text, heard, typed: bool = True):
        """The question checked and loaded, as `stream` takes it: (wav [C, T] or None, its rate, text or None,
        what the ear already heard). Chunks are listened to as they arrive; a typed question is normalised as
        people type ("what's twenty one plus 4" -> "What's 21 + 4?") unless `typed` is False."""
        if is_chunks(audio):
            (audio, heard), sample_rate = self.listen(audio, sample_rate), HEARING_RATE
        wav, rate, text = read_question(audio, sample_rate, text, self.max_question_seconds)
        if text is not None and typed:
            text = normalise_question(text) or text
        return wav, rate, text, heard

    def _declining(self, events):
        """The events, cut after the thought when it says the question is out of scope: then ("abstain",
        "out of scope") and the spoken "I can only help with number and time questions for now." instead of
        whatever reply the model would write."""
        thought = []
        for kind, value in events:
            if kind == "thought":
                thought.append(value)
            elif abstain.declines("".join(thought)):
                events.close()
                yield "abstain", abstain.OUT_OF_SCOPE
                yield "audio", abstain.abstention_audio(self.sample_rate, abstain.OUT_OF_SCOPE)
                return
            yield kind, value

    def _abstained(self, heard: str | None, reason: str):
        """The events of a question not answered before any reasoning: what was heard, why, and the spoken
        request to ask again (or, for words that ask nothing of numbers or time, the out-of-scope reply)."""
        return iter([*([] if heard is None else [("heard", heard)]), ("abstain", reason),
                     ("audio", abstain.abstention_audio(self.sample_rate, reason))])

    def _converted(self, events, voice, voice_rate, style):
        """The events with the reply's audio held back and given once, in `voice` and `style`, before "done":
        the converter hears the whole reply (its first audio comes when the reply is complete)."""
        from s2s.style.convert import restyle

        chunks = []
        for kind, value in events:
            if kind == "audio":
                chunks.append(value)
                continue
            if kind == "done" and chunks:
                wav = torch.cat(chunks, dim=-1).cpu()
                if wav.shape[-1]:
                    yield "audio", restyle(self.voice_converter, wav, self.sample_rate, voice, voice_rate, style)
            yield kind, value

    def __call__(self, audio=None, sample_rate: int | None = None, text: str | None = None,
                 out: str | os.PathLike | None = None, overwrite: bool = False, **options) -> SpokenReply:
        """Answer one question (a file, a waveform [T] or [C, T] at `sample_rate`, an iterator of such chunks
        at `sample_rate` as they arrive, or `text`). Timings count from the end of the question's audio.

        `options` are those of `stream` (temperature=0.0 greedy, top_k, top_p,
        seed, max_thought_tokens, ...). With `out`, the spoken reply is written
        there as a wav (never over an existing file unless `overwrite`).
        """
        if out is not None and Path(out).exists() and not overwrite:
            raise FileExistsError(f"{out} already exists; choose another path or pass overwrite=True (--overwrite)")
        if is_chunks(audio):
            (audio, options["heard"]), sample_rate = self.listen(audio, sample_rate), HEARING_RATE
        if options.get("say") is None:
            wav, rate, text = read_question(audio, sample_rate, text, self.max_question_seconds)
        else:
            wav, rate = None, None
        start_s = time.perf_counter()  # the question is complete
        first_audio_s, chunks, reply, heard, reason, thought = None, [], None, None, None, []
        heard_s = thought_s = None
        for kind, value in self.stream(wav, rate, text, **options):
            if kind == "audio" and value.shape[-1]:
                first_audio_s = time.perf_counter() if first_audio_s is None else first_audio_s
                chunks.append(value.cpu())
            elif kind == "heard":
                heard_s, heard = heard_s or time.perf_counter(), value
            elif kind == "abstain":  # after the ear (nothing heard) or after the thought (declined)
                reason = value
                if thought:
                    thought_s = thought_s or time.perf_counter()
                else:
                    heard_s = heard_s or time.perf_counter()
            elif kind == "thought":
                thought.append(value)
            elif thought_s is None:  # the first event after the thought ends it
                thought_s = time.perf_counter()
            if kind == "done":
                reply = value
        total_s = time.perf_counter() - start_s
        waveform = torch.cat(chunks, dim=-1) if chunks else torch.zeros(1, 0)
        seconds = waveform.shape[-1] / self.sample_rate
        # From the end of the question: first audio (hearing included), and the hearing and thinking within it.
        since = lambda t: None if t is None else round(1000 * (t - start_s), 2)  # noqa: E731
        timings = {"ttfa_ms": since(first_audio_s), "total_ms": round(1000 * total_s, 2),
                   "rtf": round(total_s / seconds, 4) if seconds else None,
                   "hear_ms": since(heard_s) if wav is not None else None,
                   "think_ms": None if thought_s is None else
                   round(1000 * (thought_s - (heard_s or start_s)), 2),
                   "ttfa_stages_ms": _ttfa_stages(reply, since(first_audio_s))}
        written = None
        if out is not None and seconds:
            written = str(audio_io.save(out, waveform, self.sample_rate, overwrite=overwrite))
        if reply is None:  # abstained: the request to ask again (or the out-of-scope reply), no answer
            return SpokenReply(thought="".join(thought), reply_text=abstain.reply_text(reason), answer=None,
                               audio=written, timings=timings,
                               waveform=waveform, sample_rate=self.sample_rate, question_heard=heard,
                               abstained=True, abstain_reason=reason)
        return SpokenReply(thought=reply.thought, reply_text=reply.reply_text,
                           answer=answer_from_thought(reply.thought), audio=written, timings=timings,
                           waveform=waveform, sample_rate=self.sample_rate, question_heard=heard)


def question_speech(wav: torch.Tensor, rate: int, ear: bool) -> tuple[torch.Tensor, int] | None:
    """A spoken question [C, T] at `rate` as the model takes it, (wav, rate): with an `ear`, its speech alone,
    mono at 16 kHz (`speech_only`: the silence before and after cut away); without, as it is. None when the
    VAD finds no speech in it."""
    wav16 = to_16k(wav, rate)
    spans = speech_spans(wav16)
    if not enough_speech(spans):
        return None
    return (speech_only(wav16, spans)[None], HEARING_RATE) if ear else (wav, rate)


def _ttfa_stages(reply, ttfa_ms: float | None) -> dict | None:
    """Where the time to first audio went: hearing and the prompt ids (all before generation), then the reply's
    own stages (`Reply.ttfa_stages_ms`); None without audio."""
    stages = reply.ttfa_stages_ms() if reply is not None and ttfa_ms is not None else {}
    if not stages:
        return None
    return {"hearing and prompt ids": round(ttfa_ms - reply.marks_ms["audio"], 2), **stages}


class ThinkerTalker(S2SPipeline):
    """A pretrained text LM thinks (`s2s/lm/thinker.py`) and a speech reasoning model talks: the talker's ear
    hears the question, the thinker writes the thought and the reply text, and the talker says that reply
    (its `say`). Qwen2.5-Omni's Thinker-Talker split, so a thinker that has read English can be joined to a
    small voice. A folder with `thinker.yaml` loads as one; its `talker` key names the speaking model's folder
    (relative to the thinker's; default: the shipped s2s-reasoner-tiny)."""

    def __init__(self, thinker, talker: S2SPipeline):
        super().__init__(talker.model, talker.codec, talker.converter)
        self.thinker, self.talker = thinker, talker
        self.ready: dict[tuple, tuple[str, str]] = {}  # thoughts written ahead, by (question, options)

    def think_ahead(self, texts: list[str], calculator: bool = True, max_thought_tokens: int = 256,
                    max_reply_tokens: int = 64, **other_options) -> None:
        """Write the thoughts of typed questions together (B rows a step: several times the questions a second
        on a CPU); the next call for each question with the same options (those of `stream`) uses its thought
        once. For evaluation, where latency is not measured: a reply thought ahead has no thinking time in its
        timings."""
        questions = [self._read(None, None, text, None)[2] for text in texts]
        max_new_tokens = max_thought_tokens + max_reply_tokens
        for question, written in zip(questions, self.thinker.think(questions, calculator, max_new_tokens)):
            self.ready[(question, calculator, max_new_tokens)] = written

    @classmethod
    def from_pretrained(cls, ckpt_dir, codec=None, device="cpu", converter="default", hearing=None) -> ThinkerTalker:
        import yaml

        from s2s.lm.thinker import Thinker

        config = yaml.safe_load(Path(ckpt_dir, THINKER_CONFIG).read_text()) or {}
        talker = Path(ckpt_dir, config["talker"]) if config.get("talker") else DEFAULT_MODEL
        if not Path(talker, "config.yaml").is_file():
            raise FileNotFoundError(f"the thinker in {ckpt_dir} speaks through {talker}, which holds no speech "
                                    "reasoning model: set `talker` in its thinker.yaml to a model folder")
        speaking = S2SPipeline.from_pretrained(talker, codec, device, converter, hearing)
        if speaking.model.hearing is None:
            raise ValueError(f"the talker {talker} has no ear (hearing) to hear spoken questions with")
        return cls(Thinker.from_pretrained(ckpt_dir), speaking)

    def stream(self, audio=None, sample_rate: int | None = None, text: str | None = None, *,
               calculator: bool = True, max_thought_tokens: int = 256, max_reply_tokens: int = 64,
               heard: Heard | None = None, abstain_gates: bool = True, say: str | None = None, **talk):
        """The events of S2SPipeline.stream: ("heard", text) for a spoken question, the thinker's ("thought",
        piece) and ("reply_text", text), then the talker's ("audio", wav) and ("done", Reply); or ("abstain",
        reason) as there. `talk` options (voice, style, max_speech_frames, ...) go to the talker."""
        if say is not None:
            return self.talker.stream(say=say, **talk)
        wav, rate, text, heard = self._read(audio, sample_rate, text, heard)
        if wav is not None:
            question = question_speech(wav, rate, ear=True)
            if question is None and abstain_gates:
                return self._abstained(None, abstain.NO_SPEECH)
            wav, rate = question or (wav, rate)
            heard = heard or self.model.hearing.listen(wav, rate)
            text = heard.text
        reason = abstain.no_question(text, typed=heard is None) if abstain_gates else None
        if reason is not None:
            return self._abstained(heard and heard.text, reason)
        events = self._think_then_talk(text, calculator, max_thought_tokens + max_reply_tokens, talk)
        if abstain_gates:
            events = self._declining(events)
        return events if heard is None else itertools.chain([("heard", heard.text)], events)

    def _think_then_talk(self, question: str, calculator: bool, max_new_tokens: int, talk: dict):
        thought, reply = [], ""
        ahead = self.ready.pop((question, calculator, max_new_tokens), None)
        written = self.thinker.stream(question, calculator, max_new_tokens) if ahead is None else \
            [("thought", ahead[0]), *([("reply_text", ahead[1])] if ahead[1] else [])]
        for kind, piece in written:
            yield kind, piece
            if kind == "thought":
                thought.append(piece)
            else:
                reply = piece
        if not reply:  # the thinker stopped before its reply: say what it found, or that it found nothing
            answer = answer_from_thought("".join(thought))
            reply = f"It is {answer}." if answer else "I am not sure."
        for kind, value in self.talker.stream(say=reply, **talk):
            if kind == "done":
                value = replace(value, thought="".join(thought), reply_text=reply)
            if kind in ("audio", "done"):
                yield kind, value
