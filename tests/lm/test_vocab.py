"""JointVocab: disjoint blocks that cover every id, speech ids that name their codebook, saved and loaded."""
import json

import pytest
import torch

from s2s.lm.vocab import SPECIAL_TOKENS, JointVocab

VOCAB = JointVocab(text_vocab_size=10, num_codebooks=3, codebook_size=5)


def test_blocks_are_disjoint_and_cover_the_size_in_layout_order():
    blocks = [VOCAB.text_range, VOCAB.special_range] + [VOCAB.speech_range(k) for k in range(3)]
    ids = [i for block in blocks for i in block]
    assert ids == list(range(VOCAB.size))
    assert VOCAB.size == 10 + len(SPECIAL_TOKENS) + 3 * 5
    assert list(VOCAB.speech_range()) == ids[10 + len(SPECIAL_TOKENS):]


def test_special_tokens_have_distinct_ids_by_name_and_by_attribute():
    ids = [VOCAB.special(token) for token in SPECIAL_TOKENS]
    assert ids == list(VOCAB.special_range)
    assert [VOCAB.special_name(i) for i in ids] == list(SPECIAL_TOKENS)
    assert (VOCAB.think, VOCAB.end_think) == (VOCAB.special("<think>"), VOCAB.special("</think>"))
    assert (VOCAB.eot, VOCAB.speech_pad, VOCAB.reply) == (11, VOCAB.special("<speech_pad>"), VOCAB.special("<reply>"))
    with pytest.raises(KeyError, match="special tokens are"):
        VOCAB.special("<nope>")


def test_speech_id_places_code_c_of_codebook_k_after_text_and_specials():
    first_speech = 10 + len(SPECIAL_TOKENS)
    assert VOCAB.speech_id(0, 0) == first_speech
    assert VOCAB.speech_id(2, 4) == first_speech + 2 * 5 + 4 == VOCAB.size - 1
    assert VOCAB.speech_code(VOCAB.speech_id(1, 3)) == (1, 3)


def test_speech_ids_round_trip_as_tensors():
    codes = torch.randint(0, 5, (3, 7), generator=torch.Generator().manual_seed(0))
    ids = VOCAB.speech_id(torch.arange(3)[:, None], codes)
    codebook, code = VOCAB.speech_code(ids)
    assert torch.equal(code, codes)
    assert torch.equal(codebook, torch.arange(3)[:, None].expand(3, 7))
    for k in range(3):
        assert VOCAB.is_speech(ids[k], codebook=k).all() and not VOCAB.is_speech(ids[k], codebook=(k + 1) % 3).any()


def test_masks_agree_with_ranges_for_every_id():
    ids = torch.arange(VOCAB.size)
    assert VOCAB.is_text(ids).tolist() == [i in VOCAB.text_range for i in range(VOCAB.size)]
    assert VOCAB.is_special(ids).tolist() == [i in VOCAB.special_range for i in range(VOCAB.size)]
    assert VOCAB.is_speech(ids, codebook=1).tolist() == [i in VOCAB.speech_range(1) for i in range(VOCAB.size)]
    assert (VOCAB.is_text(ids).long() + VOCAB.is_special(ids).long() + VOCAB.is_speech(ids).long()).eq(1).all()
    assert VOCAB.is_text(3) is True and VOCAB.is_speech(3) is False


def test_out_of_range_arguments_are_refused():
    with pytest.raises(ValueError, match="codes must lie in"):
        VOCAB.speech_id(0, 5)
    with pytest.raises(ValueError, match="codebook must lie in"):
        VOCAB.speech_id(3, 0)
    with pytest.raises(ValueError, match=r"values in \[0, 5\]"):
        VOCAB.speech_id(0, torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="speech ids"):
        VOCAB.speech_code(torch.tensor([VOCAB.think]))
    with pytest.raises(ValueError, match="positive integer num_codebooks"):
        JointVocab(10, 0, 5)


def test_describe_names_each_kind_of_id():
    assert VOCAB.describe(3) == "text 3"
    assert VOCAB.describe(VOCAB.think) == "<think>"
    assert VOCAB.describe(VOCAB.speech_id(2, 1)) == "codebook 2 code 1"
    assert "outside the vocabulary" in VOCAB.describe(VOCAB.size)


def test_saved_vocab_loads_back_and_a_changed_token_list_is_refused():
    data = json.loads(json.dumps(VOCAB.to_dict()))
    assert JointVocab.from_dict(data) == VOCAB
    data["special_tokens"] = data["special_tokens"][:-1]
    with pytest.raises(ValueError, match="ids would not match"):
        JointVocab.from_dict(data)


def test_duration_ids_come_last_and_leave_every_other_id_where_it_was():
    timed = JointVocab(text_vocab_size=10, num_codebooks=3, codebook_size=5, durations=4)
    assert timed.size == VOCAB.size + 4 and list(timed.duration_range) == list(range(VOCAB.size, VOCAB.size + 4))
    assert timed.speech_range() == VOCAB.speech_range() and timed.speech_id(2, 4) == VOCAB.speech_id(2, 4)
    assert timed.duration_id(1) == VOCAB.size and timed.duration_frames(timed.duration_id(4)) == 4
    assert torch.equal(timed.duration_frames(timed.duration_id(torch.tensor([1, 3]))), torch.tensor([1, 3]))
    ids = torch.arange(timed.size)
    kinds = [timed.is_text(ids), timed.is_special(ids), timed.is_speech(ids), timed.is_duration(ids)]
    assert sum(k.long() for k in kinds).eq(1).all() and int(kinds[3].sum()) == 4
    assert timed.describe(timed.duration_id(3)) == "duration 3 frames"
    with pytest.raises(ValueError, match=r"frames must lie in \[1, 4\]"):
        timed.duration_id(5)
    with pytest.raises(ValueError, match="has no durations"):
        VOCAB.duration_id(1)
    with pytest.raises(ValueError, match="speech ids"):
        timed.speech_code(timed.duration_id(1))
    assert JointVocab.from_dict(json.loads(json.dumps(timed.to_dict()))) == timed
    older = {k: v for k, v in VOCAB.to_dict().items() if k != "durations"}  # saved before durations existed
    assert JointVocab.from_dict(older) == VOCAB


def test_a_mask_reads_in_words():
    vocab = JointVocab(text_vocab_size=10, num_codebooks=2, codebook_size=4, durations=3)
    mask = torch.zeros(vocab.size, dtype=torch.bool)
    mask[: vocab.text_vocab_size] = True
    mask[vocab.end_think] = True
    assert vocab.describe_mask(mask) == "all text | </think>"
    mask[:] = False
    mask[vocab.speech_id(0, 1)] = mask[vocab.eot] = True
    mask[vocab.duration_id(1): vocab.duration_id(2) + 1] = True
    assert vocab.describe_mask(mask) == "<eot> | S0 | 2 durations"
