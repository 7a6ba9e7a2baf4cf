"""The TOFU task (Maini et al., 2024) with the closer-look metrics: the first registered evaluation task.

Sets, metrics and formulas: docs/formulas.md#tofu-metrics. The model-dependent work (likelihoods, generation) is
:class:`unlearn.tasks.tofu.evaluate.TofuEvaluator`; the numbers come from :mod:`unlearn.tasks.tofu.metrics`
and :mod:`unlearn.tasks.tofu.closer_look`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from unlearn.config.schema import EvalConfig, RunConfig
from unlearn.data.formatting import ChatFormatter
from unlearn.errors import ConfigError, DataError
from unlearn.evaluation.generation import GenerationSettings
from unlearn.models.loading import load_tokenizer, resolve_model
from unlearn.rendering.tables import fmt
from unlearn.runs import RunDirectory, RunResults
from unlearn.tasks import register
from unlearn.tasks.base import Dependency, EvalResult, MetricSpec, Rescored, SetSpec, Task
from unlearn.tasks.tofu.data import EVAL_FIELDS, OPTION_EVAL_FIELDS, TofuData
from unlearn.tasks.tofu.evaluate import (
    EvalSet,
    EvalSettings,
    RetainReference,
    TextScorer,
    TofuEvaluator,
    read_rows,
    score_rows,
)
from unlearn.tasks.tofu.log import log_from_samples
from unlearn.tasks.tofu.metrics import TOFU_SAMPLE_INPUTS
from unlearn.tasks.tofu.sets import FORGET, OPTION_NORMALISED, RETAIN, TOFU_SETS

PER_SET_MEAN = "mean over the set's samples, with a 95 % bootstrap interval"


@dataclass
class TofuMetrics:
    """The TOFU aggregates of ``metrics.json`` (or of an ``epochs.jsonl`` row), typed."""

    sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_utility_9: float | None = None
    forget_quality: float | None = None
    forget_quality_reference: str | None = None
    closer_look: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TofuMetrics:
        return cls(sets=dict(raw.get("sets") or {}), model_utility_9=raw.get("model_utility_9"),
                   forget_quality=raw.get("forget_quality"),
                   forget_quality_reference=raw.get("forget_quality_reference"),
                   closer_look=dict(raw.get("closer_look") or {}))

    def headline(self) -> dict[str, Any]:
        """The demo table's numbers: FQ, MU-9 and the forget set's ROUGE, Probability and Truth Ratio."""
        forget = self.sets.get("forget", {})
        return {"forget_quality": self.forget_quality, "model_utility_9": self.model_utility_9,
                **{f"forget_{m}": forget.get(m) for m in ("rouge", "prob", "truth_ratio")}}

    @property
    def unavailable(self) -> dict[str, str]:
        return dict(self.closer_look.get("unavailable") or {})


class TofuTask(Task):
    generates_to_max_length = True
    name = "tofu"
    version = 2  # 2: Exact Memorization, Extraction Strength, the knowledge truth ratio and paraphrase prob added
    report_module = "unlearn.tasks.tofu.report"
    summary = ("TOFU question answering (fictitious authors; TOFU layout), with the closer-look metrics; also the "
               "embedded fictitious-authors benchmark of `unlearn demo`")
    sets = (
        SetSpec("forget", "the forget split's questions (`<forget split>_perturbed`)", FORGET, "eval.forget_rows"),
        SetSpec("retain", "retain questions (`retain_perturbed`)", RETAIN, "eval.retain_rows"),
        SetSpec("real_authors", "questions about real authors (`real_authors_perturbed`)", OPTION_NORMALISED,
                "eval.option_rows"),
        SetSpec("world_facts", "world facts (`world_facts_perturbed`)", OPTION_NORMALISED, "eval.option_rows"),
    )
    requests = ("sequence_likelihood", "generation")
    sample_inputs = TOFU_SAMPLE_INPUTS
    metrics = (
        MetricSpec("rouge", "ROUGE-L recall of the generation", "set", True, PER_SET_MEAN, "lower = forgotten",
                   ("generation",)),
        MetricSpec("prob", "Probability p̄(answer) (option-normalised on real_authors / world_facts)", "set", True,
                   PER_SET_MEAN, "lower = forgotten"),
        MetricSpec("truth_ratio", "Truth Ratio statistic", "set", True, PER_SET_MEAN,
                   "mean min(Q, 1/Q), higher = forgotten", forgotten_when_higher=True),
        MetricSpec("token_entropy", "Token Entropy (not on the forget set)", "set", True, PER_SET_MEAN, "",
                   ("generation",)),
        MetricSpec("cosine_similarity", "Cosine Similarity to the answer", "set", True, PER_SET_MEAN,
                   "lower = forgotten", ("generation", "embedding_model")),
        MetricSpec("entailment", "Entailment Score", "set", True, PER_SET_MEAN, "lower = forgotten",
                   ("generation", "nli_model")),
        MetricSpec("forget_quality", "Forget Quality", "run", True,
                   "KS two-sample p-value: forget-set truth ratios vs the retain model's", "",
                   ("retain_reference",)),
        MetricSpec("model_utility_9", "Model Utility (TOFU)", "run", True,
                   "harmonic mean of ROUGE, Prob, TR on retain, real_authors, world_facts"),
        MetricSpec("forget_efficacy", "Forget Efficacy (closer-look)", "run", True,
                   "1 − mean(forget ROUGE, Prob, 1 − TR, CS, ES)", "", ("embedding_model", "nli_model")),
        MetricSpec("model_utility_18", "Model Utility (closer-look)", "run", True,
                   "harmonic mean of ROUGE, Prob, TR, TE, CS, ES on retain, real_authors, world_facts", "",
                   ("embedding_model", "nli_model")),
        MetricSpec("forget_efficacy_without_es", "Forget Efficacy without ES (closer-look, no NLI model)", "run",
                   True, "1 − mean(forget ROUGE, Prob, 1 − TR, CS); given only when ES is unavailable", "",
                   ("embedding_model",)),
        MetricSpec("model_utility_without_es", "Model Utility without ES (closer-look, no NLI model)", "run", True,
                   "harmonic mean of ROUGE, Prob, TR, TE, CS on retain, real_authors, world_facts; given only when "
                   "ES is unavailable", "", ("embedding_model",)),
    )
    dependencies = (
        Dependency("retain_reference", "eval.retain_reference", ("forget_quality",),
                   "the retain (Retrain) model's run directory or TOFU eval log"),
        Dependency("embedding_model", "eval.embedding_model", ("cosine_similarity",), "a sentence embedder"),
        Dependency("nli_model", "eval.nli_model", ("entailment",), "an NLI classifier"),
    )

    defaults: ClassVar[dict[str, Any]] = {"data.forget_split": "forget10", "data.max_length": 500,
                                          "data.train_splits": ["full"]}
    SOURCES: ClassVar[dict[str, tuple[str, tuple[str, ...], str]]] = {
        "forget": ("{forget_split}_perturbed", EVAL_FIELDS, "forget_rows"),
        "retain": ("retain_perturbed", EVAL_FIELDS, "retain_rows"),
        "real_authors": ("real_authors_perturbed", OPTION_EVAL_FIELDS, "option_rows"),
        "world_facts": ("world_facts_perturbed", OPTION_EVAL_FIELDS, "option_rows"),
    }

    # -- sets -------------------------------------------------------------------------------------------
    def check(self, cfg: RunConfig) -> None:
        self.chosen_sets(cfg.eval)
        reference = cfg.eval.retain_reference
        if reference and not Path(reference).exists():
            raise ConfigError(f"eval.retain_reference {reference!r} does not exist (give the retain model's run "
                              "directory or a TOFU eval_log_aggregated.json)")

    def eval_sets(self, data: TofuData, forget_split: str, e: EvalConfig | None = None,
                  include: Sequence[str] | None = None) -> dict[str, EvalSet]:
        """The first ``eval.forget_rows`` / ``retain_rows`` rows; real_authors and world_facts whole unless
        ``eval.option_rows`` limits them (a departure from TOFU, for CPU-sized runs)."""
        e = e or EvalConfig()
        include = self.set_names if include is None else include
        out = {}
        for name in include:
            template, fields, rows_key = self.SOURCES[name]
            split = template.format(forget_split=forget_split)
            records = data.split(split, fields)
            limit = getattr(e, rows_key)
            if limit is not None:
                records = records[:limit]
            if not records:
                raise DataError(f"eval split {split!r} in {data.root} is empty")
            out[name] = EvalSet(name=name, set_type=TOFU_SETS[name], records=tuple(records))
        return out

    # -- evaluation -------------------------------------------------------------------------------------
    def settings(self, cfg: RunConfig) -> EvalSettings:
        e = cfg.eval
        return EvalSettings(
            batch_size=e.batch_size, generate=e.generate, max_length=cfg.data.max_length, progress=cfg.progress,
            generation=GenerationSettings(max_length=e.max_length, do_sample=e.do_sample, temperature=e.temperature,
                                          top_p=e.top_p, seed=cfg.train.seed),
            embedding_model=e.embedding_model, nli_model=e.nli_model, bootstrap=e.bootstrap, seed=cfg.train.seed,
        )

    def evaluator(self, cfg: RunConfig, formatter: ChatFormatter, device: str) -> TofuEvaluator:
        data = TofuData(cfg.data.root)
        sets = self.eval_sets(data, cfg.data.forget_split, cfg.eval, self.chosen_sets(cfg.eval))
        reference = RetainReference.load(cfg.eval.retain_reference) if cfg.eval.retain_reference else None
        return TofuEvaluator(formatter, sets, self.settings(cfg), reference, device)

    def write(self, run_dir: RunDirectory, result: EvalResult) -> None:
        for name, rows in result.samples.items():
            run_dir.write_eval_rows(name, rows)
        run_dir.write_tofu_log(log_from_samples(result.samples))

    def format_results(self, metrics: dict[str, Any]) -> str:
        m = TofuMetrics.from_dict(metrics)
        lines = ["| set | ROUGE | Prob | Truth Ratio | n |", "|---|---|---|---|---|"]
        for name, s in m.sets.items():
            rouge = fmt(s.get("rouge"), 4)
            lines.append(f"| {name} | {rouge} | {s['prob']:.4f} | {s['truth_ratio']:.4f} | {s['n']} |")
        lines.append("")
        lines.append(f"Model Utility (9): {m.model_utility_9:.4f}" if m.model_utility_9 is not None else
                     "Model Utility (9): n/a (needs retain, real_authors and world_facts with ROUGE)")
        lines.append(f"Forget Quality: {m.forget_quality:.4g}" if m.forget_quality is not None else
                     "Forget Quality: n/a (needs --retain-log)")
        return "\n".join(lines)

    def rescore(self, source: RunDirectory, cfg: RunConfig, old: RunResults | None) -> Rescored:
        """ROUGE, TE, CS, ES and every aggregate from ``eval/*.jsonl``. Token Entropy uses the token ids saved
        with each generation; without them the tokenizer of ``model.path`` (or of the run's own config) is
        loaded — never the model weights."""
        samples = read_rows(source.path)
        old_metrics = TofuMetrics.from_dict(old.metrics) if old is not None else TofuMetrics()
        reference_path = cfg.eval.retain_reference or old_metrics.forget_quality_reference
        reference = RetainReference.load(reference_path) if reference_path else None
        result = score_rows(samples, rescoring_scorer(source, cfg, samples), reference, cfg.eval.bootstrap,
                            cfg.train.seed)
        return Rescored(result, rescored_record(self.name, source, result, old))


def rescoring_scorer(source: RunDirectory, cfg: RunConfig, samples: dict[str, list[dict[str, Any]]]) -> TextScorer:
    """The text scorer for rows saved by ``source``: Token Entropy from the token ids saved with each generation, or
    without them from the tokenizer of ``model.path`` (or of the run's own config) — never the model weights."""
    if any(r.get("generation") is None for rows in samples.values() for r in rows):
        raise ConfigError(f"{source.path}: the saved rows have no generations (evaluated with eval.generate=false)")
    tokenizer = None
    if any("generation_tokens" not in r for rows in samples.values() for r in rows):
        model_path = cfg.model.path or source.config_value("model.path")
        if not model_path:
            raise ConfigError(f"{source.path}: rows lack token ids; give model.path so its tokenizer can count "
                              "tokens")
        tokenizer = load_tokenizer(resolve_model(model_path, cfg.model.gguf_file), cfg.model.tokenizer,
                                   cfg.model.trust_remote_code)
    return TextScorer(tokenizer, cfg.eval.embedding_model, cfg.eval.nli_model)


def rescored_record(task: str, source: RunDirectory, result: EvalResult, old: RunResults | None) -> RunResults:
    """The ``metrics.json`` record of a rescoring: the new aggregates, and whatever else the old record held."""
    kept = {k: v for k, v in (old.metrics if old is not None else {}).items() if k not in result.metrics}
    return RunResults(task=task, metrics={**result.metrics, **kept}, run=old.run if old is not None else None,
                      seconds=old.seconds if old else None, notes={"rescored_from_generations": str(source.path)})


TOFU = register(TofuTask())
