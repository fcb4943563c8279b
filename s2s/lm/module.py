"""SpeechReasoningModule: the LightningModule that trains a SpeechReasoningLM (`s2s fit --config configs/lm/...`).

It holds what only training needs: the loss (next-token prediction on the reply only, each modality's mean
weighted, `target_modality`), scheduled sampling and word corruption, the optimiser and its schedule, and the
answers scored at validation. The model itself (`s2s/lm/model.py`) is a plain `nn.Module`; `save_pretrained`
writes it alone, and `SpeechReasoningLM.from_pretrained` loads it without Lightning.
"""
from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from s2s.eval.metrics import AnswerAccuracy
from s2s.lm.batching import tokenize
from s2s.lm.formats import DURATION, READ_ALOUD, REPLY_TEXT, SEGMENT_NAMES, SPEECH, THOUGHT, WordTimed
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.text_tokenizer import load_text_tokenizer
from s2s.lm.vocab import JointVocab
from s2s.lm.word_clock import word_frame_starts
from s2s.training import nested_state, time_aware_scheduler

# The modality each target counts in (indices of MODALITIES), or none.
THOUGHT_LOSS, REPLY_TEXT_LOSS, SPEECH_LOSS = range(3)
MODALITIES = ("thought", "reply_text", "speech")
NO_LOSS = -1


def _segment_modality() -> torch.Tensor:
    """Segment label -> modality, for positions that hold content (markers and the prompt get NO_LOSS)."""
    table = torch.full((len(SEGMENT_NAMES),), NO_LOSS, dtype=torch.long)
    table[THOUGHT], table[REPLY_TEXT], table[SPEECH] = THOUGHT_LOSS, REPLY_TEXT_LOSS, SPEECH_LOSS
    table[DURATION] = SPEECH_LOSS  # how long a word is said is part of saying it
    return table


def target_modality(ids: torch.Tensor, segment: torch.Tensor, vocab: JointVocab) -> torch.Tensor:
    """The modality each next-token target counts in: ids, segment [B, L] -> [B, L-1] (NO_LOSS: not a target).

    Nothing up to the prompt's last marker (`</question>`, or `</voice>`) is
    a target, and pads never are. A marker of the reply (`<think>`,
    `</think>`, `<speak>`, `<eot>` ...) counts with the stream it closes: the
    modality of the last thought, reply text or speech before it. The first,
    `<think>`, closes nothing and opens the thought, so it counts there.
    Reply words read aloud (word_timed) are never targets: generation writes
    them from the reply text, so predicting them would teach nothing used.
    """
    positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
    prompt_marker = (ids == vocab.end_question) | (ids == vocab.end_voice)
    reply_start = (prompt_marker.long() * (positions + 1)).amax(dim=1, keepdim=True)  # [B, 1]
    in_reply = (positions >= reply_start) & (ids != vocab.pad)
    own = _segment_modality().to(ids.device)[segment]
    last_content = torch.where(own != NO_LOSS, positions, -1).cummax(dim=1).values
    carried = torch.where(last_content >= 0, own.gather(1, last_content.clamp(min=0)), THOUGHT_LOSS)
    return torch.where(in_reply & (segment != READ_ALOUD), carried, NO_LOSS)[:, 1:]



