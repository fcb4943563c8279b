"""How the LM hears, tiny: CTC compression, the adapter, heard questions in every format, and in the LM."""
import json
import math
import random
import shutil

import pytest
import torch

from s2s.asr.labels import WrittenLabels
from s2s.asr.recognizer import CTCRecognizer
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.data.problems import generate_problem
from s2s.hearing.ctc import TOP_K, CTCHearing, compress, compress_written
from s2s.hearing.heard import HEARING_DIR, HeardQuestion
from s2s.lm.formats import QUESTION_AUDIO, SPECIAL, TextGuided, ThinkThenSpeak, ThinkWhileSpeaking, Turn
from s2s.lm.heard_adapter import HeardAdapter
from s2s.lm.model import ADAPTER_FILE, SpeechReasoningLM
from s2s.lm.text_tokenizer import load_text_tokenizer, train_text_tokenizer
from s2s.lm.vocab import JointVocab

K, C = 2, 16  # the small codec's codebooks
TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 512}
TINY_ASR = {"dim": 24, "layers": 1, "heads": 2, "ff_mult": 2, "conv_kernel": 3, "subsample_channels": 8}


def write_problems(path, n: int, seed: int):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        p = generate_problem(rng)
        rows.append({"id": str(i), "question_written": p.question_written, "thought": p.thought, "reply": p.reply})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> str:
    manifest = write_problems(tmp_path_factory.mktemp("synth") / "manifest.jsonl", 20, seed=0)
    folder = tmp_path_factory.mktemp("tokenizer")
    train_text_tokenizer(manifest, vocab_size=300).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def hearing_dir(tokenizer_dir, tmp_path_factory) -> str:
    torch.manual_seed(0)
    recognizer = CTCRecognizer(labels=f"tokenizer:{tokenizer_dir}", **TINY_ASR)
    return str(recognizer.save_pretrained(tmp_path_factory.mktemp("asr") / "hearing"))


@pytest.fixture(scope="module")
def codec_dir(tmp_path_factory) -> str:
    torch.manual_seed(0)
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=K,
                                       codebook_size=C, decoder_dim=16, decoder_layers=1))
    return str(save_net(net.eval(), tmp_path_factory.mktemp("codec") / "small"))


@pytest.fixture(scope="module")
def lm(tokenizer_dir, codec_dir, hearing_dir) -> SpeechReasoningLM:
    torch.manual_seed(0)
    model = SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=codec_dir,
                              hearing=hearing_dir).eval()
    with torch.no_grad():  # a trained adapter: W h is no longer zero
        model.adapter.project.weight.normal_(0, 0.1)
        model.adapter.project.bias.normal_(0, 0.1)
    return model


def heard_question(seed: int, segments: int, text_vocab: int, dim: int, k: int = 3) -> HeardQuestion:
    g = torch.Generator().manual_seed(seed)
    probs = torch.rand(segments, k, generator=g) + 0.1
    return HeardQuestion(torch.randint(0, text_vocab, (segments, k), generator=g), probs / probs.sum(-1, keepdim=True),
                         torch.randn(segments, dim, generator=g))


def wave(seconds: float, hz: float, seed: int) -> torch.Tensor:
    n = round(seconds * 16000)
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.sin(2 * math.pi * hz * torch.arange(n) / 16000) + 0.05 * torch.randn(n, generator=g)


# ---------------------------------------------------------------------- compress
def frames_log_probs(path: list[int], num_labels: int, seed: int = 0) -> torch.Tensor:
    """Random log-probs [F, num_labels] whose argmax is `path`."""
    logits = torch.randn(len(path), num_labels, generator=torch.Generator().manual_seed(seed))
    logits[torch.arange(len(path)), torch.tensor(path)] = 6.0
    return logits.log_softmax(-1)


