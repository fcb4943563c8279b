"""Teaching a pretrained LM to think in the corpus's checkable thoughts: LoRA on problems drawn fresh each step.

    s2s fit --config configs/lm/thinker-smollm2.yaml
    s2s export runs/thinker/checkpoints/last.ckpt my-thinker --half

Only the thought and the reply text are targets; the prompt is given. Each
step draws new problems from the grammar's training split (`s2s/data/
problems.py`), written with digits or said in words, sometimes in lower case
without a question mark, and a share of questions to decline: a pretrained LM
needs to see a format, not to memorise a corpus.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import lightning as L
import torch
import yaml
from torch.utils.data import DataLoader, IterableDataset

from s2s.data.problems import FAMILIES, OUT_OF_SCOPE_FAMILY, generate_problem
from s2s.files import atomic_folder
from s2s.lm.thinker import CONFIG_FILE, SMOLLM2, SYSTEM, load_backbone, needs, prompt_ids, target_text
from s2s.lm.tools import answer_from_thought
from s2s.training import time_aware_scheduler

IGNORE = -100


def surface(problem, rng: random.Random, words: float = 0.3, casual: float = 0.2) -> str:
    """The question as a user might type it: digits, or (`words`) numbers in words; (`casual`) lower case, with
    no final punctuation."""
    question = problem.question if rng.random() < words else problem.question_written
    if rng.random() < casual:
        question = question.rstrip("?.")
        question = question.lower() if rng.random() < 0.75 else question
    return question


class ThinkerRows(IterableDataset):
    """Endless (prompt + target ids, labels) rows of problems from the grammar's training split."""

    def __init__(self, tokenizer, seed: int, out_of_scope: float, words: float, casual: float, system: str):
        self.tokenizer, self.seed, self.out_of_scope = tokenizer, seed, out_of_scope
        self.words, self.casual, self.system = words, casual, system

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = random.Random(f"{self.seed}:{info.id if info else 0}:{torch.initial_seed()}")
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        while True:
            family = OUT_OF_SCOPE_FAMILY if rng.random() < self.out_of_scope else rng.choice(FAMILIES)
            problem = generate_problem(rng, family, "train")
            prompt = prompt_ids(self.tokenizer, surface(problem, rng, self.words, self.casual), self.system)
            target = self.tokenizer.encode(target_text(problem.thought, problem.reply), add_special_tokens=False)
            yield prompt + target + [end], [IGNORE] * len(prompt) + target + [end]


def collate(rows, pad: int) -> dict:
    width = max(len(ids) for ids, _ in rows)
    return {"input_ids": torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows]),
            "labels": torch.tensor([labels + [IGNORE] * (width - len(labels)) for _, labels in rows]),
            "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows])}


class ThinkerModule(L.LightningModule):
    """LoRA (`peft`) on a pretrained causal LM, trained on the grammar's problems; `save_pretrained` writes the
    adapter and `thinker.yaml`, which `s2s.lm.thinker.Thinker.from_pretrained` loads.

    `rank`, `alpha`, `dropout`: the LoRA matrices on every linear layer. `val_examples` validation problems
    (the grammar's test split, training phrasings) are answered greedily with the calculator each
    validation: `val/accuracy`."""

    def __init__(self, backbone: str = SMOLLM2, system: str = SYSTEM, rank: int = 16, alpha: int = 32,
                 dropout: float = 0.05, lr: float = 5e-4, warmup_steps: int = 20, weight_decay: float = 0.0,
                 batch_size: int = 8, out_of_scope: float = 0.06, words: float = 0.3, casual: float = 0.2,
                 seed: int = 0, val_examples: int = 16):
        super().__init__()
        self.save_hyperparameters()
        needs("peft")
        from peft import LoraConfig, get_peft_model

        model, self.tokenizer = load_backbone(backbone)
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear",
                            task_type="CAUSAL_LM")
        self.model = get_peft_model(model, config)
        self.model.train()  # from_pretrained leaves it in eval mode: LoRA's dropout would stay off
        self.strict_loading = False  # checkpoints hold the LoRA weights alone (on_save_checkpoint)

    def train_dataloader(self) -> DataLoader:
        h = self.hparams
        rows = ThinkerRows(self.tokenizer, h.seed, h.out_of_scope, h.words, h.casual, h.system)
        pad = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        return DataLoader(rows, batch_size=h.batch_size, collate_fn=lambda b: collate(b, pad))

    def val_dataloader(self) -> DataLoader:
        from s2s.data.problems import generate_problems

        problems = generate_problems(self.hparams.val_examples, seed=5, split="test")
        return DataLoader([(p.question_written, p.thought) for p in problems], batch_size=len(problems),
                          collate_fn=lambda b: b)

    def training_step(self, batch, batch_idx):
        loss = self.model(**batch).loss
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        from s2s.lm.thinker import Thinker

        thinker = Thinker(self.model, self.tokenizer, self.hparams.backbone, self.hparams.system)
        written = thinker.think([q for q, _ in batch], max_new_tokens=200)
        right = [answer_from_thought(t) == answer_from_thought(want) for (t, _), (_, want) in zip(written, batch)]
        self.model.train()
        self.log("val/accuracy", sum(right) / len(right), prog_bar=True, batch_size=len(right))

    def configure_optimizers(self):
        trained = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trained, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        return {"optimizer": optimizer,
                "lr_scheduler": time_aware_scheduler(optimizer, self.trainer, self.hparams.warmup_steps)}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Only the LoRA weights: the frozen backbone comes from its own files (538 MB saved each time else)."""
        trained = {name for name, p in self.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trained}

    def save_pretrained(self, out_dir: str | Path, overwrite: bool = False, half: bool = False) -> Path:
        """The LoRA adapter (float16 with `half`) and `thinker.yaml` (its backbone and system prompt)."""
        with atomic_folder(out_dir, overwrite) as folder:
            self.model.save_pretrained(str(folder))
            if half:
                from safetensors.torch import load_file, save_file

                weights = Path(folder, "adapter_model.safetensors")
                save_file({k: v.half() for k, v in load_file(weights).items()}, weights)
            adapter_config = Path(folder, "adapter_config.json")  # peft names the local folder it loaded from
            adapter = json.loads(adapter_config.read_text())
            adapter["base_model_name_or_path"] = self.hparams.backbone
            adapter_config.write_text(json.dumps(adapter, indent=2))
            Path(folder, "README.md").unlink(missing_ok=True)  # peft's empty card template; a model card is ours
            config = {"backbone": self.hparams.backbone, "system": self.hparams.system}
            Path(folder, CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False))
        return Path(out_dir)
