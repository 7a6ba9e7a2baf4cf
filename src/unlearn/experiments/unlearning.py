"""``unlearn run``: unlearn with one registered method from a starting model, then evaluate.

Order of work: resolve the method and its recipe, check the data and the reference set-up (cheap, before any
compute); load the model; encode every batch part (length errors surface here); then the method's procedure —
a loss method caches NPO/DPO reference log-probs, frees any separate reference model, optionally wraps LoRA and
trains; a weight-edit method fine-tunes and edits the weights — and finally evaluate and write.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from unlearn.config import RunConfig
from unlearn.data.formatting import ChatFormatter
from unlearn.data.parts import PartData
from unlearn.errors import ConfigError
from unlearn.experiments.common import (
    Timer,
    log,
    open_data,
    open_model,
)
from unlearn.experiments.generated import attach_generated, check_request
from unlearn.experiments.pipeline import Training, prepare_stage
from unlearn.experiments.plan import RunPlan, as_plan
from unlearn.experiments.reuse import SharedCache, parts_digest
from unlearn.models.loading import check_model_tokenizer, load_model_and_tokenizer, resolve_model
from unlearn.objectives.methods import LossMethod, Method
from unlearn.objectives.weight_edit import WeightEditMethod
from unlearn.runs import RunDirectory, RunInfo
from unlearn.train.loop import EpochHook, LoopResult, LoopSettings, StepHook, train_loop
from unlearn.train.reference import FrozenReference, cached_reference_logp, perturbed_reference
from unlearn.train.steps import FinetuneStep, UnlearnStep, use_fast_path


def check_setup(cfg: RunConfig, method: Method) -> None:
    """Reference and LoRA set-up errors, before any compute."""
    if cfg.method.reference_perturbation and not getattr(method, "cached_reference_parts", ()):
        raise ConfigError(f"method.reference_perturbation perturbs the cached reference log-probs of NPO/DPO "
                          f"(SimNPO App. B); method {method.name} has none")
    if isinstance(method, WeightEditMethod):
        if cfg.train.lora:
            raise ConfigError(f"method {method.name} edits the full weights; train.lora=true is not supported")
        return
    if cfg.method.reference not in ("initial", "none"):
        if not method.needs_reference:
            log.warning("warning: method.reference=%s is ignored: method %s uses no reference model",
                        cfg.method.reference, method.name)
        else:
            resolve_model(cfg.method.reference, what="method.reference")  # a bad path fails now, not after training
    if cfg.train.lora and method.forget.name == "rmu" and cfg.train.lora_target_modules:
        log.warning("warning: train.lora_target_modules is ignored: RMU adapts the MLP down-projections of layers "
                    "ℓ−2..ℓ, the parameters it trains without LoRA")
    if cfg.method.reference == "none" and method.needs_reference:
        what = "KL regularizer" if method.needs_reference_model else f"{method.forget.name.upper()} objective"
        raise ConfigError(f"method {method.name}: the {what} needs a reference model but method.reference=none; "
                          "use method.reference=initial (the model before unlearning) or a model path")


@dataclass
class Session:
    """Everything a method's procedure works with."""

    cfg: RunConfig
    method: Any
    model: torch.nn.Module
    tokenizer: Any
    parts: PartData
    accelerator: Accelerator
    run: RunDirectory
    settings: LoopSettings
    hook: EpochHook | None
    resume: bool
    fingerprint: dict[str, Any]
    step_hook: StepHook | None = None
    """Called after every optimizer step of a loss method (e.g. the divergence probe of SimNPO App. G)."""
    adapter: tuple[Any, dict[str, torch.Tensor]] | None = None
    """A LoRA run's adapter (its peft config and weights), kept before the merge so the saved model can hold it."""
    cache: SharedCache | None = None
    """The cache shared with other runs from the same model and data (``cache_dir``)."""
    data: Any = None
    """The benchmark's training data (its forget records, for generated answers)."""
    provenance: dict[str, Any] | None = None


def reference_weights(cfg: RunConfig, cache: SharedCache) -> str | None:
    """The weights digest of the model NPO/DPO's reference log-probs come from: the starting model's, or that of
    ``method.reference`` (None when it has none: its log-probs are then not shared)."""
    if cfg.method.reference == "initial":
        return cache.model_sha256
    from unlearn.provenance import model_identity

    resolved = resolve_model(cfg.method.reference, what="method.reference")
    return model_identity(cfg.method.reference, str(resolved.path) if resolved.is_local else None,
                          resolved.gguf_file, resolved.is_local)["weights_sha256"]


