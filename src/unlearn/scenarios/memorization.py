"""Unlearning vs. data memorization (SimNPO App. C, Table A2; docs/formulas.md#memorization).

The forget split is cut in two halves, D_f,1 (its first ⌊n/2⌋ rows) and D_f,2 (the rest). The target is fine-tuned on
the retain split ∪ D_f,1 only, so it memorizes D_f,1 and has never seen D_f,2; each method then unlearns all of D_f,
and Forget Quality is reported per half, against the retain model's truth ratios on the same rows. SimNPO's claim:
NPO over-forgets the half the model never memorized, SimNPO does not.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unlearn.config import RunConfig
from unlearn.config.parsing import check, setting
from unlearn.data.files import read_raw_rows
from unlearn.data.views import data_view
from unlearn.errors import ConfigError
from unlearn.io import write_json, write_text
from unlearn.rendering.tables import fmt
from unlearn.runs import RunDirectory
from unlearn.tasks.tofu.data import TofuData, retain_split_for
from unlearn.tasks.tofu.metrics import forget_quality

TRAIN_SPLIT = "memorization_train"


@dataclass
class MemorizationConfig:
    methods: list[str] = setting(doc="methods that unlearn the whole forget split (SimNPO Table A2: NPO, SimNPO)",
                                 factory=lambda: ["npo+gd", "simnpo+gd"])
    finetune_epochs: int = setting(5, "epochs of the target's fine-tuning on retain ∪ D_f,1 (TOFU: 5)")
    finetune_lr: float = setting(1e-5, "its learning rate (TOFU: 1e-5)")
    finetune_batch_size: int = setting(32, "its batch size (TOFU: 32)")
    extra_train_splits: list[str] = setting(doc="further splits the target also learns (the embedded demo's target "
                                                "learns real_authors and world_facts too)", factory=list)

    def __post_init__(self) -> None:
        check(bool(self.methods), "methods", "name at least one method", self.methods)
        for name in ("finetune_epochs", "finetune_batch_size"):
            check(getattr(self, name) >= 1, name, "be at least 1", getattr(self, name))
        check(self.finetune_lr > 0, "finetune_lr", "be positive", self.finetune_lr)
        from unlearn.objectives.methods import build_method

        for method in self.methods:
            build_method(method)


def halves(n: int) -> tuple[slice, slice]:
    """D_f,1 = the first ⌊n/2⌋ rows, D_f,2 = the rest (the larger half when n is odd)."""
    return slice(0, n // 2), slice(n // 2, n)


def fq_per_half(q_model: Sequence[float], q_retain: Sequence[float], memorized: Sequence[bool]) -> dict[str, float]:
    """Forget Quality (KS p-value of the two models' truth ratios on the same rows) over the memorized rows, the
    others, and all of them."""
    q_model, q_retain = np.asarray(q_model, dtype=float), np.asarray(q_retain, dtype=float)
    mask = np.asarray(memorized, dtype=bool)
    if not len(q_model) == len(q_retain) == len(mask):
        raise ValueError(f"{len(q_model)} forget rows against {len(q_retain)} of the retain model")
    if mask.all() or not mask.any():
        raise ValueError("both halves need evaluated rows (raise eval.forget_rows)")
    return {"memorized": forget_quality(q_model[mask], q_retain[mask]),
            "unseen": forget_quality(q_model[~mask], q_retain[~mask]),
            "all": forget_quality(q_model, q_retain)}


def _forget_rows(run: RunDirectory) -> list[dict[str, Any]]:
    rows = run.read_eval_rows("forget")
    if rows is None:
        raise ConfigError(f"{run.path}: no eval/forget.jsonl (the forget set was not evaluated)")
    return rows


def run_memorization(cfg: RunConfig, scenario: MemorizationConfig, echo=print) -> Path:
    from unlearn.experiments.finetune import run_finetune
    from unlearn.experiments.plan import plan_finetune, plan_unlearning, with_task_defaults
    from unlearn.experiments.stages import run_planned
    from unlearn.experiments.unlearning import run_unlearning

    cfg = with_task_defaults(cfg)
    if cfg.eval.task != "tofu":
        raise ConfigError("the memorization scenario runs on TOFU-layout data (eval.task=tofu)")
    reference = cfg.eval.retain_reference
    if not reference or not RunDirectory(reference).eval_rows_file("forget").is_file():
        raise ConfigError("eval.retain_reference must be the retain model's run directory (its eval/forget.jsonl "
                          "gives the per-row truth ratios each half's Forget Quality compares with)")
    root, split = Path(cfg.data.root), cfg.data.forget_split
    retain_name = cfg.data.retain_split or retain_split_for(split)
    files = {name: TofuData(root).local_file(name) for name in (split, retain_name)}
    missing = [name for name, path in files.items() if path is None]
    if missing:
        raise ConfigError(f"{root}: split {missing[0]} not found")
    forget = [row for row, _ in read_raw_rows(files[split])]
    first, _ = halves(len(forget))
    out = Path(cfg.output_dir or "runs/memorization")
    view = data_view(root, out / "data", {TRAIN_SPLIT: [row for row, _ in read_raw_rows(files[retain_name])]
                                          + forget[first]})

    target_cfg = copy.deepcopy(cfg)
    target_cfg.data.root = str(view)
    target_cfg.data.train_splits = [TRAIN_SPLIT, *scenario.extra_train_splits]
    target_cfg.train.epochs = scenario.finetune_epochs
    target_cfg.train.stop_after_epoch = 0  # the run's own stop is for its unlearning, not the target's fine-tuning
    target_cfg.train.lr = scenario.finetune_lr
    target_cfg.train.batch_size = scenario.finetune_batch_size
    target_cfg.train.grad_accum = 1
    target_cfg.train.eval_every_epoch = False
    target_cfg.save_model = True
    target_cfg.output_dir = str(out / "target")
    target_plan = plan_finetune(target_cfg)
    target = target_plan.run
    run_planned(target_plan, run_finetune, lambda: echo(f"target: fine-tuning on {retain_name} ∪ the first "
                                                        f"{first.stop} of {len(forget)} {split} rows"))

    retain_rows = _forget_rows(RunDirectory(reference))
    memorized_questions = {row["question"] for row in forget[first]}
    results: dict[str, Any] = {"forget_split": split, "n_forget": len(forget), "memorized_rows": first.stop,
                               "retain_split": retain_name, "retain_reference": reference, "models": {}}
    runs = {"target": target}
    for method in scenario.methods:
        run_cfg = copy.deepcopy(cfg)
        run_cfg.method.name = method
        run_cfg.model.path = str(target.model_dir)
        run_cfg.data.root = str(view)
        run_cfg.output_dir = str(out / method.replace("+", "_"))
        plan = plan_unlearning(run_cfg)
        run_planned(plan, run_unlearning,
                    lambda method=method: echo(f"{method}: unlearning all {len(forget)} {split} rows"))
        runs[method] = plan.run
    for name, run in runs.items():
        rows = _forget_rows(run)
        if [r["question"] for r in rows] != [r["question"] for r in retain_rows]:
            raise ConfigError(f"{run.path} and the retain reference {reference} evaluated different forget rows")
        mask = [r["question"] in memorized_questions for r in rows]
        results["models"][name] = {
            "forget_quality": fq_per_half([r["truth_ratio"] for r in rows], [r["truth_ratio"] for r in retain_rows],
                                          mask),
            "model_utility_9": run.read_results().metrics.get("model_utility_9")}
    write_json(out / "memorization.json", results)
    write_text(out / "memorization.md", "\n".join(memorization_table(results)) + "\n")
    return out


def memorization_table(results: dict[str, Any]) -> list[str]:
    n, m = results["n_forget"], results["memorized_rows"]
    lines = [f"# Unlearning vs. memorization (SimNPO App. C): target trained on {results['retain_split']} ∪ the first "
             f"{m} of {n} {results['forget_split']} rows; every method unlearns all {n}", "",
             "| model | FQ on D_f,1 (memorized) | FQ on D_f,2 (never trained on) | FQ on D_f | MU |",
             "|---|---|---|---|---|"]
    for name, r in results["models"].items():
        fq = r["forget_quality"]
        mu = r["model_utility_9"]
        lines.append(f"| {name} | {fq['memorized']:.3g} | {fq['unseen']:.3g} | {fq['all']:.3g} | "
                     f"{fmt(mu)} |")
    return [*lines, ""]

