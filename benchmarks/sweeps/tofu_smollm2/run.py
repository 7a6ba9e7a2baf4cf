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
3. each rule's chosen configurations again with more seeds (``<split>-seeds-fq``, ``<split>-seeds-fe``), read at
   the chosen epoch: the seed spread of every chosen number;
4. ``tables.md``: the chosen candidate of each method per split, with its epoch, ties and settings, and the chosen
   configurations' mean ± sd over the seeds.

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
import statistics
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
METHODS = ("ga+gd", "lwga+gd", "npo+gd", "simnpo+gd", "idk+gd", "dpo+gd", "me+gd", "idk+ap", "rmu")
FE_METRIC = "sweep.forget_metric=forget_efficacy_without_es"
"""closer-look's Forget Efficacy without the Entailment Score: its NLI model does not ship offline."""
LR = "train.lr=1e-5,2e-5,5e-5"
GRID: dict[str, list[str]] = {
    "ga+gd": [LR, "method.retain_weight=1,2"],
    "lwga+gd": [LR, "method.retain_weight=1,2"],
    "npo+gd": [LR, "forget.beta=0.1,0.2"],
    "simnpo+gd": [LR, "forget.beta=2.5,3.5", "method.recipe=reference_code,paper"],
    "idk+gd": [LR, "method.retain_weight=1,2"],
    "dpo+gd": [LR, "forget.beta=0.1,0.2"],
    "me+gd": [LR, "method.forget_weight=0.1,0.3"],
    "idk+ap": [LR, "retain.beta=0.1,0.5"],
    "rmu": ["train.lr=5e-5,1e-4,2e-4", "forget.steering_coeff=6.5,20"],
}
"""Six configurations per method (twelve for SimNPO): the learning rate around the target's fine-tuning rate (2e-5)
and the method's own weight — NPO's β and SimNPO's β inside SimNPO App. I.2's ranges, ME's α and AP's β at
closer-look's 0.1 and above, the retain weight of GA, W-GradDiff and IDK, RMU's steering coefficient (WMDP's 6.5 for
7B, and larger). SimNPO runs with both weightings (``reference_code``: forget weight 0.125; ``paper``: forget weight
1, λ on the retain term): in the cpu20 sweep the reference code's barely unlearned at these learning rates
(``cpu20/RESULTS.md``)."""
SCALES = {
    "gpu": {"model": "/root/m/SmolLM2-135M-Instruct.Q4_1.gguf", "data": "../shared/data/tofu",
            "common": ["data.max_length=256", "eval.batch_size=64"],
            "finetune": ["train.epochs=5", "train.lr=2e-5", "train.batch_size=16", "train.grad_accum=2"],
            "unlearn": ["train.epochs=5", "train.batch_size=8", "train.grad_accum=4"], "grid": GRID, "per_epoch": True,
            "seeds": "1,2"},
    "cpu20": {"model": "runs/mc_vs_lm_eval/smollm2-135m-instruct", "data": "../shared/data/tofu", "subset": 20,
              "common": ['model.system_prompt=""', "data.max_length=256", "eval.forget_rows=40", "eval.retain_rows=40",
                         "eval.option_rows=40", "eval.max_length=128", "eval.batch_size=16"],
              "finetune": ["train.epochs=5", "train.lr=1e-4", "train.batch_size=8", "train.grad_accum=2"],
              "unlearn": ["train.epochs=5", "train.batch_size=4", "train.grad_accum=2"], "per_epoch": False,
              "grid": {m: ["train.lr=1e-5,2e-5,5e-5"] for m in ("npo+gd", "simnpo+gd")}, "seeds": "1,2"},
    "smoke": {"model": "runs/demo-bench/base_model", "data": "runs/demo-bench/data",
              "common": ["model.template=qa", "data.max_length=128", "eval.max_length=96", "eval.batch_size=32",
                         "eval.forget_rows=20", "eval.retain_rows=20", "eval.option_rows=20"],
              "finetune": ["train.epochs=2", "train.lr=3e-3", "train.batch_size=32"],
              "unlearn": ["train.epochs=1", "train.batch_size=8"], "per_epoch": True, "seeds": "1",
              "grid": {m: ["train.lr=1e-3"] for m in METHODS}},
}


