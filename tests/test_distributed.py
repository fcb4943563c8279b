"""DDP through Lightning's own strategy, on 2 CPU processes over gloo (configs/scale/ddp-cpu.yaml): a few steps of
codec and LM training end with the same weights on both ranks, each rank having trained on its own batches.
The GPU overlays (ddp.yaml, fsdp.yaml) parse and build their strategies here; they run where GPUs are."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from jsonargparse import ArgumentParser

from s2s import audio
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.data.synth import synthesize

ROOT = Path(__file__).resolve().parents[1]
SCALE = ROOT / "configs" / "scale"
TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 512}
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
         "--trainer.limit_val_batches", "0", "--trainer.val_check_interval", "null", "--trainer.max_steps", "3"]

def _torchrun(workdir: Path, args: list[str]) -> list[dict]:
    """Each rank saves its weights and the batches it trained on when training ends (RecordRun)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    record = {"class_path": "s2s.training.RecordRun", "init_args": {"field": None}}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "s2s.cli",
           "fit", *args, "--config", str(SCALE / "ddp-cpu.yaml"), *QUIET, f"--trainer.callbacks+={json.dumps(record)}"]
    done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [torch.load(workdir / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]


def _assert_same_weights_different_batches(ranks: list[dict]) -> None:
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["weights"].keys() == ranks[1]["weights"].keys()
    for name, tensor in ranks[0]["weights"].items():
        assert torch.equal(tensor, ranks[1]["weights"][name]), f"{name} differs between the ranks"
    assert len(ranks[0]["batches"]) == len(ranks[1]["batches"]) == 3
    assert not set(ranks[0]["batches"]) & set(ranks[1]["batches"])  # each rank its own share


@pytest.fixture(scope="module")
def small_codec(tmp_path_factory) -> str:
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=2,
                                       codebook_size=16, decoder_dim=16, decoder_layers=1))
    return str(save_net(net.eval(), tmp_path_factory.mktemp("codec") / "small"))


def test_ddp_lm_training_on_two_cpu_processes_ends_with_identical_weights(small_codec, tmp_path):
    synthesize(tmp_path / "data/synth/train", n=12, split="train", workers=1, progress=False)
    args = ["--config", str(ROOT / "configs/lm/tiny.yaml"),
            "--model.init_args.backbone_config", json.dumps(TINY_LLAMA), "--model.init_args.codec", small_codec,
            "--model.init_args.num_codebooks", "null", "--model.init_args.warmup_steps", "1",
            "--data.init_args.codec", small_codec, "--data.init_args.batch_size", "2", "--data.init_args.val", "null"]
    _assert_same_weights_different_batches(_torchrun(tmp_path, args))


def test_ddp_codec_training_on_two_cpu_processes_ends_with_identical_weights_and_codebooks(tmp_path):
    folder = tmp_path / "data/codec-speech/train"
    for i in range(4):
        t = torch.arange(8000) / 16000
        audio.save(folder / f"clip{i}.wav", 0.3 * torch.sin(2 * torch.pi * (200 + 50 * i) * t), 16000)
    args = ["--config", str(ROOT / "configs/codec/tiny.yaml"),
            "--model.init_args.encoder_dim", "16", "--model.init_args.encoder_layers", "1",
            "--model.init_args.decoder_dim", "16", "--model.init_args.decoder_layers", "1",
            "--model.init_args.latent_dim", "8", "--model.init_args.codebook_size", "16",
            "--model.init_args.num_codebooks", "2", "--model.init_args.warmup_steps", "1",
            "--data.init_args.train", str(folder), "--data.init_args.val", "null",
            "--data.init_args.batch_size", "2", "--data.init_args.crop_seconds", "0.32",
            "--data.init_args.crops_per_epoch", "16"]
    ranks = _torchrun(tmp_path, args)
    _assert_same_weights_different_batches(ranks)
    assert any("codebooks" in name or "embed" in name for name in ranks[0]["weights"])  # EMA buffers compared too


@pytest.mark.parametrize("overlay", ["ddp.yaml", "fsdp.yaml", "ddp-cpu.yaml"])
@pytest.mark.parametrize("model_config", ["lm/qwen2.5-0.5b-mimi.yaml", "lm/reasoner-tiny.yaml", "codec/tiny.yaml"])
def test_scale_overlays_parse_over_every_training_config(overlay, model_config, monkeypatch, capsys):
    from s2s.cli import main

    monkeypatch.setattr("sys.argv", ["s2s"])
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(ROOT / "configs" / model_config), "--config", str(SCALE / overlay),
              "--print_config"])
    printed = capsys.readouterr().out
    assert exit_info.value.code == 0 and "use_distributed_sampler: false" in printed


def test_fsdp_overlay_builds_its_strategy_with_one_unit_per_transformer_block():
    import yaml
    from lightning.pytorch.strategies import FSDPStrategy
    from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer

    config = yaml.safe_load((SCALE / "fsdp.yaml").read_text())["trainer"]["strategy"]
    parser = ArgumentParser()
    parser.add_argument("--strategy", type=FSDPStrategy)
    strategy = parser.instantiate(parser.parse_object({"strategy": config})).strategy
    assert isinstance(strategy, FSDPStrategy) and strategy.sharding_strategy.name == "FULL_SHARD"
    assert Qwen2DecoderLayer in strategy.kwargs["auto_wrap_policy"]._module_classes
