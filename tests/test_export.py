"""`s2s export`: a Lightning checkpoint of the recogniser or the LM -> a model folder that loads the same."""
import json
import math
import random

import pytest
import torch
import yaml
from torch import nn

from s2s import audio
from s2s.asr.module import RecognizerModule
from s2s.asr.recognizer import CTCRecognizer
from s2s.cli import main
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.data.problems import generate_problem
from s2s.export import export_checkpoint, load_checkpoint
from s2s.hearing.heard import HeardQuestion
from s2s.lm.formats import Turn
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.module import SpeechReasoningModule
from s2s.lm.text_tokenizer import train_text_tokenizer

TINY_ASR = {"dim": 32, "layers": 1, "heads": 2, "ff_mult": 2, "conv_kernel": 3, "subsample_channels": 8}
TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 512}
ASR_CLASS, LM_CLASS = "s2s.asr.module.RecognizerModule", "s2s.lm.module.SpeechReasoningModule"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> str:
    rng = random.Random(0)
    rows = [{"id": str(i), **{k: getattr(p, k) for k in ("question_written", "thought", "reply")}}
            for i, p in enumerate(generate_problem(rng) for _ in range(20))]
    manifest = tmp_path_factory.mktemp("synth") / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    folder = tmp_path_factory.mktemp("tokenizer")
    train_text_tokenizer(manifest, vocab_size=300).save_pretrained(folder)
    return str(folder)


def tones(seconds=(0.5, 0.4)) -> tuple[torch.Tensor, torch.Tensor]:
    n = [round(s * 16000) for s in seconds]
    wav = torch.zeros(len(n), max(n))
    for row, length in enumerate(n):
        t = torch.arange(length) / 16000
        wav[row, :length] = 0.3 * torch.sin(2 * math.pi * (250 + 400 * row) * t * (1 + t))
    return wav, torch.tensor(n)


def save_checkpoint(module, path, class_path: str | None):
    """What LightningCLI writes: the state dict and the init arguments, with the class under `_class_path`."""
    hparams = {**module.hparams, "_instantiator": "lightning.pytorch.cli.instantiate_module"}
    if class_path is not None:
        hparams["_class_path"] = class_path
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": hparams}, path)
    return path


