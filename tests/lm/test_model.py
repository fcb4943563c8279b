"""SpeechReasoningLM, tiny: text tokenizer, batches, loss mask, training, pretrained backbones, saving, config."""
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.cli import LightningCLI
from torch.utils.data import DataLoader
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from s2s.cli import main
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.data.datamodule import collate
from s2s.data.synth import synthesize
from s2s.lm.batching import encode_batch, pad_sequences
from s2s.lm.formats import DURATION, SPEECH, ThinkThenSpeak, Turn
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.module import (
    MODALITIES,
    NO_LOSS,
    REPLY_TEXT_LOSS,
    SPEECH_LOSS,
    THOUGHT_LOSS,
    SpeechReasoningModule,
    target_modality,
)
from s2s.lm.text_tokenizer import load_text_tokenizer, train_text_tokenizer
from s2s.lm.vocab import JointVocab
from s2s.lm.word_clock import ClockReader, clock_signals, word_frame_starts

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "lm" / "tiny.yaml")
K, C = 2, 16  # the small codec's codebooks
TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 512}
ROWS = [
    {"id": "a", "family": "arithmetic", "question": "what is twelve times three", "question_written":
     "What is 12 × 3?", "thought": "12 × 3 = 36.", "answer": "36", "reply": "Twelve times three is thirty-six."},
    {"id": "b", "family": "compare", "question": "which is larger, seven or nine", "question_written":
     "Which is larger, 7 or 9?", "thought": "9 > 7, so nine.", "answer": "9", "reply": "Nine is larger."},
    {"id": "c", "family": "count", "question": "how many legs do two cats have", "question_written":
     "How many legs do 2 cats have?", "thought": "2 × 4 = 8.", "answer": "8", "reply": "Two cats have eight legs."},
]


@pytest.fixture(scope="module")
def small_codec(tmp_path_factory) -> str:
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=K,
                                       codebook_size=C, decoder_dim=16, decoder_layers=1))
    return str(save_net(net.eval(), tmp_path_factory.mktemp("codec") / "small"))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "manifest.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return path


@pytest.fixture(scope="module")
def tokenizer_dir(manifest, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("tokenizer")
    train_text_tokenizer(manifest, vocab_size=300).save_pretrained(folder)
    return str(folder)


def make_batch(seed: int = 0, question_frames=(6, 9, 4), reply_frames=(5, 7, 3)) -> dict:
    """A datamodule batch of ROWS with random codes [K, F] of different lengths (no audio needed)."""
    g = torch.Generator().manual_seed(seed)
    items = [{**row, "question_codes": torch.randint(0, C, (K, fq), generator=g),
              "reply_codes": torch.randint(0, C, (K, fr), generator=g)}
             for row, fq, fr in zip(ROWS, question_frames, reply_frames)]
    return collate(items)


@pytest.fixture
def lm(tokenizer_dir, small_codec) -> SpeechReasoningModule:
    torch.manual_seed(0)
    return SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec, warmup_steps=1)


# ---------------------------------------------------------------------- text tokenizer and batches
def test_text_tokenizer_is_deterministic_lossless_and_small(manifest, tokenizer_dir):
    again = train_text_tokenizer([manifest], vocab_size=300)
    loaded = load_text_tokenizer(tokenizer_dir)
    assert again.get_vocab() == loaded.get_vocab() and 256 < len(loaded) <= 300
    text = "Twelve × 3 = 36, naïvely: ok?"  # bytes never seen in training still encode
    ids = loaded(text, add_special_tokens=False)["input_ids"]
    assert loaded.decode(ids) == text and max(ids) < len(loaded)
    with pytest.raises(ValueError, match="cannot load the text tokenizer"):
        load_text_tokenizer(Path(tokenizer_dir) / "missing")


def test_encode_batch_lays_out_each_example_and_pads_on_the_right(lm):
    batch = make_batch()
    encoded = encode_batch(batch, lm.tokenizer, lm.format)
    ids, mask = encoded["ids"], encoded["attention_mask"]
    assert ids.shape == encoded["segment"].shape == mask.shape and ids.shape[0] == len(ROWS)
    for i, row in enumerate(ROWS):
        length = int(mask[i].sum())
        assert (ids[i, length:] == lm.vocab.pad).all() and (ids[i, :length] != lm.vocab.pad).all()
        turn = lm.format.parse(ids[i, :length])
        text = lm.tokenizer([row["thought"], row["reply"]], add_special_tokens=False)["input_ids"]
        assert turn.thought_ids == text[0] and turn.reply_ids == text[1]
        assert torch.equal(turn.question_codes, batch["question_codes"][i, :, : batch["question_lengths"][i]])
        assert torch.equal(turn.reply_codes, batch["reply_codes"][i, :, : batch["reply_lengths"][i]])


