"""What several commands share: the config arguments, the run-directory flags, and the body of the three pipeline
commands (build a RunConfig, run, print the task's summary)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="YAML config file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.lr=1e-4")


def add_strict_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true", help="duplicate questions and forget rows inside the retain "
                   "split are errors, not warnings (data.strict=true)")


def add_limit_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", metavar="N", help="smoke tests only: the first N rows of every training split and "
                   "eval set (lm-evaluation-harness's --limit); the results say \"limited — not comparable\"")


def limit_override(value: str | None) -> list[str]:
    """``--limit N`` as the ``limit=N`` override; anything but a positive integer is one line, before any
    compute."""
    if value is None:
        return []
    from unlearn.errors import ConfigError

    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"--limit must be a positive integer (the first N rows of each set), got {value!r}")
    return [f"limit={int(text)}"]


def add_run_dir_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint (the "
                   "configuration must be the one it was written with)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in output_dir (its files are "
                   "removed first); without it such a directory is refused")


def run_pipeline(args: argparse.Namespace, run: Callable) -> int:
    """Build a RunConfig from ``args``, run one pipeline (``run(cfg, args)`` returns the run directory), and print
    the task's summary of the results."""
    from unlearn.config import RunConfig, load_config
    from unlearn.experiments.common import quiet_libraries
    from unlearn.runs import RunDirectory
    from unlearn.tasks import get_task

    quiet_libraries()
    cfg = load_config(RunConfig, args.config, [*args.overrides, *limit_override(getattr(args, "limit", None))])
    if getattr(args, "strict", False):
        cfg.data.strict = True
    run_dir = RunDirectory(run(cfg, args))
    results = run_dir.read_results()
    if results.metrics:
        print(get_task(results.task).format_results(results.metrics))
    if results.limited is not None:
        print(results.notes["limited"]["note"])
    print(f"results: {run_dir.path}")
    return 0
