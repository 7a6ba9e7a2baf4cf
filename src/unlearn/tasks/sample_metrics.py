"""Per-sample metrics added to the evaluation tasks by plugins (:func:`unlearn.extend.register_sample_metric`).

A task's evaluation computes some **inputs** per sample (:data:`SAMPLE_INPUTS`); a registered :class:`SampleMetric`
names the inputs it reads and turns them into one value per sample. Every task whose evaluation provides those
inputs (its :attr:`~unlearn.tasks.base.Task.sample_inputs`) then reports the metric on each of its sets beside its
own: the mean per set, the 95 % bootstrap interval where the task gives its own metrics one, the per-sample value in
the eval rows, ``unlearn tasks``, sweeps (``SET.<key>``) and the reports that show it. An input a set does not have
(no greedy hits in a TOFU authors' log) leaves the metric out of that set, never a placeholder.

OpenUnlearning's Exact Memorization, Extraction Strength, the truth ratio's knowledge form and the unnormalised
paraphrase probability come this way, from :mod:`unlearn_baselines.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unlearn.errors import ConfigError
from unlearn.registry import Registry, RegistryError
from unlearn.tasks.base import MetricSpec

SAMPLE_INPUTS: dict[str, str] = {
    "greedy_hits": "per sample, whether each answer (MUSE: reference) token is the greedy next token given the "
                   "prompt and the true earlier tokens (teacher forcing): a bool array of the answer's length",
    "gt_loss": "TOFU-style sets: the answer's average NLL S/|y|, [N]",
    "paraphrased_loss": "TOFU-style sets: the paraphrased answer's average NLL (the answer on option-normalised "
                        "sets), [N]",
    "perturbed_loss": "TOFU-style sets: each perturbed answer's average NLL, [N, K] (NaN where a row has fewer)",
}
"""What a task's evaluation can hand a sample metric, by name."""


@dataclass(frozen=True)
class SampleMetric:
    """A per-sample metric: its declaration (a ``scope="set"`` :class:`MetricSpec`), the inputs it reads, and
    ``compute(inputs) -> values`` with one value per sample."""

    spec: MetricSpec
    inputs: tuple[str, ...]
    compute: Callable[[Mapping[str, Any]], Sequence[float] | np.ndarray]
    tasks: tuple[str, ...] = ()  # only these tasks (by name); empty: every task that provides the inputs

    def applies_to(self, task_name: str, provided: Sequence[str]) -> bool:
        return (not self.tasks or task_name in self.tasks) and all(i in provided for i in self.inputs)


SAMPLE_METRICS: Registry[SampleMetric] = Registry("sample metric")


def register(metric: SampleMetric, origin: str = "") -> SampleMetric:
    """Check and add ``metric`` under its key."""
    if metric.spec.scope != "set":
        raise RegistryError(f"sample metric {metric.spec.key!r}: its MetricSpec scope must be 'set' (a mean per set), "
                            f"not {metric.spec.scope!r}")
    unknown = [i for i in metric.inputs if i not in SAMPLE_INPUTS]
    if unknown or not metric.inputs:
        raise RegistryError(f"sample metric {metric.spec.key!r}: inputs must be some of {', '.join(SAMPLE_INPUTS)}"
                            + (f" (unknown: {', '.join(unknown)})" if unknown else " (none given)"))
    if not callable(metric.compute):
        raise RegistryError(f"sample metric {metric.spec.key!r}: compute must be callable")
    return SAMPLE_METRICS.register(metric.spec.key, metric, origin=origin)


def metrics_for(task_name: str, provided: Sequence[str]) -> list[SampleMetric]:
    """The registered metrics a task that provides ``provided`` inputs reports."""
    return [SAMPLE_METRICS[k] for k in SAMPLE_METRICS if SAMPLE_METRICS[k].applies_to(task_name, provided)]


def needs(task_name: str, provided: Sequence[str], name: str) -> bool:
    """Whether some registered metric of the task reads input ``name`` (the evaluation computes it only then)."""
    return any(name in m.inputs for m in metrics_for(task_name, provided))


def compute(task_name: str, provided: Sequence[str], inputs: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    """Every applicable metric whose inputs are all present (not None) in ``inputs``, as ``{key: [n] values}``; a
    metric that returns another number of values is an error naming it and its plugin."""
    out: dict[str, np.ndarray] = {}
    for metric in metrics_for(task_name, provided):
        if any(inputs.get(i) is None for i in metric.inputs):
            continue
        values = np.asarray(metric.compute(inputs), dtype=np.float64)
        if values.shape != (n,):
            raise ConfigError(f"sample metric {metric.spec.key!r} ({SAMPLE_METRICS.origin(metric.spec.key)}) returned "
                              f"shape {values.shape} for {n} samples")
        out[metric.spec.key] = values
    return out
