"""OpenUnlearning's overall score and its meta-evaluation of metrics over the baseline records' chosen runs (issue 25).

Usage:  python benchmarks/baselines/run_scores.py [--tofu-demo runs/bl-demo] [--tofu-sweep runs/bl-tofu/sweep]
        [--muse-demo runs/bl-muse-demo] [--muse-sweep runs/bl-muse/sweep] [--output-dir runs/bl-scores] [--record]

After ``run_tofu.py`` and ``run_corpus.py --benchmark muse``. Each method's chosen candidate is a (run, epoch); a
sweep saves the final model only, so a chosen epoch E before the last is rebuilt first as a run of its own
(``unlearn run -c RUN/config.yaml train.stop_after_epoch=E save_model=true``: the same trajectory stopped after epoch
E) and checked against the sweep: its final forgetting and utility must equal the run's epoch-E row.

0. Rebuild the chosen epochs (TOFU and MUSE) under ``OUT/chosen/``.
1. TOFU: ``unlearn eval eval.task=tofu_mia`` of every chosen run's model and of the retain model, then
   ``unlearn overall`` over the chosen runs against the retain run.
2. MUSE: ``unlearn overall`` over the chosen runs against the retrained run (MUSE runs carry their AUCs).
3. ``unlearn meta-eval`` on TOFU: faithfulness over three models that know the forget set (the demo's target and two
   more fine-tuned the same way with train.seed 1 and 2) against three that do not (the retain model, seeds 0–2);
   robustness (4-bit quantization, relearning beside the retain model: 1 epoch on 20 % of the forget rows, 3 random
   subsets — the attack's default is 5; 3 keep the 16 models within this machine's time —, lr 3e-3 as
   benchmarks/attacks/, batch 8) over every chosen TOFU run.

With --record ``overall_tofu.md``/``.json``, ``overall_muse.md``/``.json``, ``meta_eval.md``/``.json`` and
``SCORES.md`` go to ``benchmarks/baselines/scores/``.
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
sys.path.insert(0, str(HERE))
from common import WALL_TIME, chosen_rows, chosen_run_dirs  # noqa: E402
from demo_time import machine, timed_cli  # noqa: E402

SEEDS = (1, 2)
RELEARN = ["epochs=1", "fraction=0.2", "seeds=3", "lr=3e-3", "batch_size=8"]


def finished(run: Path) -> bool:
    return (run / "metrics.json").is_file()


def seeded_models(demo: Path, out: Path, seconds: dict[str, float]) -> tuple[list[Path], list[Path]]:
    """The demo's target and retain model and the same fine-tuning with other seeds (their configs, train.seed)."""
    knows, not_knows = [demo / "target"], [demo / "retain"]
    for role, pool in (("target", knows), ("retain", not_knows)):
        for seed in SEEDS:
            run = out / f"{role}-seed{seed}"
            if not finished(run):
                seconds[f"{role} seed {seed}"] = timed_cli(
                    ["finetune", "-c", str(demo / role / "config.yaml"), f"train.seed={seed}", "save_model=true",
                     "progress=false", f"output_dir={run}"])
            pool.append(run)
    return knows, not_knows


def chosen_models(sweep: Path, out: Path, seconds: dict[str, float], checks: list[str],
                  axes: tuple[str, str]) -> dict[str, Path]:
    """Per method, the run directory of its chosen (run, epoch): the sweep's run when the epoch is its last, else the
    run rebuilt with ``train.stop_after_epoch`` (its final ``axes`` values checked against the sweep's epoch row)."""
    selection = json.loads((sweep / "sweep.json").read_text())
    runs = chosen_run_dirs(sweep, selection)
    rows = chosen_rows(sweep, selection)
    models = {}
    for method, run in runs.items():
        _, epoch, row = rows[method]
        last = json.loads((run / "metrics.json").read_text())["run"]
        if max(r["epoch"] for r in map(json.loads, (run / "epochs.jsonl").read_text().splitlines())) == epoch:
            models[method] = run
            continue
        dest = out / "chosen" / sweep.parent.name / method.replace("+", "_")
        if not finished(dest):
            seconds[f"rebuild {method} epoch {epoch}"] = timed_cli(
                ["run", "-c", str(run / "config.yaml"), f"train.stop_after_epoch={epoch}", "save_model=true",
                 "progress=false", f"output_dir={dest}"])
        rebuilt = json.loads((dest / "metrics.json").read_text())
        diffs = [abs(_axis(rebuilt, k) - _axis(row, k)) for k in axes]
        checks.append(f"{sweep.parent.name} {method} epoch {epoch} of {last['optimizer_steps']} steps' run: "
                      f"{rebuilt['run']['optimizer_steps']} steps, |Δ {axes[0]}| = {diffs[0]:.2g}, "
                      f"|Δ {axes[1]}| = {diffs[1]:.2g}")
        if max(diffs) > 1e-6 * max(1.0, abs(_axis(row, axes[1]))):
            raise SystemExit(f"{dest}: the rebuilt epoch {epoch} differs from {run}'s epoch row: {checks[-1]}")
        models[method] = dest
    return models