# ---------------------------------------------------------------------- the loss mask
def test_prompt_and_pads_are_never_targets_and_markers_count_with_the_stream_they_close():
    vocab = JointVocab(text_vocab_size=50, num_codebooks=K, codebook_size=C)
    fmt = ThinkThenSpeak(vocab)

    def turn(seed: int, voice: bool = False) -> Turn:
        g = torch.Generator().manual_seed(seed)
        return Turn(question_codes=torch.randint(0, C, (K, 4), generator=g), thought_ids=[1, 2, 3], reply_ids=[4, 5],
                    reply_codes=torch.randint(0, C, (K, 3), generator=g),
                    voice_codes=torch.randint(0, C, (K, 2), generator=g) if voice else None)

    batch = pad_sequences([fmt.build(turn(0)), fmt.build(turn(1, voice=True)), fmt.build(turn(2))], vocab.pad)
    modality = target_modality(batch["ids"], batch["segment"], vocab)
    ids = batch["ids"][:, 1:]  # the targets
    for row in range(2):
        prompt_end = int(((ids[row] == vocab.end_question) | (ids[row] == vocab.end_voice)).nonzero().max())
        assert (modality[row, : prompt_end + 1] == NO_LOSS).all()  # question, voice and their markers
        assert ids[row, prompt_end + 1] == vocab.think and modality[row, prompt_end + 1] == THOUGHT_LOSS
    assert (modality[0][ids[0] == vocab.pad] == NO_LOSS).all() and (ids[0] == vocab.pad).any()
    counts = [int((modality[0] == m).sum()) for m in range(len(MODALITIES))]
    assert counts == [3 + 2, 2 + 1, K * 3 + 1]  # <think> t t t </think> | r r <speak> | S*6 <eot>
    assert modality[0][ids[0] == vocab.end_think] == THOUGHT_LOSS
    assert modality[0][ids[0] == vocab.speak] == REPLY_TEXT_LOSS
    assert modality[0][ids[0] == vocab.eot] == SPEECH_LOSS
    # Other question codes, same mask: only the layout decides what is a target.
    assert torch.equal(modality[0], modality[2])


# ---------------------------------------------------------------------- training
def test_losses_per_modality_and_codebook_and_overfitting_one_batch(lm):
    batch = lm.encode_batch(make_batch())
    losses = lm.losses(batch)
    expected = {"loss", "thought_accuracy", *(f"{m}_loss" for m in MODALITIES),
                *(f"speech_loss_cb{k}" for k in range(K))}
    assert set(losses) == expected and all(torch.isfinite(v) for v in losses.values())
    assert torch.allclose(losses["loss"], sum(losses[f"{m}_loss"] for m in MODALITIES))
    optimizer = torch.optim.AdamW(lm.parameters(), lr=1e-2)
    first = losses["loss"].item()
    for _ in range(25):
        loss = lm.losses(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert lm.losses(batch)["loss"].item() < 0.3 * first  # about 17.5 -> 1.3 when measured


def test_scheduled_sampling_feeds_back_the_models_own_speech_codes_and_keeps_the_targets(
        tokenizer_dir, small_codec, monkeypatch):
    torch.manual_seed(0)
    lm = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec,
                               scheduled_sampling=1.0)
    batch = lm.encode_batch(make_batch())
    own = lm._own_speech(batch, 1.0)
    ids, vocab = batch["ids"], lm.vocab
    speech = vocab.is_speech(ids) & (batch["segment"] == SPEECH)
    assert torch.equal(own[~speech], ids[~speech])  # text, markers, the question's codes and pads stay
    assert torch.equal(vocab.speech_code(own[speech])[0], vocab.speech_code(ids[speech])[0])  # same codebooks
    assert (own[speech] != ids[speech]).float().mean() > 0.5  # an untrained model's draws: mostly other codes
    assert torch.equal(lm._own_speech(batch, 0.0), ids)
    greedy = lm._own_speech(batch, 1.0, temperature=0.0)  # the argmax, as greedy generation writes it
    logits = lm(ids, batch["attention_mask"])[:, :-1]
    for row, position in speech.nonzero().tolist():
        k = int(vocab.speech_code(ids[row, position])[0])
        span = vocab.speech_range(k)
        assert greedy[row, position] == span.start + logits[row, position - 1, span.start: span.stop].argmax()
    fed = []
    forward = lm.forward
    monkeypatch.setattr(lm, "forward", lambda ids, *args: fed.append(ids) or forward(ids, *args))
    lm.train()
    lm.losses(batch)
    assert len(fed) == 2 and not torch.equal(fed[1], ids)  # one forward draws, the trained one reads its draws
    lm.eval()
    fed.clear()
    lm.losses(batch)
    assert len(fed) == 1 and torch.equal(fed[0], ids)  # validation reads the corpus's codes
    with pytest.raises(ValueError, match="scheduled_sampling_temperature must be >= 0"):
        SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec,
                              scheduled_sampling_temperature=-1.0)
    with pytest.raises(ValueError, match="scheduled_sampling .* must lie in"):
        SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec,
                              scheduled_sampling=1.5)


