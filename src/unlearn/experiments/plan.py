"""A run resolved once, at its entry: the task, the configuration with the task's defaults, the method with its
recipe, the run directory, the ``config.yaml`` text and the fingerprint a checkpoint belongs to.

Every pipeline (``unlearn finetune``, ``run``, ``eval``) takes a :class:`RunPlan`, and everything that starts runs —
the demo, scenarios, attacks, sweeps, chains — builds plans with :func:`plan_finetune`, :func:`plan_unlearning` or
:func:`plan_evaluation` and hands them down, instead of resolving the same configuration again at every layer.
A pipeline given a plain :class:`RunConfig` plans it first (:func:`as_plan`).
"""

from __future__ import annotations

import copy
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from unlearn.config import RunConfig, dump_yaml, to_dict
from unlearn.config.parsing import flat_keys
from unlearn.errors import ConfigError
from unlearn.objectives.methods import LossMethod, Method, build_method
from unlearn.runs import LIMITED, RunDirectory
from unlearn.tasks import Task, get_task

Stage = Literal["finetune", "unlearn", "eval"]

FINGERPRINT_IGNORES = ("output_dir", "progress", "save_model", "train.save_every", "eval.batch_size",
                       "eval.bootstrap", "eval.from_generations", "report_to", "cache_dir")
"""Keys that cannot change a training trajectory or its per-epoch rows; a resume may change them."""


@dataclass(frozen=True)
class RunPlan:
    """What one run will do, resolved before any file is read or model loaded."""

    stage: Stage
    cfg: RunConfig
    """The configuration with the task's defaults filled in (:func:`with_task_defaults`)."""
    task: Task
    run: RunDirectory
    """Where it writes: ``output_dir``, else the stage's default under ``runs/``."""
    config_text: str
    """Its ``config.yaml``: for an unlearning run every value the method uses is written out (recipe included)."""
    fingerprint: dict[str, Any] | None
    """The configuration part of what a checkpoint belongs to (:func:`fingerprint`); None for an evaluation."""
    method: Method | None = None
    """The method with its recipe (unlearning runs only)."""

    @property
    def data_kind(self) -> str:
        """The task's training data: ``tofu`` (TOFU-layout QA), ``muse`` (text corpora) or ``none``."""
        return self.task.data_kind


def with_task_defaults(cfg: RunConfig) -> RunConfig:
    """``cfg`` with the task's defaults filled in where the config leaves a value unset (``None``): TOFU's forget
    split ``forget10`` and ``max_length`` 500, MUSE's ``raw/forget`` and 2048, … — and ``limit`` written into the
    evaluation's row caps (:func:`with_limit`). Idempotent."""
    task = get_task(cfg.eval.task)
    out = copy.deepcopy(cfg)
    for key, value in task.defaults.items():
        section, name = key.split(".")
        holder = getattr(out, section)
        if getattr(holder, name) is None:
            setattr(holder, name, copy.deepcopy(value))
    task.complete_defaults(out)
    return with_limit(out, task)


def limit_note(cfg: RunConfig) -> dict[str, Any]:
    """``{"limited": …}`` for ``metrics.json`` when ``limit`` is set (empty otherwise)."""
    if cfg.limit is None:
        return {}
    return {"limited": {"limit": cfg.limit, "note": f"{LIMITED}: --limit {cfg.limit}, the first {cfg.limit} rows of "
                                                   "every set (a smoke test)"}}


def with_limit(cfg: RunConfig, task: Task) -> RunConfig:
    """``limit`` written into the evaluation's row caps (``eval.forget_rows``, ``retain_rows``, ``option_rows``
    and ``eval.max_rows`` of each of the task's sets), so ``config.yaml`` shows what was evaluated; the training
    splits are cut where they are read. Idempotent; ``cfg`` itself when there is no limit."""
    n = cfg.limit
    if n is None:
        return cfg
    e = cfg.eval
    e.forget_rows, e.retain_rows = min(e.forget_rows, n), min(e.retain_rows, n)
    e.option_rows = n if e.option_rows is None else min(e.option_rows, n)
    e.max_rows = {**{name: n for name in task.set_names}, **{k: min(v, n) for k, v in e.max_rows.items()}}
    return cfg


