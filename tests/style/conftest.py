"""Fixtures of the style tests: a tiny voice converter on a tiny codec and recogniser, saved in their formats."""
import pytest
import torch

from s2s.asr.module import CTCRecognizer
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
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
