"""The paraphrase attack (docs/formulas.md#paraphrase-attack): the forget metrics with TOFU's
``paraphrased_question`` asked instead of ``question``, beside the same metrics on the original questions from the
same pass.

Only the question changes; the answer, its paraphrase and the perturbed answers stay, so ROUGE-L recall, Probability
and the Truth Ratio keep TOFU's definitions. Forget Quality needs the retain model's truth ratios on the same
(paraphrased) questions: when the retain model's run directory holds its model, it is evaluated on both variants
(likelihoods only); otherwise FQ is reported as n/a, with the reason.
"""

from __future__ import annotations

from typing import Any

import torch

from unlearn.attacks.config import AttackConfig
from unlearn.attacks.target import AttackTarget
from unlearn.data.records import QARecord
from unlearn.errors import DataError
from unlearn.models.loading import check_model_tokenizer, load_model_and_tokenizer
from unlearn.runs import RunDirectory
from unlearn.tasks import get_task
from unlearn.tasks.tofu.evaluate import EvalSet, TofuEvaluator
from unlearn.tasks.tofu.metrics import forget_quality
from unlearn.tasks.tofu.sets import FORGET

VARIANTS = ("original", "paraphrased")
METRICS = ("rouge", "prob", "truth_ratio")


def paraphrased(records: list[QARecord]) -> list[QARecord]:
    """The records with ``paraphrased_question`` as their question; one line naming file and row when missing."""
    out = []
    for r in records:
        question = r.extra.get("paraphrased_question")
        if not isinstance(question, str) or not question.strip():
            raise DataError(f"{r.source}: field 'paraphrased_question' is missing or empty; the paraphrase attack "
                            "asks it instead of 'question' (TOFU's forget*_perturbed files have it, and so does data "
                            "written by `unlearn generate-data` / `unlearn demo --fresh` now)")
        out.append(QARecord(question=question, answer=r.answer, paraphrased_answer=r.paraphrased_answer,
                            perturbed_answers=r.perturbed_answers, source=r.source))
    return out


def check_paraphrase(target: AttackTarget, settings: AttackConfig) -> None:
    paraphrased(target.forget_records(settings.max_rows or target.cfg.eval.forget_rows))
    target.retain_run(settings.retain_reference)


def run_paraphrase(target: AttackTarget, settings: AttackConfig, model: torch.nn.Module, formatter: Any,
                   device: torch.device) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The attack on ``model``: (summary, per-sample rows of each variant)."""
    cfg = target.cfg
    original = target.forget_records(settings.max_rows or cfg.eval.forget_rows)
    variants = {"original": original, "paraphrased": paraphrased(original)}
    retain = target.retain_run(settings.retain_reference)
    eval_settings = get_task("tofu").settings(cfg)
    summary: dict[str, Any] = {"n": len(original), "sets": {}, "forget_quality": {}}
    rows: dict[str, list[dict[str, Any]]] = {}
    retain_model = None
    if retain is not None:
        retain_model, _ = load_model_and_tokenizer(str(retain.model_dir))
        check_model_tokenizer(retain_model, formatter.tokenizer, f"retain model {retain.model_dir}")
        retain_model.to(device)
    for name, records in variants.items():
        evaluator = TofuEvaluator(formatter, {"forget": EvalSet("forget", FORGET, tuple(records))}, eval_settings,
                                  None, str(device))
        result = evaluator.evaluate(model, device, desc=f"paraphrase: {name}")
        rows[name] = result.samples["forget"]
        summary["sets"][name] = {m: result.metrics["sets"]["forget"].get(m) for m in (*METRICS, "ci95")}
        if retain_model is not None:
            retain_rows = evaluator.rows(retain_model, device, desc=f"paraphrase: retain, {name}", generate=False)
            # each row's truth_ratio is its Q, the quantity Forget Quality's KS test compares
            summary["forget_quality"][name] = forget_quality([r["truth_ratio"] for r in rows[name]],
                                                             [r["truth_ratio"] for r in retain_rows["forget"]])
    if retain is None:
        summary["forget_quality_unavailable"] = (
            "no retain model: give retain_reference=RUN_DIR (a retain run saved with its model); the run's own "
            "eval.retain_reference holds truth ratios on the original questions only")
    else:
        summary["forget_quality_reference"] = str(RunDirectory(retain.path).path)
    return summary, rows
