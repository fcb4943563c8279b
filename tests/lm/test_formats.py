"""Sequence formats: exact round trips, segment labels, each format's rule, strict faults, lenient recovery."""
import pytest
import torch

from s2s.lm.draw import draw
from s2s.lm.formats import (
    DURATION,
    FORMATS,
    QUESTION_AUDIO,
    QUESTION_TEXT,
    READ_ALOUD,
    REPLY_TEXT,
    SPECIAL,
    SPEECH,
    STYLE,
    THOUGHT,
    VOICE,
    TextGuided,
    ThinkThenSpeak,
    ThinkWhileSpeaking,
    Turn,
    WordAligned,
    WordTimed,
    WordTimedWhileThinking,
    build_format,
)
from s2s.lm.patterns import FlatPattern
from s2s.lm.vocab import JointVocab

K = 3
VOCAB = JointVocab(text_vocab_size=50, num_codebooks=K, codebook_size=16, durations=4)  # word_timed: words of <= 4

# Small chunk sizes so short turns still cross several chunks; the defaults too.
FORMAT_CASES = {
    "think_then_speak": ThinkThenSpeak(VOCAB),
    "think_while_speaking": ThinkWhileSpeaking(VOCAB, thought_chunk_tokens=3, speech_chunk_frames=2),
    "think_while_speaking_default": ThinkWhileSpeaking(VOCAB),
    "text_guided": TextGuided(VOCAB, offset_tokens=2, text_chunk_tokens=1, speech_chunk_frames=2),
    "text_guided_default": TextGuided(VOCAB),
    "word_aligned": WordAligned(VOCAB),
    "word_timed": WordTimed(VOCAB),  # words of more than 4 frames take two duration ids
    "word_timed_while_thinking": WordTimedWhileThinking(VOCAB, thought_chunk_tokens=3),
}
# (thought ids, reply ids, reply frames): empty texts, one frame, thought longer or shorter than speech, no speech.
SIZES = [(0, 0, 1), (0, 3, 1), (1, 1, 1), (12, 2, 2), (2, 1, 15), (25, 9, 23), (3, 2, 0)]


def make_turn(seed: int, question: str = "audio", voice: bool = False, thought: int = 5, reply: int = 4,
              frames: int = 6, question_len: int = 3) -> Turn:
    g = torch.Generator().manual_seed(seed)

    def text(n):
        return torch.randint(0, VOCAB.text_vocab_size, (n,), generator=g).tolist()

    def codes(n):
        return torch.randint(0, VOCAB.codebook_size, (K, n), generator=g)

    return Turn(question_codes=codes(question_len) if question == "audio" else None,
                question_text_ids=text(question_len) if question == "text" else None,
                thought_ids=text(thought), reply_ids=text(reply), reply_codes=codes(frames),
                voice_codes=codes(2) if voice else None, reply_alignment=even_alignment(reply, frames),
                reply_opening=min(2, reply))  # the first word commits to nothing (word_timed_while_thinking)


