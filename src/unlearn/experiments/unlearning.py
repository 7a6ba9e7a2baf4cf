"""``unlearn run``: unlearn one method from a starting model, then evaluate (SPEC §1–4).

Order of work: validate the method, the data and the reference set-up (cheap, before any compute);
load the model; encode every batch part (length errors surface here); cache NPO/DPO reference
log-probs and free any separate reference model; optionally wrap LoRA; train; evaluate; write.
"""

from __future__ import annotations

import gc
from pathlib import Path

import torch

from unlearn.config import RunConfig
from unlearn.data.pairing import pair_forget_items
from unlearn.data.tofu import TofuData
from unlearn.errors import ConfigError
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
from unlearn.models.loading import check_model_tokenizer, load_model_and_tokenizer, save_model
from unlearn.objectives.methods import Method, build_method
from unlearn.train.loop import train_loop
from unlearn.train.parts import unlearning_parts
from unlearn.train.reference import FrozenReference, cached_reference_logp
from unlearn.train.steps import UnlearnStep


def method_from_config(cfg: RunConfig) -> Method:
    return build_method(cfg.method.name, cfg.forget, cfg.retain, cfg.method.forget_weight, cfg.method.retain_weight,
                        cfg.data.forget_split)


def idk_templates(cfg: RunConfig, data: TofuData, method: Method) -> list[str]:
    """IDK templates for targeted methods; a clear error if the method needs them and none are configured."""
    needers = [obj.name for obj in (method.forget, method.regularizer) if obj.needs_idk]
    needed_by = f"method {method.name} ({' and '.join(needers)})" if needers else None
    return data.idk_templates(cfg.data.idk_path, needed_by)


def check_reference(cfg: RunConfig, method: Method) -> None:
    needs = method.reference_parts or method.needs_reference_model
    if cfg.method.reference == "none" and needs:
        what = "KL regularizer" if method.needs_reference_model else f"{method.forget.name.upper()} objective"
        raise ConfigError(f"method {method.name}: the {what} needs a reference model but method.reference=none; "
                          "use method.reference=initial (the model before unlearning) or a model path")


def _lora(model: torch.nn.Module, cfg: RunConfig) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    t = cfg.train
    config = LoraConfig(r=t.lora_r, lora_alpha=t.lora_alpha, lora_dropout=t.lora_dropout,
                        target_modules=t.lora_target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def run_unlearning(cfg: RunConfig, resume: bool = False) -> Path:
    timer = Timer()
    method = method_from_config(cfg)
    check_reference(cfg, method)
    settings = loop_settings(cfg, method.name)
    data = open_data(cfg)
    forget = data.forget_split(cfg.data.forget_split)
    retain = data.retain_split(cfg.data.forget_split) if method.needs_retain else forget
    templates = idk_templates(cfg, data, method)
    pairing = pair_forget_items(len(forget), len(retain), len(templates), cfg.train.seed)

    model, tokenizer, formatter = load_model(cfg)
    parts = unlearning_parts(formatter, forget, retain, templates, pairing, method.parts, cfg.data.max_length)
    evaluator = build_evaluator(cfg, data, formatter)
    run_dir = run_directory(cfg, f"runs/{method.name}-{cfg.data.forget_split}")
    save_config(run_dir, cfg)

    accelerator = make_accelerator(cfg)
    device = accelerator.device
    model.to(device)

    # Reference: NPO/DPO log-probs cached once; a separate reference model is freed right after.
    separate_ref = None
    if cfg.method.reference not in ("initial", "none") and (method.reference_parts or method.needs_reference_model):
        separate_ref, _ = load_model_and_tokenizer(cfg.method.reference,
                                                   trust_remote_code=cfg.model.trust_remote_code)
        check_model_tokenizer(separate_ref, tokenizer, f"reference model {cfg.method.reference}")
        separate_ref.to(device)
    ref_logp = None
    if method.reference_parts:
        ref_model = separate_ref if separate_ref is not None else model
        with accelerator.autocast():
            ref_logp = cached_reference_logp(ref_model, parts, method.reference_parts, cfg.eval.batch_size, device,
                                             method.padded_parts)
    if separate_ref is not None and not method.needs_reference_model:
        del separate_ref
        separate_ref = None
        gc.collect()

    if cfg.train.lora:
        model = _lora(model, cfg)
    reference = FrozenReference.for_model(model, separate_ref) if method.needs_reference_model else None

    hook = None
    if evaluator is not None and cfg.train.eval_every_epoch:
        hook = epoch_hook(evaluator, device, cfg.eval.generate_every_epoch,
                          cfg.eval.epoch_sets)

    step = UnlearnStep(method, parts, device, ref_logp, reference)
    result = train_loop(model, step, len(parts), settings, run_dir, accelerator, on_epoch_end=hook, resume=resume)
    model = accelerator.unwrap_model(model)
    del reference
    if cfg.train.lora:
        model = model.merge_and_unload()
    if cfg.save_model:
        with atomic_dir(run_dir / "model") as tmp:
            save_model(model, tokenizer, tmp)
    summary = {"kind": "unlearn", "method": method.describe(), "forget_split": cfg.data.forget_split,
               "n_forget": len(forget), "optimizer_steps": result.global_step,
               "train_seconds": round(result.seconds, 2), "resumed_from_step": result.resumed_from}
    if evaluator is not None:
        evaluation = evaluator.evaluate(model, device)
        write_eval(run_dir, evaluation, {"run": summary, "seconds": timer.seconds})
    else:
        write_json(run_dir / "metrics.json", {"run": summary, "seconds": timer.seconds})
    finish_run(run_dir)
    return run_dir