def test_scheduled_sampling_passes_draw_each_code_after_the_previous_passes_codes(tokenizer_dir, small_codec):
    torch.manual_seed(0)
    lm = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec)
    batch = lm.encode_batch(make_batch())
    ids, vocab = batch["ids"], lm.vocab
    first = lm._own_speech(batch, 1.0, temperature=0.0)
    second = lm._own_speech(batch, 1.0, temperature=0.0, passes=2)
    assert not torch.equal(first, second)  # two deep: the codes after a slip of its own differ
    logits = lm(first, batch["attention_mask"])[:, :-1]  # pass 2 reads pass 1's codes
    speech = vocab.is_speech(ids) & (batch["segment"] == SPEECH)
    speech[:, 0] = False
    for row, position in speech.nonzero().tolist():
        span = vocab.speech_range(int(vocab.speech_code(ids[row, position])[0]))
        assert second[row, position] == span.start + logits[row, position - 1, span.start: span.stop].argmax()
    with pytest.raises(ValueError, match="scheduled_sampling_passes .* integer >= 1"):
        SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec,
                              scheduled_sampling_passes=0)


def test_trainer_logs_every_loss(lm):
    loader = DataLoader([make_batch()], batch_size=None)  # raw datamodule batches: the LM encodes them itself
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(lm, loader, loader)
    logged = set(trainer.callback_metrics)
    for stage in ("train", "val"):
        assert {f"{stage}/loss", f"{stage}/thought_accuracy", f"{stage}/speech_loss_cb1"} <= logged
        assert {f"{stage}/{m}_loss" for m in MODALITIES} <= logged
    assert all(torch.isfinite(v) for v in trainer.callback_metrics.values())


# ---------------------------------------------------------------------- pretrained backbones and saving
@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_pretrained_backbone_keeps_its_text_rows(kind, tokenizer_dir, small_codec, tmp_path):
    tokenizer = load_text_tokenizer(tokenizer_dir)
    text = len(tokenizer)
    torch.manual_seed(0)
    if kind == "llama":
        backbone = LlamaForCausalLM(LlamaConfig(vocab_size=text, hidden_size=32, num_hidden_layers=1,
                                                num_attention_heads=2, intermediate_size=64))
    else:
        backbone = GPT2LMHeadModel(GPT2Config(vocab_size=text, n_embd=32, n_layer=1, n_head=2, n_positions=256))
    backbone.save_pretrained(tmp_path / kind)
    tokenizer.save_pretrained(tmp_path / kind)  # its own tokenizer, beside it

    lm = SpeechReasoningModule(backbone=str(tmp_path / kind), codec=small_codec)
    assert lm.vocab == JointVocab(text, K, C)
    for old, new in ((backbone.get_input_embeddings(), lm.model.backbone.get_input_embeddings()),
                     (backbone.get_output_embeddings(), lm.model.backbone.get_output_embeddings())):
        assert new.weight.shape[0] == lm.vocab.size and torch.equal(new.weight[:text], old.weight)
    # New input rows (specials, speech) are as spread out as the text rows, not one mean row repeated.
    spread = lm.model.backbone.get_input_embeddings().weight[text:].std(0).mean()
    assert spread > 0.5 * backbone.get_input_embeddings().weight.std(0).mean()
    assert torch.isfinite(lm.losses(lm.encode_batch(make_batch()))["loss"])
    # from_pretrained hands back eval mode; a backbone that trains must have its dropout on.
    assert all(module.training for module in lm.model.backbone.modules())


