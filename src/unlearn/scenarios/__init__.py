"""Scenarios: compositions of the finetune / unlearn / evaluate stages (`unlearn scenario NAME`)."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn.registry import Registry, RegistryError


@dataclass(frozen=True)
class Scenario:
    """A scenario: its name, its settings dataclass (the ``key=value`` settings of ``unlearn scenario NAME`` that
    are not run keys) and its runner ``runner(RunConfig, settings) -> output_dir``, which writes ``<name>.json``
    and ``<name>.md`` there. ``load`` gives both, so a built-in's module is imported only when it runs."""

    name: str
    load: Callable[[], tuple[type, Callable[..., Any]]]
    task: str | None = None
    """The task every run of the scenario is evaluated by, whatever ``eval.task`` says (real_world's); None: the
    configuration's."""


def _lazy(module: str, config_class: str, runner: str) -> Callable[[], tuple[type, Callable[..., Any]]]:
    def load() -> tuple[type, Callable[..., Any]]:
        loaded = importlib.import_module(f"unlearn.scenarios.{module}")
        return getattr(loaded, config_class), getattr(loaded, runner)

    return load


def _builtin() -> None:
    for name, config_class, runner, task in (("continual", "ContinualConfig", "run_continual", None),
                                             ("memorization", "MemorizationConfig", "run_memorization", None),
                                             ("divergence", "DivergenceConfig", "run_divergence", None),
                                             ("ref_perturbation", "RefPerturbationConfig", "run_ref_perturbation",
                                              None),
                                             ("real_world", "RealWorldConfig", "run_real_world", "real_world"),
                                             ("sequential", "SequentialConfig", "run_sequential", None)):
        SCENARIOS.register(name, Scenario(name, _lazy(name, config_class, runner), task),
                           origin=f"unlearn.scenarios.{name}")


SCENARIOS: Registry[Scenario] = Registry("scenario", loader=_builtin)


def register_scenario(name: str, config_class: type, runner: Callable[..., Any]) -> Scenario:
    """Add a scenario from its settings dataclass and its runner (a plugin's: :func:`unlearn.extend`)."""
    if not isinstance(config_class, type) or not callable(runner):
        raise RegistryError(f"register_scenario({name!r}, …) needs a settings dataclass and a callable runner")
    return SCENARIOS.register(name, Scenario(name, lambda: (config_class, runner)),
                              origin=getattr(runner, "__module__", ""))


def run_scenario(name: str, cfg: Any, settings: Any) -> Path:
    """Run scenario ``name`` with its ``settings`` on the base ``cfg``; its ``<name>.json`` gets the provenance of the
    whole scenario (every data file it read, the starting model; each of its runs has its own in ``metrics.json``).
    Returns the output directory."""
    from unlearn.data.files import recording_reads
    from unlearn.experiments.pipeline import provenance_of
    from unlearn.experiments.plan import plan_evaluation
    from unlearn.provenance import stamp

    scenario = SCENARIOS.get_entry(name)
    _, runner = scenario.load()
    with recording_reads() as reads:
        out = Path(runner(cfg, settings))
    result = out / f"{scenario.name}.json"
    if result.is_file():
        base = cfg if scenario.task is None else dataclasses.replace(
            cfg, eval=dataclasses.replace(cfg.eval, task=scenario.task))
        stamp(result, provenance_of(plan_evaluation(base), reads))
    return out


def load_scenario(name: str) -> tuple[type, Callable[..., Any]]:
    """The settings class and runner of scenario ``name``; unknown is one line with the closest names."""
    return SCENARIOS.get_entry(name).load()
