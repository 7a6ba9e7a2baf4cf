"""Pieces every pipeline shares: accelerator, model loading, the evaluation task, writing a run's results."""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from unlearn.config import RunConfig, to_dict
from unlearn.data.formatting import ChatFormatter
from unlearn.errors import ConfigError, DataError, UnlearnError
from unlearn.experiments.plan import RunPlan
from unlearn.hub import hub_problem, looks_local
from unlearn.models.loading import ResolvedModel, context_length, load_model_config, load_tokenizer, resolve_model
from unlearn.models.loading import load_weights as load_model_weights
from unlearn.runs import CommandInput, RunDirectory, RunInfo, RunResults
from unlearn.tasks import Task
from unlearn.tasks.base import EvalResult, TaskEvaluator
from unlearn.tasks.lm_eval import harness
from unlearn.tasks.lm_eval.task import HarnessEvaluator, JoinedHarness, split_rows
from unlearn.tasks.training_data import BENCHMARK_DATA, Benchmark
from unlearn.train.checkpoint import Checkpoint

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
    # the libraries' deprecation chatter (e.g. transformers' FutureWarning on every LoRA run) is not the user's
    # business; our own warnings (unlearn.*) still show
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(transformers|peft|accelerate|torch)(\.|$)")
    # bitsandbytes, where installed, is imported by peft and warns about an optional CPU kernel package at import
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        log.addHandler(_Stderr())
        log.setLevel(logging.INFO)
        log.propagate = False


def process_state():
    """This process's place in a multi-process launch (one process otherwise). ``cpu`` as the accelerator's: on a
    machine without GPUs, accelerate only joins the launched processes (gloo) when told it runs on the CPU."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def make_accelerator(cfg: RunConfig, run: RunDirectory | None = None) -> Accelerator:
    """The accelerator; with a run directory and ``report_to``, its tracker started (logs under ``tracking/``)."""
    from unlearn.train.tracking import TRACKING_DIR, flat_config

    choice = cfg.train.mixed_precision
    if choice == "auto":
        choice = "bf16" if torch.cuda.is_available() else "no"
    common: dict[str, Any] = {"mixed_precision": choice, "cpu": not torch.cuda.is_available()}
    if cfg.train.compile:
        common["dynamo_backend"] = "inductor"
    if run is None or cfg.report_to == "none":
        return Accelerator(**common)
    accelerator = Accelerator(**common, log_with=cfg.report_to, project_dir=str(run.path / TRACKING_DIR))
    accelerator.init_trackers(run.path.name, config=flat_config(to_dict(cfg)))
    return accelerator


def compile_problem() -> str | None:
    """Why ``torch.compile`` cannot work here (None when a tiny function compiles with inductor)."""
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        return "TorchDynamo does not support this Python version or platform"
    try:
        torch.compile(lambda x: x * 2 + 1, backend="inductor")(torch.ones(4))
    except Exception as err:  # any failure means the same to the user: it cannot compile
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else 'no message'}"
    finally:
        torch._dynamo.reset()
    return None


def check_training(cfg: RunConfig) -> None:
    """Training options that cannot work here, and what a multi-process launch requires, before any model is
    loaded."""
    from unlearn.train.distributed import check_launch

    check_launch(cfg.train.lora, cfg.train.grad_accum)
    if cfg.train.compile:
        problem = compile_problem()
        if problem is not None:
            raise ConfigError(f"train.compile=true, but torch {torch.__version__} cannot compile here ({problem}); "
                              "set train.compile=false")


def apply_training_options(cfg: RunConfig, model: torch.nn.Module) -> None:
    """Gradient checkpointing (``train.gradient_checkpointing``), where the model supports it."""
    if cfg.train.gradient_checkpointing:
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise ConfigError(f"train.gradient_checkpointing=true: {type(model).__name__} does not support gradient "
                              "checkpointing; set it to false")
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def require(value: str, key: str) -> str:
    if not value:
        raise ConfigError(f"{key} is required (set it in the config file or as {key}=...)")
    return value


def open_data(plan: RunPlan) -> Benchmark:
    """The run's training data (the task's kind: TOFU-layout QA or MUSE-layout text); also checks that a model is
    named, so both are reported first."""
    cfg = plan.cfg
    require(cfg.model.path, "model.path")
    if plan.data_kind == "none":
        raise ConfigError(f"eval.task={cfg.eval.task} only evaluates (there is nothing to train on); run it with "
                          f"`unlearn eval`, or add harness tasks to a training run with eval.lm_eval=[...]")
    root = require(cfg.data.root, "data.root")
    if not Path(root).expanduser().exists():
        if looks_local(root):
            raise DataError(f"data.root {root!r} does not exist (no such directory in {Path.cwd()})")
        problem = hub_problem(root, "dataset")
        if problem is not None:
            raise DataError(f"data.root {root!r} is not a local directory (no ./{root}); tried it as a Hugging Face "
                            f"dataset name: {problem}")
    return BENCHMARK_DATA[plan.data_kind](cfg)


def check_evaluation(plan: RunPlan) -> Task:
    """The run's task, its configuration checked (before any model is loaded); the tracker's package too."""
    from unlearn.train.tracking import check_tracker

    cfg, task = plan.cfg, plan.task
    check_tracker(cfg.report_to)
    if cfg.eval.enabled:
        task.check(cfg)
        if cfg.eval.lm_eval:
            harness.check_data(harness.plan(cfg.eval.lm_eval))
    return task


@dataclass
class OpenedModel:
    """A model before its weights: the tokenizer, the formatter and the context length (from its config), enough
    to encode every input and check it fits before the weights load."""

    resolved: ResolvedModel
    tokenizer: Any
    formatter: ChatFormatter
    context: int | None


def open_model(cfg: RunConfig) -> OpenedModel:
    """Tokenizer, formatter and context length of ``cfg.model`` — no weights."""
    m = cfg.model
    resolved = resolve_model(require(m.path, "model.path"), m.gguf_file)
    tokenizer = load_tokenizer(resolved, m.tokenizer, m.trust_remote_code)
    context = context_length(load_model_config(resolved, m.trust_remote_code))
    return OpenedModel(resolved, tokenizer, ChatFormatter(tokenizer, m.template, m.system_prompt), context)


def load_weights(cfg: RunConfig, opened: OpenedModel) -> torch.nn.Module:
    """The weights of an opened model (fp32; autocast handles bf16 on GPU)."""
    return load_model_weights(opened.resolved, opened.tokenizer, cfg.model.trust_remote_code, what=cfg.model.path)


def load_model(cfg: RunConfig):
    """Model, tokenizer and formatter from ``cfg.model`` (fp32; autocast handles bf16 on GPU)."""
    opened = open_model(cfg)
    return load_weights(cfg, opened), opened.tokenizer, opened.formatter


def check_context(plan: RunPlan, context: int | None, training: bool = True) -> None:
    """Lengths the configuration fixes must fit the model's context (checked before its weights load): the text
    chunk length of the corpora trained on, and TOFU-style generation's total length."""
    if not context:
        return
    cfg, task = plan.cfg, plan.task
    chunked = task.data_kind == "muse"
    if training and chunked and cfg.data.max_length and cfg.data.max_length > context:
        raise ConfigError(f"data.max_length={cfg.data.max_length} (the text chunk length) exceeds the context of "
                          f"{cfg.model.path} ({context} positions); lower data.max_length")
    if cfg.eval.enabled and cfg.eval.generate and task.generates_to_max_length and cfg.eval.max_length > context:
        raise ConfigError(f"eval.max_length={cfg.eval.max_length} (prompt + generated tokens) exceeds the context "
                          f"of {cfg.model.path} ({context} positions); lower eval.max_length")