class SpeechReasoningModule(L.LightningModule):
    """Trains `self.model`, a SpeechReasoningLM built from the model's arguments (see SpeechReasoningLM:
    backbone, tokenizer, codec, format, hearing, word clock); these are training's.

    `thought_weight`, `reply_text_weight`, `speech_weight`: each modality's share of the loss (`losses`).
    `scheduled_sampling` p > 0: in training, each speech code fed back as input is, with probability p,
    replaced by one the model itself writes there (parallel scheduled sampling, `_own_speech`): drawn at
    `scheduled_sampling_temperature`, or its argmax at 0 (the codes greedy generation writes), so that its
    frames learn to come back to the word after a slip of its own instead of drifting to another word.
    `scheduled_sampling_passes` n > 1 draws them n times, each pass given the codes of the one before, so
    that a slip is also fed after slips of its own (errors n deep, as in free-running generation).
    `word_clock_lr` (with `word_clock`): the clock's own learning rate, without weight decay (None: the
    model's, decayed like every matrix, which may keep its word term small beside the speech codes' embeddings).
    `word_corruption` q > 0 (word_timed): in training, each word said is, with probability q, fed with the
    frames of other speech of the batch in its place (`_other_words`; the targets stay its own), so that
    a word follows its text and clock, not the sentence its neighbours' frames came from.
    `val_answer_examples` > 0: each validation also answers that many
    questions of its first batch (greedy, no calculator, no speech) and logs
    `val/accuracy_thought`, the figure `s2s evaluate` reports, as training goes.
    """

    def __init__(self, backbone: str | None = None, backbone_config: dict | None = None, tokenizer: str | None = None,
                 tokenizer_train_manifest: str | None = None, tokenizer_vocab_size: int = 1024,
                 codec: str = "s2s-tiny", num_codebooks: int | None = None, format: str = "think_then_speak",
                 format_options: dict | None = None, thought_weight: float = 1.0, reply_text_weight: float = 1.0,
                 speech_weight: float = 1.0, lr: float = 1e-3, weight_decay: float = 0.1, warmup_steps: int = 200,
                 hearing: str | list[str] | None = None, heard_hidden: bool = True,
                 hearing_confidence: float | list[float] = 0.93, word_clock: bool = False,
                 scheduled_sampling: float = 0.0, scheduled_sampling_temperature: float = 1.0,
                 scheduled_sampling_passes: int = 1, word_corruption: float = 0.0, word_clock_lr: float | None = None,
                 val_answer_examples: int = 0, init_from: str | None = None,
                 hearing_cross_check: list[float] | None = None):
        super().__init__()
        if not 0 <= scheduled_sampling <= 1:
            raise ValueError(f"scheduled_sampling is the chance that a fed-back speech code is the model's own, "
                             f"so it must lie in [0, 1], got {scheduled_sampling}")
        if scheduled_sampling_temperature < 0:
            raise ValueError(f"scheduled_sampling_temperature must be >= 0 (0: the argmax), got "
                             f"{scheduled_sampling_temperature}")
        if not isinstance(scheduled_sampling_passes, int) or scheduled_sampling_passes < 1:
            raise ValueError(f"scheduled_sampling_passes counts forwards that draw the model's own codes, so it "
                             f"must be an integer >= 1, got {scheduled_sampling_passes!r}")
        if not 0 <= word_corruption <= 1:
            raise ValueError(f"word_corruption is the chance that a word said is fed with other speech's frames, "
                             f"so it must lie in [0, 1], got {word_corruption}")
        self.save_hyperparameters()
        self.val_accuracy = AnswerAccuracy()
        self.val_thought_tokens = MeanMetric()  # how long the answered thoughts are, as `s2s evaluate` reports
        self.model = SpeechReasoningLM(backbone, backbone_config, tokenizer, tokenizer_train_manifest,
                                       tokenizer_vocab_size, codec, num_codebooks, format, format_options, hearing,
                                       heard_hidden, hearing_confidence, word_clock, hearing_cross_check)
        if word_clock_lr is not None and (not word_clock or not word_clock_lr > 0):
            raise ValueError(f"word_clock_lr is the word clock's own learning rate: it needs word_clock: true and a "
                             f"rate > 0, got {word_clock_lr!r} with word_clock: {word_clock}")
        if word_corruption and not isinstance(self.model.format, WordTimed):
            raise ValueError(f"word_corruption replaces the frames of words said with their durations, which only "
                             f"the word_timed formats have; this model's format is {self.model.format.name}")
        if init_from is not None:
            self.model.init_from(init_from)

    # The model's parts, as training reads them.
    @property
    def vocab(self) -> JointVocab:
        return self.model.vocab

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def format(self):
        return self.model.format

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None, heard=None) -> torch.Tensor:
        return self.model(ids, attention_mask, heard)

    def encode_batch(self, batch: dict) -> dict:
        return self.model.encode_batch(batch)

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """Mean cross-entropy per modality, their weighted sum `loss`, speech per codebook, thought accuracy."""
        hp, ids = self.hparams, batch["ids"]
        modality = target_modality(ids, batch["segment"], self.vocab)  # [B, L-1]
        scored = modality != NO_LOSS
        if self.training and hp.scheduled_sampling > 0:
            # The inputs; the targets stay the corpus's.
            ids = self._own_speech(batch, hp.scheduled_sampling, hp.scheduled_sampling_temperature,
                                   hp.scheduled_sampling_passes)
        if self.training and hp.word_corruption > 0:
            ids = self._other_words(ids, hp.word_corruption)
        # Keep only the scored positions before the float32 upcast: prompts and pads are a large part of a batch.
        logits = self(ids, batch["attention_mask"], batch.get("heard"))[:, :-1][scored].float()  # [N, V]
        targets, modality = batch["ids"][:, 1:][scored], modality[scored]  # [N]
        token_loss = F.cross_entropy(logits, targets, reduction="none")  # [N]
        weights = (hp.thought_weight, hp.reply_text_weight, hp.speech_weight)  # in the order of MODALITIES
        out = {"loss": token_loss.new_zeros(())}
        for index, name in enumerate(MODALITIES):
            mask = modality == index
            if mask.any():
                out[f"{name}_loss"] = token_loss[mask].mean()
                out["loss"] = out["loss"] + weights[index] * out[f"{name}_loss"]
        speech = (modality == SPEECH_LOSS) & self.vocab.is_speech(targets)  # the speech ids, not <eot>
        codebook = self.vocab.speech_code(targets[speech])[0]
        for k in range(self.vocab.num_codebooks):
            if (codebook == k).any():
                out[f"speech_loss_cb{k}"] = token_loss[speech][codebook == k].detach().mean()
        thought = modality == THOUGHT_LOSS
        if thought.any():
            out["thought_accuracy"] = (logits[thought].argmax(-1) == targets[thought]).float().mean()
        return out

    @torch.no_grad()
    def _own_speech(self, batch: dict, chance: float, temperature: float = 1.0, passes: int = 1) -> torch.Tensor:
        """The batch's ids with a `chance` of its speech codes replaced by the model's own: each drawn at
        `temperature` (0: the argmax) from the model's distribution over that codebook's codes, given the
        ids before it (forwards without gradients; Duckworth et al. 2019): the corpus's in the first pass,
        the previous pass's mix in each of the `passes` after. At generation every fed-back code is the
        model's own, and a slip in one frame otherwise leads the next frames to another word ("fourteen" said
        as "fifteen")."""
        ids, vocab = batch["ids"], self.vocab
        chosen = vocab.is_speech(ids) & (batch["segment"] == SPEECH)
        chosen[:, 0] = False  # a code is drawn from the logits one position before it
        chosen &= torch.rand(ids.shape, device=ids.device) < chance
        if not chosen.any():
            return ids
        codebook = vocab.speech_code(ids[chosen])[0]  # [N]
        codes = torch.arange(vocab.codebook_size, device=ids.device)
        own = ids
        for _ in range(passes):
            logits = self(own, batch["attention_mask"], batch.get("heard"))[:, :-1][chosen[:, 1:]].float()  # [N, V]
            scores = logits.gather(1, vocab.speech_id(codebook[:, None], codes))  # [N, size]: that codebook's ids
            drawn = scores.argmax(-1) if temperature == 0 else \
                torch.multinomial((scores / temperature).softmax(-1), 1).squeeze(1)
            own = own.clone()
            own[chosen] = vocab.speech_id(codebook, drawn)
        return own

    def _other_words(self, ids: torch.Tensor, chance: float) -> torch.Tensor:
        """`ids` with a `chance` of the words said (word_timed) given, frame for frame, the codes of a run of as
        many frames drawn from anywhere in the batch's speech (another word, another sentence, a word and a half).
        Text, durations and markers stay, so the word clock still says which word it is."""
        k, rows = self.vocab.num_codebooks, ids.tolist()
        words = [word_frame_starts(row, self.vocab) for row in rows]
        runs = [[start for word in row_words for start in word] for row_words in words]  # every frame, per row
        sources = [row for row, frames in enumerate(runs) if frames]
        if not sources:
            return ids
        out = ids.clone()
        for row, row_words in enumerate(words):
            for word in row_words:
                if float(torch.rand(())) >= chance:
                    continue
                source = sources[int(torch.randint(len(sources), ()))]
                frames = runs[source]
                first = int(torch.randint(max(len(frames) - len(word), 0) + 1, ()))
                for start, copied in zip(word, frames[first: first + len(word)]):
                    out[row, start: start + k] = ids[source, copied: copied + k]
        return out

    def _log_losses(self, stage: str, losses: dict[str, torch.Tensor], batch: dict) -> None:
        size = batch["ids"].shape[0]
        self.log(f"{stage}/loss", losses["loss"], prog_bar=True, batch_size=size)
        self.log_dict({f"{stage}/{name}": value for name, value in losses.items() if name != "loss"},
                      batch_size=size)

    def setup(self, stage: str) -> None:
        """Refuse data heard through another tokenizer: its heard token ids would mean other words here."""
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        folder = datamodule.hparams.get("tokenizer") if datamodule is not None else None
        if folder and load_text_tokenizer(folder).get_vocab() != self.tokenizer.get_vocab():
            raise ValueError(f"the data cuts heard questions with the tokenizer {folder}, but the model's tokenizer "
                             f"({self.hparams.tokenizer or self.hparams.backbone}) differs: give both the same folder")

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        batch = self.encode_batch(batch)
        losses = self.losses(batch)
        self._log_losses("train", losses, batch)
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        encoded = self.encode_batch(batch)
        self._log_losses("val", self.losses(encoded), encoded)
        if batch_idx == 0 and self.hparams.val_answer_examples:
            self._score_answers(batch, self.hparams.val_answer_examples)

    @torch.no_grad()
    def _score_answers(self, batch: dict, count: int) -> None:
        """Answer the first `count` questions of a batch as `s2s evaluate` would, the model alone: greedy, no
        calculator, the thought only. Each is scored against its reference thought's answer."""
        from s2s.lm.generate import build_prompt, generate
        from s2s.lm.tools import answer_from_thought

        rows = range(min(count, len(batch["thought"])))
        for i in rows:
            heard, codes = batch["heard"][i], batch["question_codes"][i]
            if heard is not None:
                prompt = build_prompt(self.format, heard_length=len(heard))
            elif codes is not None:
                prompt = build_prompt(self.format, question_codes=codes)
            else:
                prompt = build_prompt(self.format, question_text_ids=tokenize(self.tokenizer,
                                                                              [batch["question_written"][i]])[0])
            # No reply text, except where the thought pauses for the reply's opening words.
            words = 48 if self.format.thought_pauses_for_words else 0
            # As `s2s evaluate` runs it: in float32, outside the trainer's bf16 autocast (FastDecoder's float16
            # products take float32 inputs only).
            with torch.autocast(self.device.type, enabled=False):
                reply = generate(self.model, prompt, heard=heard, temperature=0.0, max_thought_tokens=160,
                                 max_reply_tokens=words, max_speech_frames=0)
            self.val_accuracy.update([answer_from_thought(reply.thought)], [answer_from_thought(batch["thought"][i])])
            self.val_thought_tokens.update(float(len(tokenize(self.tokenizer, [reply.thought])[0])))
        self.log("val/accuracy_thought", self.val_accuracy, prog_bar=True, batch_size=len(rows))
        self.log("val/thought_tokens", self.val_thought_tokens, batch_size=len(rows))

    def configure_optimizers(self):
        hp = self.hparams
        lm = self.model
        clock = {id(p) for p in lm.clock.parameters()} if lm.clock is not None and hp.word_clock_lr else set()
        params = [p for p in self.parameters() if p.requires_grad and id(p) not in clock]
        # As in nanoGPT: decay the matrices (weights and embeddings), not the biases and norm gains.
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": hp.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        if clock:  # its own rate and no decay: decay may keep its word term small (an eighth of a speech code)
            groups.append({"params": list(lm.clock.parameters()), "weight_decay": 0.0, "lr": hp.word_clock_lr})
        optimizer = torch.optim.AdamW(groups, lr=hp.lr, betas=(0.9, 0.95))
        return {"optimizer": optimizer, "lr_scheduler": time_aware_scheduler(optimizer, self.trainer, hp.warmup_steps)}

    # ------------------------------------------------------------------ checkpoints
    # The hearing model is a frozen dependency named by its folder (`hearing`), not part of what trains:
    # Lightning checkpoints leave it out, so a run resumed after the recogniser improved hears with the new one.
    strict_loading = False

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items()
                                    if not k.startswith("model.hearing.")}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = nested_state(checkpoint["state_dict"], "model.")
        checkpoint["state_dict"] = {k: v for k, v in state.items() if not k.startswith("model.hearing.")}
        missing = {k for k in self.state_dict() if not k.startswith("model.hearing.")} - set(checkpoint["state_dict"])
        if missing:
            raise ValueError(f"the checkpoint lacks {len(missing)} weights of this model (e.g. {sorted(missing)[0]}): "
                             "was it saved from another configuration?")

    def save_pretrained(self, out_dir: str | os.PathLike, overwrite: bool = False, half: bool = False) -> Path:
        """The model's folder (`SpeechReasoningLM.save_pretrained`): where training started is not part of it."""
        return self.model.save_pretrained(out_dir, overwrite=overwrite, half=half)
