"""Run a model over the TOFU evaluation sets and compute every TOFU metric (SPEC §4).

One :class:`TofuEvaluator` pre-encodes the sets once (so per-epoch evaluation does no re-tokenization) and,
per call, runs (1) batched greedy generation with left padding and (2) one batched likelihood pass over every
answer, paraphrase and perturbed answer of every set. Results are per-sample rows plus aggregates.

Run-directory output (:func:`write_eval`): ``eval/<set>.jsonl`` (per-sample), ``eval_log_aggregated.json``
(TOFU's layout, scoreable by ``unlearn score``) and ``metrics.json`` (aggregates; written last).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from unlearn.data.formatting import ChatFormatter, EncodedQA, check_lengths
from unlearn.data.tofu import EvalSet
from unlearn.errors import DataError
from unlearn.evaluation.generation import GenerationSettings, generate_answers
from unlearn.evaluation.likelihood import batched_sequence_nll
from unlearn.evaluation.tofu_log import load_eval_log, log_from_samples
from unlearn.evaluation.tofu_metrics import (
    SetSamples,
    aggregate,
    answer_probability,
    as_ragged,
    rouge_l_recall,
    truth_ratios,
)
from unlearn.io import read_json, read_jsonl, write_json, write_jsonl


@dataclass
class RetainReference:
    """The retain (Retrain) model's per-sample forget-set truth ratios, computed once and stored."""

    truth_ratios: np.ndarray
    questions: list[str] | None
    source: str

    @classmethod
    def load(cls, path: str | Path) -> RetainReference:
        """From a run directory of ours (``eval/forget.jsonl``) or a TOFU ``eval_log_aggregated.json``."""
        path = Path(path)
        ours = path / "eval" / "forget.jsonl"
        if ours.is_file():
            rows = read_jsonl(ours)
            return cls(np.array([r["truth_ratio"] for r in rows], dtype=np.float64),
                       [r["question"] for r in rows], str(ours))
        sets = load_eval_log(path)
        if "forget" not in sets:
            raise DataError(f"{path}: the eval log has no forget set (eval_log_forget.json)")
        forget = sets["forget"]
        return cls(truth_ratios(forget.paraphrased_loss, forget.perturbed_loss), None, str(path))

    def check_matches(self, questions: list[str]) -> None:
        if len(questions) != len(self.truth_ratios):
            raise DataError(f"retain reference {self.source} has {len(self.truth_ratios)} forget rows, this "
                            f"evaluation has {len(questions)}: Forget Quality compares the same forget rows")
        if self.questions is not None and self.questions != questions:
            first = next(i for i, (a, b) in enumerate(zip(self.questions, questions, strict=True)) if a != b)
            raise DataError(f"retain reference {self.source} was evaluated on other forget questions "
                            f"(row {first}: {self.questions[first]!r} vs {questions[first]!r})")


@dataclass
class EvalSettings:
    batch_size: int = 16
    generate: bool = True
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    max_length: int = 500  # longest likelihood sequence allowed (same as training)
    progress: bool = True


@dataclass
class EvalResult:
    samples: dict[str, list[dict[str, Any]]]
    metrics: dict[str, Any]


@dataclass
class _EncodedSet:
    eval_set: EvalSet
    prompts: list[list[int]]
    answer: list[EncodedQA]
    paraphrase: list[EncodedQA]
    perturbed: list[list[EncodedQA]]