def test_a_backbone_that_cannot_be_found_is_one_line(tokenizer_dir, small_codec, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError) as error:
        SpeechReasoningModule(backbone=str(tmp_path / "no-such-model"), tokenizer=tokenizer_dir, codec=small_codec)
    message = str(error.value)
    assert message.startswith("cannot load the backbone") and "\n" not in message and "download" in message


def test_save_and_load_give_identical_logits(lm, tmp_path):
    batch = lm.encode_batch(make_batch())
    folder = lm.save_pretrained(tmp_path / "lm")
    assert {"model.safetensors", "config.yaml", "config.json", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    assert [p.name for p in tmp_path.iterdir()] == ["lm"]  # no temporary folder left behind
    loaded = SpeechReasoningLM.from_pretrained(folder)
    assert loaded.vocab == lm.vocab and loaded.init_args["format"] == lm.hparams.format
    with torch.no_grad():
        inputs = batch["ids"], batch["attention_mask"]
        assert torch.equal(loaded(*inputs), lm.eval()(*inputs))
    with pytest.raises(FileExistsError, match="already exists"):
        lm.save_pretrained(folder)
    lm.save_pretrained(folder, overwrite=True)


@pytest.mark.parametrize("fmt, options", [
    ("think_while_speaking", {"thought_chunk_tokens": 3, "speech_chunk_frames": 2}),
    ("text_guided", {"offset_tokens": 2}),
])
def test_every_format_trains(fmt, options, tokenizer_dir, small_codec):
    lm = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec, format=fmt,
                               format_options=options)
    losses = lm.losses(lm.encode_batch(make_batch()))
    assert {f"{m}_loss" for m in MODALITIES} <= set(losses) and torch.isfinite(losses["loss"])


