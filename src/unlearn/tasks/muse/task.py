"""The MUSE tasks (Shi et al., 2024): VerbMem, KnowMem on forget and retain QA, PrivLeak, and the
membership-inference suite on forget vs holdout texts (docs/formulas.md#muse-metrics, #mia).

``muse_news`` and ``muse_books`` are MUSE-News and MUSE-Books (a local copy or ``muse-bench/MUSE-*``; PrivLeak falls
back to MUSE's published AUC of the retrained model); ``muse`` is any directory in the MUSE layout, such as the
embedded fictitious news of ``unlearn demo benchmark=muse`` (PrivLeak then needs a retrained model's evaluation,
``eval.retain_reference``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from unlearn.config.schema import RunConfig
from unlearn.data.formatting import IGNORE_INDEX, ChatFormatter, EncodedSample
from unlearn.data.records import QARecord
from unlearn.data.text import encode_text, start_tokens
from unlearn.errors import ConfigError, DataError
from unlearn.evaluation import mia
from unlearn.evaluation.generation import GenerationSettings, generate_answers
from unlearn.evaluation.likelihood import batched_greedy_hits
from unlearn.evaluation.mia_eval import MiaSet, MiaSuite, score_rows
from unlearn.models.loading import context_length
from unlearn.rendering.tables import fmt
from unlearn.runs import RunDirectory
from unlearn.tasks import register, sample_metrics
from unlearn.tasks.base import Dependency, EvalResult, MetricSpec, SetSpec, Task
from unlearn.tasks.muse.data import MuseData
from unlearn.tasks.tofu.metrics import bootstrap_ci

VERBMEM_NEW_TOKENS = 128
KNOWMEM_NEW_TOKENS = 32
KNOWMEM_STOPS = ("\n\n", "\nQuestion", "Question:")
PRIVLEAK_K = 0.4
QA_SETS = {"knowmem_forget": ("knowmem/forget_qa", "knowmem/forget_qa_icl"),
           "knowmem_retain": ("knowmem/retain_qa", "knowmem/retain_qa_icl")}
PRIVLEAK_SPLITS = {"forget": "privleak/forget", "holdout": "privleak/holdout", "retain": "privleak/retain"}


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l_f1(references: Sequence[str], generations: Sequence[str]) -> np.ndarray:
    """ROUGE-L F1 of each generation against its reference (``rouge_score``, no stemmer, as MUSE)."""
    scorer = _rouge()
    return np.array([scorer.score(ref, gen)["rougeL"].fmeasure for ref, gen in zip(references, generations,
                                                                                 strict=True)])


def cut_at_stops(text: str, stops: Sequence[str] = KNOWMEM_STOPS) -> str:
    """The text before the first occurrence of each stop string, applied in order (MUSE's KnowMem cut)."""
    for stop in stops:
        text = text.split(stop)[0]
    return text


def knowmem_prompt(icl: Sequence[QARecord], question: str) -> str:
    """MUSE's few-shot prompt: ``Question: q\\nAnswer: a\\n\\n`` per example, then ``Question: q\\nAnswer: ``."""
    shots = "".join(f"Question: {r.question}\nAnswer: {r.answer}\n\n" for r in icl)
    return f"{shots}Question: {question}\nAnswer: "


def privleak(auc: float, auc_retrain: float) -> float:
    """100 · (AUC − AUC_retrain) / AUC_retrain."""
    return 100.0 * (auc - auc_retrain) / auc_retrain


@dataclass
class _Generation:
    ids: list[str]
    prompts: list[tuple[int, ...]]
    references: list[str]
    rows: list[dict[str, Any]]
    scored: list[EncodedSample]  # prompt + the reference's tokens the generation could reach, for EM and ES


def _teacher_forced(prompts: Sequence[tuple[int, ...]], answers: Sequence[Sequence[int]]) -> list[EncodedSample]:
    """Each prompt followed by its reference tokens, the reference labelled (Exact Memorization, Extraction
    Strength)."""
    return [EncodedSample(tuple(p) + tuple(a), (IGNORE_INDEX,) * len(p) + tuple(a), len(p))
            for p, a in zip(prompts, answers, strict=True)]


class MuseEvaluator:
    def __init__(self, task: MuseTask, cfg: RunConfig, formatter: ChatFormatter, device: str):
        self.task = task
        self.cfg = cfg
        self.tokenizer = formatter.tokenizer
        self.pad_id = formatter.pad_id
        self.eos_id = formatter.eos_id
        self.batch_size = cfg.eval.batch_size
        self.progress = cfg.progress
        self.bootstrap, self.seed = cfg.eval.bootstrap, cfg.train.seed
        data = MuseData(Path(cfg.data.root).expanduser() if Path(cfg.data.root).expanduser().exists()
                        else cfg.data.root)
        chosen = task.chosen_sets(cfg.eval)
        self.generation: dict[str, _Generation] = {}
        if "verbmem_forget" in chosen:
            self.generation["verbmem_forget"] = self._verbmem(data, cfg)
        for name in ("knowmem_forget", "knowmem_retain"):
            if name in chosen:
                self.generation[name] = self._knowmem(data, cfg, name)
        self.mia_sets: dict[str, MiaSet] = {}
        self.suite: MiaSuite | None = None
        if "privleak" in chosen:
            self._privleak(data, cfg)
        self.auc_retrain, self.auc_retrain_source = task.auc_retrain_for(cfg)

    # -- encoding -----------------------------------------------------------------------------------------------
    def _limit(self, name: str, items: list) -> list:
        limit = self.cfg.eval.max_rows.get(name)
        return items[:limit] if limit else items

    def _verbmem(self, data: MuseData, cfg: RunConfig) -> _Generation:
        items = self._limit("verbmem_forget", data.verbmem("verbmem/forget", "eval (verbmem_forget)"))
        tok = self.tokenizer
        head = start_tokens(tok)
        references, continuations = [], []
        for item in items:  # MUSE: the first 128 tokens of the continuation, its start token counted
            gt_ids = (head + tuple(tok(item.gt, add_special_tokens=False)["input_ids"]))[:VERBMEM_NEW_TOKENS]
            references.append(tok.decode(list(gt_ids), skip_special_tokens=True))
            continuations.append(gt_ids[len(head):])  # the same text, teacher-forced after the opening
        prompts = [encode_text(tok, i.prompt) for i in items]
        return _Generation([i.source for i in items], prompts, references,
                           [{"prompt": i.prompt, "gt": r} for i, r in zip(items, references, strict=True)],
                           _teacher_forced(prompts, continuations))

    def _knowmem(self, data: MuseData, cfg: RunConfig, name: str) -> _Generation:
        qa_name, icl_name = QA_SETS[name]
        qa = self._limit(name, data.qa(qa_name, f"eval ({name})"))
        icl = data.qa(icl_name, f"eval ({name} few-shot examples)")
        if not icl:
            raise DataError(f"{icl_name}: KnowMem needs few-shot examples")
        prompts = [encode_text(self.tokenizer, knowmem_prompt(icl, r.question)) for r in qa]
        answers = [self.tokenizer(r.answer, add_special_tokens=False)["input_ids"][:KNOWMEM_NEW_TOKENS] for r in qa]
        empty = next((r.source for r, a in zip(qa, answers, strict=True) if not a), None)
        if empty is not None:
            raise DataError(f"{empty}: the answer has no tokens")
        return _Generation([r.source for r in qa], prompts, [r.answer for r in qa],
                           [{"question": r.question, "answer": r.answer} for r in qa],
                           _teacher_forced(prompts, answers))

    def _privleak(self, data: MuseData, cfg: RunConfig) -> None:
        for split, name in PRIVLEAK_SPLITS.items():
            if split == "retain" and not data.has(name):
                continue
            texts = self._limit(f"privleak_{split}", data.texts(name, f"eval (privleak {split})"))
            samples = [EncodedSample.sequence(encode_text(self.tokenizer, t)) for t in texts]
            too_short = [i for i, s in enumerate(samples) if len(s.input_ids) < 2]
            if too_short:
                raise DataError(f"{name}: text {too_short[0]} is too short to score")
            self.mia_sets[split] = MiaSet(samples, texts, [f"{name}:{i}" for i in range(len(texts))])
        for split in ("forget", "holdout"):
            if len(self.mia_sets[split].samples) < 2:
                raise DataError(f"PrivLeak needs at least 2 {split} texts, {PRIVLEAK_SPLITS[split]} has "
                                f"{len(self.mia_sets[split].samples)}")
        attacks = mia.chosen_attacks(cfg.eval.mia_attacks, cfg.eval.mia_reference is not None)
        reference = _load_reference(cfg, self.tokenizer) if "reference" in attacks else None
        self.suite = MiaSuite(attacks, cfg.eval.mia_k, self.pad_id, self.batch_size, reference)

    def check_context(self, limit: int | None) -> None:
        """Every prompt plus its new tokens, and every scored text, fits the model's context of ``limit`` positions
        (checked before the weights load; a position past the context would give silently wrong numbers)."""
        if not limit:
            return
        for name, g in self.generation.items():
            new = VERBMEM_NEW_TOKENS if name == "verbmem_forget" else KNOWMEM_NEW_TOKENS
            longest = max(range(len(g.prompts)), key=lambda i: len(g.prompts[i]))
            if len(g.prompts[longest]) + new > limit:
                raise DataError(f"{g.ids[longest]}: the {name} prompt has {len(g.prompts[longest])} tokens; with "
                                f"{new} new tokens it exceeds the model's context of {limit} (limit the rows with "
                                f"eval.max_rows.{name}, or use a model with a longer context)")
        for s in self.mia_sets.values():
            longest = max(range(len(s.samples)), key=lambda i: len(s.samples[i].input_ids))
            if len(s.samples[longest].input_ids) > limit:
                raise DataError(f"{s.ids[longest]}: {len(s.samples[longest].input_ids)} tokens exceed the model's "
                                f"context of {limit}; MUSE scores texts whole")

    # -- evaluation ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _generate(self, model: torch.nn.Module, name: str, device: torch.device, bar) -> dict[str, Any]:
        g = self.generation[name]
        new = VERBMEM_NEW_TOKENS if name == "verbmem_forget" else KNOWMEM_NEW_TOKENS
        settings = GenerationSettings(max_new_tokens=new, strip=False)
        outputs = generate_answers(model, self.tokenizer, g.prompts, self.eos_id, self.pad_id, self.batch_size,
                                   device, settings, bar.update)
        if name != "verbmem_forget":
            outputs = [cut_at_stops(o) for o in outputs]
        f1 = rouge_l_f1(g.references, outputs)
        hits = None
        if sample_metrics.needs(self.task.name, self.task.sample_inputs, "greedy_hits"):
            hits = batched_greedy_hits(model, g.scored, self.pad_id, self.batch_size, device)
        extra = sample_metrics.compute(self.task.name, self.task.sample_inputs, {"greedy_hits": hits}, len(outputs))
        rows = [{"index": i, "id": g.ids[i], **g.rows[i], "generation": outputs[i], "rougeL_f1": float(f1[i]),
                 **{key: float(v[i]) for key, v in extra.items()}}
                for i in range(len(outputs))]
        return {"rows": rows, "values": {"rougeL_f1": f1, **extra}}

    def evaluate(self, model: torch.nn.Module, device: torch.device | None = None, desc: str = "eval",
                 n_resamples: int | None = None, generate: bool | None = None,
                 sets: Sequence[str] | None = None) -> EvalResult:
        device = device or next(model.parameters()).device
        resamples = self.bootstrap if n_resamples is None else n_resamples
        wanted = set(sets) if sets is not None else None
        self.check_context(context_length(model.config) if hasattr(model, "config") else None)
        was_training = model.training
        model.eval()
        n_gen = sum(len(g.prompts) for n, g in self.generation.items() if wanted is None or n in wanted)
        n_mia = sum(len(s.samples) for s in self.mia_sets.values()) if wanted is None or "privleak" in wanted else 0
        bar = tqdm(total=n_gen + n_mia, desc=desc, disable=None if self.progress else True, leave=False,
                   dynamic_ncols=True)
        samples: dict[str, list[dict[str, Any]]] = {}
        metrics: dict[str, Any] = {"sets": {}}
        try:
            for name in self.generation:
                if wanted is not None and name not in wanted:
                    continue
                result = self._generate(model, name, device, bar)
                samples[name] = result["rows"]
                metrics["sets"][name] = _summary(result["values"], resamples, self.seed)
                metrics[self.task.HEADLINE[name]] = 100.0 * float(np.mean(result["values"]["rougeL_f1"]))
            if self.suite is not None and (wanted is None or "privleak" in wanted):
                samples["privleak"], privleak_metrics = self._membership(model, device, bar)
                metrics.update(privleak_metrics)
        finally:
            bar.close()
            model.train(was_training)
        return EvalResult(samples, metrics)

    def _membership(self, model: torch.nn.Module, device: torch.device, bar) -> tuple[list[dict], dict[str, Any]]:
        suite = self.suite
        stats = suite.statistics(model, self.mia_sets, device, bar.update)
        scores = suite.scores(model, self.mia_sets, stats, device)
        min40 = {name: np.array([mia.min_k_score(s, PRIVLEAK_K) for s in st]) for name, st in stats.items()}
        auc = mia.auc(min40["holdout"], min40["forget"])  # MUSE: holdout is the positive class
        out: dict[str, Any] = {"privleak_auc": auc, "privleak_auc_retrain": self.auc_retrain,
                               "privleak_auc_retrain_source": self.auc_retrain_source,
                               "privleak": None if self.auc_retrain is None else privleak(auc, self.auc_retrain),
                               "mia": {"k": suite.k, "attacks": suite.aucs(scores, "forget", "holdout")}}
        rows = score_rows(self.mia_sets, stats, scores, {name: {"min_40": v} for name, v in min40.items()})
        flat = [{**row, "split": name} for name, split_rows in rows.items() for row in split_rows]
        return flat, out

    def epoch_record(self, model: torch.nn.Module, device: torch.device, epoch: int, generate: bool,
                     sets: Sequence[str] | None) -> dict[str, Any]:
        chosen = sets if generate else [s for s in (sets or self.task.set_names) if s == "privleak"]
        return self.evaluate(model, device, desc=f"eval epoch {epoch}", n_resamples=0, sets=chosen).metrics


def _summary(values: dict[str, np.ndarray], n_resamples: int, seed: int) -> dict[str, Any]:
    """Each per-sample metric's mean, the count, and with ``n_resamples`` their 95 % bootstrap intervals."""
    out: dict[str, Any] = {name: float(np.mean(v)) for name, v in values.items()}
    out["n"] = len(values["rougeL_f1"])
    if n_resamples > 0:
        out["ci95"] = {name: list(bootstrap_ci(v, seed, n_resamples)) for name, v in values.items()}
    return out


def _load_reference(cfg: RunConfig, tokenizer) -> torch.nn.Module:
    from unlearn.models.loading import check_model_tokenizer, load_model_and_tokenizer

    model, _ = load_model_and_tokenizer(cfg.eval.mia_reference, trust_remote_code=cfg.model.trust_remote_code)
    check_model_tokenizer(model, tokenizer, f"eval.mia_reference {cfg.eval.mia_reference}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device).eval()


class MuseTask(Task):
    version = 2  # 2: Exact Memorization and Extraction Strength per generation set
    data_kind = "muse"
    report_module = "unlearn.tasks.muse.report"
    defaults: ClassVar[dict[str, Any]] = {"data.forget_split": "raw/forget", "data.max_length": 2048}
    HEADLINE: ClassVar[dict[str, str]] = {"verbmem_forget": "verbmem_f", "knowmem_forget": "knowmem_f",
                                          "knowmem_retain": "knowmem_r"}
    sets = (
        SetSpec("verbmem_forget", "forget-text openings with their true continuations (`verbmem/forget`)",
                "ROUGE-L F1 of 128 greedy tokens vs the continuation's first 128", "eval.max_rows.verbmem_forget"),
        SetSpec("knowmem_forget", "QA about the forget texts, few-shot (`knowmem/forget_qa` + `_icl`)",
                "ROUGE-L F1 of the answer (32 greedy tokens, cut at a new question)", "eval.max_rows.knowmem_forget"),
        SetSpec("knowmem_retain", "QA about the retain texts, few-shot (`knowmem/retain_qa` + `_icl`)",
                "ROUGE-L F1 of the answer", "eval.max_rows.knowmem_retain"),
        SetSpec("privleak", "forget vs holdout texts (`privleak/forget`, `privleak/holdout`; `privleak/retain` "
                            "when present)", "Min-K% (k 40 %) AUC, and the attack suite",
                "eval.max_rows.privleak_forget / privleak_holdout"),
    )
    requests = ("generation", "token_logprobs")
    sample_inputs = ("greedy_hits",)
    metrics = (
        MetricSpec("verbmem_f", "VerbMem on the forget set (×100)", "run", False, "mean ROUGE-L F1 × 100"),
        MetricSpec("knowmem_f", "KnowMem on the forget QA (×100)", "run", False, "mean ROUGE-L F1 × 100"),
        MetricSpec("knowmem_r", "KnowMem on the retain QA (×100)", "run", True, "mean ROUGE-L F1 × 100"),
        MetricSpec("privleak", "PrivLeak (closer to 0 is better)", "run", False,
                   "100·(AUC − AUC_retrain)/AUC_retrain, Min-40% AUC with holdout positive", "",
                   ("retain_reference",), goal=0.0),
        MetricSpec("mia.<attack>.auc", "membership-inference AUC, forget (members) vs holdout", "run", False,
                   "Mann–Whitney AUC; the retrained model's value is the goal", "", ("token_logprobs",)),
    )
    dependencies = (
        Dependency("retain_reference", "eval.retain_reference", ("privleak",),
                   "a retrained model's evaluation on this task (else MUSE's published AUC where one exists)"),
        Dependency("mia_reference", "eval.mia_reference", ("mia.reference",), "a reference model"),
    )
    published_auc: float | None = None
    corpus: str = ""

    def __init__(self, name: str, summary: str, published_auc: float | None = None, corpus: str = ""):
        self.name, self.summary = name, summary
        self.published_auc, self.corpus = published_auc, corpus

    def complete_defaults(self, cfg: RunConfig) -> None:
        if cfg.data.train_splits is None:
            cfg.data.train_splits = [s for s in (cfg.data.forget_split, cfg.data.retain_split) if s]

    def check(self, cfg: RunConfig) -> None:
        chosen = self.chosen_sets(cfg.eval)
        if cfg.data.max_length is not None and cfg.data.max_length < 16:
            raise ConfigError(f"data.max_length must be at least 16 for text chunks, got {cfg.data.max_length}")
        reference = cfg.eval.retain_reference
        if reference and not RunDirectory(reference).metrics_file.is_file():
            raise ConfigError(f"eval.retain_reference {reference!r} is not a finished run directory (the retrained "
                              "model's evaluation on this task)")
        root = Path(cfg.data.root).expanduser()
        if root.is_dir():  # every evaluation file read and checked before any model loads
            data = MuseData(root)
            if "verbmem_forget" in chosen:
                data.verbmem("verbmem/forget", "eval (verbmem_forget)")
            for name in ("knowmem_forget", "knowmem_retain"):
                if name in chosen:
                    for part in QA_SETS[name]:
                        data.qa(part, f"eval ({name})")
        if "privleak" in chosen and root.is_dir():
            for split in ("forget", "holdout"):
                if not data.has(PRIVLEAK_SPLITS[split]):
                    raise ConfigError(f"PrivLeak needs {PRIVLEAK_SPLITS[split]} in {root} (a holdout set of texts "
                                      "the model never saw); leave privleak out of eval.sets otherwise")

    def auc_retrain_for(self, cfg: RunConfig) -> tuple[float | None, str]:
        """The retrained model's Min-40% AUC: measured (``eval.retain_reference``) or MUSE's published value."""
        if cfg.eval.retain_reference:
            results = RunDirectory(cfg.eval.retain_reference).read_results()
            value = results.metrics.get("privleak_auc")
            if results.task != self.name or value is None:
                raise ConfigError(f"eval.retain_reference {cfg.eval.retain_reference} has no PrivLeak AUC of the "
                                  f"{self.name} task (it is a {results.task} evaluation)")
            return float(value), f"measured on the retrained model ({cfg.eval.retain_reference})"
        if self.published_auc is not None:
            return self.published_auc, f"MUSE's published AUC of the retrained model ({self.corpus})"
        return None, "no retrained model (eval.retain_reference) and no published value for this corpus"

    def evaluator(self, cfg: RunConfig, formatter: ChatFormatter, device: str) -> MuseEvaluator:
        return MuseEvaluator(self, cfg, formatter, device)

    def write(self, run_dir: RunDirectory, result: EvalResult) -> None:
        for name, rows in result.samples.items():
            run_dir.write_eval_rows(name, rows)

    def format_results(self, metrics: dict[str, Any]) -> str:
        def cell(key: str) -> str:
            value = metrics.get(key)
            return fmt(value, 2)

        lines = ["| VerbMem forget ↓ | KnowMem forget ↓ | KnowMem retain ↑ | PrivLeak →0 |", "|---|---|---|---|",
                 f"| {cell('verbmem_f')} | {cell('knowmem_f')} | {cell('knowmem_r')} | {cell('privleak')} |"]
        if metrics.get("privleak") is None and "privleak_auc" in metrics:
            lines.append(f"PrivLeak n/a: {metrics.get('privleak_auc_retrain_source')}")
        attacks = (metrics.get("mia") or {}).get("attacks") or {}
        if attacks:
            lines.append("MIA AUC (forget vs holdout): " + ", ".join(f"{a} {v['auc']:.3f}" for a, v in attacks.items()))
        return "\n".join(lines)


MUSE_NEWS = register(MuseTask("muse_news", "MUSE-News (BBC news): VerbMem, KnowMem, PrivLeak, MIA", 0.4772, "News"))
MUSE_BOOKS = register(MuseTask("muse_books", "MUSE-Books (Harry Potter): VerbMem, KnowMem, PrivLeak, MIA", 0.5393,
                               "Books"))
MUSE_LAYOUT = register(MuseTask("muse", "any MUSE-layout corpus (e.g. the embedded fictitious news); PrivLeak "
                                        "against a retrained model"))
