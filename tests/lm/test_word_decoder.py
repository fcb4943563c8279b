"""The word decoder, tiny: the word chunks it learns from, its masks, that it learns, saving, and `s2s fit`."""
import json
import math
import random
from pathlib import Path

import pytest
import torch
import yaml

from s2s import audio
from s2s.asr.recognizer import CTCRecognizer
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.data.problems import generate_problem
from s2s.lm.batching import word_runs
from s2s.lm.formats import Turn
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.text_tokenizer import train_text_tokenizer
from s2s.lm.word_decoder import WordDecoder, collate, load_decoder, save_decoder, word_occurrences

K, C = 2, 16
TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 512}
TINY_DECODER = {"dim": 16, "layers": 1, "heads": 2, "dropout": 0.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, str]:
    """Four problems with tone-like reply audio, a tokenizer of them, a small codec and a word_timed reasoner."""
    root = tmp_path_factory.mktemp("word-decoder")
    rng, rows = random.Random(0), []
    while len(rows) < 4:
        problem = generate_problem(rng)
        if any(row["reply"] == problem.reply for row in rows):
            continue
        i = len(rows)
        n = round((0.3 + 0.1 * i) * 16000)
        tone = 0.3 * torch.sin(2 * math.pi * (300 + 80 * i) * torch.arange(n) / 16000)
        audio.save(root / f"r{i}.wav", tone[None], 16000)
        rows.append({"id": f"p{i}", "question": problem.question, "question_written": problem.question_written,
                     "thought": problem.thought, "answer": problem.answer, "reply": problem.reply,
                     "question_audio": f"r{i}.wav", "reply_audio": f"r{i}.wav"})
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    train_text_tokenizer(manifest, vocab_size=300).save_pretrained(root / "tokenizer")
    torch.manual_seed(0)
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=K,
                                       codebook_size=C, decoder_dim=16, decoder_layers=1))
    codec = save_net(net.eval(), root / "codec")
    judge = CTCRecognizer(labels="chars", dim=24, layers=1, heads=2, ff_mult=2, conv_kernel=3,
                          subsample_channels=8).save_pretrained(root / "judge")
    reasoner = SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=str(root / "tokenizer"), codec=str(codec),
                                 format="word_timed", format_options={"max_word_frames": 3})
    reasoner.save_pretrained(root / "reasoner")
    return {"manifest": str(manifest), "codec": str(codec), "judge": str(judge), "reasoner": str(root / "reasoner"),
            "root": str(root)}


@pytest.fixture(scope="module")
def timed(corpus) -> SpeechReasoningLM:
    return SpeechReasoningLM.from_pretrained(corpus["reasoner"])


def codes(seed: int, frames: int) -> torch.Tensor:
    return torch.randint(0, C, (K, frames), generator=torch.Generator().manual_seed(seed))


def test_word_occurrences_are_each_chunk_with_its_neighbours_and_the_frame_before(timed):
    """A word over the longest duration (3 frames here) is two chunks; each chunk knows the words around its
    word, whether it goes on from an earlier chunk, and the last frame said before it."""
    tokenizer = timed.tokenizer
    reply_ids = tokenizer.encode("Nine is larger.")
    runs = [tuple(word) for word in word_runs(tokenizer, reply_ids)]
    assert len(runs) == 3
    grid = codes(1, 9)
    turn = Turn(heard_length=1, thought_ids=[], reply_ids=reply_ids, reply_codes=grid,
                reply_alignment=[(len(runs[0]), 3), (len(runs[1]), 1), (len(runs[2]), 5)])
    chunks = word_occurrences([timed.format.build(turn).ids.tolist()], timed.vocab)
    frames = grid.T.tolist()
    assert [(c["word"], c["before"], c["after"], c["chunk"]) for c in chunks] == [
        (runs[0], (), runs[1], 0), (runs[1], runs[0], runs[2], 0), (runs[2], runs[1], (), 0), (runs[2], runs[1], (), 1)]
    assert [c["codes"] for c in chunks] == [frames[0:3], frames[3:4], frames[4:7], frames[7:9]]
    assert [c["previous"] for c in chunks] == [None, frames[2], frames[3], frames[6]]


