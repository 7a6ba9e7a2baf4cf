"""Unlearning objectives as pure functions on tensors, their declarations, and the method registry.

- :mod:`.sequence`: per-sample summed NLL S(y|x) and label counts |y| from logits and labels.
- :mod:`.forget`: forget losses (GA, NPO, SimNPO, W-GradDiff, IDK, DPO, ME; docs/formulas.md#method).
- :mod:`.retain`: retain regularizers (GD, KL, AP).
- :mod:`.needs`: what an objective reads from a step (parts, logits, token log-probs, hidden states, reference).
- :mod:`.components`: the objectives and regularizers with their parameters.
- :mod:`.weight_edit`: weight-edit methods (Task Vector).
- :mod:`.methods`: forget objective × regularizer × weights, looked up by name (``simnpo+gd``).
"""
