"""A scripted model writes exactly its script, in every format, with every real forward run."""
import pytest
import torch
from tiny_models import question

from s2s.lm.formats import FORMATS
from s2s.lm.generate import build_prompt, generate
from s2s.lm.scripted import ScriptedModel, reply_script


@pytest.mark.parametrize("format_name", list(FORMATS))
def test_greedy_generation_writes_the_script_and_counts_the_ids_fed_back(lms, format_name):
    lm = lms[format_name]
    thought = lm.tokenizer.encode("12 × 3 = 36.", add_special_tokens=False)
    reply = lm.tokenizer.encode("Thirty-six.", add_special_tokens=False)
    script = reply_script(lm, thought, reply, frames=3, seed=0)  # no word past max_word_frames
    scripted = ScriptedModel(lm)
    try:
        scripted.script(script)
        written = generate(lm, build_prompt(lm.format, question_codes=question(1)), temperature=0, speculate=0,
                           calculator=False)
    finally:
        scripted.remove()
    assert written.generated_ids.tolist() == script
    assert scripted.fed == script[: len(scripted.fed)]
    assert len(scripted.fed) >= len(script) - 2  # the ids after the last forward are never fed
    assert written.reply_codes.shape[-1] == 3
    assert written.forwards > 1  # the model really ran


def test_a_script_the_rules_refuse_stops_with_a_plain_error(lms):
    lm = lms["think_then_speak"]
    scripted = ScriptedModel(lm)
    try:
        scripted.script([lm.vocab.speech_id(1, 0)] * 3)  # codebook 1 inside the thought: never allowed
        with pytest.raises(RuntimeError, match="refused a scripted id"):
            generate(lm, build_prompt(lm.format, question_codes=question(1)), temperature=0, speculate=0)
    finally:
        scripted.remove()
    after = generate(lm, build_prompt(lm.format, question_codes=question(1)), temperature=0, max_thought_tokens=3,
                     max_reply_tokens=2, max_speech_frames=2)
    assert torch.is_tensor(after.ids)  # the hooks are off again
