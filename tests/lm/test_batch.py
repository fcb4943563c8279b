"""Batched generation: every row writes the reply it writes alone, whatever else shares its forward."""
import pytest
import torch
from tiny_models import TINY_LLAMA, logit_bias, question, speak_nudge

from s2s.lm.batch import BatchedForward, generate_batch
from s2s.lm.formats import FORMATS
from s2s.lm.generate import build_prompt, generate
from s2s.lm.model import SpeechReasoningLM

CAPS = {"max_thought_tokens": 12, "max_reply_tokens": 8, "max_speech_frames": 5}


@pytest.mark.parametrize("temperature", [0, 1.0])
@pytest.mark.parametrize("format_name", list(FORMATS))
def test_each_row_of_a_batch_is_the_reply_it_writes_alone(lms, format_name, temperature):
    """Prompts of different lengths (so rows are padded differently every step) and a seed per row."""
    lm = lms[format_name]
    prompts = [build_prompt(lm.format, question_codes=question(seed, frames=frames))
               for seed, frames in ((1, 4), (2, 9), (3, 6))]
    seeds = [5, 6, 7]
    with logit_bias(lm, speak_nudge(lm.vocab, format_name)):
        alone = [generate(lm, prompt, temperature=temperature, seed=seed, fast=False, speculate=0, **CAPS)
                 for prompt, seed in zip(prompts, seeds)]
        together = generate_batch(lm, prompts, seeds=seeds, temperature=temperature, **CAPS)
    assert [reply.ids.tolist() for reply in together] == [reply.ids.tolist() for reply in alone]
    assert [reply.thought for reply in together] == [reply.thought for reply in alone]
    assert all(reply.forwards >= 1 for reply in together)


def test_samples_of_one_prompt_differ_by_seed_and_a_row_can_end_first(lms):
    lm = lms["think_then_speak"]
    prompt = build_prompt(lm.format, question_codes=question(1))
    replies = generate_batch(lm, [prompt] * 4, temperature=1.0, **CAPS)
    assert len({tuple(reply.ids.tolist()) for reply in replies}) > 1
    lengths = [len(reply.generated_ids) for reply in replies]
    assert len(set(lengths)) > 1  # rows ended at different steps, and the others went on


def test_batch_arguments_are_checked_in_plain_words(lm):
    prompt = build_prompt(lm.format, question_codes=question(1))
    with pytest.raises(ValueError, match="non-empty list of prompt ids"):
        generate_batch(lm, [])
    with pytest.raises(ValueError, match="one heard question and one seed per prompt"):
        generate_batch(lm, [prompt, prompt], seeds=[1])
    with pytest.raises(ValueError, match="must end with the <think>"):
        generate_batch(lm, [prompt[:-1]])


def test_batched_forward_gives_each_row_the_logits_of_its_own_sequence(codec_dir, tokenizer_dir):
    """Rows fed different numbers of ids each step (one none at all) against each row's whole sequence at
    once. Weights drawn large, so that a wrong position or a padded slot attended to shows in the logits."""
    torch.manual_seed(0)
    config = {**TINY_LLAMA, "initializer_range": 0.5}
    lm = SpeechReasoningLM(backbone_config=config, tokenizer=tokenizer_dir, codec=codec_dir).eval()
    embed = lm.backbone.get_input_embeddings()
    steps = [[[1, 2, 3, 4, 5, 6, 7], [8, 9], [10, 11, 12, 13]], [[14], [15, 16, 17], []], [[18, 19], [20], [21]]]
    forward, rows = BatchedForward(lm.backbone, 3), [[], [], []]
    with torch.no_grad():
        for step in steps:
            logits = forward([embed(torch.tensor(ids, dtype=torch.long)) for ids in step])
            for row, ids in enumerate(step):
                rows[row] += ids
                if not ids:
                    assert logits[row] is None
                    continue
                whole = lm.backbone(input_ids=torch.tensor([rows[row]])).logits[0, -1]
                assert torch.allclose(logits[row], whole, atol=1e-4), (step, row)
