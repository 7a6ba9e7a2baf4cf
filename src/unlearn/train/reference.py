"""Reference models: cached reference log-probs (NPO, DPO) and a frozen reference for live outputs (KL).

NPO's and DPO's reference log-probs depend only on the frozen starting model and the fixed forget data, so they
are computed ONCE before training and the reference model is not kept in memory for them (docs/formulas.md#npo).
A live need (KL's reference logits on every retain batch) uses a frozen copy, or, for LoRA, the same model with its
adapters disabled (no copy at all).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence

import torch

from unlearn.data.parts import PartData
from unlearn.models.label_logps import fast_path_unsupported, stats_no_grad
from unlearn.objectives.needs import Need, ReferenceOutput
from unlearn.objectives.sequence import token_logps
from unlearn.train.hidden import forward_with_hidden


@torch.no_grad()
def cached_reference_logp(
    model: torch.nn.Module,
    data: PartData,
    parts: Sequence[str],
    batch_size: int,
    device: torch.device,
    padded_parts: Sequence[str] = (),
    sort_by_length: bool = True,
) -> dict[str, torch.Tensor]:
    """log π_ref(y|x) = −S for every item of each part, in item order, computed in length-sorted batches (or in
    item order, ``sort_by_length=False``)."""
    was_training = model.training
    model.eval()
    fast = fast_path_unsupported(model) is None  # label positions only (docs/speed.md)
    out: dict[str, torch.Tensor] = {}
    for part in parts:
        samples = data.parts[part]
        order = list(range(len(samples)))
        if sort_by_length:
            order.sort(key=lambda i: len(samples[i].input_ids))
        logp = torch.empty(len(samples), dtype=torch.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = {k: v.to(device) for k, v in data.batch(part, idx, part in padded_parts).items()}
            logp[idx] = stats_no_grad(model, data.model_inputs(batch), batch["labels"], fast).logp.float().cpu()
        out[part] = logp
    model.train(was_training)
    return out


@torch.no_grad()
def perturbed_reference(model: torch.nn.Module, kind: str, seed: int) -> torch.nn.Module:
    """A copy of ``model`` with every weight θ replaced by (θ + θ_rand)/2 (SimNPO App. B's perturbed reference):
    θ_rand ~ N(0, 1) elementwise (``gaussian``, drawn in parameter order from a generator seeded with ``seed``), or the
    architecture's own random initialisation under ``seed`` (``init``)."""
    from transformers import AutoModelForCausalLM

    reference = copy.deepcopy(model)
    if kind == "gaussian":
        generator = torch.Generator().manual_seed(seed)
        random = {n: torch.randn(p.shape, generator=generator, dtype=torch.float32)
                  for n, p in reference.named_parameters()}
    elif kind == "init":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            fresh = AutoModelForCausalLM.from_config(model.config)
        random = dict(fresh.named_parameters())
    else:
        raise ValueError(f"unknown reference perturbation {kind!r} (gaussian, init)")
    for name, p in reference.named_parameters():
        p.copy_((p.float() + random[name].to(p.device)) / 2)
    return reference


class FrozenReference:
    """The reference model's outputs for a batch under no_grad, from a frozen model.

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
    def outputs(self, inputs: dict[str, torch.Tensor], labels: torch.Tensor, need: Need) -> ReferenceOutput:
        """What ``need`` asks of the model, computed by the reference: logits, token log-probs, hidden states."""
        with self._active() as model:
            out, hidden = forward_with_hidden(model, inputs, need.hidden_layer)
        return ReferenceOutput(
            logits=out.logits if need.logits else None,
            token_logps=token_logps(out.logits, labels) if need.token_logps else None,
            hidden=hidden,
        )

    def logits(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.outputs(inputs, inputs["input_ids"], Need("", logits=True)).logits
