"""Batched sequence likelihoods: S(y|x) and |y| for many (question, answer) pairs, never one at a time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from unlearn.data.collate import pad_right
from unlearn.data.formatting import EncodedSample
from unlearn.models.label_logps import fast_path_unsupported, stats_no_grad


@torch.no_grad()
def batched_sequence_nll(
    model: torch.nn.Module,
    samples: Sequence[EncodedSample],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    progress=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (S, |y|) per sample, computed in length-sorted, right-padded batches.

    ``progress`` is an optional callable receiving the number of samples done in each batch.
    """
    order = sorted(range(len(samples)), key=lambda i: len(samples[i].input_ids))
    fast = fast_path_unsupported(model) is None  # log-probs at the label positions only (docs/speed.md)
    nll_sum = np.empty(len(samples), dtype=np.float64)
    n_tokens = np.empty(len(samples), dtype=np.int64)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in pad_right([samples[i] for i in idx], pad_id).items()}
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        stats = stats_no_grad(model, inputs, batch["labels"], fast)
        nll_sum[idx] = stats.nll_sum.double().cpu().numpy()
        n_tokens[idx] = stats.n_tokens.long().cpu().numpy()
        if progress is not None:
            progress(len(idx))
    return nll_sum, n_tokens
