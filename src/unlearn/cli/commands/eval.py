"""`unlearn eval`: evaluate a model with an evaluation task (task=tofu: the TOFU and closer-look metrics)."""

from __future__ import annotations

import argparse

from unlearn.cli.options import add_config_args, add_limit_arg, run_pipeline

NAME = "eval"
HELP = "evaluate a model with an evaluation task (task=tofu: the TOFU and closer-look metrics)"
EXAMPLE = "unlearn eval model=runs/simnpo/model data=DATA_DIR eval.retain_reference=runs/retain   # task=tofu"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    p.add_argument("--from-generations", metavar="RUN_DIR",
                   help="rescore the saved generations of RUN_DIR (no model needed; e.g. a GPU run on a CPU)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in output_dir (its files are "
                   "removed first)")
    add_limit_arg(p)


def run(args: argparse.Namespace) -> int:
    return run_pipeline(args, _eval)


def _eval(cfg, args) -> object:
    from unlearn.experiments.evaluate import run_evaluation

    if args.from_generations:
        cfg.eval.from_generations = args.from_generations
    return run_evaluation(cfg, overwrite=args.overwrite)
