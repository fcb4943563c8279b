"""A lean KV-cached forward for llama-family backbones: the same weights and the same logits as transformers'.

Generation runs the backbone once per new id. For a small model on a CPU,
transformers' forward spends most of that step on its generality (cache
objects, mask building, keyword plumbing, output dataclasses), not on the
arithmetic, and time to first audio is a thought's worth of such steps.
`FastDecoder` runs the backbone's own weights and modules (its norms,
projections, rotary embedding and output layer, so any checkpoint works)
with a preallocated key/value cache and one attention call per layer. The
q, k and v projections, and gate and up, are stacked into one matrix product
each: a copy of those weights, made once and kept on the backbone until a
weight changes. A model saved in half precision (every weight a float16
value, as the shipped one) runs its products through fbgemm's float16 GEMM:
the same products from half the bytes, since a step at batch 1 mostly waits
for weights to arrive from memory. Views come from split and narrow, not
tensor[...] indexing, whose Python argument parsing costs more than the view.
Llama, Qwen2 and Mistral (SmolLM2 and Qwen2.5 included) share this layout;
`fast_decoder` returns None for anything else, and the caller falls back to
transformers' forward. tests/test_fast_decode.py holds it to transformers'
logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SUPPORTED = ("llama", "qwen2", "mistral")


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


def _rotation(head_dim: int) -> torch.Tensor:
    """R with x @ R == transformers' rotate_half(x) = cat(-x[d/2:], x[:d/2]): one matrix product, not four ops."""
    half = head_dim // 2
    rotation = torch.zeros(head_dim, head_dim)
    rotation[torch.arange(half) + half, torch.arange(half)] = -1.0
    rotation[torch.arange(half), torch.arange(half) + half] = 1.0
    return rotation


def _fused(linears) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weights (and biases) of several projections of the same input, stacked into one."""
    weight = torch.cat([linear.weight for linear in linears]).detach()
    biases = [linear.bias for linear in linears]
    if all(b is None for b in biases):
        return weight, None
    return weight, torch.cat([b if b is not None else torch.zeros(linear.out_features, device=weight.device)
                              for b, linear in zip(biases, linears)]).detach()


def _eps(norm) -> float:
    return getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6))


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm in five small ops, where F.rms_norm takes longer on a CPU at batch 1 (it casts and checks)."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _fp16_linear():
    """fbgemm's float16 GEMM as the C++ function itself: calling it through torch.ops first walks the arguments
    in Python looking for fake script objects (for tracing), which costs more than the product at this size."""
    packet = torch.ops.quantized.linear_dynamic_fp16
    return getattr(packet.default, "_op", packet)


class _Projection:
    """x -> x W^T + b. Where every weight is a float16 value (a model saved in half precision, as the shipped
    one is), the matrix is packed in float16 for fbgemm's GEMM, which accumulates in float32: the same
    products from half the bytes, and a batch-1 step on a CPU mostly waits for the weights to arrive from
    memory (35-40 % less time a product here). Anything else runs as F.linear."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        self.weight, self.bias, self.packed = weight, bias, None
        if weight.device.type == "cpu" and weight.dtype == torch.float32 and torch.equal(weight, weight.half().float()):
            try:
                self.packed, self.product = torch.ops.quantized.linear_prepack_fp16(weight, bias), _fp16_linear()
            except (RuntimeError, AttributeError, NotImplementedError):  # no fbgemm on this build or CPU
                self.packed = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed is not None:
            return self.product(x, self.packed)
        return F.linear(x, self.weight, self.bias)


class _LayerWeights:
    """One layer's weights as the decoder uses them: q, k and v stacked, gate and up stacked."""

    def __init__(self, layer):
        attention, mlp = layer.self_attn, layer.mlp
        self.attn_norm, self.mlp_norm = layer.input_layernorm.weight, layer.post_attention_layernorm.weight
        self.attn_eps, self.mlp_eps = _eps(layer.input_layernorm), _eps(layer.post_attention_layernorm)
        self.qkv = _Projection(*_fused([attention.q_proj, attention.k_proj, attention.v_proj]))
        self.gate_up = _Projection(*_fused([mlp.gate_proj, mlp.up_proj]))
        self.o_proj = _Projection(attention.o_proj.weight.detach(), _detached(attention.o_proj.bias))
        self.down_proj = _Projection(mlp.down_proj.weight.detach(), _detached(mlp.down_proj.bias))