def test_compress_gives_one_segment_per_greedy_run():
    labels, dim = 11, 4  # blank + 10 text ids
    path = [0, 3, 3, 0, 0, 5, 3, 3, 0, 7, 7]
    log_probs = frames_log_probs(path, labels)
    hidden = torch.randn(len(path), dim)
    heard = compress(log_probs, hidden, length=9, top_k=4)  # the two frames of 7 lie past the end
    runs = [(3, 1, 3), (5, 5, 6), (3, 6, 8)]
    assert len(heard) == 3 and heard.token_ids.shape == heard.probs.shape == (3, 4) and heard.hidden.shape == (3, dim)
    for s, (label, a, b) in enumerate(runs):
        posterior = log_probs[a:b].exp().mean(0)[1:]
        posterior = posterior / posterior.sum()
        top = posterior.topk(4)
        assert heard.token_ids[s].tolist() == top.indices.tolist() and heard.token_ids[s, 0] == label - 1
        assert torch.allclose(heard.probs[s], top.values / top.values.sum())
        assert torch.allclose(heard.hidden[s], hidden[a:b].mean(0))
    assert torch.allclose(heard.probs.sum(-1), torch.ones(3)) and (heard.probs[:, :-1] >= heard.probs[:, 1:]).all()
    # All ids kept: the probabilities are the segment's posterior without the blank, renormalised.
    full = compress(log_probs, hidden, length=9, top_k=100)
    assert full.token_ids.shape == (3, labels - 1) and torch.allclose(full.probs.sum(-1), torch.ones(3))
    posterior = log_probs[5:6].exp()[0, 1:]
    assert torch.allclose(full.probs[1], (posterior / posterior.sum())[full.token_ids[1]])
    assert TOP_K == compress(frames_log_probs(path, 20), torch.randn(len(path), dim), 9).token_ids.shape[1]


def test_compress_of_silence_is_one_segment_over_the_whole_utterance():
    log_probs = frames_log_probs([0] * 6, 5)
    hidden = torch.randn(6, 3)
    heard = compress(log_probs, hidden, length=4)
    assert len(heard) == 1 and heard.token_ids.shape == (1, 4)
    assert torch.allclose(heard.hidden[0], hidden[:4].mean(0)) and torch.allclose(heard.probs.sum(), torch.tensor(1.0))
    assert len(compress(log_probs, hidden, length=0)) == 1  # never empty


def written_path(text: str, labels: WrittenLabels, frames_per_char: int = 2, lead: int = 3) -> list[int]:
    """A CTC path that writes `text`: `lead` blanks, then each character for one frame and blanks after it."""
    path = [0] * lead
    for char_id in labels.encode(text):
        path += [char_id] + [0] * (frames_per_char - 1)
    return path + [0] * 2


def test_compress_written_cuts_the_transcript_into_the_lm_tokens(tokenizer_dir):
    tokenizer, labels = load_text_tokenizer(tokenizer_dir), WrittenLabels()
    text = "What is 21 + 4 × 3?"
    path = written_path(text, labels)
    hidden = torch.arange(len(path), dtype=torch.float)[:, None].repeat(1, 3)  # frame t has hidden t
    heard = compress_written(frames_log_probs(path, labels.size), hidden, len(path), labels, tokenizer)
    expected = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert heard.token_ids[:, 0].tolist() == expected and heard.token_ids.shape == (len(expected), 1)
    assert torch.equal(heard.probs, torch.ones(len(expected), 1))
    # Each segment starts at its first character's frame and ends where the next token starts, so together
    # the segments cover the frames from the first character to the last run, in order, with no gap.
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    char_frames = [t for t, label in enumerate(path) if label]
    firsts = [char_frames[begin] for begin, _ in offsets]
    bounds = firsts[1:] + [char_frames[-1] + 1]
    assert torch.allclose(heard.hidden[:, 0], torch.tensor([(a + b - 1) / 2 for a, b in zip(firsts, bounds)]))
    # Doubled and leading/trailing spaces in the transcript are dropped, as WrittenLabels.normalise does.
    spaced = written_path("  What  is 2?  ", labels)
    heard = compress_written(frames_log_probs(spaced, labels.size), torch.zeros(len(spaced), 3), len(spaced), labels,
                             tokenizer)
    assert heard.token_ids[:, 0].tolist() == tokenizer("What is 2?", add_special_tokens=False)["input_ids"]


def test_compress_written_of_silence_is_one_segment():
    class Bytes:  # any tokenizer with offsets will do; a byte-level one cuts '×' into two ids with one offset
        def __call__(self, text, add_special_tokens, return_offsets_mapping):
            ids = list(text.encode())
            offsets = [(i, i + 1) for i, c in enumerate(text) for _ in c.encode()]
            return {"input_ids": ids, "offset_mapping": offsets}

    labels = WrittenLabels()
    heard = compress_written(frames_log_probs([0] * 6, labels.size), torch.randn(6, 3), 4, labels, Bytes())
    assert len(heard) == 1 and heard.hidden.shape == (1, 3)
    path = written_path("2×3", labels)  # the two bytes of × share a character: each still gets a frame
    heard = compress_written(frames_log_probs(path, labels.size), torch.randn(len(path), 3), len(path), labels,
                             Bytes())
    assert heard.token_ids[:, 0].tolist() == list("2×3".encode()) and torch.isfinite(heard.hidden).all()


