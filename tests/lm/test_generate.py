"""Generation, tiny: phase rules under sampling, machines against formats, KV cache, prompt, streaming, caps."""
import copy
from contextlib import contextmanager

import pytest
import torch
from tiny_models import FORMAT_OPTIONS, TINY_LLAMA, C, K, logit_bias, question, speak_nudge

from s2s.codecs import STREAM_TOLERANCE
from s2s.codecs.tiny.codec import TinyCodec
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.lm.batching import reply_opening, word_runs, word_token_counts
from s2s.lm.fast_decode import FastDecoder
from s2s.lm.formats import (
    FORMATS,
    READ_ALOUD,
    REPLY_TEXT,
    SPEECH,
    THOUGHT,
    TextGuided,
    ThinkThenSpeak,
    ThinkWhileSpeaking,
    Turn,
    WordAligned,
    WordTimed,
    WordTimedWhileThinking,
    build_format,
)
from s2s.lm.generate import (
    DONE,
    build_prompt,
    generate,
    phase_machine,
    sample_next,
    stream,
)
from s2s.lm.hooks import read_aloud
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.speculate import PhraseTable
from s2s.lm.vocab import JointVocab


def check_think_then_speak(vocab, generated: list[int], max_thought: int, max_reply: int, max_frames: int) -> None:
    """The rules of a think-then-speak reply, written out again without the phase machine."""
    phase, counts = "thought", {"thought": 0, "reply": 0, "speech": 0}
    for position, token in enumerate(generated):
        where = f"position {position}: {vocab.describe(token)} in {phase} ({counts})"
        assert phase != "done", f"{where}: ids after <eot>"
        if phase in ("thought", "reply"):
            closer, cap = (vocab.end_think, max_thought) if phase == "thought" else (vocab.speak, max_reply)
            if token == closer:
                phase = "reply" if phase == "thought" else "speech"
            else:
                assert vocab.is_text(token) and counts[phase] < cap, where
                counts[phase] += 1
        elif token == vocab.eot:
            assert counts["speech"] % K == 0, where  # only between frames
            phase = "done"
        else:
            assert vocab.is_speech(token, codebook=counts["speech"] % K), where
            assert counts["speech"] < K * max_frames, where
            counts["speech"] += 1
    assert phase == "done", f"the reply did not end: {phase} {counts}"


def modality_switches(vocab, ids: list[int]) -> int:
    """How often the reply goes from text to speech or back: interleaved formats switch several times."""
    kinds = [vocab.is_speech(token) for token in ids if vocab.is_text(token) or vocab.is_speech(token)]
    return sum(a != b for a, b in zip(kinds, kinds[1:]))


# ---------------------------------------------------------------------- (a) phase rules under sampling
@pytest.mark.parametrize("format_name", list(FORMATS))
def test_sampled_ids_always_obey_the_phase_rules_and_generation_ends(lms, format_name):
    lm = lms[format_name]
    vocab, caps = lm.vocab, {"max_thought_tokens": 6, "max_reply_tokens": 4, "max_speech_frames": 3}
    # A model that prefers illegal ids (<pad>, <think>, ... and the last codebook) tests the masks hardest.
    tempting = {token: 8.0 for token in vocab.special_range} | {token: 4.0 for token in vocab.speech_range(K - 1)}
    biases, lengths, switches = [{}, tempting, speak_nudge(vocab, format_name)], set(), 0
    for seed in range(24):
        with logit_bias(lm, biases[seed % 3]):
            reply = generate(lm, build_prompt(lm.format, question_codes=question(seed)), temperature=1.0,
                             seed=seed, **caps)
        generated = reply.generated_ids.tolist()
        if format_name == "think_then_speak":
            check_think_then_speak(vocab, generated, *caps.values())
            assert len(generated) <= 6 + 4 + K * 3 + 3
        turn = lm.format.parse(reply.ids)  # strictly well formed: exactly the layout `build` gives this turn
        assert turn == reply.turn and generated[-1] == vocab.eot
        assert len(turn.thought_ids) <= 6 and len(turn.reply_ids) <= 4 and turn.reply_codes.shape[1] <= 3
        lengths.add(len(generated))
        switches = max(switches, modality_switches(vocab, generated))
    # The seeds give different replies, some closed early by the model (word-aligned allows <eot> right after
    # the thought, which the tempting bias always takes: one length fewer).
    assert len(lengths) > (2 if format_name == "word_aligned" else 3)
    # Some replies speak; think-while-speaking ones switch chunks. (Sampled text-guided replies rarely keep to
    # the text's lead, so one stream ends early: the scripted streaming test shows its interleaving.)
    assert switches >= (3 if format_name == "think_while_speaking" else 1)


@pytest.mark.parametrize("format_name", list(FORMATS))
def test_advance_refuses_every_id_the_mask_leaves_out(lms, format_name):
    """Random walks over legal ids: an illegal id raises and leaves the state as it was; every walk ends."""
    fmt, vocab = lms[format_name].format, lms[format_name].vocab
    machine = phase_machine(fmt, max_thought_tokens=5, max_reply_tokens=3, max_speech_frames=4)
    prompt, g = build_prompt(fmt, question_text_ids=[5, 6]), torch.Generator().manual_seed(0)

    def pick(mask: torch.Tensor) -> int:
        ids = mask.nonzero()[:, 0]
        return int(ids[torch.randint(len(ids), (1,), generator=g)])

    for _ in range(20):
        state, generated = machine.start(), []
        while state.phase != DONE:
            allowed = machine.allowed_mask(state)
            before = copy.deepcopy(state)
            with pytest.raises(ValueError, match="may not come next"):
                machine.advance(state, pick(~allowed))
            assert state == before
            generated.append(pick(allowed))
            machine.advance(state, generated[-1])
            assert len(generated) < 200, "the walk does not end"
        turn = fmt.parse(torch.cat([prompt, torch.tensor(generated)]))  # strict
        assert len(turn.thought_ids) <= 5 and len(turn.reply_ids) <= 3 and turn.reply_codes.shape[1] <= 4
        with pytest.raises(ValueError, match="has ended"):
            machine.advance(state, vocab.eot)


