"""``lm_eval:<task>[,<task>…]``: lm-evaluation-harness tasks as an evaluation task of ours (``unlearn eval``).

Not registered by name: :func:`unlearn.tasks.get_task` builds one for any ``lm_eval:`` name. Names and
data sets are checked in :meth:`HarnessTask.check`, before the model is loaded (:mod:`unlearn.tasks.lm_eval.harness`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from unlearn.config.schema import RunConfig
from unlearn.data.formatting import ChatFormatter
from unlearn.runs import RunDirectory
from unlearn.tasks.base import EvalResult, MetricSpec, SetSpec, Task
from unlearn.tasks.lm_eval import harness

SUMMARY = ("lm-evaluation-harness tasks by name or task-file path (`lm_eval:arc_challenge,truthfulqa_mc1,triviaqa,"
           "gsm8k`), scored by the harness itself; needs the [lm-eval] extra; data sets are located before the model "
           "is loaded")


ROWS_PREFIX = "lm_eval_"  # per-sample files of harness tasks: <eval dir>/lm_eval_<task>.jsonl


class HarnessEvaluator:
    def __init__(self, plan: harness.HarnessPlan, cfg: RunConfig, formatter: ChatFormatter):
        self.plan, self.cfg, self.tokenizer = plan, cfg, formatter.tokenizer

    def evaluate(self, model: torch.nn.Module, device: torch.device | None = None, desc: str = "eval",
                 n_resamples: int | None = None, generate: bool | None = None,
                 sets: Sequence[str] | None = None) -> EvalResult:
        device = device or next(model.parameters()).device
        metrics, rows = harness.run_harness(model, self.tokenizer, self.plan, self.cfg.eval.batch_size, device,
                                            self.cfg.eval.max_rows, self.cfg.limit)
        return EvalResult({f"{ROWS_PREFIX}{task}": items for task, items in rows.items()}, {"lm_eval": metrics})

    def epoch_record(self, model: torch.nn.Module, device: torch.device, epoch: int, generate: bool,
                     sets: Sequence[str] | None) -> dict[str, Any]:
        return self.evaluate(model, device).metrics


class JoinedHarness:
    """A task's evaluator followed by harness tasks (``eval.lm_eval``): their metrics join the task's under
    ``lm_eval``, their rows the task's rows; per-epoch records stay the task's own (the harness is too slow for
    every epoch)."""

    def __init__(self, inner: Any, extra: HarnessEvaluator):
        self.inner, self.extra = inner, extra

    def check_context(self, limit: int | None) -> None:
        if hasattr(self.inner, "check_context"):
            self.inner.check_context(limit)

    def evaluate(self, model: torch.nn.Module, device: torch.device | None = None, desc: str = "eval",
                 n_resamples: int | None = None, generate: bool | None = None,
                 sets: Sequence[str] | None = None) -> EvalResult:
        result = self.inner.evaluate(model, device, desc, n_resamples, generate, sets)
        general = self.extra.evaluate(model, device)
        return EvalResult({**result.samples, **general.samples}, {**result.metrics, **general.metrics})

    def epoch_record(self, model: torch.nn.Module, device: torch.device, epoch: int, generate: bool,
                     sets: Sequence[str] | None) -> dict[str, Any]:
        return self.inner.epoch_record(model, device, epoch, generate, sets)

    def __getattr__(self, name: str) -> Any:  # check_context and other task-specific helpers
        return getattr(self.inner, name)


def split_rows(result: EvalResult) -> tuple[EvalResult, dict[str, list[dict[str, Any]]]]:
    """The task's own rows and metrics, and the harness's rows (written as they are)."""
    own = {k: v for k, v in result.samples.items() if not k.startswith(ROWS_PREFIX)}
    extra = {k: v for k, v in result.samples.items() if k.startswith(ROWS_PREFIX)}
    return EvalResult(own, result.metrics), extra


class HarnessTask(Task):
    version = 1  # our wrapping of the harness; the harness versions its own tasks (in its rows)
    data_kind = "none"  # evaluation only: nothing to train on
    requests = ("lm_eval",)
    metrics = (MetricSpec("lm_eval", "the harness's own metrics per task (acc, acc_norm, exact_match, …) with its "
                          "stderr", "run", True, "as lm-eval computes them"),)
    summary = SUMMARY

    def __init__(self, name: str):
        self.name = name
        self.specs = harness.split_specs(name)
        self.sets = (SetSpec("lm_eval", ", ".join(self.specs), "by the harness", "eval.max_rows.<leaf task>"),)

    def plan(self) -> harness.HarnessPlan:
        return harness.plan(self.specs)

    def check(self, cfg: RunConfig) -> None:
        harness.check_data(self.plan())

    def evaluator(self, cfg: RunConfig, formatter: ChatFormatter, device: str) -> HarnessEvaluator:
        return HarnessEvaluator(self.plan(), cfg, formatter)

    def write(self, run_dir: RunDirectory, result: EvalResult) -> None:
        for name, rows in result.samples.items():
            run_dir.write_eval_rows(name, rows)

    def format_results(self, metrics: dict[str, Any]) -> str:
        return format_harness(metrics.get("lm_eval", {}))


def format_harness(results: dict[str, Any]) -> str:
    """A markdown table of the harness's results: task, metric, value ± stderr, questions."""
    lines = ["| task | metric | value | stderr | n |", "|---|---|---|---|---|"]
    for task, values in results.items():
        for metric, value in values.items():
            if metric == "n" or metric.endswith("_stderr") or "_stderr " in metric:
                continue
            stderr = values.get(metric.replace(" (", "_stderr (", 1) if " (" in metric else f"{metric}_stderr")
            shown = f"{stderr:.4f}" if isinstance(stderr, (int, float)) else "–"
            lines.append(f"| {task} | {metric} | {value:.4f} | {shown} | {values.get('n', '–')} |")
    return "\n".join(lines)
