"""Fixtures of the style tests: a tiny voice converter on a tiny codec and recogniser, saved in their formats, and
a small styled corpus."""
import pytest
import torch

from s2s import audio
from s2s.asr.recognizer import CTCRecognizer
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.data.manifest import write_manifest
from s2s.style.converter import VoiceConverter


@pytest.fixture(scope="session")
def parts(tmp_path_factory) -> dict[str, str]:
    """A tiny codec and a tiny recogniser, saved in their own formats, for converters to stand on."""
    root = tmp_path_factory.mktemp("converter-parts")
    torch.manual_seed(0)
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=2,
                                       codebook_size=16, decoder_dim=16, decoder_layers=1, decoder_lookahead_frames=0))
    recognizer = CTCRecognizer(labels="chars", dim=16, layers=1, heads=2, ff_mult=2, conv_kernel=3,
                               subsample_channels=8)
    return {"codec": str(save_net(net.eval(), root / "codec")),
            "content": str(recognizer.save_pretrained(root / "content"))}


@pytest.fixture(scope="session")
def converter(parts) -> VoiceConverter:
    torch.manual_seed(0)
    model = VoiceConverter(parts["content"], codec=parts["codec"], dim=16, layers=2, bottleneck=4, num_codebooks=2)
    for block in model.net.blocks:  # FiLM starts at zero (no effect); as after training, let the voice count
        torch.nn.init.normal_(block.film.weight, std=0.5)
    return model.eval()


@pytest.fixture(scope="session")
def styled_corpus(make_wav):
    """`styled_corpus(folder, rows=8, prompts_for=both voices, pitch_takes=0)` -> a styled manifest: written
    questions and replies in two voices (en-us+f3, en+grandpa) at the corpus's pitches, a voice prompt for the
    rows of the voices in `prompts_for`, and the first `pitch_takes` replies also at every pitch (as
    s2s data synth --reply-styles renders them)."""
    voices = ("en-us+f3", "en+grandpa")

    def build(folder, rows: int = 8, prompts_for=voices, pitch_takes: int = 0):
        table = []
        for i in range(rows):
            voice = voices[i % 2]
            row = {"id": f"r{i}", "question_written": "What is 2 + 2?", "reply": "It is four.", "reply_voice": voice,
                   "reply_pitch": (20, 50, 80)[i % 3], "reply_style": "", "reply_audio": f"r{i}.wav"}
            audio.save(folder / row["reply_audio"], make_wav(1.0 + 0.1 * i, 16000, seed=i)[0], 16000)
            if i < pitch_takes:
                for k, word in enumerate(("low", "normal", "high")):
                    row[f"reply_audio_{word}"] = row["reply_audio"] if k == i % 3 else f"r{i}.{word}.wav"
                    if k != i % 3:
                        audio.save(folder / row[f"reply_audio_{word}"],
                                   make_wav(1.0 + 0.1 * i, 16000, seed=50 + 3 * i + k)[0], 16000)
            if voice in prompts_for:
                row["voice_audio"] = f"v{i}.wav"
                audio.save(folder / row["voice_audio"], make_wav(2.0, 16000, seed=100 + i)[0], 16000)
            table.append(row)
        return write_manifest(folder / "manifest.jsonl", table)

    return build
