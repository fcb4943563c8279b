"""Export a trained TinyCodecModule (Lightning checkpoint) to a codec folder `load_codec` reads."""
from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.module import TinyCodecModule


def export_checkpoint(ckpt_path: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Read only tensors and plain hyper-parameters from the checkpoint (weights_only=True)."""
    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt_path}")
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    # LightningCLI adds keys such as _class_path to the hyper-parameters; they are not arguments.
    # Where training started (init_from, trainable) is not needed to rebuild it: the state dict is complete.
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items()
               if not k.startswith("_") and k not in ("init_from", "trainable")}
    module = TinyCodecModule(**hparams)
    module.load_state_dict(checkpoint["state_dict"])
    return save_net(module.net, out_dir, overwrite)


class ExportCodec(L.Callback):
    """At the end of training, write the codec folder next to the run (never over an existing one)."""

    def __init__(self, out_dir: str = "runs/codec-tiny/export"):
        self.out_dir = out_dir

    def on_train_end(self, trainer: L.Trainer, module: TinyCodecModule) -> None:
        if trainer.is_global_zero:
            out = Path(self.out_dir)
            if out.exists():
                out = out.with_name(f"{out.name}-step{trainer.global_step}")
            save_net(module.net, out, overwrite=False)
            print(f"exported codec to {out}")
