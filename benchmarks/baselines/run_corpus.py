"""Every method on the embedded MUSE or WMDP demo (issue 25): a small sweep per method from the demo's target, the
best configuration under the utility floor, time per method, and what each method did.

Usage:  python benchmarks/baselines/run_corpus.py --benchmark muse|wmdp [--demo-dir runs/bl-muse-demo]
        [--output-dir runs/bl-muse] [--jobs 2] [--record]

Both benchmarks unlearn text corpora (MUSE's forget articles; the WMDP demo's "hazardous" corpus), so the methods
that need questions and refusal templates (IDK, DPO, AP, AltPO) do not apply: the toolkit refuses them on text
corpora before anything runs. Everything starts from the demo's target (``unlearn demo benchmark=…``, run here
when ``--demo-dir`` has none) with the demo's own unlearning settings, read from its first method's resolved
``config.yaml`` (epochs, batch, chunking, evaluation), every epoch evaluated (every epoch a candidate) and every
run's final model saved. Selection (``unlearn sweep``'s rule, utility ≥ 0.9 × the target's):

- MUSE: the lowest KnowMem on the forget QA under KnowMem on the retain QA (the task's default axes); re-selected,
  without running anything, on VerbMem (lowest) and on PrivLeak (closest to 0) as ``verbmem.md``, ``privleak.md``;
- WMDP: the lowest forget-MC accuracy (``wmdp_bio``) under the stand-in MMLU's.

With --record the selections, their front plots and ``RESULTS.md`` go to ``benchmarks/baselines/<benchmark>/``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from common import WALL_TIME, chosen_rows, record, time_table  # noqa: E402
from demo_time import machine, timed_cli  # noqa: E402

METHODS = ("ga+gd", "npo+gd", "simnpo+gd", "me+gd", "rmu", "task_vector", "wga+gd", "satimp+gd", "ceu+gd",
           "undial+gd", "pdu", "lwga+gd")
"""The seed methods that apply to text corpora (GA, NPO, SimNPO, ME, each with GD), RMU, Task Vector, and the
issue's methods but AltPO (PDU is lmf+dual), plus the renamed length-weighted GA."""
LR = {"muse": "5e-4,1e-3,2e-3", "wmdp": "2.5e-4,5e-4,1e-3"}
"""Around each demo's own unlearning rate (MUSE 1e-3, WMDP 5e-4)."""
BASE_KEYS = ("model.path", "model.template", "data.root", "data.forget_split", "data.retain_split", "data.max_length",
             "data.chunking", "eval.task", "eval.batch_size", "eval.retain_reference", "eval.mmlu_root",
             "train.epochs", "train.batch_size", "train.grad_accum", "train.seed", "train.weight_decay",
             "train.warmup_epochs")
"""The demo's settings every sweep run shares (the method's own sections and the learning rate are the grid's)."""
SELECTIONS = {"muse": [("sweep", []), ("verbmem", ["sweep.forget_metric=verbmem_f"]),
                       ("privleak", ["sweep.forget_metric=privleak"])],
              "wmdp": [("sweep", ["sweep.forget_metric=wmdp_bio.accuracy", "sweep.utility_metric=mmlu.accuracy"])]}


def method_keys(benchmark: str, target_nll: float, demo_lr: float) -> list[str]:
    """Per-method axes. RMU: its own knobs at the WMDP demo's RMU_TINY learning rate 5e-3 (c at WMDP's 6.5 and the
    tiny models' 60, α at 1, 10, 100; WMDP's 1200 leaves these models unchanged: benchmarks/rmu_demos/). Task
    Vector: α (MUSE's recipe value 5, and 1, 2) beside the learning rate. PDU: ε = (1 + a)·L_retain(start) for
    a = 0.1, 0.5, 1 (the paper's suggested form) at the demo's learning rate, with L_retain(start) estimated by the
    target's mean training loss over its last fine-tuning epoch (both corpora), and the objective's neutral
    λ₀ = 1, η = 1 (OpenUnlearning's λ₀ 100, η 5 and 5 warm-up epochs are its TOFU runs')."""
    eps = ",".join(f"{(1 + a) * target_nll:.4g}" for a in (0.1, 0.5, 1.0))
    return ["rmu:train.lr=5e-3", "rmu:forget.steering_coeff=6.5,60", "rmu:method.retain_weight=1,10,100",
            "task_vector:forget.alpha=1,2,5", f"pdu:train.lr={demo_lr:g}", f"pdu:retain.epsilon={eps}"]


