"""The baselines' forget objectives, registered through :mod:`unlearn.extend` (docs/methods.md). Each composes
with every regularizer (``wga+gd``, ``satimp+kl``, ``undial+gd``, ``ceu``); the values the papers and OpenUnlearning
use are recipes (:mod:`unlearn.config.recipes`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unlearn.extend import IGNORE_INDEX, ForgetObjective, Need, StepInputs, param, register_forget_objective
from unlearn_baselines import losses as L


def _mask(step: StepInputs, part: str) -> torch.Tensor:
    return step.parts[part].batch["labels"][:, 1:] != IGNORE_INDEX


@register_forget_objective
class WGA(ForgetObjective):
    name = "wga"
    summary = ("token-weighted gradient ascent, w_t = p_t^β detached (Wang et al., 2025; OpenUnlearning's WGA). "
               "Before 0.2 `wga` named SimNPO's length-weighted W-GradDiff, now `lwga`")

    @dataclass
    class Params:
        beta: float = param(1.0, "β of the weights p_t^β (the paper's and OpenUnlearning's 1; 0 is GA)", ge=0)

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget", token_logps=True),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        logps = step.parts["forget"].token_logps
        return L.weighted_ascent_loss(logps, _mask(step, "forget"), L.wga_weights(logps, self.params.beta))


@register_forget_objective
class SatImp(ForgetObjective):
    name = "satimp"
    summary = "gradient ascent weighted by saturation and importance, w_t = p_t^β1 (1 − p_t)^β2 detached (SatImp §5)"

    @dataclass
    class Params:
        beta1: float = param(5.0, "β1, the saturation exponent (SatImp's 5)", ge=0)
        beta2: float = param(1.0, "β2, the importance exponent (SatImp's 1)", ge=0)

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget", token_logps=True),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        logps = step.parts["forget"].token_logps
        weights = L.satimp_weights(logps, self.params.beta1, self.params.beta2)
        return L.weighted_ascent_loss(logps, _mask(step, "forget"), weights)


@register_forget_objective
class CEU(ForgetObjective):
    name = "ceu"
    summary = "cross-entropy towards the model's own distribution without the true token, detached (CE-U)"

    @dataclass
    class Params:
        skip_first: int = param(1, "answer tokens left out at the start of each answer (CE-U's training footnote, "
                                   "OpenUnlearning's ignore_first_n_answer_tokens)", ge=0)

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget", logits=True),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        part = step.parts["forget"]
        return L.ceu_loss(part.logits, part.batch["labels"], self.params.skip_first)


@register_forget_objective
class UNDIAL(ForgetObjective):
    name = "undial"
    summary = ("self-distillation towards the original model's logits with the true token lowered by β (UNDIAL); "
               "the teacher is the frozen start (LoRA: the adapters off, no copy)")

    @dataclass
    class Params:
        beta: float = param(10.0, "β, how far the true token's logit is lowered (OpenUnlearning's UNDIAL config: "
                                  "10)", gt=0)

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget", logits=True, reference_outputs=True),)

    def loss(self, step: StepInputs) -> torch.Tensor:
        part = step.parts["forget"]
        return L.undial_loss(part.logits, step.reference["forget"].logits, part.batch["labels"], self.params.beta)
