"""Reference models: cached reference log-probs (NPO, DPO) and a frozen reference for KL.

SPEC §1: NPO/DPO reference log-probs depend only on the frozen starting model and the fixed forget data,
so they are computed ONCE before training and the reference model is not kept in memory for them.
KL needs reference logits on every retain batch: a frozen copy, or, for LoRA, the same model with its
adapters disabled (no copy at all).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence

import torch

from unlearn.objectives.sequence import sequence_stats
from unlearn.train.parts import PartData


@torch.no_grad()
def cached_reference_logp(
    model: torch.nn.Module,
    data: PartData,
    parts: Sequence[str],
    batch_size: int,
    device: torch.device,
    padded_parts: Sequence[str] = (),
) -> dict[str, torch.Tensor]:
    """log π_ref(y|x) = −S for every item of each part, in item order, computed in length-sorted batches."""
    was_training = model.training
    model.eval()
    out: dict[str, torch.Tensor] = {}
    for part in parts:
        samples = data.parts[part]
        order = sorted(range(len(samples)), key=lambda i: len(samples[i].input_ids))
        logp = torch.empty(len(samples), dtype=torch.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = {k: v.to(device) for k, v in data.batch(part, idx, part in padded_parts).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            logp[idx] = sequence_stats(logits, batch["labels"]).logp.float().cpu()
        out[part] = logp
    model.train(was_training)
    return out


class FrozenReference:
    """Reference logits for KL: ``logits(batch)`` under no_grad from a frozen model.

    With a peft model and no separate reference, the adapters are disabled for the call instead of
    keeping a second copy of the weights.
    """

    def __init__(self, model: torch.nn.Module, separate: torch.nn.Module | None = None):
        self._model = model
        self._separate = separate
        if separate is not None:
            separate.eval()
            for p in separate.parameters():
                p.requires_grad_(False)

    @classmethod
    def for_model(cls, model: torch.nn.Module, reference: torch.nn.Module | None = None) -> FrozenReference:
        """Use ``reference`` if given; a LoRA model uses itself with adapters off; otherwise copy ``model``."""
        if reference is not None:
            return cls(model, reference)
        if hasattr(model, "disable_adapter"):
            return cls(model, None)
        return cls(model, copy.deepcopy(model))

    @contextlib.contextmanager
    def _active(self) -> Iterator[torch.nn.Module]:
        if self._separate is not None:
            yield self._separate
            return
        with self._model.disable_adapter():
            yield self._model

    @torch.no_grad()
    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with self._active() as model:
            return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
