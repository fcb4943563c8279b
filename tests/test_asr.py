"""The recogniser, tiny: labels, CTC segments, lengths, augmentation, a quick overfit, saving and loading."""
import json
import math
import random
import shutil

import pytest
import torch
import yaml

from s2s.asr.features import HOP, SAMPLE_RATE, LogMel, spec_augment, warp_mel_axis
from s2s.asr.labels import CHARS, CharLabels, TokenizerLabels, build_labels
from s2s.asr.model import ConformerConfig, ConformerCTC
from s2s.asr.module import RecognizerModule
from s2s.asr.recognizer import CTCRecognizer, greedy_segments
from s2s.data.problems import generate_problem
from s2s.lm.text_tokenizer import load_text_tokenizer, train_text_tokenizer

TINY = {"dim": 32, "layers": 1, "heads": 2, "ff_mult": 2, "conv_kernel": 3, "subsample_channels": 8}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> str:
    rng = random.Random(0)
    rows = []
    for i in range(20):
        p = generate_problem(rng)
        rows.append({"id": str(i), "question_written": p.question_written, "thought": p.thought, "reply": p.reply})
    manifest = tmp_path_factory.mktemp("synth") / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    folder = tmp_path_factory.mktemp("tokenizer")
    train_text_tokenizer(manifest, vocab_size=300).save_pretrained(folder)
    return str(folder)


def tone_burst(hz: float, seconds: float = 0.5, seed: int = 0) -> torch.Tensor:
    """A tone between stretches of quiet noise. (A steady tone alone would vanish under per-utterance
    normalisation: every mel bin is constant over time, so it normalises to zero.)"""
    n = round(seconds * SAMPLE_RATE)
    wav = 0.01 * torch.randn(n, generator=torch.Generator().manual_seed(seed))
    a, b = n // 5, n - n // 5
    wav[a:b] += 0.5 * torch.sin(2 * math.pi * hz * torch.arange(b - a) / SAMPLE_RATE)
    return wav


# ---------------------------------------------------------------------- labels
def test_char_labels_normalise_encode_decode():
    labels = CharLabels()
    assert labels.size == len(CHARS) + 1 == 39 and labels.kind == "chars"
    assert labels.normalise("  Twelve-three, IS   it's 36!? ") == "twelve three is it's 36"
    text = "Twenty-one times 3, isn't it?"
    ids = labels.encode(text)
    assert all(0 < i < labels.size for i in ids)  # 0 stays the blank
    assert labels.decode(ids) == labels.normalise(text) == "twenty one times 3 isn't it"
    assert labels.decode([0, *labels.encode("ab"), 0, labels.size, 99]) == "ab"  # blanks and unknown ids dropped
    assert labels.encode("€%!") == []


def test_tokenizer_labels_shift_ids_by_one_for_the_blank(tokenizer_dir):
    tokenizer = load_text_tokenizer(tokenizer_dir)
    labels = TokenizerLabels(tokenizer)
    assert labels.size == len(tokenizer) + 1 and labels.kind == "tokenizer"
    text = "What is 12 × 3? Thirty-six."
    raw = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = labels.encode(text)
    assert ids == [i + 1 for i in raw] and min(ids) >= 1 and max(ids) < labels.size
    assert labels.normalise(text) == text
    assert labels.decode(ids) == text
    assert labels.decode([0] + ids + [0]) == text
    built = build_labels(f"tokenizer:{tokenizer_dir}")
    assert isinstance(built, TokenizerLabels) and built.encode(text) == ids
    assert isinstance(build_labels("chars"), CharLabels)
    with pytest.raises(ValueError, match="no tokenizer folder"):
        build_labels(f"tokenizer:{tokenizer_dir}/missing")
    with pytest.raises(ValueError, match="unknown labels"):
        build_labels("phones")


# ---------------------------------------------------------------------- greedy CTC segments
def path_log_probs(path: list[int], num_labels: int = 5) -> torch.Tensor:
    """Log-probs [F, num_labels] whose argmax is `path`."""
    logits = torch.zeros(len(path), num_labels)
    logits[torch.arange(len(path)), torch.tensor(path)] = 5.0
    return logits.log_softmax(-1)


