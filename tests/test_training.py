"""The shared learning-rate schedule and atomic folder writes."""
import math
from pathlib import Path

import pytest
import yaml

from s2s.files import atomic_folder
from s2s.training import warmup_cosine


def test_warmup_then_cosine_to_the_floor():
    assert warmup_cosine(0, warmup_steps=10, total_steps=110) == pytest.approx(0.1)
    assert warmup_cosine(9, warmup_steps=10, total_steps=110) == pytest.approx(1.0)
    assert warmup_cosine(60, warmup_steps=10, total_steps=110, floor=0.0) == pytest.approx(0.5)
    assert warmup_cosine(500, warmup_steps=10, total_steps=110, floor=0.05) == pytest.approx(0.05)
    assert warmup_cosine(50, warmup_steps=10, progress=1.0, floor=0.2) == pytest.approx(0.2)  # time-based progress
    assert warmup_cosine(10**6, warmup_steps=10, total_steps=math.inf) == pytest.approx(1.0)


def test_atomic_folder_is_all_or_nothing(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "weights.bin").write_text("half")
            raise RuntimeError("crash while saving")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_folder(target) as tmp:
        (tmp / "weights.bin").write_text("whole")
    assert (target / "weights.bin").read_text() == "whole" and oct(target.stat().st_mode)[-3:] == "755"
    with pytest.raises(FileExistsError, match="already exists"):
        with atomic_folder(target):
            pass
    assert (target / "weights.bin").read_text() == "whole"


class FakeTrainer:
    def __init__(self, max_steps=-1, estimated_stepping_batches=1000, callbacks=()):
        self.max_steps, self.callbacks = max_steps, callbacks
        self.estimated_stepping_batches = estimated_stepping_batches


def test_run_progress_follows_steps_or_the_clock_whichever_ends_the_run_first(monkeypatch):
    from lightning.pytorch.callbacks import Timer

    from s2s.training import run_progress

    # By steps: max_steps when set, else the epochs' worth of batches.
    assert run_progress(FakeTrainer(max_steps=110), 60, warmup_steps=10) == pytest.approx(0.5)
    assert run_progress(FakeTrainer(estimated_stepping_batches=210), 110, warmup_steps=10) == pytest.approx(0.5)
    assert run_progress(FakeTrainer(max_steps=110), 5, warmup_steps=10) == 0.0  # still warming up
    assert run_progress(FakeTrainer(max_steps=110), 500, warmup_steps=10) == 1.0
    # A time limit that ends the run long before its epochs do: the clock decides, and it survives a resume
    # because Lightning's Timer restores its elapsed time from the checkpoint.
    timer = Timer(duration="00:00:10:00")
    monkeypatch.setattr(timer, "time_elapsed", lambda stage: 300.0)
    trainer = FakeTrainer(estimated_stepping_batches=28000, callbacks=[timer])
    assert run_progress(trainer, 1000, warmup_steps=10) == pytest.approx(0.5)
    assert run_progress(FakeTrainer(max_steps=-1, estimated_stepping_batches=math.inf), 50, 10) == 0.0


def test_bf16_on_a_cpu_without_it_falls_back_to_32_bits(monkeypatch):
    from s2s import training

    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: False)
    assert training.cpu_precision("bf16-mixed", "cpu") == "32-true"
    assert training.cpu_precision("bf16-true", "cpu") == "32-true"
    assert training.cpu_precision("16-mixed", "cpu") == "16-mixed" and training.cpu_precision(32, "cpu") == 32
    assert training.cpu_precision("bf16-mixed", "gpu") == "bf16-mixed"  # accelerators have their own bf16
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: True)
    assert training.cpu_precision("bf16-mixed", "cpu") == "bf16-mixed"


def test_s2s_fit_trains_in_32_bits_where_the_cpu_lacks_bf16(monkeypatch, tmp_path, capsys):
    """The CLI applies the fallback before anything is built, and the saved run config records it."""
    import json

    import torch
    import yaml

    from s2s import audio, training
    from s2s.cli import main

    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: False)
    rows = []
    for i in range(2):
        audio.save(tmp_path / f"{i}.wav", 0.1 * torch.randn(1, 4000), 16000)
        rows.append({"id": str(i), "question_audio": f"{i}.wav", "question": "one two"})
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    main(["fit", "--trainer.precision=bf16-mixed", "--trainer.accelerator=cpu", "--trainer.logger=false",
          "--trainer.max_steps=1", "--trainer.enable_checkpointing=false", "--trainer.enable_progress_bar=false",
          f"--trainer.default_root_dir={tmp_path}", "--model=s2s.asr.module.RecognizerModule", "--model.dim=16",
          "--model.layers=1", "--model.heads=2", "--model.subsample_channels=4",
          "--data=s2s.asr.data.SpeechTextDataModule", f"--data.train={tmp_path / 'm.jsonl'}", "--data.batch_size=2"])
    assert "no native bfloat16 (32-true instead of bf16-mixed" in capsys.readouterr().out
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["trainer"]["precision"] == "32-true"


def test_saved_configs_are_checked_before_anything_is_built(tmp_path):
    from s2s.files import check_init_args

    class Model:
        def __init__(self, dim: int = 4, lr: float = 1e-3):
            pass

    assert check_init_args(Model, {"dim": 8}, "config.yaml") == {"dim": 8}
    with pytest.raises(ValueError, match=r"config.yaml: unknown keys \['learning_rate'\] for Model; allowed: "
                                         r"\['dim', 'lr'\]"):
        check_init_args(Model, {"dim": 8, "learning_rate": 1}, "config.yaml")
    with pytest.raises(ValueError, match="must be a mapping"):
        check_init_args(Model, ["dim"], "config.yaml")


