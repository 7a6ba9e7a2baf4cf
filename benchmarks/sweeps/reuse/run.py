"""Cross-run reuse in sweeps (issue 26): the same grid swept twice in one run of this script, once with every run
computing its own starting evaluation and reference log-probs (``sweep.reuse=false``) and once sharing them through
``OUT/cache`` (the default), on the same machine; it prints both wall times, their ratio, the cache's entries, and
checks that every number of every run is identical between the two sweeps.

Usage:  python benchmarks/sweeps/reuse/run.py [--demo-dir runs/demo-bench] [--output-dir runs/sweeps-reuse]
        [--jobs 2] [--record]

The grid starts from the demo's target (``unlearn demo``; run when ``--demo-dir`` has none) with the demo's
unlearning settings (5 epochs, evaluated after every epoch: the selection's candidates) and the demo sweep's
learning rates for three methods, two of which (NPO, DPO) cache reference log-probs. ``--record`` writes
``results.json`` into ``benchmarks/sweeps/reuse/``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE.parent.parent / "scenarios"))
from demo_inputs import demo_settings, unlearning_args  # noqa: E402
from demo_time import machine, timed_cli  # noqa: E402

GRID = ["method=npo+gd,dpo+gd,ga+gd", "train.lr=5e-4,1e-3,2e-3"]
VOLATILE = ("seconds", "provenance", "run")
"""Fields of ``metrics.json`` that differ between two runs of the same computation (times, provenance, run info)."""


def base_args(config: dict) -> list[str]:
    """The demo's unlearning settings, but its learning rate: the grid sweeps it."""
    return [a for a in unlearning_args(config) if not a.startswith("train.lr=")]


def sweep_args(demo: Path, config: dict, out: Path, jobs: int, reuse: bool) -> list[str]:
    threads = max(1, 2 // jobs)
    return ["sweep", f"model={demo / 'target' / 'model'}", f"data={demo / 'data'}",
            f"data.forget_split={config['forget_split']}", f"eval.retain_reference={demo / 'retain'}",
            "train.eval_every_epoch=true", *base_args(config), *GRID, f"sweep.jobs={jobs}",
            f"sweep.threads={threads}", f"sweep.reuse={str(reuse).lower()}", f"output_dir={out}"]


def same_numbers(a: Path, b: Path) -> list[str]:
    """The runs whose per-epoch rows, train logs or metrics differ between the two sweeps (none expected)."""
    from unlearn.io import read_json, read_jsonl

    differ = []
    for run in sorted((a / "runs").iterdir()):
        other = b / "runs" / run.name
        ours, theirs = read_json(run / "metrics.json"), read_json(other / "metrics.json")
        if (read_jsonl(run / "epochs.jsonl") != read_jsonl(other / "epochs.jsonl")
                or read_jsonl(run / "train_log.jsonl") != read_jsonl(other / "train_log.jsonl")
                or {k: v for k, v in ours.items() if k not in VOLATILE}
                != {k: v for k, v in theirs.items() if k not in VOLATILE}):
            differ.append(run.name)
    return differ


def cache_use(out: Path) -> dict[str, dict[str, int]]:
    """Per kind of entry: how many runs computed it and how many read it."""
    from unlearn.io import read_json

    counts: dict[str, dict[str, int]] = {}
    for metrics in sorted((out / "runs").glob("*/metrics.json")):
        for kind, used in (read_json(metrics)["provenance"].get("cache") or {}).items():
            slot = counts.setdefault(kind, {"computed": 0, "read": 0})
            slot["read" if used["reused_from"] else "computed"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-dir", default="runs/demo-bench")
    parser.add_argument("--output-dir", default="runs/sweeps-reuse")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    demo, out = Path(args.demo_dir), Path(args.output_dir)
    if not (demo / "summary.json").is_file():
        timed_cli(["demo", f"output_dir={demo}", "progress=false"])
    config = demo_settings(demo)
    if out.exists():
        shutil.rmtree(out)  # both sweeps from nothing, so that neither finds a finished run
    seconds = {}
    for name, reuse in (("alone", False), ("shared", True)):
        start = time.perf_counter()
        timed_cli(sweep_args(demo, config, out / name, args.jobs, reuse))
        seconds[name] = round(time.perf_counter() - start, 1)
    differ = same_numbers(out / "shared", out / "alone")
    n_runs = len(list((out / "shared" / "runs").iterdir()))
    result = {
        "date": datetime.date.today().isoformat(), "machine": machine(), "grid": GRID, "runs": n_runs,
        "jobs": args.jobs, "unlearning": base_args(config), "seconds": seconds,
        "ratio_alone_over_shared": round(seconds["alone"] / seconds["shared"], 3),
        "saved_seconds": round(seconds["alone"] - seconds["shared"], 1), "cache": cache_use(out / "shared"),
        "runs_whose_numbers_differ": differ,
    }
    print(json.dumps(result, indent=2))
    if differ:
        raise SystemExit(f"{len(differ)} run(s) differ between the sweeps: {differ[:3]}")
    if args.record:
        (HERE / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