# ---------------------------------------------------------------------- the YAML config
def test_tiny_config_parses_and_builds_a_3_to_5_m_parameter_model(manifest, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the config's relative paths (runs/, data/) land in tmp_path
    monkeypatch.setattr("sys.argv", ["s2s"])  # LightningCLI reads its arguments from `args`, not from pytest's
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", CONFIG, "--print_config"])
    assert exit_info.value.code == 0 and "s2s.lm.module.SpeechReasoningModule" in capsys.readouterr().out

    tokenizer = tmp_path / "runs/lm-tiny/tokenizer"
    cli = LightningCLI(subclass_mode_model=True, subclass_mode_data=True, run=False,
                       parser_kwargs={"parser_mode": "omegaconf"},
                       args=["--config", CONFIG, "--model.init_args.tokenizer_train_manifest", str(manifest)])
    assert (tokenizer / "tokenizer.json").is_file()  # trained on first use, loaded afterwards
    lm = cli.model
    assert isinstance(lm, SpeechReasoningModule) and isinstance(lm.model, SpeechReasoningLM)
    assert lm.vocab.num_codebooks == 4 and lm.vocab.codebook_size == 1024
    parameters = sum(p.numel() for p in lm.parameters())
    assert 3e6 < parameters < 5e6, parameters
    assert cli.trainer.max_steps == 4000
    assert cli.trainer.checkpoint_callback.dirpath.endswith("runs/lm-tiny/checkpoints")


def test_fit_from_the_yaml_trains_checkpoints_and_logs(small_codec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["s2s"])
    synthesize(tmp_path / "data/synth/train", n=4, split="train", workers=1, progress=False)
    synthesize(tmp_path / "data/synth/test", n=1, split="test", workers=1, progress=False)
    small = ["--model.init_args.backbone_config", json.dumps(TINY_LLAMA), "--model.init_args.codec", small_codec,
             "--model.init_args.num_codebooks", "null", "--model.init_args.warmup_steps", "1",
             "--data.init_args.codec", small_codec, "--data.init_args.batch_size", "2",
             "--trainer.max_steps", "2", "--trainer.val_check_interval", "2", "--trainer.limit_val_batches", "1",
             "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
             "--trainer.enable_model_summary", "false"]
    main(["fit", "--config", CONFIG, *small])
    run = tmp_path / "runs/lm-tiny"
    assert (run / "checkpoints/last.ckpt").is_file() and (run / "tokenizer/tokenizer.json").is_file()
    metrics = (run / "lightning_logs/version_0/metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "train/speech_loss_cb1", "val/loss", "val/thought_accuracy"} <= set(metrics)


def test_init_from_a_saved_model_starts_from_its_weights(lm, tokenizer_dir, small_codec, tmp_path):
    folder = lm.save_pretrained(tmp_path / "lm")
    torch.manual_seed(1)
    again = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec,
                                  init_from=str(folder))
    batch = lm.encode_batch(make_batch())
    inputs = (batch["ids"], batch["attention_mask"])
    assert torch.allclose(again.eval()(*inputs), lm.eval()(*inputs), atol=1e-5)
    assert "init_from" not in (again.save_pretrained(tmp_path / "again") / "config.yaml").read_text()
    wider = {**TINY_LLAMA, "hidden_size": 64}
    with pytest.raises(ValueError, match="do not fit this model's backbone_config"):
        SpeechReasoningModule(backbone_config=wider, tokenizer=tokenizer_dir, codec=small_codec, init_from=str(folder))


def heard_style_batch(tokenizer, with_speech: bool = True) -> dict:
    """A ReasoningDataModule batch of ROWS as text questions, with reply codes and the frames of each reply word."""
    g = torch.Generator().manual_seed(3)
    words = [[3] * len(row["reply"].split()) for row in ROWS]
    return {"question_written": [r["question_written"] for r in ROWS], "thought": [r["thought"] for r in ROWS],
            "reply": [r["reply"] for r in ROWS], "heard": [None] * 3, "question_codes": [None] * 3,
            "reply_codes": [torch.randint(0, C, (K, 3 * len(w)), generator=g) if with_speech else None
                            for w in words],
            "reply_word_frames": [w if with_speech else None for w in words]}


def test_word_timed_grows_a_think_then_speak_model_and_learns_durations_not_the_words_it_reads(
        lm, tokenizer_dir, small_codec, tmp_path):
    folder = lm.save_pretrained(tmp_path / "lm")
    timed = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec,
                                  format="word_timed", format_options={"max_word_frames": 4}, init_from=str(folder))
    assert timed.vocab.size == lm.vocab.size + 4 and timed.vocab.duration_range.start == lm.vocab.size
    # Up to <speak> the layouts are the same, and so are the logits of every id the old model had.
    batch = heard_style_batch(lm.tokenizer, with_speech=False)
    old, new = lm.encode_batch(batch), timed.encode_batch(batch)
    assert torch.equal(old["ids"], new["ids"])
    with torch.no_grad():
        logits = timed.eval()(new["ids"], new["attention_mask"])
        assert torch.allclose(logits[..., :lm.vocab.size], lm.eval()(old["ids"], old["attention_mask"]), atol=1e-5)
    # With speech: each reply word read aloud (never a target), its duration (a speech target), its frames.
    encoded = timed.encode_batch(heard_style_batch(lm.tokenizer))
    modality = target_modality(encoded["ids"], encoded["segment"], timed.vocab)
    targets = encoded["ids"][:, 1:]
    row = targets[0]
    speak = int((row == timed.vocab.speak).nonzero()[0])
    reply_ids = lm.tokenizer(ROWS[0]["reply"], add_special_tokens=False)["input_ids"]
    read = timed.vocab.is_text(row) & (torch.arange(len(row)) > speak)
    assert row[read].tolist() == reply_ids and (modality[0][read] == NO_LOSS).all()
    durations = timed.vocab.is_duration(targets)
    assert int(durations[0].sum()) == len(ROWS[0]["reply"].split()) and (modality[durations] == SPEECH_LOSS).all()
    losses = timed.losses(encoded)
    assert torch.isfinite(losses["loss"]) and {"speech_loss", "reply_text_loss"} <= set(losses)
    with pytest.raises(ValueError, match="vocabulary .* differs"):  # fewer durations than the source: refused
        SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec,
                              init_from=str(timed.save_pretrained(tmp_path / "timed")))


