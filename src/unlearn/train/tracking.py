"""Experiment trackers the HF way: Accelerate's tracker API (``report_to=tensorboard|wandb|mlflow|none``).

Per optimizer step the loop logs its losses, learning rate and gradient norm; per epoch, every number of the
evaluation (flattened to ``eval/sets/forget/rouge``-style names). TensorBoard writes into the run directory
(``tracking/``), so it works offline.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

from unlearn.errors import ConfigError

TRACKERS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow")}
"""``report_to`` value → (the module it needs, the pip package that provides it)."""
TRACKING_DIR = "tracking"  # RunDirectory.TRACKING


def check_tracker(name: str) -> None:
    """One line, before any compute, when the named tracker's package is missing."""
    if name == "none":
        return
    module, package = TRACKERS[name]
    try:
        importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"report_to={name}: the {package} package is not installed; install it with "
                          f"pip install {package} (or '.[tracking]' from a checkout for TensorBoard), or use "
                          "report_to=none") from None


def _leaves(values: Mapping[str, Any], sep: str, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) of every non-mapping value of a nested mapping, the path's parts joined by ``sep``."""
    for key, value in values.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from _leaves(value, sep, name)
        else:
            yield name, value


def flat_numbers(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a nested mapping, named by their path (``a/b/c``); lists and strings are left out."""
    return {name: float(value) for name, value in _leaves(values, "/", prefix)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)}


def flat_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """The run's configuration as flat scalars (TensorBoard's hyper-parameters take no lists or nesting)."""
    return {name: value if isinstance(value, (int, float, str, bool)) else str(value)
            for name, value in _leaves(values, ".")}