def test_a_chunk_is_said_the_same_alone_or_beside_longer_ones():
    """Padding frames are masked out: a short chunk's logits do not change in a batch with a longer one."""
    torch.manual_seed(0)
    decoder = WordDecoder(50, K, C, 6, **TINY_DECODER).eval()
    short = {"word": (3, 4), "before": (), "after": (7,), "chunk": 0, "previous": None, "codes": [[1, 2]] * 2}
    long = {"word": (5,), "before": (3, 4), "after": (), "chunk": 1, "previous": [3, 9], "codes": [[0, 5]] * 6}
    with torch.no_grad():
        alone = decoder(**{k: v for k, v in collate([short], 50, K).items() if k != "codes"})
        batch = collate([short, long], 50, K)
        both = decoder(**{k: v for k, v in batch.items() if k != "codes"})
    assert alone.shape == (1, 2, K, C) and both.shape == (2, 6, K, C)
    assert torch.allclose(alone[0], both[0, :2], atol=1e-5)
    assert (batch["codes"][0, 2:] == -100).all() and batch["codes"][1].tolist() == long["codes"]


def test_the_decoder_learns_to_say_each_word_in_its_place():
    """Three chunks, the same word in two of them: trained a little, `say` gives back every chunk's codes and
    `duration` every chunk's length, so both tell words, neighbours and the frame before apart."""
    g = torch.Generator().manual_seed(0)
    chunks = [{"word": (3,), "before": (), "after": (4,), "chunk": 0, "previous": None},
              {"word": (4,), "before": (3,), "after": (3,), "chunk": 0, "previous": [1, 2]},
              {"word": (3,), "before": (4,), "after": (), "chunk": 0, "previous": [5, 6]}]
    for chunk, frames in zip(chunks, (3, 4, 3)):
        chunk["codes"] = torch.randint(0, C, (frames, K), generator=g).tolist()
    torch.manual_seed(0)
    decoder = WordDecoder(10, K, C, 6, dim=32, layers=2, heads=2, dropout=0.0)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=3e-3)
    batch = collate(chunks, 10, K)
    target = batch.pop("codes")
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(decoder(**batch).reshape(-1, C), target.reshape(-1), ignore_index=-100)
        durations = decoder.duration_logits(batch["word"], batch["before"], batch["after"])
        loss = loss + torch.nn.functional.cross_entropy(durations, batch["lengths"] - 1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    decoder.eval()
    for chunk in chunks:
        said = decoder.say(chunk["word"], chunk["before"], chunk["after"], len(chunk["codes"]), chunk["chunk"],
                           chunk["previous"])
        assert said == chunk["codes"]
        assert decoder.duration(chunk["word"], chunk["before"], chunk["after"]) == len(chunk["codes"])
        again, probs = decoder.say_with_posteriors(chunk["word"], chunk["before"], chunk["after"],
                                                   len(chunk["codes"]), chunk["chunk"], chunk["previous"])
        assert again == said and probs.shape == (len(said), K, C) and probs.argmax(-1).tolist() == said
        assert torch.allclose(probs.sum(-1), torch.ones(len(said), K))
    # The caps leave only some durations: the likeliest of those.
    allowed = torch.zeros(6, dtype=torch.bool)
    allowed[[0, 1]] = True
    assert decoder.duration((4,), (3,), (3,), allowed) in (1, 2)


def test_a_reasoner_folder_keeps_its_word_decoder_and_refuses_one_for_another_vocabulary(timed, tmp_path):
    torch.manual_seed(1)
    vocab = timed.vocab
    timed.word_decoder = WordDecoder(vocab.text_vocab_size, K, C, vocab.durations, **TINY_DECODER).eval()
    try:
        folder = timed.save_pretrained(tmp_path / "with-decoder", half=True)
        wanted = timed.word_decoder.say((5,), (), (6,), 3, 0, None)
    finally:
        timed.word_decoder = None
    again = SpeechReasoningLM.from_pretrained(folder)
    assert again.word_decoder is not None and not again.word_decoder.training
    assert again.word_decoder.say((5,), (), (6,), 3, 0, None) == wanted  # float16 keeps a tiny model's argmax
    assert SpeechReasoningLM.from_pretrained(timed.save_pretrained(tmp_path / "plain")).word_decoder is None
    other = save_decoder(WordDecoder(vocab.text_vocab_size, K, C + 1, vocab.durations, **TINY_DECODER),
                         tmp_path / "other")
    with pytest.raises(ValueError, match="train a word decoder for it"):
        load_decoder(other, vocab)
    with pytest.raises(FileNotFoundError, match="is not a saved word decoder"):
        load_decoder(tmp_path / "nowhere", vocab)


def test_a_decoder_saved_without_durations_leaves_them_to_the_model_and_can_be_trained_on(timed, tmp_path):
    """A folder from before duration predictors (no `durations` in its config) loads as one without; a
    WordDecoderModule started from it (`init_from`) has its weights and a fresh duration predictor, and one of
    another size is refused in one line."""
    from s2s.lm.word_decoder_training import WordDecoderModule

    vocab = timed.vocab
    torch.manual_seed(2)
    old = WordDecoder(vocab.text_vocab_size, K, C, vocab.durations, durations=False, **TINY_DECODER)
    folder = save_decoder(old, tmp_path / "old")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    del config["init_args"]["durations"]
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    loaded = load_decoder(folder, vocab)
    assert not loaded.predicts_durations
    with pytest.raises(ValueError, match="trained without durations"):
        loaded.duration((5,), (), ())
    reasoner = str(Path(timed.init_args["tokenizer"]).parent / "reasoner")
    module = WordDecoderModule(reasoner, init_from=str(folder), **TINY_DECODER)
    assert module.decoder.predicts_durations
    for name, value in old.state_dict().items():
        assert torch.equal(module.decoder.state_dict()[name], value), name
    with pytest.raises(ValueError, match="give the same dim, layers and heads"):
        WordDecoderModule(reasoner, init_from=str(folder), **dict(TINY_DECODER, dim=32))


def test_s2s_fit_trains_a_word_decoder_that_s2s_export_puts_in_the_reasoner(corpus, tmp_path):
    """The shipped config's classes on a tiny corpus: fit, export into the reasoner's folder, load it there;
    a reasoner that is not word_timed is refused before training."""
    import shutil

    from s2s.cli import main
    from s2s.lm.word_decoder_training import WordChunkData

    model_args = [f"--model.reasoner={corpus['reasoner']}", "--model.dim=16", "--model.layers=1", "--model.heads=2",
                  "--model.warmup_steps=1"]
    data_args = [f"--data.reasoner={corpus['reasoner']}", f"--data.train={corpus['manifest']}",
                 f"--data.judge={corpus['judge']}", "--data.val_chunks=2", "--data.batch_size=2"]
    # The shipped config, with every folder it writes moved under tmp_path (nothing lands in the repository's runs/).
    shipped = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "lm" / "word-decoder.yaml").read_text())
    trainer = shipped["trainer"]
    trainer.update(default_root_dir=str(tmp_path), logger=False, enable_progress_bar=False, max_steps=3, max_time=None,
                   val_check_interval=None, limit_val_batches=1)
    for callback in trainer["callbacks"]:
        callback["init_args"]["dirpath"] = str(tmp_path / "checkpoints")
    config = tmp_path / "word-decoder.yaml"
    config.write_text(yaml.safe_dump(shipped))
    main(["fit", "--config", str(config), *model_args, *data_args])
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    reasoner = tmp_path / "reasoner"
    shutil.copytree(corpus["reasoner"], reasoner)
    main(["export", str(ckpt), str(reasoner / "word_decoder"), "--half"])
    model = SpeechReasoningLM.from_pretrained(reasoner)
    assert model.word_decoder is not None and model.word_decoder.config["dim"] == 16
    data = WordChunkData(reasoner=corpus["reasoner"], train=corpus["manifest"], judge=corpus["judge"], val_chunks=2)
    data.setup("fit")
    assert len(data.chunks["val"]) == 2 and len(data.chunks["train"]) >= 4
    plain = SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=str(Path(corpus["root"]) / "tokenizer"),
                              codec=corpus["codec"]).save_pretrained(tmp_path / "plain")
    with pytest.raises(ValueError, match="a word decoder says the words of word_timed replies"):
        main(["fit", "--config", str(config), f"--model.reasoner={plain}", *data_args, "--trainer.max_steps=1"])