def check_part_lengths(parts: Any, context: int | None, model: str) -> None:
    """Every training item fits the model's context (a position past it gives silently wrong numbers)."""
    if not context:
        return
    longest = max((len(s.input_ids) for part in parts.parts.values() for s in part), default=0)
    if longest > context:
        raise DataError(f"a training item has {longest} tokens, more than the {context} positions of {model}; "
                        "lower data.max_length (longer QA samples are then reported by row) or use a model with a "
                        "longer context")


def build_evaluator(plan: RunPlan, formatter: ChatFormatter,
                    context: int | None = None) -> TaskEvaluator | None:
    """When evaluation is on, the run's evaluator (its task's, ``eval.task``) with the sets encoded — and, given
    the model's context length, checked to fit it (before the weights load)."""
    cfg, task = plan.cfg, plan.task
    if not cfg.eval.enabled:
        return None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    evaluator = task.evaluator(cfg, formatter, device)
    if cfg.eval.lm_eval:
        plan = harness.plan(cfg.eval.lm_eval)
        evaluator = JoinedHarness(evaluator, HarnessEvaluator(plan, cfg, formatter))
    if context and hasattr(evaluator, "check_context"):
        evaluator.check_context(context)
    return evaluator


def epoch_hook(evaluator: TaskEvaluator, device: torch.device, generate: bool = True,
               sets: list[str] | None = None):
    """Per-epoch evaluation (epoch 0 = the starting model): the task's per-epoch record."""

    def hook(epoch: int, model: torch.nn.Module) -> dict:
        return evaluator.epoch_record(model, device, epoch, generate, sets)

    return hook


