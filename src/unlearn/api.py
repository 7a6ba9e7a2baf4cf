"""The whole run from Python (a notebook, a script): build a configuration, run, get the typed results and the run
directory. The same pipelines as ``unlearn finetune`` / ``run`` / ``eval``, with the same checks and files.

    import unlearn
    out = unlearn.run(model="runs/target/model", data="DATA", method="simnpo+gd", output_dir="runs/simnpo",
                      **{"train.lr": 2e-5, "eval.retain_reference": "runs/retain"})
    out.results.metrics["forget_quality"], out.run_dir

:func:`plan` resolves a run without running it (the recipe's values, the task's defaults, the run directory); the
plan can then be passed to :func:`run` / :func:`finetune` / :func:`evaluate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unlearn.config import RunConfig, load_config
from unlearn.runs import RunDirectory, RunResults

if TYPE_CHECKING:
    from unlearn.experiments.plan import RunPlan, Stage


@dataclass(frozen=True)
class RunOutcome:
    """What a run left: its directory and its ``metrics.json``, read back."""

    run_dir: Path
    results: RunResults

    @property
    def metrics(self) -> dict[str, Any]:
        return self.results.metrics


def configure(config_file: str | None = None, overrides: Sequence[str] = (), plugins: Sequence[str] = (),
           **values: Any) -> RunConfig:
    """A checked :class:`RunConfig`: a YAML file, then ``key=value`` overrides, then keyword values (dotted keys
    as ``**{"train.lr": 1e-4}``; ``model=``, ``data=``, ``method=`` and ``task=`` are the CLI's shorthands).
    ``plugins`` are loaded first (module names or ``.py`` files), as ``--plugin`` does."""
    from unlearn.plugins import load_plugins

    load_plugins(plugins)
    given = [*overrides, *(f"{k}={_text(v)}" for k, v in values.items())]
    return load_config(RunConfig, config_file, given)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        raise TypeError("give a mapping's keys one by one, e.g. **{'eval.max_rows.forget': 20}")
    return str(value)


def _outcome(path: Path) -> RunOutcome:
    return RunOutcome(Path(path), RunDirectory(path).read_results())


def plan(stage: Stage = "unlearn", cfg: RunConfig | None = None, **values: Any) -> RunPlan:
    """The run ``stage`` (``unlearn``, ``finetune`` or ``eval``) would do, resolved and not run: ``plan.cfg`` (the
    task's defaults filled in), ``plan.method`` (with its recipe), ``plan.run`` (where it writes) and
    ``plan.config_text`` (its ``config.yaml``)."""
    from unlearn.experiments.plan import PLANNERS

    if stage not in PLANNERS:
        raise ValueError(f"stage must be one of {', '.join(PLANNERS)}, got {stage!r}")
    return PLANNERS[stage](cfg or configure(**values))


def run(cfg: RunConfig | RunPlan | None = None, *, resume: bool = False, overwrite: bool = False,
        **values: Any) -> RunOutcome:
    """Unlearn and evaluate (``unlearn run``): ``cfg`` (a configuration or a :func:`plan`), or a configuration built
    from ``values`` (:func:`configure`)."""
    from unlearn.experiments.unlearning import run_unlearning

    return _outcome(run_unlearning(cfg or configure(**values), resume=resume, overwrite=overwrite))


def finetune(cfg: RunConfig | RunPlan | None = None, *, resume: bool = False, overwrite: bool = False,
             **values: Any) -> RunOutcome:
    """Fine-tune and evaluate (``unlearn finetune``)."""
    from unlearn.experiments.finetune import run_finetune

    return _outcome(run_finetune(cfg or configure(**values), resume=resume, overwrite=overwrite))


def evaluate(cfg: RunConfig | RunPlan | None = None, *, overwrite: bool = False, **values: Any) -> RunOutcome:
    """Evaluate a model with the run's task (``unlearn eval``)."""
    from unlearn.experiments.evaluate import run_evaluation

    return _outcome(run_evaluation(cfg or configure(**values), overwrite=overwrite))
