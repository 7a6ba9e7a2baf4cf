"""The skeleton that ``unlearn finetune``, ``run`` and ``eval`` share: every check, then every input encoded, then
the weights, then the run directory — in that order, so that a mistake is one line before any compute and nothing
in the output directory changes until the run can start.

1. the data opens and the evaluation's configuration and files are checked (and, for training, the training
   options);
2. the data's rows are read (:func:`unlearn.data.files.recording_reads` hashes every file, for the checkpoint's
   fingerprint) and the output directory is checked (:class:`RunSetup`);
3. the tokenizer and the model's configuration load (no weights): the lengths the configuration fixes, every
   training item and every evaluation set are checked against the model's context;
4. the weights load, and only then the run directory is committed (``config.yaml`` written).

A pipeline prepares its stage with :func:`prepare_stage`, runs its own procedure on the :class:`PreparedStage`, and
finishes with :meth:`PreparedStage.finish` (save the model, evaluate, write ``metrics.json`` last).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from unlearn import provenance as prov
from unlearn.data.files import recording_reads
from unlearn.data.formatting import ChatFormatter
from unlearn.data.parts import PartData
from unlearn.errors import UnlearnError
from unlearn.experiments.common import (
    RunSetup,
    Timer,
    apply_training_options,
    build_evaluator,
    check_context,
    check_evaluation,
    check_part_lengths,
    check_training,
    command_inputs,
    data_fingerprint,
    epoch_hook,
    load_weights,
    make_accelerator,
    open_data,
    open_model,
    process_state,
    require,
    write_results,
)
from unlearn.experiments.plan import RunPlan, limit_note
from unlearn.experiments.reuse import SharedCache
from unlearn.hub import looks_local
from unlearn.io import atomic_dir
from unlearn.models.loading import ResolvedModel, resolve_model, save_model
from unlearn.runs import RunDirectory, RunInfo
from unlearn.tasks.base import TaskEvaluator
from unlearn.tasks.training_data import Benchmark
from unlearn.train.loop import EpochHook, LoopSettings, check_processes


@dataclass
class Training:
    """What a training stage adds to the skeleton: how it reads its rows (returning how many it trains on), how it
    encodes them, its progress label, and what it does to the loaded weights before the run starts."""

    read: Callable[[Benchmark], int]
    encode: Callable[[Benchmark, ChatFormatter], PartData]
    desc: str
    on_weights: Callable[[torch.nn.Module], None] | None = None


@dataclass
class PreparedStage:
    """A stage ready to run: checked, encoded, its weights loaded on the accelerator's device, its run directory
    committed."""

    plan: RunPlan
    run: RunDirectory
    model: torch.nn.Module
    tokenizer: Any
    evaluator: TaskEvaluator | None
    accelerator: Accelerator
    timer: Timer
    data: Benchmark | None = None
    n_rows: int = 0
    """The rows the stage trains on, as its ``read`` counted them."""
    parts: PartData | None = None
    settings: LoopSettings | None = None
    hook: EpochHook | None = None
    """Per-epoch evaluation (``train.eval_every_epoch``; epoch 0 is the starting model)."""
    fingerprint: dict[str, Any] | None = None
    """What the run's checkpoint belongs to: the plan's configuration and the data files' hashes."""
    opened_model: ResolvedModel | None = None
    """Where the weights came from (:class:`unlearn.models.loading.ResolvedModel`)."""
    provenance: dict[str, Any] | None = None
    """What produced the run's numbers (:mod:`unlearn.provenance`), written into ``metrics.json``."""
    cache: SharedCache | None = None
    """The cache shared with other runs from the same model and data (``cache_dir``), if any."""

    def finish(self, model: torch.nn.Module, info: RunInfo, adapter: tuple[Any, dict] | None = None) -> None:
        """Save the model (``save_model``; its weights' digest cached beside it; a LoRA run's ``adapter`` — peft
        config and weights — in ``model/adapter/``), evaluate, write the task's files, then ``metrics.json`` and
        the report."""
        if self.plan.cfg.save_model and self.accelerator.is_main_process:
            with atomic_dir(self.run.model_dir) as tmp:
                save_model(model, self.tokenizer, tmp)
                if adapter is not None:
                    save_adapter(*adapter, tmp / RunDirectory.ADAPTER)
            if self.provenance is not None:  # hashed once here; the next stage reading this model reuses it
                self.provenance["saved_model"] = {"weights_sha256": prov.weights_sha256(self.run.model_dir,
                                                                                        cache=True)}
        write_results(self.run, self.plan.task, self.evaluator, model, self.accelerator.device, info, self.timer,
                      self.provenance, limit_note(self.plan.cfg))


