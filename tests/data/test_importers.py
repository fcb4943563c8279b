"""Importers: a wav+txt folder and a LibriSpeech tree become manifests that point at the original audio."""
import numpy as np
import pytest
import soundfile as sf

from s2s import cli
from s2s.data.importers import IMPORTERS, import_librispeech, import_wav_txt_folder
from s2s.data.manifest import read_manifest, validate_manifest

SAMPLE_RATE = 16000


def write_audio(path, samples=800):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(samples, 0.1, dtype="float32"), SAMPLE_RATE)


def librispeech_tree(root):
    """Two speakers with two chapters each, two utterances per chapter, in LibriSpeech's layout."""
    for speaker, chapters in (("19", ("198", "227")), ("26", ("495", "496"))):
        for chapter in chapters:
            folder = root / speaker / chapter
            lines = []
            for utterance in ("0000", "0001"):
                utterance_id = f"{speaker}-{chapter}-{utterance}"
                write_audio(folder / f"{utterance_id}.flac")
                lines.append(f"{utterance_id} WORDS OF {utterance_id}")
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def wav_txt_folder(src):
    write_audio(src / "alice" / "hello.wav", samples=1600)
    (src / "alice" / "hello.txt").write_text("\ufeff  Grüß Gott.\n", encoding="utf-8")
    write_audio(src / "bob" / "day1" / "bye.wav")
    (src / "bob" / "day1" / "bye.txt").write_text("Bye now.")
    write_audio(src / "top.wav")
    (src / "top.txt").write_text("At the top.")
    (src / "README.txt").write_text("notes, not a transcript")
    return src


def test_librispeech_becomes_a_valid_manifest_elsewhere(tmp_path):
    root = librispeech_tree(tmp_path / "LibriSpeech" / "dev-clean")
    out = import_librispeech(root, tmp_path / "manifests" / "dev.jsonl")
    rows = read_manifest(out)
    assert [row["id"] for row in rows] == [f"{s}-{c}-{u}" for s, c in (("19", "198"), ("19", "227"), ("26", "495"),
                                                                      ("26", "496")) for u in ("0000", "0001")]
    assert rows[4] == {"id": "26-495-0000", "audio": "../LibriSpeech/dev-clean/26/495/26-495-0000.flac",
                       "text": "WORDS OF 26-495-0000", "speaker": "26", "chapter": "495", "duration_s": 0.05}
    assert validate_manifest(out) == []


def test_librispeech_fails_on_missing_and_unlisted_audio(tmp_path):
    root = librispeech_tree(tmp_path / "dev-clean")
    (root / "19" / "227" / "19-227-0001.flac").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 utterances .* no \.flac file: 19-227-0001;"):
        import_librispeech(root, tmp_path / "m.jsonl")
    write_audio(root / "19" / "227" / "19-227-0001.flac")
    write_audio(root / "26" / "496" / "26-496-0007.flac")
    with pytest.raises(ValueError, match=r"1 \.flac files are in no transcript: 26/496/26-496-0007\.flac;"):
        import_librispeech(root, tmp_path / "m.jsonl")
    assert not (tmp_path / "m.jsonl").exists()


def test_librispeech_needs_its_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_librispeech(tmp_path / "absent", tmp_path / "m.jsonl")
    write_audio(tmp_path / "flat" / "a.flac")
    with pytest.raises(FileNotFoundError, match=r"no \*\.trans\.txt transcripts"):
        import_librispeech(tmp_path / "flat", tmp_path / "m.jsonl")


def test_wav_txt_folder_becomes_a_valid_manifest(tmp_path):
    src = wav_txt_folder(tmp_path / "corpus")
    out = import_wav_txt_folder(src, tmp_path / "corpus" / "manifest.jsonl")
    rows = {row["id"]: row for row in read_manifest(out)}
    assert rows == {
        "alice-hello": {"id": "alice-hello", "audio": "alice/hello.wav", "text": "Grüß Gott.", "speaker": "alice",
                        "duration_s": 0.1},
        "bob-day1-bye": {"id": "bob-day1-bye", "audio": "bob/day1/bye.wav", "text": "Bye now.", "speaker": "day1",
                         "duration_s": 0.05},
        "top": {"id": "top", "audio": "top.wav", "text": "At the top.", "speaker": "corpus", "duration_s": 0.05},
    }
    assert validate_manifest(out) == []


def test_wav_txt_folder_names_what_is_wrong(tmp_path):
    src = wav_txt_folder(tmp_path / "corpus")
    write_audio(src / "alice" / "lonely.wav")
    with pytest.raises(FileNotFoundError, match=r"1 of 4 wav files have no \.txt transcript beside them: "
                                                r"alice/lonely\.wav;"):
        import_wav_txt_folder(src, tmp_path / "m.jsonl")
    (src / "alice" / "lonely.txt").write_text("  \n")
    with pytest.raises(ValueError, match=r"1 transcripts are empty: alice/lonely\.txt;"):
        import_wav_txt_folder(src, tmp_path / "m.jsonl")
    (src / "alice" / "lonely.txt").write_text("Not any more.")
    write_audio(src / "alice-hello.wav")
    (src / "alice-hello.txt").write_text("Same id as alice/hello.")
    with pytest.raises(ValueError, match="1 ids are used more than once: alice-hello;"):
        import_wav_txt_folder(src, tmp_path / "m.jsonl")
    (src / "alice-hello.wav").write_text("not audio either")
    (src / "alice-hello.wav").rename(src / "corrupt.wav")
    (src / "alice-hello.txt").rename(src / "corrupt.txt")
    with pytest.raises(ValueError, match=r"cannot read .*corrupt\.wav as audio"):
        import_wav_txt_folder(src, tmp_path / "m.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \.wav files under"):
        import_wav_txt_folder(tmp_path / "empty", tmp_path / "m.jsonl")
    assert not (tmp_path / "m.jsonl").exists()


def test_cli_import_prints_the_manifest_and_will_not_overwrite(tmp_path, capsys):
    root = librispeech_tree(tmp_path / "dev-clean")
    out = tmp_path / "dev.jsonl"
    cli.main(["data", "import", "--format", "librispeech", str(root), "--out", str(out)])
    assert capsys.readouterr().out == f"{out}\n" and len(read_manifest(out)) == 8
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["data", "import", "--format", "wav-txt", str(wav_txt_folder(tmp_path / "corpus")), "--out", str(out)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"s2s: error: {out} already exists; choose another path or pass " \
                                      "overwrite=True (--overwrite)\n"
    cli.main(["data", "import", "--format", "wav-txt", str(tmp_path / "corpus"), "--out", str(out), "--overwrite"])
    assert len(read_manifest(out)) == 3


def test_cli_formats_are_the_importers():
    assert set(cli.IMPORT_FORMATS) == set(IMPORTERS)