def test_hearing_that_writes_characters_gives_lm_tokens(tokenizer_dir):
    torch.manual_seed(0)
    tokenizer = load_text_tokenizer(tokenizer_dir)
    hearing = CTCHearing(CTCRecognizer(labels="written", **TINY_ASR), tokenizer)
    heard = hearing(torch.stack([wave(0.6, 300, 0), wave(0.6, 900, 1)]))
    assert len(heard) == 2
    for question in heard:
        assert len(question) >= 1 and question.hidden.shape == (len(question), 24)
        assert question.token_ids.max() < len(tokenizer) and torch.equal(question.probs, torch.ones(len(question), 1))


# ---------------------------------------------------------------------- the adapter
def test_adapter_starts_as_the_posterior_weighted_text_embedding():
    torch.manual_seed(0)
    embeddings = torch.nn.Embedding(30, 8)
    adapter = HeardAdapter(hearing_dim=5, lm_dim=8)
    assert not adapter.project.weight.any() and not adapter.project.bias.any()
    heard = heard_question(0, segments=4, text_vocab=30, dim=5)
    expected = torch.stack([sum(p * embeddings.weight[i] for p, i in zip(probs, ids))
                            for probs, ids in zip(heard.probs, heard.token_ids)])
    out = adapter(heard, embeddings)
    assert out.shape == (4, 8) and torch.allclose(out, expected, atol=1e-6)
    with torch.no_grad():
        adapter.project.weight.normal_()
        adapter.project.bias.normal_()
    out = adapter(heard, embeddings)
    assert torch.allclose(out, expected + heard.hidden @ adapter.project.weight.T + adapter.project.bias, atol=1e-5)
    # The cached dtypes (int16 ids, float16 probs and hidden) read the same.
    cached = HeardQuestion(heard.token_ids.short(), heard.probs.half(), heard.hidden.half())
    assert torch.allclose(adapter(cached, embeddings), out, atol=1e-2)


# ---------------------------------------------------------------------- Hearing
def test_the_pause_after_a_question_is_as_loud_as_its_quietest_moment():
    from s2s.hearing.ctc import TAIL_PAUSE_S, with_tail_pause

    generator = torch.Generator().manual_seed(1)
    clean = torch.cat([torch.zeros(1600), torch.randn(8000, generator=generator), torch.zeros(1600)])
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=generator)
    wav = torch.stack([clean, noisy, torch.zeros_like(clean)])
    wav[2, :4000] = noisy[:4000]  # a shorter row, zeros after it as in a padded batch
    padded, lengths = with_tail_pause(wav, torch.tensor([len(clean), len(clean), 4000]))
    tail = int(TAIL_PAUSE_S * 16000)
    assert lengths.tolist() == [len(clean) + tail, len(clean) + tail, 4000 + tail]
    assert torch.equal(padded[:, :4000], wav[:, :4000]) and torch.equal(padded[1, :len(clean)], noisy)
    assert not padded[0, len(clean):].any()  # a clean question ends in silence
    rms = padded[1, len(clean):].pow(2).mean().sqrt()
    assert 0.04 < rms < 0.06  # a noisy one goes on in its noise, never a digital silence
    assert 0.04 < padded[2, 4000:4000 + tail].pow(2).mean().sqrt() < 0.06 and not padded[2, 4000 + tail:].any()


def test_hearing_is_frozen_and_refuses_chars_labels(hearing_dir, tokenizer_dir):
    with pytest.raises(ValueError, match="tokenizer:<folder>"):
        CTCHearing(CTCRecognizer(labels="chars", **TINY_ASR))
    with pytest.raises(ValueError, match="needs the LM's text tokenizer"):
        CTCHearing(CTCRecognizer(labels="written", **TINY_ASR))
    hearing = CTCHearing(CTCRecognizer.from_pretrained(hearing_dir))
    hearing.train()
    assert not hearing.training and not hearing.recognizer.training
    assert not any(p.requires_grad for p in hearing.parameters())
    assert hearing.dim == 24
    wavs = torch.stack([wave(0.6, 300, 0), wave(0.6, 900, 1)])
    num_samples = torch.tensor([9600, 6000])
    heard = hearing(wavs, num_samples)
    assert len(heard) == 2 and all(len(q) >= 1 and q.hidden.shape[1] == 24 for q in heard)
    # Rows of a batch are heard independently. (Only rows of the same length: padding a row changes its
    # last STFT window and its last subsampled frame, so a padded row is heard slightly differently.)
    same_length = hearing(wavs)
    alone = hearing(wavs[1:])[0]
    assert torch.equal(alone.token_ids, same_length[1].token_ids)
    assert torch.allclose(alone.hidden, same_length[1].hidden, atol=1e-5)
    # hear(): any rate and layout, resampled to 16 kHz
    from_8k = hearing.hear(wavs[0, ::2].clone()[None], 8000)
    assert from_8k.hidden.shape[1] == 24 and len(from_8k) >= 1
    assert torch.equal(hearing.hear(wavs[0], 16000).token_ids, hearing(wavs[:1])[0].token_ids)


