"""Scenarios: compositions of the finetune / unlearn / evaluate stages (`unlearn scenario NAME`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _continual() -> tuple[type, Callable[..., Any], str]:
    from unlearn.scenarios.continual import ContinualConfig, run_continual

    return ContinualConfig, run_continual, "continual"


def _memorization() -> tuple[type, Callable[..., Any], str]:
    from unlearn.scenarios.memorization import MemorizationConfig, run_memorization

    return MemorizationConfig, run_memorization, "memorization"


def _divergence() -> tuple[type, Callable[..., Any], str]:
    from unlearn.scenarios.divergence import DivergenceConfig, run_divergence

    return DivergenceConfig, run_divergence, "divergence"


def _ref_perturbation() -> tuple[type, Callable[..., Any], str]:
    from unlearn.scenarios.ref_perturbation import RefPerturbationConfig, run_ref_perturbation

    return RefPerturbationConfig, run_ref_perturbation, "ref_perturbation"


SCENARIOS: dict[str, Callable[[], tuple[type, Callable[..., Any], str]]] = {
    "continual": _continual, "memorization": _memorization, "divergence": _divergence,
    "ref_perturbation": _ref_perturbation,
}
"""Name → (its settings class, its runner ``(RunConfig, settings) → output dir``, its results' file stem)."""
