"""Run a model over the TOFU evaluation sets and compute every TOFU and closer-look metric
(docs/formulas.md#tofu-metrics). The TOFU task (:mod:`unlearn.tasks.tofu.task`) drives it.

Two stages, so text metrics can be recomputed from saved generations on another machine:

1. :class:`TofuEvaluator` (needs the model): one batched likelihood pass over every answer, paraphrase and
   perturbed answer of every set, and batched greedy generation with left padding → per-sample rows.
2. :func:`score_rows` (needs no model): :class:`TextScorer` fills ROUGE-L recall, Token Entropy, Cosine
   Similarity and Entailment per row (auxiliary models loaded once per process), then the aggregates.

"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from unlearn.data.formatting import ChatFormatter, EncodedSample, check_lengths
from unlearn.data.records import QARecord
from unlearn.errors import DataError
from unlearn.evaluation.aux_models import Unavailable, load_embedder, load_nli
from unlearn.evaluation.generation import GenerationSettings, generate_answers
from unlearn.evaluation.likelihood import shared_prompt_scores
from unlearn.io import read_jsonl
from unlearn.runs import RunDirectory
from unlearn.tasks import sample_metrics
from unlearn.tasks.base import EvalResult
from unlearn.tasks.tofu.closer_look import entailment_scores, token_entropy
from unlearn.tasks.tofu.log import load_eval_log, load_eval_log_texts
from unlearn.tasks.tofu.metrics import (
    TOFU_SAMPLE_INPUTS,
    SetSamples,
    aggregate,
    answer_probability,
    as_ragged,
    rouge_l_recall,
    truth_ratios,
)
from unlearn.tasks.tofu.sets import FORGET, OPTION_NORMALISED, TOFU_SETS
from unlearn.train.distributed import rank_and_world

log = logging.getLogger("unlearn")


@dataclass(frozen=True)
class EvalSet:
    """One TOFU evaluation set: its name, its type (:mod:`unlearn.tasks.tofu.sets`) and its records."""

    name: str
    set_type: str
    records: tuple[QARecord, ...]


@dataclass
class RetainReference:
    """The retain (Retrain) model's per-sample forget-set truth ratios, computed once and stored, with the forget
    rows' texts so Forget Quality is only ever computed against the same questions.

    Our run directories give the questions and answers; a TOFU eval log gives the prompts (which contain the
    questions) and the ground-truth answers from its ``generated_text``.
    """

    truth_ratios: np.ndarray
    questions: list[str] | None
    source: str
    answers: list[str] | None = None
    prompts: list[str] | None = None

    @classmethod
    def load(cls, path: str | Path) -> RetainReference:
        """From a run directory of ours (``eval/forget.jsonl``) or a TOFU ``eval_log_aggregated.json``."""
        path = Path(path)
        ours = path if path.suffix == ".jsonl" else RunDirectory(path).eval_rows_file("forget")
        if ours.is_file():
            rows = read_jsonl(ours)
            return cls(np.array([r["truth_ratio"] for r in rows], dtype=np.float64),
                       [r["question"] for r in rows], str(ours), [r["answer"] for r in rows])
        sets = load_eval_log(path)
        if "forget" not in sets:
            raise DataError(f"{path}: the eval log has no forget set (eval_log_forget.json)")
        forget = sets["forget"]
        texts = load_eval_log_texts(path).get("forget")
        prompts, answers = (None, None) if texts is None else ([t[0] for t in texts], [t[2] for t in texts])
        return cls(truth_ratios(forget.paraphrased_loss, forget.perturbed_loss), None, str(path), answers, prompts)

    def check_matches(self, questions: list[str] | None, answers: list[str] | None = None) -> None:
        """Raise unless the evaluation's forget rows are the reference's: same count, same answers where both carry
        them, same questions (or each question inside the reference's prompt). Warn when nothing can be compared."""
        n = len(questions if questions is not None else answers or [])
        if n != len(self.truth_ratios):
            raise DataError(f"retain reference {self.source} has {len(self.truth_ratios)} forget rows, this "
                            f"evaluation has {n}: Forget Quality compares the same forget rows")
        checked = False
        if self.answers is not None and answers is not None:
            _first_mismatch(self.answers, answers, self.source, "answers", lambda a, b: a.strip() == b.strip())
            checked = True
        if self.questions is not None and questions is not None:
            _first_mismatch(self.questions, questions, self.source, "questions", lambda a, b: a == b)
            checked = True
        elif self.prompts is not None and questions is not None:
            _first_mismatch(self.prompts, questions, self.source, "questions", lambda p, q: q.strip() in p)
            checked = True
        if not checked:
            log.warning("warning: cannot check that the retain reference %s was evaluated on the same forget rows "
                        "(no questions or answers to compare); only the row counts match", self.source)


    def check_log_matches(self, prompts: list[str] | None, answers: list[str] | None, n: int) -> None:
        """The same check for an evaluation known only by its TOFU eval log (prompts and answers of its rows)."""
        if n != len(self.truth_ratios):
            raise DataError(f"retain reference {self.source} has {len(self.truth_ratios)} forget rows, the eval log "
                            f"has {n}: Forget Quality compares the same forget rows")
        if self.answers is not None and answers is not None:
            _first_mismatch(self.answers, answers, self.source, "answers", lambda a, b: a.strip() == b.strip())
        elif self.questions is not None and prompts is not None:
            _first_mismatch(self.questions, prompts, self.source, "questions", lambda q, p: q.strip() in p)
        else:
            log.warning("warning: cannot check that the retain reference %s was evaluated on the same forget rows "
                        "(no questions or answers to compare); only the row counts match", self.source)


def _first_mismatch(reference: list[str], ours: list[str], source: str, what: str, same) -> None:
    for i, (a, b) in enumerate(zip(reference, ours, strict=True)):
        if not same(a, b):
            raise DataError(f"retain reference {source} was evaluated on other forget {what} (row {i}: {a!r} vs "
                            f"{b!r}): Forget Quality compares the same forget rows")


@dataclass
class EvalSettings:
    batch_size: int = 16
    generate: bool = True
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    max_length: int = 500  # longest likelihood sequence allowed (same as training)
    progress: bool = True
    embedding_model: str = "auto"
    nli_model: str = "auto"
    bootstrap: int = 1000  # bootstrap resamples for the 95 % intervals (0: none)
    seed: int = 0


class TextScorer:
    """Per-sample metrics of generated text: ROUGE-L recall, Token Entropy, Cosine Similarity, Entailment.

    The embedder and NLI classifier are loaded once (and cached per process); a missing one is reported in
    :meth:`unavailable` instead of producing numbers.
    """

    def __init__(self, tokenizer=None, embedding_model: str = "auto", nli_model: str = "auto", device: str = "cpu"):
        self.tokenizer = tokenizer
        self.embedder = load_embedder(embedding_model, device)
        self.nli = load_nli(nli_model, device)

    def unavailable(self) -> dict[str, str]:
        out = {}
        if isinstance(self.embedder, Unavailable):
            out["CS"] = self.embedder.reason
        if isinstance(self.nli, Unavailable):
            out["ES"] = self.nli.reason
        return out

    def score(self, rows: list[dict[str, Any]], forget_set: bool, cs_reference: str = "answer",
              generation_premise: bool | None = None) -> None:
        """Fill the text metrics of ``rows`` (which carry ``generation`` and ``answer``) in place.

        ROUGE and Entailment compare with ``answer``; Cosine Similarity with the row's ``cs_reference`` field (the
        real-world scenario: the model's own pre-unlearning answer). The generation is the NLI premise on the forget
        set only (TOFU), or wherever ``generation_premise`` says (real-world: on every set)."""
        generations = [r["generation"] for r in rows]
        answers = [r["answer"] for r in rows]
        premise = forget_set if generation_premise is None else generation_premise
        rouge = rouge_l_recall(generations, answers)
        if self.tokenizer is not None:
            tokens = self.tokenizer(generations, add_special_tokens=False)["input_ids"] if rows else []
        else:
            if any("generation_tokens" not in r for r in rows):
                raise DataError("rows have no 'generation_tokens' and no tokenizer was given for Token Entropy")
            tokens = [r["generation_tokens"] for r in rows]
        cs = None if isinstance(self.embedder, Unavailable) else self.embedder.similarity(
            generations, [r[cs_reference] for r in rows])
        es = None if isinstance(self.nli, Unavailable) else entailment_scores(self.nli, generations, answers, rouge,
                                                                              premise)
        for i, r in enumerate(rows):
            r["rougeL_recall"] = float(rouge[i])
            r["generation_tokens"] = list(tokens[i])
            r["token_entropy"] = token_entropy(tokens[i])
            r["cosine_similarity"] = None if cs is None else float(cs[i])
            r["entailment"] = None if es is None else float(es[i])


def _column(rows: list[dict[str, Any]], key: str) -> np.ndarray | None:
    values = [r.get(key) for r in rows]
    if not values or any(v is None for v in values):
        return None
    return np.array(values, dtype=np.float64)


def set_samples_from_rows(rows: list[dict[str, Any]], set_type: str) -> SetSamples:
    return SetSamples(
        set_type=set_type,
        gt_loss=np.array([r["gt_loss"] for r in rows]),
        paraphrased_loss=np.array([r["paraphrased_loss"] for r in rows]),
        perturbed_loss=as_ragged([r["perturbed_loss"] for r in rows]),
        rouge=_column(rows, "rougeL_recall"),
        token_entropy=_column(rows, "token_entropy"),
        cosine_similarity=_column(rows, "cosine_similarity"),
        entailment=_column(rows, "entailment"),
        greedy_hits=None if not rows or any("greedy_hits" not in r for r in rows) else [r["greedy_hits"] for r in rows],
        recorded=_recorded_sample_metrics(rows),
    )


def _recorded_sample_metrics(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Registered sample metrics whose values rows carry but whose inputs they lack (TOFU rows of task version 2
    before the greedy hits were written, 2026-12-04): rescoring them keeps EM and ES instead of dropping them."""
    if rows and all("greedy_hits" in r for r in rows):
        return {}
    keys = [m.spec.key for m in sample_metrics.metrics_for("tofu", TOFU_SAMPLE_INPUTS) if "greedy_hits" in m.inputs]
    return {k: column for k in keys if (column := _column(rows, k)) is not None}


def score_rows(
    samples: dict[str, list[dict[str, Any]]],
    scorer: TextScorer | None,
    retain_reference: RetainReference | None = None,
    n_resamples: int = 0,
    seed: int = 0,
) -> EvalResult:
    """Text metrics (if ``scorer``) and all aggregates for per-sample rows of the named TOFU sets."""
    unknown = sorted(set(samples) - set(TOFU_SETS))
    if unknown:
        raise DataError(f"not TOFU eval sets: {unknown} (known: {', '.join(TOFU_SETS)})")
    unavailable: dict[str, str] = {}
    for name, rows in samples.items():
        if scorer is not None and rows and rows[0].get("generation") is not None:
            scorer.score(rows, TOFU_SETS[name] == FORGET)
    if scorer is not None:
        unavailable.update(scorer.unavailable())
    set_samples = {name: set_samples_from_rows(rows, TOFU_SETS[name]) for name, rows in samples.items()}
    reference = None
    if retain_reference is not None and "forget" in samples:
        retain_reference.check_matches([r["question"] for r in samples["forget"]],
                                       [r["answer"] for r in samples["forget"]])
        reference = retain_reference.truth_ratios
    metrics = aggregate(set_samples, reference, unavailable, n_resamples, seed)
    if retain_reference is not None:
        metrics["forget_quality_reference"] = retain_reference.source
    return EvalResult(samples, metrics)


@dataclass
class _EncodedSet:
    eval_set: EvalSet
    prompts: list[list[int]]
    answer: list[EncodedSample]
    paraphrase: list[EncodedSample]
    perturbed: list[list[EncodedSample]]
    first: int = 0  # the shard's first row: rows first, first + step, … of the whole set
    step: int = 1

    def shard(self, rank: int, world: int) -> _EncodedSet:
        """Rows rank, rank + world, … (one process's share in multi-process evaluation)."""
        es = self.eval_set
        return _EncodedSet(EvalSet(es.name, es.set_type, es.records[rank::world]), self.prompts[rank::world],
                           self.answer[rank::world], self.paraphrase[rank::world], self.perturbed[rank::world],
                           rank, world)


class TofuEvaluator:
    """Evaluates models on fixed TOFU eval sets; construct once (encodes, loads auxiliary models), call per
    model or epoch."""

    def __init__(
        self,
        formatter: ChatFormatter,
        eval_sets: Mapping[str, EvalSet],
        settings: EvalSettings | None = None,
        retain_reference: RetainReference | None = None,
        device: str = "cpu",
        task: str = "tofu",
    ):
        self.task = task  # whose registered sample metrics the rows carry (real_world reuses this evaluator)
        self.formatter = formatter
        self.settings = settings or EvalSettings()
        self.retain_reference = retain_reference
        self.sets: dict[str, _EncodedSet] = {name: self._encode(name, es) for name, es in eval_sets.items()}
        if retain_reference is not None and "forget" in self.sets:
            records = self.sets["forget"].eval_set.records
            retain_reference.check_matches([r.question for r in records], [r.answer for r in records])
        self.scorer = None
        if self.settings.generate:
            s = self.settings
            self.scorer = TextScorer(formatter.tokenizer, s.embedding_model, s.nli_model, device)

    def check_context(self, limit: int | None) -> None:
        """Every scored sequence fits the model's ``limit`` positions (checked before the weights load)."""
        if not limit:
            return
        for name, encoded in self.sets.items():
            samples = [*encoded.answer, *encoded.paraphrase, *(p for group in encoded.perturbed for p in group)]
            sources = [r.source for r in encoded.eval_set.records]
            longest = max(range(len(samples)), key=lambda i: len(samples[i].input_ids), default=None)
            if longest is not None and len(samples[longest].input_ids) > limit:
                row = sources[longest % len(sources)] if longest < 2 * len(sources) else f"eval set {name}"
                raise DataError(f"{row}: a scored sequence of eval set {name} has {len(samples[longest].input_ids)} "
                                f"tokens, more than the model's {limit} positions; lower data.max_length or use a "
                                "model with a longer context")

    def _encode(self, name: str, es: EvalSet) -> _EncodedSet:
        fmt, records = self.formatter, es.records
        para_texts = [r.paraphrased_answer if es.set_type != OPTION_NORMALISED else r.answer for r in records]
        if any(t is None for t in para_texts):
            raise DataError(f"eval set {name}: records need 'paraphrased_answer' ({records[0].source})")
        answer = fmt.encode_pairs([(r.question, r.answer) for r in records])
        paraphrase = fmt.encode_pairs([(r.question, t) for r, t in zip(records, para_texts, strict=True)])
        flat = fmt.encode_pairs([(r.question, p) for r in records for p in r.perturbed_answers])
        perturbed, pos = [], 0
        for r in records:
            perturbed.append(flat[pos:pos + len(r.perturbed_answers)])
            pos += len(r.perturbed_answers)
        limit = self.settings.max_length
        for encoded, fieldname in ((answer, "answer"), (paraphrase, "paraphrased_answer")):
            check_lengths(encoded, limit, [f"{r.source} field '{fieldname}'" for r in records],
                          [f"{r.source} field 'question'" for r in records])
        check_lengths(flat, limit, [f"{r.source} field 'perturbed_answer[{j}]'" for r in records
                                    for j in range(len(r.perturbed_answers))])
        return _EncodedSet(es, fmt.encode_prompts([r.question for r in records]), answer, paraphrase, perturbed)

    @torch.no_grad()
    def rows(self, model: torch.nn.Module, device: torch.device | None = None, desc: str = "eval",
             generate: bool | None = None, sets: list[str] | None = None) -> dict:
        """Per-sample rows (losses, probabilities, truth ratios, generations) — the model-dependent stage.
        ``sets`` restricts the evaluation to some of the sets (default: all)."""
        device = device or next(model.parameters()).device
        generate = self.settings.generate if generate is None else generate
        chosen = {name: s for name, s in self.sets.items() if sets is None or name in sets}
        rank, world = rank_and_world()
        if world > 1:  # multi-process training: each rank its share of every set, gathered below
            chosen = {name: s.shard(rank, world) for name, s in chosen.items()}
        was_training = model.training
        model.eval()
        fmt = self.formatter
        n_prompts = sum(len(s.prompts) for s in chosen.values()) if generate else 0
        n_sequences = sum(len(s.answer) * 2 + sum(len(p) for p in s.perturbed) for s in chosen.values())
        bar = tqdm(total=n_prompts + n_sequences, desc=desc, disable=None if self.settings.progress else True,
                   leave=False, dynamic_ncols=True)
        try:
            flat: list[EncodedSample] = []  # one likelihood pass over every set, each prompt encoded once
            answers: list[int] = []  # where each answer sits in it (for sample metrics that read greedy hits)
            for s in chosen.values():
                answers += range(len(flat), len(flat) + len(s.answer))
                flat += s.answer + s.paraphrase + [e for row in s.perturbed for e in row]
            want_hits = sample_metrics.needs(self.task, TOFU_SAMPLE_INPUTS, "greedy_hits")
            nll, ntok, hits = shared_prompt_scores(model, flat, fmt.pad_id, self.settings.batch_size, device,
                                                   bar.update, answers if want_hits else ())
            avg = nll / ntok
            samples: dict[str, list[dict[str, Any]]] = {}
            pos = 0
            for name, s in chosen.items():
                n = len(s.answer)
                gt, gt_n = avg[pos:pos + n], ntok[pos:pos + n]
                answer_hits = [hits[pos + i] for i in range(n)] if want_hits else None
                para, para_n = avg[pos + n:pos + 2 * n], ntok[pos + n:pos + 2 * n]
                pos += 2 * n
                pert, pert_n = [], []
                for row in s.perturbed:
                    pert.append(avg[pos:pos + len(row)].tolist())
                    pert_n.append(ntok[pos:pos + len(row)].tolist())
                    pos += len(row)
                generations = None
                if generate:
                    generations = generate_answers(model, fmt.tokenizer, s.prompts, fmt.eos_id, fmt.pad_id,
                                                   self.settings.batch_size, device, self.settings.generation,
                                                   bar.update)
                q = truth_ratios(para, as_ragged(pert))
                prob = answer_probability(gt, as_ragged(pert), s.eval_set.set_type)
                extra = sample_metrics.compute(self.task, TOFU_SAMPLE_INPUTS, {
                    "greedy_hits": answer_hits, "gt_loss": gt, "paraphrased_loss": para,
                    "perturbed_loss": as_ragged(pert)}, n)
                samples[name] = [
                    {
                        "index": s.first + i * s.step, "id": r.source, "question": r.question, "answer": r.answer,
                        "prompt": fmt.prompt_text(r.question),
                        "generation": None if generations is None else generations[i],
                        "gt_loss": float(gt[i]), "gt_tokens": int(gt_n[i]),
                        "paraphrased_loss": float(para[i]), "paraphrased_tokens": int(para_n[i]),
                        "perturbed_loss": pert[i], "perturbed_tokens": pert_n[i],
                        "prob": float(prob[i]), "truth_ratio": float(q[i]),
                        **({} if answer_hits is None else {"greedy_hits": answer_hits[i].astype(int).tolist()}),
                        **{key: float(v[i]) for key, v in extra.items()},
                    }
                    for i, r in enumerate(s.eval_set.records)
                ]
        finally:
            bar.close()
            model.train(was_training)
        if world > 1:
            shares: list[Any] = [None] * world
            torch.distributed.all_gather_object(shares, samples)
            samples = {name: sorted((r for share in shares for r in share[name]), key=lambda r: r["index"])
                       for name in chosen}
        return samples

    def evaluate(self, model: torch.nn.Module, device: torch.device | None = None, desc: str = "eval",
                 n_resamples: int | None = None, generate: bool | None = None,
                 sets: list[str] | None = None) -> EvalResult:
        """Rows, text metrics and aggregates (bootstrap intervals with ``settings.bootstrap`` resamples)."""
        samples = self.rows(model, device, desc, generate, sets)
        resamples = self.settings.bootstrap if n_resamples is None else n_resamples
        return score_rows(samples, self.scorer, self.retain_reference, resamples, self.settings.seed)

    def epoch_record(self, model: torch.nn.Module, device: torch.device, epoch: int, generate: bool,
                     sets: list[str] | None) -> dict[str, Any]:
        """Per-epoch aggregates (no bootstrap), plus the forget set's per-sample log π(y|x) and |y| so gradient
        weights (SimNPO Fig. 3/4) can be drawn afterwards."""
        result = self.evaluate(model, device, desc=f"eval epoch {epoch}", n_resamples=0, generate=generate,
                               sets=sets)
        forget = result.samples.get("forget", [])
        return {**result.metrics,
                "forget_logp": [-r["gt_loss"] * r["gt_tokens"] for r in forget],
                "forget_tokens": [r["gt_tokens"] for r in forget]}


def read_rows(run_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The per-sample rows a run saved for the TOFU sets."""
    run = RunDirectory(run_dir)
    samples = {name: rows for name in TOFU_SETS if (rows := run.read_eval_rows(name)) is not None}
    if not samples:
        raise DataError(f"{run.path}: no saved evaluation rows ({run.eval_rows_file('forget')}, …); evaluate with a "
                        "model first")
    return samples
