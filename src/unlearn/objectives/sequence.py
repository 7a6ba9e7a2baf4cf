"""Per-sample sequence statistics shared by every objective and metric (docs/formulas.md#notation).

``S(y|x)`` = sum over label positions of the token NLL; ``|y|`` = number of label positions (answer + EOS);
``log π(y|x) = −S``; ``M(batch) = ΣS / Σ|y|`` (token-level mean over the micro-batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from unlearn.data.formatting import IGNORE_INDEX


@dataclass
class SequenceStats:
    """``nll_sum[b]`` = S(y_b|x_b) and ``n_tokens[b]`` = |y_b| for each sample of a batch."""

    nll_sum: torch.Tensor
    n_tokens: torch.Tensor

    @property
    def logp(self) -> torch.Tensor:
        """log π(y|x) = −S."""
        return -self.nll_sum

    @property
    def mean_nll(self) -> torch.Tensor:
        """Per-sample average NLL, S/|y| (TOFU's ``avg_gt_loss``)."""
        return self.nll_sum / self.n_tokens

    def token_mean(self) -> torch.Tensor:
        """M(batch): token-level mean NLL over all label positions of the batch."""
        return self.nll_sum.sum() / self.n_tokens.sum()


def upcast(x: torch.Tensor) -> torch.Tensor:
    """Half-precision logits (bf16 autocast) are promoted to fp32 for log-softmax; fp32/fp64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def shifted_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Token NLL of ``labels[:, t+1]`` under ``logits[:, t]``; returns (nll [B, T−1], label mask [B, T−1])."""
    target = labels[:, 1:]
    pred = upcast(logits[:, :-1])
    nll = F.cross_entropy(pred.reshape(-1, pred.size(-1)), target.reshape(-1), reduction="none",
                          ignore_index=IGNORE_INDEX).view_as(target)
    return nll, target != IGNORE_INDEX


def token_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log p of every label token under the shifted logits, [B, T−1]; 0 where there is no label."""
    nll, mask = shifted_token_nll(logits, labels)
    return -(nll * mask)


def sequence_stats(logits: torch.Tensor, labels: torch.Tensor) -> SequenceStats:
    """S(y|x) and |y| per sample from a forward pass's logits and the masked labels."""
    return stats_from_token_nll(*shifted_token_nll(logits, labels))


def stats_from_token_nll(nll: torch.Tensor, mask: torch.Tensor) -> SequenceStats:
    """S(y|x) and |y| per sample from token NLLs [B, T−1] and their label mask."""
    n_tokens = mask.sum(dim=1)
    if bool((n_tokens == 0).any()):
        raise ValueError("a sample has no label positions (empty answer or everything masked)")
    return SequenceStats(nll_sum=(nll * mask).sum(dim=1), n_tokens=n_tokens.to(nll.dtype))
