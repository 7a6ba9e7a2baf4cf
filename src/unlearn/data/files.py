"""Reading record files in the three JSON layouts found in the wild (TOFU and its mirrors ship all three).

1. JSON lines: one object per line.
2. A JSON array of objects.
3. Batches: one JSON array of objects per line.
Rows are numbered 0.. in file order across all layouts; JSON-lines layouts also report the line.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from unlearn.data.records import QARecord, record_from_dict
from unlearn.errors import DataError

_ledgers: list[dict[Path, str]] = []


@contextmanager
def recording_reads() -> Iterator[dict[Path, str]]:
    """Collect the sha256 of every data file read inside the block (resolved path → hex digest), in read order:
    what a run was trained on, by content (a resume checks it)."""
    ledger: dict[Path, str] = {}
    _ledgers.append(ledger)
    try:
        yield ledger
    finally:  # by identity: nested ledgers that read the same files are equal dicts
        del _ledgers[next(i for i, kept in enumerate(_ledgers) if kept is ledger)]


def read_utf8(path: str | Path) -> str:
    """The whole file as text; a missing file or bytes that are not UTF-8 are a DataError naming the file and the
    line of the first bad byte."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    if _ledgers:
        digest = hashlib.sha256(data).hexdigest()
        for ledger in _ledgers:
            ledger[path.resolve()] = digest
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise DataError(f"{path}: not UTF-8 text (line {line}, byte {err.start}: {data[err.start:err.start + 1]!r}); "
                        "save the file as UTF-8") from None


def inside_root(root: str | Path, name: str) -> Path:
    """``root/name``, refused when ``name`` leads out of ``root`` (``../x``, an absolute path): a split or corpus
    name picks a file of the benchmark, never one elsewhere. Compared as written, so symlinks inside the root (a
    Hugging Face snapshot's) still work."""
    candidate = Path(os.path.normpath(Path(root) / name))
    base = Path(os.path.normpath(root))
    if candidate != base and base not in candidate.parents:
        raise DataError(f"split {name!r} lies outside data.root {root} ({candidate}): split and corpus names are "
                        "files of data.root; to read another directory, set data.root (or data.forget_corpus)")
    return candidate


def read_raw_rows(path: str | Path) -> list[tuple[Any, int | None]]:
    """Return ``(row, line_number_or_None)`` for every row of ``path`` in any of the three layouts."""
    text = read_utf8(path)
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    else:
        if isinstance(whole, list):
            return [(row, None) for row in whole]
        if isinstance(whole, dict):  # a single-line JSON-lines file holding one record
            return [(whole, 1)]
        raise DataError(f"{path}: expected JSON objects or arrays, got {type(whole).__name__}")
    rows: list[tuple[Any, int | None]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: line {line_no} is not valid JSON ({err.msg} at column {err.colno})") from None
        if isinstance(item, list):
            rows.extend((x, line_no) for x in item)
        else:
            rows.append((item, line_no))
    return rows


def read_records(path: str | Path, require: Sequence[str] = ("question", "answer")) -> list[QARecord]:
    """Load and validate every record of ``path``; raise :class:`DataError` naming file/row/field."""
    rows = read_raw_rows(path)
    return [record_from_dict(raw, str(path), i, line, require) for i, (raw, line) in enumerate(rows)]


def read_text_lines(path: str | Path) -> list[str]:
    """Plain text, one item per line (``idontknow.jsonl`` is not JSON despite its name)."""
    lines = [line.strip() for line in read_utf8(path).splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise DataError(f"{path}: no non-empty lines")
    return lines
