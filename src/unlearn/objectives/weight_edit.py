"""Weight-edit methods: unlearning by arithmetic on weights instead of a loss (docs/formulas.md#task-vector).

Task Vector (Ilharco et al., 2023; the MUSE baseline): fine-tune the model on the forget set, take the task
vector τ = θ_ft − θ₀, and subtract it: θ = θ₀ − α·τ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from unlearn.objectives.components import param
from unlearn.registry import Registry

if TYPE_CHECKING:
    from unlearn.config.recipes import ResolvedRecipe


def negate_task_vector(base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor],
                       alpha: float) -> dict[str, torch.Tensor]:
    """θ₀ − α·(θ_ft − θ₀) for every tensor of ``base`` (``tuned`` must hold the same names and shapes)."""
    missing = sorted(set(base) ^ set(tuned))
    if missing:
        raise ValueError(f"the fine-tuned weights do not match the base weights (e.g. {missing[0]!r})")
    return {name: theta0 - alpha * (tuned[name].to(theta0.dtype) - theta0) for name, theta0 in base.items()}


class WeightEditMethod:
    """A registered method that edits weights: fine-tune on ``train_part``, then :meth:`edit` (θ₀, θ_ft) → θ."""

    kind: ClassVar[str] = "weight_edit"
    name: ClassVar[str]
    summary: ClassVar[str]
    section: ClassVar[str] = "weight-edit method"
    config_section: ClassVar[str] = "forget"
    train_part: ClassVar[str] = "forget"

    @dataclass
    class Params:
        pass

    def __init__(self, params: Any, recipe: ResolvedRecipe | None = None):
        self.params = params
        self.recipe = recipe

    def edit(self, base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind,
                               "edit": {"method": self.name, **dataclasses.asdict(self.params)},
                               "fine_tuned_on": self.train_part}
        if self.recipe is not None:
            out["recipe"] = self.recipe.describe()
        return out


class TaskVector(WeightEditMethod):
    name = "task_vector"
    summary = "fine-tune on the forget set, then θ₀ − α·(θ_ft − θ₀)"

    @dataclass
    class Params:
        alpha: float = param(1.0, "scale α of the negated task vector; 1 is plain negation (MUSE's recipe uses 5)",
                             gt=0)

    def edit(self, base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return negate_task_vector(base, tuned, self.params.alpha)


WEIGHT_EDIT_METHODS: Registry[type[WeightEditMethod]] = Registry("weight-edit method")
WEIGHT_EDIT_METHODS.register(TaskVector.name, TaskVector)
