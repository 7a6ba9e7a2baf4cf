"""`unlearn sequential`: the ``sequential`` scenario under its old name (``unlearn scenario sequential
requests=[…]``): unlearn a sequence of forget requests, each from the previous result (MUSE sustainability; default
requests sust/forget_1..4), with KnowMem after each."""

from __future__ import annotations

import argparse

from unlearn.cli.options import add_config_args

NAME = "sequential"
HELP = ("unlearn a sequence of forget requests, each from the previous result (MUSE sustainability; default "
        "requests sust/forget_1..4), with KnowMem after each")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    p.add_argument("--requests", help="comma-separated forget corpora (default: sust/forget_1,…,sust/forget_4)")


def run(args: argparse.Namespace) -> int:
    from unlearn.config import RunConfig, load_config
    from unlearn.experiments.common import quiet_libraries
    from unlearn.io import read_json
    from unlearn.scenarios import run_scenario
    from unlearn.scenarios.sequential import SequentialConfig, format_sequential

    quiet_libraries()
    cfg = load_config(RunConfig, args.config, args.overrides)
    scenario = SequentialConfig() if not args.requests else \
        SequentialConfig([r.strip() for r in args.requests.split(",") if r.strip()])
    out = run_scenario("sequential", cfg, scenario)
    print(format_sequential(read_json(out / "sequential.json")))
    print(f"results: {out}/sequential.json, sequential.md")
    return 0
