"""A whole SpeechReasoningLM at toy size with random weights, saved as a model folder: what the notebooks' smoke
mode runs (every real part, hearing, tokenizer, codec and LM, built in seconds; its words are noise)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from s2s.asr.recognizer import CTCRecognizer
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.data.problems import generate_problem
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.text_tokenizer import train_text_tokenizer

TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 1024}


def tiny_random_model(folder: Path, format: str = "think_then_speak") -> Path:
    """A SpeechReasoningLM folder (`folder`/model) with random weights: real parts, toy sizes. Beside it in
    `folder`: the tokenizer (trained on 40 generated problems), the hearing and the codec it uses."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    problems = [generate_problem(rng) for _ in range(40)]
    corpus = folder / "problems.jsonl"
    corpus.write_text("".join(json.dumps({"question_written": p.question_written, "thought": p.thought,
                                          "reply": p.reply}) + "\n" for p in problems))
    train_text_tokenizer(corpus, vocab_size=300).save_pretrained(folder / "tokenizer")
    torch.manual_seed(0)
    CTCRecognizer(labels="written", dim=24, layers=1, heads=2, ff_mult=2,
                  conv_kernel=3, subsample_channels=8).save_pretrained(folder / "hearing")
    save_net(TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=2,
                                          codebook_size=16, decoder_dim=16, decoder_layers=1)).eval(), folder / "codec")
    lm = SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=str(folder / "tokenizer"),
                           hearing=str(folder / "hearing"), codec=str(folder / "codec"), format=format)
    return lm.save_pretrained(folder / "model")
