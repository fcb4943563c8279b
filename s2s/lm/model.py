"""SpeechReasoningLM: a causal LM that hears codec tokens, thinks in text and answers in codec tokens.

Read it with `vocab.py` (one id range for text, markers and speech),
`formats/` (how a turn is laid out as one row of ids) and `batching.py`
(how a datamodule batch becomes such rows). The network is any Hugging Face
`AutoModelForCausalLM`, pretrained or built from a config; the only change to
it is its token embeddings (and output layer), sized to the joint vocabulary:

    backbone ids   0 .. T-1 text (the tokenizer's own)   | T .. size-1: markers and speech (new rows)

so a pretrained backbone's text ids keep their trained rows and meaning.

Training is next-token prediction on the reply only. The question (and voice
prompt) is given at inference, never generated, so predicting it would spend
capacity on a job the model never does. Each target counts in one of three
modalities (thought, reply text, speech); the loss is the weighted sum of
each modality's mean, so a long speech reply does not drown out a short
thought, and each modality's weight means the same whatever the lengths.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
from pathlib import Path

import torch
import torch.nn as nn
import yaml
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from s2s.codecs import load_codec
from s2s.files import atomic_folder, check_init_args
from s2s.hearing.ears import load_hearing
from s2s.hearing.heard import HeardQuestion
from s2s.lm.batching import (
    encode_batch,
    pad_sequences,
    reply_alignment,
    reply_opening,
    tokenize,
    word_token_counts,
)
from s2s.lm.formats import (
    Turn,
    WordTimed,
    build_format,
    format_class,
)
from s2s.lm.heard_adapter import HeardAdapter
from s2s.lm.speculate import FILE_NAME as PHRASES_FILE
from s2s.lm.speculate import SPEECH_FILE, PhraseTable, WordFrames
from s2s.lm.text_tokenizer import load_text_tokenizer, train_text_tokenizer
from s2s.lm.vocab import JointVocab
from s2s.lm.word_clock import Signal, WordClock, clock_signals
from s2s.lm.word_decoder import FOLDER_NAME as DECODER_DIR
from s2s.lm.word_decoder import load_decoder, save_decoder

CONFIG_FILE = "config.yaml"  # ours; the backbone's own config.json and model.safetensors sit beside it
ADAPTER_FILE = "adapter.safetensors"  # the ear's adapter (W h), when the model uses the ear's hidden states
CLOCK_FILE = "word_clock.safetensors"  # the word clock's weights (word_timed models trained with word_clock)
# What the training module (s2s/lm/module.py) adds to a saved config (older folders hold them): read past.
TRAINING_KEYS = ("thought_weight", "reply_text_weight", "speech_weight", "lr", "weight_decay", "warmup_steps",
                 "scheduled_sampling", "scheduled_sampling_temperature", "scheduled_sampling_passes",
                 "word_corruption", "word_clock_lr", "val_answer_examples", "init_from")

@contextlib.contextmanager
def _quiet_progress():
    """transformers' progress bars off inside the block, as they were after it."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def build_backbone(backbone: str | None, backbone_config: dict | None, vocab_size: int) -> PreTrainedModel:
    """A causal LM with `vocab_size` token embeddings: pretrained (`backbone`) or from a config dict.

    Pretrained weights are loaded in float32 (the trainer's `precision` casts
    for compute), then resized: rows below the old size keep their values.
    transformers starts every new row at the mean of the old ones (with a
    variance of 1e-9 of theirs): right for the output layer, where a new id
    then takes no probability from the text, but at the input thousands of
    speech ids would all read as one token and drift apart by gradient alone.
    So new input rows are drawn from the spread of the old rows instead (an
    output layer tied to the input shares them).
    A config builds the model at the right size directly; its `vocab_size` is
    the joint vocabulary's, whatever the dict says.
    """
    if (backbone is None) == (backbone_config is None):
        raise ValueError("give the LM exactly one backbone: `backbone` (a hub id or a folder to load) or "
                         "`backbone_config` (a config dict with `model_type`, to build one from scratch)")
    if backbone is not None:
        try:
            # from_pretrained returns eval mode; training turns modules on through Lightning, which leaves
            # submodules as it finds them, so a pretrained backbone's dropout would stay off: train mode here.
            with _quiet_progress():  # transformers draws a bar on the terminal of every `s2s reply`
                model = AutoModelForCausalLM.from_pretrained(str(backbone)).float().train()
        except OSError as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ValueError(f"cannot load the backbone {str(backbone)!r}: {reason}; give a local folder or "
                             "download the weights once (huggingface-cli download ID)") from None
        old_rows = model.get_input_embeddings().num_embeddings
        if old_rows != vocab_size:
            model.resize_token_embeddings(vocab_size)
        if old_rows < vocab_size:
            with torch.no_grad():
                weight = model.get_input_embeddings().weight
                old, new = weight[:old_rows], weight[old_rows:]
                new.copy_(old.mean(0) + old.std(0) * torch.randn_like(new))
        return model
    if "model_type" not in backbone_config:
        raise ValueError(f"backbone_config needs a model_type (e.g. llama, gpt2), got keys {sorted(backbone_config)}")
    config = AutoConfig.for_model(**{**backbone_config, "vocab_size": vocab_size})
    return AutoModelForCausalLM.from_config(config)


