"""Scenarios: compositions of the finetune / unlearn / evaluate stages (`unlearn scenario NAME`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

SCENARIOS: dict[str, tuple[str, str]] = {
    "continual": ("ContinualConfig", "run_continual"),
    "memorization": ("MemorizationConfig", "run_memorization"),
    "divergence": ("DivergenceConfig", "run_divergence"),
    "ref_perturbation": ("RefPerturbationConfig", "run_ref_perturbation"),
    "real_world": ("RealWorldConfig", "run_real_world"),
}
"""Name → (its settings class, its runner) in ``unlearn.scenarios.<name>``; the runner takes (RunConfig, settings),
writes ``<name>.json`` and ``<name>.md`` into the output directory and returns it."""


def load_scenario(name: str) -> tuple[type, Callable[..., Any]]:
    """The settings class and runner of scenario ``name`` (imported on demand)."""
    module = importlib.import_module(f"unlearn.scenarios.{name}")
    config_class, runner = SCENARIOS[name]
    return getattr(module, config_class), getattr(module, runner)
