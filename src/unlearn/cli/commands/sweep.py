"""`unlearn sweep`: run a grid of unlearning runs (key=v1,v2 axes, METHOD:key=… per-method axes), resumable; the
forgetting–utility front, the best run per method under a utility floor, and a report."""

from __future__ import annotations

import argparse

from unlearn.cli.options import add_config_args

NAME = "sweep"
HELP = ("run a grid of unlearning runs (key=v1,v2 axes, METHOD:key=… per-method axes), resumable; the "
        "forgetting–utility front, the best run per method under a utility floor, and a report")
EXAMPLE = ("unlearn sweep -c base.yaml method=npo+gd,simnpo+gd train.lr=1e-5,2e-5 npo+gd:forget.beta=0.05,0.1 \\\n"
           "      simnpo+gd:forget.beta=2.5,3.5 train.eval_every_epoch=true sweep.jobs=2 output_dir=runs/sweep1")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="run more than sweep.max_runs runs")
    p.add_argument("--overwrite", action="store_true", help="replace grid runs whose directories hold a finished "
                   "run of another configuration (an earlier sweep into this output_dir); without it they are refused")
    p.add_argument("--report-only", action="store_true", help="run nothing: select and report from the runs that "
                   "have finished (e.g. while SLURM jobs still run), naming the missing ones")
    add_config_args(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unlearn.config.parsing import load_config, read_yaml
    from unlearn.experiments.common import quiet_libraries
    from unlearn.sweeps.config import SweepConfig
    from unlearn.sweeps.run import run_sweep

    quiet_libraries()
    base = read_yaml(args.config) if args.config else {}
    settings = [o.removeprefix("sweep.") for o in args.overrides if o.startswith("sweep.")]
    out_items = [o for o in args.overrides if o.partition("=")[0].strip() == "output_dir"]
    grid = [o for o in args.overrides if not o.startswith("sweep.") and o not in out_items]
    sweep = load_config(SweepConfig, None, settings, base=base.pop("sweep", None) or {})
    out = Path(out_items[-1].partition("=")[2].strip() if out_items else base.pop("output_dir", None) or "runs/sweep")
    out = run_sweep(base, grid, sweep, out, yes=args.yes, overwrite=args.overwrite, report_only=args.report_only)
    print((out / f"{sweep.name}.md").read_text(encoding="utf-8"))
    print(f"results: {out / f'{sweep.name}.json'}, {out / f'{sweep.name}.md'}")
    return 0
