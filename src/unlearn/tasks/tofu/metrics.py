"""TOFU metrics as pure functions (docs/formulas.md#tofu-metrics) — the importable API for TOFU aggregates.

Inputs are per-sample average NLLs (S/|y|, TOFU's ``avg_*_loss``) and ROUGE values, so the same code scores
our own evaluations and the TOFU authors' ``eval_log_aggregated.json`` files::

    from unlearn.tasks.tofu.metrics import SetSamples, aggregate
    sets = {"forget": SetSamples(set_type="forget", gt_loss=..., paraphrased_loss=..., perturbed_loss=..., rouge=...),
            ...}
    aggregate(sets, retain_truth_ratios=q_retain)   # → per-set ROUGE/Prob/TR, model_utility_9, forget_quality

Definitions (p̄ = exp(−S/|y|)):
- Probability: mean p̄(answer); on ``option_normalised`` sets (real authors, world facts)
  mean p̄(a)/(p̄(a) + Σ_j p̄(pert_j)).
- Truth ratio per sample Q = p̄(paraphrase) / geometric-mean_j p̄(perturbed_j).
  Forget set reports mean min(Q, 1/Q); the others mean max(0, 1 − 1/Q).
- Forget Quality: KS two-sample p-value between the unlearned and the retain model's Q on the forget rows.
- Model Utility (9): harmonic mean of {retain, real_authors, world_facts} × {ROUGE, Prob, TR}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import stats

from unlearn.tasks.tofu.closer_look import harmonic_mean, summarize
from unlearn.tasks.tofu.sets import FORGET, OPTION_NORMALISED, SET_TYPES, UTILITY_SETS

UTILITY_METRICS = ("rouge", "prob", "truth_ratio")
TOFU_SAMPLE_INPUTS = ("greedy_hits", "gt_loss", "paraphrased_loss", "perturbed_loss")
"""What a TOFU-style set hands registered sample metrics (:meth:`SetSamples.sample_inputs`)."""


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

    set_type: str  # see unlearn.tasks.tofu.sets
    gt_loss: np.ndarray  # S/|y| of the answer, [N]
    paraphrased_loss: np.ndarray  # S/|y| of the paraphrase (= answer on option-normalised sets), [N]
    perturbed_loss: np.ndarray  # S/|y| of each perturbed answer, [N, K] (NaN where a row has fewer)
    rouge: np.ndarray | None = None  # ROUGE-L recall of the generation, [N]
    token_entropy: np.ndarray | None = None  # closer-look TE of the generation, [N]
    cosine_similarity: np.ndarray | None = None  # closer-look CS of generation vs answer, [N]
    entailment: np.ndarray | None = None  # closer-look ES per sample (1/0), [N]
    greedy_hits: list[np.ndarray] | None = None  # per sample: each answer token the greedy next token? (bool)
    recorded: dict[str, np.ndarray] | None = None  # sample metrics' per-sample values read from older rows, [N] each

    def __post_init__(self):
        if self.set_type not in SET_TYPES:
            raise ValueError(f"set_type must be one of {SET_TYPES}, got {self.set_type!r}")
        self.gt_loss = np.asarray(self.gt_loss, dtype=np.float64)
        self.paraphrased_loss = np.asarray(self.paraphrased_loss, dtype=np.float64)
        pert = self.perturbed_loss
        if isinstance(pert, list) and pert and isinstance(pert[0], (list, tuple)):
            pert = as_ragged(pert)
        self.perturbed_loss = np.asarray(pert, dtype=np.float64)
        n = len(self.gt_loss)
        if len(self.paraphrased_loss) != n or self.perturbed_loss.shape[0] != n or self.perturbed_loss.ndim != 2:
            raise ValueError("gt_loss, paraphrased_loss and perturbed_loss must describe the same N samples")
        for name in ("rouge", "token_entropy", "cosine_similarity", "entailment"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float64)
                if len(value) != n:
                    raise ValueError(f"{name} has {len(value)} values for {n} samples")
                setattr(self, name, value)
        for name, value in (self.recorded or {}).items():
            if len(value) != n:
                raise ValueError(f"recorded {name} has {len(value)} values for {n} samples")
        if self.greedy_hits is not None:
            if len(self.greedy_hits) != n:
                raise ValueError(f"greedy_hits has {len(self.greedy_hits)} rows for {n} samples")
            self.greedy_hits = [np.asarray(h, dtype=bool) for h in self.greedy_hits]

    def sample_inputs(self) -> dict[str, Any]:
        """What registered sample metrics read (:data:`unlearn.tasks.sample_metrics.SAMPLE_INPUTS`)."""
        return {"greedy_hits": self.greedy_hits, "gt_loss": self.gt_loss, "paraphrased_loss": self.paraphrased_loss,
                "perturbed_loss": self.perturbed_loss}


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


def truth_ratio_statistic(q: np.ndarray, set_type: str) -> float:
    """Forget: mean min(Q, 1/Q); retain-type sets: mean max(0, 1 − 1/Q)."""
    q = np.asarray(q, dtype=np.float64)
    if set_type == FORGET:
        return float(np.mean(np.minimum(q, 1.0 / q)))
    return float(np.mean(np.maximum(0.0, 1.0 - 1.0 / q)))


def answer_probability(gt_loss: np.ndarray, perturbed_loss: np.ndarray | None, set_type: str) -> np.ndarray:
    """Per-sample Probability: p̄(answer), normalised over the options on ``option_normalised`` sets."""
    p_true = np.exp(-np.asarray(gt_loss, dtype=np.float64))
    if set_type != OPTION_NORMALISED:
        return p_true
    p_false = np.nansum(np.exp(-np.asarray(perturbed_loss, dtype=np.float64)), axis=1)
    return p_true / (p_true + p_false)


def forget_quality(q_unlearned: np.ndarray, q_retain: np.ndarray) -> float:
    """p-value of the two-sided two-sample KS test between the two models' forget-set truth ratios."""
    return float(stats.ks_2samp(np.asarray(q_unlearned), np.asarray(q_retain)).pvalue)