# ---------------------------------------------------------------------- formats
VOCAB = JointVocab(text_vocab_size=50, num_codebooks=3, codebook_size=16)
FORMATS = [ThinkThenSpeak(VOCAB), ThinkWhileSpeaking(VOCAB, thought_chunk_tokens=3, speech_chunk_frames=2),
           TextGuided(VOCAB, offset_tokens=2, text_chunk_tokens=1, speech_chunk_frames=2)]


@pytest.mark.parametrize("voice", [False, True])
@pytest.mark.parametrize("heard_length", [1, 2, 7])
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_heard_questions_round_trip_in_every_format(fmt, heard_length, voice):
    g = torch.Generator().manual_seed(heard_length)
    turn = Turn(heard_length=heard_length, thought_ids=torch.randint(0, 50, (5,), generator=g).tolist(),
                reply_ids=[7, 8, 9], reply_codes=torch.randint(0, 16, (3, 4), generator=g),
                voice_codes=torch.randint(0, 16, (3, 2), generator=g) if voice else None)
    sequence = fmt.build(turn)
    ids = sequence.ids.tolist()
    assert ids[: heard_length + 2] == [VOCAB.question] + [VOCAB.heard] * heard_length + [VOCAB.end_question]
    assert sequence.ids.tolist().count(VOCAB.heard) == heard_length
    assert (sequence.segment[1: heard_length + 1] == QUESTION_AUDIO).all() and sequence.segment[0] == SPECIAL
    for parsed in (fmt.parse(sequence), fmt.parse(sequence.ids), fmt.parse(sequence, strict=False)):
        assert parsed == turn and parsed.heard_length == heard_length
        assert parsed.question_codes is None and parsed.question_text_ids is None
    assert fmt.parse(sequence) != Turn(heard_length=heard_length + 1, thought_ids=turn.thought_ids,
                                       reply_ids=turn.reply_ids, reply_codes=turn.reply_codes,
                                       voice_codes=turn.voice_codes)


def test_question_audio_and_text_still_parse_as_before():
    fmt = ThinkThenSpeak(VOCAB)
    for question in ({"question_codes": torch.randint(0, 16, (3, 2))}, {"question_text_ids": [4, 5]},
                     {"question_codes": torch.zeros(3, 0, dtype=torch.long)}):
        turn = Turn(**question, thought_ids=[1], reply_ids=[2], reply_codes=torch.randint(0, 16, (3, 2)))
        parsed = fmt.parse(fmt.build(turn))
        assert parsed == turn and parsed.heard_length is None


def test_a_turn_takes_exactly_one_question_and_at_least_one_heard_segment():
    reply = {"thought_ids": [], "reply_ids": [], "reply_codes": torch.zeros(3, 1, dtype=torch.long)}
    with pytest.raises(ValueError, match="exactly one question"):
        Turn(heard_length=2, question_text_ids=[1], **reply)
    with pytest.raises(ValueError, match="exactly one question"):
        Turn(heard_length=2, question_codes=torch.zeros(3, 1, dtype=torch.long), **reply)
    for bad in (0, -1, 2.0):
        with pytest.raises(ValueError, match="heard_length must be an integer >= 1"):
            Turn(heard_length=bad, **reply)


# ---------------------------------------------------------------------- in the LM
def heard_batch(lm, lengths=(3, None, 5)):
    """ids [B, L] of heard (or text) questions and their HeardQuestions (None for text rows)."""
    fmt, hearing = lm.format, lm.hearing
    heard, sequences = [], []
    for row, n in enumerate(lengths):
        question = None if n is None else heard_question(row, n, len(lm.tokenizer), hearing.dim)
        turn = Turn(heard_length=n, question_text_ids=None if n is not None else [5, 6, 7, 8],
                    thought_ids=[10 + row, 11], reply_ids=[12], reply_codes=torch.randint(0, C, (K, 2)))
        heard.append(question)
        sequences.append(fmt.build(turn).ids)
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), lm.vocab.pad)
    mask = torch.zeros(len(sequences), width, dtype=torch.long)
    for row, s in enumerate(sequences):
        ids[row, : len(s)], mask[row, : len(s)] = s, 1
    return ids, mask, heard


