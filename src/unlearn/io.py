"""Atomic file output: write to a temporary file in the same directory, then rename.

A killed run therefore never leaves a half-written result file (see :mod:`unlearn.runs`).
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
import shutil
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from unlearn.errors import UnlearnError


def _fresh(path: Path, make) -> Path:
    """A new ``.NAME.<random>.tmp`` beside ``path``, made by ``make(candidate)``; the OS applies the process's umask
    to the mode ``make`` asks for (so results are ordinary files, not mkstemp's 0600), and nothing here reads or
    changes the umask itself."""
    for _ in range(100):
        candidate = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            make(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free temporary name beside {path}")


def _new_file(candidate: Path) -> None:
    os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))


class DiskFull(UnlearnError):
    """A write ran out of space; the file or directory it was replacing is untouched."""


def _is_disk_full(err: BaseException) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    # torch.save and safetensors report a failed write as RuntimeError/SafetensorError with the OS's words only
    text = str(err).lower()
    return "no space left" in text or "file write failed" in text or "disk quota" in text


def _disk_full(path: Path, err: BaseException) -> DiskFull:
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.0f} MiB free there now"
    except OSError:
        free = "free space unknown"
    return DiskFull(f"disk full while writing {path} ({free}); nothing was replaced: free some space and run again "
                    "(--resume continues a training run from its last checkpoint)")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def _clean_floats(obj: Any) -> Any:
    """JSON has no NaN/Inf; write them as null so files stay valid JSON for every reader."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_floats(v) for v in obj]
    return obj


@contextmanager
def atomic_path(path: str | os.PathLike[str]):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh(path, _new_file)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)
        if _is_disk_full(err):
            raise _disk_full(path, err) from None
        raise


def remove_path(path: str | os.PathLike[str]) -> None:
    """Remove a file, a directory tree or a symlink (the link only, never what it points to); nothing if absent."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _previous(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


@contextmanager
def atomic_dir(path: str | os.PathLike[str]):
    """Yield a temporary directory; it replaces ``path`` (a directory) only if the block succeeds.

    The old directory is moved aside (``.NAME.old``) and removed only after the new one is in place, so a process
    killed in between leaves one of the two: :func:`recover_dir` puts the old one back.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)
    tmp = _fresh(path, lambda candidate: os.mkdir(candidate, 0o777))
    try:
        yield tmp
        if os.path.lexists(path):
            old = _previous(path)
            remove_path(old)
            os.replace(path, old)
            os.replace(tmp, path)
            remove_path(old)
        else:
            os.replace(tmp, path)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if _is_disk_full(err):
            raise _disk_full(path, err) from None
        raise


def recover_dir(path: str | os.PathLike[str]) -> None:
    """Finish or undo an :func:`atomic_dir` replacement that was killed half-way: with ``path`` missing, the previous
    version goes back in place; with both present, the previous one is dropped."""
    path = Path(path)
    old = _previous(path)
    if old.is_dir() or old.is_symlink():
        if os.path.lexists(path):
            remove_path(old)
        else:
            os.replace(old, path)


def check_output_dir(path: str | os.PathLike[str], marker: str | None = None) -> Path:
    """A directory a command may write into: new, empty, or made earlier by the same command (its README.md starts
    with ``marker``). Anything else — a file, or someone's non-empty directory — is an error naming it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UnlearnError(f"{path} is a file; give a directory to write into")
    if path.is_dir() and any(path.iterdir()):
        readme = path / "README.md"
        ours = marker is not None and readme.is_file() and readme.read_text(encoding="utf-8",
                                                                             errors="replace").startswith(marker)
        if not ours:
            raise UnlearnError(f"{path} is not empty; give a new directory (nothing in it is overwritten)")
    return path


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any, indent: int = 2) -> None:
    text = json.dumps(_clean_floats(obj), indent=indent, default=_json_default, ensure_ascii=False)
    write_text(path, text + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    lines = [json.dumps(_clean_floats(r), default=_json_default, ensure_ascii=False) for r in rows]
    write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def append_jsonl(path: str | os.PathLike[str], row: dict[str, Any]) -> None:
    """Append one line (logs only; each line is complete or absent)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(_clean_floats(row), default=_json_default, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
