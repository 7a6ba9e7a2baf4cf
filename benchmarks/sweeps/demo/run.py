"""The demo-scale sweep study (issue 15): seven methods swept on the embedded benchmark, the chosen configuration of
each run with three seeds, and the three questions answered from the numbers.

Usage:  python benchmarks/sweeps/demo/run.py [--demo-dir runs/demo-bench] [--output-dir runs/sweeps-demo]
        [--jobs 2] [--record]

Everything starts from the demo's target (``unlearn demo``; the script runs it when ``--demo-dir`` has none) with the
demo's unlearning settings (5 epochs, batch 8, evaluated after every epoch, so every epoch is a candidate), and
varies the learning rate and each method's own weight (GRID below, ≥ 12 configurations per method). Three
``unlearn sweep`` calls:

1. ``OUT/grid``: every configuration with seed 0, selected on Forget Quality against MU-9 (``sweep.md``) and again,
   without running anything, on closer-look's Forget Efficacy (without ES: no NLI model offline) against MU-9
   (``fe.md``);
2. ``OUT/seeds-fq``: each method's configuration chosen on FQ with seeds 0, 1, 2; ``OUT/seeds-fe``: the same for
   the configurations the FE rule chose differently (the others' seeds are those of ``seeds-fq``).

Seed 0 of step 2 repeats a run of step 1 exactly; the script checks that its numbers are identical (reproducibility).
``tables.md`` (with the command, device, date and wall times) and ``results.json`` hold what the answers in
``RESULTS.md`` quote; with --record they are copied into ``benchmarks/sweeps/demo/`` with the selections' reports and
front plots (``grid/``, ``seeds-fq/``, ``seeds-fe/``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE.parent.parent / "scenarios"))
from demo_inputs import demo_settings, unlearning_args  # noqa: E402
from demo_time import machine, timed_cli  # noqa: E402

LR3 = "5e-4,1e-3,2e-3"
LR4 = "5e-4,1e-3,2e-3,4e-3"
GRID: dict[str, list[str]] = {
    "npo+gd": [f"train.lr={LR3}", "forget.beta=0.05,0.1,0.2,0.5"],
    "simnpo+gd": [f"train.lr={LR3}", "forget.beta=1.5,2.5,3.5,4.5", "method.recipe=reference_code,paper"],
    "ga+gd": ["train.lr=2.5e-4,5e-4,1e-3,2e-3", "method.retain_weight=0.5,1,2"],
    "me+gd": [f"train.lr={LR3}", "method.forget_weight=0.03,0.1,0.3,1"],
    "idk+gd": [f"train.lr={LR4}", "method.retain_weight=0.5,1,2"],
    "idk+ap": [f"train.lr={LR4}", "retain.beta=0.05,0.1,0.5"],
    "dpo+gd": [f"train.lr={LR3}", "forget.beta=0.05,0.1,0.2,0.5"],
}
"""Per method: the learning rate around the demo's 1e-3 and the method's own weight. NPO's β spans SimNPO App. I.2's
[0.05, 0.2] and one step beyond; SimNPO's β its [1.5, 3.5] and the demo's 4.5, under both readings of its weight (the
reference code's forget weight 0.125, the paper's λ = 0.125 on the retain term); ME's α (forget weight) around
closer-look's 0.1; AP's β around closer-look's 0.1; GA, IDK: the retain weight."""
SEEDS = "0,1,2"
RATIOS = (0.8, 0.9, 0.95)


def base_args(demo: Path, config: Mapping) -> list[str]:
    return [f"model={demo / 'target' / 'model'}", f"data={demo / 'data'}",
            f"data.forget_split={config['forget_split']}", f"eval.retain_reference={demo / 'retain'}",
            "train.eval_every_epoch=true", *unlearning_args(config)]


def grid_args() -> list[str]:
    return [f"method={','.join(GRID)}"] + [f"{m}:{axis}" for m, axes in GRID.items() for axis in axes]


