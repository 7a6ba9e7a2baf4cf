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
    data_fingerprint,
    epoch_hook,
    load_weights,
    make_accelerator,
    open_data,
    open_model,
    process_state,
    write_results,
)
from unlearn.experiments.plan import RunPlan, as_plan
from unlearn.io import atomic_dir
from unlearn.models.loading import save_model
from unlearn.runs import RunInfo
from unlearn.train.loop import LoopSettings, check_processes, train_loop
from unlearn.train.steps import FinetuneStep, use_fast_path


def run_finetune(plan: RunPlan | RunConfig, resume: bool = False, overwrite: bool = False) -> Path:
    """Fine-tune the planned model (a configuration is planned first) on ``data.train_splits``; save the model and
    evaluate it. ``resume`` continues from the run directory's checkpoint; ``overwrite`` replaces a run already in
    it (see :class:`RunSetup`)."""
    timer = Timer()
    plan = as_plan(plan, "finetune")
    cfg = plan.cfg
    settings = LoopSettings.from_train(cfg.train, progress=cfg.progress, desc="finetune")
    data = open_data(plan)
    check_evaluation(plan)
    check_training(cfg)
    with recording_reads() as reads:
        n_train = data.prepare_finetune()
    setup = RunSetup(plan.run, plan.config_text, plan.fingerprint | data_fingerprint(cfg, reads), resume, overwrite,
                     inputs=command_inputs(cfg), writes_model=cfg.save_model).check()
    opened = open_model(cfg)  # tokenizer and context length: every input is encoded and checked before the weights
    check_context(plan, opened.context)
    formatter, tokenizer = opened.formatter, opened.tokenizer
    parts = data.finetune_parts(formatter)
    check_part_lengths(parts, opened.context, cfg.model.path)
    check_processes(process_state().num_processes, len(parts), settings)
    task, evaluator = plan.task, build_evaluator(plan, formatter, opened.context)
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