# ---------------------------------------------------------------------- machines and formats agree
CAPS = ("max_thought_tokens", "max_reply_tokens", "max_speech_frames")
# (thought ids, reply ids, frames): empty parts, no speech, one stream much longer than the other, at the caps.
TURN_SIZES = [(0, 0, 0), (0, 0, 1), (1, 0, 0), (0, 3, 1), (3, 0, 5), (4, 4, 2), (9, 2, 7), (2, 9, 3), (12, 5, 11)]


def random_turn(vocab, seed: int, thought: int, reply: int, frames: int) -> Turn:
    g = torch.Generator().manual_seed(seed)
    return Turn(question_codes=question(seed), thought_ids=torch.randint(0, vocab.text_vocab_size, (thought,),
                                                                         generator=g).tolist(),
                reply_ids=torch.randint(0, vocab.text_vocab_size, (reply,), generator=g).tolist(),
                reply_codes=torch.randint(0, C, (K, frames), generator=g),
                reply_alignment=[(reply // 2, frames // 2), (reply - reply // 2, frames - frames // 2)])


def at_caps(sizes, caps) -> list[int]:
    """The phases a reply of these sizes closes at their cap, in the order they close."""
    return [phase for phase, size, cap in zip((THOUGHT, REPLY_TEXT, SPEECH), sizes, caps) if size >= cap]


@pytest.mark.parametrize("format_name", list(FORMATS))
def test_the_machine_takes_what_the_format_builds_and_ends_exactly_there(lms, format_name):
    vocab = lms[format_name].vocab
    for fmt in (lms[format_name].format, build_format(format_name, vocab)):  # small chunks, then the defaults
        caps = (12, 9, 11)  # the largest sizes: some turns stand at a cap
        machine = phase_machine(fmt, **dict(zip(CAPS, caps)))
        for seed, sizes in enumerate(TURN_SIZES):
            turn = random_turn(vocab, seed, *sizes)
            ids, prompt = fmt.build(turn).ids.tolist(), build_prompt(fmt, question_codes=turn.question_codes)
            state = machine.start()
            for position in range(len(prompt), len(ids)):
                assert state.phase != DONE, f"{fmt.name} {sizes}: DONE before position {position}"
                machine.advance(state, ids[position])  # raises if the machine refuses the format's id
            assert state.phase == DONE, f"{fmt.name} {sizes}: not DONE after the <eot>"
            assert state.capped == at_caps(sizes, caps)
        # One id more than a cap allows is refused, whichever part it is in.
        for part in range(3):
            smaller = tuple(cap - (i == part) for i, cap in enumerate(caps))
            machine = phase_machine(fmt, **dict(zip(CAPS, smaller)))
            ids = fmt.build(random_turn(vocab, 0, *caps)).ids.tolist()
            state = machine.start()
            with pytest.raises(ValueError, match="may not come next"):
                for token in ids[ids.index(vocab.think) + 1:]:
                    machine.advance(state, token)


TINY = JointVocab(text_vocab_size=3, num_codebooks=2, codebook_size=2)
TINY_FORMATS = {"think_then_speak": ThinkThenSpeak(TINY),  # chunk sizes in the names: N text ids, M frames
                "think_while_speaking-N1-M1": ThinkWhileSpeaking(TINY, thought_chunk_tokens=1, speech_chunk_frames=1),
                "think_while_speaking-N2-M1": ThinkWhileSpeaking(TINY, thought_chunk_tokens=2, speech_chunk_frames=1),
                "think_while_speaking-N3-M2": ThinkWhileSpeaking(TINY, thought_chunk_tokens=3, speech_chunk_frames=2),
                "text_guided-offset0-N1-M1": TextGuided(TINY, offset_tokens=0, text_chunk_tokens=1,
                                                        speech_chunk_frames=1),
                "text_guided-offset2-N1-M2": TextGuided(TINY, offset_tokens=2, text_chunk_tokens=1,
                                                        speech_chunk_frames=2),
                "text_guided-offset1-N2-M1": TextGuided(TINY, offset_tokens=1, text_chunk_tokens=2,
                                                        speech_chunk_frames=1)}


def every_path(machine) -> dict[tuple[int, ...], list[int]]:
    """Every reply a machine lets through -> the phases it capped, walking every legal id with one text id and
    one code per codebook standing for all (the masks treat each range alike); no path may get stuck."""
    vocab = machine.vocab
    stand_ins = [0, *vocab.special_range, *(vocab.speech_id(k, 0) for k in range(vocab.num_codebooks)),
                 *vocab.duration_range]
    finished = {}

    def walk(state, ids: tuple[int, ...]) -> None:
        if state.phase == DONE:
            finished[ids] = state.capped
            return
        allowed = machine.allowed_mask(state)
        assert allowed.any() and len(ids) < 100, f"stuck or endless after {ids}"
        for token in stand_ins:
            if allowed[token]:
                after = copy.deepcopy(state)
                machine.advance(after, token)
                walk(after, ids + (token,))

    walk(machine.start(), ())
    return finished


@pytest.mark.parametrize("caps", [(3, 3, 4), (0, 2, 1), (2, 0, 0)])
@pytest.mark.parametrize("name", list(TINY_FORMATS))
def test_the_replies_a_machine_allows_are_exactly_the_layouts_of_the_turns_within_its_caps(name, caps):
    """Every path through the machine, with one text id and one code per codebook standing for all (the masks
    treat each range alike): the finished ones are the built turns of every size up to the caps, no path is stuck."""
    fmt = TINY_FORMATS[name]
    vocab, prompt = fmt.vocab, build_prompt(fmt, question_text_ids=[1])
    built = {}
    for sizes in [(t, r, f) for t in range(caps[0] + 1) for r in range(caps[1] + 1) for f in range(caps[2] + 1)]:
        turn = Turn(question_text_ids=[1], thought_ids=[0] * sizes[0], reply_ids=[0] * sizes[1],
                    reply_codes=torch.zeros(vocab.num_codebooks, sizes[2], dtype=torch.long))
        built[tuple(fmt.build(turn).ids.tolist()[len(prompt):])] = sizes
    machine = phase_machine(fmt, **dict(zip(CAPS, caps)))
    finished = every_path(machine)
    assert set(finished) == set(built)
    assert all(capped == at_caps(built[ids], caps) for ids, capped in finished.items())


@pytest.mark.parametrize("caps", [(1, 2, 2), (0, 3, 1), (2, 0, 0)])
def test_word_aligned_allows_exactly_the_layouts_of_every_alignment_within_its_caps(caps):
    """Word-aligned replies have one layout per way of cutting the reply into words: every path through its
    machine is the build of a turn with some alignment within the caps, and every such build is a path."""
    fmt = WordAligned(TINY)
    vocab, prompt = fmt.vocab, build_prompt(fmt, question_text_ids=[1])

    def alignments(ids: int, frames: int, first: bool = True):  # every list of words (ids, frames) covering both
        if ids == 0:
            yield from ([[(0, frames)]] if first and frames else [] if frames else [[]])
            return
        for n in range(0 if first else 1, ids + 1):  # only the first word may have no text: speech first
            for f in range(frames + 1):
                for rest in alignments(ids - n, frames - f, first=False):
                    if not rest or f:  # a word without frames merges with the next: one layout
                        yield [(n, f), *rest]

    built = {}
    for t, r, f in [(t, r, f) for t in range(caps[0] + 1) for r in range(caps[1] + 1) for f in range(caps[2] + 1)]:
        for alignment in alignments(r, f):
            turn = Turn(question_text_ids=[1], thought_ids=[0] * t, reply_ids=[0] * r,
                        reply_codes=torch.zeros(vocab.num_codebooks, f, dtype=torch.long), reply_alignment=alignment)
            built[tuple(fmt.build(turn).ids.tolist()[len(prompt):])] = (t, r, f)
    machine = phase_machine(fmt, **dict(zip(CAPS, caps)))
    finished = every_path(machine)
    assert set(finished) == set(built) and len(built) > 2
    assert all(capped == at_caps(built[ids], caps) for ids, capped in finished.items())
    for ids in finished:  # and each parses back strictly, its words' cuts read from the runs
        turn = fmt.parse(torch.tensor(prompt.tolist() + list(ids)))
        assert sum(f for _, f in turn.reply_alignment or [(0, 0)]) == built[ids][2]


def word_timings(ids: int, frames: int):
    """Every list of words (ids >= 1, frames >= 0) covering `ids` and `frames`, no frames after the last word; a
    reply of no ids is one wordless run of its frames."""
    if ids == 0:
        yield [(0, frames)] if frames else []
        return
    for n in range(1, ids + 1):
        for f in range(frames + 1):
            for rest in word_timings(ids - n, frames - f):
                if n < ids or not frames - f:
                    yield [(n, f), *rest]


@pytest.mark.parametrize("caps", [(1, 2, 3), (0, 3, 2), (1, 0, 1)])
def test_word_timed_allows_exactly_the_layouts_of_every_alignment_within_its_caps(caps):
    """Every path through the word_timed machine is the build of a turn with some word timing within the caps
    (words of 1+ ids; 2 frames at most per duration id, so a 3-frame word takes two), and every build is a path."""
    fmt = WordTimed(JointVocab(text_vocab_size=3, num_codebooks=2, codebook_size=2, durations=2))
    vocab, prompt = fmt.vocab, build_prompt(fmt, question_text_ids=[1])

    built = {}
    for t, r, f in [(t, r, f) for t in range(caps[0] + 1) for r in range(caps[1] + 1) for f in range(caps[2] + 1)]:
        for alignment in word_timings(r, f):
            turn = Turn(question_text_ids=[1], thought_ids=[0] * t, reply_ids=[0] * r,
                        reply_codes=torch.zeros(vocab.num_codebooks, f, dtype=torch.long),
                        reply_alignment=alignment or None)
            built[tuple(fmt.build(turn).ids.tolist()[len(prompt):])] = (t, r, f)
    machine = phase_machine(fmt, **dict(zip(CAPS, caps)))
    finished = every_path(machine)
    assert set(finished) == set(built) and len(built) > 2
    assert all(capped == at_caps(built[ids], caps) for ids, capped in finished.items())
    for ids in finished:
        turn = fmt.parse(torch.tensor(prompt.tolist() + list(ids)))  # strict
        assert turn.reply_codes.shape[1] == built[ids][2]


@pytest.mark.parametrize("chunk", [1, 2])
@pytest.mark.parametrize("caps", [(3, 3, 2), (2, 2, 0), (0, 2, 1), (2, 0, 1)])
def test_word_timed_while_thinking_allows_every_layout_and_reads_back_every_path(chunk, caps):
    """Every build of a turn with some word timing and some opening (the words said while the thought goes on)
    within the caps is a path through the machine; every path (chunks of any size, too) parses back with
    nothing dropped, and the paths that pause the thought are those that leave room for it."""
    fmt = WordTimedWhileThinking(JointVocab(text_vocab_size=3, num_codebooks=2, codebook_size=2, durations=2),
                                 thought_chunk_tokens=chunk)
    vocab, prompt = fmt.vocab, build_prompt(fmt, question_text_ids=[1])

    def said(alignment, frames: int) -> bool:  # while speech is left, every word is said (words without frames
        silent = [f == 0 for _, f in alignment]  # come only once the speech cap is spent, at the end)
        return not any(silent) or (frames == caps[2] and silent == sorted(silent))

    built = {}
    for t, r, f in [(t, r, f) for t in range(caps[0] + 1) for r in range(caps[1] + 1) for f in range(caps[2] + 1)]:
        for alignment in filter(lambda a: said(a, f), word_timings(r, f)):
            for opening in range(r + 1):
                turn = Turn(question_text_ids=[1], thought_ids=[0] * t, reply_ids=[0] * r,
                            reply_codes=torch.zeros(vocab.num_codebooks, f, dtype=torch.long),
                            reply_alignment=alignment or None, reply_opening=opening)
                built[tuple(fmt.build(turn).ids.tolist()[len(prompt):])] = (t, r, f)
    machine = phase_machine(fmt, **dict(zip(CAPS, caps)))
    finished = every_path(machine)
    assert set(built) <= set(finished) and len(built) > 2
    # A pause needs thought after it and a word after it; without speech, a chunk of exactly N ids before it.
    assert any(vocab.think in ids for ids in finished) == (caps[0] > (1 if caps[2] else chunk) and caps[1] > 1)
    for ids, capped in finished.items():
        turn = fmt.parse(torch.tensor(prompt.tolist() + list(ids)), strict=ids in built)
        sizes = (len(turn.thought_ids), len(turn.reply_ids), turn.reply_codes.shape[1])
        texts, codes = sum(vocab.is_text(i) for i in ids), sum(vocab.is_speech(i) for i in ids)
        assert sizes[0] + sizes[1] == texts and sizes[2] * vocab.num_codebooks == codes  # nothing dropped
        assert capped == at_caps(sizes, caps) and ids[-1] == vocab.eot
        if ids in built:
            assert sizes == built[ids]


def test_word_timed_reads_aloud_the_reply_it_wrote_each_word_in_one_step(lms, codec):
    """The model writes the reply text; the loop then writes each word for it (fed in one forward with the
    duration it picks), and each word gets exactly the frames its duration says."""
    lm, tokenizer = lms["word_timed"], lms["word_timed"].tokenizer
    reply_ids = tokenizer.encode("Nine is larger.")
    turn = Turn(question_codes=question(9), thought_ids=tokenizer.encode("9 > 7."), reply_ids=reply_ids,
                reply_codes=question(10, frames=7), reply_alignment=[(1, 3), (1, 1), (len(reply_ids) - 2, 3)])
    built, prompt = lm.format.build(turn), build_prompt(lm.format, question_codes=turn.question_codes)
    wanted = built.ids[len(prompt):].tolist()
    calls = []
    handle = lm.backbone.get_output_embeddings().register_forward_hook(lambda *args: calls.append(1))
    try:
        with scripted(lm, wanted):
            events = list(stream(lm, prompt, codec=codec, frames_per_chunk=1, temperature=0, speculate=0))
    finally:
        handle.remove()
    reply = events[-1][1]
    assert torch.equal(reply.ids, built.ids) and reply.turn == turn and reply.turn.reply_alignment == [(1, 3), (1, 1),
                                                                                                      (2, 3)]
    # One forward per id the model chooses: the words read aloud and the closing <eot> are written for it and
    # fed with the next id it chooses.
    read = int((built.segment == READ_ALOUD).sum())
    assert read == len(reply_ids) and len(calls) == len(wanted) - read - 1
    assert "".join(value for kind, value in events if kind == "reply_text") == "Nine is larger."  # said once
    assert sum(value.shape[-1] for kind, value in events if kind == "audio") == 7 * codec.hop_samples
    # Reading given words aloud (voice conversion): no thought, the words as the reply, then read.
    said = generate(lm, prompt, say=[tokenizer.encode("Nine"), tokenizer.encode(" is")], temperature=0,
                    max_speech_frames=6, seed=0)
    assert said.turn.thought_ids == [] and tokenizer.decode(said.turn.reply_ids) == "Nine is"
    assert said.turn.reply_codes.shape[1] > 0


def test_sampling_masks_first_then_greedy_top_k_top_p(lm):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, generator=g)
    allowed = torch.zeros(50, dtype=torch.bool)
    allowed[10:20] = True
    logits[3] = 100.0  # the best id is illegal
    best = 10 + int(logits[10:20].argmax())
    assert sample_next(logits, allowed, temperature=0) == best
    assert sample_next(logits, allowed, temperature=1.0, top_k=1, generator=g) == best
    assert sample_next(logits, allowed, temperature=1.0, top_p=1e-6, generator=g) == best
    draws = [sample_next(logits, allowed, temperature=2.0, top_k=3, generator=g) for _ in range(200)]
    assert set(draws) == set((10 + logits[10:20].topk(3).indices).tolist())
    again = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert ([sample_next(logits, allowed, generator=again[0]) for _ in range(20)]
            == [sample_next(logits, allowed, generator=again[1]) for _ in range(20)])
    with pytest.raises(ValueError, match="temperature"):
        generate(lm, build_prompt(lm.format, question_codes=question(0)), temperature=-1.0)


# ---------------------------------------------------------------------- (b) KV cache
@pytest.mark.parametrize("fast", [True, False], ids=["fast-decoder", "transformers-cache"])
@pytest.mark.parametrize("temperature", [0, 1.0])
@pytest.mark.parametrize("format_name", list(FORMATS))
def test_cached_greedy_generation_equals_full_recompute(lms, format_name, temperature, fast):
    """Greedy, and sampled with the same seed (it switches between text and speech more): the same ids, whether
    each step runs through FastDecoder or transformers' forward with its cache."""
    lm = lms[format_name]
    caps = {"max_thought_tokens": 12, "max_reply_tokens": 8, "max_speech_frames": 5}
    prompt = build_prompt(lm.format, question_codes=question(1), voice_codes=question(2, frames=2))
    with logit_bias(lm, speak_nudge(lm.vocab, format_name)):
        reply = generate(lm, prompt, temperature=temperature, seed=4, fast=fast, **caps)

        machine, ids = phase_machine(lm.format, **caps), prompt.clone()
        state, generator = machine.start(), torch.Generator().manual_seed(4)
        forced, reading = [], None  # word_timed reads its reply aloud: those ids are written for the model
        with torch.no_grad():
            while state.phase != DONE:
                allowed = machine.allowed_mask(state)
                if reading is not None and not forced:
                    forced, allowed = read_aloud(machine, state, allowed, reading)
                if not forced and machine.forced(state) is not None:  # no choice: no sample drawn
                    forced = [machine.forced(state)]
                if forced:
                    token = forced.pop(0)
                else:
                    logits = lm.backbone(input_ids=ids[None], use_cache=False).logits[0, -1]
                    token = sample_next(logits, allowed, temperature, generator=generator)
                machine.advance(state, token)
                ids = torch.cat([ids, torch.tensor([token])])
                if token == lm.vocab.speak and format_name == "word_timed":
                    reading = word_runs(lm.tokenizer, state.reply)
    assert reply.ids.tolist() == ids.tolist()
    assert len(reply.turn.thought_ids) > 0 and reply.reply_codes.shape[1] > 0
    # think_then_speak and word_timed write all the text first; word_timed_while_thinking pauses its thought only
    # at exactly N ids, which a random model rarely hits (a scripted test streams its interleaving).
    if temperature and format_name not in ("think_then_speak", "word_timed", "word_timed_while_thinking"):
        assert modality_switches(lm.vocab, reply.generated_ids.tolist()) >= 2


@pytest.fixture
def truncations(monkeypatch) -> list[int]:
    """Every FastDecoder.truncate call's length, in order: drafts taken back out of the cache."""
    calls = []
    truncate = FastDecoder.truncate
    monkeypatch.setattr(FastDecoder, "truncate", lambda self, n: calls.append(n) or truncate(self, n))
    return calls


def generate_with_tables(lm, attribute: str, tables: dict, truncations: list[int], prompt, **options) -> dict:
    """For each named draft table: the reply with it set as `lm.<attribute>` (taken off again after), and
    under "<name> truncations" how many drafts had been taken back by then."""
    replies = {}
    for name, table in tables.items():
        setattr(lm, attribute, table)
        try:
            replies[name] = generate(lm, prompt, **options)
        finally:
            setattr(lm, attribute, None)
        replies[name + " truncations"] = len(truncations)
    return replies


@pytest.mark.parametrize("temperature", [0, 1.0])
@pytest.mark.parametrize("format_name", list(FORMATS))
def test_speculation_gives_the_reply_of_id_by_id_decoding_in_fewer_forwards(lms, format_name, temperature,
                                                                            truncations):
    """Drafts from a phrase table of the model's own reply, and from one of wrong phrases (each draft then is
    taken back out of the cache), change no id, greedy or sampled; under greedy the right drafts save forwards."""
    lm, text_ids = lms[format_name], lms[format_name].vocab.text_vocab_size
    caps = {"max_thought_tokens": 12, "max_reply_tokens": 8, "max_speech_frames": 5}
    prompt = build_prompt(lm.format, question_codes=question(1))
    with logit_bias(lm, speak_nudge(lm.vocab, format_name)):
        plain = generate(lm, prompt, temperature=temperature, seed=4, speculate=0, **caps)
        right = PhraseTable.from_texts([[plain.turn.thought_ids, plain.turn.reply_ids]] * 3, text_ids, order=3)
        wrong = PhraseTable(3, text_ids, {context: (token + 1) % text_ids for context, token in right.next_ids.items()})
        assert len(right) > 0 and truncations == []
        replies = generate_with_tables(lm, "phrases", {"right": right, "wrong": wrong}, truncations, prompt,
                                       temperature=temperature, seed=4, speculate=4, **caps)
    assert replies["right"].ids.tolist() == plain.ids.tolist() == replies["wrong"].ids.tolist()
    assert replies["wrong truncations"] > replies["right truncations"]  # wrong drafts were taken back
    if temperature == 0:
        assert replies["right"].forwards < plain.forwards


# ---------------------------------------------------------------------- (c) the prompt
@pytest.mark.parametrize("kind", ["audio", "text", "audio+voice"])
@pytest.mark.parametrize("format_name", list(FORMATS))
def test_prompt_is_the_prefix_that_format_build_writes(lms, kind, format_name):
    lm = lms[format_name]
    fmt = build_format(format_name, lm.vocab)
    ask = {"question_codes": question(3)} if kind.startswith("audio") else {"question_text_ids": [5, 6, 7]}
    if kind.endswith("voice"):
        ask["voice_codes"] = question(4, frames=3)
    prompt = build_prompt(fmt, **ask)
    built = fmt.build(Turn(**ask, thought_ids=[1, 2, 3], reply_ids=[4, 5], reply_codes=question(5, frames=3),
                           reply_alignment=[(1, 1), (1, 2)])).ids
    assert torch.equal(prompt, built[: len(prompt)])
    assert prompt[-1] == lm.vocab.think and (prompt == lm.vocab.think).sum() == 1
    assert built[len(prompt)] in (1, lm.vocab.reply)  # the first thought id (or <reply>): the reply proper


# ---------------------------------------------------------------------- (d) streaming
def test_streaming_gives_text_pieces_and_audio_before_the_speech_ends(lm, codec):
    calls = []  # one forward (seen at the output layer) per generated id: the prompt's, then one per id fed back
    handle = lm.backbone.get_output_embeddings().register_forward_hook(lambda *args: calls.append(1))
    events, forwards_at_first_audio = [], None
    try:
        with logit_bias(lm, {lm.vocab.eot: -20.0}):  # speak until the cap
            for kind, value in stream(lm, build_prompt(lm.format, question_codes=question(6)), codec=codec,
                                      frames_per_chunk=1, max_thought_tokens=10, max_reply_tokens=10,
                                      max_speech_frames=8, temperature=1.0, seed=3):
                if kind == "audio" and forwards_at_first_audio is None:
                    forwards_at_first_audio = len(calls)
                events.append((kind, value))
    finally:
        handle.remove()
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done" and kinds.count("done") == 1
    reply = events[-1][1]
    generated = reply.generated_ids.tolist()
    assert len(calls) == len(generated) and reply.reply_codes.shape == (K, 8)
    # Audio streams: the forward that gives the last speech id (just before <eot>) had not run yet.
    assert forwards_at_first_audio is not None and forwards_at_first_audio < len(generated) - 1
    assert 0 < reply.first_audio_ms < reply.total_ms and reply.tokens_per_s > 0

    chunks = [value for kind, value in events if kind == "audio"]
    assert len(chunks) > 2 and all(chunk.dim() == 2 and chunk.shape[0] == 1 for chunk in chunks)
    streamed, full = torch.cat(chunks, dim=-1), codec.decode(reply.reply_codes[None])[0]
    assert streamed.shape == full.shape and (streamed - full).abs().max() < STREAM_TOLERANCE

    decode = lm.tokenizer.decode
    for kind, ids, text in (("thought", reply.turn.thought_ids, reply.thought),
                            ("reply_text", reply.turn.reply_ids, reply.reply_text)):
        pieces = [value for k, value in events if k == kind]
        assert len(pieces) > 1 and "".join(pieces) == text == decode(ids, clean_up_tokenization_spaces=False)
    assert kinds.index("thought") < kinds.index("reply_text") < kinds.index("audio")


def byte_id(tokenizer, byte: int) -> int:
    """The id of one byte in a byte-level BPE (bytes that are not printable map to chr(256 + n))."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return tokenizer.convert_tokens_to_ids(chr(byte) if byte in printable else chr(256 + others.index(byte)))


@contextmanager
def scripted(lm, wanted: list[int]):
    """The logits for generated position i strongly favour wanted[i] (the masks still have the last word).

    Positions, not forward calls: generation feeds a run of forced ids (calculator results) in one call. The
    first call's ids are the prompt; every id embedded after it is one generated position, so generation must
    not draft ids (speculate=0): drafted ids are fed too, and some are taken back."""
    fed, prompt_length = 0, None

    def count(module, args, out):
        nonlocal fed, prompt_length
        fed += out.shape[1]
        prompt_length = out.shape[1] if prompt_length is None else prompt_length

    def favour(module, args, out):
        bias = torch.zeros(lm.vocab.size)
        position = fed - prompt_length
        bias[wanted[position] if position < len(wanted) else lm.vocab.eot] = 1e4
        return out + bias

    handles = [lm.backbone.get_input_embeddings().register_forward_hook(count),
               lm.backbone.get_output_embeddings().register_forward_hook(favour)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize("format_name", ["think_while_speaking", "text_guided", "word_timed_while_thinking"])
def test_interleaved_formats_stream_text_and_audio_in_the_order_of_their_layout(lms, codec, format_name):
    """A model scripted to write one built turn: every text piece and audio chunk comes as soon as its ids do."""
    lm, tokenizer = lms[format_name], lms[format_name].tokenizer
    reply = "It is nine." if format_name == "word_timed_while_thinking" else "Nine is larger."
    words = word_token_counts(tokenizer, reply)  # word_timed_while_thinking: "It is" said while it thinks
    turn = Turn(question_codes=question(9), thought_ids=tokenizer.encode("9 > 7, so nine."),
                reply_ids=tokenizer.encode(reply), reply_codes=question(10, frames=7),
                reply_alignment=list(zip(words, [3, 2, 2])), reply_opening=reply_opening(tokenizer, reply))
    if format_name == "word_timed_while_thinking":
        assert lm.format.build(turn).ids.tolist().count(lm.vocab.think) == 3  # two pauses for a word
    built, prompt = lm.format.build(turn), build_prompt(lm.format, question_codes=turn.question_codes)
    with scripted(lm, built.ids[len(prompt):].tolist()):
        events = list(stream(lm, prompt, codec=codec, frames_per_chunk=1, temperature=0, speculate=0))
    reply = events[-1][1]
    assert torch.equal(reply.ids, built.ids) and reply.turn == turn and reply.capped == []

    # One text event per text id (none splits a character here), in the layout's order; audio keeps up with the
    # frames written before each text id (the tiny codec's streaming decoder gives a frame one frame late).
    names, text_kinds, frames_before, frames = {THOUGHT: "thought", REPLY_TEXT: "reply_text"}, [], [], 0
    for position in range(len(prompt), len(built)):
        label, token = int(built.segment[position]), int(built.ids[position])
        if label in names:
            text_kinds.append(names[label])
            frames_before.append(frames)
        frames += label == SPEECH and lm.vocab.is_speech(token, codebook=K - 1)
    kinds = [kind for kind, _ in events[:-1]]
    audio_before = [kinds[:i].count("audio") for i, kind in enumerate(kinds) if kind != "audio"]
    assert [kind for kind in kinds if kind != "audio"] == text_kinds
    assert all(written - 1 <= audio <= written for audio, written in zip(audio_before, frames_before))
    assert kinds.count("audio") == frames == turn.reply_codes.shape[1]
    assert sum(a != b for a, b in zip(kinds, kinds[1:])) >= 4  # text and audio really interleave
    for kind, ids, text in (("thought", turn.thought_ids, reply.thought), ("reply_text", turn.reply_ids,
                                                                         reply.reply_text)):
        pieces = "".join(value for k, value in events if k == kind)
        assert pieces == text == tokenizer.decode(ids, clean_up_tokenization_spaces=False)
    streamed = torch.cat([value for kind, value in events if kind == "audio"], dim=-1)
    full = codec.decode(turn.reply_codes[None])[0]
    assert streamed.shape == full.shape and (streamed - full).abs().max() < STREAM_TOLERANCE


def test_text_pieces_wait_for_whole_characters(lm):
    """'×' is the bytes C3 97: split across two ids it comes out whole, and a half character at the end is flushed."""
    tokenizer = lm.tokenizer
    c3, x97, a = byte_id(tokenizer, 0xC3), byte_id(tokenizer, 0x97), byte_id(tokenizer, ord("a"))
    assert tokenizer.decode([c3, x97]) == "×" and tokenizer.decode([c3]) == "\ufffd"
    with scripted(lm, [c3, x97, a, c3, lm.vocab.end_think]):
        events = list(stream(lm, build_prompt(lm.format, question_codes=question(7)), temperature=0,
                             max_reply_tokens=0, max_speech_frames=0, speculate=0))
    assert [value for kind, value in events if kind == "thought"] == ["×", "a", "\ufffd"]
    assert events[-1][1].thought == "×a\ufffd"


# ---------------------------------------------------------------------- (e) caps
@pytest.mark.parametrize("caps", [(0, 0, 0), (1, 2, 1), (2, 1, 2)])
@pytest.mark.parametrize("format_name", list(FORMATS))
def test_caps_force_each_phase_to_close_and_the_reply_still_parses(lms, codec, format_name, caps):
    lm = lms[format_name]
    max_thought, max_reply, max_frames = caps
    vocab = lm.vocab
    # The ids that end a part (</think>, <reply>, the <speak> after the reply text, <eot>), never wanted.
    closers = {"think_then_speak": [vocab.end_think, vocab.speak, vocab.eot],
               "think_while_speaking": [vocab.end_think, vocab.reply, vocab.eot],
               "text_guided": [vocab.end_think, vocab.eot], "word_aligned": [vocab.end_think, vocab.eot],
               "word_timed": [vocab.end_think, vocab.speak, vocab.eot],
               "word_timed_while_thinking": [vocab.end_think, vocab.think, vocab.eot]}[format_name]
    with logit_bias(lm, dict.fromkeys(closers, -30.0)):
        events = list(stream(lm, build_prompt(lm.format, question_text_ids=[5, 6]), codec=codec,
                             max_thought_tokens=max_thought, max_reply_tokens=max_reply,
                             max_speech_frames=max_frames, seed=1))
    reply = events[-1][1]
    assert reply.capped == [THOUGHT, REPLY_TEXT, SPEECH]
    if format_name == "think_then_speak":
        assert len(reply.generated_ids) == max_thought + max_reply + K * max_frames + 3
    turn = lm.format.parse(reply.ids)  # strict: exactly the format's layout
    assert (len(turn.thought_ids), len(turn.reply_ids), turn.reply_codes.shape) == (max_thought, max_reply,
                                                                                   (K, max_frames))
    audio = [value for kind, value in events if kind == "audio"]
    assert sum(chunk.shape[-1] for chunk in audio) == max_frames * codec.hop_samples
    assert (reply.first_audio_ms is None) == (max_frames == 0)


# ---------------------------------------------------------------------- errors
def test_plain_errors_for_a_bad_prompt_an_unsupported_format_and_a_foreign_codec(lm, codec):
    prompt = build_prompt(lm.format, question_codes=question(8))
    with pytest.raises(ValueError, match="must end with the <think>"):
        stream(lm, prompt[:-1])
    assert all(cls.phases is not None and cls.phases.__module__ == cls.__module__ for cls in FORMATS.values())

    class Interleaved(ThinkThenSpeak):
        name = "interleaved"

    with pytest.raises(NotImplementedError, match="not interleaved"):
        phase_machine(Interleaved(lm.vocab))
    foreign = TinyCodec(TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8,
                                                     num_codebooks=K, codebook_size=2 * C, decoder_dim=16,
                                                     decoder_layers=1)))
    with pytest.raises(ValueError, match="cannot decode this LM's speech"):
        stream(lm, prompt, codec=foreign)
    machine = phase_machine(lm.format)
    state = machine.start()
    with pytest.raises(ValueError, match="may not come next"):
        machine.advance(state, lm.vocab.speak)


def test_the_calculator_writes_each_result_the_model_would_guess(lm):
    """Scripted to write wrong sums, the model's results are replaced by the calculator's, id for id, and the
    model reads on from them; without the calculator the thought is the model's own."""
    tokenizer = lm.tokenizer
    wrong = "3 + 4 = 9, 12 - 7 = 1.\nSo the answer is 1."
    right = "3 + 4 = 7, 12 - 7 = 5.\nSo the answer is 1."  # the last line is the model's own copy
    assert len(tokenizer.encode(wrong)) == len(tokenizer.encode(right))  # one digit id each: the script stays in step
    prompt = build_prompt(lm.format, question_codes=question(3))
    script = tokenizer.encode(wrong) + [lm.vocab.end_think]
    forwards = {}
    for calculator, thought, calls in ((True, right, 2), (False, wrong, 0)):
        steps = []
        hook = lm.backbone.get_output_embeddings().register_forward_hook(lambda *_, steps=steps: steps.append(1))
        with scripted(lm, script):
            reply = generate(lm, prompt, temperature=0, max_reply_tokens=0, max_speech_frames=0,
                             calculator=calculator, speculate=0)
        hook.remove()
        assert reply.thought == thought and reply.calculator_calls == calls
        forwards[calculator] = len(steps)
    # The calculator's ids need no logits: each result is fed with the model's next id, one step for the run.
    forced = sum(len(tokenizer(f" {n}", add_special_tokens=False)["input_ids"]) for n in (7, 5))
    assert forwards[True] == forwards[False] - forced


@pytest.mark.parametrize("fast", [True, False], ids=["fast-decoder", "transformers-cache"])
def test_a_word_clock_adds_in_generation_what_it_adds_to_a_whole_row(lms, codec_dir, tokenizer_dir, fast):
    """Generation feeds a few ids at a time and keeps the clock's reading itself; a whole row is clocked from its
    start in training. Greedy ids must be those of recomputing the whole row through the model each step."""
    timed = lms["word_timed"]
    lm = SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=codec_dir, format="word_timed",
                           format_options=FORMAT_OPTIONS["word_timed"], word_clock=True).eval()
    lm.backbone.load_state_dict(timed.backbone.state_dict())
    torch.manual_seed(3)
    with torch.no_grad():
        lm.clock.word.weight.normal_(std=0.5)
        lm.clock.frames_left.weight.normal_()
    caps = {"max_thought_tokens": 12, "max_reply_tokens": 8, "max_speech_frames": 7}
    prompt = build_prompt(lm.format, question_codes=question(1))
    reply = generate(lm, prompt, temperature=0, fast=fast, **caps)
    assert reply.reply_codes.shape[1] > 0 and reply.generated_ids.tolist() != \
        generate(timed, prompt, temperature=0, fast=fast, **caps).generated_ids.tolist()  # the clock mattered

    machine, ids = phase_machine(lm.format, **caps), prompt.clone()
    state, forced, reading = machine.start(), [], None
    with torch.no_grad():
        while state.phase != DONE:
            allowed = machine.allowed_mask(state)
            if reading is not None and not forced:
                forced, allowed = read_aloud(machine, state, allowed, reading)
            token = forced.pop(0) if forced else sample_next(lm(ids[None])[0, -1], allowed, 0)
            machine.advance(state, token)
            ids = torch.cat([ids, torch.tensor([token])])
            if token == lm.vocab.speak:
                reading = word_runs(lm.tokenizer, state.reply)
    assert reply.ids.tolist() == ids.tolist()


@pytest.mark.parametrize("clocked", [False, True], ids=["plain", "word-clock"])
@pytest.mark.parametrize("temperature", [0, 1.0])
def test_speech_drafts_give_the_reply_of_id_by_id_decoding(lms, tokenizer_dir, codec_dir, clocked, temperature,
                                                           truncations):
    """A word_timed reply's speech drafted from a table of the model's own reply (right) and of other codes
    (wrong): the same ids either way, greedy or sampled, with or without a word clock; right drafts save
    forwards, wrong ones are taken back out of the cache."""
    from s2s.lm.speculate import WordFrames

    lm = lms["word_timed"]
    if clocked:
        timed, lm = lm, SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=codec_dir,
                                          format="word_timed", format_options=FORMAT_OPTIONS["word_timed"],
                                          word_clock=True).eval()
        lm.backbone.load_state_dict(timed.backbone.state_dict())
        torch.manual_seed(3)
        with torch.no_grad():
            lm.clock.frames_left.weight.normal_()
    caps = {"max_thought_tokens": 12, "max_reply_tokens": 8, "max_speech_frames": 9}
    prompt = build_prompt(lm.format, question_codes=question(1))
    plain = generate(lm, prompt, temperature=temperature, seed=4, speculate=0, **caps)
    assert plain.reply_codes.shape[1] > 0
    right = WordFrames.from_rows([plain.ids.tolist()], lm.vocab, min_count=1)
    wrong = WordFrames(right.num_codebooks, right.codebook_size, right.text_vocab_size, right.durations,
                       {key: [[(code + 1) % C for code in frame] for frame in grid]
                        for key, grid in right.codes.items()})
    assert len(right) > 0 and truncations == []
    replies = generate_with_tables(lm, "speech_drafts", {"right": right, "wrong": wrong}, truncations, prompt,
                                   temperature=temperature, seed=4, speculate=4, **caps)
    assert replies["right"].ids.tolist() == plain.ids.tolist() == replies["wrong"].ids.tolist()
    assert replies["wrong truncations"] > replies["right truncations"]
    if temperature == 0:
        assert replies["right"].forwards < replies["wrong"].forwards


