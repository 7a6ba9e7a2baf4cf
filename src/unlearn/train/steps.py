"""Loss functions for one micro-batch: fine-tuning (SFT) and unlearning with a loss method.

:class:`UnlearnStep` is the whole unlearning step: a forward pass over the batch parts the method needs, the
outputs each need asks for (logits, token log-probs, hidden states), the reference's view of the parts that need one
(cached log-likelihoods, or a frozen model's outputs), then ``method.loss``.

The fast path (``train.fast_step``, default on; :mod:`unlearn.models.label_logps`) computes log-probs at the label
positions only, in chunks, and forwards the parts that need no logits together, as one batch padded to the longest
part, where that adds almost no padding (:func:`stacking_pays`). ``fast=False`` is the path before it: one forward
per part with full-vocabulary logits. Both give the same numbers up to floating-point rounding
(``tests/test_fast_step.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from unlearn.data.formatting import IGNORE_INDEX
from unlearn.data.parts import TRAIN_PART, PartData
from unlearn.models.label_logps import fast_path_unsupported, label_forward
from unlearn.objectives.methods import LossMethod
from unlearn.objectives.needs import Need, PartOutput, ReferenceOutput, StepInputs
from unlearn.objectives.sequence import sequence_stats, stats_from_token_nll, token_logps
from unlearn.train.distributed import rank_and_world
from unlearn.train.hidden import forward_with_hidden
from unlearn.train.reference import FrozenReference

StepResult = tuple[torch.Tensor, dict[str, torch.Tensor]]


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


class FinetuneStep:
    """Supervised fine-tuning: M(batch), the token-mean NLL over the labels (docs/formulas.md#training)."""

    def __init__(self, data: PartData, device: torch.device, part: str = TRAIN_PART, fast: bool = False):
        self.data = data
        self.device = device
        self.part = part
        self.fast = fast

    def __call__(self, model: torch.nn.Module, indices: Sequence[int]) -> StepResult:
        batch = _to(self.data.batch(self.part, indices), self.device)
        out = forward_part(model, self.data.model_inputs(batch), batch, Need(self.part), self.fast)
        return out.stats.token_mean(), {}


def forward_part(model: torch.nn.Module, inputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                 need: Need, fast: bool = False) -> PartOutput:
    """One forward pass on one batch part, keeping what ``need`` asks for (label positions only when ``fast`` and
    the need asks for no logits)."""
    if fast and not need.logits:
        nll, mask, hidden = label_forward(model, inputs, batch["labels"], need.hidden_layer)
        return _part_output(nll, mask, batch, need, hidden)
    out, hidden = forward_with_hidden(model, inputs, need.hidden_layer)
    return PartOutput(
        stats=sequence_stats(out.logits, batch["labels"]),
        batch=batch,
        logits=out.logits if need.logits else None,
        token_logps=token_logps(out.logits, batch["labels"]) if need.token_logps else None,
        hidden=hidden,
    )


def _part_output(nll: torch.Tensor, mask: torch.Tensor, batch: dict[str, torch.Tensor], need: Need,
                 hidden: torch.Tensor | None) -> PartOutput:
    return PartOutput(stats=stats_from_token_nll(nll, mask), batch=batch,
                      token_logps=-(nll * mask) if need.token_logps else None, hidden=hidden)


def stack_parts(batches: Sequence[dict[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batches of several parts as one batch, padded to the widest (padding: ``pad_id``, mask 0,
    label −100, so no real position's prediction changes under causal attention)."""
    width = max(b["input_ids"].shape[1] for b in batches)
    fill = {"input_ids": pad_id, "attention_mask": 0, "labels": IGNORE_INDEX}

    def widened(b: dict[str, torch.Tensor], key: str) -> torch.Tensor:
        t = b[key]
        return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=fill[key])
    return {key: torch.cat([widened(b, key) for b in batches]) for key in fill}


STACK_PADDING_SLACK = 0.02
"""Parts are forwarded as one batch only when that pads at most 2 % more positions than forwarding each part at its
own width. A joint forward saves per-call overhead (kernel launches at small batch on a GPU), but every padded
position costs a real position's compute: on 2 CPU cores, DPO+GD on SmolLM2-135M at batch 4 (three parts, lengths
64–128) was 7.5 % slower stacked, with 7 % more padded positions (``benchmarks/speed/side_checks.py stacking``)."""


def several_processes() -> bool:
    """Whether this process is one of several (torch.distributed initialised with a world size above 1)."""
    return rank_and_world()[1] > 1


def stacking_pays(batches: Sequence[dict[str, torch.Tensor]], slack: float | None = None) -> bool:
    """Whether one batch padded to the widest costs at most ``1 + slack`` (default :data:`STACK_PADDING_SLACK`)
    times the positions of the parts forwarded apart."""
    slack = STACK_PADDING_SLACK if slack is None else slack
    shapes = [b["input_ids"].shape for b in batches]
    apart = sum(rows * width for rows, width in shapes)
    joint = sum(rows for rows, _ in shapes) * max(width for _, width in shapes)
    return joint <= (1 + slack) * apart


class UnlearnStep:
    """The parts the method needs through the model (together where they can be), the reference's view where
    asked, then ``method.loss``."""

    def __init__(
        self,
        method: LossMethod,
        data: PartData,
        device: torch.device,
        ref_logp: dict[str, torch.Tensor] | None = None,
        reference: FrozenReference | None = None,
        fast: bool = False,
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
        self.fast = fast

    def fused_groups(self) -> list[list[str]]:
        """Parts that may be forwarded together: on the fast path, those needing no logits and no fixed padding, by
        the hidden layer they read; every other part alone. On one process a step stacks a group only where
        :func:`stacking_pays` for its batches; with several processes always."""
        groups: dict[object, list[str]] = {}
        for part, need in self.needs.items():
            together = self.fast and not need.logits and not need.pad_to_max_length
            groups.setdefault(("fused", need.hidden_layer) if together else part, []).append(part)
        return list(groups.values())

    def __call__(self, model: torch.nn.Module, indices: Sequence[int]) -> StepResult:
        return self.method.loss(self.inputs(model, indices))

    @torch.no_grad()
    def measure(self, model: torch.nn.Module, fn: Callable[[StepInputs], torch.Tensor], batch_size: int) -> float:
        """The mean of ``fn(step)`` over the micro-batches of items 0, 1, … in order (``batch_size`` each), with the
        model as it is and no gradients: what an objective's :meth:`after_epoch` asks for (PDU's retain loss after
        an epoch). Every process measures every item, so all reach the same value."""
        values = []
        for start in range(0, len(self.data), batch_size):
            values.append(float(fn(self.inputs(model, range(start, min(start + batch_size, len(self.data)))))))
        for objective in self.method.objectives.values():
            objective.take_records()  # what fn's loss calls recorded belongs to no step
        return sum(values) / len(values)

    def inputs(self, model: torch.nn.Module, indices: Sequence[int]) -> StepInputs:
        """The model's (and the reference's) view of the parts the method needs, for the items ``indices``."""
        parts: dict[str, PartOutput] = {}
        reference: dict[str, ReferenceOutput] = {}
        index = torch.as_tensor(list(indices))
        batches = {part: _to(self.data.batch(part, indices, need.pad_to_max_length), self.device)
                   for part, need in self.needs.items()}
        for group in self.fused_groups():
            # Every process must make the same number of forward passes (DDP synchronises buffers and FSDP gathers
            # parameters in each): with several, a group is always stacked, whatever one process's batch shapes.
            apart = not several_processes() and not stacking_pays([batches[p] for p in group])
            if len(group) == 1 or apart:
                for part in group:
                    parts[part] = forward_part(model, self.data.model_inputs(batches[part]), batches[part],
                                               self.needs[part], self.fast)
                continue
            joint = stack_parts([batches[p] for p in group], self.data.pad_id)
            nll, mask, hidden = label_forward(model, self.data.model_inputs(joint), joint["labels"],
                                              self.needs[group[0]].hidden_layer)
            row = 0
            for part in group:
                rows, width = batches[part]["input_ids"].shape
                cut = slice(row, row + rows)
                parts[part] = _part_output(nll[cut, :width - 1], mask[cut, :width - 1], batches[part],
                                           self.needs[part], None if hidden is None else hidden[cut, :width])
                row += rows
        for part, need in self.needs.items():
            if need.reference_outputs:
                inputs = self.data.model_inputs(batches[part])
                reference[part] = self.reference.outputs(inputs, batches[part]["labels"], need)
            if need.reference_logp:
                reference.setdefault(part, ReferenceOutput()).logp = self.ref_logp[part][index].to(self.device)
        return StepInputs(parts, reference)


def use_fast_path(requested: bool, model: torch.nn.Module) -> bool:
    """``train.fast_step`` where the model allows it (else the full path, with the reason logged)."""
    if not requested:
        return False
    reason = fast_path_unsupported(model)
    if reason is not None:
        import logging

        logging.getLogger("unlearn").info("train.fast_step: full-logits path (%s)", reason)
    return reason is None
