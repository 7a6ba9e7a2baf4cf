"""Methods = one forget objective × one retain regularizer × weights, looked up by name (SPEC §1–2).

``build_method("simnpo+gd", ...)`` returns a :class:`Method` whose ``loss(step)`` gives
``forget_weight · L_forget + retain_weight · L_retain``. Each part comes from a registry; a method's
defaults (β, γ, weights) live next to its objective. No string dispatch beyond the registry lookup.

Batch parts an objective may ask for (one forward pass each):
``forget`` (forget question + answer), ``forget_idk`` (forget question + paired IDK template),
``retain`` (paired retain question + answer), ``retain_idk`` (retain question + the same IDK template).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from unlearn.errors import ConfigError
from unlearn.objectives import forget as F
from unlearn.objectives import retain as R
from unlearn.objectives.sequence import SequenceStats

PARTS = ("forget", "forget_idk", "retain", "retain_idk")


@dataclass
class PartOutput:
    """One forward pass on one batch part: per-sample stats, and logits/masks when an objective needs them."""

    stats: SequenceStats
    batch: dict[str, torch.Tensor]
    logits: torch.Tensor | None = None


@dataclass
class StepInputs:
    """Everything an objective may read for one micro-batch."""

    parts: dict[str, PartOutput]
    ref_logp: dict[str, torch.Tensor] = field(default_factory=dict)  # cached per forget item (NPO, DPO)
    ref_logits: dict[str, torch.Tensor] = field(default_factory=dict)  # per step (KL)


class Objective:
    """Common declaration of what an objective needs from the training step."""

    name: ClassVar[str]
    summary: ClassVar[str]
    parts: ClassVar[tuple[str, ...]] = ()
    reference_parts: ClassVar[tuple[str, ...]] = ()  # cached reference log-probs, computed once
    logits_parts: ClassVar[tuple[str, ...]] = ()  # parts whose logits the loss reads
    needs_reference_model: ClassVar[bool] = False  # a frozen reference at every step (KL)
    needs_idk: ClassVar[bool] = False

    @dataclass
    class Params:
        pass

    def __init__(self, params: Any):
        self.params = params

    def padded_parts(self) -> tuple[str, ...]:
        """Parts that must be padded to ``max_length`` (to reproduce reference code that did so)."""
        return ()

    def loss(self, step: StepInputs) -> torch.Tensor:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------- forget
class ForgetObjective(Objective):
    targeted: ClassVar[bool] = False

    def __init__(self, params: Any, forget_split: str | None = None):
        super().__init__(params)

    def default_forget_weight(self, forget_split: str | None) -> float:
        return 1.0


class GA(ForgetObjective):
    name = "ga"
    summary = "gradient ascent, −M(forget)"
    parts = ("forget",)

    def loss(self, step: StepInputs) -> torch.Tensor:
        return F.ga_loss(step.parts["forget"].stats)


class NPO(ForgetObjective):
    name = "npo"
    summary = "negative preference optimization against the cached reference log-probs"
    parts = ("forget",)
    reference_parts = ("forget",)

    @dataclass
    class Params:
        beta: float = 0.1
        """Inverse temperature β (SPEC §1)."""

    def loss(self, step: StepInputs) -> torch.Tensor:
        return F.npo_loss(step.parts["forget"].stats, step.ref_logp["forget"], self.params.beta)


class SimNPO(ForgetObjective):
    name = "simnpo"
    summary = "reference-free, length-normalised NPO (paper form, γ inside σ)"
    parts = ("forget",)

    @dataclass
    class Params:
        beta: float | None = None
        """β; default 2.5 on forget05, 4.5 on forget10 (SPEC §1), 2.5 otherwise."""
        gamma: float = 0.0
        """Reward margin γ in the paper's form (γ_paper = β·γ_code)."""

    def __init__(self, params: Any, forget_split: str | None = None):
        if params.beta is None:
            params = dataclasses.replace(params, beta=self.default_beta(forget_split))
        super().__init__(params, forget_split)

    @staticmethod
    def default_beta(forget_split: str | None) -> float:
        """SPEC §1: β = 2.5 on forget05, 4.5 on forget10, 2.5 otherwise."""
        return 4.5 if forget_split == "forget10" else 2.5

    def default_forget_weight(self, forget_split: str | None) -> float:
        return 0.1375 if forget_split == "forget05" else 0.125

    def loss(self, step: StepInputs) -> torch.Tensor:
        return F.simnpo_loss(step.parts["forget"].stats, self.params.beta, self.params.gamma)


class WeightedGA(ForgetObjective):
    name = "wga"
    summary = "length-weighted gradient ascent, SimNPO's β→0 limit (W-GradDiff with +gd)"
    parts = ("forget",)

    def loss(self, step: StepInputs) -> torch.Tensor:
        return F.weighted_ga_loss(step.parts["forget"].stats)


