"""A lean KV-cached forward for llama-family backbones: the same weights and the same logits as transformers'.

Generation runs the backbone once per new id. For a small model on a CPU,
transformers' forward spends most of that step on its generality (cache
objects, mask building, keyword plumbing, output dataclasses), not on the
arithmetic, and time to first audio is a thought's worth of such steps.
`FastDecoder` runs the backbone's own modules (its norms, projections, MLPs,
rotary embedding and output layer, so nothing is copied and any checkpoint
works) with a preallocated key/value cache and one attention call per layer.
Llama, Qwen2 and Mistral (SmolLM2 and Qwen2.5 included) share this layout;
`fast_decoder` returns None for anything else, and the caller falls back to
transformers' forward. tests/test_fast_decode.py holds it to transformers'
logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SUPPORTED = ("llama", "qwen2", "mistral")


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def fast_decoder(backbone, capacity: int = 512) -> FastDecoder | None:
    """A FastDecoder over `backbone` (a transformers causal LM), or None where its layout is not the one
    FastDecoder computes (another architecture, a sliding window, an activation other than SiLU)."""
    config = getattr(backbone, "config", None)
    if config is None or getattr(config, "model_type", None) not in SUPPORTED:
        return None
    if getattr(config, "hidden_act", "silu") != "silu" or getattr(config, "pretraining_tp", 1) != 1:
        return None
    if getattr(config, "sliding_window", None) is not None and getattr(config, "use_sliding_window", True):
        return None
    inner = getattr(backbone, "model", None)
    if inner is None or not all(hasattr(inner, name) for name in ("layers", "norm", "rotary_emb", "embed_tokens")):
        return None
    return FastDecoder(backbone, capacity)


class FastDecoder:
    """Feed ids (or input vectors) in order; each call returns the logits [vocab] after its last position.

    One decoder holds one sequence: make a new one (or `reset`) for the next.
    """

    def __init__(self, backbone, capacity: int = 512):
        config, inner = backbone.config, backbone.model
        self.layers, self.norm, self.rotary = inner.layers, inner.norm, inner.rotary_emb
        self.embed_tokens, self.head = inner.embed_tokens, backbone.lm_head
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.scale = self.layers[0].self_attn.scaling
        weight = self.head.weight
        shape = (len(self.layers), 2, 1, self.kv_heads, max(capacity, 1), self.head_dim)
        self.cache = torch.empty(shape, dtype=weight.dtype, device=weight.device)
        self.length = 0

    def reset(self) -> None:
        self.length = 0

    def _grow(self, needed: int) -> None:
        if needed > self.cache.shape[4]:
            bigger = self.cache.new_empty((*self.cache.shape[:4], max(needed, 2 * self.cache.shape[4]),
                                           self.head_dim))
            bigger[:, :, :, :, : self.length] = self.cache[:, :, :, :, : self.length]
            self.cache = bigger

    @torch.no_grad()
    def __call__(self, input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """input_ids [1, n] or inputs_embeds [1, n, D] -> the logits [vocab] at the last of the n positions."""
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        n, start = x.shape[1], self.length
        end = start + n
        self._grow(end)
        positions = torch.arange(start, end, device=x.device)[None]
        cos, sin = self.rotary(x, positions)
        cos, sin = cos[:, None], sin[:, None]  # [1, 1, n, head_dim]
        mask = None
        if n > 1:  # each new position sees the cache and the new positions up to itself
            mask = torch.arange(end, device=x.device)[None] <= torch.arange(start, end, device=x.device)[:, None]
        for i, layer in enumerate(self.layers):
            attention = layer.self_attn
            h = layer.input_layernorm(x)
            q = attention.q_proj(h).view(1, n, -1, self.head_dim).transpose(1, 2)
            k = attention.k_proj(h).view(1, n, -1, self.head_dim).transpose(1, 2)
            v = attention.v_proj(h).view(1, n, -1, self.head_dim).transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            keys, values = self.cache[i, 0], self.cache[i, 1]
            keys[:, :, start:end], values[:, :, start:end] = k, v
            out = F.scaled_dot_product_attention(q, keys[:, :, :end], values[:, :, :end], attn_mask=mask,
                                                 scale=self.scale, enable_gqa=self.kv_heads != self.heads)
            x = x + attention.o_proj(out.transpose(1, 2).reshape(1, n, -1))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        self.length = end
        return self.head(self.norm(x[:, -1]))[0]