def finetune(scale: Mapping, model: str, splits: str, out: Path, forget_split: str = "forget10",
             reference: Path | None = None) -> None:
    """A fine-tuned model in ``out`` (reused when finished, resumed when interrupted), evaluated on ``forget_split``
    (a retain model on its own split's forget rows: the FQ reference of that split's runs), with FQ against
    ``reference`` when given."""
    if (out / "metrics.json").is_file():
        return
    # a run stopped before its first checkpoint has nothing to resume: it starts over
    resume = (["--resume"] if Checkpoint(RunDirectory(out).checkpoint_dir).exists()
              else ["--overwrite"] if out.is_dir() else [])
    against = [f"eval.retain_reference={reference}"] if reference is not None else []
    timed_cli(["finetune", *resume, f"model={model}", f"data={scale['data_dir']}", f"data.train_splits={splits}",
               f"data.forget_split={forget_split}", f"output_dir={out}", "save_model=true", "progress=false",
               *against, *scale["common"], *scale["finetune"]])


def sweep_args(scale: Mapping, out: Path, split: str, jobs: int, grid: Mapping[str, list[str]] | None = None,
               dest: Path | None = None) -> list[str]:
    """``unlearn sweep`` of ``split`` over ``grid`` (default: the scale's) into ``dest`` (default: ``out/split``)."""
    grid = scale["grid"] if grid is None else grid
    # without per-epoch evaluation the candidates are the runs' last epochs, and the target's own evaluation gives
    # the utility the selection rule needs
    when = ["train.eval_every_epoch=true"] if scale["per_epoch"] else [f"sweep.target={out / 'target'}"]
    return ["sweep", f"model={out / 'target' / 'model'}", f"data={scale['data_dir']}", f"data.forget_split={split}",
            f"eval.retain_reference={out / SPLITS[split]}", *when, "progress=false",
            f"sweep.jobs={jobs}", "--yes", *scale["common"], *scale["unlearn"], f"method={','.join(grid)}",
            *[f"{m}:{axis}" for m, axes in grid.items() for axis in axes], f"output_dir={dest or out / split}"]


def chosen(selection: Mapping) -> dict[str, dict]:
    """Per method: the chosen candidate (run, epoch, forget and utility numbers, settings) and its ties."""
    from unlearn.sweeps.select import Candidate

    by_label = {Candidate(**c).label: c for c in selection["candidates"]}
    out = {}
    for method, choice in selection["chosen"].items():
        if choice["candidate"] is not None:
            out[method] = {**by_label[choice["candidate"]], "ties": len(choice.get("tied_with") or [])}
    return out


def seed_grid(picks: Mapping[str, dict], seeds: str) -> dict[str, list[str]]:
    """Each method's chosen configuration again with the other seeds (seed 0 is the grid's run)."""
    return {m: [f"train.seed={seeds}", *(f"{k}={v}" for k, v in c["settings"].items())] for m, c in picks.items()}


