"""What the baseline records of the three embedded benchmarks share: time per method, the chosen epoch's row of
each method's chosen run, and copying a sweep's selection into ``benchmarks/baselines/<benchmark>/``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WALL_TIME = "Wall time of this invocation (s; finished runs, evaluations and attacks are reused, not rerun): "


def time_table(sweep: Path, selection: dict) -> list[str]:
    """Runs per method and their mean ``seconds`` (training + every epoch's evaluation, as the run records it)."""
    per_method: dict[str, list[float]] = {}
    for run in selection["runs"]:
        metrics = json.loads((sweep / "runs" / run["name"] / "metrics.json").read_text())
        per_method.setdefault(run["method"], []).append(float(metrics.get("seconds") or 0.0))
    lines = ["| method | runs | mean time per run (s) |", "|---|---|---|"]
    lines += [f"| {m} | {len(s)} | {sum(s) / len(s):.0f} |" for m, s in per_method.items()]
    return lines


def chosen_rows(sweep: Path, selection: dict) -> dict[str, tuple[dict[str, str], int, dict[str, Any]] | str]:
    """Per method: (the chosen run's swept settings, the chosen epoch, that epoch's row of ``epochs.jsonl``), or the
    reason nothing was eligible."""
    settings = {r["name"]: r["settings"] for r in selection["runs"]}
    out: dict[str, tuple[dict[str, str], int, dict[str, Any]] | str] = {}
    for method, choice in selection["chosen"].items():
        if choice["candidate"] is None:
            out[method] = choice["reason"]
            continue
        name, epoch = choice["candidate"].rsplit("@e", 1)
        rows = [json.loads(line) for line in (sweep / "runs" / name / "epochs.jsonl").read_text().splitlines()]
        out[method] = (settings[name], int(epoch), next(r for r in rows if r["epoch"] == int(epoch)))
    return out


def chosen_run_dirs(sweep: Path, selection: dict) -> dict[str, Path]:
    """Per method with an eligible candidate: the directory of its chosen run (its final model is saved)."""
    return {m: sweep / "runs" / c["candidate"].rsplit("@e", 1)[0] for m, c in selection["chosen"].items()
            if c["candidate"] is not None}


def record(out: Path, benchmark: str, selections: tuple[str, ...] = ("sweep",), extra: tuple[str, ...] = ()) -> Path:
    """Copy the sweep's selections (``<name>.md``, ``<name>.json``, the front plots), ``RESULTS.md`` and the ``extra``
    files of ``out`` into ``benchmarks/baselines/<benchmark>/``."""
    dest = HERE / benchmark
    dest.mkdir(parents=True, exist_ok=True)
    for name in selections:
        for ext in ("md", "json"):
            shutil.copy(out / "sweep" / f"{name}.{ext}", dest / f"{name}.{ext}")
    if (out / "sweep" / "plots").is_dir():
        shutil.copytree(out / "sweep" / "plots", dest / "plots", dirs_exist_ok=True)
    for name in ("RESULTS.md", *extra):
        if (out / name).is_file():
            shutil.copy(out / name, dest / name)
    return dest
