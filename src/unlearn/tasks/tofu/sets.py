"""TOFU's four evaluation sets and how each one is scored (docs/formulas.md#tofu-metrics).

A set's *type* decides two formulas:

- ``forget``: Probability = mean p̄(answer); truth-ratio statistic = mean min(Q, 1/Q);
- ``retain``: Probability = mean p̄(answer); statistic = mean max(0, 1 − 1/Q);
- ``option_normalised`` (real_authors, world_facts): Probability normalised over the answer options,
  p̄(a)/(p̄(a) + Σ_j p̄(perturbed_j)); the "paraphrase" is the answer itself; statistic as ``retain``.
"""

from __future__ import annotations

FORGET, RETAIN, OPTION_NORMALISED = "forget", "retain", "option_normalised"
SET_TYPES = (FORGET, RETAIN, OPTION_NORMALISED)
TOFU_SETS: dict[str, str] = {"forget": FORGET, "retain": RETAIN, "real_authors": OPTION_NORMALISED,
                             "world_facts": OPTION_NORMALISED}
"""Set name → set type, in TOFU's order."""
UTILITY_SETS = ("retain", "real_authors", "world_facts")
"""The sets whose numbers make up Model Utility."""