DATA_KEY = "data.sha256"


def data_fingerprint(cfg: RunConfig, reads: dict[Path, str]) -> dict[str, str]:
    """``data.sha256[FILE]`` for every data file a run trained on (:func:`unlearn.data.files.recording_reads`),
    named relative to ``data.root`` where it lies inside it: a resume on changed files is refused, naming them."""
    root = Path(cfg.data.root).expanduser().resolve() if cfg.data.root else None
    out = {}
    for path, digest in reads.items():
        name = str(path.relative_to(root)) if root is not None and root in path.parents else str(path)
        out[f"{DATA_KEY}[{name}]"] = digest
    return out


def differing_keys(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))


def command_inputs(cfg: RunConfig) -> list[CommandInput]:
    """The local paths a run reads — its model, tokenizer, data, reference models and runs — that an overwrite must
    never remove and a saved model must never replace (:class:`RunSetup`)."""
    named = [("model.path", cfg.model.path, "tree"), ("model.tokenizer", cfg.model.tokenizer, "tree"),
             ("data.root", cfg.data.root, "root"), ("data.forget_corpus", cfg.data.forget_corpus, "tree"),
             ("data.retain_corpus", cfg.data.retain_corpus, "tree"), ("data.idk_path", cfg.data.idk_path, "tree"),
             ("method.reference", cfg.method.reference, "tree"), ("eval.mia_reference", cfg.eval.mia_reference, "tree"),
             ("eval.retain_reference", cfg.eval.retain_reference, "run"),
             ("eval.from_generations", cfg.eval.from_generations, "run"),
             ("eval.mmlu_root", cfg.eval.mmlu_root, "root")]
    named += [("eval.lm_eval", task, "tree") for task in cfg.eval.lm_eval or ()]
    return [CommandInput(key, Path(value).expanduser(), kind) for key, value, kind in named
            if value and os.path.lexists(Path(value).expanduser())]


def _listing(paths: list[Path]) -> str:
    names = [p.name + ("/" if p.is_dir() and not p.is_symlink() else "") for p in paths]
    return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "") if names else "nothing"


@dataclass
class RunSetup:
    """Where a run writes, checked before any model is loaded; :meth:`commit` then clears (when overwriting) and
    writes ``config.yaml`` — never before a refusal.

    - a directory holding a run is refused unless ``overwrite`` (its old files are removed first) or ``resume``;
    - ``resume`` needs a checkpoint whose configuration fingerprint equals this run's;
    - the directory must be writable;
    - the command's ``inputs`` (:func:`command_inputs`) are never removed, the output directory may not lie in an
      input read whole (a model or run directory), and a saved model (``writes_model``) may not replace one.
    """

    run: RunDirectory
    config_text: str
    fingerprint: dict[str, Any] | None
    resume: bool = False
    overwrite: bool = False
    inputs: list[CommandInput] = field(default_factory=list)
    writes_model: bool = False

    def check(self) -> RunSetup:
        run = self.run
        run.check_writable()
        self._check_inputs()
        if self.resume and self.overwrite:
            raise ConfigError("--resume continues the run in output_dir and --overwrite replaces it: choose one")
        if self.resume:
            self._check_resume()
            return self
        removable = run.removable(self.inputs)  # a run's files here, the command's inputs aside
        if removable and not run.has_marker():
            raise UnlearnError(f"{run.path} holds {_listing(removable)} but no run of unlearn (no "
                               f"{RunDirectory.CONFIG}): nothing there is removed or replaced, even with --overwrite; "
                               "choose another output_dir")
        if removable and not self.overwrite:
            removed = f" (--overwrite removes {_listing(removable)}{self._kept()})"
            if run.is_complete():
                raise UnlearnError(f"{run.path} holds a finished run ({RunDirectory.METRICS}); add --overwrite to "
                                   f"replace it{removed}, or choose another output_dir")
            if Checkpoint(run.checkpoint_dir).exists():
                step = Checkpoint(run.checkpoint_dir).read_state()["global_step"]
                raise UnlearnError(f"{run.path} holds an unfinished run with a checkpoint at step {step}; add --resume "
                                   f"to continue it or --overwrite to start over{removed}")
            raise UnlearnError(f"{run.path} holds files of an earlier run; add --overwrite to replace them{removed}, "
                               "or choose another output_dir")
        return self

    def _kept(self) -> str:
        kept = self.run.kept_inputs(self.inputs)
        return "".join(f"; it keeps {p.name}/, the input {i.key}" for p, i in kept)

    def _check_inputs(self) -> None:
        out = self.run.path
        for given in self.inputs:
            if given.holds(out):
                raise ConfigError(f"output_dir {out} is (or lies inside) {given.describe()}, an input of this "
                                  "command; its files would be replaced: choose another output_dir")
            if self.writes_model and given.touched_by(self.run.model_dir):
                raise ConfigError(f"save_model=true would replace {self.run.model_dir}, which holds "
                                  f"{given.describe()}, an input of this command: choose another output_dir (or "
                                  "save_model=false)")

    def _check_resume(self) -> None:
        run, checkpoint = self.run, Checkpoint(self.run.checkpoint_dir)
        if not checkpoint.exists():
            why = (f"the run finished (its {RunDirectory.CHECKPOINT} is dropped at the end)" if run.is_complete()
                   else "nothing to resume from")
            raise UnlearnError(f"--resume: {run.path} has no checkpoint ({why}); run without --resume to start over")
        stored = checkpoint.read_state().get("config")
        if self.fingerprint is None:
            return
        if stored is None:
            raise UnlearnError(f"--resume: the checkpoint in {run.path} records no configuration (written by an "
                               "older unlearn); start over with --overwrite")
        keys = differing_keys(stored, self.fingerprint)
        if not any(k.startswith(DATA_KEY) for k in stored):  # written before data hashes were stored
            keys = [k for k in keys if not k.startswith(DATA_KEY)]
            log.warning("--resume: the checkpoint in %s records no data hashes (an older unlearn): the data files "
                        "cannot be checked against it", run.path)
        if keys:
            shown = "; ".join(_difference(k, stored.get(k), self.fingerprint.get(k)) for k in keys[:6])
            more = f" (and {len(keys) - 6} more)" if len(keys) > 6 else ""
            from unlearn.objectives.methods import rename_note

            raise UnlearnError(f"--resume: the checkpoint in {run.path} belongs to another configuration — {shown}"
                               f"{more}; use the same configuration or --overwrite"
                               f"{rename_note(stored.get('method.name'))}")

    def commit(self) -> RunDirectory:
        """After every check and before training: clear an overwritten run, then write ``config.yaml`` (on the main
        process only, once every process has checked the directory)."""
        state = process_state()
        state.wait_for_everyone()
        if state.is_main_process:
            if self.overwrite and self.run.holds_run(self.inputs):
                removing = _listing(self.run.removable(self.inputs))
                log.warning("--overwrite: removing %s from %s%s", removing, self.run.path, self._kept())
                self.run.clear(self.inputs)
            self.run.drop_leftovers()  # killed writes of an earlier process: only this command writes here now
            self.run.create().write_config(self.config_text)
        state.wait_for_everyone()
        return self.run


