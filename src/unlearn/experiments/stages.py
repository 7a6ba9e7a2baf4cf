"""Stages of multi-stage experiments (the demo, benchmark scripts): run one, reuse it, or resume it."""

from __future__ import annotations

from collections.abc import Callable

from unlearn.runs import RunDirectory
from unlearn.train.checkpoint import Checkpoint


def run_stage(run: RunDirectory, config_text: str, execute: Callable[..., object]) -> bool:
    """Run a stage unless ``run`` already holds its finished results; return whether it ran.

    - finished with this configuration: reused, nothing runs;
    - started with this configuration and holding a checkpoint: ``execute(resume=True)`` continues it;
    - anything else (another configuration's run, an unfinished run without a checkpoint, leftovers):
      ``execute(overwrite=True)`` replaces it — only the run's own files are removed (:meth:`RunDirectory.clear`).
    """
    same = run.holds_config(config_text)
    if same and run.is_complete():
        return False
    if same and Checkpoint(run.checkpoint_dir).exists():
        execute(resume=True, overwrite=False)
    else:
        execute(resume=False, overwrite=True)
    return True