@pytest.mark.parametrize("path, length, expected", [
    ([0, 0, 0], 3, []),  # all blank
    ([2, 2, 2], 3, [(2, 0, 3)]),  # one run, merged
    ([0, 1, 1, 0, 0, 3, 0], 7, [(1, 1, 3), (3, 5, 6)]),  # blanks dropped
    ([1, 1, 0, 1, 2, 2], 6, [(1, 0, 2), (1, 3, 4), (2, 4, 6)]),  # a blank splits a repeat into two
    ([4, 4, 3, 0, 3], 2, [(4, 0, 2)]),  # frames past the length are not read
    ([0, 1, 2], 0, []),
])
def test_greedy_segments(path, length, expected):
    assert greedy_segments(path_log_probs(path), length) == expected


# ---------------------------------------------------------------------- the network's lengths
def test_output_lengths_match_the_network():
    torch.manual_seed(0)
    net = ConformerCTC(ConformerConfig(dim=16, layers=1, heads=2, ff_mult=2, conv_kernel=3, subsample_channels=4,
                                       num_labels=7)).eval()
    for frames in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 33, 100, 101):
        lengths = torch.tensor([frames])
        hidden, logits, out_lengths = net(torch.randn(1, frames, 80), lengths)
        assert out_lengths.tolist() == [hidden.shape[1]] == [logits.shape[1]] == \
            ConformerCTC.output_lengths(lengths).tolist(), frames
        assert hidden.shape[2] == 16 and logits.shape[2] == 7
    # In a padded batch, each row's length is its own; the longest fills the output.
    lengths = torch.tensor([37, 12, 5])
    hidden, _, out_lengths = net(torch.randn(3, 37, 80), lengths)
    assert out_lengths.tolist() == [10, 3, 2] and hidden.shape[1] == 10