def test_word_clock_starts_where_its_source_stood_and_tells_each_frame_its_word_and_frames_left(
        lm, tokenizer_dir, small_codec, tmp_path):
    options = {"backbone_config": TINY_LLAMA, "tokenizer": tokenizer_dir, "codec": small_codec,
               "format": "word_timed", "format_options": {"max_word_frames": 4}}
    timed = SpeechReasoningModule(**options, init_from=str(lm.save_pretrained(tmp_path / "lm"))).eval()
    clocked = SpeechReasoningModule(**options, word_clock=True,
                                    init_from=str(timed.save_pretrained(tmp_path / "timed"))).eval()
    encoded = clocked.encode_batch(heard_style_batch(lm.tokenizer))
    ids, mask, vocab = encoded["ids"], encoded["attention_mask"], clocked.vocab
    with torch.no_grad():  # the clock starts at zero: exactly the model it was grown from
        assert torch.allclose(clocked(ids, mask), timed(ids, mask), atol=1e-6)

    # Row 0: every duration id and every frame id after it carries the word just read and its frames left.
    row, segment = ids[0].tolist(), encoded["segment"][0].tolist()
    signals = dict(clock_signals(row, vocab))
    assert set(signals) == {p for p, s in enumerate(segment) if s in (DURATION, SPEECH) and p > row.index(vocab.speak)}
    words = [tuple(lm.tokenizer(w, add_special_tokens=False)["input_ids"])
             for w in (ROWS[0]["reply"].split()[0], " " + ROWS[0]["reply"].split()[1])]
    durations = [p for p, s in enumerate(segment) if s == DURATION]
    assert len(durations) == len(ROWS[0]["reply"].split())  # 3 frames a word, one duration id each
    assert [signals[p] for p in durations[:2]] == [(words[0], 3), (words[1], 3)]
    frame_ids = [signals[p][1] for p in range(durations[0] + 1, durations[0] + 1 + 3 * K)]
    assert frame_ids == [3] * (K - 1) + [2] + [2] * (K - 1) + [1] + [1] * (K - 1) + [0]  # counted down a frame
    assert durations[0] + 1 + 3 * K not in signals  # then the next word is read: no signal until its duration

    # Trained (made non-zero here), it changes the logits from the first duration id on, and only there.
    with torch.no_grad():
        clocked.model.clock.word.weight.normal_()
        clocked.model.clock.frames_left.weight.normal_()
        before, after = timed(ids, mask), clocked(ids, mask)
    assert torch.allclose(before[0, : durations[0]], after[0, : durations[0]], atol=1e-6)
    assert not torch.allclose(before[0, durations[0]], after[0, durations[0]], atol=1e-3)
    folder = clocked.save_pretrained(tmp_path / "clocked")
    with torch.no_grad():
        assert torch.allclose(SpeechReasoningLM.from_pretrained(folder)(ids, mask), after, atol=1e-6)
        grown = SpeechReasoningModule(**options, word_clock=True, init_from=str(folder)).eval()
        assert torch.allclose(grown(ids, mask), after, atol=1e-6)  # init_from keeps the clock's weights
    (folder / "word_clock.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="word_clock.safetensors"):
        SpeechReasoningLM.from_pretrained(folder)
    with pytest.raises(ValueError, match="only the word_timed format"):
        SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec, word_clock=True)


def test_the_clock_reader_knows_the_frame_and_codebook_of_the_next_id_inside_a_word(lm, tokenizer_dir, small_codec):
    """Walking a built word_timed row: wherever the next id is a frame of a word, next_frame names it."""
    timed = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec,
                                  format="word_timed", format_options={"max_word_frames": 4})
    encoded = timed.encode_batch(heard_style_batch(lm.tokenizer))
    vocab, seen = timed.vocab, 0
    for row, segment in zip(encoded["ids"].tolist(), encoded["segment"].tolist()):
        reader, frame = ClockReader(vocab), 0
        for position, token in enumerate(row[:-1]):
            reader.push(token)
            frame = 0 if segment[position] == DURATION else frame
            following = row[position + 1]
            if segment[position + 1] == SPEECH and position + 1 > row.index(vocab.speak):
                codebook = int(vocab.speech_code(following)[0])
                assert reader.next_frame() == (frame, codebook)
                frame, seen = frame + (codebook == vocab.num_codebooks - 1), seen + 1
            else:
                assert reader.next_frame() is None
    assert seen == 3 * 2 * sum(len(r["reply"].split()) for r in ROWS)  # 3 frames of K = 2 ids per word


