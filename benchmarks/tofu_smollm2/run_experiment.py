"""TOFU with SmolLM2-135M-Instruct: target and retain fine-tuning, seven unlearning methods, evaluation.

Usage (from the project root, after `make install`):

    .venv/bin/python benchmarks/tofu_smollm2/run_experiment.py --scale cpu20 --record
    .venv/bin/python benchmarks/tofu_smollm2/run_experiment.py --scale full --record     # GPU: full TOFU

Scales:
- ``cpu20``: the largest honest CPU version — the first 20 TOFU authors (400 QA) with their own author-level split
  (forget = the last 2 authors, 40 QA, named forget10; retain = the other 18), made by ``unlearn tofu-subset``.
  NOT the TOFU benchmark: numbers are not comparable to published TOFU tables.
- ``full``: TOFU itself, ``full`` / ``retain95`` / ``forget05`` (needs a GPU to finish in hours).

Every stage is a normal ``unlearn`` run directory under ``--out``; finished stages are reused, so the command
can be re-run after an interruption. ``--record`` copies each run's report.md and plots plus a results table
into ``benchmarks/tofu_smollm2/<scale>/``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearn.config import RunConfig, load_config
from unlearn.config.parsing import merge, parse_overrides
from unlearn.experiments.common import quiet_libraries
from unlearn.experiments.finetune import run_finetune
from unlearn.experiments.plan import RunPlan, plan_finetune, plan_unlearning
from unlearn.experiments.stages import run_planned
from unlearn.experiments.unlearning import run_unlearning
from unlearn.io import write_json, write_text
from unlearn.reporting.report import write_comparison
from unlearn.runs import RunDirectory
from unlearn.tasks.tofu.subset import make_subset

HERE = Path(__file__).resolve().parent


@dataclass
class Overrides:
    """The script's positional overrides: run-config keys per method (``method_overrides.npo+gd.forget.beta=0.2``)."""

    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
METHODS = ["ga+gd", "npo+gd", "simnpo+gd", "idk+gd", "dpo+gd", "me+gd", "idk+ap"]

SCALES = {
    # the subset's forget split is 2 of 20 authors → its name is forget10 (SimNPO's forget10 defaults apply)
    # CPU budget (measured: ~70 tokens/s for a training step, ~380 tokens/s forward): an empty system message
    # (saves ~18 tokens per sample of SmolLM2's default one), 40 rows per eval set, 128-token generations, and
    # per-epoch evaluation of the forget set only, for the NPO/SimNPO gradient-weight plots.
    "cpu20": {"forget_split": "forget10", "retain_split": "retain90", "system_prompt": "",
              "eval": {"forget_rows": 40, "retain_rows": 40, "option_rows": 40, "max_length": 128, "batch_size": 16},
              "finetune": {"epochs": 5, "lr": 1e-4, "batch_size": 8, "grad_accum": 2},
              "unlearn": {"epochs": 5, "lr": 2e-5, "batch_size": 4, "grad_accum": 2},
              "per_epoch": {"methods": ["npo+gd", "simnpo+gd"], "epoch_sets": ["forget"],
                            "generate_every_epoch": False}},
    "full": {"forget_split": "forget05", "retain_split": "retain95", "system_prompt": None,
             "eval": {"batch_size": 64},
             "finetune": {"epochs": 5, "lr": 2e-5, "batch_size": 16, "grad_accum": 2},
             "unlearn": {"epochs": 5, "lr": 1e-5, "batch_size": 8, "grad_accum": 4},
             "per_epoch": {"methods": METHODS, "epoch_sets": None, "generate_every_epoch": True}},
}