def seed_summary(picks: Mapping[str, dict], seed_dir: Path, selection: str) -> dict[str, dict]:
    """Per method: the chosen candidate's forget and utility numbers at its epoch over seed 0 (the grid's run) and
    the runs of the seed sweep in ``seed_dir`` (one configuration per method there), read from its ``selection``
    (``sweep.json`` or ``fe.json``), with mean and sample standard deviation."""
    def seed(candidate: Mapping) -> int:  # a single seed is no axis, so it is not among the settings: ask the run
        return int(RunDirectory(seed_dir / "runs" / candidate["run"]).read_config()["train"]["seed"])

    candidates = json.loads((seed_dir / selection).read_text())["candidates"]
    out = {}
    for method, c in picks.items():
        more = sorted((k for k in candidates if k["method"] == method and k["epoch"] == c["epoch"]), key=seed)
        runs = [c, *more]
        out[method] = {"settings": c["settings"], "epoch": c["epoch"], "seeds": [0, *map(seed, more)],
                       **{key: {"values": [k[key] for k in runs], "mean": statistics.fmean(k[key] for k in runs),
                                "sd": statistics.stdev(k[key] for k in runs) if len(runs) > 1 else None}
                          for key in ("forget", "utility")}}
    return out


def seed_runs(scale: Mapping, out: Path, split: str, jobs: int, fq_selection: Mapping,
              fe_selection: Mapping) -> tuple[dict, dict]:
    """Each rule's chosen configurations with the scale's other seeds: the FQ choices in ``<split>-seeds-fq`` (read
    on FE too, by a second selection over the same runs), the FE choices with other settings in ``<split>-seeds-fe``.
    Returns the FQ and FE seed summaries."""
    summaries: dict[str, dict] = {"fq": {}, "fe": {}}
    picks = {"fq": chosen(fq_selection), "fe": chosen(fe_selection)}
    fq_dir, fe_dir = out / f"{split}-seeds-fq", out / f"{split}-seeds-fe"
    if picks["fq"]:
        sweep = sweep_args(scale, out, split, jobs, seed_grid(picks["fq"], scale["seeds"]), fq_dir)
        timed_cli(sweep)
        timed_cli([*sweep, "sweep.name=fe", FE_METRIC])
        summaries["fq"] = seed_summary(picks["fq"], fq_dir, "sweep.json")
    # a configuration both rules chose has its seed runs in seeds-fq already
    again = {m: c for m, c in picks["fe"].items()
             if m not in picks["fq"] or c["settings"] != picks["fq"][m]["settings"]}
    if again:
        timed_cli([*sweep_args(scale, out, split, jobs, seed_grid(again, scale["seeds"]), fe_dir), FE_METRIC])
    for method, c in picks["fe"].items():
        where = (fe_dir, "sweep.json") if method in again else (fq_dir, "fe.json")
        summaries["fe"].update(seed_summary({method: c}, *where))
    return summaries["fq"], summaries["fe"]


def compute_seconds(stage: Path) -> tuple[float, int]:
    """The seconds a stage's runs took, each as its own ``metrics.json`` records it (so reused stages count too), and
    the number of runs: ``stage`` is one run directory or a sweep directory."""
    single = stage / "metrics.json"
    files = [single] if single.is_file() else sorted(stage.glob("runs/*/metrics.json"))
    return sum(json.loads(f.read_text())["seconds"] for f in files), len(files)