def _difference(key: str, stored: Any, current: Any) -> str:
    if key.startswith(DATA_KEY):
        name = key[len(DATA_KEY) + 1:-1]
        if stored is None or current is None:
            return f"data file {name} {'was not read' if stored is None else 'is not read now'} in the checkpoint's run"
        return f"data file {name} changed since the checkpoint (sha256 {stored[:12]}… then, {current[:12]}… now)"
    return f"{key}: {stored!r} in the checkpoint, {current!r} now"


def write_results(run: RunDirectory, task: Task, evaluator: TaskEvaluator | None, model: torch.nn.Module,
                  device: torch.device, info: RunInfo, timer: Timer,
                  provenance: dict[str, Any] | None = None, notes: dict[str, Any] | None = None) -> None:
    """Evaluate (when on; every process takes its share), write the task's files, then ``metrics.json`` (last),
    then the report — the writing on the main process only."""
    metrics: dict = {}
    result = evaluator.evaluate(model, device) if evaluator is not None else None
    state = process_state()
    if state.is_main_process:
        if result is not None:
            write_task_files(run, task, result)
            metrics = result.metrics
        run.write_results(RunResults(task=task.name, metrics=metrics, run=info, seconds=timer.seconds,
                                     provenance=provenance, notes=notes or {}))
        finish_run(run)
    state.wait_for_everyone()


def write_task_files(run: RunDirectory, task: Task, result: EvalResult) -> None:
    """The task's per-sample files, and those of the harness tasks run beside it (``eval.lm_eval``)."""
    own, harness_rows = split_rows(result)
    task.write(run, own)
    for name, rows in harness_rows.items():
        run.write_eval_rows(name, rows)


def finish_run(run: RunDirectory) -> None:
    """After the results are written: drop the resume checkpoint and render ``report.md`` with its plots."""
    from unlearn.reporting.report import write_report

    run.drop_checkpoint()
    if run.read_results().metrics:  # a run without evaluation has nothing to report
        write_report(run.path)


class Timer:
    def __init__(self):
        self.start = time.time()

    @property
    def seconds(self) -> float:
        return round(time.time() - self.start, 2)
