"""``unlearn eval``: evaluate a model with the run's task (``eval.task``, default ``tofu``) — or, with
``--from-generations RUN_DIR``, rescore a run's saved generations without its model (e.g. text metrics of a GPU run
computed on a CPU afterwards)."""

from __future__ import annotations

from pathlib import Path

from unlearn.config import RunConfig
from unlearn.errors import ConfigError
from unlearn.experiments.common import (
    RunSetup,
    Timer,
    command_inputs,
    finish_run,
    write_task_files,
)
from unlearn.experiments.pipeline import prepare_stage
from unlearn.experiments.plan import RunPlan, as_plan, limit_note
from unlearn.runs import RunDirectory, RunInfo, RunResults
from unlearn.tasks import get_task


def run_evaluation(plan: RunPlan | RunConfig, overwrite: bool = False) -> Path:
    """Evaluate the planned model (a configuration is planned first); ``overwrite`` replaces a run already in the
    output directory."""
    timer = Timer()
    plan = as_plan(plan, "eval")
    cfg = plan.cfg
    if cfg.eval.from_generations:
        return rescore_generations(cfg, overwrite)
    if not cfg.eval.enabled:
        raise ConfigError("eval.enabled=false: nothing to do for `unlearn eval`")
    s = prepare_stage(plan, overwrite=overwrite, timer=timer)
    assert s.evaluator is not None  # evaluation is on (checked above)
    with s.accelerator.autocast():
        result = s.evaluator.evaluate(s.model, s.accelerator.device)
    write_task_files(s.run, plan.task, result)
    s.run.write_results(RunResults(task=plan.task.name, metrics=result.metrics,
                                   run=RunInfo(stage="eval", model=cfg.model.path), seconds=timer.seconds,
                                   provenance=s.provenance, notes=limit_note(cfg)))
    finish_run(s.run)
    return s.run.path


def rescore_generations(cfg: RunConfig, overwrite: bool = False) -> Path:
    """Recompute every text metric and aggregate from a finished run's saved rows, with the task it was
    evaluated by. Results replace the run's files (atomically) unless ``output_dir`` names another directory, which
    must not hold a run (or ``overwrite``)."""
    source = RunDirectory(cfg.eval.from_generations)
    old = source.read_results() if source.is_complete() else None
    task = get_task(old.task if old is not None else cfg.eval.task)
    out = source
    if cfg.output_dir and Path(cfg.output_dir).resolve() != source.path.resolve():
        inputs = command_inputs(cfg)
        out = RunSetup(RunDirectory(cfg.output_dir), "", None, overwrite=overwrite, inputs=inputs).check().run
        if overwrite:
            out.clear(inputs)
        out.create()
    results = task.rescore(source, cfg, old)
    task.write(out, results.evaluation)
    out.write_results(results.record)
    finish_run(out)
    return out.path
