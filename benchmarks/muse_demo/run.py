"""Time `unlearn demo benchmark=muse` from scratch, check that its table shows a meaningful benchmark, and run the
sequential-requests scenario (sust/forget_1..4) with NPO+GD and SimNPO+GD from the demo's target.

Usage:  python benchmarks/muse_demo/run.py [--output-dir runs/demo-muse-bench] [--budget 300] [--record]
        [demo key=value ...]

Checks (issue "MUSE … and the membership-inference suite"): the demo finishes within the budget (5 minutes on 2
CPU cores); the target's forget VerbMem and KnowMem are at least twice the retrained model's; the target's PrivLeak
is at most −50; and the retrained model, which saw neither the forget nor the holdout articles, gets every attack's
AUC within 0.5 ± 0.2 (20 against 20 texts: one standard deviation of a chance AUC is 0.09) — a benchmark whose
tokenizer or data tells members from non-members fails it. With --record, writes RESULTS.md, comparison.md and the
sequential table and plot next to this file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from demo_time import machine  # noqa: E402

SEQUENTIAL_METHODS = ("npo+gd", "simnpo+gd")


def checks(rows: dict[str, dict], wall: float, budget: float, retrained_aucs: dict[str, float]) -> list[tuple[str,
                                                                                                            bool]]:
    target, retrained = rows["target"], rows["retrained"]
    out = [(f"wall time {wall:.0f} s ≤ {budget:.0f} s", wall <= budget)]
    for key, label in (("verbmem_f", "VerbMem"), ("knowmem_f", "KnowMem forget")):
        ratio = target[key] / max(retrained[key], 1e-9)
        out.append((f"target {label} {target[key]:.1f} = {ratio:.1f}× the retrained model's {retrained[key]:.1f} "
                    "(≥ 2×)", ratio >= 2))
    out.append((f"target PrivLeak {target['privleak']:.1f} ≤ −50 (strongly negative)", target["privleak"] <= -50))
    shown = ", ".join(f"{attack} {value:.3f}" for attack, value in retrained_aucs.items())
    out.append((f"retrained model's attack AUCs near chance (0.5 ± 0.2): {shown}",
                all(abs(v - 0.5) <= 0.2 for v in retrained_aucs.values())))
    return out


def attack_aucs(run: Path) -> dict[str, float]:
    """Every attack's AUC (forget vs holdout articles) in a run's metrics.json."""
    attacks = json.loads((run / "metrics.json").read_text())["mia"]["attacks"]
    return {name: a["auc"] for name, a in attacks.items()}


def sequential(out: Path, demo_dir: Path) -> dict[str, dict]:
    """NPO+GD and SimNPO+GD over the four requests, with the demo's unlearning settings."""
    config = json.loads((demo_dir / "summary.json").read_text())["config"]
    results = {}
    for method in SEQUENTIAL_METHODS:
        target = out / method.replace("+", "_")
        command = ["unlearn", "sequential", f"model={demo_dir / 'target' / 'model'}", f"data={demo_dir / 'data'}",
                   "eval.task=muse", "model.template=qa", f"method={method}", "data.retain_split=raw/retain2",
                   f"data.max_length={config['max_length']}", f"train.epochs={config['unlearn_epochs']}",
                   f"train.lr={config['unlearn_lr']}", f"train.batch_size={config['unlearn_batch_size']}",
                   "train.grad_accum=1", f"eval.batch_size={config['eval_batch_size']}", "progress=false",
                   f"eval.retain_reference={demo_dir / 'retain'}",
                   f"output_dir={target}"]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        result = json.loads((target / "sequential.json").read_text())
        result["wall_seconds"] = round(time.perf_counter() - start, 1)
        result["command"] = " ".join(command)
        results[method] = result
    return results


