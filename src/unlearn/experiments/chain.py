"""Chained unlearning: runs one after another, each starting from the previous run's saved model — MUSE's sequential
requests (``unlearn scenario sequential``) and closer-look's continual tasks (``unlearn scenario continual``).

Every link is an ordinary unlearning run directory: a finished link is reused when the chain is run again with the
same configuration, an interrupted one resumes, so an interrupted chain continues where it stopped.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from unlearn.config import RunConfig
from unlearn.experiments.plan import plan_unlearning
from unlearn.experiments.stages import run_planned
from unlearn.experiments.unlearning import run_unlearning
from unlearn.runs import RunDirectory


@dataclass(frozen=True)
class Link:
    """One run of a chain: ``config(start_model)`` is its RunConfig (its ``output_dir`` is the link's run
    directory, and ``save_model`` is on so the next link can start from it); ``message`` is printed when it
    trains."""

    config: Callable[[str], RunConfig]
    message: str


def run_chain(start_model: str, links: Sequence[Link], echo: Callable[[str], object] = print,
              keep_models: bool = True) -> list[RunDirectory]:
    """Run ``links`` in order, link i from link i−1's saved model (the first from ``start_model``); returns their
    run directories. ``keep_models=False`` deletes each link's model once the next link has finished with it."""
    model, runs = start_model, []
    for link in links:
        plan = plan_unlearning(link.config(model))
        run = plan.run
        # finished: reused; interrupted: resumed
        run_planned(plan, run_unlearning, lambda message=link.message: echo(message))
        if runs and not keep_models and runs[-1].model_dir.is_dir():
            shutil.rmtree(runs[-1].model_dir)
        runs.append(run)
        model = str(run.model_dir)
    return runs
