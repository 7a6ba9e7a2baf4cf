"""``unlearn eval``: evaluate a model on the TOFU sets and write per-sample and aggregate results."""

from __future__ import annotations

from pathlib import Path

from unlearn.config import RunConfig
from unlearn.errors import ConfigError
from unlearn.evaluation.tofu_eval import write_eval
from unlearn.experiments.common import (
    Timer,
    build_evaluator,
    load_model,
    make_accelerator,
    open_data,
    run_directory,
    save_config,
)


def run_evaluation(cfg: RunConfig) -> Path:
    timer = Timer()
    if not cfg.eval.enabled:
        raise ConfigError("eval.enabled=false: nothing to do for `unlearn eval`")
    data = open_data(cfg)
    model, _, formatter = load_model(cfg)
    evaluator = build_evaluator(cfg, data, formatter)
    run_dir = run_directory(cfg, "runs/eval")
    save_config(run_dir, cfg)
    accelerator = make_accelerator(cfg)
    model.to(accelerator.device)
    with accelerator.autocast():
        result = evaluator.evaluate(model, accelerator.device)
    write_eval(run_dir, result, {"run": {"kind": "eval", "model": cfg.model.path}, "seconds": timer.seconds})
    return run_dir