class IDK(ForgetObjective):
    name = "idk"
    summary = "fine-tune the forget questions on refusal templates"
    parts = ("forget_idk",)
    needs_idk = True
    targeted = True

    def loss(self, step: StepInputs) -> torch.Tensor:
        return F.idk_loss(step.parts["forget_idk"].stats)


class DPO(ForgetObjective):
    name = "dpo"
    summary = "DPO preferring the refusal over the forget answer"
    parts = ("forget", "forget_idk")
    reference_parts = ("forget", "forget_idk")
    needs_idk = True
    targeted = True

    @dataclass
    class Params:
        beta: float = 0.1
        """Inverse temperature β (SPEC §1)."""

    def loss(self, step: StepInputs) -> torch.Tensor:
        return F.dpo_loss(step.parts["forget_idk"].stats, step.ref_logp["forget_idk"],
                          step.parts["forget"].stats, step.ref_logp["forget"], self.params.beta)


ME_SCOPES = ("prompt_answer", "answer", "all_positions")


class ME(ForgetObjective):
    name = "me"
    summary = "maximum entropy: per-token KL to the uniform distribution on the forget set"
    parts = ("forget",)
    logits_parts = ("forget",)

    @dataclass
    class Params:
        me_direction: str = "model_to_uniform"
        """``model_to_uniform`` = KL(P‖U) (SPEC), ``uniform_to_model`` = the reference code's KL(U‖P)."""
        me_scope: str = "prompt_answer"
        """Positions averaged: ``prompt_answer`` (paper), ``answer``, ``all_positions`` (padded to max_length)."""

    def __init__(self, params: Any, forget_split: str | None = None):
        if params.me_direction not in F.ME_DIRECTIONS:
            raise ConfigError(f"forget.me_direction must be one of {F.ME_DIRECTIONS}, got {params.me_direction!r}")
        if params.me_scope not in ME_SCOPES:
            raise ConfigError(f"forget.me_scope must be one of {ME_SCOPES}, got {params.me_scope!r}")
        super().__init__(params, forget_split)

    def default_forget_weight(self, forget_split: str | None) -> float:
        return 0.1  # α on TOFU (closer-look)

    def padded_parts(self) -> tuple[str, ...]:
        return ("forget",) if self.params.me_scope == "all_positions" else ()

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
    pass


class NoRegularizer(Regularizer):
    name = "none"
    summary = "no retain term"

    def loss(self, step: StepInputs) -> torch.Tensor:
        first = next(iter(step.parts.values()))
        return torch.zeros((), device=first.stats.nll_sum.device)


class GD(Regularizer):
    name = "gd"
    summary = "gradient descent on the retain set, M(retain)"
    parts = ("retain",)

    def loss(self, step: StepInputs) -> torch.Tensor:
        return R.gd_loss(step.parts["retain"].stats)


KL_POSITIONS = ("non_pad", "all_padded")


class KL(Regularizer):
    name = "kl"
    summary = "KL(π_ref ‖ π_θ) on retain inputs; needs a frozen reference at every step"
    parts = ("retain",)
    logits_parts = ("retain",)
    needs_reference_model = True

    @dataclass
    class Params:
        kl_positions: str = "non_pad"
        """``non_pad`` (SPEC) or ``all_padded`` (the reference code: every position up to max_length)."""

    def __init__(self, params: Any):
        if params.kl_positions not in KL_POSITIONS:
            raise ConfigError(f"retain.kl_positions must be one of {KL_POSITIONS}, got {params.kl_positions!r}")
        super().__init__(params)

    def padded_parts(self) -> tuple[str, ...]:
        return ("retain",) if self.params.kl_positions == "all_padded" else ()

    def loss(self, step: StepInputs) -> torch.Tensor:
        part = step.parts["retain"]
        if self.params.kl_positions == "non_pad":
            mask = part.batch["attention_mask"]
        else:
            mask = torch.ones(part.logits.shape[:2], dtype=torch.bool, device=part.logits.device)
        return R.kl_loss(part.logits, step.ref_logits["retain"], mask)


class AP(Regularizer):
    name = "ap"
    summary = "answer preservation: prefer the retain answer over the IDK template (no reference)"
    parts = ("retain", "retain_idk")
    needs_idk = True

    @dataclass
    class Params:
        beta: float = 0.1
        """Inverse temperature β (SPEC §2; the loss is scaled by 1/β)."""

    def loss(self, step: StepInputs) -> torch.Tensor:
        return R.ap_loss(step.parts["retain"].stats, step.parts["retain_idk"].stats, self.params.beta)


