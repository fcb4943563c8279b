"""Manifests: reading with line numbers, atomic no-clobber writing, and validation that reports every problem."""
import json
import os

import numpy as np
import pytest
import soundfile as sf

from s2s import cli
from s2s.data import manifest
from s2s.data.manifest import ManifestError, Problem, read_manifest, validate_manifest, write_manifest


def write_wav(path, samples=400, sample_rate=8000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(samples, 0.1, dtype="float32"), sample_rate)


@pytest.fixture
def broken_manifest(tmp_path):
    """A manifest with one of each problem; returns (path, {(line, field): message fragment})."""
    write_wav(tmp_path / "wavs" / "good.wav")
    write_wav(tmp_path / "wavs" / "empty.wav", samples=0)
    (tmp_path / "wavs" / "corrupt.wav").write_text("this is not audio")
    lines = [
        json.dumps({"id": "a", "audio": "wavs/good.wav", "text": "hello"}),                        # 1 fine
        "",                                                                                         # 2 blank
        '{"id": "b", "audio": ',                                                                    # 3
        "[1, 2]",                                                                                   # 4
        json.dumps({"audio": "wavs/good.wav", "text": "no id"}),                                    # 5
        json.dumps({"id": "a", "audio": "wavs/good.wav", "text": "again"}),                         # 6
        json.dumps({"id": "c", "audio": "wavs/missing.wav", "text": "gone"}),                       # 7
        json.dumps({"id": "d", "audio": "wavs/corrupt.wav", "text": "text file"}),                  # 8
        json.dumps({"id": "e", "audio": "wavs/empty.wav", "text": "silence"}),                      # 9
        json.dumps({"id": "f", "audio": "wavs/good.wav", "text": "   "}),                           # 10
        json.dumps({"id": "g", "text": "no audio at all"}),                                         # 11
        json.dumps({"id": "h", "question_audio": "wavs/good.wav", "reply_audio": "wavs/nope.wav",   # 12
                    "question": "q", "thought": "", "answer": "4", "reply": "four"}),
    ]
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    expected = {
        (3, "json"): "not valid JSON",
        (4, "json"): "expected a JSON object",
        (5, "id"): "missing",
        (6, "id"): "duplicate id 'a' (first used on line 1)",
        (7, "audio"): "file not found",
        (8, "audio"): "cannot read",
        (9, "audio"): "holds no samples",
        (10, "text"): "empty text",
        (11, "audio"): "no audio",
        (12, "reply_audio"): "file not found",
        (12, "thought"): "empty text",
    }
    return path, expected


def test_validate_reports_every_problem_with_its_line_and_field(broken_manifest):
    path, expected = broken_manifest
    problems = validate_manifest(path)
    assert [(p.line, p.field) for p in problems] == list(expected)
    for problem in problems:
        assert expected[problem.line, problem.field] in problem.message
        assert "\n" not in problem.message


def test_a_clean_manifest_round_trips_and_validates(tmp_path):
    write_wav(tmp_path / "corpus" / "x.wav")
    rows = [{"id": "x", "audio": "x.wav", "text": "Grüße, \u2028 still one line"},
            {"id": "y", "question_audio": "x.wav", "reply_audio": "x.wav", "thought": "six times seven"}]
    path = write_manifest(tmp_path / "corpus" / "manifest.jsonl", rows)
    assert read_manifest(path) == rows
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2  # U+2028 is escaped, not a line break
    assert validate_manifest(path) == []


def test_validation_fields_are_parameters(tmp_path):
    write_wav(tmp_path / "q.wav")
    path = write_manifest(tmp_path / "m.jsonl", [{"id": "r", "question_audio": "q.wav", "answer": ""},
                                                 {"id": "s", "clip": "q.wav", "answer": ""}])
    required = validate_manifest(path, required=("thought", "reply_audio"))
    assert [(p.line, p.field) for p in required] == [(1, "thought"), (1, "reply_audio"), (1, "answer"),
                                                    (2, "thought"), (2, "reply_audio"), (2, "audio"), (2, "answer")]
    custom = validate_manifest(path, audio_fields=("clip",), text_fields=())
    assert custom == [Problem(1, "clip", "no audio: expected one of clip")]


def test_an_empty_manifest_is_a_problem(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("\n\n")
    assert [(p.line, p.field) for p in validate_manifest(path)] == [(1, "json")]


def test_read_manifest_names_the_bad_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "a"}\n\n{"id": \n')
    with pytest.raises(ManifestError, match=r"m\.jsonl:3: not valid JSON"):
        read_manifest(path)
    path.write_text('{"id": "a"}\n"just a string"\n')
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: expected a JSON object"):
        read_manifest(path)
    path.write_bytes(b'{"id": "a"}\n{"id": "\xff"}\n')
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: not UTF-8"):
        read_manifest(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_manifest(tmp_path / "absent.jsonl")


def test_write_refuses_to_overwrite_unless_asked(tmp_path):
    path = write_manifest(tmp_path / "m.jsonl", [{"id": "old"}])
    with pytest.raises(FileExistsError, match="already exists; .*overwrite"):
        write_manifest(path, [{"id": "new"}])
    assert read_manifest(path) == [{"id": "old"}]
    write_manifest(path, [{"id": "new"}], overwrite=True)
    assert read_manifest(path) == [{"id": "new"}]
    with pytest.raises(ValueError, match=r"does not end in \.jsonl"):
        write_manifest(tmp_path / "m.json", [{"id": "x"}])


def test_a_failed_write_leaves_the_old_manifest_and_no_temporary_file(tmp_path, monkeypatch):
    path = write_manifest(tmp_path / "m.jsonl", [{"id": "old"}])
    with pytest.raises(TypeError):
        write_manifest(path, [{"id": "new", "bad": object()}], overwrite=True)

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(manifest.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_manifest(path, [{"id": "new"}], overwrite=True)
    assert read_manifest(path) == [{"id": "old"}]
    assert os.listdir(tmp_path) == ["m.jsonl"]


def test_cli_validate_prints_each_problem_and_exits_1(broken_manifest, capsys):
    path, expected = broken_manifest
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["data", "validate", str(path)])
    assert exit_info.value.code == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}:3: json: not valid JSON")
    assert f"{path}:6: id: duplicate id 'a' (first used on line 1)" in out
    assert out[-1] == f"{len(expected)} problem(s) on 10 line(s) of {path}"


def test_cli_validate_says_ok_for_a_clean_manifest(tmp_path, capsys):
    write_wav(tmp_path / "x.wav")
    path = write_manifest(tmp_path / "m.jsonl", [{"id": "x", "audio": "x.wav"}, {"id": "y", "audio": "x.wav"}])
    cli.main(["data", "validate", str(path)])
    assert capsys.readouterr().out == "ok: 2 examples\n"


def test_cli_validate_of_a_missing_manifest_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["data", "validate", str(tmp_path / "absent.jsonl")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("s2s: error: manifest") and err.count("\n") == 1
