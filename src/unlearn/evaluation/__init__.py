"""Evaluation: batched likelihoods and generation, TOFU metrics, and the TOFU eval-log format.

The importable API for TOFU aggregates is :mod:`unlearn.evaluation.tofu_metrics`.
"""
