"""The whole run from Python (a notebook, a script): build a configuration, run, get the typed results and the run
directory. The same pipelines as ``unlearn finetune`` / ``run`` / ``eval``, with the same checks and files.

    import unlearn
    out = unlearn.run(model="runs/target/model", data="DATA", method="simnpo+gd", output_dir="runs/simnpo",
                      **{"train.lr": 2e-5, "eval.retain_reference": "runs/retain"})
    out.results.metrics["forget_quality"], out.run_dir
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn.config import RunConfig, load_config
from unlearn.runs import RunDirectory, RunResults


@dataclass(frozen=True)
class RunOutcome:
    """What a run left: its directory and its ``metrics.json``, read back."""

    run_dir: Path
    results: RunResults

    @property
    def metrics(self) -> dict[str, Any]:
        return self.results.metrics


def config(config_file: str | None = None, overrides: Sequence[str] = (), plugins: Sequence[str] = (),
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


def run(cfg: RunConfig | None = None, *, resume: bool = False, overwrite: bool = False, **values: Any) -> RunOutcome:
    """Unlearn and evaluate (``unlearn run``): ``cfg``, or a configuration built from ``values`` (:func:`config`)."""
    from unlearn.experiments.unlearning import run_unlearning

    return _outcome(run_unlearning(cfg or config(**values), resume=resume, overwrite=overwrite))


def finetune(cfg: RunConfig | None = None, *, resume: bool = False, overwrite: bool = False,
             **values: Any) -> RunOutcome:
    """Fine-tune and evaluate (``unlearn finetune``)."""
    from unlearn.experiments.finetune import run_finetune

    return _outcome(run_finetune(cfg or config(**values), resume=resume, overwrite=overwrite))


def evaluate(cfg: RunConfig | None = None, *, overwrite: bool = False, **values: Any) -> RunOutcome:
    """Evaluate a model with the run's task (``unlearn eval``)."""
    from unlearn.experiments.evaluate import run_evaluation

    return _outcome(run_evaluation(cfg or config(**values), overwrite=overwrite))