def chosen_settings(selection: Mapping) -> dict[str, tuple[dict[str, str], int | None]]:
    """Per method: the chosen candidate's swept settings and epoch."""
    from unlearn.sweeps.select import Candidate

    by_label = {Candidate(**c).label: c for c in selection["candidates"]}
    out = {}
    for method, choice in selection["chosen"].items():
        if choice["candidate"] is not None:
            c = by_label[choice["candidate"]]
            out[method] = (dict(c["settings"]), c["epoch"])
    return out


def seed_args(chosen: Mapping[str, tuple[dict[str, str], int | None]]) -> list[str]:
    items = [f"method={','.join(chosen)}", f"train.seed={SEEDS}"]
    for method, (settings, _) in chosen.items():
        items += [f"{method}:{k}={v}" for k, v in settings.items() if k != "train.seed"]
    return items


# ------------------------------------------------------------------------------------------------ reading the runs
def epoch_rows(sweep_dir: Path) -> list[dict]:
    """Every evaluated epoch ≥ 1 of every run of a sweep, with the four numbers the questions need."""
    from unlearn.sweeps.select import metric_value

    rows = []
    for run in json.loads((sweep_dir / "sweep.json").read_text())["runs"]:
        for line in (sweep_dir / "runs" / run["name"] / "epochs.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r.get("epoch", 0) < 1:
                continue
            rows.append({"run": run["name"], "method": run["method"], "settings": run["settings"],
                         "epoch": r["epoch"], "fq": metric_value(r, "forget_quality"),
                         "fe": metric_value(r, "forget_efficacy_without_es"),
                         "mu": metric_value(r, "model_utility_9")})
    return rows


def target_point(sweep_dir: Path) -> dict:
    from unlearn.sweeps.select import metric_value

    run = json.loads((sweep_dir / "sweep.json").read_text())["runs"][0]["name"]
    first = json.loads((sweep_dir / "runs" / run / "epochs.jsonl").read_text().splitlines()[0])
    return {"fq": metric_value(first, "forget_quality"), "fe": metric_value(first, "forget_efficacy_without_es"),
            "mu": metric_value(first, "model_utility_9")}


def dominated(point: Mapping, others: Sequence[Mapping], key: str) -> bool:
    """Weakly dominated on (forgetting ``key``, MU): some other point is ≥ on both."""
    return any(o[key] >= point[key] and o["mu"] >= point["mu"] for o in others)


def front(points: Sequence[Mapping], key: str) -> list[Mapping]:
    return [p for p in points if not any(o[key] >= p[key] and o["mu"] >= p["mu"] and (o[key] > p[key] or
                                                                                      o["mu"] > p["mu"])
                                         for o in points)]


def best_at(points: Sequence[Mapping], key: str, floor: float) -> Mapping | None:
    eligible = [p for p in points if p["mu"] >= floor]
    return max(eligible, key=lambda p: (p[key], p["mu"])) if eligible else None


def seed_summary(seed_dirs: Mapping[str, Path], chosen: Mapping[str, tuple[dict, int | None]],
                 grid_rows: Sequence[Mapping]) -> dict:
    """Per method: the chosen configuration at its chosen epoch over the three seeds (mean, sample sd, values) from
    the method's seed sweep ``seed_dirs[method]``, and whether seed 0 repeats step 1's run exactly."""
    out = {}
    for method, (settings, epoch) in chosen.items():
        mine = sorted((r for r in epoch_rows(seed_dirs[method]) if r["method"] == method and r["epoch"] == epoch),
                      key=lambda r: int(r["settings"]["train.seed"]))
        first = next(r for r in grid_rows if r["method"] == method and r["settings"] == settings
                     and r["epoch"] == epoch)
        seed0 = next(r for r in mine if r["settings"]["train.seed"] == "0")
        entry = {"settings": settings, "epoch": epoch,
                 "repeats_exactly": all(seed0[k] == first[k] for k in ("fq", "fe", "mu"))}
        for key in ("fq", "fe", "mu"):
            values = [r[key] for r in mine]
            entry[key] = {"values": values, "mean": statistics.fmean(values), "sd": statistics.stdev(values)}
        out[method] = entry
    return out


# ------------------------------------------------------------------------------------------------ tables
def _g(x: float | None) -> str:
    return "n/a" if x is None else (f"{x:.2e}" if abs(x) < 1e-3 and x != 0 else f"{x:.3f}")


def _settings(s: Mapping[str, str]) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in s.items()) or "—"


