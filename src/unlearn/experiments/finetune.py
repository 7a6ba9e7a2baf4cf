"""``unlearn finetune``: the target model (on ``full``) or the retain/Retrain model (on ``retainYY``)."""

from __future__ import annotations

from pathlib import Path

from unlearn.config import RunConfig
from unlearn.experiments.pipeline import Training, prepare_stage
from unlearn.experiments.plan import RunPlan, as_plan
from unlearn.runs import RunInfo
from unlearn.train.loop import train_loop
from unlearn.train.steps import FinetuneStep, use_fast_path


def run_finetune(plan: RunPlan | RunConfig, resume: bool = False, overwrite: bool = False) -> Path:
    """Fine-tune the planned model (a configuration is planned first) on ``data.train_splits``; save the model and
    evaluate it. ``resume`` continues from the run directory's checkpoint; ``overwrite`` replaces a run already in
    it (see :class:`RunSetup`)."""
    plan = as_plan(plan, "finetune")
    cfg = plan.cfg
    training = Training(read=lambda data: data.prepare_finetune(),
                        encode=lambda data, formatter: data.finetune_parts(formatter), desc="finetune")
    s = prepare_stage(plan, training, resume, overwrite)
    step = FinetuneStep(s.parts, s.accelerator.device, fast=use_fast_path(cfg.train.fast_step, s.model))
    result = train_loop(s.model, step, len(s.parts), s.settings, s.run, s.accelerator, on_epoch_end=s.hook,
                        resume=resume, fingerprint=s.fingerprint, lengths=s.parts.item_lengths)
    model = s.accelerator.unwrap_model(s.model)
    s.finish(model, RunInfo(stage="finetune", train_splits=list(cfg.data.train_splits), n_train=s.n_rows,
                            optimizer_steps=result.global_step, train_seconds=round(result.seconds, 2)))
    return s.run.path
