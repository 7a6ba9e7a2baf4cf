"""Every method on the embedded TOFU demo (issue 25): the seven seed methods, RMU, Task Vector and the field's newer
baselines, each swept from the demo's target (the learning rate, or the method's own knobs), the best configuration
under the utility floor (MU-9 ≥ 0.9 × the target's), time per method, and what each did to the forget set.

Usage:  python benchmarks/baselines/run_tofu.py [--demo-dir runs/bl-demo] [--output-dir runs/bl-tofu]
        [--jobs 2] [--record]

Everything starts from the demo's target (``unlearn demo``, run here when ``--demo-dir`` has none) with the demo's
unlearning settings (5 epochs, batch 8, evaluated after every epoch: every epoch a candidate), every run's final model
saved (for ``run_scores.py``: the overall score and the meta-evaluation). ``benchmarks/sweeps/demo/`` holds the seed
methods' wider grids of an earlier code (e25861e, before the fast step). With --record the selection
(``sweep.md``, ``sweep.json``, the front plot) and ``RESULTS.md`` go to ``benchmarks/baselines/tofu/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "scenarios"))
sys.path.insert(0, str(HERE))
from common import WALL_TIME, chosen_rows, record, time_table  # noqa: E402
from demo_inputs import demo_settings, unlearning_args  # noqa: E402
from demo_time import machine, timed_cli  # noqa: E402

LR = "5e-4,1e-3,2e-3"
SEED_METHODS = ("ga+gd", "npo+gd", "simnpo+gd", "idk+gd", "dpo+gd", "me+gd", "idk+ap")
"""``unlearn demo``'s seven, at their recipes' defaults (SimNPO: the reference code's forget10 values)."""
NEW_METHODS = ("wga+gd", "satimp+gd", "ceu+gd", "undial+gd", "pdu", "altpo+gd", "lwga+gd")
"""The issue's six (PDU is lmf+dual) and the renamed length-weighted GA, each at its recipe's defaults."""
METHODS = (*SEED_METHODS, "rmu", "task_vector", *NEW_METHODS)
METHOD_KEYS = ("altpo+gd:forget.max_new_tokens=64",
               "rmu:train.lr=5e-3", "rmu:forget.steering_coeff=6.5,60", "rmu:method.retain_weight=1,10,100",
               "task_vector:forget.alpha=0.5,1,2")
"""Every method sweeps the learning rate around the demo's 1e-3 (LR), except:

- AltPO's alternatives must fit data.max_length (the demo's 128) after the question, which the default 128 new
  tokens do not: 64, more than four times the longest forget answer (15 tokens under the demo's tokenizer).
- RMU's own knobs instead, at the learning rate of the WMDP demo's ``RMU_TINY`` (5e-3): c at WMDP's 6.5 and the
  tiny models' 60, the retain weight α at 1, 10, 100 (WMDP's 1200 leaves these models unchanged:
  benchmarks/rmu_demos/).
- Task Vector: its α (0.5, 1, 2) beside the learning rate of the fine-tuning on the forget set."""


def chosen_table(sweep: Path, selection: dict) -> list[str]:
    """The chosen epoch of each method's chosen run: FQ, MU-9 and the forget set's ROUGE, Prob, EM, ES."""
    lines = ["| method | settings | epoch | FQ | MU-9 | forget ROUGE | forget Prob | forget EM | forget ES |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method, found in chosen_rows(sweep, selection).items():
        if isinstance(found, str):
            lines.append(f"| {method} | none eligible: {found} |  |  |  |  |  |  |  |")
            continue
        settings, epoch, row = found
        f = row["sets"]["forget"]
        lines.append(f"| {method} | {', '.join(f'`{k}={v}`' for k, v in settings.items())} | {epoch} | "
                     f"{row['forget_quality']:.3g} | {row['model_utility_9']:.3f} | "
                     f"{f.get('rouge', float('nan')):.3f} | {f['prob']:.3f} | {f['exact_memorization']:.3f} | "
                     f"{f['extraction_strength']:.3f} |")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo-dir", default="runs/bl-demo")
    p.add_argument("--output-dir", default="runs/bl-tofu")
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
            "train.eval_every_epoch=true", "save_model=true",
            *(a for a in unlearning_args(config) if not a.startswith("train.lr="))]
    seconds["sweep"] = timed_cli(["sweep", *base, f"method={','.join(METHODS)}", f"train.lr={LR}", *METHOD_KEYS,
                                  f"sweep.jobs={args.jobs}", "--yes", f"output_dir={out / 'sweep'}"])
    selection = json.loads((out / "sweep" / "sweep.json").read_text())
    lines = ["# Every method on the embedded TOFU demo", "",
             f"Command: `python benchmarks/baselines/run_tofu.py --jobs {args.jobs}"
             f"{' --record' if args.record else ''}`",
             f"Machine: {machine()}, sweep.jobs={args.jobs}. Date: {time.strftime('%Y-%m-%d')}. " + WALL_TIME
             + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()) + ".", "",
             *time_table(out / "sweep", selection), "",
             "Chosen per method (best FQ among candidates with MU-9 ≥ 0.9 × the target's, every epoch a "
             "candidate; [sweep.md](sweep.md) has every candidate and the front plot), with what the method did to "
             "the forget set at that epoch:", "", *chosen_table(out / "sweep", selection), ""]
    (out / "RESULTS.md").write_text("\n".join(lines))
    print("\n".join(lines))
    if args.record:
        record(out, "tofu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