class SpeechReasoningLM(nn.Module):
    """Backbone + text tokenizer + joint vocabulary + sequence format: the model that hears, thinks and
    speaks. `SpeechReasoningModule` (`s2s/lm/module.py`) trains it.

    The tokenizer is `tokenizer` (a folder or hub id; default: the
    backbone's own). When it names a folder that does not exist yet and
    `tokenizer_train_manifest` is given, a byte-level BPE of
    `tokenizer_vocab_size` ids is trained on that manifest and saved there
    first, so one `s2s fit` runs from data to model; later runs load it.
    `codec` (and `num_codebooks`, the first k of its codebooks) only sets the
    speech ids: K codebooks of `codebook_size` codes.
    `hearing` lets the model take question audio as heard segments: a saved `CTCRecognizer` folder
    that writes text or spells in this tokenizer (`s2s/hearing/ctc.py`), a Whisper model (`whisper-tiny.en`),
    or a list of them asked in turn, the first whose confidence reaches its `hearing_confidence` believed, or,
    with one weight per ear in `hearing_cross_check`, scoring each other's transcripts (`s2s/hearing/ears.py`).
    It stays frozen, and only its adapter trains with the LM. `heard_hidden`
    False leaves the adapter's W h out, so a heard segment is exactly its
    token's embedding (measured on the shipped model: W h moved the LM off its
    text path, 79.0 % right from speech with it, 84.0 % without).
    `word_clock` (word_timed only) adds to every position of a word read aloud
    which word it is and how many of its frames are left (`word_clock.py`).
    """

    def __init__(self, backbone: str | None = None, backbone_config: dict | None = None, tokenizer: str | None = None,
                 tokenizer_train_manifest: str | None = None, tokenizer_vocab_size: int = 1024,
                 codec: str = "s2s-tiny", num_codebooks: int | None = None, format: str = "think_then_speak",
                 format_options: dict | None = None, hearing: str | list[str] | None = None, heard_hidden: bool = True,
                 hearing_confidence: float | list[float] = 0.93, word_clock: bool = False,
                 hearing_cross_check: list[float] | None = None):
        super().__init__()
        self.init_args = {"backbone": backbone, "backbone_config": backbone_config, "tokenizer": tokenizer,
                          "tokenizer_train_manifest": tokenizer_train_manifest,
                          "tokenizer_vocab_size": tokenizer_vocab_size, "codec": codec, "num_codebooks": num_codebooks,
                          "format": format, "format_options": format_options, "hearing": hearing,
                          "heard_hidden": heard_hidden, "hearing_confidence": hearing_confidence,
                          "word_clock": word_clock, "hearing_cross_check": hearing_cross_check}
        self.tokenizer = self._text_tokenizer(tokenizer or backbone, tokenizer_train_manifest, tokenizer_vocab_size)
        speech = load_codec(codec, **({} if num_codebooks is None else {"num_codebooks": num_codebooks}))
        durations = format_class(format).durations(**(format_options or {}))  # word_timed's word lengths
        self.vocab = JointVocab(len(self.tokenizer), speech.num_codebooks, speech.codebook_size, durations)
        self.format = build_format(format, self.vocab, **(format_options or {}))
        # The ear first: one a user has not installed (Whisper's weights) fails before any weights load.
        self.hearing = None if hearing is None else load_hearing(hearing, self.tokenizer, hearing_confidence,
                                                                 cross_check=hearing_cross_check)
        self.backbone = build_backbone(backbone, backbone_config, self.vocab.size)
        self.clock = None
        if word_clock:
            if not isinstance(self.format, WordTimed):
                raise ValueError(f"word_clock times words said with their durations, which only the word_timed "
                                 f"formats have; this model's format is {self.format.name}: set format: word_timed "
                                 "(or word_timed_while_thinking) or word_clock: false")
            self.clock = WordClock(self.backbone.get_input_embeddings().embedding_dim, self.format.max_word_frames)
        self.adapter = None
        # Drafts for speculative decoding (`s2s lm phrases`, speculate.py): loaded with a folder that has them.
        self.phrases: PhraseTable | None = None
        self.speech_drafts: WordFrames | None = None  # and of a word_timed reply's speech (`--align-with`)
        self.word_decoder = None  # a WordDecoder that says each word's frames at once (word_decoder.py), if saved
        if self.hearing is not None:
            if heard_hidden and not self.hearing.dim:
                raise ValueError(f"heard_hidden maps an ear's hidden states into the LM, and hearing {hearing!r} "
                                 "gives none (Whisper writes text): set heard_hidden: false")
            lm_dim = self.backbone.get_input_embeddings().embedding_dim
            self.adapter = HeardAdapter(self.hearing.dim or 1, lm_dim, use_hidden=heard_hidden)

    def init_from(self, folder: str | os.PathLike) -> None:
        """Start from the backbone, adapter and word clock of a saved model (fine-tuning: the shipped model, say,
        with new data or weights); everything else comes from this model's own arguments, which must give the same
        vocabulary and architecture, or the same vocabulary with more duration ids (a think-then-speak model
        fine-tuned into word_timed: the new ids, last in the vocabulary, keep this model's fresh rows)."""
        source = SpeechReasoningLM.from_pretrained(folder)
        grown = source.vocab.durations < self.vocab.durations and \
            dataclasses.replace(source.vocab, durations=self.vocab.durations) == self.vocab
        if source.vocab != self.vocab and not grown:
            raise ValueError(f"init_from {folder}: its vocabulary {source.vocab} differs from this model's "
                             f"{self.vocab}; use its tokenizer, codec and num_codebooks")
        weights, own = source.backbone.state_dict(), self.backbone.state_dict()
        for name, tensor in weights.items():
            if grown and name in own and tensor.shape[0] == source.vocab.size and own[name].shape[0] == self.vocab.size:
                weights[name] = torch.cat([tensor, own[name][source.vocab.size:]])  # embedding and output rows
        try:
            self.backbone.load_state_dict(weights)
            fits = self.adapter is not None and source.adapter is not None and \
                self.adapter.project.weight.shape == source.adapter.project.weight.shape
            if fits or (self.adapter is not None and source.adapter is not None and self.adapter.use_hidden):
                # a source heard through another ear may have another width: unused without W h, so left out
                self.adapter.load_state_dict(source.adapter.state_dict())
            if self.clock is not None and source.clock is not None:  # else it starts at zero: the source's outputs
                self.clock.load_state_dict(source.clock.state_dict())
        except RuntimeError as error:
            raise ValueError(f"init_from {folder}: its weights do not fit this model's backbone_config "
                             f"({str(error).splitlines()[0]}); use the same sizes") from None

    @staticmethod
    def _text_tokenizer(name_or_dir: str | None, train_manifest: str | None, vocab_size: int):
        if name_or_dir is None:
            raise ValueError("a backbone built from scratch needs `tokenizer`: a tokenizer folder or hub id "
                             "(with `tokenizer_train_manifest`, a missing folder is trained and saved first)")
        if train_manifest is not None and not Path(name_or_dir).exists():
            with atomic_folder(name_or_dir) as tmp:
                train_text_tokenizer(train_manifest, vocab_size).save_pretrained(tmp)
        return load_text_tokenizer(name_or_dir)

    def embed(self, ids: torch.Tensor, heard: list[HeardQuestion | None] | None = None,
              signals: list[Signal | None] | None = None) -> torch.Tensor:
        """ids [B, L] -> input vectors [B, L, D]: token embeddings, with row b's `<heard>` ids replaced by heard[b],
        and with the word clock (if the model has one) added where words are read aloud. The clock reads whole
        rows from their start; generation, which feeds a few ids at a time, gives their `signals` (one a
        position of a single row, from its own `ClockReader`)."""
        embeddings = self.backbone.get_input_embeddings()
        vectors = embeddings(ids)
        if self.clock is not None:
            if signals is not None:
                where = [(0, position, s) for position, s in enumerate(signals) if s is not None]
            else:
                where = [(row, position, s) for row in range(ids.shape[0])
                         for position, s in clock_signals(ids[row].tolist(), self.vocab)]
            if where:
                rows, positions, found = zip(*where)
                added = self.clock(list(found), embeddings).to(vectors.dtype)
                vectors = vectors.index_put((torch.tensor(rows, device=ids.device),
                                             torch.tensor(positions, device=ids.device)), added, accumulate=True)
        for row, question in enumerate(heard or []):
            if question is None:
                continue
            positions = (ids[row] == self.vocab.heard).nonzero().squeeze(1)
            if positions.numel() != len(question):
                raise ValueError(f"row {row} has {positions.numel()} <heard> ids but {len(question)} heard segments")
            vectors[row, positions] = self.adapter(question, embeddings).to(vectors.dtype)
        return vectors

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                heard: list[HeardQuestion | None] | None = None) -> torch.Tensor:
        """ids [B, L] (and the heard questions of rows with `<heard>` ids) -> logits [B, L, vocab.size]."""
        if self.clock is None and (heard is None or all(q is None for q in heard)):
            return self.backbone(input_ids=ids, attention_mask=attention_mask, use_cache=False).logits
        return self.backbone(inputs_embeds=self.embed(ids, heard), attention_mask=attention_mask,
                             use_cache=False).logits

    # ------------------------------------------------------------------ batches
    def encode_batch(self, batch: dict) -> dict:
        """A datamodule batch -> ids, segment, attention_mask [B, L] on the model's device, and `heard`.

        Two kinds of batch: `ReasoningDataModule`'s (lists: `heard` questions, or `question_codes`, or
        where both are None the written question as text; `reply_codes` [K, F] or None, when the row
        stops after `<speak>`: reasoning practice without the costly speech), or
        `SpokenReasoningDataModule`'s (texts and codes [B, K, F]).
        """
        if "heard" not in batch:
            encoded = encode_batch(batch, self.tokenizer, self.format)
            return {name: tensor.to(self.device) for name, tensor in encoded.items()}
        questions = tokenize(self.tokenizer, batch["question_written"])
        thoughts, replies = tokenize(self.tokenizer, batch["thought"]), tokenize(self.tokenizer, batch["reply"])
        no_speech = torch.zeros(self.vocab.num_codebooks, 0, dtype=torch.long)
        sequences = []
        rows = len(batch["heard"])
        spoken_codes = batch.get("question_codes") or [None] * rows
        word_frames = batch.get("reply_word_frames") or [None] * rows
        voices = batch.get("voice_codes") or [None] * rows
        styles = [tokenize(self.tokenizer, [s])[0] if s else None for s in batch.get("style") or [None] * rows]
        for i, heard in enumerate(batch["heard"]):
            codes, question_codes = batch["reply_codes"][i], spoken_codes[i]
            spoken = heard is not None or question_codes is not None
            alignment = None  # (text ids, frames) per word: how word_aligned lays the reply out
            if codes is None:
                alignment = [(count, 0) for count in word_token_counts(self.tokenizer, batch["reply"][i])]
            elif word_frames[i] is not None:
                alignment = reply_alignment(self.tokenizer, batch["reply"][i], word_frames[i])
            turn = Turn(question_text_ids=None if spoken else questions[i], question_codes=question_codes,
                        heard_length=len(heard) if heard is not None else None, thought_ids=thoughts[i],
                        reply_ids=replies[i], reply_codes=no_speech if codes is None else codes,
                        reply_alignment=alignment, voice_codes=voices[i], style_ids=styles[i],
                        reply_opening=reply_opening(self.tokenizer, batch["reply"][i]))
            # Without speech the row stops where its speech would begin (think-then-speak: on <speak>).
            sequences.append(self.format.build(turn) if codes is not None else self.format.build_without_speech(turn))
        encoded = {name: tensor.to(self.device) for name, tensor in pad_sequences(sequences, self.vocab.pad).items()}
        encoded["heard"] = batch["heard"]
        return encoded

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, out_dir: str | os.PathLike, overwrite: bool = False, half: bool = False) -> Path:
        """Write a model folder atomically: the backbone (config.json, model.safetensors), the tokenizer, config.yaml.

        `half` stores the weights in float16 (half the bytes: what ships in the repository); loading
        casts them back to float32.

        config.yaml holds the init arguments and the joint vocabulary. The
        folder is also a plain transformers model folder, so other tools can
        read the backbone and tokenizer as they are.
        """
        init_args = dict(self.init_args)
        cast = (lambda t: t.half()) if half else (lambda t: t)
        with atomic_folder(out_dir, overwrite) as tmp:
            (copy.deepcopy(self.backbone).half() if half else self.backbone).save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            if self.hearing is not None:
                init_args["hearing"] = self.hearing.save(tmp, half)
                if self.adapter.use_hidden:
                    save_file({k: cast(v).contiguous() for k, v in self.adapter.state_dict().items()},
                              tmp / ADAPTER_FILE)
            if self.clock is not None:
                save_file({k: cast(v).contiguous() for k, v in self.clock.state_dict().items()}, tmp / CLOCK_FILE)
            if self.phrases is not None:
                self.phrases.save(tmp / PHRASES_FILE)
            if self.speech_drafts is not None:
                self.speech_drafts.save(tmp / SPEECH_FILE)
            if self.word_decoder is not None:
                save_decoder(self.word_decoder, tmp / DECODER_DIR, half=half)
            config = {"init_args": init_args, "vocab": self.vocab.to_dict()}
            (tmp / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False))
        return Path(out_dir)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, hearing: str | list[str] | None = None) -> SpeechReasoningLM:
        """The model `save_pretrained` wrote, in eval mode; `hearing` replaces the ear its config names
        (`whisper-tiny.en`, a CTC ear folder, a list of them asked in turn; "hearing" is the folder's own CTC
        ear)."""
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{folder} is not a saved SpeechReasoningLM: {folder / CONFIG_FILE} is missing")
        saved = yaml.safe_load((folder / CONFIG_FILE).read_text()) or {}
        saved_args = check_init_args(cls, saved.get("init_args", {}), folder / CONFIG_FILE, ignored=TRAINING_KEYS)
        # The folder is the backbone (already resized) and the tokenizer; nothing is trained or downloaded.
        init_args = {**saved_args, "backbone": str(folder), "backbone_config": None,
                     "tokenizer": str(folder), "tokenizer_train_manifest": None}
        if hearing is not None:
            if not init_args.get("hearing"):
                raise ValueError(f"{folder} hears codec tokens, not through an ear: it takes no hearing")
            init_args["hearing"] = list(hearing) if isinstance(hearing, (list, tuple)) else hearing
            init_args["hearing_cross_check"] = None  # ears named here are asked in turn
        if init_args.get("hearing"):  # the CTC ear's folder is relative to the model's
            within = lambda spec: str(folder / spec) if (folder / spec).exists() else spec  # noqa: E731
            spec = init_args["hearing"]
            init_args["hearing"] = [within(s) for s in spec] if isinstance(spec, list) else within(spec)
        model = cls(**init_args)
        if model.adapter is not None and model.adapter.use_hidden:  # without W h the adapter has nothing to load
            model.adapter.load_state_dict(load_file(folder / ADAPTER_FILE))
        if model.clock is not None:
            if not (folder / CLOCK_FILE).is_file():
                raise FileNotFoundError(f"{folder} says word_clock: true but has no {CLOCK_FILE}: copy it from the "
                                        "folder the model was exported to, or export it again")
            model.clock.load_state_dict({k: v.float() for k, v in load_file(folder / CLOCK_FILE).items()})
        if (folder / PHRASES_FILE).is_file():
            model.phrases = PhraseTable.load(folder / PHRASES_FILE)
            if model.phrases.text_vocab_size != model.vocab.text_vocab_size:
                raise ValueError(f"{folder / PHRASES_FILE} was counted with a tokenizer of "
                                 f"{model.phrases.text_vocab_size} ids, this model's has "
                                 f"{model.vocab.text_vocab_size}: count it again with s2s lm phrases {folder} "
                                 "--manifest TRAIN_MANIFEST --overwrite")
        if (folder / SPEECH_FILE).is_file():
            model.speech_drafts = WordFrames.load(folder / SPEECH_FILE)
            drafts, vocab = model.speech_drafts, model.vocab
            if (drafts.num_codebooks, drafts.codebook_size, drafts.text_vocab_size) != \
                    (vocab.num_codebooks, vocab.codebook_size, vocab.text_vocab_size):
                raise ValueError(f"{folder / SPEECH_FILE} was counted for {drafts.num_codebooks} codebooks of "
                                 f"{drafts.codebook_size} and {drafts.text_vocab_size} text ids, this model has "
                                 f"{vocab.num_codebooks}, {vocab.codebook_size} and {vocab.text_vocab_size}: "
                                 f"count it again with s2s lm phrases {folder} --manifest TRAIN_MANIFEST "
                                 "--align-with JUDGE --overwrite")
        if (folder / DECODER_DIR).is_dir():
            model.word_decoder = load_decoder(folder / DECODER_DIR, model.vocab)
        expected = JointVocab.from_dict(saved["vocab"])
        if model.vocab != expected:
            raise ValueError(f"{folder} was saved with the vocabulary {expected}, but its tokenizer and codec give "
                             f"{model.vocab}: load it with the codec ({init_args['codec']}) it was trained with")
        return model.eval()
