"""A benchmark directory seen with some splits replaced or added: every file of the original linked, the given splits
written beside them. Scenarios and attacks build their per-task or per-subset data this way, so every stage is an
ordinary run on an ordinary TOFU-layout directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from unlearn.io import write_jsonl


def data_view(root: str | Path, view: str | Path, splits: dict[str, list[dict[str, Any]]]) -> Path:
    """``view`` = ``root`` (each file symlinked) with ``splits`` written as ``<name>.json`` (replacing a file of the
    same split name). Rewriting a view updates its split files and links."""
    root, view = Path(root), Path(view)
    view.mkdir(parents=True, exist_ok=True)
    replaced = {f"{name}.json" for name in splits} | {f"{name}.jsonl" for name in splits}
    for path in sorted(root.iterdir()):
        link = view / path.name
        if not path.is_file() or path.name in replaced:
            continue
        if link.is_symlink() or link.exists():
            if link.is_symlink() and Path(os.readlink(link)) == path.resolve():
                continue
            link.unlink()
        os.symlink(path.resolve(), link)
    for name, rows in splits.items():
        stale = view / f"{name}.jsonl"
        if stale.is_symlink() or stale.exists():
            stale.unlink()
        target = view / f"{name}.json"
        if target.is_symlink():
            target.unlink()
        write_jsonl(target, rows)
    return view
