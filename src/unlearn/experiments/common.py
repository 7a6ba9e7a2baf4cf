"""Pieces every pipeline shares: accelerator, model loading, the evaluation task, writing a run's results."""

from __future__ import annotations

import logging
import os
import sys
import textwrap
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from unlearn.config import RunConfig, dump_yaml
from unlearn.data.formatting import ChatFormatter
from unlearn.data.tofu import TofuData
from unlearn.errors import ConfigError, DataError
from unlearn.evaluation.tasks import Task, get_task
from unlearn.evaluation.tasks.base import TaskEvaluator
from unlearn.models.loading import load_model_and_tokenizer
from unlearn.runs import RunDirectory, RunInfo, RunResults

log = logging.getLogger("unlearn")


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (so redirected or captured streams see the lines)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def quiet_libraries() -> None:
    """Keep library chatter (tokenizer fork warnings, HF info logs) out of the user's terminal; show our own
    progress lines (``unlearn`` logger, INFO) on stderr."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        log.addHandler(_Stderr())
        log.setLevel(logging.INFO)
        log.propagate = False


def make_accelerator(cfg: RunConfig) -> Accelerator:
    choice = cfg.train.mixed_precision
    if choice == "auto":
        choice = "bf16" if torch.cuda.is_available() else "no"
    return Accelerator(mixed_precision=choice, cpu=not torch.cuda.is_available())


def require(value: str, key: str) -> str:
    if not value:
        raise ConfigError(f"{key} is required (set it in the config file or as {key}=...)")
    return value


def open_data(cfg: RunConfig) -> TofuData:
    """The benchmark of ``cfg.data.root``; also checks that a model is named, so both are reported first."""
    require(cfg.model.path, "model.path")
    root = require(cfg.data.root, "data.root")
    if not Path(root).exists() and (root.startswith((".", "/", "~")) or Path(root).suffix):
        raise DataError(f"data.root {root!r} does not exist")
    return TofuData(root)


def check_evaluation(cfg: RunConfig) -> Task:
    """The run's task, its configuration checked (before any model is loaded)."""
    task = get_task(cfg.eval.task)
    if cfg.eval.enabled:
        task.check(cfg)
    return task


def load_model(cfg: RunConfig):
    """Model, tokenizer and formatter from ``cfg.model`` (fp32; autocast handles bf16 on GPU)."""
    model, tokenizer = load_model_and_tokenizer(
        require(cfg.model.path, "model.path"), cfg.model.gguf_file, cfg.model.tokenizer, cfg.model.trust_remote_code
    )
    formatter = ChatFormatter(tokenizer, cfg.model.template, cfg.model.system_prompt)
    return model, tokenizer, formatter


def build_evaluator(cfg: RunConfig, formatter: ChatFormatter) -> tuple[Task, TaskEvaluator | None]:
    """The run's task (``eval.task``) and, when evaluation is on, its evaluator with the sets encoded."""
    task = get_task(cfg.eval.task)
    if not cfg.eval.enabled:
        return task, None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return task, task.evaluator(cfg, formatter, device)


def epoch_hook(evaluator: TaskEvaluator, device: torch.device, generate: bool = True,
               sets: list[str] | None = None):
    """Per-epoch evaluation (epoch 0 = the starting model): the task's per-epoch record."""

    def hook(epoch: int, model: torch.nn.Module) -> dict:
        return evaluator.epoch_record(model, device, epoch, generate, sets)

    return hook


def run_directory(cfg: RunConfig, default: str) -> RunDirectory:
    return RunDirectory(cfg.output_dir or default).create()


def config_text(cfg: RunConfig, header: str = "") -> str:
    """What a run's ``config.yaml`` holds: an optional comment header, then the configuration."""
    wrapped = [part for line in header.splitlines() for part in (textwrap.wrap(line, 110) or [""])]
    lines = "".join(f"# {line}\n" if line else "#\n" for line in wrapped)
    return lines + dump_yaml(cfg)


def write_results(run: RunDirectory, task: Task, evaluator: TaskEvaluator | None, model: torch.nn.Module,
                  device: torch.device, info: RunInfo, timer: Timer) -> None:
    """Evaluate (when on), write the task's files, then ``metrics.json`` (last), then the report."""
    metrics: dict = {}
    if evaluator is not None:
        result = evaluator.evaluate(model, device)
        task.write(run, result)
        metrics = result.metrics
    run.write_results(RunResults(task=task.name, metrics=metrics, run=info, seconds=timer.seconds))
    finish_run(run)


def finish_run(run: RunDirectory) -> None:
    """After the results are written: drop the resume checkpoint and render ``report.md`` with its plots."""
    from unlearn.reporting.report import write_report

    run.drop_checkpoint()
    if "sets" in run.read_results().metrics:
        write_report(run.path)


class Timer:
    def __init__(self):
        self.start = time.time()

    @property
    def seconds(self) -> float:
        return round(time.time() - self.start, 2)
