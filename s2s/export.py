"""Lightning checkpoint -> model folder, for any s2s module with `save_pretrained` (LM, recogniser).

The checkpoint names its own class (LightningCLI stores `_class_path` with the
hyper-parameters), so one command exports whatever a config trained.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import torch

EXPORTABLE = ("s2s.lm.module.SpeechReasoningModule", "s2s.asr.module.RecognizerModule",
              "s2s.style.speaker.SpeakerClassifier", "s2s.style.converter_training.ConverterModule",
              "s2s.lm.word_decoder_training.WordDecoderModule", "s2s.lm.thinker_training.ThinkerModule")
# Training modules that moved: checkpoints written before still name the old place.
MOVED = {"s2s.asr.module.CTCRecognizer": "s2s.asr.module.RecognizerModule",
         "s2s.lm.model.SpeechReasoningLM": "s2s.lm.module.SpeechReasoningModule",
         "s2s.style.converter.VoiceConverter": "s2s.style.converter_training.ConverterModule",
         "s2s.lm.word_decoder.WordDecoderModule": "s2s.lm.word_decoder_training.WordDecoderModule"}


def load_checkpoint(ckpt_path: str | Path):
    """The LightningModule a checkpoint holds, with its weights, in eval mode."""
    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt_path}")
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)  # tensors and plain values only
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    class_path = MOVED.get(hparams.get("_class_path"), hparams.get("_class_path"))
    if class_path not in EXPORTABLE:
        raise ValueError(f"{ckpt_path} holds {class_path or 'an unnamed module'}; `s2s export` exports "
                         f"{', '.join(EXPORTABLE)} (use `s2s codec export` for codecs)")
    module_name, _, class_name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    # Where training started (a recogniser's `init_from`) is not needed to rebuild it: the weights follow.
    module = cls(**{k: v for k, v in hparams.items() if not k.startswith("_") and k != "init_from"})
    if hasattr(module, "on_load_checkpoint"):
        module.on_load_checkpoint(checkpoint)  # e.g. the LM leaves its frozen hearing out of checkpoints
    module.load_state_dict(checkpoint["state_dict"], strict=getattr(module, "strict_loading", True))
    return module.eval()


def export_checkpoint(ckpt_path: str | Path, out_dir: str | Path, overwrite: bool = False, half: bool = False) -> Path:
    """`half`: float16 weights, half the bytes (what ships in the repository)."""
    return load_checkpoint(ckpt_path).save_pretrained(out_dir, overwrite=overwrite, half=half)