def _axis(metrics: dict, key: str) -> float:
    """A sweep axis of a metrics file or an epoch row: a top-level aggregate, or ``SET.METRIC``."""
    if key in metrics:
        return float(metrics[key])
    set_name, metric = key.split(".", 1)
    return float(metrics["sets"][set_name][metric])


def mia_evals(runs: dict[str, Path], demo: Path, out: Path, seconds: dict[str, float]) -> dict[str, Path]:
    """``tofu_mia`` of each run's model (forget rows against holdout rows of the same size)."""
    config = json.loads((demo / "summary.json").read_text())["config"]
    evals = {}
    for name, run in runs.items():
        rebuilt = (out / "chosen").resolve() in run.resolve().parents  # the final epoch's MIA stays the run's own
        dest = out / ("mia-chosen" if rebuilt else "mia") / name.replace("+", "_")
        if not finished(dest):
            seconds[f"tofu_mia {name}"] = timed_cli(
                ["eval", f"model={run / 'model'}", f"data={demo / 'data'}",
                 f"data.forget_split={config['forget_split']}", "eval.task=tofu_mia", "model.template=qa",
                 "data.max_length=128", "progress=false", f"output_dir={dest}"])
        evals[name] = dest
    return evals


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tofu-demo", default="runs/bl-demo")
    p.add_argument("--tofu-sweep", default="runs/bl-tofu/sweep")
    p.add_argument("--muse-demo", default="runs/bl-muse-demo")
    p.add_argument("--muse-sweep", default="runs/bl-muse/sweep")
    p.add_argument("--output-dir", default="runs/bl-scores")
    p.add_argument("--record", action="store_true")
    args = p.parse_args()
    demo, out = Path(args.tofu_demo), Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    checks: list[str] = []
    tofu = chosen_models(Path(args.tofu_sweep), out, seconds, checks, ("forget_quality", "model_utility_9"))
    mia = mia_evals({**tofu, "retain": demo / "retain"}, demo, out, seconds)
    pairs = [a for name, run in tofu.items() for a in ("--mia", str(run), str(mia[name]))]
    pairs += ["--mia", str(demo / "retain"), str(mia["retain"])]
    seconds["overall tofu"] = timed_cli(["overall", *map(str, tofu.values()), "--retain", str(demo / "retain"), *pairs,
                                         "--json", str(out / "overall_tofu.json"),
                                         "--output", str(out / "overall_tofu.md")])

    muse_sweep = Path(args.muse_sweep)
    muse = chosen_models(muse_sweep, out, seconds, checks, ("knowmem_f", "knowmem_r"))
    seconds["overall muse"] = timed_cli(["overall", *map(str, muse.values()), "--retain",
                                         str(Path(args.muse_demo) / "retain"), "--json", str(out / "overall_muse.json"),
                                         "--output", str(out / "overall_muse.md")])

    knows, not_knows = seeded_models(demo, out, seconds)
    relearn = [a for kv in RELEARN for a in ("--relearn", kv)]
    seconds["meta-eval"] = timed_cli(["meta-eval", "--knows", *map(str, knows), "--not-knows", *map(str, not_knows),
                                      "--unlearned", *map(str, tofu.values()), "--retain", str(demo / "retain"),
                                      *relearn, "--output", str(out / "meta_eval")])
    lines = ["# Overall score and meta-evaluation over the baselines' chosen runs", "",
             "Command: `python benchmarks/baselines/run_scores.py" + (" --record`" if args.record else "`"),
             f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}. " + WALL_TIME
             + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()) + ".", "",
             "Every method is scored on its chosen epoch's model. The chosen epochs before a run's last were rebuilt "
             "with `train.stop_after_epoch` and equal the sweep's epoch rows:", "",
             *[f"- {c}" for c in checks], "",
             "## TOFU demo: overall score", "", (out / "overall_tofu.md").read_text(), "",
             "## MUSE demo: overall score", "", (out / "overall_muse.md").read_text(), "",
             "## TOFU demo: meta-evaluation of the forget-set metrics", "",
             (out / "meta_eval" / "meta_eval.md").read_text(), ""]
    (out / "SCORES.md").write_text("\n".join(lines))
    print("\n".join(lines))
    if args.record:
        dest = HERE / "scores"
        dest.mkdir(exist_ok=True)
        for name in ("overall_tofu.md", "overall_tofu.json", "overall_muse.md", "overall_muse.json", "SCORES.md"):
            shutil.copy(out / name, dest / name)
        for name in ("meta_eval.md", "meta_eval.json"):
            shutil.copy(out / "meta_eval" / name, dest / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
