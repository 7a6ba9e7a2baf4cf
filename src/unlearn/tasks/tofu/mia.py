"""``tofu_mia``: the membership-inference suite on TOFU (docs/formulas.md#mia): the forget split's QA pairs are the
members, ``holdoutXX`` of the same size (20 fictitious authors no model was trained on) the non-members. Each pair is
chat-formatted like training and scored on its answer tokens."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from tqdm.auto import tqdm

from unlearn.config.schema import RunConfig
from unlearn.data.formatting import ChatFormatter, check_lengths
from unlearn.errors import ConfigError, DataError
from unlearn.evaluation import mia
from unlearn.evaluation.mia_eval import MiaSet, MiaSuite, score_rows
from unlearn.runs import RunDirectory
from unlearn.tasks import register
from unlearn.tasks.base import Dependency, EvalResult, MetricSpec, SetSpec, Task
from unlearn.tasks.muse.task import _load_reference
from unlearn.tasks.tofu.data import TofuData, forget_percent


def holdout_split(forget_split: str) -> str:
    """``forget05`` → ``holdout05`` (the TOFU release's non-member split of the same size)."""
    return f"holdout{forget_percent(forget_split):02d}"


class TofuMiaEvaluator:
    def __init__(self, cfg: RunConfig, formatter: ChatFormatter):
        root = Path(cfg.data.root).expanduser()
        data = TofuData(root if root.exists() else cfg.data.root)
        self.progress = cfg.progress
        self.sets: dict[str, MiaSet] = {}
        for name, split in (("forget", cfg.data.forget_split), ("holdout", holdout_split(cfg.data.forget_split))):
            records = data.split(split)
            limit = cfg.eval.max_rows.get(name)
            records = records[:limit] if limit else records
            if len(records) < 2:
                raise DataError(f"tofu_mia: membership inference needs at least 2 {name} rows "
                                f"({split} gives {len(records)}); an AUC of fewer is meaningless")
            samples = formatter.encode_pairs([(r.question, r.answer) for r in records])
            check_lengths(samples, cfg.data.max_length, [f"{r.source} field 'answer'" for r in records],
                          [f"{r.source} field 'question'" for r in records])
            self.sets[name] = MiaSet(samples, [r.answer for r in records], [r.source for r in records])
        attacks = mia.chosen_attacks(cfg.eval.mia_attacks, cfg.eval.mia_reference is not None)
        reference = _load_reference(cfg, formatter.tokenizer) if "reference" in attacks else None
        self.suite = MiaSuite(attacks, cfg.eval.mia_k, formatter.pad_id, cfg.eval.batch_size, reference)

    def evaluate(self, model: torch.nn.Module, device: torch.device | None = None, desc: str = "eval",
                 n_resamples: int | None = None, generate: bool | None = None,
                 sets: Sequence[str] | None = None) -> EvalResult:
        device = device or next(model.parameters()).device
        was_training = model.training
        model.eval()
        bar = tqdm(total=sum(len(s.samples) for s in self.sets.values()), desc=desc,
                   disable=None if self.progress else True, leave=False, dynamic_ncols=True)
        try:
            stats = self.suite.statistics(model, self.sets, device, bar.update)
            scores = self.suite.scores(model, self.sets, stats, device)
        finally:
            bar.close()
            model.train(was_training)
        rows = score_rows(self.sets, stats, scores)
        return EvalResult(rows, {"mia": {"k": self.suite.k, "attacks": self.suite.aucs(scores, "forget", "holdout")}})

    def epoch_record(self, model: torch.nn.Module, device: torch.device, epoch: int, generate: bool,
                     sets: Sequence[str] | None) -> dict[str, Any]:
        return self.evaluate(model, device, desc=f"eval epoch {epoch}").metrics


class TofuMiaTask(Task):
    name = "tofu_mia"
    version = 1
    report_module = "unlearn.tasks.muse.report"
    summary = "membership inference on TOFU: forget QA (members) vs holdoutXX (non-members)"
    defaults: ClassVar[dict[str, Any]] = {"data.forget_split": "forget10", "data.max_length": 500,
                                          "data.train_splits": ["full"]}
    sets = (
        SetSpec("forget", "the forget split's QA pairs (members)", "answer-token scores of every attack",
                "eval.max_rows.forget"),
        SetSpec("holdout", "holdoutXX, the same size (non-members)", "answer-token scores of every attack",
                "eval.max_rows.holdout"),
    )
    requests = ("token_logprobs",)
    metrics = (
        MetricSpec("mia.<attack>.auc", "membership-inference AUC, forget vs holdout", "run", False,
                   "Mann–Whitney AUC (0.5 = indistinguishable, as for a model never trained on the forget set)"),
    )
    dependencies = (Dependency("mia_reference", "eval.mia_reference", ("mia.reference",), "a reference model"),)

    def check(self, cfg: RunConfig) -> None:
        if cfg.eval.sets is not None and set(cfg.eval.sets) != set(self.set_names):
            raise ConfigError(f"the {self.name} task always scores both of its sets ({', '.join(self.set_names)})")
        root = Path(cfg.data.root).expanduser()
        if root.is_dir() and not TofuData(root).has_split(holdout_split(cfg.data.forget_split)):
            raise ConfigError(f"{self.name} needs {holdout_split(cfg.data.forget_split)} in {root} (non-members of "
                              f"the size of {cfg.data.forget_split})")

    def evaluator(self, cfg: RunConfig, formatter: ChatFormatter, device: str) -> TofuMiaEvaluator:
        return TofuMiaEvaluator(cfg, formatter)

    def write(self, run_dir: RunDirectory, result: EvalResult) -> None:
        for name, rows in result.samples.items():
            run_dir.write_eval_rows(name, rows)

    def format_results(self, metrics: dict[str, Any]) -> str:
        attacks = (metrics.get("mia") or {}).get("attacks") or {}
        lines = ["| attack | AUC (forget vs holdout) |", "|---|---|"]
        lines += [f"| {a} | {v['auc']:.3f} |" for a, v in attacks.items()]
        return "\n".join(lines)


TOFU_MIA = register(TofuMiaTask())
