"""Loss functions for one micro-batch: fine-tuning (SFT) and unlearning with a loss method.

:class:`UnlearnStep` is the whole unlearning step: one forward pass per batch part the method needs, the outputs
each need asks for (logits, token log-probs, hidden states), the reference's view of the parts that need one
(cached log-likelihoods, or a frozen model's outputs), then ``method.loss``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from unlearn.data.parts import TRAIN_PART, PartData
from unlearn.objectives.methods import LossMethod
from unlearn.objectives.needs import Need, PartOutput, ReferenceOutput, StepInputs
from unlearn.objectives.sequence import sequence_stats, token_logps
from unlearn.train.hidden import forward_with_hidden
from unlearn.train.reference import FrozenReference

StepResult = tuple[torch.Tensor, dict[str, torch.Tensor]]


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


class FinetuneStep:
    """Supervised fine-tuning: M(batch), the token-mean NLL over the labels (docs/formulas.md#training)."""

    def __init__(self, data: PartData, device: torch.device, part: str = TRAIN_PART):
        self.data = data
        self.device = device
        self.part = part

    def __call__(self, model: torch.nn.Module, indices: Sequence[int]) -> StepResult:
        batch = _to(self.data.batch(self.part, indices), self.device)
        logits = model(**self.data.model_inputs(batch)).logits
        return sequence_stats(logits, batch["labels"]).token_mean(), {}


def forward_part(model: torch.nn.Module, inputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                 need: Need) -> PartOutput:
    """One forward pass on one batch part, keeping what ``need`` asks for."""
    out, hidden = forward_with_hidden(model, inputs, need.hidden_layer)
    return PartOutput(
        stats=sequence_stats(out.logits, batch["labels"]),
        batch=batch,
        logits=out.logits if need.logits else None,
        token_logps=token_logps(out.logits, batch["labels"]) if need.token_logps else None,
        hidden=hidden,
    )


class UnlearnStep:
    """One forward pass per batch part the method needs, the reference's view where asked, then ``method.loss``."""

    def __init__(
        self,
        method: LossMethod,
        data: PartData,
        device: torch.device,
        ref_logp: dict[str, torch.Tensor] | None = None,
        reference: FrozenReference | None = None,
    ):
        missing = [p for p in method.cached_reference_parts if not ref_logp or p not in ref_logp]
        if missing:
            raise ValueError(f"method {method.name} needs cached reference log-probs for {missing}")
        if method.needs_reference_model and reference is None:
            raise ValueError(f"method {method.name} needs a frozen reference model")
        self.method = method
        self.needs = method.needs
        self.data = data
        self.device = device
        self.ref_logp = ref_logp or {}
        self.reference = reference

    def __call__(self, model: torch.nn.Module, indices: Sequence[int]) -> StepResult:
        parts: dict[str, PartOutput] = {}
        reference: dict[str, ReferenceOutput] = {}
        index = torch.as_tensor(list(indices))
        for part, need in self.needs.items():
            batch = _to(self.data.batch(part, indices, need.pad_to_max_length), self.device)
            inputs = self.data.model_inputs(batch)
            parts[part] = forward_part(model, inputs, batch, need)
            if need.reference_outputs:
                reference[part] = self.reference.outputs(inputs, batch["labels"], need)
            if need.reference_logp:
                reference.setdefault(part, ReferenceOutput()).logp = self.ref_logp[part][index].to(self.device)
        return self.method.loss(StepInputs(parts, reference))
