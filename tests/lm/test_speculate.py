"""Drafts for speculative decoding: the phrase table (counts, pruning, files), prompt lookup, the draft history."""
import gzip
import random
from types import SimpleNamespace

import pytest
import torch

from s2s.lm.speculate import BREAK, Drafter, PhraseTable, _backoff, lookup_context


class Vocab:
    """Text ids 0..99, `heard` 100, anything else not text."""

    heard = 100

    @staticmethod
    def is_text(token: int) -> bool:
        return 0 <= token < 100


def test_the_table_keeps_the_next_id_the_corpus_agreed_on():
    thought = [1, 2, 3, 4, 5]
    pieces = [[thought, [7, 8]]] * 3 + [[[1, 2, 3, 9], [7, 8]]]  # after 1 2 3: 4 three times, 9 once
    table = PhraseTable.from_texts(pieces, 100, order=4, min_count=3, min_share=0.5)
    assert table.next_id([0, 1, 2, 3]) == 4
    assert table.next_id([BREAK, 7]) == 8  # the reply's first id follows the break where </think> stood
    assert table.next_id([6, 6, 5]) is None  # nothing known ends in 6 5
    assert table.next_id([4, 5]) is None  # the thought's end: a BREAK followed, which is never drafted
    rare = PhraseTable.from_texts(pieces, 100, order=4, min_count=4, min_share=0.5)
    assert rare.next_id([1, 2, 3]) is None  # 4 came three times, fewer than min_count
    split = PhraseTable.from_texts([[[1, 2, 4]], [[1, 2, 5]]] * 3, 100, order=3, min_count=3, min_share=0.6)
    assert split.next_id([1, 2]) is None  # 4 and 5 each half the time: below min_share


def test_pruning_never_changes_what_the_table_answers():
    """Contexts whose shorter suffix already gives their id are dropped; every lookup answers as before."""
    rng = random.Random(0)
    pieces = [[[rng.choice([1, 2, 3, 4]) for _ in range(rng.randint(3, 12))]] for _ in range(300)]
    table = PhraseTable.from_texts(pieces, 100, order=5, min_count=2, min_share=0.3)
    full = PhraseTable.from_texts(pieces, 100, order=5, min_count=2, min_share=0.3, prune=False)
    assert len(table) < len(full)
    for _ in range(2000):
        history = [rng.choice([BREAK, 1, 2, 3, 4]) for _ in range(rng.randint(2, 8))]
        assert table.next_id(history) == full.next_id(history)


def test_the_table_survives_its_file_and_a_bad_file_is_named(tmp_path):
    table = PhraseTable.from_texts([[[1, 2, 3, 4]]] * 3, 100, order=3)
    path = table.save(tmp_path / "phrases.json.gz")
    again = PhraseTable.load(path)
    assert (again.order, again.text_vocab_size, again.next_ids) == (3, 100, table.next_ids)
    with pytest.raises(FileExistsError, match="overwrite"):
        table.save(path)
    table.save(path, overwrite=True)
    (tmp_path / "bad.json.gz").write_bytes(gzip.compress(b'{"order": 3}'))
    for bad in (tmp_path / "bad.json.gz", tmp_path / "missing.json.gz"):
        with pytest.raises(ValueError, match="s2s lm phrases") as error:
            PhraseTable.load(bad)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="order >= 2"):
        PhraseTable(1, 100, {})


def test_prompt_lookup_drafts_what_followed_the_latest_match_and_stops_at_breaks():
    vocab = Vocab()
    drafter = Drafter([BREAK, 10, 11, 12, 13, BREAK, 20, 10, 11, 14, BREAK], vocab, max_draft=3)
    drafter.append(99)
    assert drafter.draft() == []  # 99 never came before
    drafter = Drafter([BREAK, 10, 11, 12, 13, BREAK, 20, 10, 11, 14, 15, BREAK], vocab, max_draft=3)
    for token in (30, 10, 11):
        drafter.append(token)
    assert drafter.draft() == [14, 15]  # the latest "10 11" came before 14 15, then a break
    drafter.append(12)  # "11 12" came once, long ago
    assert drafter.draft() == [13]
    drafter.append(200)  # a non-text id: a break; no lookup runs across it
    assert drafter.history[-1] == BREAK and drafter.draft() == []


def test_phrases_draft_first_and_chain_their_ids():
    vocab = Vocab()
    table = PhraseTable.from_texts([[[1, 2, 3, 4, 5, 6]]] * 3, 100, order=3)
    drafter = Drafter([BREAK, 1, 2], vocab, phrases=table, max_draft=3)
    assert drafter.draft() == [3, 4, 5]  # each drafted id extends the context of the next
    drafter = Drafter([BREAK, 7, 8, 9, 7, 8], vocab, phrases=table, max_draft=3)
    assert drafter.draft() == [9, 7, 8]  # the table knows nothing here: prompt lookup


def test_the_prompt_becomes_text_ids_with_the_heard_ids_filled_in():
    vocab = Vocab()
    heard = SimpleNamespace(token_ids=torch.tensor([[5, 6], [7, 8]]))
    prompt = torch.tensor([101, 100, 100, 102, 3, 103])
    assert lookup_context(prompt, vocab, heard) == [BREAK, 5, 7, BREAK, 3, BREAK]
    assert lookup_context(torch.tensor([101, 4]), vocab) == [BREAK, 4]


def test_backoff_takes_the_longest_known_suffix():
    table = {(1, 2): 7, (0, 1, 2): 8}
    assert _backoff(table, (0, 1, 2)) == 8 and _backoff(table, (5, 1, 2)) == 7 and _backoff(table, (2,)) is None