def method_from_config(cfg: RunConfig) -> Method:
    """The configured method with its recipe for the run's benchmark (``method.recipe_benchmark``, else
    ``eval.task``) and forget split."""
    return build_method(cfg.method.name, cfg.forget, cfg.retain, cfg.method.forget_weight, cfg.method.retain_weight,
                        recipe=cfg.method.recipe, benchmark=cfg.method.recipe_benchmark or cfg.eval.task,
                        forget_split=cfg.data.forget_split)


def resolved_config(cfg: RunConfig, method: Method) -> RunConfig:
    """``cfg`` with every value the method uses written out (recipe values included), so ``config.yaml`` alone
    reproduces the run."""
    out = copy.deepcopy(cfg)
    described = method.describe()
    if isinstance(method, LossMethod):
        out.forget = {k: v for k, v in described["forget"].items() if k != "objective"}
        out.retain = {k: v for k, v in described["retain"].items() if k != "regularizer"}
        out.method.forget_weight, out.method.retain_weight = method.forget_weight, method.retain_weight
    else:
        out.forget = {k: v for k, v in described["edit"].items() if k != "method"}
    return out


def config_text(cfg: RunConfig, header: str = "") -> str:
    """What a run's ``config.yaml`` holds: an optional comment header, then the configuration."""
    wrapped = [part for line in header.splitlines() for part in (textwrap.wrap(line, 110) or [""])]
    lines = "".join(f"# {line}\n" if line else "#\n" for line in wrapped)
    return lines + dump_yaml(cfg)


def fingerprint(cfg: RunConfig) -> dict[str, Any]:
    """The resolved configuration as flat dotted keys, minus :data:`FINGERPRINT_IGNORES`: what a checkpoint
    belongs to. Resuming under another fingerprint is refused, naming the keys that differ."""
    flat = flat_keys(json.loads(json.dumps(to_dict(cfg))))  # as a checkpoint stores it (tuples become lists)
    return {k: v for k, v in flat.items() if k not in FINGERPRINT_IGNORES}


def output_dir(cfg: RunConfig, default: str) -> RunDirectory:
    return RunDirectory(cfg.output_dir or default)


def plan_unlearning(cfg: RunConfig) -> RunPlan:
    """An ``unlearn run``: the method and its recipe resolved, every value it uses written into ``config.yaml``."""
    cfg = with_task_defaults(cfg)
    task = get_task(cfg.eval.task)
    method = method_from_config(cfg)
    recipe = method.recipe.description if method.recipe is not None else "none"
    header = f"Resolved configuration of method {method.name} (every value it uses is written out).\nRecipe: {recipe}"
    resolved = resolved_config(cfg, method)
    name = (cfg.data.forget_split or Path(cfg.data.forget_corpus or "corpus").stem).replace("/", "_")
    return RunPlan("unlearn", cfg, task, output_dir(cfg, f"runs/{method.name}-{name}"), config_text(resolved, header),
                   fingerprint(resolved), method)


def plan_finetune(cfg: RunConfig) -> RunPlan:
    """An ``unlearn finetune``: the target model (on ``full``) or the retain model (on ``retainYY``)."""
    cfg = with_task_defaults(cfg)
    name = "-".join(s.replace("/", "_") for s in cfg.data.train_splits)
    return RunPlan("finetune", cfg, get_task(cfg.eval.task), output_dir(cfg, f"runs/finetune-{name}"),
                   config_text(cfg), fingerprint(cfg))


def plan_evaluation(cfg: RunConfig) -> RunPlan:
    """An ``unlearn eval`` of ``cfg.model`` (or a rescore of saved generations)."""
    cfg = with_task_defaults(cfg)
    return RunPlan("eval", cfg, get_task(cfg.eval.task), output_dir(cfg, "runs/eval"), config_text(cfg), None)


PLANNERS = {"finetune": plan_finetune, "unlearn": plan_unlearning, "eval": plan_evaluation}


def as_plan(value: RunPlan | RunConfig, stage: Stage) -> RunPlan:
    """``value`` itself when it is a plan for ``stage``; a configuration planned for it otherwise."""
    if isinstance(value, RunPlan):
        if value.stage != stage:
            raise ConfigError(f"a plan for the {value.stage} stage was given to the {stage} pipeline")
        return value
    return PLANNERS[stage](value)
