"""Per-token log-probabilities at label positions only, without full-vocabulary logits at every position.

A causal LM's forward pass ends in ``logits = lm_head(h)`` over every position, [B, T, V] (upcast to fp32 for the
log-softmax). Every loss of a loss method except ME and KL reads only ``log p(y_t | y_<t)`` at the label positions
(docs/formulas.md#notation). The fast path asks the model for its final hidden states (``output_hidden_states``,
with ``logits_to_keep=1`` so it computes the head on one position only), gathers the label positions, and applies the
head to them in chunks. With more than one chunk, each runs under activation checkpointing: its [chunk, V] logits
exist only while that chunk is computed, in the forward pass and again in the backward pass, so the step never holds
logits for more than one chunk. The numbers are those of the full path up to floating-point rounding (the matrix
products are the same rows, cut differently); ``tests/test_fast_step.py`` compares both on a tiny model.

Models that transform the logits after the head (soft-capping, scaling) or whose forward has no ``logits_to_keep``
keep the full path (:func:`fast_path_unsupported` says why).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from unlearn.data.formatting import IGNORE_INDEX
from unlearn.objectives.sequence import SequenceStats, sequence_stats, stats_from_token_nll, upcast

CHUNK_TOKENS = 1024
"""Label positions per head chunk: 1024 × a 128k vocabulary is 0.5 GB of fp32 logits at a time."""
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")
"""Config attributes of architectures whose logits are not ``lm_head(h)`` (Gemma 2/3, Cohere, Granite, …)."""


def base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The Hugging Face model under the wrappers training adds (DDP/FSDP ``.module``, peft, ``torch.compile``)."""
    while True:
        if hasattr(model, "get_base_model"):
            model = model.get_base_model()
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        else:
            return model


def fast_path_unsupported(model: torch.nn.Module) -> str | None:
    """Why the label-position path cannot serve ``model`` (None when it can)."""
    base = base_model(model)
    if "logits_to_keep" not in inspect.signature(base.forward).parameters:
        return f"{type(base).__name__}.forward has no logits_to_keep"
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if head is None or not hasattr(head, "weight"):
        return f"{type(base).__name__} has no output embedding (lm_head)"
    config = getattr(base, "config", None)
    for name in LOGIT_TRANSFORMS:
        value = getattr(config, name, None)
        if value not in (None, 0, 1, 1.0, False):
            return f"{type(base).__name__} transforms its logits after the head ({name}={value})"
    return None


def _chunk_nll(hidden: torch.Tensor, head: torch.nn.Module, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(upcast(head(hidden)), targets, reduction="none")


def label_token_nll(hidden: torch.Tensor, head: torch.nn.Module, labels: torch.Tensor,
                    chunk: int = CHUNK_TOKENS) -> tuple[torch.Tensor, torch.Tensor]:
    """Token NLL of ``labels[:, t+1]`` given the final hidden state at ``t``; (nll [B, T−1], label mask [B, T−1]),
    nll 0 off the labels — the values of :func:`unlearn.objectives.sequence.shifted_token_nll`."""
    target = labels[:, 1:]
    mask = target != IGNORE_INDEX
    states = hidden[:, :-1][mask]  # [N, d]: the label positions only
    wanted = target[mask]
    pieces = []
    # One chunk's logits live at a time either way; with a single chunk, recomputing it in the backward pass would
    # cost compute and save no memory, so only several chunks are checkpointed.
    recompute = torch.is_grad_enabled() and states.requires_grad and wanted.numel() > chunk
    for start in range(0, wanted.numel(), chunk):
        h, y = states[start:start + chunk], wanted[start:start + chunk]
        if recompute:
            pieces.append(checkpoint(_chunk_nll, h, head, y, use_reentrant=False))
        else:
            pieces.append(_chunk_nll(h, head, y))
    flat = torch.cat(pieces) if pieces else states.new_zeros(0, dtype=torch.float32)
    nll = torch.zeros(target.shape, dtype=flat.dtype, device=flat.device)
    return nll.masked_scatter(mask, flat), mask


def label_forward(model: torch.nn.Module, inputs: dict[str, torch.Tensor], labels: torch.Tensor,
                  hidden_layer: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One forward pass through ``model`` (wrappers included, so DDP/FSDP see it), returning (nll, mask) at the
    label positions and, when asked, the hidden states after ``hidden_layer`` (``hidden_states`` numbering)."""
    out: Any = model(**inputs, output_hidden_states=True, logits_to_keep=1, use_cache=False)
    states = out.hidden_states
    nll, mask = label_token_nll(states[-1], base_model(model).get_output_embeddings(), labels)
    return nll, mask, (states[hidden_layer] if hidden_layer is not None else None)


@torch.no_grad()
def label_nll_no_grad(model: torch.nn.Module, inputs: dict[str, torch.Tensor],
                      labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluation's (nll, mask) at the label positions: through the decoder alone where the model exposes it
    (``get_decoder()``: only its last hidden state is kept), else as in training."""
    base = base_model(model)
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    if decoder is None or decoder is base:
        nll, mask, _ = label_forward(model, inputs, labels)
        return nll, mask
    hidden = decoder(**inputs, use_cache=False).last_hidden_state
    return label_token_nll(hidden, base.get_output_embeddings(), labels)


@torch.no_grad()
def stats_no_grad(model: torch.nn.Module, inputs: dict[str, torch.Tensor], labels: torch.Tensor,
                  fast: bool) -> SequenceStats:
    """S(y|x) and |y| per sample for evaluation and cached reference log-probs: at the label positions when ``fast``
    (``fast_path_unsupported(model) is None``, decided once by the caller), else from the full logits."""
    if fast:
        return stats_from_token_nll(*label_nll_no_grad(model, inputs, labels))
    return sequence_stats(model(**inputs).logits, labels)



def label_argmax_hits(hidden: torch.Tensor, head: torch.nn.Module, labels: torch.Tensor,
                      chunk: int = CHUNK_TOKENS) -> tuple[torch.Tensor, torch.Tensor]:
    """Whether the greedy next token (argmax of the logits at ``t``) is ``labels[:, t+1]``, under teacher forcing;
    (hits [B, T−1] bool, False off the labels; label mask [B, T−1]), the head applied at the label positions only."""
    target = labels[:, 1:]
    mask = target != IGNORE_INDEX
    states = hidden[:, :-1][mask]
    wanted = target[mask]
    pieces = [head(states[start:start + chunk]).argmax(dim=-1) == wanted[start:start + chunk]
              for start in range(0, wanted.numel(), chunk)]
    flat = torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.bool, device=hidden.device)
    hits = torch.zeros(target.shape, dtype=torch.bool, device=hidden.device)
    return hits.masked_scatter(mask, flat), mask


@torch.no_grad()
def greedy_hits_no_grad(model: torch.nn.Module, inputs: dict[str, torch.Tensor], labels: torch.Tensor,
                        fast: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`label_argmax_hits` for evaluation: through the decoder alone where the model exposes it, else from
    the full logits."""
    base = base_model(model)
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    if fast and decoder is not None and decoder is not base:
        hidden = decoder(**inputs, use_cache=False).last_hidden_state
        return label_argmax_hits(hidden, base.get_output_embeddings(), labels)
    logits = model(**inputs).logits
    target = labels[:, 1:]
    mask = target != IGNORE_INDEX
    return (logits[:, :-1].argmax(dim=-1) == target) & mask, mask