def test_log_mel_frames_and_normalisation():
    wav = torch.stack([tone_burst(400, 0.5), torch.cat([tone_burst(900, 0.3, seed=1), torch.zeros(3200)])])
    num_samples = torch.tensor([8000, 4800])
    feats, lengths = LogMel()(wav, num_samples)
    assert feats.shape == (2, 8000 // HOP + 1, 80)
    assert lengths.tolist() == [51, 31] == LogMel.frames(num_samples).tolist()
    assert (feats[1, 31:] == 0).all()  # frames past an utterance's end are zero
    valid = feats[1, :31]
    assert torch.allclose(valid.mean(0), torch.zeros(80), atol=1e-4)  # normalised over its valid frames only
    assert torch.allclose(valid.std(0, unbiased=False), torch.ones(80), atol=1e-3)


# ---------------------------------------------------------------------- augmentation
def test_warp_mel_axis():
    torch.manual_seed(0)
    feats = torch.randn(3, 20, 80)
    assert torch.equal(warp_mel_axis(feats, 1.0, 1.0), feats)  # a factor of 1 changes nothing
    stretched = warp_mel_axis(feats, 2.0, 2.0)  # output bin m reads input bin m / 2
    assert torch.allclose(stretched[..., 10], feats[..., 5])
    assert torch.allclose(stretched[..., 11], (feats[..., 5] + feats[..., 6]) / 2)
    warped = warp_mel_axis(feats)
    assert warped.shape == feats.shape and torch.isfinite(warped).all() and not torch.equal(warped, feats)
    # Linear interpolation between neighbouring bins never leaves the row's range.
    assert (warped.amax(-1) <= feats.amax(-1) + 1e-6).all() and (warped.amin(-1) >= feats.amin(-1) - 1e-6).all()
    assert torch.allclose(warped[..., 0], feats[..., 0])  # bin 0 stays where it is


def test_spec_augment_masks_whole_bands_and_frames_and_never_time_past_the_end():
    lengths = torch.tensor([200, 120, 60, 1])
    for seed in range(20):
        feats = torch.rand(4, 200, 80) + 1.0  # no zeros of its own
        torch.manual_seed(seed)
        out = spec_augment(feats, lengths)
        assert out.shape == feats.shape and ((out == 0) | (out == feats)).all()  # kept or zeroed
        torch.manual_seed(seed)  # the same draws, split into frequency and time masks
        bands = spec_augment(feats, lengths, time_masks=0) == 0
        torch.manual_seed(seed)
        spec_augment(feats, lengths, time_masks=0)  # advance the generator past the frequency draws
        frames = spec_augment(feats, lengths, freq_masks=0) == 0
        assert torch.equal(out == 0, bands | frames)
        for row, n in enumerate(lengths.tolist()):
            # Frequency masks zero a band over every frame; time masks zero every bin of a frame.
            assert (bands[row] == bands[row, :1]).all() and (frames[row] == frames[row, :, :1]).all()
            assert not frames[row, n:].any(), (seed, row)  # time masks stay inside the utterance
            assert frames[row, :, 0].sum() <= 4 * int(0.05 * n)  # at most 4 masks of 5 % each
            assert bands[row, 0].sum() <= 2 * 12
    # Some values masked, never all of them.
    torch.manual_seed(0)
    out = spec_augment(torch.rand(4, 200, 80) + 1.0, torch.tensor([200, 150, 100, 80]), freq_width=30,
                       time_fraction=0.2)
    for row in range(4):
        assert (out[row] == 0).any() and (out[row] != 0).float().mean() > 0.1


# ---------------------------------------------------------------------- training
def test_tiny_recogniser_overfits_two_tones():
    torch.manual_seed(0)
    module = RecognizerModule(labels="chars", dropout=0.0, augment=False, **TINY)
    model = module.recognizer
    wav = torch.stack([tone_burst(300), tone_burst(2000, seed=1)])
    batch = {"wav": wav, "num_samples": torch.tensor([8000, 8000]), "text": ["a", "b"]}
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    module.train()
    first = None
    for _ in range(150):
        loss, _, _ = module._loss(batch)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2 * first
    module.eval()
    assert model.transcribe(wav) == ["a", "b"]
    assert model.transcribe(wav[:1, :6000], torch.tensor([6000])) == ["a"]


def test_forward_shapes_and_augmentation_only_in_training():
    torch.manual_seed(0)
    module = RecognizerModule(labels="chars", **TINY).eval()
    model = module.recognizer
    wav = torch.stack([tone_burst(300), tone_burst(2000, seed=1)])
    num_samples = torch.tensor([8000, 5000])
    hidden, log_probs, lengths = model(wav, num_samples)
    assert hidden.shape == (2, 13, 32) and log_probs.shape == (2, 13, 39)
    assert lengths.tolist() == ConformerCTC.output_lengths(LogMel.frames(num_samples)).tolist() == [13, 8]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 13), atol=1e-5)
    assert torch.equal(model(wav, num_samples)[1], log_probs)  # eval: deterministic
    assert torch.equal(module(wav, num_samples)[1], log_probs)
    module.train()
    assert not torch.equal(module(wav, num_samples)[1], log_probs)  # training augments
    assert not torch.equal(model(wav, num_samples, augment=True)[1], model(wav, num_samples, augment=True)[1])


# ---------------------------------------------------------------------- saving and loading
@pytest.mark.parametrize("kind", ["chars", "tokenizer"])
def test_save_then_load_elsewhere_gives_the_same_outputs(kind, tokenizer_dir, tmp_path):
    labels = "chars"
    if kind == "tokenizer":  # a tokenizer folder that is gone by the time the model is loaded
        shutil.copytree(tokenizer_dir, tmp_path / "tok")
        labels = f"tokenizer:{tmp_path / 'tok'}"
    torch.manual_seed(0)
    model = CTCRecognizer(labels=labels, **TINY).eval()
    saved = model.save_pretrained(tmp_path / "asr")
    assert (saved / "config.yaml").is_file() and (saved / "model.safetensors").is_file()
    assert (saved / "tokenizer").is_dir() == (kind == "tokenizer")
    shutil.copytree(saved, tmp_path / "moved" / "asr")
    shutil.rmtree(saved)
    shutil.rmtree(tmp_path / "tok", ignore_errors=True)
    loaded = CTCRecognizer.from_pretrained(tmp_path / "moved" / "asr")
    assert not loaded.training and loaded.labels.kind == kind and loaded.labels.size == model.labels.size
    assert loaded.config.dim == 32 and loaded.config.layers == 1
    wav = torch.stack([tone_burst(300), tone_burst(2000, seed=1)])
    num_samples = torch.tensor([8000, 6000])
    for a, b in zip(model(wav, num_samples), loaded(wav, num_samples)):
        assert torch.equal(a, b)
    assert loaded.transcribe(wav, num_samples) == model.transcribe(wav, num_samples)
    if kind == "tokenizer":
        text = "What is 7 + 5?"
        assert loaded.labels.encode(text) == model.labels.encode(text)
    with pytest.raises(FileExistsError):
        loaded.save_pretrained(tmp_path / "moved" / "asr")


