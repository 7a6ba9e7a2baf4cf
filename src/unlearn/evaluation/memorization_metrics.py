"""Exact Memorization and Extraction Strength of an answer under teacher forcing (docs/formulas.md#memorization).

Both read one vector per sample: whether each answer token y_t is the model's greedy next token given the prompt and
the true y_<t (:func:`unlearn.evaluation.likelihood.batched_greedy_hits` computes it in the likelihood pass).

- **Exact Memorization** (Tirumala et al. 2022, as OpenUnlearning reports it): EM = (1/|y|) Σ_t 1[argmax = y_t].
- **Extraction Strength** (Carlini et al. 2021, OpenUnlearning's form): ES = 1 − k*/|y|, where k* is the shortest
  prefix y_<k after which greedy decoding reproduces the rest y_≥k. Greedy decoding from the true prefix follows the
  true tokens exactly while each of them is the argmax, so k* is where the final run of hits starts and ES is the
  length of that run over |y|.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
