"""`unlearn tasks`: list the evaluation tasks: their sets, requests, metrics and dependencies."""

from __future__ import annotations

import argparse

NAME = "tasks"
HELP = "list the evaluation tasks: their sets, requests, metrics and dependencies"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from unlearn.tasks import describe_tasks

    print(describe_tasks())
    return 0
