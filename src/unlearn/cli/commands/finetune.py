"""`unlearn finetune`: fine-tune a model on a benchmark's training data: TOFU splits (full → target model, retainYY →
retain model) or MUSE text corpora (task=muse_news: forget + retain → target)."""

from __future__ import annotations

import argparse

from unlearn.cli.options import add_config_args, add_run_dir_args, add_strict_arg, run_pipeline

NAME = "finetune"
HELP = ("fine-tune a model on a benchmark's training data: TOFU splits (full → target model, retainYY → "
        "retain model) or MUSE text corpora (task=muse_news: forget + retain → target)")
EXAMPLE = ("unlearn finetune model=DIR data=DATA_DIR data.train_splits=full output_dir=runs/target \\\n"
           "      save_model=true")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    add_run_dir_args(p)
    add_strict_arg(p)


def run(args: argparse.Namespace) -> int:
    return run_pipeline(args, _finetune)


def _finetune(cfg, args) -> object:
    from unlearn.experiments.finetune import run_finetune

    return run_finetune(cfg, resume=args.resume, overwrite=args.overwrite)