def test_embed_puts_adapter_vectors_exactly_at_heard_positions(lm):
    torch.manual_seed(0)
    ids, mask, heard = heard_batch(lm)
    embeddings = lm.backbone.get_input_embeddings()
    with torch.no_grad():
        plain, vectors = embeddings(ids), lm.embed(ids, heard)
        assert torch.equal(lm.embed(ids), plain) and torch.equal(lm.embed(ids, [None] * 3), plain)
        is_heard = ids == lm.vocab.heard
        assert is_heard.sum().item() == 3 + 5
        assert torch.equal(vectors[~is_heard], plain[~is_heard])
        for row, question in enumerate(heard):
            if question is not None:
                assert torch.equal(vectors[row, is_heard[row]], lm.adapter(question, embeddings))
                assert not torch.allclose(vectors[row, is_heard[row]], plain[row, is_heard[row]])
        # forward with heard questions == the backbone fed those vectors by hand
        by_hand = lm.backbone(inputs_embeds=vectors, attention_mask=mask, use_cache=False).logits
        assert torch.equal(lm(ids, mask, heard), by_hand)
        assert not torch.allclose(lm(ids, mask), by_hand)  # the heard vectors matter
        assert torch.equal(lm(ids, mask, [None] * 3), lm(ids, mask))


def test_heard_ids_and_segments_must_agree(lm):
    ids, _, heard = heard_batch(lm)
    heard[2] = heard_question(9, 4, len(lm.tokenizer), lm.hearing.dim)  # the row has 5 <heard> ids
    with pytest.raises(ValueError, match="row 2 has 5 <heard> ids but 4 heard segments"):
        lm.embed(ids, heard)


def test_gradients_reach_the_adapter_not_the_hearing(lm):
    ids, mask, heard = heard_batch(lm)
    lm.zero_grad()
    lm(ids, mask, heard).float().pow(2).mean().backward()
    assert lm.adapter.project.weight.grad is not None and lm.adapter.project.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in lm.hearing.parameters())
    lm.zero_grad()


def test_without_the_hidden_state_a_heard_segment_is_its_tokens_embedding(lm, tokenizer_dir, codec_dir,
                                                                          hearing_dir, tmp_path):
    folder = lm.save_pretrained(tmp_path / "trained")  # its adapter's W h is not zero
    plain = SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=codec_dir,
                              hearing=hearing_dir, heard_hidden=False)
    plain.init_from(folder)
    plain.eval()
    assert torch.equal(plain.adapter.project.weight, lm.adapter.project.weight)  # loaded, kept, not used
    assert not plain.adapter.project.weight.requires_grad and lm.adapter.project.weight.requires_grad
    ids, mask, heard = heard_batch(lm)
    embeddings = plain.backbone.get_input_embeddings()
    vectors = plain.embed(ids, heard)
    for row, question in enumerate(heard):
        if question is None:  # a written question in the batch
            continue
        at = (ids[row] == plain.vocab.heard).nonzero().squeeze(1)
        expected = (question.probs[..., None] * embeddings(question.token_ids.long())).sum(1)
        assert torch.allclose(vectors[row, at], expected, atol=1e-6)
        assert not torch.allclose(lm.embed(ids, heard)[row, at], expected, atol=1e-3)  # W h moves the trained one
    again = SpeechReasoningLM.from_pretrained(plain.save_pretrained(tmp_path / "plain"))
    assert again.init_args["heard_hidden"] is False and torch.equal(again.embed(ids, heard), vectors)


