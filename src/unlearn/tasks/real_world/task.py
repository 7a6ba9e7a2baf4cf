"""Real-world individuals (closer-look §5.3, App. D and E.7; docs/formulas.md#real-world): unlearn people the model
knows from pretraining, regularize on other people, and measure utility on a third set of people.

Per set the six closer-look numbers of the TOFU task (ROUGE-L recall, Probability, Truth Ratio, Token Entropy, Cosine
Similarity, Entailment), with the scenario's three differences from TOFU:

- ROUGE, Probability, Truth Ratio and Entailment use the **golden answer**; Cosine Similarity compares with the
  model's **own answer before unlearning** (the file's ``answer``, closer-look's reference code);
- Entailment asks whether the generation entails the golden answer on both sets (App. D: the golden answers are too
  short to entail anything);
- Model Utility is the harmonic mean of the six numbers on the neighbor set (Table 8), Forget Efficacy
  1 − mean(forget ROUGE, Prob, 1 − TR, CS, ES). There is no model trained without these people, so Forget Quality
  (a comparison with such a model) is not defined.

General capability (closer-look: MMLU, ARC-C, GSM8K, TriviaQA, TruthfulQA MC1) comes from lm-evaluation-harness
tasks run beside this one (``eval.lm_eval``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from unlearn.config.schema import RunConfig
from unlearn.data.formatting import ChatFormatter
from unlearn.errors import ConfigError
from unlearn.rendering.tables import fmt
from unlearn.runs import RunDirectory, RunResults
from unlearn.tasks import register
from unlearn.tasks.base import Dependency, EvalResult, MetricSpec, Rescored, SetSpec, Task
from unlearn.tasks.real_world.data import EVAL_FILES, OWN, check_layout, read_eval_records
from unlearn.tasks.tofu.closer_look import CLOSER_LOOK_METRICS, FORGET_EFFICACY_TERMS, forget_efficacy, harmonic_mean
from unlearn.tasks.tofu.evaluate import EvalSet, TextScorer, TofuEvaluator, set_samples_from_rows
from unlearn.tasks.tofu.metrics import TOFU_SAMPLE_INPUTS, aggregate_set
from unlearn.tasks.tofu.sets import FORGET, RETAIN
from unlearn.tasks.tofu.task import PER_SET_MEAN, TofuTask, rescored_record, rescoring_scorer

SET_TYPES = {"forget": FORGET, "neighbor": RETAIN}
NO_FORGET_QUALITY = ("not defined: the people were learned in pretraining, so there is no retain model trained "
                     "without them to compare with (closer-look §5.3 reports FE and MU only)")


def real_world_aggregates(per_set: Mapping[str, Mapping[str, float]], unavailable: Mapping[str, str]) -> dict:
    """Forget Efficacy on the forget set and Model Utility (six numbers) on the neighbor set; without the Entailment
    Score they are given as ``*_without_es`` (4 terms, 5 numbers), named so nobody mistakes them for FE / MU."""
    reasons = dict(unavailable)
    out: dict[str, Any] = {"forget_efficacy": None, "model_utility": None}
    forget, neighbor = per_set.get("forget"), per_set.get("neighbor")
    if forget is None:
        reasons["forget_efficacy"] = "the forget set was not evaluated"
    elif all(t in forget for t in FORGET_EFFICACY_TERMS):
        out["forget_efficacy"] = forget_efficacy(forget)
    elif all(t in forget for t in FORGET_EFFICACY_TERMS if t != "entailment"):
        out["forget_efficacy_without_es"] = forget_efficacy(forget, [t for t in FORGET_EFFICACY_TERMS
                                                                     if t != "entailment"])
    if neighbor is None:
        reasons["model_utility"] = "the neighbor set was not evaluated"
    elif all(m in neighbor for m in CLOSER_LOOK_METRICS):
        out["model_utility"] = harmonic_mean([neighbor[m] for m in CLOSER_LOOK_METRICS])
    elif all(m in neighbor for m in CLOSER_LOOK_METRICS if m != "entailment"):
        out["model_utility_without_es"] = harmonic_mean([neighbor[m] for m in CLOSER_LOOK_METRICS
                                                         if m != "entailment"])
    return {**out, "forget_quality": None, "unavailable": {**reasons, "forget_quality": NO_FORGET_QUALITY}}


def score_real_world(samples: dict[str, list[dict[str, Any]]], scorer: TextScorer | None, n_resamples: int = 0,
                     seed: int = 0) -> EvalResult:
    """Text metrics (if ``scorer``) of the rows of the forget and neighbor sets, and every aggregate."""
    unavailable: dict[str, str] = {}
    for name, rows in samples.items():
        if scorer is not None and rows and rows[0].get("generation") is not None:
            scorer.score(rows, SET_TYPES[name] == FORGET, cs_reference=OWN, generation_premise=True)
    if scorer is not None:
        unavailable.update(scorer.unavailable())
    per_set = {name: aggregate_set(set_samples_from_rows(rows, SET_TYPES[name]), n_resamples, seed, "real_world")
               for name, rows in samples.items()}
    return EvalResult(samples, {"sets": per_set, **real_world_aggregates(per_set, unavailable)})


class RealWorldEvaluator:
    """The TOFU evaluator's likelihoods and generations on the two sets; the scenario's own scoring."""

    def __init__(self, formatter: ChatFormatter, sets: dict[str, EvalSet], cfg: RunConfig, device: str):
        self.inner = TofuEvaluator(formatter, sets, TofuTask().settings(cfg), None, device, task="real_world")
        self.own = {name: [r.extra[OWN] for r in s.records] for name, s in sets.items()}
        self.bootstrap, self.seed = cfg.eval.bootstrap, cfg.train.seed

    def check_context(self, limit: int | None) -> None:
        self.inner.check_context(limit)

    def evaluate(self, model: torch.nn.Module, device: torch.device | None = None, desc: str = "eval",
                 n_resamples: int | None = None, generate: bool | None = None,
                 sets: Sequence[str] | None = None) -> EvalResult:
        samples = self.inner.rows(model, device, desc, generate, list(sets) if sets is not None else None)
        for name, rows in samples.items():
            for row, own in zip(rows, self.own[name], strict=True):
                row[OWN] = own
        resamples = self.bootstrap if n_resamples is None else n_resamples
        return score_real_world(samples, self.inner.scorer, resamples, self.seed)

    def epoch_record(self, model: torch.nn.Module, device: torch.device, epoch: int, generate: bool,
                     sets: Sequence[str] | None) -> dict[str, Any]:
        return self.evaluate(model, device, desc=f"eval epoch {epoch}", n_resamples=0, generate=generate,
                             sets=sets).metrics


class RealWorldTask(Task):
    generates_to_max_length = True
    name = "real_world"
    version = 1
    summary = ("real-world individuals (closer-look §5.3): forget people the model knows, regularize on neighbors, "
               "utility on a third set of people; metrics against golden answers, CS against the model's own answers")
    sets = (
        SetSpec("forget", "questions about the people to forget (`forget_perturbed`)", FORGET, "eval.forget_rows"),
        SetSpec("neighbor", "questions about other people, neither forgotten nor regularized on "
                            "(`neighbor_perturbed`)", RETAIN, "eval.retain_rows"),
    )
    requests = ("sequence_likelihood", "generation")
    sample_inputs = TOFU_SAMPLE_INPUTS
    metrics = (
        MetricSpec("rouge", "ROUGE-L recall of the generation against the golden answer", "set", True, PER_SET_MEAN,
                   "lower = forgotten", ("generation",)),
        MetricSpec("prob", "Probability p̄(golden answer)", "set", True, PER_SET_MEAN, "lower = forgotten"),
        MetricSpec("truth_ratio", "Truth Ratio statistic (paraphrased vs perturbed golden answers)", "set", True,
                   PER_SET_MEAN, "mean min(Q, 1/Q), higher = forgotten", forgotten_when_higher=True),
        MetricSpec("token_entropy", "Token Entropy (not on the forget set)", "set", True, PER_SET_MEAN, "",
                   ("generation",)),
        MetricSpec("cosine_similarity", "Cosine Similarity to the model's own answer before unlearning", "set", True,
                   PER_SET_MEAN, "lower = forgotten", ("generation", "embedding_model")),
        MetricSpec("entailment", "Entailment Score: the generation entails the golden answer", "set", True,
                   PER_SET_MEAN, "lower = forgotten", ("generation", "nli_model")),
        MetricSpec("model_utility", "Model Utility (closer-look real-world)", "run", True,
                   "harmonic mean of ROUGE, Prob, TR, TE, CS, ES on the neighbor set", "",
                   ("embedding_model", "nli_model")),
        MetricSpec("forget_efficacy", "Forget Efficacy (closer-look)", "run", True,
                   "1 − mean(forget ROUGE, Prob, 1 − TR, CS, ES)", "", ("embedding_model", "nli_model")),
        MetricSpec("model_utility_without_es", "Model Utility without ES (no NLI model)", "run", True,
                   "harmonic mean of ROUGE, Prob, TR, TE, CS on the neighbor set; given only when ES is unavailable",
                   "", ("embedding_model",)),
        MetricSpec("forget_efficacy_without_es", "Forget Efficacy without ES (no NLI model)", "run", True,
                   "1 − mean(forget ROUGE, Prob, 1 − TR, CS); given only when ES is unavailable", "",
                   ("embedding_model",)),
    )
    dependencies = (
        Dependency("embedding_model", "eval.embedding_model", ("cosine_similarity",), "a sentence embedder"),
        Dependency("nli_model", "eval.nli_model", ("entailment",), "an NLI classifier"),
    )
    defaults: ClassVar[dict[str, Any]] = {"data.forget_split": "forget", "data.retain_split": "neighbor",
                                          "data.max_length": 500}

    def check(self, cfg: RunConfig) -> None:
        self.chosen_sets(cfg.eval)
        if cfg.eval.retain_reference:
            raise ConfigError(f"eval.retain_reference={cfg.eval.retain_reference!r}: the real_world task has no "
                              f"Forget Quality ({NO_FORGET_QUALITY})")
        check_layout(cfg.data.root)

    def eval_sets(self, cfg: RunConfig) -> dict[str, EvalSet]:
        limits = {"forget": cfg.eval.forget_rows, "neighbor": cfg.eval.retain_rows}
        return {name: EvalSet(name, SET_TYPES[name], tuple(read_eval_records(cfg.data.root, name, limits[name])))
                for name in self.chosen_sets(cfg.eval)}

    def evaluator(self, cfg: RunConfig, formatter: ChatFormatter, device: str) -> RealWorldEvaluator:
        return RealWorldEvaluator(formatter, self.eval_sets(cfg), cfg, device)

    def write(self, run_dir: RunDirectory, result: EvalResult) -> None:
        for name, rows in result.samples.items():
            run_dir.write_eval_rows(name, rows)

    def format_results(self, metrics: dict[str, Any]) -> str:
        def cell(values: Mapping[str, Any], key: str) -> str:
            return fmt(values.get(key), 4)

        metric_keys = ("rouge", "prob", "truth_ratio", "token_entropy", "cosine_similarity", "entailment")
        lines = ["| set | ROUGE | Prob | Truth Ratio | TE | CS | ES | n |", "|---|---|---|---|---|---|---|---|"]
        for name, s in (metrics.get("sets") or {}).items():
            lines.append(f"| {name} | " + " | ".join(cell(s, k) for k in metric_keys) + f" | {s.get('n')} |")
        lines.append("")
        for key, label in (("model_utility", "Model Utility (neighbor set, 6 numbers)"),
                           ("forget_efficacy", "Forget Efficacy")):
            if metrics.get(key) is not None:
                lines.append(f"{label}: {metrics[key]:.4f}")
            elif metrics.get(f"{key}_without_es") is not None:
                lines.append(f"{label}: n/a (no NLI model); without ES: {metrics[f'{key}_without_es']:.4f}")
            else:
                lines.append(f"{label}: n/a")
        lines.append(f"Forget Quality: n/a — {NO_FORGET_QUALITY}")
        return "\n".join(lines)

    def rescore(self, source: RunDirectory, cfg: RunConfig, old: RunResults | None) -> Rescored:
        """Every text metric and aggregate from ``eval/forget.jsonl`` and ``eval/neighbor.jsonl``."""
        samples = {name: rows for name in EVAL_FILES if (rows := source.read_eval_rows(name)) is not None}
        if not samples:
            raise ConfigError(f"{source.path}: no saved real_world evaluation rows (eval/forget.jsonl, "
                              "eval/neighbor.jsonl)")
        result = score_real_world(samples, rescoring_scorer(source, cfg, samples), cfg.eval.bootstrap, cfg.train.seed)
        return Rescored(result, rescored_record(self.name, source, result, old))


REAL_WORLD = register(RealWorldTask())
