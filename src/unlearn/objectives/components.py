"""Forget objectives and retain regularizers: each declares its parameters (neutral defaults), what it reads from a
step (:class:`~unlearn.objectives.needs.Need`) and its loss, a pure function from :mod:`.forget` / :mod:`.retain`.

Paper-specific values (SimNPO's β and weights on TOFU, ME's α, ...) are recipes (:mod:`unlearn.config.recipes`),
not defaults here. Formulas: docs/formulas.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from unlearn.errors import ConfigError
from unlearn.objectives import forget as F
from unlearn.objectives import retain as R
from unlearn.objectives.needs import GeneratedAnswers, Need, StepInputs
from unlearn.registry import Registry

Measure = Callable[[Callable[[StepInputs], torch.Tensor]], float]
"""``measure(fn)``: the mean of ``fn(step)`` over every item's micro-batches with the current model, no gradients."""


def param(default: Any, doc: str, *, gt: float | None = None, ge: float | None = None,
          choices: tuple[str, ...] | None = None) -> Any:
    """A method parameter: its neutral default, one line of documentation, and its valid values (checked by
    :func:`make_params` when the method is built): a number ``> gt`` / ``>= ge``, or one of ``choices``."""
    return field(default=default, metadata={"doc": doc, "gt": gt, "ge": ge, "choices": choices})


class Objective:
    """A loss term with parameters. ``section`` names it in messages; ``config_section`` is the config section
    holding its parameters (``forget`` or ``retain``)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    section: ClassVar[str]
    config_section: ClassVar[str] = "forget"

    @dataclass
    class Params:
        pass

    def __init__(self, params: Any):
        self.params = params

    def needs(self) -> tuple[Need, ...]:
        return ()

    def check_pairing(self, other: Objective) -> None:
        """Raise ConfigError if this objective cannot be combined with ``other``."""

    def check_weights(self, forget_weight: float, retain_weight: float) -> None:
        """Raise ConfigError if the method's weights do not suit this objective (e.g. a term weighted by its own
        dual variable)."""

    def loss(self, step: StepInputs) -> torch.Tensor:
        raise NotImplementedError

    def generated_answers(self) -> GeneratedAnswers | None:
        """Answers the starting model must write before training (a generated batch part, e.g. AltPO's
        alternatives); None for objectives that read only the data."""
        return None

    # ------------------------------------------------------------------ values logged per step
    def record(self, **values: torch.Tensor) -> None:
        """Log ``values`` (scalars of this micro-batch) in the train log beside the losses, averaged over the
        step's micro-batches and processes as the losses are; call it from :meth:`loss`."""
        self.__dict__.setdefault("_records", {}).update({name: v.detach() for name, v in values.items()})

    def take_records(self) -> dict[str, torch.Tensor]:
        """The values :meth:`record` kept since the last call (and forget them)."""
        return self.__dict__.pop("_records", {})

    # ------------------------------------------------------------------ state across steps
    # An objective with state that training changes (PDU's dual variable) overrides these four; the training loop
    # calls them, stores :meth:`state_dict` in every checkpoint and restores it on --resume (docs/extending.md).
    def state_dict(self) -> dict[str, float]:
        """This objective's state across steps, JSON numbers (stored in the checkpoint); none by default."""
        return {}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        """Restore :meth:`state_dict` (resuming from a checkpoint)."""

    def after_step(self, logs: Mapping[str, float], epoch: int) -> dict[str, float]:
        """Called after every optimizer step with the step's logged values (the mean losses and :meth:`record` values
        over its micro-batches and processes) and the 0-based epoch; returns values to log for this step."""
        return {}

    def after_epoch(self, epoch: int, measure: Measure) -> dict[str, float]:
        """Called after epoch ``epoch`` (0-based) ends, before its evaluation and checkpoint. ``measure(fn)`` is the
        mean of ``fn(step)`` over the micro-batches of every item (no gradients, the model as it is now); returns
        values for the epoch's record."""
        return {}


def make_params(cls: Any, given: Mapping[str, Any]) -> Any:
    """``cls.Params`` from a config section, every value checked against its declaration (type, range, choices);
    an unknown name or a bad value is a ConfigError naming the key (``forget.beta``)."""
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise ConfigError(f"{cls.section} '{cls.name}' has no parameter(s) {', '.join(unknown)}; known: {known}")
    values = {name: _checked(fields[name], value, f"{cls.config_section}.{name}", cls.name)
              for name, value in given.items()}
    return cls.Params(**values)


