"""`s2s fit --config configs/codec/tiny.yaml` trains, checkpoints, exports and resumes (tiny sizes)."""
from pathlib import Path

import torch

from s2s import audio
from s2s.cli import main
from s2s.codecs import load_codec

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "codec" / "tiny.yaml")
SMALL = ["--model.init_args.encoder_dim", "16", "--model.init_args.encoder_layers", "1",
         "--model.init_args.decoder_dim", "16", "--model.init_args.decoder_layers", "1",
         "--model.init_args.latent_dim", "8", "--model.init_args.codebook_size", "16",
         "--model.init_args.num_codebooks", "2", "--model.init_args.warmup_steps", "1",
         "--data.init_args.batch_size", "2", "--data.init_args.crop_seconds", "0.32",
         "--data.init_args.crops_per_epoch", "8", "--data.init_args.val_clips", "1",
         "--trainer.val_check_interval", "2", "--trainer.enable_progress_bar", "false"]


def write_clips(folder: Path, n: int) -> None:
    for i in range(n):
        t = torch.arange(8000) / 16000
        audio.save(folder / f"clip{i}.wav", 0.3 * torch.sin(2 * torch.pi * (200 + 50 * i) * t), 16000)


def test_fit_exports_a_loadable_codec_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the config's relative paths (data/, runs/) land in tmp_path
    write_clips(tmp_path / "data/codec-speech/train", 4)
    write_clips(tmp_path / "data/codec-speech/test", 1)
    (tmp_path / "data/codec-speech/train/manifest.jsonl").unlink(missing_ok=True)
    data = ["--data.init_args.train", "data/codec-speech/train", "--data.init_args.val", "data/codec-speech/test"]

    main(["fit", "--config", CONFIG, *SMALL, *data, "--trainer.max_steps", "4"])
    checkpoints = tmp_path / "runs/codec-tiny/checkpoints"
    assert (checkpoints / "last.ckpt").is_file()
    codec = load_codec(tmp_path / "runs/codec-tiny/export")
    assert codec.num_codebooks == 2 and codec.codebook_size == 16
    wav = torch.randn(1, 1, 3200) * 0.1
    assert codec.decode(codec.encode(wav, 16000)).shape == (1, 1, 3200)

    # Resume from the last checkpoint: training continues at step 4, and the first export is kept.
    main(["fit", "--config", CONFIG, *SMALL, *data, "--trainer.max_steps", "6", "--ckpt_path", "last"])
    resumed = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    assert resumed["global_step"] == 6
    assert (tmp_path / "runs/codec-tiny/export").is_dir() and (tmp_path / "runs/codec-tiny/export-step6").is_dir()

    # `s2s codec export` turns the Lightning checkpoint into the same codec the callback wrote.
    main(["codec", "export", str(checkpoints / "last.ckpt"), str(tmp_path / "exported")])
    exported, final = load_codec(tmp_path / "exported"), load_codec(tmp_path / "runs/codec-tiny/export-step6")
    codes = final.encode(wav, 16000)
    assert torch.equal(exported.encode(wav, 16000), codes)
    assert torch.equal(exported.decode(codes), final.decode(codes))
