"""Membership-inference attacks (docs/formulas.md#mia): given a model and texts, a score per text that is higher
the more the text looks like a training member, and the AUC of telling members from non-members.

Every attack except GradNorm is a function of the per-token statistics of ONE forward pass per batch
(:func:`token_statistics`): the log-probability of each label token, and the mean and variance over the whole
vocabulary of the log-probabilities at that position (for Min-K%++). The same pass gives the sequence likelihoods
the other metrics use.

- ``loss``: mean token log-probability, −average NLL (Yeom et al., 2018);
- ``zlib``: −mean NLL (the log-perplexity) / the zlib-compressed length of the text in bytes (Carlini et al.,
  2021; MUSE's and the Min-K% reference code);
- ``min_k``: mean of the lowest k % token log-probabilities (Shi et al., 2024, Min-K% Prob);
- ``min_k_plus_plus``: mean of the lowest k % of (log p(x_t) − μ_t)/σ_t, with μ_t and σ_t² the mean and variance
  of log p over the whole vocabulary at position t (Zhang et al., 2024, Min-K%++);
- ``reference``: mean token log-prob under the model minus under a reference model (Carlini et al., 2021);
- ``gradnorm``: −‖∇_θ mean NLL(x)‖₂ (Wang et al., 2024).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from unlearn.config.schema import MIA_ATTACKS
from unlearn.data.collate import pad_right
from unlearn.data.formatting import EncodedSample
from unlearn.objectives.sequence import upcast

ATTACKS = MIA_ATTACKS
DEFAULT_K = 0.2


@dataclass
class TokenStats:
    """One sample's label tokens: their log-probabilities, and the vocabulary mean / std of log p at each position."""

    logp: np.ndarray  # [n]
    mu: np.ndarray  # [n]
    sigma: np.ndarray  # [n]

    @property
    def nll_sum(self) -> float:
        return float(-self.logp.sum())

    @property
    def n(self) -> int:
        return len(self.logp)


@torch.no_grad()
def token_statistics(model: torch.nn.Module, samples: Sequence[EncodedSample], pad_id: int, batch_size: int,
                     device: torch.device, feed_attention_mask: bool = True, progress=None) -> list[TokenStats]:
    """Per-sample :class:`TokenStats` in length-sorted, right-padded batches: one forward pass per batch."""
    order = sorted(range(len(samples)), key=lambda i: len(samples[i].input_ids))
    out: list[TokenStats | None] = [None] * len(samples)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in pad_right([samples[i] for i in idx], pad_id).items()}
        inputs = {"input_ids": batch["input_ids"]}
        if feed_attention_mask:
            inputs["attention_mask"] = batch["attention_mask"]
        logits = upcast(model(**inputs).logits[:, :-1])
        labels = batch["labels"][:, 1:]
        mask = labels != -100
        log_probs = F.log_softmax(logits, dim=-1)
        token_logp = log_probs.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)
        probs = log_probs.exp()
        mu = (probs * log_probs).sum(-1)  # E_{z~p}[log p(z)]
        sigma = (probs * (log_probs - mu.unsqueeze(-1)).square()).sum(-1).sqrt()  # centred: no cancellation
        cuts = np.cumsum(mask.sum(1).cpu().numpy())[:-1]  # one transfer per batch, split into the samples' tokens
        columns = [np.split(t[mask].double().cpu().numpy(), cuts) for t in (token_logp, mu, sigma)]
        for i, lp, m_, s_ in zip(idx, *columns, strict=True):
            out[i] = TokenStats(lp, m_, s_)
        if progress is not None:
            progress(len(idx))
    return out  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------ scores
def loss_score(s: TokenStats) -> float:
    return float(s.logp.mean())


def zlib_score(s: TokenStats, text: str) -> float:
    """−log-perplexity / zlib entropy: the mean token NLL over the zlib-compressed length of the text in bytes
    (Carlini et al., 2021, §6.1 "ratio of log-perplexity to zlib entropy"; MUSE's privleak and the Min-K% code)."""
    return -(s.nll_sum / s.n) / len(zlib.compress(text.encode("utf-8")))


def lowest_k_mean(values: np.ndarray, k: float) -> float:
    """Mean of the ⌊k·n⌋ smallest values (at least one), as the Min-K% and MUSE reference code count them."""
    n = max(1, int(k * len(values)))
    return float(np.sort(values)[:n].mean())


