"""Loss functions for one micro-batch: fine-tuning (SFT) and unlearning (a composed method)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from unlearn.objectives.methods import Method, PartOutput, StepInputs
from unlearn.objectives.sequence import sequence_stats
from unlearn.train.parts import PartData
from unlearn.train.reference import FrozenReference


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


class FinetuneStep:
    """Supervised fine-tuning: M(batch), the token-mean NLL over answer labels (SPEC §3)."""

    def __init__(self, data: PartData, device: torch.device):
        self.data = data
        self.device = device

    def __call__(self, model: torch.nn.Module, indices: Sequence[int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch = _to(self.data.batch("train", indices), self.device)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = sequence_stats(logits, batch["labels"]).token_mean()
        return loss, {}


class UnlearnStep:
    """One forward pass per batch part the method needs, then ``method.loss`` (DESIGN.md)."""

    def __init__(
        self,
        method: Method,
        data: PartData,
        device: torch.device,
        ref_logp: dict[str, torch.Tensor] | None = None,
        reference: FrozenReference | None = None,
    ):
        missing = [p for p in method.reference_parts if not ref_logp or p not in ref_logp]
        if missing:
            raise ValueError(f"method {method.name} needs cached reference log-probs for {missing}")
        if method.needs_reference_model and reference is None:
            raise ValueError(f"method {method.name} needs a frozen reference model")
        self.method = method
        self.data = data
        self.device = device
        self.ref_logp = ref_logp or {}
        self.reference = reference

    def __call__(self, model: torch.nn.Module, indices: Sequence[int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        method = self.method
        outputs: dict[str, PartOutput] = {}
        for part in method.parts:
            batch = _to(self.data.batch(part, indices, part in method.padded_parts), self.device)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            keep = part in method.logits_parts
            outputs[part] = PartOutput(sequence_stats(logits, batch["labels"]), batch, logits if keep else None)
        index = torch.as_tensor(list(indices))
        ref_logp = {p: self.ref_logp[p][index].to(self.device) for p in method.reference_parts}
        ref_logits = {}
        if method.needs_reference_model:
            for part in method.regularizer.logits_parts:
                ref_logits[part] = self.reference.logits(outputs[part].batch)
        return method.loss(StepInputs(outputs, ref_logp, ref_logits))
