"""Stages of multi-stage experiments (the demo, sweeps, scenarios, benchmark scripts): run one, reuse it, or resume
it. A stage's identity is its resolved configuration, not where it lives: a copied run directory is still reused."""

from __future__ import annotations

from collections.abc import Callable

import yaml

from unlearn.config.parsing import flat_keys
from unlearn.experiments.plan import RunPlan
from unlearn.runs import RunDirectory
from unlearn.train.checkpoint import Checkpoint

LOCATION_KEYS = ("output_dir", "cache_dir")
"""Keys that say where a run is or what it shares, not what it computes: ignored when a stage's configuration is
compared."""


def config_difference(run: RunDirectory, config_text: str) -> list[str]:
    """The dotted keys whose values differ between ``run``'s stored ``config.yaml`` and ``config_text`` (the
    location keys aside); the config file's own name when the run has none, or when either is not a mapping and
    the texts differ."""
    if not run.config_file.is_file():
        return [RunDirectory.CONFIG]
    stored = run.read_config()
    try:
        current = yaml.safe_load(config_text)
    except yaml.YAMLError:
        current = None
    if not isinstance(stored, dict) or not isinstance(current, dict):
        return [] if run.holds_config(config_text) else [RunDirectory.CONFIG]
    a, b = (flat_keys({k: v for k, v in c.items() if k not in LOCATION_KEYS}) for c in (stored, current))
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def stage_action(run: RunDirectory, config_text: str) -> str:
    """What a stage in ``run`` needs: ``reuse`` (finished with this configuration), ``resume`` (started with it and
    holding a checkpoint) or ``restart`` (anything else: another configuration's run, an unfinished run without a
    checkpoint, leftovers)."""
    same = not config_difference(run, config_text)
    if same and run.is_complete():
        return "reuse"
    if same and Checkpoint(run.checkpoint_dir).exists():
        return "resume"
    return "restart"


def other_run(run: RunDirectory, config_text: str) -> list[str]:
    """The keys that differ when ``run`` holds a finished run, or one with a checkpoint, of another configuration
    (what a restart would destroy); empty otherwise."""
    if not (run.is_complete() or Checkpoint(run.checkpoint_dir).exists()):
        return []
    return config_difference(run, config_text)


def run_stage(run: RunDirectory, config_text: str, execute: Callable[..., object]) -> bool:
    """Run a stage unless ``run`` already holds its finished results; return whether it ran.

    As :func:`stage_action` says: reused, nothing runs; ``execute(resume=True)`` continues it; or
    ``execute(overwrite=True)`` replaces it — only the run's own files are removed (:meth:`RunDirectory.clear`).
    """
    action = stage_action(run, config_text)
    if action == "reuse":
        return False
    execute(resume=action == "resume", overwrite=action == "restart")
    return True


def run_planned(plan: RunPlan, pipeline: Callable[..., object], announce: Callable[[], object] | None = None,
                **options: object) -> bool:
    """:func:`run_stage` for a planned run: unless ``plan.run`` already holds the finished run of this plan's
    configuration, ``announce()`` (e.g. a progress line), then ``pipeline(plan, resume=…, overwrite=…, **options)``."""

    def execute(**how: bool) -> None:
        if announce is not None:
            announce()
        pipeline(plan, **how, **options)

    return run_stage(plan.run, plan.config_text, execute)