def test_a_saved_recogniser_with_a_misspelt_key_is_refused_in_one_line(tmp_path):
    import shutil

    from s2s.asr.recognizer import CTCRecognizer

    folder = tmp_path / "hearing"
    shutil.copytree(Path(__file__).resolve().parents[1] / "s2s/assets/models/s2s-reasoner-tiny/hearing", folder)
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace("  dim: ", "  dimm: "))
    with pytest.raises(ValueError, match=r"unknown keys \['dimm'\] for CTCRecognizer; allowed: \['labels', 'dim'"):
        CTCRecognizer.from_pretrained(folder)


def test_every_torch_load_in_the_package_is_weights_only():
    """Safe loading: a downloaded checkpoint must never run code, so no torch.load may unpickle objects."""
    import re

    package = Path(__file__).resolve().parents[1] / "s2s"
    calls = [(path, m.group(0)) for path in package.rglob("*.py")
             for m in re.finditer(r"torch\.load\([^)]*\)", path.read_text())]
    assert calls, "expected the package to load some checkpoints"
    unsafe = [f"{path.relative_to(package)}: {call}" for path, call in calls if "weights_only=True" not in call]
    assert not unsafe, unsafe


def test_a_checkpoint_save_that_dies_half_way_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    import torch

    from s2s.training import AtomicCheckpointIO

    io, target = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, target)
    real_save = torch.save

    def dies_half_way(obj, file):
        Path(file).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt  # killed while writing

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": torch.tensor(2)}, target)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.load(target, weights_only=True)["step"] == 1
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]  # no temporary file left behind


CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# Overlays hold only what differs from a base config; each is checked on top of its base.
OVERLAYS = {"lm/reasoner-tiny-codes.yaml": "lm/reasoner-tiny.yaml", "scale/ddp-cpu.yaml": "lm/tiny.yaml",
            "scale/ddp.yaml": "lm/qwen2.5-0.5b-mimi.yaml", "scale/fsdp.yaml": "lm/qwen2.5-0.5b-mimi.yaml"}
SHIPPED_CONFIGS = sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.yaml"))


MODEL_DRAWS_ITS_DATA = {"lm/thinker-smollm2.yaml"}


@pytest.mark.parametrize("config", SHIPPED_CONFIGS)
def test_every_shipped_config_passes_lightning_cli_checks(config, capsys):
    """Every key of every shipped config is one its class takes, with a value of the right type (no run)."""
    from s2s.cli import main

    stack = [OVERLAYS[config], config] if config in OVERLAYS else [config]
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *(arg for name in stack for arg in ("--config", str(CONFIGS / name))), "--print_config"])
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"]
    # The thinker draws fresh problems itself (ThinkerModule.train_dataloader); every other run names its data.
    assert printed["data"]["class_path"] if config not in MODEL_DRAWS_ITS_DATA else printed["data"] is None


def test_record_run_saves_each_ranks_weights_batches_and_launcher_variables(tmp_path, monkeypatch):
    import torch

    from s2s.training import RecordRun

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    trainer = type("Trainer", (), {"global_rank": 1, "world_size": 2})()
    module = torch.nn.Linear(2, 1)
    record = RecordRun(dirpath=str(tmp_path / "ranks"))
    for batch in ({"question_written": ["What is 1 + 2?"]}, {"question_written": ["What is 3 + 4?"]}):
        record.on_train_batch_start(trainer, module, batch, 0)
    record.on_train_end(trainer, module)
    saved = torch.load(tmp_path / "ranks" / "rank1.pt", weights_only=True)
    assert saved["batches"] == [["What is 1 + 2?"], ["What is 3 + 4?"]] and saved["world"] == 2
    assert saved["env"]["RANK"] == "1" and saved["env"]["WORLD_SIZE"] == "2" and saved["env"]["MASTER_PORT"] is None
    assert torch.equal(saved["weights"]["weight"], module.weight.detach())

    whole = RecordRun(dirpath=str(tmp_path), field=None)  # batches of any kind, as their repr
    whole.on_train_batch_start(trainer, module, torch.zeros(3), 0)
    assert whole.batches == [repr(torch.zeros(3))]


def test_kill_at_step_kills_its_process_uncatchably_at_that_step_only():
    import signal
    import subprocess
    import sys

    code = ("import types\nfrom s2s.training import KillAtStep\nkill = KillAtStep(step=3)\n"
            "for step in range(5):\n"
            "    kill.on_train_batch_start(types.SimpleNamespace(global_step=step), None, None, 0)\n"
            "    print('step', step, 'ran', flush=True)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split("\n")[:-1] == ["step 0 ran", "step 1 ran", "step 2 ran"]


def test_a_checkpoint_that_runs_code_on_load_runs_it_only_without_weights_only(tmp_path, capsys):
    import pickle

    import torch

    from s2s.export import export_checkpoint
    from s2s.training import RunsOnLoad

    torch.save({"state_dict": {}, "payload": RunsOnLoad(print, "payload ran")}, tmp_path / "hostile.ckpt")
    torch.load(tmp_path / "hostile.ckpt", weights_only=False)
    assert capsys.readouterr().out == "payload ran\n"
    with pytest.raises(pickle.UnpicklingError, match="Unsupported global: GLOBAL print"):
        torch.load(tmp_path / "hostile.ckpt", weights_only=True)
    with pytest.raises(pickle.UnpicklingError):
        export_checkpoint(tmp_path / "hostile.ckpt", tmp_path / "out")  # s2s's own loaders refuse it too
    assert capsys.readouterr().out == "" and not (tmp_path / "out").exists()
