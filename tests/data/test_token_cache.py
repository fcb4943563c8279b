"""Token cache: equal to live encoding, keyed by codec, atomic shards, resumes after a kill."""
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from s2s import audio
from s2s.codecs import load_codec
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.data.datamodule import LengthBucketSampler, SpokenReasoningDataset, collate
from s2s.data.manifest import write_manifest
from s2s.data.token_cache import TokenCache, cache_folder, encode_file, tokenize_manifest

SMALL = TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=2, codebook_size=16,
                        decoder_dim=16, decoder_layers=1)


def small_codec_folder(path, seed):
    torch.manual_seed(seed)
    net = TinyCodecNet(SMALL).train()
    net(torch.randn(2, 3200) * 0.1)  # k-means initialises the codebooks
    return save_net(net.eval(), path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A manifest of 12 examples, each with a question and a reply clip of different lengths."""
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for i in range(12):
        row = {"id": f"ex{i:02d}", "question": "q", "thought": "t", "answer": str(i), "reply": "r"}
        for side, seconds in (("question", 0.2 + 0.05 * i), ("reply", 0.3)):
            t = torch.arange(int(seconds * 16000)) / 16000
            audio.save(root / f"wavs/{i}.{side}.wav", 0.3 * torch.sin(2 * torch.pi * (150 + 20 * i) * t), 16000)
            row[f"{side}_audio"], row[f"{side}_duration_s"] = f"wavs/{i}.{side}.wav", seconds
        rows.append(row)
    manifest = write_manifest(root / "manifest.jsonl", rows)
    codec_a = small_codec_folder(root / "codec_a", seed=0)
    codec_b = small_codec_folder(root / "codec_b", seed=1)
    return manifest, codec_a, codec_b


def test_cache_equals_live_encoding(corpus, tmp_path):
    manifest, codec_path, _ = corpus
    codec = load_codec(codec_path)
    cache = tokenize_manifest(manifest, codec, cache_root=tmp_path, shard_size=5, workers=2, progress=False)
    assert len(cache) == 24 and len(list(cache.folder.glob("shard-*.safetensors"))) == 5
    live = encode_file(codec, manifest.parent / "wavs/3.question.wav")
    assert torch.equal(cache.get("ex03", "question_audio"), live)
    with pytest.raises(KeyError, match="s2s data tokenize"):
        cache.get("nope", "question_audio")


def test_another_codec_never_reads_stale_tokens(corpus, tmp_path):
    manifest, codec_a, codec_b = corpus
    folder_a = tokenize_manifest(manifest, load_codec(codec_a), cache_root=tmp_path, progress=False).folder
    folder_b = tokenize_manifest(manifest, load_codec(codec_b), cache_root=tmp_path, progress=False).folder
    assert folder_a != folder_b
    assert json.loads((folder_b / "cache.json").read_text())["fingerprint"] == load_codec(codec_b).fingerprint()
    assert cache_folder(manifest, load_codec(codec_a), tmp_path) == folder_a  # same weights, same cache
    # A new decoder alone (configs/codec/tiny-decoder.yaml) writes the same codes: the same cache.
    tuned = load_codec(codec_a)
    with torch.no_grad():
        tuned.net.decoder.head.weight.add_(0.1)
        assert cache_folder(manifest, tuned, tmp_path) == folder_a
        tuned.net.encoder.proj_out.weight.add_(0.1)
    assert cache_folder(manifest, tuned, tmp_path) != folder_a


def test_changed_audio_invalidates_its_shard(corpus, tmp_path):
    manifest, codec_path, _ = corpus
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in manifest.parent.glob("wavs/*"):
        (copy / "wavs").mkdir(exist_ok=True)
        (copy / "wavs" / path.name).write_bytes(path.read_bytes())
    (copy / "manifest.jsonl").write_text(manifest.read_text())
    codec = load_codec(codec_path)
    tokenize_manifest(copy / "manifest.jsonl", codec, shard_size=6, progress=False)
    audio.save(copy / "wavs/0.question.wav", torch.zeros(4000) + 0.01 * torch.randn(4000), 16000, overwrite=True)
    cache = tokenize_manifest(copy / "manifest.jsonl", codec, shard_size=6, progress=False)
    assert torch.equal(cache.get("ex00", "question_audio"), encode_file(codec, copy / "wavs/0.question.wav"))


KILLABLE = """
import sys, time
from s2s.codecs import load_codec
from s2s.data import token_cache
slow = token_cache.encode_file
def encode_slowly(codec, path):
    time.sleep(0.15)
    return slow(codec, path)
token_cache.encode_file = encode_slowly
token_cache.tokenize_manifest(sys.argv[1], load_codec(sys.argv[2]), cache_root=sys.argv[3], shard_size=2,
                              workers=1, progress=False)
"""


def test_resume_after_kill(corpus, tmp_path):
    manifest, codec_path, _ = corpus
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(manifest), str(codec_path), str(tmp_path)])
    folder = cache_folder(manifest, load_codec(codec_path), tmp_path)
    deadline = time.time() + 60
    while len(list(folder.glob("shard-*.safetensors"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p: p.stat().st_mtime_ns for p in folder.glob("shard-*.safetensors")}
    assert 3 <= len(done) < 12, "the run should have been killed part way"
    cache = tokenize_manifest(manifest, load_codec(codec_path), cache_root=tmp_path, shard_size=2, progress=False)
    assert len(cache) == 24 and not list(folder.glob(".shard.*"))
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in done.items())  # finished shards were kept
    fresh = tokenize_manifest(manifest, load_codec(codec_path), cache_root=tmp_path / "fresh", shard_size=2,
                              progress=False)
    assert all(torch.equal(cache.get(f"ex{i:02d}", "reply_audio"), fresh.get(f"ex{i:02d}", "reply_audio"))
               for i in range(12))


def test_dataset_uses_cache_or_live_encoding_identically(corpus, tmp_path):
    manifest, codec_path, _ = corpus
    codec = load_codec(codec_path)
    cache = tokenize_manifest(manifest, codec, cache_root=tmp_path, progress=False)
    cached, live = SpokenReasoningDataset(manifest, codec, cache), SpokenReasoningDataset(manifest, codec, None)
    for i in (0, 7):
        assert torch.equal(cached[i]["question_codes"], live[i]["question_codes"])
    batch = collate([cached[i] for i in (0, 11)])
    assert batch["question_codes"].shape[:2] == (2, 2)
    assert batch["question_lengths"].tolist() == [cached[0]["question_codes"].shape[-1],
                                                  cached[11]["question_codes"].shape[-1]]
    assert batch["question_codes"][0, :, batch["question_lengths"][0]:].eq(0).all()
    assert batch["answer"] == ["0", "11"]
    assert isinstance(TokenCache(cache.folder), TokenCache)


def test_length_buckets_group_similar_lengths_and_reshuffle():
    lengths = [random_length for random_length in range(100, 0, -1)]
    sampler = LengthBucketSampler(lengths, batch_size=10, pool_batches=10, seed=0)
    first = list(sampler)
    assert sorted(i for batch in first for i in batch) == list(range(100))
    assert all(max(lengths[i] for i in b) - min(lengths[i] for i in b) == 9 for b in first)  # one pool: sorted
    sampler.set_epoch(1)
    assert list(sampler) != first  # a new epoch, a new order
    sampler.set_epoch(0)
    assert list(sampler) == first  # the same epoch, the same order: what a resumed run relies on
