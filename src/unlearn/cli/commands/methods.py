"""`unlearn methods`: list forget objectives, regularizers, weight-edit methods and recipes."""

from __future__ import annotations

import argparse

NAME = "methods"
HELP = "list forget objectives, regularizers, weight-edit methods and recipes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from unlearn.objectives.methods import describe_registry

    print(describe_registry())
    return 0
