"""Stages of multi-stage experiments (the demo, benchmark scripts): run one, reuse it, or resume it."""

from __future__ import annotations

from collections.abc import Callable

from unlearn.runs import RunDirectory


def run_stage(run: RunDirectory, config_text: str, execute: Callable[[], object]) -> bool:
    """Run a stage unless ``run`` already holds its finished results; return whether it ran.

    - finished with this configuration: reused, nothing runs;
    - started with this configuration but not finished: ``execute`` (which resumes from the checkpoint);
    - holding another configuration's run: that run's files are cleared first (:meth:`RunDirectory.clear`).
    """
    same = run.holds_config(config_text)
    if same and run.is_complete():
        return False
    if run.config_file.is_file() and not same:
        run.clear()
    execute()
    return True