def min_k_score(s: TokenStats, k: float = DEFAULT_K) -> float:
    return lowest_k_mean(s.logp, k)


def min_k_plus_plus_score(s: TokenStats, k: float = DEFAULT_K) -> float:
    z = (s.logp - s.mu) / np.maximum(s.sigma, 1e-12)
    return lowest_k_mean(z, k)


def reference_score(s: TokenStats, ref: TokenStats) -> float:
    return float(s.logp.mean() - ref.logp.mean())


def gradnorm_scores(model: torch.nn.Module, samples: Sequence[EncodedSample], pad_id: int, device: torch.device,
                    feed_attention_mask: bool = True, progress=None) -> np.ndarray:
    """−‖∇_θ mean NLL(x)‖₂ per sample. A gradient per sample is what the attack is, so this is the one attack that
    runs a backward pass for each text."""
    from unlearn.objectives.sequence import sequence_stats

    params = [p for p in model.parameters() if p.requires_grad] or list(model.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    was_training = model.training
    model.eval()
    scores = np.empty(len(samples))
    try:
        for i, sample in enumerate(samples):
            batch = {k: v.to(device) for k, v in pad_right([sample], pad_id).items()}
            inputs = {"input_ids": batch["input_ids"]}
            if feed_attention_mask:
                inputs["attention_mask"] = batch["attention_mask"]
            loss = sequence_stats(model(**inputs).logits, batch["labels"]).mean_nll.sum()
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None))
            scores[i] = -float(norm)
            if progress is not None:
                progress(1)
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)
        model.train(was_training)
    return scores


# ------------------------------------------------------------------------------------------ AUC
def auc(member_scores: Sequence[float], nonmember_scores: Sequence[float]) -> float:
    """P(member score > non-member score) + ½·P(equal): the ROC AUC with members as the positive class
    (the Mann–Whitney U statistic over n_m·n_n)."""
    m, n = np.asarray(member_scores, dtype=np.float64), np.asarray(nonmember_scores, dtype=np.float64)
    if len(m) == 0 or len(n) == 0:
        raise ValueError("AUC needs at least one member and one non-member")
    return float(stats.mannwhitneyu(m, n, alternative="two-sided").statistic / (len(m) * len(n)))


def roc_curve(member_scores: Sequence[float], nonmember_scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate) at every threshold, members positive, from (0, 0) to (1, 1)."""
    m, n = np.asarray(member_scores, dtype=np.float64), np.asarray(nonmember_scores, dtype=np.float64)
    thresholds = np.unique(np.concatenate([m, n]))[::-1]  # descending
    # members / non-members at or above each threshold, by binary search on the sorted scores
    tpr = (len(m) - np.searchsorted(np.sort(m), thresholds, side="left")) / len(m)
    fpr = (len(n) - np.searchsorted(np.sort(n), thresholds, side="left")) / len(n)
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])


ScoreFn = Callable[[TokenStats], float]


SCORERS: dict[str, Callable[[TokenStats, str, TokenStats | None, float], float]] = {
    "loss": lambda s, text, ref, k: loss_score(s),
    "zlib": lambda s, text, ref, k: zlib_score(s, text),
    "min_k": lambda s, text, ref, k: min_k_score(s, k),
    "min_k_plus_plus": lambda s, text, ref, k: min_k_plus_plus_score(s, k),
    "reference": lambda s, text, ref, k: reference_score(s, ref),
}
DEFAULT_ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus")


def chosen_attacks(requested: Sequence[str] | None, has_reference: bool) -> tuple[str, ...]:
    """``eval.mia_attacks``, or by default every attack that needs nothing more than the model (+ ``reference``
    when a reference model is configured)."""
    if requested is not None:
        return tuple(requested)
    return DEFAULT_ATTACKS + (("reference",) if has_reference else ())


def attack_scores(stats: Sequence[TokenStats], texts: Sequence[str], attacks: Sequence[str], k: float,
                  reference: Sequence[TokenStats] | None = None) -> dict[str, np.ndarray]:
    """Per attack (all but ``gradnorm``), the score of every sample."""
    out = {}
    for attack in attacks:
        if attack == "gradnorm":
            continue
        refs = reference if reference is not None else [None] * len(stats)
        out[attack] = np.array([SCORERS[attack](s, t, r, k) for s, t, r in zip(stats, texts, refs, strict=True)])
    return out
