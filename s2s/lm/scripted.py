"""A model made to write a given reply: latency measured on every real forward, whatever the weights.

How long a format makes a listener wait depends on how many ids it writes before its first speech, and on
nothing a random model's choices should decide. `ScriptedModel` overwrites the LM head's logits (a forward
hook) so that greedy decoding writes exactly `script`, the format's own layout of a chosen reply
(`reply_script`), and, where the model has an ear, the recogniser's logits so that a question is heard as
given tokens. Every forward, mask, text decoding and codec step still runs: the timings are real, the words
are not. `benchmarks/latency.py --random` and notebook 05 measure formats with it.
"""
from __future__ import annotations

import torch

from s2s.lm.batching import reply_opening, word_runs
from s2s.lm.formats import Format, Turn, even_alignment


def reply_ids(format: Format, turn: Turn) -> list[int]:
    """The ids a model writes for `turn`: the format's layout of it after the prompt's `<think>`, `<eot>` last."""
    ids = format.build(turn).ids
    return ids[int((ids == format.vocab.think).nonzero()[0]) + 1:].tolist()


def reply_script(model, thought_ids: list[int], reply_ids_: list[int], frames: int, seed: int) -> list[int]:
    """`reply_ids` of a reply with this thought and reply text and `frames` random speech frames: the words
    as generation cuts them with the frames shared out evenly (word_aligned, word_timed), and the words before
    the first number said while thinking (word_timed_while_thinking)."""
    vocab, tokenizer = model.vocab, model.tokenizer
    codes = torch.randint(0, vocab.codebook_size, (vocab.num_codebooks, frames),
                          generator=torch.Generator().manual_seed(seed))
    words = [len(word) for word in word_runs(tokenizer, reply_ids_)]
    opening = reply_opening(tokenizer, tokenizer.decode(reply_ids_))
    return reply_ids(model.format, Turn(heard_length=1, thought_ids=thought_ids, reply_ids=reply_ids_,
                                        reply_codes=codes, reply_opening=opening,
                                        reply_alignment=even_alignment(len(reply_ids_), frames, words)))


class ScriptedModel:
    """Hooks that make `model` write `script(ids)` and, where it has an ear, hear a question as `hear(ids)`.

    The logits after the reply's i-th id favour ids[i + 1] (the prompt's forward gives the first). Counted in
    ids fed back, not forwards: ids the generation loop writes itself (words read aloud) go in with the next
    one the model chooses. `fed` holds the reply ids fed back so far. The recogniser's CTC head spells the
    heard tokens evenly over the audio with blanks between, so compression gives one segment per token. Both
    heads' real outputs are still computed, then overwritten. `remove()` takes the hooks off.
    """

    def __init__(self, model):
        self.reply, self.fed, self.heard, self.in_prompt = [], None, [], False
        self.handles = [model.backbone.get_input_embeddings().register_forward_hook(self._count),
                        model.backbone.get_output_embeddings().register_forward_hook(self._lm_head)]
        if getattr(model, "hearing", None) is not None:
            self.handles.append(model.hearing.recognizer.net.head.register_forward_hook(self._ctc_head))

    def script(self, ids: list[int]) -> None:
        self.reply, self.fed = list(ids), None

    def hear(self, ids: list[int]) -> None:
        self.heard = list(ids)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def _count(self, module, args, embeddings: torch.Tensor) -> None:
        if self.fed is None:  # the prompt; the adapter's look-ups of the heard tokens follow in the same forward
            self.fed, self.in_prompt = [], True
        elif not self.in_prompt:
            self.fed += args[0][0].tolist()

    def _lm_head(self, module, args, logits: torch.Tensor) -> torch.Tensor:
        self.in_prompt = False
        step = len(self.fed or [])
        if step >= len(self.reply):
            raise RuntimeError(f"the model asked for id {step + 1} of a scripted reply of {len(self.reply)}: "
                               "the phase machine refused a scripted id")
        last = logits[:, -1]
        last.fill_(-1e4)
        last[:, self.reply[step]] = 1e4
        return logits

    def _ctc_head(self, module, args, logits: torch.Tensor) -> torch.Tensor:
        frames = logits.shape[1]
        tokens = self.heard[: max(1, frames // 2)] or [0]  # room for a blank between any two
        logits.fill_(-10.0)
        logits[..., 0] = 10.0  # blank
        for i, token in enumerate(tokens):
            frame = int((i + 0.5) * frames / len(tokens))
            logits[:, frame, 0] = -10.0
            logits[:, frame, token + 1] = 10.0  # label i + 1 is text id i
        return logits