def save_adapter(peft_config: Any, weights: dict[str, torch.Tensor], directory: Path) -> None:
    """A LoRA adapter as ``PeftModel.save_pretrained`` writes it (``adapter_config.json``,
    ``adapter_model.safetensors``), loadable with ``PeftModel.from_pretrained(base, directory)``."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True)
    peft_config.save_pretrained(directory)
    save_file({k: v.contiguous() for k, v in weights.items()}, directory / "adapter_model.safetensors")


def prepare_stage(plan: RunPlan, training: Training | None = None, resume: bool = False,
                  overwrite: bool = False, timer: Timer | None = None) -> PreparedStage:
    """Steps 1–4 of the module's docstring for ``plan``; ``training`` None for an evaluation."""
    timer = timer or Timer()
    with recording_reads() as every_read:  # every data file the run reads, for its provenance
        stage = _prepare(plan, training, resume, overwrite, timer)
    stage.provenance = provenance_of(plan, every_read, stage.opened_model)
    stage.cache = SharedCache.for_run(plan, stage.provenance)
    if stage.cache is not None and stage.hook is not None:
        stage.hook = stage.cache.share_epoch_zero(stage.hook, stage.cache.evaluation_key(plan, stage.provenance))
    return stage


def provenance_of(plan: RunPlan, reads: dict[Path, str], model: ResolvedModel | None = None) -> dict[str, Any]:
    """The provenance record of a planned run that read ``reads`` and loads the resolved ``model``."""
    cfg = plan.cfg
    data = prov.data_files(reads, cfg.data.root)
    if cfg.data.root and not Path(cfg.data.root).expanduser().exists() and not looks_local(cfg.data.root):
        data.append(prov.hub_dataset(cfg.data.root))
    uses_harness = bool(cfg.eval.lm_eval) or plan.data_kind == "none"
    if model is None and cfg.model.path:
        try:
            model = resolve_model(cfg.model.path, cfg.model.gguf_file)
        except UnlearnError:  # a scenario's or an attack's model that moved since: named by its path alone
            model = None
    identity = {"path": cfg.model.path, "revision": None, "weights_sha256": None} if cfg.model.path else None
    if model is not None:
        identity = prov.model_identity(cfg.model.path, model.path if model.is_local else None, model.gguf_file,
                                       model.is_local)
    record = prov.collect(config_text=plan.config_text, seed=cfg.train.seed,
                          mixed_precision=cfg.train.mixed_precision, task=plan.task.name,
                          task_version=plan.task.version, data=data, model=identity,
                          extra_packages=("lm-eval",) if uses_harness else ())
    if cfg.limit is not None:
        record["limit"] = cfg.limit
    return record


def _prepare(plan: RunPlan, training: Training | None, resume: bool, overwrite: bool,
             timer: Timer) -> PreparedStage:
    cfg = plan.cfg
    settings = None
    if training is not None:
        settings = LoopSettings.from_train(cfg.train, progress=cfg.progress, desc=training.desc)
    data = None
    if training is None and plan.data_kind == "none":  # lm-evaluation-harness tasks bring their own data
        require(cfg.model.path, "model.path")
    else:
        data = open_data(plan)
    check_evaluation(plan)
    fingerprint, n_rows = None, 0
    if training is not None:
        check_training(cfg)
        with recording_reads() as reads:
            n_rows = training.read(data)
        fingerprint = plan.fingerprint | data_fingerprint(cfg, reads)
    setup = RunSetup(plan.run, plan.config_text, fingerprint, resume, overwrite, inputs=command_inputs(cfg),
                     writes_model=training is not None and cfg.save_model).check()
    opened = open_model(cfg)  # tokenizer and context length: every input is encoded and checked before the weights
    check_context(plan, opened.context, training=training is not None)
    parts = None
    if training is not None:
        parts = training.encode(data, opened.formatter)
        check_part_lengths(parts, opened.context, cfg.model.path)
        check_processes(process_state().num_processes, len(parts), settings)
    evaluator = build_evaluator(plan, opened.formatter, opened.context)
    model = load_weights(cfg, opened)
    if training is not None:
        apply_training_options(cfg, model)
        if training.on_weights is not None:
            training.on_weights(model)
    run = setup.commit()

    accelerator = make_accelerator(cfg, run if training is not None else None)  # a tracker for training runs
    model.to(accelerator.device)
    hook = None
    if training is not None and evaluator is not None and cfg.train.eval_every_epoch:
        hook = epoch_hook(evaluator, accelerator.device, cfg.eval.generate_every_epoch, cfg.eval.epoch_sets)
    return PreparedStage(plan, run, model, opened.tokenizer, evaluator, accelerator, timer, data, n_rows, parts,
                         settings, hook, fingerprint, opened_model=opened.resolved)