def base(scale: dict, data: Path, model: str, out: Path) -> dict:
    return {
        "model": {"path": model, "system_prompt": scale["system_prompt"]},
        "data": {"root": str(data), "forget_split": scale["forget_split"], "max_length": 256},
        "eval": dict(scale["eval"]),
        "output_dir": str(out),
        "progress": sys.stderr.isatty(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu20")
    parser.add_argument("--tofu", default=str(HERE.parents[1].parent / "shared" / "data" / "tofu"),
                        help="a TOFU release directory (default ../shared/data/tofu)")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--out", help="run directory root (default runs/tofu_smollm2-<scale>)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("overrides", nargs="*", metavar="method_overrides.METHOD.KEY=VALUE",
                        help="per-method run-config keys in the one override syntax, e.g. "
                             "method_overrides.npo+gd.forget.beta=0.2")
    parser.add_argument("--record", action="store_true", help="write results into benchmarks/tofu_smollm2/<scale>/")
    args = parser.parse_args()
    quiet_libraries()
    scale = SCALES[args.scale]
    out = Path(args.out or f"runs/tofu_smollm2-{args.scale}")
    started = time.time()

    if args.scale == "cpu20":
        data, _ = make_subset(args.tofu, out / "data", n_authors=20, forget_authors=2)
    else:
        data = Path(args.tofu)
    per_method = parse_overrides(args.overrides, Overrides).get("method_overrides", {})

    stages: list[tuple[str, Path, float]] = []

    def timed(name: str, plan: RunPlan, pipeline) -> None:
        t = time.time()
        if run_planned(plan, pipeline):
            print(f"== {name}", flush=True)
        stages.append((name, plan.run.path, plan.run.read_results().seconds or time.time() - t))

    retain_dir, target_dir = out / "retain", out / "target"
    values = base(scale, data, args.model, retain_dir)
    values["data"]["train_splits"] = [scale["retain_split"]]
    values["train"] = dict(scale["finetune"])
    cfg = load_config(RunConfig, base=values)
    timed("retain model", plan_finetune(cfg), run_finetune)

    values = base(scale, data, args.model, target_dir)
    values["data"]["train_splits"] = ["full"]
    values["train"] = dict(scale["finetune"])
    values["save_model"] = True
    values["eval"]["retain_reference"] = str(retain_dir)
    cfg = load_config(RunConfig, base=values)
    timed("target model", plan_finetune(cfg), run_finetune)

    method_dirs = []
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        run_dir = out / "methods" / method.replace("+", "_")
        values = base(scale, data, str(target_dir / "model"), run_dir)
        values["method"] = {"name": method}
        per_epoch = scale["per_epoch"]
        values["train"] = {**scale["unlearn"], "eval_every_epoch": method in per_epoch["methods"]}
        values["eval"].update(epoch_sets=per_epoch["epoch_sets"],
                              generate_every_epoch=per_epoch["generate_every_epoch"])
        values["eval"]["retain_reference"] = str(retain_dir)
        cfg = load_config(RunConfig, base=merge(values, per_method.get(method, {})))
        timed(method, plan_unlearning(cfg), run_unlearning)
        method_dirs.append(run_dir)

    table = write_comparison([target_dir, retain_dir, *method_dirs], output_path=out / "comparison.md",
                             plots_dir=out / "plots")
    wall = time.time() - started
    print(table)
    print(f"\ntotal wall time {wall:.0f} s")
    if args.record:
        record(args, out, stages, wall)
    return 0


def record(args: argparse.Namespace, out: Path, stages: list[tuple[str, Path, float]], wall: float) -> None:
    import torch

    dest = HERE / args.scale
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "runs").mkdir(parents=True)
    for _name, run_dir, _ in stages:
        run = RunDirectory(run_dir)
        target = RunDirectory(dest / "runs" / run_dir.name).create()
        for src, dst in ((run.report_file, target.report_file), (run.metrics_file, target.metrics_file),
                         (run.epochs_file, target.epochs_file), (run.config_file, target.config_file)):
            if src.is_file():
                shutil.copyfile(src, dst)
        if run.plots_dir.is_dir():
            shutil.copytree(run.plots_dir, target.plots_dir)
        for rows in ("forget", "retain"):
            lines = run.read_eval_rows(rows)
            if lines is not None:  # example generations, trimmed to the fields a reader needs
                keep = ("question", "answer", "generation", "rougeL_recall", "prob", "truth_ratio")
                write_text(target.path / f"{rows}_generations.jsonl",
                           "".join(json.dumps({k: r.get(k) for k in keep}) + "\n" for r in lines))
    shutil.copytree(out / "plots", dest / "plots")
    comparison = (out / "comparison.md").read_text()
    device = "CUDA " + torch.cuda.get_device_name() if torch.cuda.is_available() else \
        f"CPU only ({platform.machine()}, {torch.get_num_threads()} threads)"
    lines = [f"# TOFU × SmolLM2-135M-Instruct — scale `{args.scale}`", "",
             f"Command: `.venv/bin/python benchmarks/tofu_smollm2/run_experiment.py --scale {args.scale} "
             f"{' '.join(args.overrides)} --record`".replace("  ", " "), "",
             f"Device: {device}. Date: {time.strftime('%Y-%m-%d')}. Total wall time: "
             f"{sum(s for _, _, s in stages) / 60:.1f} min (sum of the stages' own times, each measured when the "
             f"stage ran; this invocation took {wall / 60:.1f} min, reusing finished stages).", "",
             "| stage | seconds |", "|---|---|", *[f"| {n} | {s:.0f} |" for n, _, s in stages], "",
             "## Results", "", comparison]
    write_text(dest / "RESULTS.md", "\n".join(lines))
    write_json(dest / "stages.json", [{"stage": n, "run_dir": str(d), "seconds": s} for n, d, s in stages])


if __name__ == "__main__":
    sys.exit(main())
