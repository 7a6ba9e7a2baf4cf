"""OpenUnlearning's per-sample metrics, registered through :func:`unlearn.extend.register_sample_metric`
(docs/formulas.md#memorization): every task whose evaluation provides their inputs reports them on each set.

- **Exact Memorization** (Tirumala et al. 2022, as OpenUnlearning reports it): EM = (1/|y|) Σ_t 1[argmax = y_t],
  the share of answer tokens that are the greedy next token given the prompt and the true y_<t (teacher forcing).
- **Extraction Strength** (Carlini et al. 2021, OpenUnlearning's form): ES = 1 − k*/|y|, where k* is the shortest
  prefix y_<k after which greedy decoding reproduces the rest y_≥k. Greedy decoding from the true prefix follows the
  true tokens exactly while each of them is the argmax, so k* is where the final run of hits starts and ES is the
  length of that run over |y|.
- **The truth ratio's knowledge form** (OpenUnlearning's "extent of knowledge"): p_c / (p_c + p_w) = Q / (1 + Q)
  with p_c = p̄(paraphrase), p_w = geomean_j p̄(perturbed_j), the two numbers of TOFU's truth ratio Q.
- **The paraphrase probability**, unnormalised: p̄(paraphrased answer) = exp(−S/|y|).

EM and ES read the greedy hits (TOFU-style sets and MUSE's generation sets); the other two a TOFU-style set's
likelihoods, so they are also computed from the TOFU authors' eval logs (``unlearn score``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from unlearn.extend import MetricSpec, register_sample_metric

PER_SET_MEAN = "mean over the set's samples, with a 95 % bootstrap interval"


def exact_memorization(hits: Sequence[np.ndarray]) -> np.ndarray:
    """EM per sample: the share of answer tokens that are the greedy next token (NaN for an empty answer)."""
    return np.array([float(np.mean(h)) if len(h) else np.nan for h in hits], dtype=np.float64)


def extraction_strength(hits: Sequence[np.ndarray]) -> np.ndarray:
    """ES per sample: the final run of greedy hits over |y| (0 when the last token is missed; NaN when empty).

    OpenUnlearning's loop stops at the last prefix it tries (k = |y| − 1) when no suffix matches, so it reports 1/|y|
    where the last token is missed; we report 0, which is what 1 − k*/|y| gives with k* = |y| (only the empty suffix
    is reproduced). The two agree on every other sample."""
    out = np.empty(len(hits), dtype=np.float64)
    for i, h in enumerate(hits):
        h = np.asarray(h, dtype=bool)
        if not len(h):
            out[i] = np.nan
            continue
        misses = np.flatnonzero(~h)
        run = len(h) if not len(misses) else len(h) - 1 - int(misses[-1])
        out[i] = run / len(h)
    return out


def truth_ratio_knowledge(paraphrased_loss: np.ndarray, perturbed_loss: np.ndarray) -> np.ndarray:
    """p_c / (p_c + p_w) per sample, with Q = p_c / p_w = exp(mean_j L_pert_j − L_para) as TOFU's truth ratio:
    Q / (1 + Q), in (0, 1), 0.5 where the model cannot tell the true answer from the perturbed ones, and the same on
    every set."""
    q = np.exp(np.nanmean(np.asarray(perturbed_loss, dtype=np.float64), axis=1)
               - np.asarray(paraphrased_loss, dtype=np.float64))
    return 1.0 / (1.0 + 1.0 / q)


def _hits(inputs: Mapping[str, Any]) -> Sequence[np.ndarray]:
    return inputs["greedy_hits"]


register_sample_metric(
    MetricSpec("exact_memorization", "Exact Memorization: share of answer (MUSE: reference) tokens that are the greedy "
               "next token under teacher forcing", "set", True, PER_SET_MEAN, "lower = forgotten"),
    ("greedy_hits",), lambda inputs: exact_memorization(_hits(inputs)))
register_sample_metric(
    MetricSpec("extraction_strength", "Extraction Strength: the share of the answer's (MUSE: reference's) suffix "
               "greedy decoding reproduces, 1 − k*/|y|", "set", True, PER_SET_MEAN, "lower = forgotten"),
    ("greedy_hits",), lambda inputs: extraction_strength(_hits(inputs)))
register_sample_metric(
    MetricSpec("truth_ratio_knowledge", "Truth Ratio, OpenUnlearning's extent-of-knowledge form", "set", True,
               "mean p_c / (p_c + p_w) = Q / (1 + Q)", "lower = forgotten (0.5: true and perturbed alike)"),
    ("paraphrased_loss", "perturbed_loss"),
    lambda inputs: truth_ratio_knowledge(inputs["paraphrased_loss"], inputs["perturbed_loss"]))
register_sample_metric(
    MetricSpec("paraphrase_prob", "Probability p̄(paraphrased answer), unnormalised", "set", True, PER_SET_MEAN,
               "lower = forgotten"),
    ("paraphrased_loss",), lambda inputs: np.exp(-np.asarray(inputs["paraphrased_loss"], dtype=np.float64)))
