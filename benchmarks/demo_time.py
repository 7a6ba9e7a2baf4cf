"""Time `unlearn demo` from scratch and check that its table shows a meaningful benchmark.

Usage:  python benchmarks/demo_time.py [--output-dir runs/demo-bench] [--budget 600] [demo key=value ...]

Prints the wall time, its ratio to the budget (10 minutes on 2 CPU cores, issue 2), and the checks:
the target reproduces forget answers (forget ROUGE ≥ 0.9) with FQ ≪ 0.05 against the retain model, and
NPO+GD and SimNPO+GD raise FQ by orders of magnitude while keeping MU within 20 % of the target's.
Writes benchmarks/demo/RESULTS.md (table, checks, machine) when --record is given.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    return (f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}, "
            f"threads {torch.get_num_threads()}, Python {platform.python_version()}")


def timed_cli(args: list[str]) -> float:
    """Seconds one in-process ``unlearn ARGS`` took; a failure ends the benchmark with the command."""
    from unlearn.cli import main

    start = time.perf_counter()
    if main(list(args)) != 0:
        raise SystemExit(f"`unlearn {' '.join(args)}` failed")
    return time.perf_counter() - start


def checks(rows: dict[str, dict]) -> list[tuple[str, bool]]:
    target, out = rows["target"], []
    out.append((f"target forget ROUGE {target['forget_rouge']:.3f} ≥ 0.9", target["forget_rouge"] >= 0.9))
    out.append((f"target FQ {target['forget_quality']:.2e} ≪ 0.05 (< 1e-3)", target["forget_quality"] < 1e-3))
    for name in ("npo+gd", "simnpo+gd"):
        if name not in rows:
            continue
        r = rows[name]
        orders = math.log10(r["forget_quality"] / target["forget_quality"])
        out.append((f"{name}: FQ up {orders:.1f} orders of magnitude (≥ 2)", orders >= 2))
        ratio = r["model_utility_9"] / target["model_utility_9"]
        out.append((f"{name}: MU {r['model_utility_9']:.3f} = {ratio:.0%} of the target's (≥ 80 %)", ratio >= 0.8))
    return out


def copy_artifacts(out: Path) -> None:
    """The demo's comparison (tables, plots, example generations) next to RESULTS.md."""
    dest = HERE / "demo"
    shutil.copyfile(out / "comparison.md", dest / "comparison.md")
    if (dest / "plots").exists():
        shutil.rmtree(dest / "plots")
    shutil.copytree(out / "plots", dest / "plots")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="runs/demo-bench")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds allowed (issue 2: 10 minutes)")
    parser.add_argument("--record", action="store_true", help="write benchmarks/demo/RESULTS.md")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    out = Path(args.output_dir)
    # --fresh starts from scratch, and refuses a directory that a demo did not make
    command = ["unlearn", "demo", "--fresh", f"output_dir={out}", "progress=false", *args.overrides]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["model"]: r for r in summary["rows"]}
    results = checks(rows)
    print(f"\nwall time {wall:.0f} s; ratio to the {args.budget:.0f} s budget: {wall / args.budget:.2f}")
    for text, ok in results:
        print(f"  [{'ok' if ok else 'FAIL'}] {text}")
    if args.record:
        table = (out / "summary.md").read_text().split("\n\n", 1)[1].rsplit("\n\nTotal", 1)[0]
        lines = [
            "# `unlearn demo` — wall time and table",
            "",
            f"Command: `python benchmarks/demo_time.py --record {' '.join(args.overrides)}`".rstrip() +
            f" (runs `{' '.join(command)}` from scratch)",
            "",
            f"Machine: {machine()}. Measured {time.strftime('%Y-%m-%d')}.",
            "",
            f"**Wall time: {wall:.0f} s** — {wall / args.budget:.2f} of the {args.budget:.0f} s budget.",
            "",
            table,
            "",
            "FQ = Forget Quality (KS p-value vs the retain model), MU = Model Utility (9 numbers). "
            "Time (s) per row = that stage's fine-tuning/unlearning plus evaluation.",
            "",
            "Checks (issue 2):",
            "",
            *[f"- [{'x' if ok else ' '}] {text}" for text, ok in results],
            "",
        ]
        lines += ["All metrics of every run (closer-look included) and the comparison plots: "
                  "[comparison.md](comparison.md).", ""]
        notes = HERE / "demo" / "NOTES.md"
        if notes.is_file():
            lines += [notes.read_text()]
        (HERE / "demo" / "RESULTS.md").write_text("\n".join(lines))
        copy_artifacts(out)
    return 0 if all(ok for _, ok in results) and wall <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
