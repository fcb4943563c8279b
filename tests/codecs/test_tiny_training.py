"""`s2s fit --config configs/codec/tiny.yaml` trains, checkpoints, exports and resumes (tiny sizes)."""
from pathlib import Path

import pytest
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


@pytest.mark.parametrize("config", ["tiny-decoder", "tiny-decoder-stoi"])
def test_decoder_fine_tune_keeps_every_code_and_changes_only_the_decoder(config, tmp_path, monkeypatch):
    """configs/codec/tiny-decoder*.yaml: an LM trained on the old codes must still be understood."""
    monkeypatch.chdir(tmp_path)
    write_clips(tmp_path / "clips", 4)
    data = ["--data.init_args.train", "clips", "--data.init_args.val", "clips"]
    main(["fit", "--config", CONFIG, *SMALL, *data, "--trainer.max_steps", "3"])
    start = load_codec(tmp_path / "runs/codec-tiny/export")

    decoder_config = str(Path(CONFIG).with_name(f"{config}.yaml"))
    decoder_run = ["fit", "--config", decoder_config, *SMALL, *data, "--trainer.max_steps", "3",
                   "--model.init_args.init_from", "runs/codec-tiny/export", "--model.init_args.lr", "0.01"]
    if config.endswith("stoi"):
        with pytest.raises(ValueError, match="stoi_weight needs crops of at least 0.4 s"):
            main(decoder_run)  # SMALL's 0.32 s crops are too short for STOI
        decoder_run += ["--data.init_args.crop_seconds", "0.48"]
    main(decoder_run)
    tuned = load_codec(tmp_path / f"runs/codec-{config}/export")
    wav = torch.randn(1, 1, 3200) * 0.1
    codes = start.encode(wav, 16000)
    assert torch.equal(tuned.encode(wav, 16000), codes)
    after = tuned.net.state_dict()
    changed = {name for name, before in start.net.state_dict().items() if not torch.equal(before, after[name])}
    assert changed and all(name.startswith("decoder.") for name in changed), sorted(changed)
    assert not torch.equal(tuned.decode(codes), start.decode(codes))


def test_decoder_fine_tune_settings_are_checked(tmp_path):
    from s2s.codecs.tiny.codec import save_net
    from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
    from s2s.codecs.tiny.module import TinyCodecModule

    with pytest.raises(ValueError, match="choose one of"):
        TinyCodecModule(trainable="encoder")
    with pytest.raises(ValueError, match="give init_from"):
        TinyCodecModule(trainable="decoder")
    small = dict(encoder_dim=16, encoder_layers=1, decoder_dim=16, decoder_layers=1, latent_dim=8,
                 codebook_size=16, num_codebooks=2)
    save_net(TinyCodecNet(TinyCodecConfig(**small)), tmp_path / "codec")
    with pytest.raises(ValueError, match="decoder_dim.*16 there, 32 here"):
        TinyCodecModule(**{**small, "decoder_dim": 32}, init_from=str(tmp_path / "codec"), trainable="decoder")
    module = TinyCodecModule(**small, init_from=str(tmp_path / "codec"), trainable="decoder").train()
    assert not module.net.quantizer.training and not module.net.encoder.training and module.net.decoder.training
    assert all(p.requires_grad == n.startswith("decoder.") for n, p in module.net.named_parameters())


def test_the_stoi_loss_raises_intelligibility_and_stays_out_of_checkpoints(tmp_path):
    """configs/codec/tiny-decoder-stoi.yaml: the negated STOI term pulls the decoder towards what pystoi scores."""
    from torchmetrics.functional.audio import short_time_objective_intelligibility

    from s2s.codecs.tiny.module import TinyCodecModule

    with pytest.raises(ValueError, match="stoi_weight=-1.*must be >= 0"):
        TinyCodecModule(stoi_weight=-1.0)
    torch.manual_seed(0)
    speech, _ = audio.load(Path(__file__).resolve().parents[2] / "s2s/assets/example_question.wav", 16000)
    wav = speech[:, 8000: 8000 + 20480]  # 1.28 s of speech [1, T]
    module = TinyCodecModule(encoder_dim=16, encoder_layers=1, decoder_dim=32, decoder_layers=2, latent_dim=8,
                             codebook_size=16, num_codebooks=2, mel_weight=0.0, stft_weight=0.0, commit_weight=0.0,
                             stoi_weight=1.0, quantizer_dropout=0.0)
    assert not any(key.startswith("stoi_loss") for key in module.state_dict())  # checkpoints hold the codec only
    module.log_dict = lambda *args, **kwargs: None  # no trainer to log to

    def score() -> float:
        return float(short_time_objective_intelligibility(module.net(wav)[0][..., :20480], wav, 16000))

    before = score()
    optimizer = torch.optim.Adam(module.net.decoder.parameters(), lr=3e-3)
    for _ in range(30):
        loss = module.training_step(wav, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert score() > before + 0.1, (before, score())  # 0.46 -> 0.96 when written
