"""TOFU metrics as pure functions (SPEC §4) — the importable API for TOFU aggregates.

Inputs are per-sample average NLLs (S/|y|, TOFU's ``avg_*_loss``) and ROUGE values, so the same code scores
our own evaluations and the TOFU authors' ``eval_log_aggregated.json`` files::

    from unlearn.evaluation.tofu_metrics import SetSamples, aggregate
    sets = {"forget": SetSamples(kind="forget", gt_loss=..., paraphrased_loss=..., perturbed_loss=..., rouge=...),
            ...}
    aggregate(sets, retain_truth_ratios=q_retain)   # → per-set ROUGE/Prob/TR, model_utility_9, forget_quality

Definitions (p̄ = exp(−S/|y|)):
- Probability: mean p̄(answer); on ``mc`` sets (real authors, world facts) mean p̄(a)/(p̄(a) + Σ_j p̄(pert_j)).
- Truth ratio per sample Q = p̄(paraphrase) / geometric-mean_j p̄(perturbed_j).
  Forget set reports mean min(Q, 1/Q); the others mean max(0, 1 − 1/Q).
- Forget Quality: KS two-sample p-value between the unlearned and the retain model's Q on the forget rows.
- Model Utility (9): harmonic mean of {retain, real_authors, world_facts} × {ROUGE, Prob, TR}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

KINDS = ("forget", "retain", "mc")
UTILITY_SETS = ("retain", "real_authors", "world_facts")
UTILITY_METRICS = ("rouge", "prob", "truth_ratio")


def as_ragged(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """A list of per-sample lists (possibly of different lengths) as an [N, K_max] array padded with NaN."""
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


@dataclass
class SetSamples:
    """Per-sample statistics of one evaluation set."""

    kind: str
    gt_loss: np.ndarray  # S/|y| of the answer, [N]
    paraphrased_loss: np.ndarray  # S/|y| of the paraphrase (= answer on mc sets), [N]
    perturbed_loss: np.ndarray  # S/|y| of each perturbed answer, [N, K] (NaN where a row has fewer)
    rouge: np.ndarray | None = None  # ROUGE-L recall of the generation, [N]

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        self.gt_loss = np.asarray(self.gt_loss, dtype=np.float64)
        self.paraphrased_loss = np.asarray(self.paraphrased_loss, dtype=np.float64)
        pert = self.perturbed_loss
        if isinstance(pert, list) and pert and isinstance(pert[0], (list, tuple)):
            pert = as_ragged(pert)
        self.perturbed_loss = np.asarray(pert, dtype=np.float64)
        n = len(self.gt_loss)
        if len(self.paraphrased_loss) != n or self.perturbed_loss.shape[0] != n or self.perturbed_loss.ndim != 2:
            raise ValueError("gt_loss, paraphrased_loss and perturbed_loss must describe the same N samples")
        if self.rouge is not None:
            self.rouge = np.asarray(self.rouge, dtype=np.float64)


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_recall(generations: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """ROUGE-L recall of each generation against its reference (``rouge_score``, stemmer on)."""
    scorer = _scorer()
    return np.array([scorer.score(ref, gen)["rougeL"].recall for gen, ref in zip(generations, references, strict=True)])


def truth_ratios(paraphrased_loss: np.ndarray, perturbed_loss: np.ndarray) -> np.ndarray:
    """Q = p̄(paraphrase)/geomean_j p̄(perturbed_j) = exp(mean_j L_pert_j − L_para) per sample."""
    return np.exp(np.nanmean(np.asarray(perturbed_loss, dtype=np.float64), axis=1)
                  - np.asarray(paraphrased_loss, dtype=np.float64))


def truth_ratio_statistic(q: np.ndarray, kind: str) -> float:
    """Forget: mean min(Q, 1/Q); retain-type sets: mean max(0, 1 − 1/Q)."""
    q = np.asarray(q, dtype=np.float64)
    if kind == "forget":
        return float(np.mean(np.minimum(q, 1.0 / q)))
    return float(np.mean(np.maximum(0.0, 1.0 - 1.0 / q)))


def answer_probability(gt_loss: np.ndarray, perturbed_loss: np.ndarray | None, kind: str) -> np.ndarray:
    """Per-sample Probability: p̄(answer), normalised over the options on ``mc`` sets."""
    p_true = np.exp(-np.asarray(gt_loss, dtype=np.float64))
    if kind != "mc":
        return p_true
    p_false = np.nansum(np.exp(-np.asarray(perturbed_loss, dtype=np.float64)), axis=1)
    return p_true / (p_true + p_false)


def forget_quality(q_unlearned: np.ndarray, q_retain: np.ndarray) -> float:
    """p-value of the two-sided two-sample KS test between the two models' forget-set truth ratios."""
    return float(stats.ks_2samp(np.asarray(q_unlearned), np.asarray(q_retain)).pvalue)


def harmonic_mean(values: Sequence[float]) -> float:
    """Harmonic mean; 0 if any value is 0 (a model with no utility on one axis has none overall)."""
    values = np.asarray(values, dtype=np.float64)
    if np.any(values <= 0):
        return 0.0
    return float(stats.hmean(values))


def aggregate_set(samples: SetSamples) -> dict[str, float]:
    """ROUGE, Probability and the truth-ratio statistic of one set."""
    q = truth_ratios(samples.paraphrased_loss, samples.perturbed_loss)
    out = {
        "prob": float(np.mean(answer_probability(samples.gt_loss, samples.perturbed_loss, samples.kind))),
        "truth_ratio": truth_ratio_statistic(q, samples.kind),
        "n": len(samples.gt_loss),
    }
    if samples.rouge is not None:
        out["rouge"] = float(np.mean(samples.rouge))
    return out


def model_utility_9(per_set: Mapping[str, Mapping[str, float]]) -> float | None:
    """TOFU Model Utility: harmonic mean of the 9 numbers; None if a set or metric is missing."""
    try:
        values = [per_set[s][m] for s in UTILITY_SETS for m in UTILITY_METRICS]
    except KeyError:
        return None
    return harmonic_mean(values)


def aggregate(sets: Mapping[str, SetSamples], retain_truth_ratios: np.ndarray | None = None) -> dict:
    """Every TOFU aggregate: per-set metrics, ``model_utility_9`` and (given the retain model's forget-set
    truth ratios) ``forget_quality``."""
    per_set = {name: aggregate_set(s) for name, s in sets.items()}
    result: dict = {"sets": per_set, "model_utility_9": model_utility_9(per_set), "forget_quality": None}
    if retain_truth_ratios is not None and "forget" in sets:
        forget = sets["forget"]
        q = truth_ratios(forget.paraphrased_loss, forget.perturbed_loss)
        if len(q) != len(retain_truth_ratios):
            raise ValueError(f"forget set has {len(q)} rows but the retain reference has {len(retain_truth_ratios)}: "
                             "Forget Quality compares the same forget rows")
        result["forget_quality"] = forget_quality(q, retain_truth_ratios)
    return result
