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
    build_evaluator,
    check_context,
    check_evaluation,
    command_inputs,
    finish_run,
    load_weights,
    make_accelerator,
    open_data,
    open_model,
    require,
    write_task_files,
)
from unlearn.experiments.plan import RunPlan, as_plan
from unlearn.runs import RunDirectory, RunInfo, RunResults
from unlearn.tasks import get_task


def run_evaluation(plan: RunPlan | RunConfig, overwrite: bool = False) -> Path:
    """Evaluate the planned model (a configuration is planned first); ``overwrite`` replaces a run already in the
    output directory."""
    timer = Timer()
    plan = as_plan(plan, "eval")
    cfg, task = plan.cfg, plan.task
    if cfg.eval.from_generations:
        return rescore_generations(cfg, overwrite)
    if not cfg.eval.enabled:
        raise ConfigError("eval.enabled=false: nothing to do for `unlearn eval`")
    if plan.data_kind == "none":  # lm-evaluation-harness tasks bring their own data
        require(cfg.model.path, "model.path")
    else:
        open_data(plan)
    check_evaluation(plan)
    setup = RunSetup(plan.run, plan.config_text, None, overwrite=overwrite, inputs=command_inputs(cfg)).check()
    opened = open_model(cfg)  # every input is encoded and checked against the context before the weights load
    check_context(plan, opened.context, training=False)
    evaluator = build_evaluator(plan, opened.formatter, opened.context)
    assert evaluator is not None  # evaluation is on (checked above)
    model = load_weights(cfg, opened)
    run = setup.commit()
    accelerator = make_accelerator(cfg)
    model.to(accelerator.device)
    with accelerator.autocast():
        result = evaluator.evaluate(model, accelerator.device)
    write_task_files(run, task, result)
    run.write_results(RunResults(task=task.name, metrics=result.metrics,
                                 run=RunInfo(stage="eval", model=cfg.model.path), seconds=timer.seconds))
    finish_run(run)
    return run.path


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
