"""``unlearn finetune``: the target model (on ``full``) or the retain/Retrain model (on ``retainYY``), SPEC §3."""

from __future__ import annotations

from pathlib import Path

from unlearn.config import RunConfig
from unlearn.errors import DataError
from unlearn.evaluation.tofu_eval import write_eval
from unlearn.experiments.common import (
    Timer,
    build_evaluator,
    epoch_hook,
    finish_run,
    load_model,
    loop_settings,
    make_accelerator,
    open_data,
    run_directory,
    save_config,
)
from unlearn.io import atomic_dir, write_json
from unlearn.models.loading import save_model
from unlearn.train.loop import train_loop
from unlearn.train.parts import finetune_parts
from unlearn.train.steps import FinetuneStep


def run_finetune(cfg: RunConfig, resume: bool = False) -> Path:
    """Fine-tune ``cfg.model`` on ``cfg.data.train_splits``; save the model and evaluate it."""
    timer = Timer()
    settings = loop_settings(cfg, "finetune")
    data = open_data(cfg)
    if not cfg.data.train_splits:
        raise DataError("data.train_splits is empty: nothing to fine-tune on")
    records = [r for split in cfg.data.train_splits for r in data.split(split)]
    if not records:
        raise DataError(f"splits {cfg.data.train_splits} hold no records")
    model, tokenizer, formatter = load_model(cfg)
    parts = finetune_parts(formatter, records, cfg.data.max_length)
    evaluator = build_evaluator(cfg, data, formatter)
    run_dir = run_directory(cfg, f"runs/finetune-{'-'.join(cfg.data.train_splits)}")
    save_config(run_dir, cfg)

    accelerator = make_accelerator(cfg)
    model.to(accelerator.device)
    hook = None
    if evaluator is not None and cfg.train.eval_every_epoch:
        hook = epoch_hook(evaluator, accelerator.device, cfg.eval.generate_every_epoch,
                          cfg.eval.epoch_sets)

    result = train_loop(model, FinetuneStep(parts, accelerator.device), len(parts), settings, run_dir, accelerator,
                        on_epoch_end=hook, resume=resume)
    model = accelerator.unwrap_model(model)
    if cfg.save_model:
        with atomic_dir(run_dir / "model") as tmp:
            save_model(model, tokenizer, tmp)
    summary = {"kind": "finetune", "train_splits": cfg.data.train_splits, "n_train": len(records),
               "optimizer_steps": result.global_step, "train_seconds": round(result.seconds, 2)}
    if evaluator is not None:
        evaluation = evaluator.evaluate(model, accelerator.device)
        write_eval(run_dir, evaluation, {"run": summary, "seconds": timer.seconds})
    else:
        write_json(run_dir / "metrics.json", {"run": summary, "seconds": timer.seconds})
    finish_run(run_dir)
    return run_dir