FORGET_OBJECTIVES: dict[str, type[ForgetObjective]] = {
    cls.name: cls for cls in (GA, NPO, SimNPO, WeightedGA, IDK, DPO, ME)
}
REGULARIZERS: dict[str, type[Regularizer]] = {cls.name: cls for cls in (NoRegularizer, GD, KL, AP)}
ALIASES = {"graddiff": "ga+gd", "w-graddiff": "wga+gd", "wgraddiff": "wga+gd"}


# ---------------------------------------------------------------------------------------------- method
@dataclass
class Method:
    name: str
    forget: ForgetObjective
    regularizer: Regularizer
    forget_weight: float
    retain_weight: float

    @property
    def parts(self) -> tuple[str, ...]:
        wanted = set(self.forget.parts) | set(self.regularizer.parts)
        return tuple(p for p in PARTS if p in wanted)

    @property
    def reference_parts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.forget.reference_parts + self.regularizer.reference_parts))

    @property
    def logits_parts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.forget.logits_parts + self.regularizer.logits_parts))

    @property
    def padded_parts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.forget.padded_parts() + self.regularizer.padded_parts()))

    @property
    def needs_reference_model(self) -> bool:
        return self.forget.needs_reference_model or self.regularizer.needs_reference_model

    @property
    def needs_idk(self) -> bool:
        return self.forget.needs_idk or self.regularizer.needs_idk

    @property
    def needs_retain(self) -> bool:
        return any(p.startswith("retain") for p in self.parts)

    def loss(self, step: StepInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its parts (unweighted) for logging."""
        forget_loss = self.forget.loss(step)
        retain_loss = self.regularizer.loss(step)
        total = self.forget_weight * forget_loss + self.retain_weight * retain_loss
        return total, {"forget_loss": forget_loss.detach(), "retain_loss": retain_loss.detach()}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "forget": {"objective": self.forget.name, **dataclasses.asdict(self.forget.params)},
            "retain": {"regularizer": self.regularizer.name, **dataclasses.asdict(self.regularizer.params)},
            "forget_weight": self.forget_weight,
            "retain_weight": self.retain_weight,
        }


def _params(cls: type[Objective], given: Mapping[str, Any], section: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise ConfigError(f"{section} '{cls.name}' has no parameter(s) {', '.join(unknown)}; known: {known}")
    return cls.Params(**given)


def parse_method_name(name: str) -> tuple[str, str]:
    """``"simnpo+gd"`` → ("simnpo", "gd"); a bare forget name has no regularizer."""
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    forget_name, plus, reg_name = key.partition("+")
    reg_name = reg_name if plus else "none"
    if forget_name not in FORGET_OBJECTIVES or reg_name not in REGULARIZERS or "+" in reg_name:
        raise ConfigError(
            f"unknown method {name!r}: write FORGET+REGULARIZER with FORGET in {{{', '.join(FORGET_OBJECTIVES)}}} "
            f"and REGULARIZER in {{{', '.join(REGULARIZERS)}}} (e.g. simnpo+gd, npo+kl, idk+ap, ga)"
        )
    return forget_name, reg_name


def build_method(
    name: str,
    forget_params: Mapping[str, Any] | None = None,
    retain_params: Mapping[str, Any] | None = None,
    forget_weight: float | None = None,
    retain_weight: float | None = None,
    forget_split: str | None = None,
) -> Method:
    """Compose a method by name. ``forget_split`` selects split-dependent defaults (SimNPO β, weights)."""
    forget_name, reg_name = parse_method_name(name)
    forget_cls = FORGET_OBJECTIVES[forget_name]
    fparams = _params(forget_cls, forget_params or {}, "forget objective")
    forget = forget_cls(fparams, forget_split)
    reg_cls = REGULARIZERS[reg_name]
    regularizer = reg_cls(_params(reg_cls, retain_params or {}, "regularizer"))
    if forget_weight is None:
        forget_weight = forget.default_forget_weight(forget_split)
    if retain_weight is None:
        retain_weight = 1.0
    for label, w in (("forget_weight", forget_weight), ("retain_weight", retain_weight)):
        if not isinstance(w, (int, float)) or w < 0:
            raise ConfigError(f"method.{label} must be a non-negative number, got {w!r}")
    canonical = forget_name if reg_name == "none" else f"{forget_name}+{reg_name}"
    return Method(canonical, forget, regularizer, float(forget_weight), float(retain_weight))


def describe_registry() -> str:
    """Human-readable list of objectives and regularizers (for ``unlearn methods`` / --help)."""
    lines = ["Forget objectives:"]
    lines += [f"  {n:8s} {c.summary}" for n, c in FORGET_OBJECTIVES.items()]
    lines.append("Regularizers:")
    lines += [f"  {n:8s} {c.summary}" for n, c in REGULARIZERS.items()]
    return "\n".join(lines)