def even_alignment(reply: int, frames: int) -> list[tuple[int, int]]:
    """Words of two reply ids (the last maybe one), the frames shared out as evenly as they go."""
    words = max(1, (reply + 1) // 2)
    ids = [min(2, reply - 2 * w) for w in range(words)] if reply else [0]
    share = [frames // words + (w < frames % words) for w in range(words)]
    return list(zip(ids, share))


def check_segments(sequence, turn: Turn) -> None:
    """Each segment holds the right kind of id and, read in order, gives back its part of the turn."""
    ids, segment = sequence.ids, sequence.segment
    assert ids.shape == segment.shape and ids.dtype == segment.dtype == torch.long
    assert VOCAB.is_special(ids[segment == SPECIAL]).all()
    for label, expected in ((THOUGHT, turn.thought_ids), (REPLY_TEXT, turn.reply_ids),
                            (QUESTION_TEXT, turn.question_text_ids or [])):
        assert ids[segment == label].tolist() == expected
    spoken = ids[segment == READ_ALOUD].tolist()  # word_timed reads the reply again, just before its speech
    assert spoken == turn.reply_ids[:len(spoken)] and VOCAB.is_duration(ids[segment == DURATION]).all()
    if spoken:
        assert int(VOCAB.duration_frames(ids[segment == DURATION]).sum()) == turn.reply_codes.shape[1]
    flat = FlatPattern(VOCAB)
    for label, codes in ((SPEECH, turn.reply_codes), (QUESTION_AUDIO, turn.question_codes),
                         (VOICE, turn.voice_codes)):
        audio = ids[segment == label]
        if codes is None:
            assert audio.numel() == 0
            continue
        codebooks, _ = VOCAB.speech_code(audio)
        assert torch.equal(codebooks, torch.arange(audio.numel()) % K)  # 0, 1, .., K-1 repeating
        assert torch.equal(flat.revert(audio), codes)


def test_registry_and_build_format():
    assert set(FORMATS) == {"think_then_speak", "think_while_speaking", "text_guided", "word_aligned", "word_timed",
                            "word_timed_while_thinking"}
    assert all(FORMATS[name](VOCAB).name == name for name in FORMATS)
    assert build_format("text_guided", VOCAB, offset_tokens=7).offset_tokens == 7
    with pytest.raises(ValueError, match="choose one of think_then_speak"):
        build_format("interleaved", VOCAB)
    with pytest.raises(ValueError, match="at least 1"):
        build_format("think_while_speaking", VOCAB, speech_chunk_frames=0)
    assert [FORMATS[name].durations() for name in FORMATS] == [0, 0, 0, 0, 48, 48]
    with pytest.raises(ValueError, match="has 0 duration ids.*max_word_frames=4"):
        WordTimed(JointVocab(50, K, 16), max_word_frames=4)


def test_turn_equality_sees_every_field():
    turn = make_turn(0, voice=True)
    assert turn == make_turn(0, voice=True)
    changed = [make_turn(0), make_turn(0, voice=True, thought=4), make_turn(1, voice=True)]
    trimmed = make_turn(0, voice=True)
    trimmed.reply_codes = trimmed.reply_codes[:, :-1]
    assert all(turn != other for other in changed + [trimmed])
    assert make_turn(0, question="text") != make_turn(0, question="audio")


@pytest.mark.parametrize("sizes", SIZES, ids=str)
@pytest.mark.parametrize("voice", [False, True], ids=["no_voice", "voice"])
@pytest.mark.parametrize("question", ["audio", "text"])
@pytest.mark.parametrize("case", FORMAT_CASES)
def test_build_then_parse_gives_the_same_turn(case, question, voice, sizes):
    fmt = FORMAT_CASES[case]
    thought, reply, frames = sizes
    for seed in range(3):
        turn = make_turn(seed, question, voice, thought, reply, frames)
        sequence = fmt.build(turn)
        check_segments(sequence, turn)
        assert sequence.ids[-1] == VOCAB.eot
        assert fmt.parse(sequence) == turn
        assert fmt.parse(sequence.ids) == turn  # generated ids come without segment labels
        assert fmt.parse(sequence, strict=False) == turn


def test_think_then_speak_layout():
    turn = make_turn(0, voice=True, thought=2, reply=1, frames=1, question_len=1)
    assert draw(ThinkThenSpeak(VOCAB).build(turn), VOCAB) == (
        "<question> Q0 Q1 Q2 </question> <voice> V0 V1 V2 V0 V1 V2 </voice> "
        "<think> t t </think> r <speak> S0 S1 S2 <eot>")
    text_question = make_turn(0, question="text", thought=0, reply=0, frames=1, question_len=2)
    assert draw(ThinkThenSpeak(VOCAB).build(text_question), VOCAB) == (
        "<text_question> q q </question> <think> </think> <speak> S0 S1 S2 <eot>")


def test_think_while_speaking_chunks_follow_the_rule():
    fmt = ThinkWhileSpeaking(VOCAB, thought_chunk_tokens=3, speech_chunk_frames=2)
    f2, f1 = "S0 S1 S2 S0 S1 S2", "S0 S1 S2"
    # Text outlasts speech: after the speech runs out, the last text chunk takes all the text left.
    long_thought = make_turn(0, thought=7, reply=2, frames=3, question_len=0)
    assert draw(fmt.build(long_thought), VOCAB) == (
        f"<question> </question> <think> t t t </think> <speak> {f2} <think> t t t </think> <speak> {f1} "
        "<think> t <reply> r r </think> <eot>")
    # Speech outlasts text: after the text runs out, the last speech chunk takes all the frames left.
    long_speech = make_turn(0, thought=2, reply=0, frames=5, question_len=0)
    assert draw(fmt.build(long_speech), VOCAB) == (
        f"<question> </question> <think> t t <reply> </think> <speak> {f2} {f2} {f1} <eot>")


@pytest.mark.parametrize("thought", [5, 8, 30])  # the text stream (thought, <reply>, 3 reply ids) needs 2+ chunks
def test_think_while_speaking_starts_speech_before_the_thinking_ends(thought):
    sequence = ThinkWhileSpeaking(VOCAB).build(make_turn(0, thought=thought, reply=3, frames=40))
    ids = sequence.ids.tolist()
    first_speech = sequence.segment.tolist().index(SPEECH)
    last_thought = max(i for i, s in enumerate(sequence.segment.tolist()) if s == THOUGHT)
    assert first_speech == ids.index(VOCAB.end_think) + 2  # right after the first chunk and its <speak>
    assert first_speech < len(ids) - 1 - ids[::-1].index(VOCAB.end_think)
    if thought > 8:
        assert first_speech < last_thought


def test_text_guided_layout():
    fmt = TextGuided(VOCAB, offset_tokens=2, text_chunk_tokens=1, speech_chunk_frames=2)
    turn = make_turn(0, thought=1, reply=4, frames=5, question_len=0)
    f2, f1 = "S0 S1 S2 S0 S1 S2", "S0 S1 S2"
    assert draw(fmt.build(turn), VOCAB) == (
        f"<question> </question> <think> t </think> r r {f2} r {f2} r {f1} <eot>")


@pytest.mark.parametrize("offset", [0, 1, 4, 6])
@pytest.mark.parametrize("reply", [2, 5, 12])
def test_text_guided_reply_text_leads_speech_by_the_offset(offset, reply):
    fmt = TextGuided(VOCAB, offset_tokens=offset, text_chunk_tokens=2, speech_chunk_frames=3)
    segment = fmt.build(make_turn(1, thought=4, reply=reply, frames=10)).segment.tolist()
    first_speech = segment.index(SPEECH)
    reply_positions = [i for i, s in enumerate(segment) if s == REPLY_TEXT]
    leading = [i for i in reply_positions if i < first_speech]
    assert len(leading) == min(offset, reply)
    if offset > 0:
        assert first_speech > reply_positions[min(offset, reply) - 1]
    if reply > offset:  # then 3 frames, 2 reply ids, 3 frames ...
        assert first_speech + 3 * K == reply_positions[offset]


def test_word_aligned_puts_each_word_just_before_its_own_frames():
    fmt = WordAligned(VOCAB)
    turn = make_turn(0, thought=1, reply=4, frames=5, question_len=0)
    turn.reply_alignment = [(1, 2), (2, 0), (1, 3)]  # the middle word has no frames: it runs into the next
    f = "S0 S1 S2"
    assert draw(fmt.build(turn), VOCAB) == (
        f"<question> </question> <think> t </think> r {f} {f} r r r {f} {f} {f} <eot>")
    back = fmt.parse(fmt.build(turn))
    assert back == turn and back.reply_alignment == [(1, 2), (3, 3)]  # the same layout, read from its runs


def test_word_aligned_needs_an_alignment_that_covers_the_reply():
    turn = make_turn(1, reply=3, frames=4)
    turn.reply_alignment = None
    with pytest.raises(ValueError, match="no reply_alignment.*align_with"):
        WordAligned(VOCAB).build(turn)
    for bad in ([(3, 3)], [(2, 4)], [(4, 4), (-1, 0)]):
        with pytest.raises(ValueError, match="reply_alignment covers"):
            Turn(question_text_ids=[1], thought_ids=[], reply_ids=[1, 2, 3],
                 reply_codes=torch.zeros(K, 4, dtype=torch.long), reply_alignment=bad)


def test_word_timed_reads_each_word_aloud_with_its_length_then_exactly_its_frames():
    fmt = WordTimed(VOCAB)
    turn = make_turn(0, thought=1, reply=4, frames=7, question_len=0)
    turn.reply_alignment = [(1, 2), (2, 0), (1, 5)]  # the middle word has no frames: it runs into the next
    f = "S0 S1 S2"
    assert draw(fmt.build(turn), VOCAB) == (
        f"<question> </question> <think> t </think> r r r r <speak> w d2 {f} {f} w w w d4 {f} {f} {f} {f} d1 {f} <eot>")
    back = fmt.parse(fmt.build(turn))
    assert back == turn and back.reply_alignment == [(1, 2), (3, 5)]
    ids = fmt.build(turn).ids.tolist()
    speak = ids.index(VOCAB.speak)
    misread = ids[:speak + 1] + [(ids[speak + 1] + 1) % 50] + ids[speak + 2:]
    assert "are not the reply text's" in parse_error(fmt, misread)
    short = ids[:speak + 2] + [VOCAB.duration_id(3)] + ids[speak + 3:]  # says 3 frames, 2 follow
    assert "says 3 frames, 2 follow" in parse_error(fmt, short)
    unread = ids[:ids.index(VOCAB.duration_id(4)) - 3] + [VOCAB.eot]  # speech stopped after the first word
    cut = fmt.parse(torch.tensor(unread))  # a layout of its own: the words after the last frame are not read
    assert torch.equal(cut.reply_codes, turn.reply_codes[:, :2]) and cut.reply_alignment == [(1, 2), (3, 0)]
    assert "position" in parse_error(fmt, unread[:-1] + [ids[speak + 2], VOCAB.eot])  # a word read, unspoken
    lead = Turn(question_text_ids=[1], thought_ids=[], reply_ids=[1], reply_codes=torch.zeros(K, 2, dtype=torch.long),
                reply_alignment=[(0, 2), (1, 0)])
    with pytest.raises(ValueError, match="starts 2 frames before its first word"):
        fmt.build(lead)
    with pytest.raises(ValueError, match="no reply_alignment"):
        fmt.build(Turn(question_text_ids=[1], thought_ids=[], reply_ids=[1],
                       reply_codes=torch.zeros(K, 2, dtype=torch.long)))


def test_a_row_without_speech_ends_where_its_speech_would_begin():
    turn = make_turn(2, thought=2, reply=3, frames=4, question_len=0)
    turn.reply_alignment = [(2, 1), (1, 3)]
    assert draw(ThinkThenSpeak(VOCAB).build_without_speech(turn), VOCAB) == (
        "<question> </question> <think> t t </think> r r r <speak>")
    assert draw(WordAligned(VOCAB).build_without_speech(turn), VOCAB) == (
        "<question> </question> <think> t t </think> r r")  # the first word; its speech would come next
    assert draw(WordTimed(VOCAB).build_without_speech(turn), VOCAB) == (
        "<question> </question> <think> t t </think> r r r <speak>")  # as think-then-speak: reading comes next


@pytest.mark.parametrize("voice", [True, False])
@pytest.mark.parametrize("case", FORMAT_CASES)
def test_style_words_sit_in_the_voice_prompt_before_its_audio(case, voice):
    fmt = FORMAT_CASES[case]
    turn = make_turn(3, voice=voice, question_len=1)
    turn.style_ids = [7, 8]
    sequence = fmt.build(turn)
    ids = sequence.ids.tolist()
    inside = ids[ids.index(VOCAB.voice) + 1: ids.index(VOCAB.end_voice)]
    assert inside[:2] == [7, 8] and len(inside) == 2 + (2 * K if voice else 0)  # the words, then the audio
    assert sequence.ids[sequence.segment == STYLE].tolist() == [7, 8]
    back = fmt.parse(sequence)
    assert back == turn and back.style_ids == [7, 8] and (back.voice_codes is None) == (not voice)
    assert fmt.parse(sequence.ids, strict=False) == turn
    plain = make_turn(3, voice=voice, question_len=1)
    assert plain != turn and fmt.parse(fmt.build(plain)).style_ids is None


# ---------------------------------------------------------------------------------------------- strict faults
def parse_error(fmt, ids, strict=True) -> str:
    with pytest.raises(ValueError) as error:
        fmt.parse(torch.tensor(ids) if isinstance(ids, list) else ids, strict=strict)
    message = str(error.value)
    assert "\n" not in message and message.startswith(fmt.name)
    return message


@pytest.mark.parametrize("case", FORMAT_CASES)
def test_strict_parse_names_the_fault(case):
    fmt = FORMAT_CASES[case]
    ids = fmt.build(make_turn(2, thought=4, reply=2, frames=9)).ids.tolist()
    assert "<eot> at position" in parse_error(fmt, ids[:-1])
    assert "partial frame" in parse_error(fmt, ids[:-2] + ids[-1:])
    assert "follow the <eot>" in parse_error(fmt, ids + [3])
    swapped = list(ids)
    swapped[-3], swapped[-2] = swapped[-2], swapped[-3]  # the last frame's codebooks out of order
    assert "should hold codebook 1" in parse_error(fmt, swapped)
    assert "expected <question> or <text_question> at position 0" in parse_error(fmt, ids[1:])
    assert "outside the vocabulary" in parse_error(fmt, ids[:-1] + [VOCAB.size])


def test_strict_parse_refuses_chunk_sizes_of_another_rule():
    turn = make_turn(3, thought=10, reply=3, frames=12)
    other = ThinkWhileSpeaking(VOCAB, thought_chunk_tokens=4, speech_chunk_frames=2).build(turn)
    fmt = ThinkWhileSpeaking(VOCAB, thought_chunk_tokens=3, speech_chunk_frames=2)
    assert "break the format's rule" in parse_error(fmt, other.ids)
    assert fmt.parse(other, strict=False) == turn  # the content is all there
    shifted = TextGuided(VOCAB, offset_tokens=3).build(turn)
    assert "break the format's rule" in parse_error(TextGuided(VOCAB, offset_tokens=2), shifted.ids)


def test_think_while_speaking_needs_exactly_one_reply_marker():
    fmt = ThinkWhileSpeaking(VOCAB, thought_chunk_tokens=3, speech_chunk_frames=2)
    ids = fmt.build(make_turn(4, thought=4, reply=2, frames=4)).ids.tolist()
    marker = ids.index(VOCAB.reply)
    assert "no <reply> marker" in parse_error(fmt, ids[:marker] + ids[marker + 1:])
    assert "a second <reply>" in parse_error(fmt, ids[:marker] + [VOCAB.reply] + ids[marker:])


def test_a_malformed_question_fails_even_when_not_strict():
    fmt = ThinkThenSpeak(VOCAB)
    ids = fmt.build(make_turn(5, question_len=2)).ids.tolist()
    assert "partial frame" in parse_error(fmt, ids[:6] + ids[7:], strict=False)  # question: 2 frames of 3 ids
    assert "expected </question>" in parse_error(fmt, ids[:4], strict=False)


# ---------------------------------------------------------------------------------------------- lenient recovery
@pytest.mark.parametrize("case", FORMAT_CASES)
def test_not_strict_drops_a_trailing_partial_frame_and_reads_up_to_the_first_eot(case):
    fmt = FORMAT_CASES[case]
    turn = make_turn(6, voice=True, thought=4, reply=2, frames=30)  # speech outlasts text: it ends the turn
    ids = fmt.build(turn).ids.tolist()
    cut = fmt.parse(torch.tensor(ids[:-3]), strict=False)  # no <eot>, and the last frame lacks 2 codebooks
    assert torch.equal(cut.reply_codes, turn.reply_codes[:, :-1])
    assert (cut.thought_ids, cut.reply_ids, cut.voice_codes.shape) == (turn.thought_ids, turn.reply_ids, (K, 2))
    rambling = ids + ids[5:20] + [VOCAB.eot]
    assert fmt.parse(torch.tensor(rambling), strict=False) == turn


def test_not_strict_returns_the_thought_so_far_when_generation_stops_early():
    turn = make_turn(7, thought=6, reply=3, frames=4)
    for fmt in (ThinkThenSpeak(VOCAB), ThinkWhileSpeaking(VOCAB), TextGuided(VOCAB), WordAligned(VOCAB),
                WordTimed(VOCAB)):
        ids = fmt.build(turn).ids.tolist()
        stop = ids.index(VOCAB.think) + 1 + 2  # <think> and two thought ids
        partial = fmt.parse(torch.tensor(ids[:stop]), strict=False)
        assert partial.thought_ids == turn.thought_ids[:2], fmt.name
        assert partial.reply_ids == [] and partial.reply_codes.shape == (K, 0)
        assert torch.equal(partial.question_codes, turn.question_codes)


def test_not_strict_stops_at_a_codebook_out_of_order():
    fmt = ThinkThenSpeak(VOCAB)
    turn = make_turn(8, frames=5)
    ids = fmt.build(turn).ids.tolist()
    speak = ids.index(VOCAB.speak)
    ids[speak + 1 + 2 * K + 1] = VOCAB.speech_id(0, 0)  # frame 2, codebook 1 slot
    assert torch.equal(fmt.parse(torch.tensor(ids), strict=False).reply_codes, turn.reply_codes[:, :2])


# ---------------------------------------------------------------------------------------------- bad turns
def test_bad_turns_are_refused_before_building():
    with pytest.raises(ValueError, match="exactly one question"):
        Turn(thought_ids=[], reply_ids=[], reply_codes=torch.zeros(K, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="exactly one question"):
        Turn(question_codes=torch.zeros(K, 1, dtype=torch.long), question_text_ids=[1], thought_ids=[],
             reply_ids=[], reply_codes=torch.zeros(K, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="same number of codebooks"):
        Turn(question_codes=torch.zeros(2, 1, dtype=torch.long), thought_ids=[], reply_ids=[],
             reply_codes=torch.zeros(K, 1, dtype=torch.long))
    fmt = ThinkThenSpeak(VOCAB)
    with pytest.raises(ValueError, match="the vocabulary 3"):
        fmt.build(Turn(question_text_ids=[1], thought_ids=[], reply_ids=[],
                       reply_codes=torch.zeros(2, 1, dtype=torch.long)))
    with pytest.raises(ValueError, match="thought_ids holds 50, outside the text ids"):
        fmt.build(Turn(question_text_ids=[1], thought_ids=[50], reply_ids=[],
                       reply_codes=torch.zeros(K, 1, dtype=torch.long)))
    with pytest.raises(ValueError, match="codes must lie in"):
        fmt.build(Turn(question_text_ids=[1], thought_ids=[], reply_ids=[],
                       reply_codes=torch.full((K, 1), 16)))
