"""The real-scale sweep study (issue 15): TOFU with SmolLM2-135M-Instruct, nine methods swept on each forget split,
the chosen configurations in the layouts of SimNPO Table 1 (FQ, MU) and closer-look Table 4 (FE, MU).

Usage:  python benchmarks/sweeps/tofu_smollm2/run.py --scale gpu [--splits forget10,forget05,forget01]
            [--model PATH] [--tofu DIR] [--out DIR] [--jobs N] [--record]
        python benchmarks/sweeps/tofu_smollm2/run.py --scale smoke        # CPU, minutes: the whole pipeline
        python benchmarks/sweeps/tofu_smollm2/run.py --scale cpu20 --record  # CPU, hours: not TOFU-comparable

Per forget split (``forget01/05/10`` with its retain model on ``retain99/95/90``), in order:

1. the target model, fine-tuned on ``full`` (once for every split), and the split's retain model;
2. ``unlearn sweep`` over the nine methods (the seven seed methods, W-GradDiff and RMU) with per-method axes (GRID),
   evaluated after every epoch so that every epoch is a candidate, selected by "best FQ at MU-9 ≥ 0.9 × the
   target's" (``sweep.md``) and again, without running anything, on Forget Efficacy without ES (``fe.md``: the NLI
   model of ES does not ship offline);
3. ``tables.md``: the chosen candidate of each method per split, with its epoch, ties and settings.

Every stage is an ordinary run directory under ``--out``; finished runs are reused and interrupted ones resume, so
the command can be repeated until it completes — one split per GPU stretch (``--splits forget10``) fits the device
tool's short stretches. Nothing here downloads: ``--model`` is a local directory or ``.gguf`` file (on the GPU
machine ``/root/m/SmolLM2-135M-Instruct.Q4_1.gguf``, staged by ``../shared/tools/gpu-stage-smollm2``) and
``--tofu`` the TOFU release in ``../shared/data/tofu``.

Scales: ``gpu`` is TOFU itself at the fine-tuning recipe of ``benchmarks/tofu_smollm2`` (``full``). ``cpu20`` is the
CPU stand-in the issue asks for until a GPU is lent: ``benchmarks/tofu_smollm2``'s 20-author subset (forget = 2
authors, named forget10; 40 rows per eval set, 128-token generations, the recipe of its ``cpu20`` scale), a small
sweep — NPO+GD and SimNPO+GD at three learning rates, candidates at the last epoch only (per-epoch generation costs
more than the training on 2 cores) — and NOT comparable with published TOFU numbers. ``smoke`` runs the pipeline on
the embedded benchmark of ``unlearn demo`` with its tiny model, one configuration per method and one epoch: it checks
the pipeline, its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE.parents[1]))
from demo_time import timed_cli  # noqa: E402

from unlearn.runs import RunDirectory  # noqa: E402
from unlearn.train.checkpoint import Checkpoint  # noqa: E402

SPLITS = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
"""TOFU's forget splits and the retain split of each one's retain model (its FQ reference)."""
METHODS = ("ga+gd", "wga+gd", "npo+gd", "simnpo+gd", "idk+gd", "dpo+gd", "me+gd", "idk+ap", "rmu")
LR = "train.lr=1e-5,2e-5,5e-5"
GRID: dict[str, list[str]] = {
    "ga+gd": [LR, "method.retain_weight=1,2"],
    "wga+gd": [LR, "method.retain_weight=1,2"],
    "npo+gd": [LR, "forget.beta=0.1,0.2"],
    "simnpo+gd": [LR, "forget.beta=2.5,3.5"],
    "idk+gd": [LR, "method.retain_weight=1,2"],
    "dpo+gd": [LR, "forget.beta=0.1,0.2"],
    "me+gd": [LR, "method.forget_weight=0.1,0.3"],
    "idk+ap": [LR, "retain.beta=0.1,0.5"],
    "rmu": ["train.lr=5e-5,1e-4,2e-4", "forget.steering_coeff=6.5,20"],
}
"""Six configurations per method: the learning rate around the target's fine-tuning rate (2e-5) and the method's own
weight — NPO's β and SimNPO's β inside SimNPO App. I.2's ranges, ME's α and AP's β at closer-look's 0.1 and above,
the retain weight of GA, W-GradDiff and IDK, RMU's steering coefficient (WMDP's 6.5 for 7B, and larger)."""
SCALES = {
    "gpu": {"model": "/root/m/SmolLM2-135M-Instruct.Q4_1.gguf", "data": "../shared/data/tofu",
            "common": ["data.max_length=256", "eval.batch_size=64"],
            "finetune": ["train.epochs=5", "train.lr=2e-5", "train.batch_size=16", "train.grad_accum=2"],
            "unlearn": ["train.epochs=5", "train.batch_size=8", "train.grad_accum=4"], "grid": GRID, "per_epoch": True},
    "cpu20": {"model": "runs/mc_vs_lm_eval/smollm2-135m-instruct", "data": "../shared/data/tofu", "subset": 20,
              "common": ['model.system_prompt=""', "data.max_length=256", "eval.forget_rows=40", "eval.retain_rows=40",
                         "eval.option_rows=40", "eval.max_length=128", "eval.batch_size=16"],
              "finetune": ["train.epochs=5", "train.lr=1e-4", "train.batch_size=8", "train.grad_accum=2"],
              "unlearn": ["train.epochs=5", "train.batch_size=4", "train.grad_accum=2"], "per_epoch": False,
              "grid": {m: ["train.lr=1e-5,2e-5,5e-5"] for m in ("npo+gd", "simnpo+gd")}},
    "smoke": {"model": "runs/demo-bench/base_model", "data": "runs/demo-bench/data",
              "common": ["model.template=qa", "data.max_length=128", "eval.max_length=96", "eval.batch_size=32",
                         "eval.forget_rows=20", "eval.retain_rows=20", "eval.option_rows=20"],
              "finetune": ["train.epochs=2", "train.lr=3e-3", "train.batch_size=32"],
              "unlearn": ["train.epochs=1", "train.batch_size=8"], "per_epoch": True,
              "grid": {m: ["train.lr=1e-3"] for m in METHODS}},
}


def finetune(scale: Mapping, model: str, splits: str, out: Path, forget_split: str = "forget10",
             reference: Path | None = None) -> float:
    """A fine-tuned model in ``out`` (reused when finished, resumed when interrupted), evaluated on ``forget_split``
    (a retain model on its own split's forget rows: the FQ reference of that split's runs), with FQ against
    ``reference`` when given."""
    if (out / "metrics.json").is_file():
        return 0.0
    # a run stopped before its first checkpoint has nothing to resume: it starts over
    resume = (["--resume"] if Checkpoint(RunDirectory(out).checkpoint_dir).exists()
              else ["--overwrite"] if out.is_dir() else [])
    against = [f"eval.retain_reference={reference}"] if reference is not None else []
    return timed_cli(["finetune", *resume, f"model={model}", f"data={scale['data_dir']}",
                      f"data.train_splits={splits}", f"data.forget_split={forget_split}", f"output_dir={out}",
                      "save_model=true", "progress=false", *against, *scale["common"], *scale["finetune"]])


def sweep_args(scale: Mapping, out: Path, split: str, jobs: int) -> list[str]:
    grid = scale["grid"]
    # without per-epoch evaluation the candidates are the runs' last epochs, and the target's own evaluation gives
    # the utility the selection rule needs
    when = ["train.eval_every_epoch=true"] if scale["per_epoch"] else [f"sweep.target={out / 'target'}"]
    return ["sweep", f"model={out / 'target' / 'model'}", f"data={scale['data_dir']}", f"data.forget_split={split}",
            f"eval.retain_reference={out / SPLITS[split]}", *when, "progress=false",
            f"sweep.jobs={jobs}", "--yes", *scale["common"], *scale["unlearn"], f"method={','.join(grid)}",
            *[f"{m}:{axis}" for m, axes in grid.items() for axis in axes], f"output_dir={out / split}"]


def chosen(selection: Mapping) -> dict[str, dict]:
    """Per method: the chosen candidate (run, epoch, forget and utility numbers, settings) and its ties."""
    from unlearn.sweeps.select import Candidate

    by_label = {Candidate(**c).label: c for c in selection["candidates"]}
    out = {}
    for method, choice in selection["chosen"].items():
        if choice["candidate"] is not None:
            out[method] = {**by_label[choice["candidate"]], "ties": len(choice.get("tied_with") or [])}
    return out


def _g(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def table(title: str, forget_name: str, selections: Mapping[str, Mapping]) -> list[str]:
    """One row per method, a (forget, MU, epoch) column group per split; the target's row first."""
    splits = list(selections)
    head = "| method | " + " | ".join(f"{s} {forget_name} | {s} MU | {s} epoch" for s in splits) + " |"
    lines = [f"### {title}", "", head, "|---|" + "---|---|---|" * len(splits)]
    target = [selections[s]["target"] for s in splits]
    lines.append("| target | " + " | ".join(f"{_g(t['forget'])} | {_g(t['utility'])} | –" for t in target) + " |")
    picks = {s: chosen(selections[s]) for s in splits}
    for method in [m for m in METHODS if any(m in selections[s]["chosen"] for s in splits)]:
        cells = []
        for s in splits:
            c = picks[s].get(method)
            cells.append("none eligible | – | –" if c is None else
                         f"{_g(c['forget'])} | {_g(c['utility'])} | {c['epoch']}" + (f" (+{c['ties']} tied)"
                                                                                       if c["ties"] else ""))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="gpu")
    parser.add_argument("--splits", help="default forget10,forget05,forget01 (cpu20: forget10, its only one)")
    parser.add_argument("--model", help="the base model (default: the scale's)")
    parser.add_argument("--tofu", help="the TOFU data directory (default: the scale's)")
    parser.add_argument("--out", help="default runs/sweeps-tofu_smollm2-<scale>")
    parser.add_argument("--jobs", type=int, default=1, help="sweep.jobs: runs at a time")
    parser.add_argument("--record", action="store_true", help="copy tables and selections into this folder")
    args = parser.parse_args()
    if args.record and args.scale == "smoke":
        raise SystemExit("--record: the smoke scale checks the pipeline; its numbers are not a result to record")
    default_splits = "forget10" if "subset" in SCALES[args.scale] else ",".join(SPLITS)
    splits = [s.strip() for s in (args.splits or default_splits).split(",") if s.strip()]
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise SystemExit(f"--splits: unknown {unknown}; TOFU's forget splits are {', '.join(SPLITS)}")
    scale = dict(SCALES[args.scale])
    model = args.model or scale["model"]
    scale["data_dir"] = args.tofu or scale["data"]
    for what, path in (("--model", model), ("--tofu", scale["data_dir"])):
        if not Path(path).exists():
            raise SystemExit(f"{what} {path}: not found (see this script's docstring for where it comes from)")
    out = Path(args.out or f"runs/sweeps-tofu_smollm2-{args.scale}")
    if "subset" in scale:  # the first authors of TOFU with their own author-level forget split (forget10)
        from unlearn.data.tofu_subset import make_subset

        if splits != ["forget10"]:
            raise SystemExit(f"--splits: the {args.scale} subset has one forget split, forget10")
        scale["data_dir"] = str(make_subset(scale["data_dir"], out / "data", n_authors=scale["subset"],
                                            forget_authors=2)[0])
    seconds: dict[str, float] = {}
    if not scale["per_epoch"]:  # the target's own evaluation is the sweep's target point: FQ against the retain model
        retain = out / SPLITS[splits[0]]
        seconds[retain.name] = finetune(scale, model, retain.name, retain, splits[0])
        seconds["target"] = finetune(scale, model, "full", out / "target", splits[0], reference=retain)
    else:
        seconds["target"] = finetune(scale, model, "full", out / "target")
    selections: dict[str, dict] = {}
    fe: dict[str, dict] = {}
    for split in splits:
        if SPLITS[split] not in seconds:
            seconds[SPLITS[split]] = finetune(scale, model, SPLITS[split], out / SPLITS[split], split)
        sweep = sweep_args(scale, out, split, args.jobs)
        seconds[f"sweep {split}"] = timed_cli(sweep)
        seconds[f"fe {split}"] = timed_cli([*sweep, "sweep.name=fe", "sweep.forget_metric=forget_efficacy_without_es"])
        selections[split] = json.loads((out / split / "sweep.json").read_text())
        fe[split] = json.loads((out / split / "fe.json").read_text())
    text = ["# TOFU × SmolLM2-135M-Instruct: the sweep study's tables", "",
            f"Command: `python benchmarks/sweeps/tofu_smollm2/run.py --scale {args.scale} --splits "
            f"{','.join(splits)}`. Date {time.strftime('%Y-%m-%d')}. Wall time (s, 0 = reused): "
            + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()) + ".", "",
            "Each method's candidate chosen per split (every epoch of every configuration a candidate): the best "
            "forget number at MU-9 ≥ 0.9 × the target's; ties are candidates within the seed spread or on the same "
            "FQ rung (`sweep.md` of each split).", "",
            *table("SimNPO Table 1 layout: Forget Quality and Model Utility", "FQ", selections),
            *table("closer-look Table 4 layout: Forget Efficacy (without ES) and Model Utility", "FE", fe)]
    (out / "tables.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    if args.record:
        dest = HERE / args.scale
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "tables.md", dest / "tables.md")
        for split in splits:
            for name in ("sweep.md", "sweep.json", "fe.md", "fe.json"):
                (dest / split).mkdir(exist_ok=True)
                shutil.copyfile(out / split / name, dest / split / name)
        print(f"recorded in {dest}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
