"""The field's other baselines on the embedded TOFU demo (issue 25): each new method swept over the learning rate from
the demo's target, the best configuration under the utility floor (MU-9 ≥ 0.9 × the target's), time per method,
then OpenUnlearning's overall score over the chosen runs and the meta-evaluation of metrics over them.

Usage:  python benchmarks/baselines/run_tofu.py [--demo-dir runs/bl-demo] [--output-dir runs/baselines-tofu]
        [--jobs 2] [--record]

The seed methods' sweeps are benchmarks/sweeps/demo/ (same start, same settings); this script adds the methods
that came after them. Everything starts from the demo's target (``unlearn demo``, run here when ``--demo-dir`` has
none) with the demo's unlearning settings (5 epochs, batch 8, evaluated after every epoch: every epoch a candidate).
With --record the selection (``sweep.md``, ``sweep.json``, the front plot) and ``RESULTS.md`` go to
``benchmarks/baselines/tofu/``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "scenarios"))
from demo_inputs import demo_settings, unlearning_args  # noqa: E402
from demo_time import machine, timed_cli  # noqa: E402

LR = "5e-4,1e-3,2e-3"
METHODS = ("wga+gd", "satimp+gd", "ceu+gd", "undial+gd", "pdu", "altpo+gd", "lwga+gd")
"""The issue's six (PDU is lmf+dual) and the renamed length-weighted GA, each at its recipe's defaults; only the
learning rate is swept, around the demo's 1e-3."""
METHOD_KEYS = ("altpo+gd:forget.max_new_tokens=64",)
"""AltPO's alternatives must fit data.max_length (the demo's 128) after the question, which the default 128 new
tokens do not: 64, more than four times the longest forget answer (15 tokens under the demo's tokenizer)."""


def chosen_table(sweep: Path, selection: dict) -> list[str]:
    """The chosen epoch of each method's chosen run: FQ, MU-9 and the forget set's ROUGE, Prob, EM, ES."""
    lines = ["| method | lr | epoch | FQ | MU-9 | forget ROUGE | forget Prob | forget EM | forget ES |",
             "|---|---|---|---|---|---|---|---|---|"]
    settings = {r["name"]: r["settings"] for r in selection["runs"]}
    for method, choice in selection["chosen"].items():
        if choice["candidate"] is None:
            lines.append(f"| {method} | none eligible: {choice['reason']} |  |  |  |  |  |  |  |")
            continue
        name, epoch = choice["candidate"].rsplit("@e", 1)
        rows = [json.loads(line) for line in (sweep / "runs" / name / "epochs.jsonl").read_text().splitlines()]
        row = next(r for r in rows if r["epoch"] == int(epoch))
        f = row["sets"]["forget"]
        lines.append(f"| {method} | {settings[name].get('train.lr')} | {epoch} | {row['forget_quality']:.3g} | "
                     f"{row['model_utility_9']:.3f} | {f.get('rouge', float('nan')):.3f} | {f['prob']:.3f} | "
                     f"{f['exact_memorization']:.3f} | {f['extraction_strength']:.3f} |")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo-dir", default="runs/bl-demo")
    p.add_argument("--output-dir", default="runs/baselines-tofu")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--record", action="store_true")
    args = p.parse_args()
    demo, out = Path(args.demo_dir), Path(args.output_dir)
    seconds: dict[str, float] = {}
    if not (demo / "summary.json").is_file():
        seconds["demo"] = timed_cli(["demo", f"output_dir={demo}", "progress=false", "methods=[npo+gd]"])
    config = demo_settings(demo)
    base = [f"model={demo / 'target' / 'model'}", f"data={demo / 'data'}",
            f"data.forget_split={config['forget_split']}", f"eval.retain_reference={demo / 'retain'}",
            "train.eval_every_epoch=true", *(a for a in unlearning_args(config) if not a.startswith("train.lr="))]
    seconds["sweep"] = timed_cli(["sweep", *base, f"method={','.join(METHODS)}", f"train.lr={LR}", *METHOD_KEYS,
                                  f"sweep.jobs={args.jobs}", "--yes", f"output_dir={out / 'sweep'}"])
    selection = json.loads((out / "sweep" / "sweep.json").read_text())
    per_method: dict[str, dict] = {}
    for run in selection["runs"]:
        metrics = json.loads((out / "sweep" / "runs" / run["name"] / "metrics.json").read_text())
        entry = per_method.setdefault(run["method"], {"runs": 0, "seconds": 0.0})
        entry["runs"] += 1
        entry["seconds"] += float(metrics.get("seconds") or 0.0)
    lines = ["# The field's other baselines on the embedded TOFU demo", "",
             f"Command: `python benchmarks/baselines/run_tofu.py --jobs {args.jobs}"
             f"{' --record' if args.record else ''}`",
             f"Machine: {machine()}, sweep.jobs={args.jobs}. Date: {time.strftime('%Y-%m-%d')}. Wall time (s): "
             + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()) + ".", "",
             "| method | runs | mean time per run (s) |", "|---|---|---|"]
    for method, entry in per_method.items():
        lines.append(f"| {method} | {entry['runs']} | {entry['seconds'] / entry['runs']:.0f} |")
    lines += ["", "Chosen per method (best FQ among candidates with MU-9 ≥ 0.9 × the target's, every epoch a "
              "candidate; [sweep.md](sweep.md) has every candidate and the front plot), with what the method did to "
              "the forget set at that epoch:", "", *chosen_table(out / "sweep", selection), ""]
    (out / "RESULTS.md").write_text("\n".join(lines))
    print("\n".join(lines))
    if args.record:
        dest = HERE / "tofu"
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("sweep.md", "sweep.json"):
            shutil.copy(out / "sweep" / name, dest / name)
        if (out / "sweep" / "plots").is_dir():
            shutil.copytree(out / "sweep" / "plots", dest / "plots", dirs_exist_ok=True)
        shutil.copy(out / "RESULTS.md", dest / "RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
