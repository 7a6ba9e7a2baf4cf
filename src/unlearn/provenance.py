"""What produced a result (``provenance`` in ``metrics.json`` and in every sweep, attack and scenario result): the
toolkit's version and git commit, the libraries, the device, the seed, the command line, the configuration's
fingerprint, every data file by content, the model by content, and the task with its version — after
lm-evaluation-harness, whose results carry their versions and configuration.

Hashing a model's weights reads every byte once (1.34 GB/s on one CPU core in ``benchmarks/provenance/``, so about
10 s for a 7B model in bf16); the digest is kept in ``weights.sha256.json`` inside a run's saved model, keyed by each
file's size and modification time, and in memory for the process, so a model is hashed once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unlearn.io import read_json, write_json
from unlearn.runs import RunDirectory

DISTRIBUTION = "llm-unlearn"
"""The toolkit's name on PyPI (its import name is ``unlearn``)."""

PACKAGES = ("torch", "transformers", "accelerate", "peft", "datasets")
"""Libraries whose versions every result records; lm-eval joins them where a run used it."""

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
WEIGHTS_CACHE = "weights.sha256.json"
_CHUNK = 1 << 24

_memo: dict[tuple[str, int, int], str] = {}


def git_state(package_dir: Path | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` when the toolkit runs from a git checkout of itself (an editable install), else
    None. A checkout of another project that happens to hold the installed package (a virtual environment inside
    it) is not mistaken for ours: its top level must hold ``src/unlearn`` as this very package."""
    here = (package_dir or Path(__file__).resolve().parent)
    try:
        top = subprocess.run(["git", "-C", str(here), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() / "src" / "unlearn" != here:
            return None
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit or None, "dirty": bool(status.strip())}


def toolkit() -> dict[str, Any]:
    """The toolkit's installed version (its package metadata, which ``unlearn.__version__`` repeats) and commit."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        installed = None
    return {"name": "unlearn", "version": installed, "git": git_state(), "source_sha256": source_sha256()}


_source_digest: list[str] = []


def source_sha256(package_dir: Path | None = None) -> str:
    """One digest of the toolkit's own Python sources (every ``.py`` file of the package, by relative path): the
    code that ran, exactly, even from a checkout with uncommitted changes, where the commit alone does not say.
    Computed once per process (a few milliseconds)."""
    if package_dir is None and _source_digest:
        return _source_digest[0]
    here = package_dir or Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(here.rglob("*.py")):
        digest.update(f"{path.relative_to(here).as_posix()}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    if package_dir is None:
        _source_digest.append(digest.hexdigest())
    return digest.hexdigest()


def library_versions(extra: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Python and each library's installed version (None where it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in (*PACKAGES, *extra):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def device_info(mixed_precision: str) -> dict[str, Any]:
    """The device a run computes on: its kind, name and count; the weights' dtype and the mixed precision."""
    import torch

    if torch.cuda.is_available():
        kind, name, count = "cuda", torch.cuda.get_device_name(0), torch.cuda.device_count()
    else:
        kind, name, count = "cpu", platform.processor() or platform.machine(), 1
    choice = mixed_precision if mixed_precision != "auto" else ("bf16" if kind == "cuda" else "no")
    return {"type": kind, "name": name, "count": count, "cpu_cores": os.cpu_count(), "dtype": "float32",
            "mixed_precision": choice}


def command_line() -> list[str]:
    """This process's command line, the program by its name (``unlearn run …``, or a script's)."""
    return [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def count_rows(path: Path) -> int | None:
    """Rows of a data file: a JSON array's items, a JSON-lines file's non-empty lines; None for other text."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    stripped = text.lstrip()
    if path.suffix not in (".json", ".jsonl"):
        return None
    if stripped.startswith("["):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError:
            return None
        return len(loaded) if isinstance(loaded, list) else None
    return sum(1 for line in text.splitlines() if line.strip())


def data_files(reads: Mapping[Path, str], root: str | None) -> list[dict[str, Any]]:
    """Every data file read (:func:`unlearn.data.files.recording_reads`), named relative to ``root`` where it lies
    inside it, with its sha256 and row count, sorted by name."""
    base = Path(root).expanduser().resolve() if root else None
    out = []
    for path, digest in reads.items():
        name = str(path.relative_to(base)) if base is not None and base in path.parents else str(path)
        out.append({"file": name, "sha256": digest, "rows": count_rows(path)})
    return sorted(out, key=lambda f: f["file"])


def hub_dataset(name: str) -> dict[str, Any]:
    """A hub dataset by name and the revision of its local snapshot (None when it is not in the local cache)."""
    revision = None
    try:
        from huggingface_hub import snapshot_download

        revision = Path(snapshot_download(name, repo_type="dataset", local_files_only=True)).name
    except Exception:  # not cached: the name alone
        pass
    return {"hub_dataset": name, "revision": revision}


def _file_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _memo:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        _memo[key] = digest.hexdigest()
    return _memo[key]


def weight_files(directory: Path, gguf_file: str | None = None) -> list[Path]:
    if gguf_file:
        return [directory / gguf_file]
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def weights_sha256(directory: Path, gguf_file: str | None = None, cache: bool = False) -> str | None:
    """One digest of the weight files' contents (each file's sha256, by name, hashed together); None when the
    directory holds none. ``cache``: read and write :data:`WEIGHTS_CACHE` in ``directory`` (a run's saved model),
    reusing a file's digest while its size and modification time are unchanged."""
    files = weight_files(directory, gguf_file)
    if not files:
        return None
    cached: dict[str, Any] = {}
    cache_file = directory / WEIGHTS_CACHE
    if cache and cache_file.is_file():
        try:
            cached = json.loads(cache_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            cached = {}
    digests, fresh = {}, {}
    for path in files:
        stat = path.stat()
        entry = cached.get(path.name) if isinstance(cached, dict) else None
        if (isinstance(entry, dict) and entry.get("size") == stat.st_size
                and entry.get("mtime_ns") == stat.st_mtime_ns and isinstance(entry.get("sha256"), str)):
            digests[path.name] = entry["sha256"]
        else:
            digests[path.name] = _file_sha256(path)
        fresh[path.name] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digests[path.name]}
    if cache and fresh != cached:
        with contextlib.suppress(OSError):  # a read-only model directory: hashed again next time, the same digest
            cache_file.write_text(json.dumps(fresh, indent=1) + "\n", encoding="utf-8")
    combined = hashlib.sha256("".join(f"{name}:{digests[name]}\n" for name in sorted(digests)).encode())
    return combined.hexdigest()


def model_identity(path: str, directory: str | None, gguf_file: str | None, is_local: bool) -> dict[str, Any]:
    """The model as given (``path``: a directory, a named model, a hub name), the hub revision of a cached hub
    model, and the digest of its weights (:func:`weights_sha256`; cached inside a run's saved model)."""
    out: dict[str, Any] = {"path": path, "revision": None, "weights_sha256": None}
    where = Path(directory) if directory else None
    if not is_local:
        try:
            from huggingface_hub import snapshot_download

            where = Path(snapshot_download(path, local_files_only=True))
            out["revision"] = where.name  # the snapshot folder is the commit hash
        except Exception:  # not in the local cache: the name alone identifies it
            where = None
    if where is not None and where.is_dir():
        in_run = where.name == RunDirectory.MODEL and RunDirectory(where.parent).config_file.is_file()
        out["weights_sha256"] = weights_sha256(where, gguf_file, cache=in_run)
    return out


def collect(*, config_text: str, seed: int | None, mixed_precision: str, task: str, task_version: int,
            data: list[dict[str, Any]], model: dict[str, Any] | None,
            extra_packages: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ``provenance`` record of one result."""
    return {
        "toolkit": toolkit(),
        "versions": library_versions(extra_packages),
        "device": device_info(mixed_precision),
        "seed": seed,
        "command": command_line(),
        "config_sha256": text_sha256(config_text),
        "task": {"name": task, "version": task_version},
        "data": data,
        "model": model,
    }


def stamp(result_file: Path, record: dict[str, Any]) -> None:
    """Add ``record`` as ``provenance`` to a finished JSON result (a scenario's or an attack's), atomically."""
    result = read_json(result_file)
    if isinstance(result, dict):
        write_json(result_file, {**result, "provenance": record})