def flat(config: dict, key: str):
    value = config
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def last_epoch_loss(train_log: Path) -> float:
    """The mean training loss over the last epoch of a fine-tuning log."""
    rows = [json.loads(line) for line in train_log.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "loss" in r and "epoch" in r]
    last = max(r["epoch"] for r in rows)
    return statistics.fmean(r["loss"] for r in rows if r["epoch"] > last - 1)


def table(benchmark: str, chosen: dict) -> list[str]:
    if benchmark == "muse":
        lines = ["| method | settings | epoch | KnowMem forget ↓ | KnowMem retain ↑ | VerbMem forget ↓ | "
                 "PrivLeak (→ 0) |", "|---|---|---|---|---|---|---|"]
        cells = ("knowmem_f", "knowmem_r", "verbmem_f", "privleak")
    else:
        lines = ["| method | settings | epoch | forget MC ↓ | retain MC ↑ | stand-in MMLU ↑ |",
                 "|---|---|---|---|---|---|"]
        cells = ("wmdp_bio", "retain_mc", "mmlu")
    for method, found in chosen.items():
        if isinstance(found, str):
            lines.append(f"| {method} | none eligible: {found} |" + " |" * (len(cells) + 1))
            continue
        settings, epoch, row = found
        values = " | ".join("—" if row.get(c) is None else f"{row[c]:.3g}" for c in cells)
        lines.append(f"| {method} | {', '.join(f'`{k}={v}`' for k, v in settings.items())} | {epoch} | {values} |")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", choices=("muse", "wmdp"), required=True)
    p.add_argument("--demo-dir")
    p.add_argument("--output-dir")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--record", action="store_true")
    args = p.parse_args()
    bench = args.benchmark
    demo = Path(args.demo_dir or f"runs/bl-{bench}-demo")
    out = Path(args.output_dir or f"runs/bl-{bench}")
    seconds: dict[str, float] = {}
    if not (demo / "summary.json").is_file():
        seconds["demo"] = timed_cli(["demo", f"benchmark={bench}", f"output_dir={demo}", "progress=false",
                                     "methods=[npo+gd]"])
    config = yaml.safe_load(next((demo / "methods").glob("*/config.yaml")).read_text())
    base = [f"{k}={v}" for k in BASE_KEYS if (v := flat(config, k)) is not None]
    base += ["train.eval_every_epoch=true", "save_model=true", "progress=false"]
    target_nll = last_epoch_loss(demo / "target" / "train_log.jsonl")
    keys = method_keys(bench, target_nll, float(config["train"]["lr"]))
    grid = [f"method={','.join(METHODS)}", f"train.lr={LR[bench]}", *keys]
    results = []
    for name, selection in SELECTIONS[bench]:
        t = timed_cli(["sweep", *base, *grid, *selection, f"sweep.name={name}", f"sweep.jobs={args.jobs}", "--yes",
                       f"output_dir={out / 'sweep'}"])
        seconds[f"sweep ({name})"] = t
        results.append((name, json.loads((out / "sweep" / f"{name}.json").read_text())))
    main_selection = results[0][1]
    lines = [f"# Every method on the embedded {bench.upper()} demo", "",
             f"Command: `python benchmarks/baselines/run_corpus.py --benchmark {bench} --jobs {args.jobs}"
             f"{' --record' if args.record else ''}`",
             f"Machine: {machine()}, sweep.jobs={args.jobs}. Date: {time.strftime('%Y-%m-%d')}. " + WALL_TIME
             + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()) + ".",
             f"Target's mean training loss over its last fine-tuning epoch (PDU's L_retain(start)): {target_nll:.4g}.",
             "", *time_table(out / "sweep", main_selection), ""]
    for name, selection in results:
        target = selection["target"]
        lines += [f"## Chosen on {selection['forget_metric']} ({selection['forget_direction']}) under "
                  f"{selection['utility_metric']} ≥ {selection['utility_ratio']} × the target's "
                  f"({target['utility']:.3g}); target {selection['forget_metric']} {target['forget']:.3g}", "",
                  f"[{name}.md]({name}.md) has every candidate and the front plot. The chosen epoch of each method's "
                  "chosen run:", "", *table(bench, chosen_rows(out / "sweep", selection)), ""]
    (out / "RESULTS.md").write_text("\n".join(lines))
    print("\n".join(lines))
    if args.record:
        record(out, bench, selections=tuple(n for n, _ in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
