"""`unlearn report`: write report.md (metric tables, PNG plots, example generations) for each run directory."""

from __future__ import annotations

import argparse

from unlearn.runs import RunDirectory

NAME = "report"
HELP = "write report.md (metric tables, PNG plots, example generations) for each run directory"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = "example:\n  unlearn report runs/npo runs/simnpo"
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help=f"run directory with {RunDirectory.METRICS}")
    p.add_argument("--examples", type=int, default=5, help="example generations per set (default 5)")


def run(args: argparse.Namespace) -> int:
    from unlearn.reporting.report import load_run, write_report

    for run_dir in args.run_dirs:  # every path checked before any report is written
        load_run(run_dir)
    for run_dir in args.run_dirs:
        print(write_report(run_dir, examples=max(args.examples, 0)))
    return 0
