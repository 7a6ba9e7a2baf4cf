"""Forget objectives and retain regularizers: each declares its parameters (neutral defaults), what it reads from a
step (:class:`~unlearn.objectives.needs.Need`) and its loss, a pure function from :mod:`.forget` / :mod:`.retain`.

Paper-specific values (SimNPO's β and weights on TOFU, ME's α, ...) are recipes (:mod:`unlearn.config.recipes`),
not defaults here. Formulas: docs/formulas.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from unlearn.errors import ConfigError
from unlearn.objectives import forget as F
from unlearn.objectives import retain as R
from unlearn.objectives.needs import Need, StepInputs


class Objective:
    """A loss term with parameters. ``section`` names the config section holding its parameters."""

    name: ClassVar[str]
    summary: ClassVar[str]
    section: ClassVar[str]

    @dataclass
    class Params:
        pass

    def __init__(self, params: Any):
        self.params = params

    def needs(self) -> tuple[Need, ...]:
        return ()

    def check_pairing(self, other: Objective) -> None:
        """Raise ConfigError if this objective cannot be combined with ``other``."""

    def loss(self, step: StepInputs) -> torch.Tensor:
        raise NotImplementedError


def make_params(cls: type[Objective], given: Mapping[str, Any]) -> Any:
    """``cls.Params`` from a config section; unknown names are a ConfigError listing the known ones."""
    fields = {f.name for f in dataclasses.fields(cls.Params)}
    unknown = sorted(set(given) - fields)
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise ConfigError(f"{cls.section} '{cls.name}' has no parameter(s) {', '.join(unknown)}; known: {known}")
    return cls.Params(**given)


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
        beta: float = 0.1
        """Inverse temperature β (the NPO paper's value)."""

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget", reference_logp=True),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        return F.npo_loss(step.parts["forget"].stats, step.reference["forget"].logp, self.params.beta)


class SimNPO(ForgetObjective):
    name = "simnpo"
    summary = "reference-free, length-normalised NPO (paper form, γ inside σ)"

    @dataclass
    class Params:
        beta: float = 2.5
        """β; neutral default 2.5, the middle of SimNPO's TOFU Forget05 search range [1.5, 3.5] (App. I.2)."""
        gamma: float = 0.0
        """Reward margin γ in the paper's form (γ_paper = β·γ_code)."""

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget"),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        return F.simnpo_loss(step.parts["forget"].stats, self.params.beta, self.params.gamma)


class WeightedGA(ForgetObjective):
    name = "wga"
    summary = "length-weighted gradient ascent, SimNPO's β→0 limit (W-GradDiff with +gd)"

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
        form: str = "closer_look"
        """``closer_look``: M(forget + IDK answer); ``tofu``: TOFU's loss, one token mean pooled with the paired
        retain samples (it already holds the retain term, so it takes no regularizer)."""

    def __init__(self, params: Any):
        if params.form not in IDK_FORMS:
            raise ConfigError(f"forget.form must be one of {IDK_FORMS}, got {params.form!r}")
        super().__init__(params)

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
        beta: float = 0.1
        """Inverse temperature β."""

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
        me_direction: str = "model_to_uniform"
        """``model_to_uniform`` = KL(P‖U) (closer-look eq. 6), ``uniform_to_model`` = the reference code's KL(U‖P)."""
        me_scope: str = "prompt_answer"
        """Positions averaged: ``prompt_answer`` (paper), ``answer``, ``all_positions`` (padded to max_length)."""

    def __init__(self, params: Any):
        if params.me_direction not in F.ME_DIRECTIONS:
            raise ConfigError(f"forget.me_direction must be one of {F.ME_DIRECTIONS}, got {params.me_direction!r}")
        if params.me_scope not in ME_SCOPES:
            raise ConfigError(f"forget.me_scope must be one of {ME_SCOPES}, got {params.me_scope!r}")
        super().__init__(params)

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
        kl_positions: str = "non_pad"
        """``non_pad`` (ours) or ``all_padded`` (the reference code: every position up to max_length)."""

    def __init__(self, params: Any):
        if params.kl_positions not in KL_POSITIONS:
            raise ConfigError(f"retain.kl_positions must be one of {KL_POSITIONS}, got {params.kl_positions!r}")
        super().__init__(params)

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
        beta: float = 0.1
        """Inverse temperature β (closer-look App. D; the loss is scaled by 1/β)."""

    def needs(self) -> tuple[Need, ...]:
        return Need("retain"), Need("retain_idk")

    def loss(self, step: StepInputs) -> torch.Tensor:
        return R.ap_loss(step.parts["retain"].stats, step.parts["retain_idk"].stats, self.params.beta)


FORGET_OBJECTIVES: dict[str, type[ForgetObjective]] = {
    cls.name: cls for cls in (GA, NPO, SimNPO, WeightedGA, IDK, DPO, ME)
}
REGULARIZERS: dict[str, type[Regularizer]] = {cls.name: cls for cls in (NoRegularizer, GD, KL, AP)}