def perturb(module: nn.Module, seed: int) -> None:
    """Move every float weight a little, so the export must carry the checkpoint's weights, not fresh ones."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("labels", ["chars", "tokenizer"])
def test_export_a_recogniser_checkpoint(labels, tokenizer_dir, tmp_path, capsys):
    torch.manual_seed(0)
    spec = "chars" if labels == "chars" else f"tokenizer:{tokenizer_dir}"
    module = RecognizerModule(labels=spec, **TINY_ASR)
    perturb(module, 1)
    module.eval()
    model = module.recognizer
    ckpt = save_checkpoint(module, tmp_path / "last.ckpt", ASR_CLASS)
    main(["export", str(ckpt), str(tmp_path / "asr")])
    assert capsys.readouterr().out.strip() == str(tmp_path / "asr")
    loaded = CTCRecognizer.from_pretrained(tmp_path / "asr")
    assert loaded.labels.kind == labels and (tmp_path / "asr" / "tokenizer").is_dir() == (labels == "tokenizer")
    wav, n = tones()
    for a, b in zip(model(wav, n), loaded(wav, n)):
        assert torch.equal(a, b)
    fresh = CTCRecognizer(labels=spec, **TINY_ASR).eval()
    assert not torch.equal(fresh(wav, n)[1], loaded(wav, n)[1])


def test_fit_then_export_through_the_cli(tmp_path, capsys):
    """A checkpoint that `s2s fit` (LightningCLI) really wrote names its class and exports."""
    wav, n = tones()
    rows = []
    for i, text in enumerate(["a", "b"]):
        audio.save(tmp_path / f"q{i}.wav", wav[i, : n[i]], 16000)
        rows.append({"id": str(i), "question": text, "question_audio": f"q{i}.wav"})
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    run = tmp_path / "run"
    model = [f"--model.{k}={v}" for k, v in TINY_ASR.items()]
    main(["fit", "--model", ASR_CLASS, *model, "--model.warmup_steps=1",
          "--data", "s2s.asr.data.SpeechTextDataModule", f"--data.train={tmp_path / 'train.jsonl'}",
          "--data.batch_size=2", "--trainer.max_steps=1", "--trainer.accelerator=cpu",
          f"--trainer.default_root_dir={run}", "--trainer.logger=false", "--trainer.enable_progress_bar=false",
          "--trainer.enable_model_summary=false"])
    (ckpt,) = run.rglob("*.ckpt")
    capsys.readouterr()
    main(["export", str(ckpt), str(tmp_path / "asr")])
    loaded = CTCRecognizer.from_pretrained(tmp_path / "asr")
    trained = load_checkpoint(ckpt)
    assert isinstance(trained, RecognizerModule) and isinstance(trained.recognizer, CTCRecognizer)
    assert not trained.training and loaded.config.dim == 32
    assert "warmup_steps" not in yaml.safe_load((tmp_path / "asr" / "config.yaml").read_text())["init_args"]
    for a, b in zip(trained(wav, n), loaded(wav, n)):
        assert torch.equal(a, b)
    # A checkpoint from before the recogniser had its own module (its class and keys then) exports the same.
    old = torch.load(ckpt, map_location="cpu", weights_only=True)
    old["hyper_parameters"]["_class_path"] = "s2s.asr.module.CTCRecognizer"
    old["state_dict"] = {k.removeprefix("recognizer."): v for k, v in old["state_dict"].items()}
    torch.save(old, tmp_path / "old.ckpt")
    main(["export", str(tmp_path / "old.ckpt"), str(tmp_path / "old")])
    for a, b in zip(CTCRecognizer.from_pretrained(tmp_path / "old")(wav, n), loaded(wav, n)):
        assert torch.equal(a, b)


def _lm_with_hearing(tokenizer_dir, tmp_path) -> SpeechReasoningModule:
    torch.manual_seed(0)
    codec = save_net(TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=2,
                                                  codebook_size=16, decoder_dim=16, decoder_layers=1)).eval(),
                     tmp_path / "codec")
    hearing = CTCRecognizer(labels=f"tokenizer:{tokenizer_dir}", **TINY_ASR).save_pretrained(tmp_path / "hearing")
    lm = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=str(codec),
                               hearing=str(hearing))
    perturb(lm.model.adapter, 2)
    return lm


def test_export_an_lm_with_hearing(tokenizer_dir, tmp_path):
    lm = _lm_with_hearing(tokenizer_dir, tmp_path)
    lm.eval()
    ckpt = save_checkpoint(lm, tmp_path / "lm.ckpt", LM_CLASS)
    out = export_checkpoint(ckpt, tmp_path / "lm")
    loaded = SpeechReasoningLM.from_pretrained(out)
    assert torch.equal(loaded.adapter.project.weight, lm.model.adapter.project.weight)
    g = torch.Generator().manual_seed(0)
    heard = HeardQuestion(torch.randint(0, 300, (3, 2), generator=g), torch.full((3, 2), 0.5),
                          torch.randn(3, 32, generator=g))
    ids = lm.format.build(Turn(heard_length=3, thought_ids=[5, 6], reply_ids=[7],
                               reply_codes=torch.randint(0, 16, (2, 3), generator=g))).ids[None]
    with torch.no_grad():
        assert torch.equal(loaded(ids, None, [heard]), lm(ids, None, [heard]))


def test_export_refuses_unknown_classes_missing_files_and_existing_folders(tmp_path, capsys):
    torch.manual_seed(0)
    module = RecognizerModule(labels="chars", **TINY_ASR).eval()
    model = module.recognizer
    for class_path, named in (("s2s.codecs.tiny.module.TinyCodecModule", "holds s2s.codecs.tiny.module"),
                              (None, "holds an unnamed module")):
        ckpt = save_checkpoint(module, tmp_path / "other.ckpt", class_path)
        with pytest.raises(ValueError, match=named) as error:
            export_checkpoint(ckpt, tmp_path / "out")
        assert "\n" not in str(error.value) and "s2s codec export" in str(error.value)
        with pytest.raises(SystemExit) as exit_info:
            main(["export", str(ckpt), str(tmp_path / "out")])
        assert exit_info.value.code == 2 and capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "out").exists()

    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        export_checkpoint(tmp_path / "missing.ckpt", tmp_path / "out")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tmp_path / "missing.ckpt"), str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "checkpoint not found" in capsys.readouterr().err

    ckpt = save_checkpoint(module, tmp_path / "asr.ckpt", ASR_CLASS)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(ckpt), str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "already exists" in capsys.readouterr().err
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    main(["export", str(ckpt), str(tmp_path / "out"), "--overwrite"])
    assert not (tmp_path / "out" / "keep.txt").exists()
    wav, n = tones()
    assert torch.equal(CTCRecognizer.from_pretrained(tmp_path / "out")(wav, n)[1], model(wav, n)[1])


def test_lm_checkpoints_leave_the_frozen_hearing_out_and_export_with_the_current_one(tokenizer_dir, tmp_path):
    """A resumed or exported LM hears with the recogniser its `hearing` folder holds now, not a stale copy."""
    import torch as _torch

    lm = _lm_with_hearing(tokenizer_dir, tmp_path)
    checkpoint = {"state_dict": lm.state_dict()}
    lm.on_save_checkpoint(checkpoint)
    assert checkpoint["state_dict"] and not any(k.startswith("model.hearing.") for k in checkpoint["state_dict"])
    fresh = SpeechReasoningModule(**{k: v for k, v in lm.hparams.items() if not k.startswith("_")})
    fresh.on_load_checkpoint(checkpoint)
    fresh.load_state_dict(checkpoint["state_dict"], strict=fresh.strict_loading)
    for name, value in lm.state_dict().items():
        assert _torch.equal(fresh.state_dict()[name], value), name
    broken = {"state_dict": {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("model.adapter.")}}
    with pytest.raises(ValueError, match="lacks"):
        fresh.on_load_checkpoint(broken)
    # A checkpoint from before the model had its own module (keys without `model.`) loads the same.
    old = {"state_dict": {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}}
    fresh.on_load_checkpoint(old)
    assert set(old["state_dict"]) == set(checkpoint["state_dict"])
