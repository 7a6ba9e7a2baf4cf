"""`unlearn overall`: OpenUnlearning's overall score — the harmonic mean of memorization, privacy and utility — for
finished runs of one task, against the retain run (docs/formulas.md#overall-score)."""

from __future__ import annotations

import argparse

NAME = "overall"
HELP = ("OpenUnlearning's overall score (harmonic mean of memorization, privacy, utility) of finished runs of one "
        "task, against the retain run; an optional aggregate beside FQ and MU")
EXAMPLE = ("unlearn overall runs/npo runs/simnpo --retain runs/retain --mia runs/npo runs/npo_mia "
           "--mia runs/simnpo runs/simnpo_mia --mia runs/retain runs/retain_mia --json overall.json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished runs of one task (tofu, muse, …)")
    p.add_argument("--retain", required=True, metavar="RUN_DIR", help="the retain (retrained) model's run of the "
                   "same task: privacy is how close each run's membership-inference AUCs are to its")
    p.add_argument("--mia", nargs=2, action="append", default=[], metavar=("RUN_DIR", "MIA_DIR"),
                   help="TOFU: the `unlearn eval eval.task=tofu_mia` output for RUN_DIR's model (repeat per run, "
                        "the retain run's included); MUSE runs carry their AUCs")
    p.add_argument("--json", dest="json_out", metavar="FILE", help="also write the scores to FILE")
    p.add_argument("--output", metavar="FILE", help="also write the markdown table to FILE")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unlearn.errors import ConfigError
    from unlearn.io import write_json, write_text
    from unlearn.reporting.overall import load_run, overall_scores, overall_table

    mia = {}
    for run_dir, mia_dir in args.mia:
        key = Path(run_dir).resolve()
        if key not in {Path(d).resolve() for d in [*args.run_dirs, args.retain]}:
            raise ConfigError(f"--mia {run_dir}: not one of the runs scored (RUN_DIR or --retain)")
        mia[key] = mia_dir
    runs = [load_run(d, mia.get(Path(d).resolve())) for d in args.run_dirs]
    retain = load_run(args.retain, mia.get(Path(args.retain).resolve()))
    scores = overall_scores(runs, retain)
    table = overall_table(scores)
    print(table, end="")
    if args.json_out:
        write_json(args.json_out, scores)
    if args.output:
        write_text(args.output, table)
    return 0
