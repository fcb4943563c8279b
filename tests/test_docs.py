"""Docs that are documentation: Hugging Face model cards of at most 150 lines, a README that is a front page
leading with the held-out figures, and nothing that speaks of how the work was organised."""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "s2s" / "assets"
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


def test_the_readme_is_a_front_page_that_leads_with_the_held_out_shifts():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 350
    first_table = next(line for line in readme.splitlines() if line.startswith("| "))
    first_row = readme.split(first_table, 1)[1].splitlines()[2]
    assert "held-out" in first_row, first_row  # the worst shift first, never the in-distribution figure


def test_no_doc_speaks_of_work_sessions():
    pattern = re.compile(r"session [0-9]|sessions? [0-9]+|this session", re.IGNORECASE)
    places = [ROOT / "README.md", *[p for d in ("tutorials", "notebooks", "s2s", "configs")
                                    for p in (ROOT / d).rglob("*") if p.suffix in (".md", ".py", ".yaml", ".ipynb")]]
    found = [str(p) for p in places if pattern.search(p.read_text(errors="ignore"))]
    assert not found, found