def per_sample_values(samples: SetSamples, task: str = "tofu") -> dict[str, np.ndarray]:
    """Every per-sample quantity whose mean is a reported metric (Token Entropy only off the forget set), the
    registered sample metrics of ``task`` among them (:mod:`unlearn.tasks.sample_metrics`: EM, ES, the knowledge
    truth ratio, …) where the set has their inputs."""
    from unlearn.tasks import sample_metrics

    q = truth_ratios(samples.paraphrased_loss, samples.perturbed_loss)
    values = {
        "prob": answer_probability(samples.gt_loss, samples.perturbed_loss, samples.set_type),
        "truth_ratio": np.minimum(q, 1.0 / q) if samples.set_type == FORGET else np.maximum(0.0, 1.0 - 1.0 / q),
    }
    optional = {"rouge": samples.rouge, "cosine_similarity": samples.cosine_similarity,
                "entailment": samples.entailment}
    if samples.set_type != FORGET:
        optional["token_entropy"] = samples.token_entropy
    values.update({k: v for k, v in optional.items() if v is not None})
    computed = sample_metrics.compute(task, TOFU_SAMPLE_INPUTS, samples.sample_inputs(), len(samples.gt_loss))
    # rows written before a metric's input was kept (EM and ES before the greedy hits were): their recorded values
    values.update({k: np.asarray(v, dtype=np.float64) for k, v in (samples.recorded or {}).items()
                   if k not in computed})
    values.update(computed)
    return values


def bootstrap_ci(values: np.ndarray, seed: int = 0, n_resamples: int = 1000) -> tuple[float, float]:
    """95 % percentile bootstrap confidence interval of the mean (``scipy.stats.bootstrap``)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2 or np.all(values == values[0]):
        return float(np.mean(values)), float(np.mean(values))
    result = stats.bootstrap((values,), np.mean, n_resamples=n_resamples, confidence_level=0.95,
                             method="percentile", rng=np.random.default_rng(seed), vectorized=True)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def aggregate_set(samples: SetSamples, n_resamples: int = 0, seed: int = 0, task: str = "tofu") -> dict:
    """Means of every per-sample metric of one set (``rouge``, ``prob``, ``truth_ratio`` = TOFU's statistic,
    and the closer-look ``token_entropy``, ``cosine_similarity``, ``entailment`` when present), the sample
    count, and with ``n_resamples`` > 0 their 95 % bootstrap intervals under ``ci95``."""
    values = per_sample_values(samples, task)
    out: dict = {name: float(np.mean(v)) for name, v in values.items()}
    out["n"] = len(samples.gt_loss)
    if n_resamples > 0:
        out["ci95"] = {name: list(bootstrap_ci(v, seed, n_resamples)) for name, v in values.items()}
    return out


def model_utility_9(per_set: Mapping[str, Mapping[str, float]]) -> float | None:
    """TOFU Model Utility: harmonic mean of the 9 numbers; None if a set or metric is missing."""
    try:
        values = [per_set[s][m] for s in UTILITY_SETS for m in UTILITY_METRICS]
    except KeyError:
        return None
    return harmonic_mean(values)


def aggregate(
    sets: Mapping[str, SetSamples],
    retain_truth_ratios: np.ndarray | None = None,
    unavailable: Mapping[str, str] | None = None,
    n_resamples: int = 0,
    seed: int = 0,
) -> dict:
    """Every aggregate: per-set metrics, ``model_utility_9``, ``forget_quality`` (given the retain model's
    forget-set truth ratios) and the closer-look block (``closer_look``: ``forget_efficacy``,
    ``model_utility_18``, and what was unavailable and why — see :mod:`unlearn.tasks.tofu.closer_look`)."""
    per_set = {name: aggregate_set(s, n_resamples, seed) for name, s in sets.items()}
    result: dict = {"sets": per_set, "model_utility_9": model_utility_9(per_set), "forget_quality": None}
    if retain_truth_ratios is not None and "forget" in sets:
        forget = sets["forget"]
        q = truth_ratios(forget.paraphrased_loss, forget.perturbed_loss)
        if len(q) != len(retain_truth_ratios):
            raise ValueError(f"forget set has {len(q)} rows but the retain reference has {len(retain_truth_ratios)}: "
                             "Forget Quality compares the same forget rows")
        result["forget_quality"] = forget_quality(q, retain_truth_ratios)
    result["closer_look"] = summarize(per_set, unavailable or {})
    return result
