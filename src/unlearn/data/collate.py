"""Padding: right padding for training and likelihoods, left padding for batched generation."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from unlearn.data.formatting import IGNORE_INDEX, EncodedSample


def pad_right(samples: Sequence[EncodedSample], pad_id: int, pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Stack samples into ``input_ids``, ``attention_mask`` and ``labels`` (-100 on padding)."""
    width = max(len(s.input_ids) for s in samples)
    if pad_to is not None:
        width = max(width, pad_to)
    n = len(samples)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((n, width), dtype=torch.long)
    for row, s in enumerate(samples):
        length = len(s.input_ids)
        input_ids[row, :length] = torch.tensor(s.input_ids)
        labels[row, :length] = torch.tensor(s.labels)
        attention_mask[row, :length] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def pad_left(prompts: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Left-pad prompt ids for generation so every prompt ends at the same position."""
    width = max(len(p) for p in prompts)
    n = len(prompts)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((n, width), dtype=torch.long)
    for row, p in enumerate(prompts):
        if p:
            input_ids[row, width - len(p):] = torch.tensor(list(p))
            attention_mask[row, width - len(p):] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}
