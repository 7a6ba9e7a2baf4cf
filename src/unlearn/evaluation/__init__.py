"""Evaluation: the task registry (:mod:`.tasks`), the requests every task builds on (batched likelihoods,
left-padded generation), and TOFU's metrics and eval-log format.

The importable API for TOFU aggregates is :mod:`unlearn.tasks.tofu.metrics`.
"""
