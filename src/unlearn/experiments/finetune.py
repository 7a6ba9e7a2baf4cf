"""``unlearn finetune``: the target model (on ``full``) or the retain/Retrain model (on ``retainYY``)."""

from __future__ import annotations

from pathlib import Path

from unlearn.config import RunConfig
from unlearn.data.files import recording_reads
from unlearn.experiments.common import (
    RunSetup,
    Timer,
    apply_training_options,
    build_evaluator,
    check_context,
    check_evaluation,
    check_part_lengths,
    check_training,
    command_inputs,
    config_text,
    data_fingerprint,
    epoch_hook,
    fingerprint,
    load_weights,
    make_accelerator,
    open_data,
    open_model,
    output_dir,
    process_state,
    with_task_defaults,
    write_results,
)
from unlearn.io import atomic_dir
from unlearn.models.loading import save_model
from unlearn.runs import RunInfo
from unlearn.train.loop import LoopSettings, check_processes, train_loop
from unlearn.train.steps import FinetuneStep, use_fast_path


def finetune_config_text(cfg: RunConfig) -> str:
    """The ``config.yaml`` of a fine-tuning run (the task's defaults filled in)."""
    return config_text(with_task_defaults(cfg))


def run_finetune(cfg: RunConfig, resume: bool = False, overwrite: bool = False) -> Path:
    """Fine-tune ``cfg.model`` on ``cfg.data.train_splits``; save the model and evaluate it. ``resume`` continues
    from the run directory's checkpoint; ``overwrite`` replaces a run already in it (see :class:`RunSetup`)."""
    timer = Timer()
    cfg = with_task_defaults(cfg)
    settings = LoopSettings.from_train(cfg.train, progress=cfg.progress, desc="finetune")
    data = open_data(cfg)
    check_evaluation(cfg)
    check_training(cfg)
    with recording_reads() as reads:
        n_train = data.prepare_finetune()
    name = "-".join(s.replace("/", "_") for s in cfg.data.train_splits)
    setup = RunSetup(output_dir(cfg, f"runs/finetune-{name}"), finetune_config_text(cfg),
                     fingerprint(cfg) | data_fingerprint(cfg, reads), resume, overwrite, inputs=command_inputs(cfg),
                     writes_model=cfg.save_model).check()
    opened = open_model(cfg)  # tokenizer and context length: every input is encoded and checked before the weights
    check_context(cfg, opened.context)
    formatter, tokenizer = opened.formatter, opened.tokenizer
    parts = data.finetune_parts(formatter)
    check_part_lengths(parts, opened.context, cfg.model.path)
    check_processes(process_state().num_processes, len(parts), settings)
    task, evaluator = build_evaluator(cfg, formatter, opened.context)
    model = load_weights(cfg, opened)
    apply_training_options(cfg, model)
    run = setup.commit()

    accelerator = make_accelerator(cfg, run)
    model.to(accelerator.device)
    hook = None
    if evaluator is not None and cfg.train.eval_every_epoch:
        hook = epoch_hook(evaluator, accelerator.device, cfg.eval.generate_every_epoch, cfg.eval.epoch_sets)

    step = FinetuneStep(parts, accelerator.device, fast=use_fast_path(cfg.train.fast_step, model))
    result = train_loop(model, step, len(parts), settings, run, accelerator, on_epoch_end=hook, resume=resume,
                        fingerprint=setup.fingerprint, lengths=parts.item_lengths)
    model = accelerator.unwrap_model(model)
    if cfg.save_model and accelerator.is_main_process:
        with atomic_dir(run.model_dir) as tmp:
            save_model(model, tokenizer, tmp)
    info = RunInfo(stage="finetune", train_splits=list(cfg.data.train_splits), n_train=n_train,
                   optimizer_steps=result.global_step, train_seconds=round(result.seconds, 2))
    write_results(run, task, evaluator, model, accelerator.device, info, timer)
    return run.path