def _detached(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.detach()


def _layer_weights(backbone) -> tuple[list[_LayerWeights], _Projection]:
    """The stacked weights of every layer, and the output layer's projection, made once and kept on the
    backbone until any weight changes (training steps bump a parameter's version), so a reply does not pay
    for stacking or packing them."""
    key = tuple((p.data_ptr(), p._version) for p in backbone.parameters())
    kept = getattr(backbone, "_s2s_fast_weights", None)
    if kept is None or kept[0] != key:
        with torch.no_grad():
            head = backbone.lm_head
            kept = (key, [_LayerWeights(layer) for layer in backbone.model.layers],
                    _Projection(head.weight.detach(), _detached(head.bias)))
        backbone._s2s_fast_weights = kept
    return kept[1], kept[2]


class FastDecoder:
    """Feed ids (or input vectors) in order; each call returns the logits [vocab] after its last position.

    One decoder holds one sequence: make a new one (or `reset`) for the next.
    """

    def __init__(self, backbone, capacity: int = 512):
        config, inner = backbone.config, backbone.model
        (self.layers, self.head_projection), self.rotary = _layer_weights(backbone), inner.rotary_emb
        self.norm_weight, self.norm_eps = inner.norm.weight, _eps(inner.norm)
        self.embed_tokens, self.head = inner.embed_tokens, backbone.lm_head
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.scale = inner.layers[0].self_attn.scaling
        weight = self.head.weight
        self.rotation = _rotation(self.head_dim).to(weight)
        shape = (len(self.layers), 2, 1, self.kv_heads, max(capacity, 1), self.head_dim)
        self.cache = torch.empty(shape, dtype=weight.dtype, device=weight.device)
        self.cos = self.sin = None
        self.length = 0
        self.keys, self.values = self.cache[:, 0].unbind(0), self.cache[:, 1].unbind(0)  # a view per layer
        self._grow(max(capacity, 1))

    def reset(self) -> None:
        self.length = 0

    def truncate(self, length: int) -> None:
        """Forget every position from `length` on (drafted ids that speculative decoding rejected)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot truncate a decoder of {self.length} positions to {length}")
        self.length = length

    def _grow(self, needed: int) -> None:
        """Room for `needed` positions: the key/value cache, and the rotary cos/sin of every position."""
        if needed > self.cache.shape[4]:
            bigger = self.cache.new_empty((*self.cache.shape[:4], max(needed, 2 * self.cache.shape[4]),
                                           self.head_dim))
            bigger[:, :, :, :, : self.length] = self.cache[:, :, :, :, : self.length]
            self.cache = bigger
            self.keys, self.values = self.cache[:, 0].unbind(0), self.cache[:, 1].unbind(0)
        if self.cos is None or self.cos.shape[0] < self.cache.shape[4]:
            positions = torch.arange(self.cache.shape[4], device=self.cache.device)[None]
            with torch.no_grad():
                cos, sin = self.rotary(self.cache[0, 0, :, 0, :1], positions)  # the module's own rope variant
            self.cos, self.sin = cos[0, :, None], sin[0, :, None]  # [positions, 1, head_dim]

    @torch.no_grad()
    def __call__(self, input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None,
                 keep: int | None = None) -> torch.Tensor:
        """input_ids [1, n] or inputs_embeds [1, n, D] -> the logits [vocab] at the last of the n positions,
        or with `keep`, the logits [keep, vocab] at the last `keep` positions (to verify drafted ids)."""
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        n, start = x.shape[1], self.length
        end = start + n
        self._grow(end)
        cos, sin = self.cos.narrow(0, start, n), self.sin.narrow(0, start, n)  # [n, 1, head_dim]
        mask = None
        if n > 1:  # each new position sees the cache and the new positions up to itself
            mask = torch.arange(end, device=x.device)[None] <= torch.arange(start, end, device=x.device)[:, None]
        heads, kv_heads = self.heads, self.kv_heads
        # split and narrow rather than tensor[...] indexing: at batch 1 Python's index parsing costs more than
        # the views it makes.
        for layer, keys, values in zip(self.layers, self.keys, self.values):
            h = _rms_norm(x, layer.attn_norm, layer.attn_eps)
            qk, v = layer.qkv(h).view(1, n, heads + 2 * kv_heads, self.head_dim).split([heads + kv_heads, kv_heads], 2)
            qk = torch.addcmul(qk * cos, qk @ self.rotation, sin)  # rotary on q and k at once
            q, k = qk.split([heads, kv_heads], 2)
            keys.narrow(2, start, n).copy_(k.transpose(1, 2))
            values.narrow(2, start, n).copy_(v.transpose(1, 2))
            out = F.scaled_dot_product_attention(q.transpose(1, 2), keys.narrow(2, 0, end), values.narrow(2, 0, end),
                                                 attn_mask=mask, scale=self.scale, enable_gqa=kv_heads != heads)
            x = x + layer.o_proj(out.transpose(1, 2).reshape(1, n, -1))
            h = _rms_norm(x, layer.mlp_norm, layer.mlp_eps)
            gate, up = layer.gate_up(h).chunk(2, dim=-1)
            x = x + layer.down_proj(F.silu(gate) * up)
        self.length = end
        last = _rms_norm(x[:, -(keep or 1):], self.norm_weight, self.norm_eps)
        # The output layer runs as its module where it has hooks (tests and benchmarks script the logits so).
        hooked = self.head._forward_hooks or self.head._forward_pre_hooks
        logits = self.head(last) if hooked else self.head_projection(last)  # [1, n, vocab]
        return logits[0] if keep is not None else logits[0, -1]
