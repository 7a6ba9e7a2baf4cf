"""The extension API: everything a plugin needs to add a forget objective, a regularizer, a weight-edit method, an
evaluation task, a per-sample metric of the tasks' sets, an attack or a scenario without touching the package
(docs/extending.md).

A plugin is a module that calls these ``register_*`` functions when imported; :mod:`unlearn.plugins` says how it is
found (entry points, ``--plugin``, :data:`unlearn.plugins.ENV`). What it registers is then usable wherever a
built-in is: ``unlearn run method=mine+gd``, sweeps, attacks, reports, ``unlearn methods`` and ``unlearn tasks``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from unlearn.attacks import Attack, register_attack
from unlearn.data.formatting import IGNORE_INDEX
from unlearn.errors import ConfigError
from unlearn.objectives import forget as forget_losses
from unlearn.objectives import retain as retain_losses
from unlearn.objectives.components import (
    FORGET_OBJECTIVES,
    REGULARIZERS,
    ForgetObjective,
    Measure,
    Objective,
    Regularizer,
    param,
)
from unlearn.objectives.methods import register_alias
from unlearn.objectives.needs import GeneratedAnswers, Need, StepInputs
from unlearn.objectives.sequence import shifted_token_nll, upcast
from unlearn.objectives.weight_edit import WEIGHT_EDIT_METHODS, WeightEditMethod
from unlearn.plugins import load_plugins
from unlearn.registry import Registry, RegistryError
from unlearn.scenarios import register_scenario
from unlearn.tasks import register as _register_task
from unlearn.tasks.base import EvalResult, MetricSpec, SetSpec, Task
from unlearn.tasks.sample_metrics import SAMPLE_INPUTS, SampleMetric
from unlearn.tasks.sample_metrics import register as _register_sample_metric


def _check_objective(cls: Any, base: type, what: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise RegistryError(f"register_{what} expects a subclass of {base.__name__}, got {cls!r}")
    for attr in ("name", "summary"):
        if not isinstance(getattr(cls, attr, None), str) or not getattr(cls, attr):
            raise RegistryError(f"{cls.__name__} needs a class attribute {attr!r} (a non-empty string)")
    if "+" in cls.name:
        raise RegistryError(f"{cls.__name__}.name {cls.name!r}: '+' joins a forget objective and a regularizer")
    if not dataclasses.is_dataclass(getattr(cls, "Params", None)):
        raise RegistryError(f"{cls.__name__}.Params must be a dataclass of param(...) fields (or inherit the "
                            "empty one)")


def _register(registry: Registry, cls: Any, base: type, what: str, aliases: tuple[str, ...]) -> Any:
    _check_objective(cls, base, what)
    return registry.register(cls.name, cls, aliases=aliases, origin=cls.__module__)


def register_forget_objective(cls: type[ForgetObjective], aliases: tuple[str, ...] = ()) -> type[ForgetObjective]:
    """Add a forget objective; usable as a decorator. ``cls.name`` then composes with every regularizer
    (``name+gd``, ``name+kl``, …)."""
    return _register(FORGET_OBJECTIVES, cls, ForgetObjective, "forget_objective", aliases)


def register_regularizer(cls: type[Regularizer], aliases: tuple[str, ...] = ()) -> type[Regularizer]:
    """Add a retain regularizer; usable as a decorator."""
    return _register(REGULARIZERS, cls, Regularizer, "regularizer", aliases)


def register_weight_edit(cls: type[WeightEditMethod], aliases: tuple[str, ...] = ()) -> type[WeightEditMethod]:
    """Add a weight-edit method (like ``task_vector``); usable as a decorator."""
    return _register(WEIGHT_EDIT_METHODS, cls, WeightEditMethod, "weight_edit", aliases)


def register_method_alias(alias: str, method: str) -> None:
    """``method=ALIAS`` then means ``method=METHOD`` (``register_method_alias("pdu", "lmf+dual")``): the name a paper
    gives to one composition of an objective and a regularizer."""
    import inspect

    caller = inspect.stack()[1].frame.f_globals.get("__name__", "")
    register_alias(alias, method, origin=caller)


def register_task(task: Task) -> Task:
    """Add an evaluation task (an instance of a :class:`Task` subclass); ``eval.task=<its name>`` then selects it."""
    return _register_task(task)


def register_sample_metric(spec: MetricSpec, inputs: Sequence[str],
                           compute: Callable[[Mapping[str, Any]], Sequence[float] | np.ndarray],
                           tasks: Sequence[str] = ()) -> SampleMetric:
    """Add a per-sample metric to the sets of every task whose evaluation provides ``inputs`` (names of
    :data:`SAMPLE_INPUTS`: ``greedy_hits``, ``gt_loss``, …), or of ``tasks`` only. ``spec`` declares it (a
    ``scope="set"`` :class:`MetricSpec`: key, name, direction, how to read it on the forget set); ``compute`` maps
    ``{input name: per-sample values}`` to one value per sample. The tasks then report its mean per set (with their
    bootstrap intervals), its value in every eval row, and list it in ``unlearn tasks``."""
    import inspect

    caller = inspect.stack()[1].frame.f_globals.get("__name__", "")
    return _register_sample_metric(SampleMetric(spec, tuple(inputs), compute, tuple(tasks)), origin=caller)


__all__ = [
    "IGNORE_INDEX", "SAMPLE_INPUTS", "Attack", "ConfigError", "EvalResult", "ForgetObjective", "GeneratedAnswers",
    "Measure", "MetricSpec", "Need", "Objective", "Regularizer", "SampleMetric", "SetSpec", "StepInputs", "Task",
    "WeightEditMethod", "forget_losses", "load_plugins", "param", "register_attack", "register_forget_objective",
    "register_method_alias", "register_regularizer", "register_sample_metric", "register_scenario", "register_task",
    "register_weight_edit", "retain_losses", "shifted_token_nll", "upcast",
]