@dataclass
class MethodState:
    """A loss method's state across steps as the training loop sees it (:class:`unlearn.train.loop.TrainState`):
    the objectives' own, with an epoch-end measure over the run's items."""

    method: LossMethod
    step: UnlearnStep
    batch_size: int

    def state_dict(self) -> dict[str, Any]:
        return self.method.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.method.load_state_dict(state)

    def after_step(self, logs: dict[str, float], epoch: int) -> dict[str, float]:
        return self.method.after_step(logs, epoch)

    def after_epoch(self, epoch: int, model: torch.nn.Module) -> dict[str, float]:
        return self.method.after_epoch(epoch, lambda fn: self.step.measure(model, fn, self.batch_size))


def train_loss_method(s: Session) -> tuple[torch.nn.Module, LoopResult]:
    """Cache NPO/DPO reference log-probs (then free a separate reference), wrap LoRA, train on the method's loss."""
    cfg, method, model, device = s.cfg, s.method, s.model, s.accelerator.device
    for request in method.generated_answers:  # AltPO's alternatives: before the reference log-probs need them
        formatter = ChatFormatter(s.tokenizer, cfg.model.template, cfg.model.system_prompt)
        s.parts = attach_generated(s.parts, request, model=model, formatter=formatter, records=s.data.forget,
                                   cfg=cfg, run=s.run, accelerator=s.accelerator, provenance=s.provenance or {})
    separate_ref = None
    if cfg.method.reference not in ("initial", "none") and method.needs_reference:
        separate_ref, _ = load_model_and_tokenizer(cfg.method.reference,
                                                   trust_remote_code=cfg.model.trust_remote_code)
        check_model_tokenizer(separate_ref, s.tokenizer, f"reference model {cfg.method.reference}")
        separate_ref.to(device)
    ref_logp = None
    if method.cached_reference_parts:
        ref_model = separate_ref if separate_ref is not None else model
        if cfg.method.reference_perturbation:  # SimNPO App. B: a copy, only while the log-probs are computed
            ref_model = perturbed_reference(ref_model, cfg.method.reference_perturbation, cfg.train.seed)

        def compute() -> dict[str, torch.Tensor]:
            with s.accelerator.autocast():
                return cached_reference_logp(ref_model, s.parts, method.cached_reference_parts, cfg.eval.batch_size,
                                             device, method.padded_parts)

        ref_logp = compute() if s.cache is None else s.cache.reference_logp(
            compute, reference_sha256=reference_weights(cfg, s.cache),
            parts=parts_digest(s.parts, method.cached_reference_parts, method.padded_parts),
            settings={"batch_size": cfg.eval.batch_size, "sort_by_length": True,
                      "dtype": str(next(ref_model.parameters()).dtype),
                      "perturbation": ([cfg.method.reference_perturbation, cfg.train.seed]
                                       if cfg.method.reference_perturbation else None)})
    if cfg.method.reference_perturbation:
        del ref_model
        gc.collect()
    if separate_ref is not None and not method.needs_reference_model:
        del separate_ref
        separate_ref = None
        gc.collect()

    if cfg.train.lora:
        model = _lora(model, cfg, method.lora_targets)
    reference = FrozenReference.for_model(model, separate_ref) if method.needs_reference_model else None
    step = UnlearnStep(method, s.parts, device, ref_logp, reference, fast=use_fast_path(cfg.train.fast_step, model))
    result = train_loop(model, step, len(s.parts), s.settings, s.run, s.accelerator, on_epoch_end=s.hook,
                        resume=s.resume, fingerprint=s.fingerprint, on_step_end=s.step_hook,
                        lengths=s.parts.item_lengths,
                        state=MethodState(method, step, s.settings.batch_size) if method.stateful else None)
    model = s.accelerator.unwrap_model(model)
    del reference
    if cfg.train.lora:
        from peft import get_peft_model_state_dict

        s.adapter = (model.peft_config["default"],
                     {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()})
        model = model.merge_and_unload()
    return model, result


