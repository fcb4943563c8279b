"""Timeline drawings: one symbol a position, runs shortened on request, the delay grid cell by cell."""
import torch

from s2s.lm.draw import draw, draw_grid, draw_prompt
from s2s.lm.formats import QUESTION_AUDIO, REPLY_TEXT, SPECIAL, SPEECH, THOUGHT, Sequence
from s2s.lm.patterns import DelayPattern
from s2s.lm.vocab import JointVocab

VOCAB = JointVocab(text_vocab_size=20, num_codebooks=2, codebook_size=8)


def sequence(pairs) -> Sequence:
    return Sequence(torch.tensor([i for i, _ in pairs]), torch.tensor([s for _, s in pairs]))


def test_draw_names_specials_text_roles_and_audio_codebooks():
    s = VOCAB.speech_id
    pairs = [(VOCAB.question, SPECIAL), (s(0, 3), QUESTION_AUDIO), (s(1, 5), QUESTION_AUDIO),
             (VOCAB.end_question, SPECIAL), (VOCAB.think, SPECIAL), (4, THOUGHT), (9, THOUGHT),
             (VOCAB.end_think, SPECIAL), (2, REPLY_TEXT), (VOCAB.speak, SPECIAL), (s(0, 1), SPEECH),
             (s(1, 1), SPEECH), (VOCAB.eot, SPECIAL)]
    assert draw(sequence(pairs), VOCAB) == (
        "<question> Q0 Q1 </question> <think> t t </think> r <speak> S0 S1 <eot>")


def test_draw_shortens_long_runs_and_shows_ids_that_do_not_fit_their_label():
    pairs = [(VOCAB.think, SPECIAL)] + [(1, THOUGHT)] * 5 + [(VOCAB.end_think, SPECIAL), (VOCAB.eot, SPEECH)]
    assert draw(sequence(pairs), VOCAB, max_run=2) == f"<think> t t …+3 </think> ?{VOCAB.eot}"


def test_draw_prompt_labels_text_ids_as_question_text_and_the_rest_as_markers():
    spoken = torch.tensor([VOCAB.question, VOCAB.heard, VOCAB.heard, VOCAB.end_question, VOCAB.think])
    written = torch.tensor([VOCAB.text_question, 3, 19, 0, VOCAB.end_question, VOCAB.think])
    assert draw_prompt(spoken, VOCAB) == "<question> <heard> <heard> </question> <think>"
    assert draw_prompt(written, VOCAB) == "<text_question> q q q </question> <think>"
    assert draw_prompt(torch.tensor([VOCAB.speech_id(0, 1)]), VOCAB) == f"?{VOCAB.speech_id(0, 1)}"  # not a prompt id


def test_draw_grid_shows_the_delay():
    codes = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert draw_grid(DelayPattern(VOCAB).build(codes), VOCAB) == (
        "step 0 1 2 3\n"
        "k0   1 2 3 ·\n"
        "k1   · 4 5 6")


def test_draw_shows_heard_segments_as_h():
    from s2s.lm.formats import ThinkThenSpeak, Turn

    fmt = ThinkThenSpeak(VOCAB)
    turn = Turn(heard_length=3, thought_ids=[1], reply_ids=[2], reply_codes=torch.zeros(2, 1, dtype=torch.long))
    assert draw(fmt.build(turn), VOCAB).startswith("<question> H H H </question> <think>")
