"""`unlearn run`: unlearn with one method (a forget objective × a regularizer, or a weight edit) and evaluate."""

from __future__ import annotations

import argparse

from unlearn.cli.options import add_config_args, add_limit_arg, add_run_dir_args, add_strict_arg, run_pipeline

NAME = "run"
HELP = "unlearn with one method and evaluate"
EXAMPLE = ("unlearn run model=runs/target/model data=DATA_DIR method=simnpo+gd data.forget_split=forget10 \\\n"
           "      eval.retain_reference=runs/retain output_dir=runs/simnpo")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    add_run_dir_args(p)
    add_strict_arg(p)
    add_limit_arg(p)


def run(args: argparse.Namespace) -> int:
    return run_pipeline(args, _run)


def _run(cfg, args) -> object:
    from unlearn.experiments.unlearning import run_unlearning

    return run_unlearning(cfg, resume=args.resume, overwrite=args.overwrite)
