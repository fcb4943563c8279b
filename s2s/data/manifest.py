"""JSONL manifests: read them, write them atomically, and validate every line at once.

A manifest holds one JSON object per line; audio paths are relative to the
manifest's folder, so a data folder can be moved or mounted anywhere.
`validate_manifest` reports every problem instead of stopping at the first,
because a corpus with a thousand broken lines should take one clean-up pass,
not a thousand runs. It reads only audio headers (`soundfile.info`), never
samples, so checking a large corpus takes seconds, and it does not import
torch.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

# Every field that may name an audio file: speech-only manifests use `audio`,
# spoken-reasoning manifests a question and a reply.
AUDIO_FIELDS = ("audio", "question_audio", "reply_audio")
# Text fields that, when a row has them, must say something.
TEXT_FIELDS = ("text", "question", "thought", "answer", "reply")


class ManifestError(ValueError):
    """A manifest line that cannot be read; the message starts with `path:line:`."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a manifest: `line` is 1-based, `field` the key at fault ("json" for the line itself)."""

    line: int
    field: str
    message: str


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """The examples of a manifest, in order. Blank lines are skipped; any other bad line raises ManifestError."""
    return [row for _, row in read_manifest_lines(path)]


def read_manifest_lines(path: str | os.PathLike) -> list[tuple[int, dict]]:
    """(line number, example) pairs, so callers can point at the line of a bad value."""
    path = _existing(path)
    rows = []
    for line_number, row, error in _parse(path):
        if error:
            raise ManifestError(f"{path}:{line_number}: {error}")
        rows.append((line_number, row))
    return rows


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> None:
    """Refuse a manifest path that would clobber a file or that other tools would not read as a manifest.

    Importers call this before scanning a corpus, so a wrong `--out` fails in
    a second rather than after an hour of reading audio headers.
    """
    path = Path(path)
    if path.suffix.lower() != ".jsonl":  # find_audio_files and friends recognise manifests by this suffix
        raise ValueError(f"{path} does not end in .jsonl; name the manifest file, e.g. {path / 'manifest.jsonl'}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; name the manifest file inside it, e.g. {path / 'manifest.jsonl'}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another path or pass overwrite=True (--overwrite)")


def write_manifest(path: str | os.PathLike, rows: Iterable[dict], overwrite: bool = False) -> Path:
    """Write `rows` one JSON object per line and return the path; a reader never sees half a manifest.

    The rows go to a temporary file beside `path` that replaces it in one
    `os.replace`, so a crash or a full disk leaves the old manifest (or none).
    """
    path = Path(path)
    check_writable(path, overwrite)
    lines = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TypeError(f"manifest rows must be dicts; row {index} is a {type(row).__name__}")
        # ASCII escapes keep one example on one line for every reader: a raw U+2028
        # inside a string is a line break to str.splitlines.
        lines.append(json.dumps(row) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its files are private (0600) and os.replace would keep that mode.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(lines)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def validate_manifest(path: str | os.PathLike, audio_fields: tuple[str, ...] = AUDIO_FIELDS,
                      text_fields: tuple[str, ...] = TEXT_FIELDS, required: tuple[str, ...] = ()) -> list[Problem]:
    """Every problem in the manifest at `path`, in line order; an empty list means it is ready to train on.

    Each row needs a unique non-empty string `id`, at least one of
    `audio_fields` naming a readable, non-empty audio file, non-empty strings
    in whichever `text_fields` it has, and every field in `required` (e.g.
    `("question_audio", "thought", "reply_audio")` for spoken reasoning).
    """
    path = _existing(path)
    problems: list[Problem] = []
    first_line_of_id: dict[str, int] = {}
    examples = 0
    for line_number, row, error in _parse(path):
        examples += 1
        if error:
            problems.append(Problem(line_number, "json", error))
            continue
        example_id = row.get("id")
        if isinstance(example_id, str) and example_id:
            if example_id in first_line_of_id:
                problems.append(Problem(line_number, "id", f"duplicate id {example_id!r} "
                                                           f"(first used on line {first_line_of_id[example_id]})"))
            else:
                first_line_of_id[example_id] = line_number
        for field, message in _row_problems(row, path.parent, audio_fields, text_fields, required):
            problems.append(Problem(line_number, field, message))
    if examples == 0:
        problems.append(Problem(1, "json", "the manifest holds no examples; write one JSON object per line"))
    return problems


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path} is a folder; pass the manifest inside it (e.g. {path / 'manifest.jsonl'})")
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} not found; pass a .jsonl file with one JSON object per line")
    return path


def _parse(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, row, None) for each good line, (line number, None, what is wrong) for each bad one."""
    # Binary lines split on b"\n" only, so line numbers match an editor's and one bad byte spoils one line.
    with open(path, "rb") as f:
        for line_number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8").rstrip("\r\n")  # so JSON errors point into this line, not past it
            except UnicodeDecodeError:
                yield line_number, None, "not UTF-8 text; save the manifest as UTF-8"
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as err:
                yield line_number, None, (f"not valid JSON ({err.msg} at column {err.colno}); "
                                          "write one JSON object per line")
                continue
            if not isinstance(row, dict):
                yield line_number, None, f"expected a JSON object {{...}}, got {text.strip()[:60]}"
                continue
            yield line_number, row, None


def _row_problems(row: dict, folder: Path, audio_fields: tuple[str, ...], text_fields: tuple[str, ...],
                  required: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """(field, message) for everything wrong with one row except duplicate ids, which need the other rows."""
    if "id" not in row:
        yield "id", "missing; every example needs a unique \"id\""
    elif not isinstance(row["id"], str) or not row["id"]:
        yield "id", f"must be a non-empty string, got {json.dumps(row['id'])}"
    for field in required:
        if field not in row:
            yield field, "missing"
    present = [field for field in audio_fields if field in row]
    if not present:
        yield audio_fields[0], f"no audio: expected one of {', '.join(audio_fields)}"
    for field in present:
        message = _audio_problem(folder, row[field])
        if message:
            yield field, message
    for field in text_fields:
        if field not in row:
            continue
        if not isinstance(row[field], str):
            yield field, f"must be a string, got {json.dumps(row[field])[:60]}"
        elif not row[field].strip():
            yield field, "empty text"


def _audio_problem(folder: Path, relative: object) -> str | None:
    if not isinstance(relative, str) or not relative:
        return f"must be a path to an audio file, got {json.dumps(relative)[:60]}"
    path = folder / relative
    if not path.is_file():
        return f"file not found: {path} (paths are relative to the manifest's folder)"
    try:
        info = sf.info(str(path))
    except Exception as err:  # soundfile raises its own error types for every corrupt header
        reason = getattr(err, "error_string", None) or str(err).strip().splitlines()[0]
        return f"cannot read {path} as audio ({reason})"
    if info.frames == 0:
        return f"{path} holds no samples"
    return None
