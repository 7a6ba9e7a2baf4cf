"""Pieces every pipeline shares: accelerator, model loading, run directories, evaluator construction."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from unlearn.config import RunConfig, dump_yaml
from unlearn.data.formatting import ChatFormatter
from unlearn.data.tofu import TofuData
from unlearn.errors import ConfigError, DataError
from unlearn.evaluation.generation import GenerationSettings
from unlearn.evaluation.tofu_eval import EvalSettings, RetainReference, TofuEvaluator
from unlearn.io import read_json, write_text
from unlearn.models.loading import load_model_and_tokenizer
from unlearn.train.loop import LoopSettings

log = logging.getLogger("unlearn")


def quiet_libraries() -> None:
    """Keep library chatter (tokenizer fork warnings, HF info logs) out of the user's terminal."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def make_accelerator(cfg: RunConfig) -> Accelerator:
    choice = cfg.train.mixed_precision
    if choice not in ("auto", "no", "bf16"):
        raise ConfigError(f"train.mixed_precision must be auto, no or bf16, got {choice!r}")
    if choice == "auto":
        choice = "bf16" if torch.cuda.is_available() else "no"
    return Accelerator(mixed_precision=choice, cpu=not torch.cuda.is_available())


def loop_settings(cfg: RunConfig, desc: str) -> LoopSettings:
    t = cfg.train
    for name in ("epochs", "batch_size", "grad_accum"):
        if getattr(t, name) < 1:
            raise ConfigError(f"train.{name} must be at least 1, got {getattr(t, name)}")
    if t.lr <= 0:
        raise ConfigError(f"train.lr must be positive, got {t.lr}")
    if t.max_steps is not None and t.max_steps < 1:
        raise ConfigError(f"train.max_steps must be at least 1 when set, got {t.max_steps}")
    shared = {f.name: getattr(t, f.name) for f in dataclasses.fields(LoopSettings) if hasattr(t, f.name)}
    return LoopSettings(**shared, progress=cfg.progress, desc=desc)


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


def run_directory(cfg: RunConfig, default: str) -> Path:
    out = Path(cfg.output_dir or default)
    out.mkdir(parents=True, exist_ok=True)
    return out


def save_config(run_dir: Path, cfg: RunConfig) -> None:
    write_text(run_dir / "config.yaml", dump_yaml(cfg))


def load_model(cfg: RunConfig):
    """Model, tokenizer and formatter from ``cfg.model`` (fp32; autocast handles bf16 on GPU)."""
    model, tokenizer = load_model_and_tokenizer(
        require(cfg.model.path, "model.path"), cfg.model.gguf_file, cfg.model.tokenizer, cfg.model.trust_remote_code
    )
    formatter = ChatFormatter(tokenizer, cfg.model.template, cfg.model.system_prompt)
    return model, tokenizer, formatter


def build_evaluator(
    cfg: RunConfig, data: TofuData, formatter: ChatFormatter, device: str | None = None
) -> TofuEvaluator | None:
    if not cfg.eval.enabled:
        return None
    e = cfg.eval
    if e.batch_size < 1 or e.max_length < 2:
        raise ConfigError("eval.batch_size must be ≥ 1 and eval.max_length ≥ 2")
    sets = data.eval_sets(cfg.data.forget_split, e.forget_rows, e.retain_rows, e.mc_rows, tuple(e.sets))
    unknown = set(e.epoch_sets or ()) - set(e.sets)
    if unknown:
        raise ConfigError(f"eval.epoch_sets {sorted(unknown)} are not among eval.sets {e.sets}")
    reference = RetainReference.load(e.retain_reference) if e.retain_reference else None
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return TofuEvaluator(formatter, sets, eval_settings(cfg), reference, device)


def epoch_hook(evaluator: TofuEvaluator, device: torch.device, generate: bool = True,
               sets: list[str] | None = None):
    """Per-epoch evaluation (epoch 0 = the starting model): aggregates without bootstrap, plus the forget
    set's per-sample log π(y|x) and |y| so gradient weights (SimNPO Fig. 3/4) can be drawn afterwards."""

    def hook(epoch: int, model: torch.nn.Module) -> dict:
        result = evaluator.evaluate(model, device, desc=f"eval epoch {epoch}", n_resamples=0, generate=generate,
                                    sets=sets)
        forget = result.samples.get("forget", [])
        return {**result.metrics,
                "forget_logp": [-r["gt_loss"] * r["gt_tokens"] for r in forget],
                "forget_tokens": [r["gt_tokens"] for r in forget]}

    return hook


def eval_settings(cfg: RunConfig) -> EvalSettings:
    e = cfg.eval
    if e.bootstrap < 0:
        raise ConfigError(f"eval.bootstrap must be ≥ 0, got {e.bootstrap}")
    return EvalSettings(
        batch_size=e.batch_size, generate=e.generate, max_length=cfg.data.max_length, progress=cfg.progress,
        generation=GenerationSettings(max_length=e.max_length, do_sample=e.do_sample, temperature=e.temperature,
                                      top_p=e.top_p, seed=cfg.train.seed),
        embedding_model=e.embedding_model, nli_model=e.nli_model, bootstrap=e.bootstrap, seed=cfg.train.seed,
    )


def stage_needed(run_dir: Path, cfg: RunConfig) -> bool:
    """For multi-stage experiments: False if ``run_dir`` already holds finished results of exactly ``cfg``;
    a directory left by another configuration is cleared (a half-done one with the same configuration is
    kept, so the stage resumes from its checkpoint)."""
    import shutil

    config = run_dir / "config.yaml"
    same = config.is_file() and config.read_text() == dump_yaml(cfg)
    if same and (run_dir / "metrics.json").is_file():
        return False
    if config.is_file() and not same:
        shutil.rmtree(run_dir)
    return True


def finish_run(run_dir: Path) -> None:
    """After the results are written: drop the resume checkpoint and render ``report.md`` with its plots."""
    import shutil

    from unlearn.evaluation.report import write_report

    checkpoint = run_dir / "checkpoint"
    if checkpoint.is_dir():
        shutil.rmtree(checkpoint)
    if (run_dir / "metrics.json").is_file() and "sets" in read_json(run_dir / "metrics.json"):
        write_report(run_dir)


class Timer:
    def __init__(self):
        self.start = time.time()

    @property
    def seconds(self) -> float:
        return round(time.time() - self.start, 2)