def test_save_and_load_keep_the_adapter_and_the_hearing(lm, tmp_path):
    ids, mask, heard = heard_batch(lm)
    folder = lm.save_pretrained(tmp_path / "lm")
    assert (folder / ADAPTER_FILE).is_file() and (folder / HEARING_DIR / "model.safetensors").is_file()
    shutil.copytree(folder, tmp_path / "moved")
    shutil.rmtree(folder)
    loaded = SpeechReasoningLM.from_pretrained(tmp_path / "moved")
    assert loaded.init_args["hearing"] == str(tmp_path / "moved" / HEARING_DIR)
    for a, b in ((lm.adapter, loaded.adapter), (lm.hearing, loaded.hearing)):
        state = b.state_dict()
        assert all(torch.equal(value, state[name]) for name, value in a.state_dict().items())
    with torch.no_grad():
        assert torch.equal(loaded(ids, mask, heard), lm(ids, mask, heard))
    wav = wave(0.5, 400, 3)[None]
    got, want = loaded.hearing(wav)[0], lm.hearing(wav)[0]
    assert torch.equal(got.token_ids, want.token_ids) and torch.equal(got.hidden, want.hidden)


def test_hearing_must_spell_the_lm_tokenizer(tmp_path, codec_dir, hearing_dir):
    other = write_problems(tmp_path / "other.jsonl", 10, seed=5)
    train_text_tokenizer(other, vocab_size=280).save_pretrained(tmp_path / "tok")
    with pytest.raises(ValueError, match="train it with the LM's tokenizer"):
        SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=str(tmp_path / "tok"), codec=codec_dir,
                          hearing=hearing_dir)


def test_a_pipeline_with_hearing_answers_audio_through_heard_segments(lm, tmp_path):
    """Spoken questions reach the LM as <heard> ids filled by the adapter; cached generation agrees with the
    uncached forward on the same embeddings, and a prompt without its HeardQuestion is refused."""
    from s2s import audio
    from s2s.lm.generate import stream
    from s2s.pipeline import S2SPipeline

    folder = lm.save_pretrained(tmp_path / "lm")
    pipeline = S2SPipeline.from_pretrained(folder)
    wav = wave(0.8, 300.0, seed=3)
    path = audio.save(tmp_path / "q.wav", wav[None], 16000)
    prompt, heard = pipeline.prompt(audio_wav=wav[None], sample_rate=16000)
    assert heard is not None and int((prompt == lm.vocab.heard).sum()) == len(heard.question) >= 1
    # A tone, heard by a random ear: the abstention gates would (rightly) refuse it, so they are off here.
    caps = {"max_thought_tokens": 5, "max_reply_tokens": 3, "max_speech_frames": 4, "abstain_gates": False}
    reply = pipeline(path, out=tmp_path / "r.wav", **caps)
    assert reply.timings["total_ms"] > 0 and len(reply.thought) >= 0
    # What it heard comes first in the stream, and with the reply: the top id of each segment, decoded.
    events = list(pipeline.stream(path, **caps))
    assert events[0] == ("heard", reply.question_heard) and [k for k, _ in events].count("heard") == 1
    assert reply.question_heard == heard.text == lm.tokenizer.decode(heard.question.token_ids[:, 0].tolist()).strip()
    assert pipeline(text="What is 2 + 2?", **caps).question_heard is None
    # The first greedy id equals the argmax of a plain forward over the same embeddings.
    model = pipeline.model
    caps.pop("abstain_gates")
    events = list(stream(model, prompt, heard=heard.question, temperature=0.0, **caps))
    first = events[-1][1].generated_ids[0]
    with torch.no_grad():
        logits = model(prompt[None], heard=[heard.question])[0, -1]
    allowed = torch.zeros_like(logits, dtype=torch.bool)
    allowed[model.vocab.text_range.start: model.vocab.text_range.stop] = True
    allowed[model.vocab.end_think] = True
    assert int(first) == int(logits.masked_fill(~allowed, float("-inf")).argmax())
    with pytest.raises(ValueError, match="<heard> ids"):
        stream(model, prompt, heard=None)


def test_half_precision_folders_are_half_the_bytes_and_load_back_close(lm, tmp_path):
    full, half = lm.save_pretrained(tmp_path / "full"), lm.save_pretrained(tmp_path / "half", half=True)
    for name in ("model.safetensors", f"{HEARING_DIR}/model.safetensors", ADAPTER_FILE):
        ratio = (half / name).stat().st_size / (full / name).stat().st_size
        assert 0.4 < ratio < 0.6, (name, ratio)
    loaded = SpeechReasoningLM.from_pretrained(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    ids = torch.tensor([[lm.vocab.think, 3, 5, 7]])
    with torch.no_grad():
        assert torch.allclose(loaded(ids), lm(ids), atol=2e-2)
        wav = wave(0.5, 250.0, seed=1)[None]
        a, b = lm.hearing(wav)[0], loaded.hearing(wav)[0]
    assert torch.equal(a.token_ids, b.token_ids) or len(a) == len(b)
