"""Stages of multi-stage experiments (the demo, benchmark scripts): run one, reuse it, or resume it."""

from __future__ import annotations

from collections.abc import Callable

from unlearn.runs import RunDirectory
from unlearn.train.checkpoint import Checkpoint


def stage_action(run: RunDirectory, config_text: str) -> str:
    """What a stage in ``run`` needs: ``reuse`` (finished with this configuration), ``resume`` (started with it and
    holding a checkpoint) or ``restart`` (anything else: another configuration's run, an unfinished run without a
    checkpoint, leftovers)."""
    same = run.holds_config(config_text)
    if same and run.is_complete():
        return "reuse"
    if same and Checkpoint(run.checkpoint_dir).exists():
        return "resume"
    return "restart"


def run_stage(run: RunDirectory, config_text: str, execute: Callable[..., object]) -> bool:
    """Run a stage unless ``run`` already holds its finished results; return whether it ran.

    As :func:`stage_action` says: reused, nothing runs; ``execute(resume=True)`` continues it; or
    ``execute(overwrite=True)`` replaces it — only the run's own files are removed (:meth:`RunDirectory.clear`).
    """
    action = stage_action(run, config_text)
    if action == "reuse":
        return False
    execute(resume=action == "resume", overwrite=action == "restart")
    return True
