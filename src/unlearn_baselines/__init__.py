"""The field's other baselines, shipped as a plugin of ``unlearn`` (issue 25): everything here is registered through
:mod:`unlearn.extend` alone, the door any plugin author uses, and is found through this distribution's entry point
(``unlearn.methods``), so ``method=wga+gd``, ``satimp+gd``, ``ceu``, ``undial+gd`` work wherever a built-in does.

- :mod:`.losses`: the losses as pure functions of token log-probabilities or logits, each citing its paper;
- :mod:`.objectives`: the forget objectives that declare what they read from a step and call them;
- :mod:`.metrics`: OpenUnlearning's per-sample metrics (Exact Memorization, Extraction Strength, the truth ratio's
  knowledge form, the paraphrase probability), which every task that provides their inputs reports.
"""

from unlearn_baselines import metrics, objectives  # noqa: F401 - registers the metrics and the objectives