def test_a_speech_prior_mixes_the_corpus_codes_in_and_speculation_still_changes_nothing(lms):
    """speech_prior 1 says each word exactly as the corpus table does; any prior gives the same ids with and
    without drafts; 0 is the model alone; a weight outside [0, 1] is refused."""
    from s2s.lm.speculate import WordFrames

    lm = lms["word_timed"]
    caps = {"max_thought_tokens": 12, "max_reply_tokens": 8, "max_speech_frames": 9}
    prompt = build_prompt(lm.format, question_codes=question(1))
    alone = generate(lm, prompt, temperature=0, speculate=0, **caps)
    own = WordFrames.from_rows([alone.ids.tolist()], lm.vocab, min_count=1)
    table = WordFrames(own.num_codebooks, own.codebook_size, own.text_vocab_size, own.durations,
                       {key: [[(code + 3) % C for code in frame] for frame in grid] for key, grid in own.codes.items()})
    lm.speech_drafts = table
    try:
        assert generate(lm, prompt, temperature=0, speculate=0, **caps).ids.tolist() == alone.ids.tolist()
        corpus = generate(lm, prompt, temperature=0, speculate=0, speech_prior=1.0, **caps)
        mixed = [generate(lm, prompt, temperature=t, seed=2, speculate=s, speech_prior=0.4, **caps).ids.tolist()
                 for t in (0, 1.0) for s in (0, 4)]
        with pytest.raises(ValueError, match="speech_prior must lie in"):
            generate(lm, prompt, speech_prior=1.5)
    finally:
        lm.speech_drafts = None
    assert mixed[0] == mixed[1] and mixed[2] == mixed[3]
    # Each word said exactly as the table says it, wherever the table knows the word at the length chosen.
    runs = word_runs(lm.tokenizer, corpus.turn.reply_ids)
    start, said = 0, 0
    for word, (_, frames) in zip(runs, corpus.turn.reply_alignment):
        grid = table.codes.get((tuple(word), frames))
        if grid is not None:
            assert corpus.reply_codes[:, start: start + frames].T.tolist() == grid
            said += 1
        start += frames
    assert said >= 1 and corpus.reply_codes.tolist() != alone.reply_codes.tolist()


