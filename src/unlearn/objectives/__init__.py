"""Unlearning objectives as pure functions on tensors (DESIGN.md), and the method registry.

- :mod:`.sequence`: per-sample summed NLL S(y|x) and label counts |y| from logits and labels.
- :mod:`.forget`: forget losses of SPEC §1 (GA, NPO, SimNPO, W-GradDiff, IDK, DPO, ME).
- :mod:`.retain`: retain regularizers of SPEC §2 (GD, KL, AP).
- :mod:`.methods`: forget objective × regularizer × weights, looked up by name (``simnpo+gd``).
"""
