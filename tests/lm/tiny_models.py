"""The tiny models generation tests share: a random codec, a tokenizer of two sentences, and a 2-layer llama in
every format with the same weights. `conftest.py` makes the fixtures available to every test in tests/lm."""
import json
from contextlib import contextmanager

import pytest
import torch

from s2s.codecs import load_codec
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.text_tokenizer import train_text_tokenizer

K, C = 2, 16
TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 512}
TEXTS = [{"question": "what is twelve times three", "thought": "12 × 3 = 36.", "reply": "Thirty-six."},
         {"question": "which is larger, seven or nine", "thought": "9 > 7, so nine.", "reply": "Nine is larger."}]
# Small chunk sizes, so short replies cross several chunks.
FORMAT_OPTIONS = {"think_then_speak": {},
                  "think_while_speaking": {"thought_chunk_tokens": 4, "speech_chunk_frames": 2},
                  "text_guided": {"offset_tokens": 2, "text_chunk_tokens": 1, "speech_chunk_frames": 2},
                  "word_aligned": {},
                  "word_timed": {"max_word_frames": 3},
                  "word_timed_while_thinking": {"max_word_frames": 3, "thought_chunk_tokens": 2}}


@pytest.fixture(scope="module")
def codec_dir(tmp_path_factory) -> str:
    torch.manual_seed(0)
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=K,
                                       codebook_size=C, decoder_dim=16, decoder_layers=1,
                                       decoder_lookahead_frames=0))
    return str(save_net(net.eval(), tmp_path_factory.mktemp("codec") / "small"))


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> str:
    manifest = tmp_path_factory.mktemp("synth") / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in TEXTS))
    folder = tmp_path_factory.mktemp("tokenizer")
    train_text_tokenizer(manifest, vocab_size=280).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def lm(codec_dir, tokenizer_dir) -> SpeechReasoningLM:
    torch.manual_seed(0)
    return SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=codec_dir).eval()


@pytest.fixture(scope="module")
def lms(lm, codec_dir, tokenizer_dir) -> dict[str, SpeechReasoningLM]:
    """The tiny model once per format (FORMAT_OPTIONS), all with the weights of `lm`."""
    models = {}
    for name, options in FORMAT_OPTIONS.items():
        models[name] = SpeechReasoningLM(backbone_config=TINY_LLAMA, tokenizer=tokenizer_dir, codec=codec_dir,
                                         format=name, format_options=options).eval()
        own = models[name].backbone.state_dict()  # word_timed has duration rows after lm's: they stay its own
        models[name].backbone.load_state_dict({key: torch.cat([value, own[key][value.shape[0]:]])
                                               for key, value in lm.backbone.state_dict().items()})
    return models


@pytest.fixture(scope="module")
def codec(codec_dir):
    return load_codec(codec_dir)


def question(seed: int, frames: int = 4) -> torch.Tensor:
    return torch.randint(0, C, (K, frames), generator=torch.Generator().manual_seed(seed))


@contextmanager
def logit_bias(lm, bias: dict[int, float]):
    """Make the model favour (or shun) some ids: `bias` is added to their logits, cached or not."""
    added = torch.zeros(lm.vocab.size)
    for token, value in bias.items():
        added[token] = value
    handle = lm.backbone.get_output_embeddings().register_forward_hook(lambda module, args, out: out + added)
    try:
        yield
    finally:
        handle.remove()



def speak_nudge(vocab, format_name: str) -> dict[int, float]:
    """A bias under which the random tiny model also speaks (left alone, it mostly writes text only)."""
    if format_name == "think_while_speaking":
        return {vocab.end_think: 20.0}  # close each whole text chunk, so speech chunks come between them
    if format_name == "word_aligned":
        return dict.fromkeys(vocab.speech_range(), 1.5)  # speech, yet short of its cap
    if format_name == "word_timed_while_thinking":
        return dict.fromkeys(vocab.duration_range, 10.0)  # each word said; the thought runs to its cap
    return dict.fromkeys(vocab.speech_range(), 3.0) if format_name == "text_guided" else {}
