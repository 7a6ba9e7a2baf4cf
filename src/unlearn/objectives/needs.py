"""What an objective reads from a training step, declared, so the step computes exactly that and nothing more.

An objective declares one :class:`Need` per batch part it reads (parts: :mod:`unlearn.data.parts`). Every part
gives per-sample statistics ``S(y|x)`` and ``|y|``; a need can also ask for the logits, the per-token
log-probabilities of the labels, or the hidden states after a layer, and for the reference model's view of the same
part: either its per-sample log-likelihood, computed once before training and cached (NPO, DPO), or its outputs at
every step from a frozen copy (KL; RMU's frozen activations).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from unlearn.objectives.sequence import SequenceStats


@dataclass(frozen=True)
class Need:
    """What one objective reads from one batch part."""

    part: str
    logits: bool = False
    """The model's logits at every position, [B, T, V]."""
    token_logps: bool = False
    """log p of every label token, [B, T−1] (0 where there is no label)."""
    hidden_layer: int | None = None
    """Hidden states after this layer (0 = embeddings), [B, T, d]."""
    reference_logp: bool = False
    """log π_ref(y|x) per sample, computed once before training and cached (the reference is then freed)."""
    reference_outputs: bool = False
    """The frozen reference model's outputs for this part at every step (the same logits / token log-probs /
    hidden states asked of the model)."""
    pad_to_max_length: bool = False
    """Pad this part to ``data.max_length`` (to reproduce reference code that did so)."""


@dataclass(frozen=True)
class GeneratedAnswers:
    """Answers an objective asks the starting model to write before training, one batch part of them (AltPO's
    alternatives): per forget item, ``per_item`` answers to ``instruction`` (formatted with the item's ``question``
    and ``answer``, then chat-formatted), each at most ``max_new_tokens`` tokens. They are generated once, batched
    and left-padded, stored in the run directory and read back when the run is resumed or repeated
    (:mod:`unlearn.experiments.generated`)."""

    part: str
    instruction: str
    max_new_tokens: int
    per_item: int = 1
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    owner: str = ""
    """The objective's config section and parameter prefix for messages (``forget``)."""


def merge_needs(needs: Iterable[Need]) -> dict[str, Need]:
    """One need per part: the union of what every objective asks of it."""
    merged: dict[str, Need] = {}
    for need in needs:
        old = merged.get(need.part)
        if old is None:
            merged[need.part] = need
            continue
        if None not in (old.hidden_layer, need.hidden_layer) and old.hidden_layer != need.hidden_layer:
            raise ValueError(f"part {need.part!r}: hidden states of two layers requested "
                             f"({old.hidden_layer}, {need.hidden_layer})")
        merged[need.part] = Need(
            need.part, old.logits or need.logits, old.token_logps or need.token_logps,
            old.hidden_layer if old.hidden_layer is not None else need.hidden_layer,
            old.reference_logp or need.reference_logp, old.reference_outputs or need.reference_outputs,
            old.pad_to_max_length or need.pad_to_max_length)
    return merged


@dataclass
class PartOutput:
    """The model's forward pass on one batch part: per-sample statistics always, the rest when a need asks."""

    stats: SequenceStats
    batch: dict[str, torch.Tensor]
    logits: torch.Tensor | None = None
    token_logps: torch.Tensor | None = None
    hidden: torch.Tensor | None = None


@dataclass
class ReferenceOutput:
    """The reference model's view of one batch part: cached log-likelihoods and/or live outputs."""

    logp: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    token_logps: torch.Tensor | None = None
    hidden: torch.Tensor | None = None


@dataclass
class StepInputs:
    """Everything an objective may read for one micro-batch."""

    parts: dict[str, PartOutput]
    reference: dict[str, ReferenceOutput] = field(default_factory=dict)