def apply_weight_edit(s: Session) -> tuple[torch.nn.Module, LoopResult]:
    """Fine-tune on the method's part (SFT), then replace the weights by ``method.edit(θ₀, θ_ft)``. Per-epoch
    evaluation sees the edited model of that epoch."""
    method, model = s.method, s.model
    base = {n: p.detach().clone() for n, p in model.named_parameters()}

    def edited(m: torch.nn.Module) -> dict[str, torch.Tensor]:
        return method.edit(base, {n: p.detach() for n, p in m.named_parameters()})

    def load(m: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for n, p in m.named_parameters():
                p.copy_(weights[n])

    hook = None
    if s.hook is not None:
        def hook(epoch: int, m: torch.nn.Module) -> dict:
            tuned = {n: p.detach().clone() for n, p in m.named_parameters()}
            load(m, edited(m))
            try:
                return s.hook(epoch, m)
            finally:
                load(m, tuned)

    step = FinetuneStep(s.parts, s.accelerator.device, part=method.train_part,
                        fast=use_fast_path(s.cfg.train.fast_step, model))
    result = train_loop(model, step, len(s.parts), s.settings, s.run, s.accelerator, on_epoch_end=hook,
                        resume=s.resume, fingerprint=s.fingerprint, lengths=s.parts.item_lengths)
    model = s.accelerator.unwrap_model(model)
    load(model, edited(model))
    return model, result


PROCEDURES: dict[str, Callable[[Session], tuple[torch.nn.Module, LoopResult]]] = {
    LossMethod.kind: train_loss_method,
    WeightEditMethod.kind: apply_weight_edit,
}


def _lora(model: torch.nn.Module, cfg: RunConfig, targets: Sequence[str] | None = None) -> torch.nn.Module:
    """Wrap ``model`` in LoRA adapters on ``targets`` (a method's own choice, e.g. RMU's three down-projections),
    else on ``train.lora_target_modules`` (peft's default when unset). peft freezes every base weight."""
    from peft import LoraConfig, get_peft_model

    t = cfg.train
    config = LoraConfig(r=t.lora_r, lora_alpha=t.lora_alpha, lora_dropout=t.lora_dropout,
                        target_modules=list(targets) if targets else t.lora_target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def method_parts(method: Method) -> tuple[str, ...]:
    return method.parts if isinstance(method, LossMethod) else (method.train_part,)


def _check_generation_budgets(method: Method, formatter: ChatFormatter, data: Any, max_length: int) -> None:
    for request in method.generated_answers if isinstance(method, LossMethod) else ():
        check_request(request, formatter, data.forget, max_length)


def check_generated_answers(plan: RunPlan) -> None:
    """What ``unlearn run`` checks of a method's generated answers (AltPO's budget) when it encodes its inputs, from
    the tokenizer and the forget data alone, no weights: a sweep calls it for every grid run before the first one
    starts, so that one run's budget does not stop the sweep after the others have run."""
    method = plan.method
    requests = method.generated_answers if isinstance(method, LossMethod) else ()
    if not requests:
        return
    data = open_data(plan)
    data.prepare_unlearning(method_parts(method), method.idk_users, method.name)
    _check_generation_budgets(method, open_model(plan.cfg).formatter, data, plan.cfg.data.max_length)


def run_unlearning(plan: RunPlan | RunConfig, resume: bool = False, overwrite: bool = False,
                   step_hook: Callable[[Session], StepHook] | None = None) -> Path:
    """Unlearn with the planned method (a configuration is planned first) and evaluate. ``resume`` continues from
    the run directory's checkpoint; ``overwrite`` replaces a run already in it (see :class:`RunSetup`);
    ``step_hook(session)`` makes a hook called after every optimizer step (loss methods)."""
    timer = Timer()
    plan = as_plan(plan, "unlearn")
    cfg, method = plan.cfg, plan.method
    assert method is not None  # an unlearning plan always has its method
    check_setup(cfg, method)
    users = method.idk_users if isinstance(method, LossMethod) else ()

    def on_weights(model: torch.nn.Module) -> None:
        if isinstance(method, LossMethod):
            method.prepare(model, cfg.train.seed)  # RMU: its layer fits the model? control vector, trainable params

    def encode(data: Any, formatter: ChatFormatter) -> Any:
        parts = data.unlearning_parts(formatter, method_parts(method))
        _check_generation_budgets(method, formatter, data, cfg.data.max_length)  # AltPO: before the weights load
        return parts

    training = Training(read=lambda data: data.prepare_unlearning(method_parts(method), users, method.name),
                        encode=encode, desc=method.name, on_weights=on_weights)
    s = prepare_stage(plan, training, resume, overwrite, timer)
    if method.recipe is not None:
        log.info("%s: %s", method.name, method.recipe.description)
    session = Session(cfg, method, s.model, s.tokenizer, s.parts, s.accelerator, s.run, s.settings, s.hook, resume,
                      s.fingerprint, cache=s.cache, data=s.data, provenance=s.provenance)
    if step_hook is not None:
        session.step_hook = step_hook(session)
    model, result = PROCEDURES[method.kind](session)
    s.finish(model, adapter=session.adapter, info=RunInfo(stage="unlearn", method=method.describe(),
                            # a corpus file (WMDP) has no split name
                            forget_split=cfg.data.forget_split or cfg.data.forget_corpus,
                            n_forget=s.data.n_forget_items,  # text corpora: the chunks, known once tokenized
                            optimizer_steps=result.global_step, train_seconds=round(result.seconds, 2),
                            resumed_from_step=result.resumed_from))
    return s.run.path
