"""What an evaluation task is: its sets, the requests it makes of a model, its metrics and their dependencies.

Modelled on lm-evaluation-harness's task registry. A task is declared once (class attributes, listed by
``unlearn tasks``) and builds an evaluator for one run's configuration; the evaluator encodes its sets once and is
called per model (and per epoch during training).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch

from unlearn.errors import ConfigError
from unlearn.runs import RunResults

if TYPE_CHECKING:
    from pathlib import Path

    from unlearn.config.schema import EvalConfig, RunConfig
    from unlearn.data.formatting import ChatFormatter
    from unlearn.rendering.tables import Notes
    from unlearn.reporting.report import Run  # the report's view of a run directory: a type only
    from unlearn.runs import RunDirectory

TOFU_REPORT = "unlearn.tasks.tofu.report"

REQUESTS: dict[str, str] = {
    "sequence_likelihood": "S(y|x) and |y| of given answers, in padded batches",
    "generation": "batched, left-padded generation (greedy by default)",
    "multiple_choice": "log-likelihood of each option in one forward pass per question",
    "token_logprobs": "log p of every token of a text (membership inference)",
    "lm_eval": "lm-evaluation-harness's own requests (log-likelihoods, generation), on the model in memory",
}


@dataclass(frozen=True)
class SetSpec:
    """One evaluation set: its name, what it is, and how its rows are scored."""

    name: str
    summary: str
    scored_as: str
    rows_key: str | None = None  # the config key limiting its rows


@dataclass(frozen=True)
class MetricSpec:
    """One metric: per set (``scope="set"``) or one number per run; its direction and how it aggregates."""

    key: str
    name: str
    scope: str
    higher_is_better: bool
    aggregation: str
    on_forget: str = ""  # how to read it on the forget set, where the direction may flip
    requires: tuple[str, ...] = ()  # requests / dependencies it needs
    forgotten_when_higher: bool = False  # a set metric whose higher values on the forget set mean forgotten (TOFU's TR)
    goal: float | None = None  # a run metric best at this value, not at an end (PrivLeak: 0)


@dataclass(frozen=True)
class Dependency:
    """Something outside the evaluated model that some metrics need."""

    name: str
    config_key: str
    needed_for: tuple[str, ...]
    summary: str


@dataclass
class EvalResult:
    """Per-sample rows per set, and the aggregates."""

    samples: dict[str, list[dict[str, Any]]]
    metrics: dict[str, Any]


@dataclass
class Rescored:
    """A rescoring's rows and aggregates, and the ``metrics.json`` record to write."""

    evaluation: EvalResult
    record: RunResults


class TaskEvaluator(Protocol):
    """Built once per run; evaluates any number of models (or epochs) on the same encoded sets."""

    def evaluate(self, model: torch.nn.Module, device: torch.device | None = None, desc: str = "eval",
                 n_resamples: int | None = None, generate: bool | None = None,
                 sets: Sequence[str] | None = None) -> EvalResult: ...

    def epoch_record(self, model: torch.nn.Module, device: torch.device, epoch: int, generate: bool,
                     sets: Sequence[str] | None) -> dict[str, Any]: ...


