"""Every shipped model's card is a Hugging Face card: a metadata header, then at most 150 lines."""
from pathlib import Path

import pytest
import yaml

ASSETS = Path(__file__).resolve().parents[1] / "s2s" / "assets"
CARDS = sorted(ASSETS.glob("*/*/README.md"))


def test_every_shipped_folder_has_a_card():
    folders = [p for p in ASSETS.glob("*/*") if p.is_dir() and ((p / "config.yaml").is_file() or
                                                                (p / "thinker.yaml").is_file())]
    assert folders and all((folder / "README.md").is_file() for folder in folders), folders


@pytest.mark.parametrize("card", CARDS, ids=lambda p: p.parent.name)
def test_a_card_opens_with_hugging_face_metadata_and_stays_short(card):
    text = card.read_text()
    assert text.startswith("---\n"), f"{card} has no metadata header"
    header, _, body = text[4:].partition("\n---\n")
    meta = yaml.safe_load(header)
    assert {"license", "library_name", "tags"} <= set(meta), meta
    assert meta["library_name"] == "s2s" and meta["tags"]
    assert body.startswith(f"# {card.parent.name}"), body.splitlines()[0]
    assert len(text.splitlines()) <= 150, f"{card}: {len(text.splitlines())} lines"
