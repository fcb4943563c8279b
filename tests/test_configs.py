"""s2s/configs.py: what a stack of --config files composes to, and what an overlay changed."""
from pathlib import Path

import pytest

from s2s.configs import config_changes, flat, merged_config, write_overlay

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "lm" / "tiny.yaml"


def test_flat_gives_dotted_keys_and_keeps_empty_containers():
    assert flat({"a": {"b": [1, {"c": 2}]}, "d": None}) == {"a.b.0": 1, "a.b.1.c": 2, "d": None}
    assert flat({"callbacks": [], "x": {}}) == {"callbacks": [], "x": {}}


def test_config_changes_names_every_key_added_removed_or_changed():
    before = {"trainer": {"devices": 1, "callbacks": [{"every": 500}], "gone": True}}
    after = {"trainer": {"devices": 2, "callbacks": [{"every": 2}, {"new": 1}]}, "data": {"n": 3}}
    assert config_changes(before, after) == {
        "data.n": (None, 3), "trainer.callbacks.0.every": (500, 2), "trainer.callbacks.1.new": (None, 1),
        "trainer.devices": (1, 2), "trainer.gone": (True, None)}
    assert config_changes(before, before) == {}


def test_an_overlay_merges_key_by_key_and_replaces_lists(tmp_path):
    overlay = write_overlay(tmp_path / "shrink.yaml", {"trainer": {"max_steps": 6, "callbacks": []},
                                                       "data": {"init_args": {"batch_size": 2}}})
    alone, shrunk = merged_config(TINY), merged_config(TINY, overlay)
    assert alone["trainer"]["max_steps"] == 4000 and alone["data"]["init_args"]["batch_size"] == 8
    changed = config_changes(alone, shrunk)
    assert changed["trainer.max_steps"] == (4000, 6) and changed["data.init_args.batch_size"] == (8, 2)
    assert changed["trainer.callbacks"][1] == [] and shrunk["data"]["init_args"]["codec"] == "s2s-tiny"  # kept
    assert merged_config(TINY, args=["--trainer.max_steps", "7"])["trainer"]["max_steps"] == 7


def test_a_config_that_does_not_parse_is_a_value_error(tmp_path):
    bad = write_overlay(tmp_path / "bad.yaml", {"trainer": {"max_stepz": 6}})
    with pytest.raises(ValueError, match="max_stepz"):
        merged_config(TINY, bad)