def test_word_corruption_feeds_words_other_speechs_frames_and_keeps_text_durations_and_targets(
        tokenizer_dir, small_codec, monkeypatch):
    torch.manual_seed(0)
    lm = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec,
                               format="word_timed", format_options={"max_word_frames": 4}, word_clock=True,
                               word_corruption=1.0)
    encoded = lm.encode_batch(heard_style_batch(lm.tokenizer))
    ids, vocab = encoded["ids"], lm.vocab
    words = word_frame_starts(ids[0].tolist(), vocab)
    assert [len(word) for word in words] == [3] * len(ROWS[0]["reply"].split())  # 3 frames a word
    durations = (ids[0] == vocab.duration_id(3)).nonzero().squeeze(1).tolist()
    assert [word[0] for word in words] == [d + 1 for d in durations]  # its frames follow its duration id
    assert all(b - a == K for word in words for a, b in zip(word, word[1:]))  # K ids a frame
    other = lm._other_words(ids, 1.0)
    speech = vocab.is_speech(ids) & (encoded["segment"] == SPEECH)
    assert torch.equal(other[~speech], ids[~speech])  # text, durations, markers and pads stay
    assert torch.equal(vocab.speech_code(other[speech])[0], vocab.speech_code(ids[speech])[0])  # codebook order
    assert not torch.equal(other, ids)
    frames = {tuple(ids[r, p: p + K].tolist()) for r in range(ids.shape[0])
              for word in word_frame_starts(ids[r].tolist(), vocab) for p in word}
    assert all(tuple(other[r, p: p + K].tolist()) in frames for r in range(ids.shape[0])  # whole frames of the batch
               for word in word_frame_starts(ids[r].tolist(), vocab) for p in word)
    assert torch.equal(lm._other_words(ids, 0.0), ids)
    fed = []
    forward = lm.forward
    monkeypatch.setattr(lm, "forward", lambda ids, *args: fed.append(ids) or forward(ids, *args))
    lm.train()
    losses = lm.losses(encoded)
    assert len(fed) == 1 and not torch.equal(fed[0], ids) and torch.isfinite(losses["loss"])
    lm.eval()
    fed.clear()
    lm.losses(encoded)
    assert torch.equal(fed[0], ids)  # validation reads the corpus's codes
    with pytest.raises(ValueError, match="word_corruption .* must lie in"):
        SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec,
                              format="word_timed", word_corruption=2.0)
    with pytest.raises(ValueError, match="only the word_timed formats have"):
        SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=small_codec,
                              word_corruption=0.5)


def test_word_clock_lr_trains_the_clock_at_its_own_rate_without_weight_decay(tokenizer_dir, small_codec):
    options = {"backbone_config": TINY_LLAMA, "tokenizer": tokenizer_dir, "codec": small_codec, "format": "word_timed",
               "format_options": {"max_word_frames": 4}, "word_clock": True, "lr": 1e-3, "weight_decay": 0.1}
    for word_clock_lr in (None, 5e-3):
        lm = SpeechReasoningModule(**options, word_clock_lr=word_clock_lr)
        lm.trainer = L.Trainer(max_steps=10, logger=False, enable_checkpointing=False)
        groups = lm.configure_optimizers()["optimizer"].param_groups
        clock = {id(p) for p in lm.model.clock.parameters()}
        in_groups = [sum(id(p) in clock for p in group["params"]) for group in groups]
        assert sum(len(group["params"]) for group in groups) == sum(1 for p in lm.parameters() if p.requires_grad)
        if word_clock_lr is None:  # decayed with every matrix
            assert len(groups) == 2 and in_groups[0] == 2 and groups[0]["weight_decay"] == 0.1
        else:
            assert in_groups == [0, 0, 2] and groups[2]["weight_decay"] == 0.0
            assert groups[2]["initial_lr"] == 5e-3 and groups[0]["initial_lr"] == 1e-3
    with pytest.raises(ValueError, match="word_clock_lr .* needs word_clock: true"):
        SpeechReasoningModule(**{**options, "word_clock": False}, word_clock_lr=1e-3)
    with pytest.raises(ValueError, match="a rate > 0"):
        SpeechReasoningModule(**options, word_clock_lr=0.0)
