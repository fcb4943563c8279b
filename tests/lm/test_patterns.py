"""Codebook patterns: flat and delay layouts, exact round trips, faults found or skipped."""
import pytest
import torch

from s2s.lm.patterns import PATTERNS, DelayPattern, FlatPattern
from s2s.lm.vocab import JointVocab

VOCAB = JointVocab(text_vocab_size=7, num_codebooks=3, codebook_size=11)


def random_codes(frames: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 11, (3, frames), generator=torch.Generator().manual_seed(seed))


def test_registry_names_match_the_patterns():
    assert {name: cls(VOCAB).name for name, cls in PATTERNS.items()} == {"flat": "flat", "delay": "delay"}


def test_flat_is_frame_major_codebook_0_first():
    codes = torch.tensor([[1, 2], [3, 4], [5, 6]])
    ids = FlatPattern(VOCAB).build(codes)
    sid = VOCAB.speech_id
    assert ids.tolist() == [sid(0, 1), sid(1, 3), sid(2, 5), sid(0, 2), sid(1, 4), sid(2, 6)]


@pytest.mark.parametrize("frames", [0, 1, 2, 9])
@pytest.mark.parametrize("name", ["flat", "delay"])
def test_round_trip_is_exact_and_steps_for_matches(name, frames):
    pattern = PATTERNS[name](VOCAB)
    for seed in range(3):
        codes = random_codes(frames, seed)
        steps = pattern.build(codes)
        assert steps.shape[-1] == pattern.steps_for(frames)
        assert torch.equal(pattern.revert(steps), codes)
    assert FlatPattern(VOCAB).steps_for(5) == 15 and DelayPattern(VOCAB).steps_for(5) == 7


def test_delay_puts_codebook_k_of_frame_f_at_step_f_plus_k_and_pads_the_rest():
    codes = random_codes(4, seed=1)
    steps = DelayPattern(VOCAB).build(codes)
    assert steps.shape == (3, 4 + 3 - 1)
    for k in range(3):
        for step in range(steps.shape[1]):
            frame = step - k
            expected = VOCAB.speech_id(k, int(codes[k, frame])) if 0 <= frame < 4 else VOCAB.speech_pad
            assert steps[k, step] == expected, (k, step)


def test_flat_revert_refuses_partial_frames_and_wrong_codebook_order():
    flat = FlatPattern(VOCAB)
    ids = flat.build(random_codes(3, seed=2))
    with pytest.raises(ValueError, match="partial frame"):
        flat.revert(ids[:-1])
    swapped = ids.clone()
    swapped[[3, 4]] = swapped[[4, 3]]
    with pytest.raises(ValueError, match="position 3 should hold codebook 0"):
        flat.revert(swapped)
    with pytest.raises(ValueError, match="<think>"):
        flat.revert(torch.cat([ids[:3], torch.tensor([VOCAB.think]), ids[4:]]))


def test_flat_revert_not_strict_keeps_whole_frames_before_the_first_fault():
    flat = FlatPattern(VOCAB)
    codes = random_codes(4, seed=3)
    ids = flat.build(codes)
    assert torch.equal(flat.revert(ids[:-1], strict=False), codes[:, :3])
    broken = ids.clone()
    broken[7] = VOCAB.speech_id(0, 0)  # frame 2 holds codebook 0 where codebook 1 belongs
    assert torch.equal(flat.revert(broken, strict=False), codes[:, :2])


def test_delay_revert_refuses_misplaced_cells():
    delay = DelayPattern(VOCAB)
    steps = delay.build(random_codes(3, seed=4))
    moved = steps.clone()
    moved[1, 0] = moved[1, 1]  # a code where codebook 1 must be padded
    with pytest.raises(ValueError, match="step 0 of codebook 1 should be <speech_pad>"):
        delay.revert(moved)
    wrong = steps.clone()
    wrong[2, 3] = VOCAB.speech_id(0, 0)
    with pytest.raises(ValueError, match="step 3 of codebook 2 should hold frame 1"):
        delay.revert(wrong)
    with pytest.raises(ValueError, match="cannot hold a frame"):
        delay.revert(steps[:, :2])


def test_delay_revert_not_strict_drops_frames_whose_last_codebooks_are_missing():
    delay = DelayPattern(VOCAB)
    codes = random_codes(5, seed=5)
    steps = delay.build(codes)
    assert torch.equal(delay.revert(steps[:, :-1], strict=False), codes[:, :4])
    assert delay.revert(steps[:, :2], strict=False).shape == (3, 0)


def test_codes_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"codes \[K=3, F\]"):
        FlatPattern(VOCAB).build(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        DelayPattern(VOCAB).build(torch.zeros(3, 4))
