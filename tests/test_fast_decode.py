"""The lean decoder gives transformers' logits: prompt then steps, ids or vectors, grouped-query attention,
biased projections, a cache that grows; and it declines what it does not compute."""
import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, Qwen2Config

from s2s.lm.fast_decode import FastDecoder, fast_decoder

SMALL = dict(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             max_position_embeddings=128)


def _model(config):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


@pytest.mark.parametrize("config", [
    LlamaConfig(**SMALL),
    LlamaConfig(**SMALL, num_key_value_heads=2, rope_theta=500.0),  # grouped-query attention
    Qwen2Config(**SMALL, num_key_value_heads=2),  # biased q, k, v projections
], ids=["llama", "llama-gqa", "qwen2"])
@pytest.mark.parametrize("capacity", [4, 64])
def test_prompt_then_steps_give_the_logits_of_a_full_forward(config, capacity):
    model = _model(config)
    ids = torch.randint(0, 97, (1, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(input_ids=ids, use_cache=False).logits[0]  # [12, vocab]
    decoder = fast_decoder(model, capacity=capacity)
    assert isinstance(decoder, FastDecoder)
    got = [decoder(input_ids=ids[:, :7])]
    got += [decoder(input_ids=ids[:, i:i + 1]) for i in range(7, 12)]
    assert torch.allclose(torch.stack(got), expected[6:], atol=1e-4)
    decoder.reset()  # a new sequence, from vectors this time
    with torch.no_grad():
        vectors = model.get_input_embeddings()(ids[:, :5])
    assert torch.allclose(decoder(inputs_embeds=vectors), expected[4], atol=1e-4)


def test_other_layouts_are_declined():
    assert fast_decoder(_model(GPT2Config(vocab_size=50, n_embd=32, n_layer=1, n_head=2))) is None
    assert fast_decoder(_model(LlamaConfig(**SMALL, hidden_act="gelu"))) is None
    assert fast_decoder(object()) is None


def test_drafted_positions_give_their_logits_and_a_rejected_draft_is_forgotten():
    """Speculation feeds several ids and keeps the logits after each (`keep`); `truncate` drops the ones
    rejected, and the next id fed sees only what was kept."""
    model = _model(LlamaConfig(**SMALL))
    ids = torch.randint(0, 97, (1, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(input_ids=ids, use_cache=False).logits[0]
    decoder = fast_decoder(model, capacity=8)
    decoder(input_ids=ids[:, :6])
    wrong = (ids[:, 7:10] + 1) % 97
    drafted = decoder(input_ids=torch.cat([ids[:, 6:7], wrong], dim=1), keep=4)  # id 6 and a draft of 3
    assert drafted.shape == (4, 97) and torch.allclose(drafted[0], expected[6], atol=1e-4)
    decoder.truncate(7)  # the whole draft was wrong
    assert decoder.length == 7
    got = decoder(input_ids=ids[:, 7:11], keep=4)  # the right ids this time
    assert torch.allclose(got, expected[7:11], atol=1e-4)
    with pytest.raises(ValueError, match="cannot truncate"):
        decoder.truncate(12)


def test_weights_saved_in_half_precision_run_packed_in_float16_with_the_same_logits():
    """A model whose weights are all float16 values (saved with --half, as the shipped one is) gets fbgemm's
    float16 products: the same logits from half the bytes. Others keep float32 products."""
    model = _model(LlamaConfig(**SMALL))
    assert fast_decoder(model).layers[0].qkv.packed is None  # float32 weights: nothing may be rounded
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())
    ids = torch.randint(0, 97, (1, 9), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model(input_ids=ids, use_cache=False).logits[0]
    decoder = fast_decoder(model)
    projections = [p for layer in decoder.layers for p in (layer.qkv, layer.o_proj, layer.gate_up, layer.down_proj)]
    assert all(p.packed is not None for p in projections + [decoder.head_projection])
    got = [decoder(input_ids=ids[:, :5])] + [decoder(input_ids=ids[:, i:i + 1]) for i in range(5, 9)]
    assert torch.allclose(torch.stack(got), expected[4:], atol=1e-4)
