"""`unlearn demo`: generate the fictitious-authors benchmark, train tiny target + retain models, unlearn with every
method, evaluate, print the table."""

from __future__ import annotations

import argparse

from unlearn.cli.options import add_config_args

NAME = "demo"
HELP = ("generate the fictitious-authors benchmark, train tiny target + retain models, unlearn with every "
        "method, evaluate, print the table")
EXAMPLE = ("unlearn demo                      # everything, on the embedded benchmark\n"
           "  unlearn demo unlearn_epochs=3 methods=npo+gd,simnpo+gd\n"
           "  unlearn demo benchmark=muse            # the MUSE path on the embedded fictitious news\n"
           "  unlearn demo benchmark=wmdp            # the WMDP path: RMU, NPO+GD, SimNPO+GD, multiple choice")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    p.add_argument("--fresh", action="store_true", help="start over: remove what an earlier demo wrote into "
                   "output_dir (only a directory a demo made) instead of reusing its stages")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unlearn.config import load_config
    from unlearn.experiments.common import quiet_libraries
    from unlearn.experiments.demo import clear_demo_output, run_demo
    from unlearn.tasks.demo import DEMOS

    quiet_libraries()
    recipe = DEMOS.get_entry(demo_benchmark(args.config, args.overrides))
    demo = load_config(recipe.config_class, args.config, args.overrides)  # every key checked before anything goes
    if args.fresh:
        clear_demo_output(Path(demo.output_dir), recipe)
    run_demo(demo)
    return 0


def demo_benchmark(config: str | None, overrides: list[str]) -> str:
    """Which demo: ``benchmark=…`` on the command line, else in the config file, else ``tofu``."""
    for item in reversed(overrides):
        key, _, value = item.partition("=")
        if key.strip() == "benchmark":
            return value.strip()
    if config:
        from unlearn.config.parsing import read_yaml

        values = read_yaml(config)
        if "benchmark" in values:
            return str(values["benchmark"])
    return "tofu"
