"""`unlearn compare`: print one markdown table across runs (methods as rows): FQ, MU-9, MU-18, FE, forget and retain
metrics."""

from __future__ import annotations

import argparse

from unlearn.runs import RunDirectory

NAME = "compare"
HELP = "print one markdown table across runs (methods as rows): FQ, MU-9, MU-18, FE, forget and retain metrics"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("example:\n  unlearn compare runs/target runs/retain runs/npo runs/simnpo --output compare.md "
                "--plots-dir runs/compare")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help=f"run directories with {RunDirectory.METRICS}")
    p.add_argument("--output", metavar="FILE", help="also write the markdown to FILE")
    p.add_argument("--plots-dir", metavar="DIR", help="draw the multi-run plots (FE vs MU trajectories, NPO vs "
                   "SimNPO gradient weights) into DIR and link them")
    p.add_argument("--names", metavar="A,B,...", help="row names, comma-separated, one per RUN_DIR "
                   "(default: the method name, else the directory name)")
    p.add_argument("--examples", type=int, default=3, help="forget questions with every run's generation side by "
                   "side (default 3; 0 = none)")
    p.add_argument("--strict", action="store_true", help="refuse runs that differ in what produced them (data "
                   "contents, task version, starting model, toolkit version) instead of warning")


def run(args: argparse.Namespace) -> int:
    from unlearn.reporting.report import write_comparison

    names = [n.strip() for n in args.names.split(",")] if args.names else None
    print(write_comparison(args.run_dirs, output_path=args.output, names=names, plots_dir=args.plots_dir,
                           examples=args.examples, strict=args.strict), end="")
    return 0