def _checked(f: dataclasses.Field, value: Any, key: str, owner: str) -> Any:
    meta = f.metadata
    if meta.get("choices"):
        if value not in meta["choices"]:
            raise ConfigError(f"{key} ({owner}) must be one of {', '.join(meta['choices'])}, got {value!r}")
        return value
    if isinstance(f.default, int) and not isinstance(f.default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} ({owner}) must be a whole number, got {value!r}")
        if meta.get("ge") is not None and not value >= meta["ge"]:
            raise ConfigError(f"{key} ({owner}) must be ≥ {meta['ge']:g}, got {value}")
        if meta.get("gt") is not None and not value > meta["gt"]:
            raise ConfigError(f"{key} ({owner}) must be > {meta['gt']:g}, got {value}")
        return value
    if isinstance(f.default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{key} ({owner}) must be a number, got {value!r}")
        value = float(value)
        if meta.get("gt") is not None and not value > meta["gt"]:
            raise ConfigError(f"{key} ({owner}) must be > {meta['gt']:g}, got {value:g}")
        if meta.get("ge") is not None and not value >= meta["ge"]:
            raise ConfigError(f"{key} ({owner}) must be ≥ {meta['ge']:g}, got {value:g}")
    return value


def describe_params(cls: Any) -> str:
    """``beta=0.1 (> 0), gamma=0 (≥ 0)`` for listings."""
    parts = []
    for f in dataclasses.fields(cls.Params):
        meta = f.metadata
        rule = (f"one of {'/'.join(meta['choices'])}" if meta.get("choices") else
                f"> {meta['gt']:g}" if meta.get("gt") is not None else
                f"≥ {meta['ge']:g}" if meta.get("ge") is not None else "")
        # a default outside its own rule is a placeholder: the value must be given (PDU's ε)
        unmet = ((meta.get("gt") is not None and not f.default > meta["gt"])
                 or (meta.get("ge") is not None and not f.default >= meta["ge"]))
        parts.append(f"{f.name}={'required' if unmet else repr(f.default)}" + (f" ({rule})" if rule else ""))
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------- forget
class ForgetObjective(Objective):
    section = "forget objective"


class GA(ForgetObjective):
    name = "ga"
    summary = "gradient ascent, −M(forget)"

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget"),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        return F.ga_loss(step.parts["forget"].stats)


class NPO(ForgetObjective):
    name = "npo"
    summary = "negative preference optimization against the cached reference log-probs"

    @dataclass
    class Params:
        beta: float = param(0.1, "inverse temperature β (the NPO paper's value)", gt=0)

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget", reference_logp=True),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        return F.npo_loss(step.parts["forget"].stats, step.reference["forget"].logp, self.params.beta)


class SimNPO(ForgetObjective):
    name = "simnpo"
    summary = "reference-free, length-normalised NPO (paper form, γ inside σ)"

    @dataclass
    class Params:
        beta: float = param(2.5, "β; 2.5 is the middle of SimNPO's TOFU Forget05 search range [1.5, 3.5] (App. I.2)",
                            gt=0)
        gamma: float = param(0.0, "reward margin γ in the paper's form (γ_paper = β·γ_code); the paper takes γ ≥ 0",
                             ge=0)

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget"),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        return F.simnpo_loss(step.parts["forget"].stats, self.params.beta, self.params.gamma)


class LengthWeightedGA(ForgetObjective):
    name = "lwga"
    summary = ("length-weighted gradient ascent, SimNPO's β→0 limit (its W-GradDiff with +gd; named `wga` before "
               "0.2, which is now the field's token-weighted WGA)")

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget"),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        return F.weighted_ga_loss(step.parts["forget"].stats)


IDK_FORMS = ("closer_look", "tofu")


class IDK(ForgetObjective):
    name = "idk"
    summary = "fine-tune the forget questions on refusal templates"

    @dataclass
    class Params:
        form: str = param("closer_look", "`closer_look`: M(forget + IDK answer); `tofu`: TOFU's loss, one token "
                                         "mean pooled with the paired retain samples (no regularizer)",
                          choices=IDK_FORMS)

    def needs(self) -> tuple[Need, ...]:
        if self.params.form == "tofu":
            return Need("forget_idk"), Need("retain")
        return (Need("forget_idk"),)

    def check_pairing(self, other: Objective) -> None:
        if self.params.form == "tofu" and not isinstance(other, NoRegularizer):
            raise ConfigError(f"forget.form=tofu is TOFU's original IDK loss, which already includes the retain "
                              f"samples (one token mean over both); use method=idk, not idk+{other.name}")

    def loss(self, step: StepInputs) -> torch.Tensor:
        if self.params.form == "tofu":
            return F.idk_pooled_loss(step.parts["forget_idk"].stats, step.parts["retain"].stats)
        return F.idk_loss(step.parts["forget_idk"].stats)


class DPO(ForgetObjective):
    name = "dpo"
    summary = "DPO preferring the refusal over the forget answer"

    @dataclass
    class Params:
        beta: float = param(0.1, "inverse temperature β", gt=0)

    def needs(self) -> tuple[Need, ...]:
        return Need("forget", reference_logp=True), Need("forget_idk", reference_logp=True)

    def loss(self, step: StepInputs) -> torch.Tensor:
        return F.dpo_loss(step.parts["forget_idk"].stats, step.reference["forget_idk"].logp,
                          step.parts["forget"].stats, step.reference["forget"].logp, self.params.beta)


ME_SCOPES = ("prompt_answer", "answer", "all_positions")


class ME(ForgetObjective):
    name = "me"
    summary = "maximum entropy: per-token KL to the uniform distribution on the forget set"

    @dataclass
    class Params:
        me_direction: str = param("model_to_uniform", "`model_to_uniform` = KL(P‖U) (closer-look eq. 6), "
                                                      "`uniform_to_model` = the reference code's KL(U‖P)",
                                  choices=F.ME_DIRECTIONS)
        me_scope: str = param("prompt_answer", "positions averaged: `prompt_answer` (paper), `answer`, "
                                               "`all_positions` (padded to max_length)", choices=ME_SCOPES)

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget", logits=True, pad_to_max_length=self.params.me_scope == "all_positions"),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        part = step.parts["forget"]
        logits = part.logits[:, :-1]
        if self.params.me_scope == "prompt_answer":  # every position that predicts a real token
            mask = part.batch["attention_mask"][:, 1:]
        elif self.params.me_scope == "answer":
            mask = part.batch["labels"][:, 1:] != -100
        else:
            mask = torch.ones(logits.shape[:2], dtype=torch.bool, device=logits.device)
        return F.me_loss(logits, mask, self.params.me_direction)


# ---------------------------------------------------------------------------------------------- retain
class Regularizer(Objective):
    section = "regularizer"
    config_section = "retain"


class NoRegularizer(Regularizer):
    name = "none"
    summary = "no retain term"

    def loss(self, step: StepInputs) -> torch.Tensor:
        first = next(iter(step.parts.values()))
        return torch.zeros((), device=first.stats.nll_sum.device)


class GD(Regularizer):
    name = "gd"
    summary = "gradient descent on the retain set, M(retain)"

    def needs(self) -> tuple[Need, ...]:
        return (Need("retain"),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        return R.gd_loss(step.parts["retain"].stats)


KL_POSITIONS = ("non_pad", "all_padded")


class KL(Regularizer):
    name = "kl"
    summary = "KL(π_ref ‖ π_θ) on retain inputs; needs a frozen reference at every step"

    @dataclass
    class Params:
        kl_positions: str = param("non_pad", "`non_pad` (ours) or `all_padded` (the reference code: every "
                                             "position up to max_length)", choices=KL_POSITIONS)

    def needs(self) -> tuple[Need, ...]:
        return (Need("retain", logits=True, reference_outputs=True,
                     pad_to_max_length=self.params.kl_positions == "all_padded"),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        part = step.parts["retain"]
        if self.params.kl_positions == "non_pad":
            mask = part.batch["attention_mask"]
        else:
            mask = torch.ones(part.logits.shape[:2], dtype=torch.bool, device=part.logits.device)
        return R.kl_loss(part.logits, step.reference["retain"].logits, mask)


class AP(Regularizer):
    name = "ap"
    summary = "answer preservation: prefer the retain answer over the IDK template (no reference)"

    @dataclass
    class Params:
        beta: float = param(0.1, "inverse temperature β (closer-look App. D; the loss is scaled by 1/β)", gt=0)

    def needs(self) -> tuple[Need, ...]:
        return Need("retain"), Need("retain_idk")

    def loss(self, step: StepInputs) -> torch.Tensor:
        return R.ap_loss(step.parts["retain"].stats, step.parts["retain_idk"].stats, self.params.beta)


# ---------------------------------------------------------------------------------------------- RMU
RMU_REFERENCE_LAYER, RMU_REFERENCE_DEPTH = 7, 32  # WMDP's layer 7 of Zephyr-7B's 32


def rmu_layer(layer: int, n_layers: int) -> int:
    """The RMU layer ℓ: ``layer`` when ≥ 0, else layer 7 of 32 scaled to the model's depth; ℓ − 2 ≥ 0 and ℓ below the
    last layer (whose output HF returns after the final norm) are required."""
    chosen = layer if layer >= 0 else max(2, round(RMU_REFERENCE_LAYER * n_layers / RMU_REFERENCE_DEPTH))
    if not 2 <= chosen <= n_layers - 2:
        raise ConfigError(f"RMU layer {chosen} does not fit a model with {n_layers} layers: it trains layers ℓ−2..ℓ "
                          f"and reads the output of layer ℓ, so 2 ≤ ℓ ≤ {n_layers - 2} (forget.layer=…)")
    return chosen


def _decoder_layers(model: torch.nn.Module) -> int:
    config = getattr(model, "config", None)
    n = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
    if not n:
        raise ConfigError("RMU needs the model's layer count (config.num_hidden_layers)")
    return int(n)


class RMU(ForgetObjective):
    name = "rmu"
    summary = ("representation misdirection: push layer-ℓ activations of forget tokens toward c·û (a fixed random "
               "unit vector); trains only the MLP down-projections of layers ℓ−2..ℓ")

    @dataclass
    class Params:
        steering_coeff: float = param(6.5, "c, the norm of the control vector (WMDP's 6.5 for a 7B model)", gt=0)
        layer: int = param(-1, "ℓ (0-based decoder layer); −1 = layer 7 of 32 scaled to the model's depth")

    layer_resolved: int | None = None
    control: torch.Tensor | None = None
    trained_modules: tuple[str, ...] = ()  # the three down-projections; LoRA adapts exactly these

    def prepare(self, model: torch.nn.Module, seed: int) -> None:
        """Resolve ℓ, draw û (seeded, uniform in [0, 1)^d then normalised, as WMDP's code) and freeze every
        parameter but the down-projections of layers ℓ−2..ℓ (under LoRA, peft then adapts those three modules)."""
        self.layer_resolved = rmu_layer(int(self.params.layer), _decoder_layers(model))
        d = int(model.config.hidden_size)
        generator = torch.Generator().manual_seed(seed)
        u = torch.rand(d, generator=generator)
        self.control = self.params.steering_coeff * u / u.norm()
        wanted = {f"layers.{i}.mlp.down_proj.weight" for i in range(self.layer_resolved - 2, self.layer_resolved + 1)}
        trained = []
        for name, p in model.named_parameters():
            keep = any(name.endswith(w) for w in wanted)
            p.requires_grad_(keep)
            trained += [name] if keep else []
        if len(trained) != 3:
            raise ConfigError(f"RMU trains the MLP down-projections (…layers.N.mlp.down_proj.weight) of layers "
                              f"{self.layer_resolved - 2}..{self.layer_resolved}; found {len(trained)} in this model")
        self.trained_modules = tuple(name.removesuffix(".weight") for name in trained)

    def needs(self) -> tuple[Need, ...]:
        if self.layer_resolved is None:  # before prepare(): the layer is not known yet
            return (Need("forget"),)
        return (Need("forget", hidden_layer=self.layer_resolved + 1),)  # hidden_states[ℓ + 1] = layer ℓ's output

    def loss(self, step: StepInputs) -> torch.Tensor:
        part = step.parts["forget"]
        control = self.control.to(part.hidden.device, part.hidden.dtype)
        return F.rmu_forget_loss(part.hidden, control, part.batch["attention_mask"])


class ActivationPreservation(Regularizer):
    name = "act"
    summary = "RMU's retain term: keep layer-ℓ activations of retain tokens equal to the frozen model's"

    layer_resolved: int | None = None

    def prepare(self, model: torch.nn.Module, seed: int, layer: int | None = None) -> None:
        if layer is None:
            raise ConfigError("the `act` regularizer reads the layer of an RMU forget objective (use rmu+act)")
        self.layer_resolved = layer

    def check_pairing(self, other: Objective) -> None:
        if other.name != "rmu":
            raise ConfigError(f"the act regularizer preserves RMU's layer-ℓ activations; pair it with rmu, not "
                              f"{other.name}")

    def needs(self) -> tuple[Need, ...]:
        if self.layer_resolved is None:
            return (Need("retain", reference_outputs=True),)
        return (Need("retain", hidden_layer=self.layer_resolved + 1, reference_outputs=True),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        part = step.parts["retain"]
        return R.activation_loss(part.hidden, step.reference["retain"].hidden, part.batch["attention_mask"])


FORGET_OBJECTIVES: Registry[type[ForgetObjective]] = Registry("forget objective")
for _cls in (GA, NPO, SimNPO, LengthWeightedGA, IDK, DPO, ME, RMU):
    FORGET_OBJECTIVES.register(_cls.name, _cls)
REGULARIZERS: Registry[type[Regularizer]] = Registry("regularizer")
for _cls in (NoRegularizer, GD, KL, AP, ActivationPreservation):
    REGULARIZERS.register(_cls.name, _cls)
