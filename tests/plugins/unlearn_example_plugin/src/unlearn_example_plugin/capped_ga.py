"""Capped gradient ascent: raise each forget answer's average NLL up to a ceiling τ, then stop pushing it.

    L = mean_b max(0, τ − S(y_b|x_b) / |y_b|)

Plain GA (−M(forget)) keeps raising the NLL without end, which is how it collapses a model; this one gives no
gradient to an answer already at τ nats per token.
"""

from dataclasses import dataclass

import torch

from unlearn.extend import ForgetObjective, Need, StepInputs, param, register_forget_objective


def capped_ga_loss(mean_nll: torch.Tensor, tau: float) -> torch.Tensor:
    return torch.relu(tau - mean_nll).mean()


@register_forget_objective
class CappedGA(ForgetObjective):
    name = "capped_ga"
    summary = "gradient ascent on each forget answer's average NLL up to a ceiling tau (example plugin)"

    @dataclass
    class Params:
        tau: float = param(8.0, "the NLL per token at which an answer counts as forgotten", gt=0)

    def needs(self) -> tuple[Need, ...]:
        return (Need("forget"),)  # the forget batch's sequence statistics, nothing more

    def loss(self, step: StepInputs) -> torch.Tensor:
        return capped_ga_loss(step.parts["forget"].stats.mean_nll, self.params.tau)
