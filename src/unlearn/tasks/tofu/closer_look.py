"""The closer-look metrics (closer-look §2.2; docs/formulas.md#closer-look-metrics): Token Entropy, Cosine
Similarity, Entailment Score, Forget Efficacy and the 18-number Model Utility — pure functions on per-sample values.

- Token Entropy (non-forget sets only): tokens of a generation by the model tokenizer, f_w = count/N,
  TE = (−Σ f_w log2 f_w) / log2 N, and 0 when N ≤ 1.
- Cosine Similarity: embedding cosine of generation vs reference, clipped at 0 (see :mod:`.aux_models`).
- Entailment Score: fraction of samples an NLI classifier judges "entailment". Forget set: premise =
  generation, hypothesis = ground truth; other sets: premise = ground truth, hypothesis = generation. A sample
  whose ROUGE is below 0.1 counts as not entailed without asking the classifier.
- Forget Efficacy: 1 − mean(forget ROUGE, Prob, 1 − mean min(Q, 1/Q), CS, ES).
- Model Utility (18): harmonic mean of {retain, real_authors, world_facts} × {ROUGE, Prob, TR, TE, CS, ES};
  distinct from TOFU's 9-number ``model_utility_9``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from unlearn.tasks.tofu.sets import TOFU_SETS, UTILITY_SETS

ES_ROUGE_SHORTCUT = 0.1
CLOSER_LOOK_METRICS = ("rouge", "prob", "truth_ratio", "token_entropy", "cosine_similarity", "entailment")
FORGET_EFFICACY_TERMS = ("rouge", "prob", "truth_ratio", "cosine_similarity", "entailment")


def token_entropy(tokens: Sequence[int | str]) -> float:
    """Normalised token entropy of one generation (0 for N ≤ 1)."""
    n = len(tokens)
    if n <= 1:
        return 0.0
    entropy = -sum((c / n) * math.log2(c / n) for c in Counter(tokens).values())
    return entropy / math.log2(n)


def entailment_pairs(generations: Sequence[str], references: Sequence[str],
                     generation_premise: bool) -> tuple[list[str], list[str]]:
    """(premises, hypotheses): TOFU asks whether the generation entails the truth on the forget set
    (``generation_premise``) and whether the truth entails the generation elsewhere; the real-world scenario asks
    the former on every set, its golden answers being too short to entail anything (closer-look App. D)."""
    if generation_premise:
        return list(generations), list(references)
    return list(references), list(generations)


def entailment_scores(
    classifier,
    generations: Sequence[str],
    references: Sequence[str],
    rouge: Sequence[float],
    generation_premise: bool,
) -> np.ndarray:
    """Per-sample 1/0 entailment; samples with ROUGE < 0.1 are 0 and never reach the classifier.

    ``classifier.entails(premises, hypotheses)`` returns one boolean per pair.
    """
    rouge = np.asarray(rouge, dtype=np.float64)
    out = np.zeros(len(generations), dtype=np.float64)
    ask = np.flatnonzero(rouge >= ES_ROUGE_SHORTCUT)
    if len(ask):
        premises, hypotheses = entailment_pairs([generations[i] for i in ask], [references[i] for i in ask],
                                                generation_premise)
        out[ask] = np.asarray(classifier.entails(premises, hypotheses), dtype=np.float64)
    return out


def forget_efficacy(forget: Mapping[str, float], terms: Sequence[str] = FORGET_EFFICACY_TERMS) -> float:
    """1 − mean of the forget-set ``terms``; ``truth_ratio`` is TOFU's mean min(Q, 1/Q), used as 1 − it."""
    values = [1.0 - forget[t] if t == "truth_ratio" else forget[t] for t in terms]
    return 1.0 - float(np.mean(values))


def harmonic_mean(values: Sequence[float]) -> float:
    """Harmonic mean; 0 if any value is 0 (a model with no utility on one axis has none overall)."""
    values = np.asarray(values, dtype=np.float64)
    if np.any(values <= 0):
        return 0.0
    return float(len(values) / np.sum(1.0 / values))


def model_utility_closer_look(per_set: Mapping[str, Mapping[str, float]], metrics: Sequence[str]) -> float:
    """Harmonic mean of ``metrics`` over the retain, real_authors and world_facts sets."""
    return harmonic_mean([per_set[s][m] for s in UTILITY_SETS for m in metrics])


def summarize(per_set: Mapping[str, Mapping[str, float]], unavailable: Mapping[str, str]) -> dict:
    """The closer-look aggregates from per-set means, with reasons for whatever could not be computed.

    When only the Entailment Score is missing, ``forget_efficacy_without_es`` (4 terms) and
    ``model_utility_without_es`` (15 numbers) are given as well, named so nobody mistakes them for FE / MU-18.
    """
    reasons = dict(unavailable)
    for name, metric in (("cosine_similarity", "CS"), ("entailment", "ES"), ("token_entropy", "TE"),
                         ("rouge", "ROUGE")):
        needed = list(TOFU_SETS) if name != "token_entropy" else list(UTILITY_SETS)
        if any(s in per_set and name not in per_set[s] for s in needed) and metric not in reasons:
            reasons[metric] = "not computed (no generations)" if name != "entailment" else "not computed"
    out: dict = {"forget_efficacy": None, "model_utility_18": None, "unavailable": reasons}
    have_all_sets = all(s in per_set for s in TOFU_SETS)
    if not have_all_sets:
        out["unavailable"]["sets"] = "needs the forget, retain, real_authors and world_facts sets"
        return out

    def available(set_name: str, metrics: Sequence[str]) -> bool:
        return all(m in per_set[set_name] for m in metrics)

    if available("forget", FORGET_EFFICACY_TERMS):
        out["forget_efficacy"] = forget_efficacy(per_set["forget"])
    if all(available(s, CLOSER_LOOK_METRICS) for s in UTILITY_SETS):
        out["model_utility_18"] = model_utility_closer_look(per_set, CLOSER_LOOK_METRICS)
    without_es = [t for t in FORGET_EFFICACY_TERMS if t != "entailment"]
    if out["forget_efficacy"] is None and available("forget", without_es):
        out["forget_efficacy_without_es"] = forget_efficacy(per_set["forget"], without_es)
    mu_terms = [m for m in CLOSER_LOOK_METRICS if m != "entailment"]
    if out["model_utility_18"] is None and all(available(s, mu_terms) for s in UTILITY_SETS):
        out["model_utility_without_es"] = model_utility_closer_look(per_set, mu_terms)
    return out