@pytest.mark.parametrize("durations", [False, True], ids=["model-durations", "decoder-durations"])
def test_a_word_decoder_says_every_word_the_model_writes(lms, durations):
    """With a word decoder, each word's frames are its `say` of the word, its neighbours, the word's length
    and the frame before (fed to the model in one forward); the length is the decoder's own prediction where it
    has a duration predictor, else the model's choice. Without it (or word_decoder=False) the model says every
    code; either way the reply text is the model's."""
    from s2s.lm.word_decoder import WordDecoder

    lm = lms["word_timed"]
    vocab = lm.vocab
    caps = {"max_thought_tokens": 12, "max_reply_tokens": 8, "max_speech_frames": 9}
    prompt = build_prompt(lm.format, question_codes=question(1))
    alone = generate(lm, prompt, temperature=0, speculate=0, **caps)
    torch.manual_seed(3)
    decoder = WordDecoder(vocab.text_vocab_size, K, C, vocab.durations, dim=16, layers=1, heads=2,
                          durations=durations).eval()
    lm.word_decoder = decoder
    try:
        said = generate(lm, prompt, temperature=0, speculate=0, **caps)
        off = generate(lm, prompt, temperature=0, speculate=0, word_decoder=False, **caps)
        with pytest.raises(ValueError, match="pass word_decoder=False"):
            generate(lm, prompt, speech_prior=0.5)
    finally:
        lm.word_decoder = None
    assert off.ids.tolist() == alone.ids.tolist()
    assert said.turn.thought_ids == alone.turn.thought_ids and said.turn.reply_ids == alone.turn.reply_ids
    runs = [tuple(word) for word in word_runs(lm.tokenizer, said.turn.reply_ids)]
    assert len(said.turn.reply_alignment) >= 1
    start, previous = 0, None
    chosen = [vocab.duration_frames(t) for t in said.ids[said.prompt_length:].tolist() if vocab.is_duration(t)]
    checked = 0
    for i, (_, frames) in enumerate(said.turn.reply_alignment):
        before, after = runs[i - 1] if i else (), runs[i + 1] if i + 1 < len(runs) else ()
        if durations and sum(chosen[: i + 1]) <= caps["max_speech_frames"]:  # not cut short by the cap
            assert chosen[i] == frames == decoder.duration(runs[i], before, after)
            checked += 1
        expected = decoder.say(runs[i], before, after, frames, 0, previous)
        got = said.reply_codes[:, start: start + frames].T.tolist()
        assert got == expected[: len(got)]  # the speech cap may cut the last word short
        start += frames
        previous = got[-1] if got else previous
    assert checked >= durations  # a decoder with durations gave at least one word's whole length
    assert said.reply_codes.tolist() != alone.reply_codes.tolist()
