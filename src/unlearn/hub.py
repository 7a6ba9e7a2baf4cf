"""Local path or Hugging Face hub name? Decided up front, so a mistyped path never turns into a hub download.

A name goes to the hub only when it looks like ``owner/name``, no such local path exists, and its first component
is not a local directory (``runs/targt/model`` and ``m/nosuch`` with a directory ``m`` are mistyped paths). Before
anything is loaded, a hub name must be in the local cache or the hub must answer within seconds; otherwise the error
says which name was tried and why it failed — instead of 30–50 s of retries and a "couldn't connect".
"""

from __future__ import annotations

import os
import re
from pathlib import Path

HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
FILE_SUFFIXES = (".json", ".jsonl", ".gguf", ".safetensors", ".bin", ".pt", ".yaml", ".yml", ".csv", ".txt")
PROBE_TIMEOUT_S = 5.0


def looks_local(name: str) -> bool:
    """True when ``name`` can only be meant as a local path."""
    if name.startswith((".", "/", "~")) or "\\" in name or name.endswith("/"):
        return True
    parts = name.split("/")
    if len(parts) != 2 or not HUB_NAME.match(name):
        return True
    return Path(parts[0]).is_dir() or Path(name).suffix in FILE_SUFFIXES


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def hub_problem(name: str, repo_type: str) -> str | None:
    """Why the hub repository ``name`` cannot be used now (None when it can): not cached and offline, not
    reachable, or no such repository."""
    try:
        from huggingface_hub import HfApi, snapshot_download
        from huggingface_hub.errors import RepositoryNotFoundError
    except ImportError:  # pragma: no cover - a dependency of transformers
        return None
    try:
        snapshot_download(name, repo_type=repo_type, local_files_only=True)
        return None  # in the local cache
    except Exception:  # not cached (the exact error type varies between versions)
        pass
    if offline():
        return "it is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
    try:
        HfApi().repo_info(name, repo_type=repo_type, timeout=PROBE_TIMEOUT_S)
    except RepositoryNotFoundError:
        return "the hub has no such repository (or it is private)"
    except Exception as err:
        return f"the hub is not reachable ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
    return None