def tables(rows: Sequence[Mapping], target: Mapping, seeds: Mapping[str, dict], retain_fq: float | None) -> list[str]:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [f"Target (epoch 0): FQ {_g(target['fq'])}, FE without ES {_g(target['fe'])}, MU {_g(target['mu'])}. "
             f"Candidates: {len(rows)} (every epoch 1–5 of {len({r['run'] for r in rows})} runs).", ""]
    for key, name in (("fq", "Forget Quality"), ("fe", "Forget Efficacy without ES")):
        lines += [f"## Best {name} at MU ≥ r × the target's MU (seed 0; every epoch a candidate)", "",
                  "| method | configs | " + " | ".join(f"r = {r}: {name.split()[0][0]}{name.split()[1][0]} (MU)"
                                                    for r in RATIOS) + " |",
                  "|---|---|" + "---|" * len(RATIOS)]
        for m in methods:
            points = [r for r in rows if r["method"] == m]
            cells = []
            for ratio in RATIOS:
                b = best_at(points, key, ratio * target["mu"])
                cells.append("—" if b is None else f"{_g(b[key])} ({b['mu']:.3f})")
            lines.append(f"| {m} | {len({p['run'] for p in points})} | " + " | ".join(cells) + " |")
        lines.append("")
    for key, name in (("fq", "FQ"), ("fe", "FE without ES")):
        lines += [f"## Chosen configuration (best {name} at MU ≥ 0.9 × target), seeds 0, 1, 2 at the chosen epoch",
                  "", f"| method | settings | epoch | {name} mean ± sd | MU mean ± sd | {name} per seed | seed 0 "
                  "= grid run |", "|---|---|---|---|---|---|---|"]
        for m, s in seeds[key].items():
            lines.append(f"| {m} | {_settings(s['settings'])} | {s['epoch']} | {_g(s[key]['mean'])} ± "
                         f"{_g(s[key]['sd'])} | {s['mu']['mean']:.3f} ± {s['mu']['sd']:.3f} | "
                         f"{', '.join(_g(v) for v in s[key]['values'])} | {'yes' if s['repeats_exactly'] else 'NO'} |")
        lines.append("")
    npo = [r for r in rows if r["method"] == "npo+gd"]
    lines += ["## SimNPO's front against NPO's (seed 0, every epoch)", "",
              "| axis | SimNPO weighting | NPO front points dominated by SimNPO | SimNPO front points dominated by "
              "NPO |", "|---|---|---|---|"]
    for key, name in (("fq", "FQ"), ("fe", "FE without ES")):
        for weighting in ("reference_code", "paper", "either"):
            sim = [r for r in rows if r["method"] == "simnpo+gd" and weighting in
                   ("either", r["settings"].get("method.recipe"))]
            nf, sf = front(npo, key), front(sim, key)
            lines.append(f"| {name} vs MU | {weighting} | {sum(dominated(p, sim, key) for p in nf)}/{len(nf)} | "
                         f"{sum(dominated(p, npo, key) for p in sf)}/{len(sf)} |")
    lines.append("")
    lines += ["## Utility kept at matched forgetting (seed 0): the highest MU among candidates with FE without ES ≥ "
              "the level", "", "| method | " + " | ".join(f"FE ≥ {x}" for x in (0.5, 0.6, 0.7, 0.8)) + " |",
              "|---|" + "---|" * 4]
    for m in methods:
        points = [r for r in rows if r["method"] == m]
        cells = []
        for level in (0.5, 0.6, 0.7, 0.8):
            ok = [p["mu"] for p in points if p["fe"] >= level]
            cells.append(f"{max(ok):.3f}" if ok else "—")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", f"Retain model: FQ 1 by definition (against itself); demo retain FQ column: {_g(retain_fq)}."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-dir", default="runs/demo-bench")
    parser.add_argument("--output-dir", default="runs/sweeps-demo")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    demo, out = Path(args.demo_dir), Path(args.output_dir)
    seconds: dict[str, float] = {}
    if not (demo / "summary.json").is_file():
        seconds["demo"] = timed_cli(["demo", f"output_dir={demo}", "progress=false"])
    config = demo_settings(demo)
    common = [*base_args(demo, config), f"sweep.jobs={args.jobs}", "--yes"]
    seconds["grid"] = timed_cli(["sweep", *common, *grid_args(), f"output_dir={out / 'grid'}"])
    seconds["fe_selection"] = timed_cli(["sweep", *common, *grid_args(), "sweep.name=fe",
                                         "sweep.forget_metric=forget_efficacy_without_es",
                                         f"output_dir={out / 'grid'}"])
    grid_rows = epoch_rows(out / "grid")
    no_seed = [a for a in common if not a.startswith("train.seed=")]
    chosen_fq = chosen_settings(json.loads((out / "grid" / "sweep.json").read_text()))
    seconds["seeds_fq"] = timed_cli(["sweep", *no_seed, *seed_args(chosen_fq), f"output_dir={out / 'seeds-fq'}"])
    chosen_fe = chosen_settings(json.loads((out / "grid" / "fe.json").read_text()))
    # a configuration both rules chose already has its seeds in seeds-fq; only the others run again
    other = {m: c for m, c in chosen_fe.items() if chosen_fq.get(m, (None,))[0] != c[0]}
    fe_dirs = {m: out / ("seeds-fe" if m in other else "seeds-fq") for m in chosen_fe}
    if other:
        seconds["seeds_fe"] = timed_cli(["sweep", *no_seed, *seed_args(other),
                                         "sweep.forget_metric=forget_efficacy_without_es",
                                         f"output_dir={out / 'seeds-fe'}"])
    seeds = {"fq": seed_summary(dict.fromkeys(chosen_fq, out / "seeds-fq"), chosen_fq, grid_rows),
             "fe": seed_summary(fe_dirs, chosen_fe, grid_rows)}
    target = target_point(out / "grid")
    text = tables(grid_rows, target, seeds, None)
    header = [f"Command: `python benchmarks/sweeps/demo/run.py --jobs {args.jobs}{' --record' * args.record}`",
              f"Machine: {machine()}, sweep.jobs={args.jobs}. Date: {time.strftime('%Y-%m-%d')}. Wall time (s): "
              + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()) + ".", ""]
    (out / "tables.md").write_text("\n".join(["# Demo-scale sweep: tables", "", *header, *text]) + "\n")
    (out / "results.json").write_text(json.dumps({"grid": GRID, "seeds": SEEDS, "target": target, "seconds": seconds,
                                                  "chosen_with_seeds": seeds, "candidates": grid_rows}, indent=1))
    print("\n".join(text))
    if args.record:
        for name in ("tables.md", "results.json"):
            shutil.copyfile(out / name, HERE / name)
        for sub, reports in (("grid", ("sweep", "fe")), ("seeds-fq", ("sweep",)), ("seeds-fe", ("sweep",))):
            if not (out / sub).is_dir():
                continue
            (HERE / sub / "plots").mkdir(parents=True, exist_ok=True)
            for report in reports:
                shutil.copyfile(out / sub / f"{report}.md", HERE / sub / f"{report}.md")
                plot = Path("plots") / f"{report}_front.png"
                shutil.copyfile(out / sub / plot, HERE / sub / plot)
        print(f"recorded in {HERE}")


if __name__ == "__main__":
    main()
