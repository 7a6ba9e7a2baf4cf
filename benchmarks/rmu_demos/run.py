"""RMU on the embedded TOFU and MUSE demos (open-unlearning reports RMU on both): a small grid over its control
norm c and retain weight α, each run an ordinary `unlearn demo … methods=rmu` sharing the demo's target and
retain/retrained models.

Usage:  python benchmarks/rmu_demos/run.py [--bench tofu,muse] [--output-dir runs/rmu-demos] [--record]

The grid: c ∈ {6.5 (WMDP's Zephyr-7B value), 60 (the WMDP demo's RMU_TINY)} × α ∈ {1, 10, 100, 1200 (WMDP's)},
lr 5e-3 (RMU_TINY's), the demo's epochs and batch size. Per run: the demo's table row for RMU, and RMU's forget
loss (mean ‖h − c·û‖² per unit) at the first and the last step, which says whether the activations moved toward c·û
at all. With --record, writes RESULTS.md and results.json next to this file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from demo_time import machine  # noqa: E402

GRID_C = (6.5, 60.0)
GRID_ALPHA = (1.0, 10.0, 100.0, 1200.0)
LR = 5e-3
COLUMNS = {  # bench → (summary key, header, ↑/↓) of the demo's own table
    "tofu": (("forget_quality", "FQ", "↑"), ("model_utility_9", "MU", "↑"), ("forget_rouge", "forget ROUGE", "↓"),
             ("forget_prob", "forget Prob", "↓")),
    "muse": (("verbmem_f", "VerbMem forget", "↓"), ("knowmem_f", "KnowMem forget", "↓"),
             ("knowmem_r", "KnowMem retain", "↑"), ("privleak", "PrivLeak", "→0")),
}


def forget_loss_ends(train_log: Path) -> tuple[float, float]:
    rows = [json.loads(line) for line in train_log.read_text().splitlines() if line.strip()]
    return rows[0]["forget_loss"], rows[-1]["forget_loss"]


def run_grid(bench: str, out: Path) -> dict:
    from unlearn.cli import main

    rows, references = [], {}
    for c in GRID_C:
        for alpha in GRID_ALPHA:
            command = ["demo", f"benchmark={bench}", f"output_dir={out}", "methods=rmu", "progress=false",
                       f"method_overrides.rmu.forget.steering_coeff={c}",
                       f"method_overrides.rmu.method.retain_weight={alpha}", f"method_overrides.rmu.train.lr={LR}"]
            start = time.perf_counter()
            if main(command) != 0:
                raise SystemExit(f"`unlearn {' '.join(command)}` failed")
            wall = time.perf_counter() - start
            summary = json.loads((out / "summary.json").read_text())
            by_model = {r["model"]: r for r in summary["rows"]}
            references = {k: v for k, v in by_model.items() if k != "rmu"}
            first, last = forget_loss_ends(out / "methods" / "rmu" / "train_log.jsonl")
            rows.append({"c": c, "alpha": alpha, **by_model["rmu"], "forget_loss_first": first,
                         "forget_loss_last": last, "wall_seconds": round(wall, 1),
                         "command": "unlearn " + " ".join(command)})
            print(f"{bench} c={c} α={alpha}: " + ", ".join(f"{h}={by_model['rmu'][k]}" for k, h, _ in COLUMNS[bench]),
                  flush=True)
    return {"rows": rows, "references": references}


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 and value != 0 else f"{value:.3f}"
    return str(value)


def table(bench: str, result: dict) -> list[str]:
    cols = COLUMNS[bench]
    lines = ["| model | c | α | " + " | ".join(f"{h} {d}" for _, h, d in cols) + " | RMU loss first → last | s |",
             "|---|---|---|" + "---|" * len(cols) + "---|---|"]
    for name, row in result["references"].items():
        lines.append(f"| {name} | | | " + " | ".join(_fmt(row.get(k)) for k, _, _ in cols) + " | | |")
    for row in result["rows"]:
        loss = f"{row['forget_loss_first']:.2f} → {row['forget_loss_last']:.2f}"
        lines.append(f"| rmu | {row['c']:g} | {row['alpha']:g} | " + " | ".join(_fmt(row.get(k)) for k, _, _ in cols)
                     + f" | {loss} | {row['wall_seconds']:.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default="tofu,muse")
    parser.add_argument("--output-dir", default="runs/rmu-demos")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    results = {}
    start = time.perf_counter()
    for bench in args.bench.split(","):
        if bench not in COLUMNS:
            raise SystemExit(f"--bench: unknown benchmark {bench!r} (tofu, muse)")
        results[bench] = run_grid(bench, Path(args.output_dir) / bench)
    wall = time.perf_counter() - start
    lines = [f"Wall time for the whole grid: {wall:.0f} s on {machine()}."]
    for bench, result in results.items():
        lines += ["", f"## {bench}", "", *table(bench, result)]
    print("\n".join(lines))
    if args.record:
        (HERE / "results.json").write_text(json.dumps({"machine": machine(), "wall_seconds": round(wall, 1),
                                                       "lr": LR, **results}, indent=1) + "\n")
        (HERE / "table.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
