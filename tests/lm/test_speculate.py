"""Drafts for speculative decoding: the phrase table (counts, pruning, files), prompt lookup, the draft history."""
import gzip
import random
from types import SimpleNamespace

import pytest
import torch

from s2s.lm.formats import Turn
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


def word_timed_rows():
    """Three word_timed replies: the word "a b" (text ids 1, 2) said in 2 frames twice the same way and once
    otherwise, and "c" (id 3) in 1 frame, once only."""
    from s2s.lm.formats import WordTimed
    from s2s.lm.vocab import JointVocab

    vocab = JointVocab(text_vocab_size=10, num_codebooks=2, codebook_size=8, durations=4)
    fmt = WordTimed(vocab)

    def row(codes, alignment, reply):
        return fmt.build(Turn(question_text_ids=[5], thought_ids=[6], reply_ids=reply,
                              reply_codes=torch.tensor(codes), reply_alignment=alignment)).ids.tolist()

    usual = [[4, 5], [6, 7]]  # [K, F]: codebook 0 says 4 then 5, codebook 1 says 6 then 7
    rows = [row(usual, [(2, 2)], [1, 2]), row(usual, [(2, 2)], [1, 2]), row([[4, 0], [1, 7]], [(2, 2)], [1, 2]),
            row([[3], [3]], [(1, 1)], [3])]
    return vocab, rows


def test_word_frames_draft_the_length_and_codes_the_corpus_said_a_word_with():
    from s2s.lm.speculate import WordFrames

    vocab, rows = word_timed_rows()
    frames = WordFrames.from_rows(rows, vocab, min_count=2)
    assert frames.durations == {(1, 2): 2} and list(frames.codes) == [((1, 2), 2)]  # "c" was seen once only
    ids = lambda k, c: vocab.speech_id(k, c)  # noqa: E731
    # Right after the word: its usual duration, then its frames (codebook by codebook, the majority code).
    assert frames.draft(vocab, (1, 2), None, 0, 0, 8) == [vocab.duration_id(2), ids(0, 4), ids(1, 6), ids(0, 5),
                                                           ids(1, 7)]
    assert frames.draft(vocab, (1, 2), 2, 1, 1, 8) == [ids(1, 7)]  # from the middle, to the word's end
    assert frames.draft(vocab, (1, 2), None, 0, 0, 2) == [vocab.duration_id(2), ids(0, 4)]  # at most max_draft
    assert frames.draft(vocab, (1, 2), 3, 0, 0, 8) == []  # never said in 3 frames
    assert frames.draft(vocab, (3,), None, 0, 0, 8) == []
    assert WordFrames.from_rows(rows, vocab, min_count=1).durations[(3,)] == 1


def test_word_frames_count_a_row_cut_short_up_to_its_last_whole_frame():
    """A row cut inside a word's frames still says the word's length; its codes are drafted up to the first
    frame no row said whole, and a chunk cut before any frame still counts its length (the same walk as the
    word decoder's `word_occurrences`, which keeps such a chunk only when asked)."""
    from s2s.lm.speculate import WordFrames
    from s2s.lm.word_decoder import word_occurrences

    vocab, rows = word_timed_rows()
    cut = rows[0][: rows[0].index(vocab.duration_id(2)) + 1 + vocab.num_codebooks + 1]  # a frame and one code
    frames = WordFrames.from_rows([cut], vocab, min_count=1)
    assert frames.durations == {(1, 2): 2} and frames.codes == {((1, 2), 2): [[4, 6]]}
    assert frames.draft(vocab, (1, 2), None, 0, 0, 8) == [vocab.duration_id(2), vocab.speech_id(0, 4),
                                                           vocab.speech_id(1, 6)]
    no_frame = rows[0][: rows[0].index(vocab.duration_id(2)) + 1]
    assert WordFrames.from_rows([no_frame], vocab, min_count=1).durations == {(1, 2): 2}
    assert word_occurrences([no_frame], vocab) == []
    [kept] = word_occurrences([no_frame], vocab, keep_empty=True)
    assert (kept["word"], kept["duration"], kept["codes"]) == ((1, 2), 2, [])


def test_word_frames_files_round_trip_and_refuse_other_files(tmp_path):
    from s2s.lm.speculate import WordFrames

    vocab, rows = word_timed_rows()
    frames = WordFrames.from_rows(rows, vocab, min_count=1)
    again = WordFrames.load(frames.save(tmp_path / "speech_drafts.json.gz"))
    assert (again.durations, again.codes, again.num_codebooks) == (frames.durations, frames.codes, 2)
    with pytest.raises(FileExistsError):
        frames.save(tmp_path / "speech_drafts.json.gz")
    (tmp_path / "bad.json.gz").write_bytes(gzip.compress(b'{"durations": 3}'))
    with pytest.raises(ValueError, match="not a speech draft table"):
        WordFrames.load(tmp_path / "bad.json.gz")