def test_from_pretrained_without_files_is_a_one_line_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved CTCRecognizer") as error:
        CTCRecognizer.from_pretrained(tmp_path)
    assert "\n" not in str(error.value)
    with pytest.raises(FileNotFoundError, match="not a saved CTCRecognizer"):
        CTCRecognizer.from_pretrained(tmp_path / "nowhere")


def test_init_from_copies_every_fitting_weight_and_leaves_the_new_head(tokenizer_dir, tmp_path):
    """A recogniser that spelled tokens starts one that writes characters: same encoder, new output layer."""
    torch.manual_seed(0)
    source = CTCRecognizer(labels=f"tokenizer:{tokenizer_dir}", **TINY)
    folder = source.save_pretrained(tmp_path / "tokens")
    torch.manual_seed(1)
    fresh = CTCRecognizer(labels="written", **TINY)
    torch.manual_seed(1)
    started = RecognizerModule(labels="written", init_from=str(folder), **TINY).recognizer
    own, theirs, before = started.net.state_dict(), source.net.state_dict(), fresh.net.state_dict()
    new = {name for name in own if not torch.equal(own[name], theirs[name] if own[name].shape == theirs[name].shape
                                                     else torch.empty(0))}
    assert new == {"head.weight", "head.bias"}  # everything else came from the source
    assert torch.equal(own["head.weight"], before["head.weight"])  # the new head is the usual random start
    # Its saved folder loads without the source (where training started is not part of the model).
    saved = started.save_pretrained(tmp_path / "written")
    shutil.rmtree(folder)
    loaded = CTCRecognizer.from_pretrained(saved)
    assert "init_from" not in yaml.safe_load((saved / "config.yaml").read_text())["init_args"]
    assert all(torch.equal(v, loaded.net.state_dict()[k]) for k, v in own.items())
    with pytest.raises(FileNotFoundError, match="init_from .*no model.safetensors"):
        RecognizerModule(labels="written", init_from=str(tmp_path / "nowhere"), **TINY)
    with pytest.raises(ValueError, match="only 1 of its .* weights fit"):
        CTCRecognizer(labels="written", **{**TINY, "dim": 16, "subsample_channels": 4}).init_from(saved)


def test_speech_text_data_reads_several_manifests_as_one_corpus(tmp_path):
    from s2s import audio
    from s2s.asr.data import SpeechTextDataset

    manifests = []
    for name, seconds in (("a", 0.5), ("b", 0.25)):
        folder = tmp_path / name
        folder.mkdir()
        audio.save(folder / "q.wav", tone_burst(300, seconds)[None], SAMPLE_RATE)
        (folder / "m.jsonl").write_text(json.dumps({"question_audio": "q.wav", "question": f"from {name}"}) + "\n")
        manifests.append(str(folder / "m.jsonl"))
    dataset = SpeechTextDataset(manifests, [("question_audio", "question")])
    assert [dataset[i]["text"] for i in range(len(dataset))] == ["from a", "from b"]
    assert [dataset[i]["wav"].numel() for i in range(2)] == [8000, 4000]
    with pytest.raises(ValueError, match="no rows with any of"):
        SpeechTextDataset(manifests, [("reply_audio", "reply")])