def _epoch(epoch: int | None) -> str:
    return "final" if epoch is None else str(epoch)


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
                         f"{_g(c['forget'])} | {_g(c['utility'])} | {_epoch(c['epoch'])}"
                         + (f" (+{c['ties']} tied)" if c["ties"] else ""))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def seed_table(forget_name: str, summaries: Mapping[str, Mapping[str, dict]]) -> list[str]:
    """Per split and method: the chosen configuration over the seeds, at its chosen epoch."""
    lines = [f"| split | method | settings | epoch | {forget_name} mean ± sd | MU mean ± sd | {forget_name} per seed |",
             "|---|---|---|---|---|---|---|"]
    for split, summary in summaries.items():
        for method, r in summary.items():
            sd = {k: "" if r[k]["sd"] is None else f" ± {r[k]['sd']:.2g}" for k in ("forget", "utility")}
            per_seed = ", ".join(f"{_g(v)} (seed {s})" for s, v in zip(r["seeds"], r["forget"]["values"], strict=True))
            settings = " ".join(f"`{k}={v}`" for k, v in r["settings"].items())
            lines.append(f"| {split} | {method} | {settings} | {_epoch(r['epoch'])} | {_g(r['forget']['mean'])}"
                         f"{sd['forget']} | {_g(r['utility']['mean'])}{sd['utility']} | {per_seed} |")
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
        from unlearn.tasks.tofu.subset import make_subset

        if splits != ["forget10"]:
            raise SystemExit(f"--splits: the {args.scale} subset has one forget split, forget10")
        scale["data_dir"] = str(make_subset(scale["data_dir"], out / "data", n_authors=scale["subset"],
                                            forget_authors=2)[0])
    stages = [out / SPLITS[s] for s in splits]
    if not scale["per_epoch"]:  # the target's own evaluation is the sweep's target point: FQ against the retain model
        retain = out / SPLITS[splits[0]]
        finetune(scale, model, retain.name, retain, splits[0])
        finetune(scale, model, "full", out / "target", splits[0], reference=retain)
    else:
        finetune(scale, model, "full", out / "target")
    selections: dict[str, dict] = {}
    fe: dict[str, dict] = {}
    seeds: dict[str, dict[str, dict]] = {"fq": {}, "fe": {}}
    for split in splits:
        finetune(scale, model, SPLITS[split], out / SPLITS[split], split)
        sweep = sweep_args(scale, out, split, args.jobs)
        timed_cli(sweep)
        timed_cli([*sweep, "sweep.name=fe", FE_METRIC])
        selections[split] = json.loads((out / split / "sweep.json").read_text())
        fe[split] = json.loads((out / split / "fe.json").read_text())
        seeds["fq"][split], seeds["fe"][split] = seed_runs(scale, out, split, args.jobs, selections[split], fe[split])
        stages += [out / split, out / f"{split}-seeds-fq", out / f"{split}-seeds-fe"]
    times = {p.name: compute_seconds(p) for p in [out / "target", *stages]}
    text = ["# TOFU × SmolLM2-135M-Instruct: the sweep study's tables", "",
            f"Command: `python benchmarks/sweeps/tofu_smollm2/run.py --scale {args.scale} --splits "
            f"{','.join(splits)}`. Date {time.strftime('%Y-%m-%d')}. Compute time (s, as each run's metrics.json "
            "records it): " + ", ".join(f"{k} {t:.0f}" + (f" ({n} runs)" if n > 1 else "")
                                         for k, (t, n) in times.items() if n) + ".", "",
            "Each method's candidate chosen per split ("
            + ("every epoch of every configuration a candidate" if scale["per_epoch"] else
               "every configuration's final model a candidate") + ", seed 0): the best forget number at MU-9 ≥ 0.9 × "
            "the target's; ties are candidates on the same FQ rung (`sweep.md` of each split).", "",
            *table("SimNPO Table 1 layout: Forget Quality and Model Utility", "FQ", selections),
            *table("closer-look Table 4 layout: Forget Efficacy (without ES) and Model Utility", "FE", fe),
            f"### The chosen configurations over seeds 0 and {scale['seeds']}", "",
            "Read at the chosen epoch; seed 0 is the grid's run; sd is the sample standard deviation. FQ rule:", "",
            *seed_table("FQ", seeds["fq"]), "FE rule:", "", *seed_table("FE", seeds["fe"])]
    (out / "tables.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    if args.record:
        dest = HERE / args.scale
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "tables.md", dest / "tables.md")
        (dest / "seeds.json").write_text(json.dumps(seeds, indent=1) + "\n")
        for split in splits:
            for folder in (split, f"{split}-seeds-fq", f"{split}-seeds-fe"):
                for name in ("sweep.md", "sweep.json", "fe.md", "fe.json", "plots/sweep_front.png",
                             "plots/fe_front.png"):
                    if (out / folder / name).is_file():
                        (dest / folder / name).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(out / folder / name, dest / folder / name)
        print(f"recorded in {dest}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
