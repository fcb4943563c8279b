"""Generation, tiny: phase rules under sampling, KV cache against full recompute, prompt, streaming, caps."""
import json
from contextlib import contextmanager

import pytest
import torch

from s2s.codecs import STREAM_TOLERANCE, load_codec
from s2s.codecs.tiny.codec import TinyCodec, save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.lm.formats import FORMATS, REPLY_TEXT, SPEECH, THOUGHT, Turn, build_format
from s2s.lm.generate import (
    DONE,
    build_prompt,
    generate,
    phase_machine,
    sample_next,
    stream,
)
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.text_tokenizer import train_text_tokenizer

K, C = 2, 16
TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 512}
TEXTS = [{"question": "what is twelve times three", "thought": "12 × 3 = 36.", "reply": "Thirty-six."},
         {"question": "which is larger, seven or nine", "thought": "9 > 7, so nine.", "reply": "Nine is larger."}]


@pytest.fixture(scope="module")
def codec_dir(tmp_path_factory) -> str:
    torch.manual_seed(0)
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=K,
                                       codebook_size=C, decoder_dim=16, decoder_layers=1,
                                       decoder_lookahead_frames=0))
    return str(save_net(net.eval(), tmp_path_factory.mktemp("codec") / "small"))


@pytest.fixture(scope="module")
def lm(codec_dir, tmp_path_factory) -> SpeechReasoningLM:
    manifest = tmp_path_factory.mktemp("synth") / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in TEXTS))
    tokenizer_dir = tmp_path_factory.mktemp("tokenizer")
    train_text_tokenizer(manifest, vocab_size=280).save_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    return SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=str(tokenizer_dir), codec=codec_dir).eval()


@pytest.fixture(scope="module")
def codec(codec_dir):
    return load_codec(codec_dir)


def question(seed: int, frames: int = 4) -> torch.Tensor:
    return torch.randint(0, C, (K, frames), generator=torch.Generator().manual_seed(seed))


@contextmanager
def logit_bias(lm, bias: dict[int, float]):
    """Make the model favour (or shun) some ids: `bias` is added to their logits, cached or not."""
    added = torch.zeros(lm.vocab.size)
    for token, value in bias.items():
        added[token] = value
    handle = lm.backbone.get_output_embeddings().register_forward_hook(lambda module, args, out: out + added)
    try:
        yield
    finally:
        handle.remove()


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


# ---------------------------------------------------------------------- (a) phase rules under sampling
def test_sampled_ids_always_obey_the_phase_rules_and_generation_ends(lm):
    vocab, caps = lm.vocab, {"max_thought_tokens": 6, "max_reply_tokens": 4, "max_speech_frames": 3}
    # A model that prefers illegal ids (<pad>, <think>, ... and the last codebook) tests the masks hardest.
    tempting = {token: 8.0 for token in vocab.special_range} | {token: 4.0 for token in vocab.speech_range(K - 1)}
    lengths = set()
    for seed in range(24):
        with logit_bias(lm, tempting if seed % 2 else {}):
            reply = generate(lm, build_prompt(lm.format, question_codes=question(seed)), temperature=1.0,
                             seed=seed, **caps)
        generated = reply.generated_ids.tolist()
        check_think_then_speak(vocab, generated, *caps.values())
        assert len(generated) <= 6 + 4 + K * 3 + 3
        assert reply.turn == lm.format.parse(reply.ids)  # strictly well formed, not just leniently
        lengths.add(len(generated))
    assert len(lengths) > 3  # the seeds give different replies, some closed early by the model


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
def test_cached_greedy_generation_equals_full_recompute(lm):
    caps = {"max_thought_tokens": 12, "max_reply_tokens": 8, "max_speech_frames": 5}
    prompt = build_prompt(lm.format, question_codes=question(1), voice_codes=question(2, frames=2))
    reply = generate(lm, prompt, temperature=0, **caps)

    machine, ids = phase_machine(lm.format, **caps), prompt.clone()
    state = machine.start()
    with torch.no_grad():
        while state.phase != DONE:
            logits = lm.backbone(input_ids=ids[None], use_cache=False).logits[0, -1]
            token = int(logits.masked_fill(~machine.allowed_mask(state), float("-inf")).argmax())
            machine.advance(state, token)
            ids = torch.cat([ids, torch.tensor([token])])
    assert reply.ids.tolist() == ids.tolist()
    assert len(reply.turn.thought_ids) > 0 and reply.reply_codes.shape[1] > 0