class Task(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    sets: ClassVar[tuple[SetSpec, ...]]
    requests: ClassVar[tuple[str, ...]]
    metrics: ClassVar[tuple[MetricSpec, ...]]
    version: ClassVar[int]
    """The protocol's version (lm-evaluation-harness's ``metadata.version``): every task declares one, and it is
    bumped whenever a change to the sets, the prompts, the requests or the metrics can change a number. Results
    record it; ``unlearn compare`` warns when runs were scored under different versions."""
    dependencies: ClassVar[tuple[Dependency, ...]] = ()
    data_kind: ClassVar[str] = "tofu"
    """The kind of training data of the task's benchmark (:mod:`unlearn.tasks.training_data`)."""
    report_module: ClassVar[str | None] = None
    """The module with the task's report sections (``render``) and comparison (``compare``), imported when a report
    is written; None: the summary of format_results, and TOFU's comparison."""
    defaults: ClassVar[dict[str, Any]] = {}
    """Dotted config keys the task fills when the run leaves them unset (``data.forget_split``, ...)."""
    generates_to_max_length: ClassVar[bool] = False
    """It generates up to ``eval.max_length`` tokens in all (prompt + answer), which must fit the model's context."""
    sample_inputs: ClassVar[tuple[str, ...]] = ()
    """The per-sample inputs its evaluation hands registered sample metrics (:mod:`unlearn.tasks.sample_metrics`)."""

    def all_metrics(self) -> tuple[MetricSpec, ...]:
        """Its own metrics and the registered sample metrics it reports (plugins': ``register_sample_metric``)."""
        from unlearn.tasks.sample_metrics import metrics_for

        return (*self.metrics, *(m.spec for m in metrics_for(self.name, self.sample_inputs)))

    def complete_defaults(self, cfg: RunConfig) -> None:  # noqa: B027 - most tasks have none
        """Defaults that depend on other values (called after :attr:`defaults` are filled)."""

    @property
    def set_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sets)

    def chosen_sets(self, e: EvalConfig) -> tuple[str, ...]:
        """``eval.sets`` (default all) and ``eval.epoch_sets``, checked against the task's sets; the chosen ones in
        the task's order."""
        wanted = self.set_names if e.sets is None else tuple(e.sets)
        unknown = sorted(set(wanted) - set(self.set_names))
        if unknown:
            raise ConfigError(f"unknown eval set(s) {unknown}; the {self.name} task has: {', '.join(self.set_names)}")
        unknown = sorted(set(e.epoch_sets or ()) - set(wanted))
        if unknown:
            raise ConfigError(f"eval.epoch_sets {unknown} are not among the evaluated sets {list(wanted)}")
        return tuple(s for s in self.set_names if s in wanted)

    def check(self, cfg: RunConfig) -> None:  # noqa: B027 - most tasks have nothing to check
        """Configuration errors of this task (unknown sets, …), raised before any model is loaded."""

    @abstractmethod
    def evaluator(self, cfg: RunConfig, formatter: ChatFormatter, device: str) -> TaskEvaluator:
        """Load and encode the task's sets for this run (every data error surfaces here, before any compute)."""

    @abstractmethod
    def write(self, run_dir: RunDirectory, result: EvalResult) -> None:
        """The task's per-sample files in ``run_dir`` (``metrics.json`` is written by the caller, last)."""

    @abstractmethod
    def format_results(self, metrics: dict[str, Any]) -> str:
        """A short human-readable summary of the aggregates (printed by the CLI)."""

    def report_sections(self, run: Run, examples: int, weight_epochs: Sequence[int]) -> list[str]:
        """The task's sections of a run's report (``report.md``), after the header: markdown lines — its
        :attr:`report_module`'s ``render``, else the summary of :meth:`format_results`."""
        if self.report_module is None:
            return ["## Results", "", self.format_results(run.results.metrics), ""]
        return importlib.import_module(self.report_module).render(run, examples, weight_epochs)

    def compare_runs(self, runs: Sequence[Run], names: Sequence[str], notes: Notes, plots_dir: Path | None,
                     link_base: Path | None, examples: int, weight_epochs: Sequence[int]) -> list[str]:
        """The body of ``unlearn compare`` for runs of this task (markdown lines): its :attr:`report_module`'s
        ``compare``, else TOFU's table, the historical comparison, whose columns such a task shows as missing."""
        module = self.report_module or TOFU_REPORT
        return importlib.import_module(module).compare(runs, names, notes, plots_dir, link_base, examples,
                                                       weight_epochs)

    def rescore(self, source: RunDirectory, cfg: RunConfig, old: RunResults | None) -> Rescored:
        """Recompute the metrics from ``source``'s saved per-sample rows, without its model."""
        raise ConfigError(f"the {self.name} task cannot rescore saved generations")

    def describe(self) -> str:
        lines = [f"{self.name}: {self.summary}", "  sets:"]
        lines += [f"    {s.name:14s} {s.summary}; scored as {s.scored_as}"
                  + (f" (rows: {s.rows_key})" if s.rows_key else "") for s in self.sets]
        lines.append("  requests: " + ", ".join(self.requests))
        lines.append("  metrics:")
        from unlearn.tasks.sample_metrics import SAMPLE_METRICS

        for m in self.all_metrics():
            arrow = "↑" if m.higher_is_better else "↓"
            extra = f"; on the forget set: {m.on_forget}" if m.on_forget else ""
            needs = f" [needs {', '.join(m.requires)}]" if m.requires else ""
            plugin = f" [plugin: {SAMPLE_METRICS.origin(m.key)}]" if m not in self.metrics else ""
            lines.append(f"    {m.key:20s} {arrow} {m.name} ({m.scope}): {m.aggregation}{extra}{needs}{plugin}")
        if self.dependencies:
            lines.append("  dependencies:")
            lines += [f"    {d.name:16s} {d.config_key}: {d.summary} (for {', '.join(d.needed_for)})"
                      for d in self.dependencies]
        return "\n".join(lines)