def plot_sequential(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((axes[0], "knowmem_f", "KnowMem on the forget QA ↓"),
                           (axes[1], "knowmem_r", "KnowMem on the retain QA ↑")):
        for method, result in results.items():
            rows = result["rows"]
            ax.plot([r["request"] for r in rows], [r[key] for r in rows], "o-", label=method)
        ax.set_xlabel("unlearning request")
        ax.set_ylabel("ROUGE-L F1 × 100")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([1, 2, 3, 4])
        ax.legend(fontsize=8)
    fig.suptitle("Sequential unlearning on the embedded news (SimNPO Fig. A5 layout)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="runs/demo-muse-bench")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds allowed (5 minutes)")
    parser.add_argument("--record", action="store_true", help="write RESULTS.md next to this script")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    out = Path(args.output_dir)
    demo_dir = out / "demo"
    command = ["unlearn", "demo", "benchmark=muse", "--fresh", f"output_dir={demo_dir}", "progress=false",
               *args.overrides]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    summary = json.loads((demo_dir / "summary.json").read_text())
    rows = {r["model"]: r for r in summary["rows"]}
    results = checks(rows, wall, args.budget, attack_aucs(demo_dir / "retain"))
    print(f"\nwall time {wall:.0f} s; ratio to the {args.budget:.0f} s budget: {wall / args.budget:.2f}")
    for text, ok in results:
        print(f"  [{'ok' if ok else 'FAIL'}] {text}")
    if (out / "sequential").exists():
        shutil.rmtree(out / "sequential")
    seq = sequential(out / "sequential", demo_dir)
    for method, result in seq.items():
        print(f"sequential {method}: " + ", ".join(f"{r['request']}: KnowMem f {r['knowmem_f']:.1f} "
                                                  f"r {r['knowmem_r']:.1f}" for r in result["rows"]))
    if args.record:
        record(args, command, wall, results, demo_dir, seq)
    return 0 if all(ok for _, ok in results) else 1


def record(args, command, wall, results, demo_dir: Path, seq: dict[str, dict]) -> None:
    table = (demo_dir / "summary.md").read_text().split("\n\n", 1)[1].split("\n\nTotal", 1)[0]
    shutil.copyfile(demo_dir / "comparison.md", HERE / "comparison.md")
    plot_sequential(seq, HERE / "sequential_knowmem.png")
    seq_rows = []
    for method, result in seq.items():
        for r in result["rows"]:
            seq_rows.append(f"| {method} | {r['request']} ({r['forget_split']}) | {r['knowmem_f']:.2f} | "
                            f"{r['knowmem_r']:.2f} | {r['verbmem_f']:.2f} | {r['privleak']:.2f} |")
    (HERE / "sequential.json").write_text(json.dumps(seq, indent=1) + "\n")
    lines = [
        "# `unlearn demo benchmark=muse` — wall time, table, sequential requests",
        "",
        f"Command: `python benchmarks/muse_demo/run.py --record {' '.join(args.overrides)}`".rstrip()
        + f" (runs `{' '.join(command)}` from scratch, then `unlearn sequential` for {', '.join(seq)})",
        "",
        f"Machine: {machine()}. Measured {time.strftime('%Y-%m-%d')}.",
        "",
        f"**Demo wall time: {wall:.0f} s** — {wall / args.budget:.2f} of the {args.budget:.0f} s budget.",
        "",
        table,
        "",
        "VerbMem / KnowMem: ROUGE-L F1 × 100 (MUSE protocol: 128 greedy tokens; few-shot QA, 32 tokens). PrivLeak: "
        "100·(AUC − AUC_retrain)/AUC_retrain with the Min-40 % AUC of forget vs holdout articles, AUC_retrain measured "
        "on the retrained model. Every attack's AUC and the per-run reports: [comparison.md](comparison.md).",
        "",
        "Checks:",
        "",
        *[f"- [{'x' if ok else ' '}] {text}" for text, ok in results],
        "",
        "## Sequential unlearning requests (sust/forget_1..4)",
        "",
        "Each request starts from the previous request's model (NPO's reference = the model before that request). "
        "Wall time: " + ", ".join(f"{m} {r['wall_seconds']:.0f} s" for m, r in seq.items()) + ".",
        "",
        "| method | request | KnowMem forget ↓ | KnowMem retain ↑ | VerbMem forget ↓ | PrivLeak (→ 0) |",
        "|---|---|---|---|---|---|",
        *seq_rows,
        "",
        "![KnowMem per request](sequential_knowmem.png)",
        "",
    ]
    notes = HERE / "NOTES.md"
    if notes.is_file():
        lines += [notes.read_text()]
    (HERE / "RESULTS.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