# ---------------------------------------------------------------------- (c) the prompt
@pytest.mark.parametrize("kind", ["audio", "text", "audio+voice"])
@pytest.mark.parametrize("format_name", list(FORMATS))
def test_prompt_is_the_prefix_that_format_build_writes(lm, kind, format_name):
    fmt = build_format(format_name, lm.vocab)
    ask = {"question_codes": question(3)} if kind.startswith("audio") else {"question_text_ids": [5, 6, 7]}
    if kind.endswith("voice"):
        ask["voice_codes"] = question(4, frames=3)
    prompt = build_prompt(fmt, **ask)
    built = fmt.build(Turn(**ask, thought_ids=[1, 2, 3], reply_ids=[4, 5], reply_codes=question(5, frames=3))).ids
    assert torch.equal(prompt, built[: len(prompt)])
    assert prompt[-1] == lm.vocab.think and (prompt == lm.vocab.think).sum() == 1
    assert built[len(prompt)] in (1, lm.vocab.reply)  # the first thought id (or <reply>): the reply proper


# ---------------------------------------------------------------------- (d) streaming
def test_streaming_gives_text_pieces_and_audio_before_the_speech_ends(lm, codec):
    calls = []  # one backbone forward per generated id: the prompt's, then one per id fed back
    handle = lm.backbone.register_forward_hook(lambda *args: calls.append(1))
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
    """Forward i of the backbone strongly favours wanted[i] (the masks still have the last word)."""
    step = iter(wanted)

    def favour(module, args, out):
        bias = torch.zeros(lm.vocab.size)
        bias[next(step, lm.vocab.eot)] = 1e4
        return out + bias

    handle = lm.backbone.get_output_embeddings().register_forward_hook(favour)
    try:
        yield
    finally:
        handle.remove()


def test_text_pieces_wait_for_whole_characters(lm):
    """'×' is the bytes C3 97: split across two ids it comes out whole, and a half character at the end is flushed."""
    tokenizer = lm.tokenizer
    c3, x97, a = byte_id(tokenizer, 0xC3), byte_id(tokenizer, 0x97), byte_id(tokenizer, ord("a"))
    assert tokenizer.decode([c3, x97]) == "×" and tokenizer.decode([c3]) == "\ufffd"
    with scripted(lm, [c3, x97, a, c3, lm.vocab.end_think]):
        events = list(stream(lm, build_prompt(lm.format, question_codes=question(7)), temperature=0,
                             max_reply_tokens=0, max_speech_frames=0))
    assert [value for kind, value in events if kind == "thought"] == ["×", "a", "\ufffd"]
    assert events[-1][1].thought == "×a\ufffd"


# ---------------------------------------------------------------------- (e) caps
@pytest.mark.parametrize("caps", [(0, 0, 0), (1, 2, 1), (2, 1, 2)])
def test_caps_force_each_phase_to_close_and_the_reply_still_parses(lm, codec, caps):
    max_thought, max_reply, max_frames = caps
    vocab = lm.vocab
    never_close = {vocab.end_think: -30.0, vocab.speak: -30.0, vocab.eot: -30.0}
    with logit_bias(lm, never_close):
        events = list(stream(lm, build_prompt(lm.format, question_text_ids=[5, 6]), codec=codec,
                             max_thought_tokens=max_thought, max_reply_tokens=max_reply,
                             max_speech_frames=max_frames, seed=1))
    reply = events[-1][1]
    assert reply.capped == [THOUGHT, REPLY_TEXT, SPEECH]
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
    with pytest.raises(NotImplementedError, match="think_while_speaking"):
        phase_machine(build_format("think_while_speaking", lm.vocab))
    foreign = TinyCodec(TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8,
                                                     num_codebooks=K, codebook_size=2 * C, decoder_dim=16,
                                                     decoder_layers=1)))
    with pytest.raises(ValueError, match="cannot decode this LM's speech"):
        stream(lm, prompt, codec=foreign)
    machine = phase_machine(lm.format)
    state = machine.start()
    with pytest.raises(ValueError, match="may not come next"):
        machine.advance(state, lm.vocab.speak)