class TofuEvaluator:
    """Evaluates models on fixed TOFU eval sets; construct once, call per model/epoch."""

    def __init__(
        self,
        formatter: ChatFormatter,
        eval_sets: Mapping[str, EvalSet],
        settings: EvalSettings | None = None,
        retain_reference: RetainReference | None = None,
    ):
        self.formatter = formatter
        self.settings = settings or EvalSettings()
        self.retain_reference = retain_reference
        self.sets: dict[str, _EncodedSet] = {}
        for name, es in eval_sets.items():
            records = es.records
            para_texts = [r.paraphrased_answer if es.kind != "mc" else r.answer for r in records]
            if any(t is None for t in para_texts):
                raise DataError(f"eval set {name}: records need 'paraphrased_answer' ({records[0].source})")
            answer = formatter.encode_pairs([(r.question, r.answer) for r in records])
            paraphrase = formatter.encode_pairs([(r.question, t) for r, t in zip(records, para_texts, strict=True)])
            flat = formatter.encode_pairs([(r.question, p) for r in records for p in r.perturbed_answers])
            perturbed, pos = [], 0
            for r in records:
                perturbed.append(flat[pos:pos + len(r.perturbed_answers)])
                pos += len(r.perturbed_answers)
            for encoded, fieldname in ((answer, "answer"), (paraphrase, "paraphrased_answer")):
                check_lengths(encoded, self.settings.max_length, [f"{r.source} field '{fieldname}'" for r in records])
            check_lengths(flat, self.settings.max_length,
                          [f"{r.source} field 'perturbed_answer[{j}]'" for r in records
                           for j in range(len(r.perturbed_answers))])
            self.sets[name] = _EncodedSet(es, formatter.encode_prompts([r.question for r in records]), answer,
                                          paraphrase, perturbed)
        if retain_reference is not None and "forget" in self.sets:
            retain_reference.check_matches([r.question for r in self.sets["forget"].eval_set.records])

    @property
    def n_sequences(self) -> int:
        return sum(len(s.answer) * 2 + sum(len(p) for p in s.perturbed) for s in self.sets.values())

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, device: torch.device | None = None, desc: str = "eval") -> EvalResult:
        device = device or next(model.parameters()).device
        was_training = model.training
        model.eval()
        fmt = self.formatter
        n_prompts = sum(len(s.prompts) for s in self.sets.values()) if self.settings.generate else 0
        bar = tqdm(total=n_prompts + self.n_sequences, desc=desc, disable=None if self.settings.progress else True,
                   leave=False, dynamic_ncols=True)
        try:
            # One likelihood pass over everything, length-sorted across sets.
            flat: list[EncodedQA] = []
            for s in self.sets.values():
                flat += s.answer + s.paraphrase + [e for row in s.perturbed for e in row]
            nll, ntok = batched_sequence_nll(model, flat, fmt.pad_id, self.settings.batch_size, device, bar.update)
            avg = nll / ntok
            samples: dict[str, list[dict[str, Any]]] = {}
            set_samples: dict[str, SetSamples] = {}
            pos = 0
            for name, s in self.sets.items():
                n = len(s.answer)
                gt, gt_n = avg[pos:pos + n], ntok[pos:pos + n]
                para, para_n = avg[pos + n:pos + 2 * n], ntok[pos + n:pos + 2 * n]
                pos += 2 * n
                pert, pert_n = [], []
                for row in s.perturbed:
                    pert.append(avg[pos:pos + len(row)].tolist())
                    pert_n.append(ntok[pos:pos + len(row)].tolist())
                    pos += len(row)
                generations = None
                rouge = None
                records = s.eval_set.records
                if self.settings.generate:
                    generations = generate_answers(model, fmt.tokenizer, s.prompts, fmt.eos_id, fmt.pad_id,
                                                   self.settings.batch_size, device, self.settings.generation,
                                                   bar.update)
                    rouge = rouge_l_recall(generations, [r.answer for r in records])
                ss = SetSamples(kind=s.eval_set.kind, gt_loss=gt, paraphrased_loss=para,
                                perturbed_loss=as_ragged(pert), rouge=rouge)
                set_samples[name] = ss
                q = truth_ratios(ss.paraphrased_loss, ss.perturbed_loss)
                prob = answer_probability(ss.gt_loss, ss.perturbed_loss, ss.kind)
                rows = []
                for i, r in enumerate(records):
                    row = {
                        "index": i, "id": r.source, "question": r.question, "answer": r.answer,
                        "prompt": fmt.prompt_text(r.question),
                        "generation": None if generations is None else generations[i],
                        "rougeL_recall": None if rouge is None else float(rouge[i]),
                        "gt_loss": float(gt[i]), "gt_tokens": int(gt_n[i]),
                        "paraphrased_loss": float(para[i]), "paraphrased_tokens": int(para_n[i]),
                        "perturbed_loss": pert[i], "perturbed_tokens": pert_n[i],
                        "prob": float(prob[i]), "truth_ratio": float(q[i]),
                    }
                    rows.append(row)
                samples[name] = rows
        finally:
            bar.close()
            model.train(was_training)
        reference = self.retain_reference.truth_ratios if self.retain_reference is not None else None
        metrics = aggregate(set_samples, reference)
        if self.retain_reference is not None:
            metrics["forget_quality_reference"] = self.retain_reference.source
        return EvalResult(samples, metrics)


def write_eval(run_dir: str | Path, result: EvalResult, extra_metrics: Mapping[str, Any] | None = None) -> None:
    """Per-sample JSONL per set, the TOFU-format log, then ``metrics.json`` (last, so it marks completion)."""
    run_dir = Path(run_dir)
    for name, rows in result.samples.items():
        write_jsonl(run_dir / "eval" / f"{name}.jsonl", rows)
    write_json(run_dir / "eval_log_aggregated.json", log_from_samples(result.samples))
    write_json(run_dir / "metrics.json", {**result.metrics, **(extra_metrics or {})})


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    return read_json(Path(run_dir) / "metrics.json")
