"""The reasoner's side of hearing: a HeardQuestion's segments -> LM input vectors (`s2s/hearing/ctc.py` says how
the CTC ear cuts a question into segments, and why they start as the written question's own embeddings)."""
from __future__ import annotations

import torch
import torch.nn as nn

from s2s.hearing.heard import HeardQuestion


class HeardAdapter(nn.Module):
    """HeardQuestion -> LM input vectors: posterior-weighted text embeddings plus a learned map of the hidden state.

    `use_hidden=False` leaves W h out: a heard segment is then exactly its tokens' embeddings, the place the
    written question starts from (the projection stays, frozen and unused, so saved adapters still load).
    """

    def __init__(self, hearing_dim: int, lm_dim: int, use_hidden: bool = True):
        super().__init__()
        self.project = nn.Linear(hearing_dim, lm_dim)
        nn.init.zeros_(self.project.weight)
        nn.init.zeros_(self.project.bias)
        self.use_hidden = use_hidden
        self.project.requires_grad_(use_hidden)

    def forward(self, heard: HeardQuestion, text_embeddings: nn.Embedding) -> torch.Tensor:
        """[n, lm_dim] for the n segments."""
        device = text_embeddings.weight.device
        rows = text_embeddings(heard.token_ids.to(device).long())  # [n, k, lm_dim]
        mixed = (heard.probs.to(device, rows.dtype)[..., None] * rows).sum(1)
        if not self.use_hidden:
            return mixed
        if heard.hidden.shape[-1] != self.project.in_features:
            raise ValueError(f"heard segments with hidden states of size {heard.hidden.shape[-1]} (a transcript has "
                             f"none) reach an adapter that maps the ear's {self.project.in_features}: set "
                             "heard_hidden: false to read transcripts")
        return mixed + self.project(heard.hidden.to(device, self.project.weight.dtype)).to(mixed.dtype)
