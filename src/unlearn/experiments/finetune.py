"""``unlearn finetune``: the target model (on ``full``) or the retain/Retrain model (on ``retainYY``)."""

from __future__ import annotations

from pathlib import Path

from unlearn.config import RunConfig
from unlearn.data.checks import check_split
from unlearn.data.parts import finetune_parts
from unlearn.errors import DataError
from unlearn.experiments.common import (
    RunSetup,
    Timer,
    build_evaluator,
    check_evaluation,
    config_text,
    epoch_hook,
    fingerprint,
    load_model,
    make_accelerator,
    open_data,
    output_dir,
    write_results,
)
from unlearn.io import atomic_dir
from unlearn.models.loading import save_model
from unlearn.runs import RunInfo
from unlearn.train.loop import LoopSettings, train_loop
from unlearn.train.steps import FinetuneStep


def run_finetune(cfg: RunConfig, resume: bool = False, overwrite: bool = False) -> Path:
    """Fine-tune ``cfg.model`` on ``cfg.data.train_splits``; save the model and evaluate it. ``resume`` continues
    from the run directory's checkpoint; ``overwrite`` replaces a run already in it (see :class:`RunSetup`)."""
    timer = Timer()
    settings = LoopSettings.from_train(cfg.train, progress=cfg.progress, desc="finetune")
    data = open_data(cfg)
    check_evaluation(cfg)
    if not cfg.data.train_splits:
        raise DataError("data.train_splits is empty: nothing to fine-tune on")
    records = [r for split in cfg.data.train_splits for r in data.split(split)]
    if not records:
        raise DataError(f"splits {cfg.data.train_splits} hold no records")
    check_split(records, f"the training splits {', '.join(cfg.data.train_splits)}", cfg.data.strict)
    setup = RunSetup(output_dir(cfg, f"runs/finetune-{'-'.join(cfg.data.train_splits)}"), config_text(cfg),
                     fingerprint(cfg), resume, overwrite).check()
    model, tokenizer, formatter = load_model(cfg)
    parts = finetune_parts(formatter, records, cfg.data.max_length)
    task, evaluator = build_evaluator(cfg, formatter)
    run = setup.commit()

    accelerator = make_accelerator(cfg)
    model.to(accelerator.device)
    hook = None
    if evaluator is not None and cfg.train.eval_every_epoch:
        hook = epoch_hook(evaluator, accelerator.device, cfg.eval.generate_every_epoch, cfg.eval.epoch_sets)

    result = train_loop(model, FinetuneStep(parts, accelerator.device), len(parts), settings, run, accelerator,
                        on_epoch_end=hook, resume=resume, fingerprint=setup.fingerprint)
    model = accelerator.unwrap_model(model)
    if cfg.save_model:
        with atomic_dir(run.model_dir) as tmp:
            save_model(model, tokenizer, tmp)
    info = RunInfo(stage="finetune", train_splits=list(cfg.data.train_splits), n_train=len(records),
                   optimizer_steps=result.global_step, train_seconds=round(result.seconds, 2))
    write_results(run, task, evaluator, model, accelerator.device, info, timer)
    return run.path
