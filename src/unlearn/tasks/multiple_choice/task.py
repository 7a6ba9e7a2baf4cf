"""Multiple-choice tasks: ``wmdp_bio``, ``wmdp_chem``, ``wmdp_cyber`` (Li et al., 2024) and ``mmlu`` (Hendrycks et
al., 2021), zero-shot in lm-evaluation-harness's format (``eval.num_fewshot`` adds MMLU ``dev`` examples).

Accuracy = the share of questions whose highest-likelihood option is the answer (lm-eval's ``acc``), with its 95 %
bootstrap interval; MMLU adds per-subject accuracy, the four categories and the macro average over subjects. Per
question: the four log-likelihoods, the choice and whether it was right.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from unlearn.config.schema import RunConfig
from unlearn.data.formatting import ChatFormatter
from unlearn.errors import ConfigError, DataError
from unlearn.runs import RunDirectory
from unlearn.tasks import register
from unlearn.tasks.base import EvalResult, MetricSpec, SetSpec, Task
from unlearn.tasks.multiple_choice.data import (
    CATEGORY_OF,
    LETTERS,
    MMLU_CATEGORIES,
    MMLU_SUBJECTS,
    MCQuestion,
    check_subjects,
    present_subjects,
    read_mmlu,
    read_wmdp,
)
from unlearn.tasks.multiple_choice.scoring import HARNESS_TOPICS, mc_prompt, option_logprobs
from unlearn.tasks.tofu.metrics import bootstrap_ci

WMDP_DOMAINS = ("bio", "chem", "cyber")


class MCEvaluator:
    def __init__(self, task: MCTask, cfg: RunConfig, formatter: ChatFormatter):
        self.task, self.cfg = task, cfg
        self.tokenizer, self.pad_id = formatter.tokenizer, formatter.pad_id
        self.questions = task.questions(cfg)
        limit = cfg.eval.max_rows.get(task.set_names[0])
        self.questions = self.questions[:limit] if limit else self.questions
        self.prompts = task.prompts(cfg, self.questions)

    def evaluate(self, model: torch.nn.Module, device: torch.device | None = None, desc: str = "eval",
                 n_resamples: int | None = None, generate: bool | None = None,
                 sets: Sequence[str] | None = None) -> EvalResult:
        device = device or next(model.parameters()).device
        resamples = self.cfg.eval.bootstrap if n_resamples is None else n_resamples
        was_training = model.training
        model.eval()
        bar = tqdm(total=len(self.prompts), desc=desc, disable=None if self.cfg.progress else True, leave=False)
        try:
            logp = option_logprobs(model, self.tokenizer, self.prompts, self.pad_id, self.cfg.eval.batch_size,
                                   device, bar.update)
        finally:
            bar.close()
            model.train(was_training)
        choice = logp.argmax(1)
        answers = np.array([q.answer for q in self.questions])
        correct = (choice == answers).astype(float)
        rows = [{"index": i, "id": q.source, "subject": q.subject, "question": q.question, "choices": list(q.choices),
                 "answer": LETTERS[q.answer], "logprobs": [float(v) for v in logp[i]], "choice": LETTERS[choice[i]],
                 "correct": bool(correct[i])} for i, q in enumerate(self.questions)]
        metrics: dict[str, Any] = {"accuracy": float(correct.mean()), "n": len(rows)}
        if resamples > 0:
            metrics["ci95"] = {"accuracy": list(bootstrap_ci(correct, self.cfg.train.seed, resamples))}
        metrics.update(self.task.breakdown(self.questions, correct))
        return EvalResult({self.task.set_names[0]: rows}, metrics)

    def epoch_record(self, model: torch.nn.Module, device: torch.device, epoch: int, generate: bool,
                     sets: Sequence[str] | None) -> dict[str, Any]:
        return self.evaluate(model, device, desc=f"eval epoch {epoch}", n_resamples=0).metrics


class MCTask(Task):
    version = 1
    data_kind = "muse"  # its unlearning data are text corpora (data.forget_corpus / data.retain_corpus)
    defaults: ClassVar[dict[str, Any]] = {"data.max_length": 512}  # chunk length of the corpora (ours)
    requests = ("multiple_choice",)
    metrics = (MetricSpec("accuracy", "multiple-choice accuracy (lm-eval's acc)", "run", True,
                          "share of questions whose most likely option ` A`…` D` is the answer; chance 0.25"),)

    def evaluator(self, cfg: RunConfig, formatter: ChatFormatter, device: str) -> MCEvaluator:
        return MCEvaluator(self, cfg, formatter)

    def questions(self, cfg: RunConfig) -> list[MCQuestion]:
        raise NotImplementedError

    def prompts(self, cfg: RunConfig, questions: list[MCQuestion]) -> list[str]:
        raise NotImplementedError

    def breakdown(self, questions: list[MCQuestion], correct: np.ndarray) -> dict[str, Any]:
        return {}

    def write(self, run_dir: RunDirectory, result: EvalResult) -> None:
        for name, rows in result.samples.items():
            run_dir.write_eval_rows(name, rows)

    def format_results(self, metrics: dict[str, Any]) -> str:
        ci = (metrics.get("ci95") or {}).get("accuracy")
        text = f"{self.name}: accuracy {metrics['accuracy']:.4f} on {metrics['n']} questions"
        text += f" [95 % CI {ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        if "categories" in metrics:
            text += "\n" + ", ".join(f"{c} {v:.4f}" for c, v in metrics["categories"].items())
            text += (f"; macro average over {len(metrics['subjects'])} of {len(MMLU_SUBJECTS)} subjects "
                     f"{metrics['macro_average']:.4f}")
        return text


class WmdpTask(MCTask):
    def __init__(self, domain: str):
        self.domain = domain
        self.name = f"wmdp_{domain}"
        self.summary = (f"WMDP-{domain} ({HARNESS_TOPICS[self.name]}) multiple choice, zero-shot, lm-eval's format "
                        f"(`{domain}_questions.json` in data.root)")
        self.sets = (SetSpec(self.name, f"{domain}_questions.json", "log-likelihood of ` A`…` D`",
                             f"eval.max_rows.{self.name}"),)

    def _path(self, cfg: RunConfig) -> Path:
        return Path(cfg.data.root).expanduser() / f"{self.domain}_questions.json"

    def check(self, cfg: RunConfig) -> None:
        if Path(cfg.data.root).expanduser().is_dir():
            if not self._path(cfg).is_file():
                raise ConfigError(f"{self.name}: {self._path(cfg)} not found (data.root must hold "
                                  f"{self.domain}_questions.json)")
            read_wmdp(self._path(cfg))  # every row checked before any model loads

    def questions(self, cfg: RunConfig) -> list[MCQuestion]:
        if not Path(cfg.data.root).expanduser().is_dir():
            raise DataError(f"{self.name}: data.root {cfg.data.root!r} is not a directory holding "
                            f"{self.domain}_questions.json")
        return read_wmdp(self._path(cfg))

    def prompts(self, cfg: RunConfig, questions: list[MCQuestion]) -> list[str]:
        return [mc_prompt(q, HARNESS_TOPICS[self.name]) for q in questions]


class MmluTask(MCTask):
    name = "mmlu"
    summary = ("MMLU, 57 subjects, lm-eval's format (data.root: dev/ and test/ CSVs); per-subject, per-category and "
               "macro-average accuracy; eval.num_fewshot examples from dev")
    sets = (SetSpec("mmlu", "test/<subject>_test.csv (eval.mmlu_subjects; default every subject present, all 57 "
                            "in a full copy)",
                    "log-likelihood of ` A`…` D`", "eval.max_rows.mmlu"),)

    def check(self, cfg: RunConfig) -> None:
        check_subjects(cfg.eval.mmlu_subjects)
        if not 0 <= cfg.eval.num_fewshot <= 5:
            raise ConfigError(f"eval.num_fewshot must be in 0..5 (MMLU's dev split has 5 per subject), got "
                              f"{cfg.eval.num_fewshot}")
        if Path(cfg.data.root).expanduser().is_dir():
            questions = self.questions(cfg)  # every row checked before any model loads
            if cfg.eval.num_fewshot:
                read_mmlu(Path(cfg.data.root).expanduser(), "dev", tuple({q.subject for q in questions}))

    def questions(self, cfg: RunConfig) -> list[MCQuestion]:
        root = Path(cfg.data.root).expanduser()
        subjects = check_subjects(cfg.eval.mmlu_subjects) if cfg.eval.mmlu_subjects else present_subjects(root)
        if not subjects:
            raise DataError(f"mmlu: {root / 'test'} holds no <subject>_test.csv of the 57 MMLU subjects")
        return read_mmlu(root, "test", subjects)

    def prompts(self, cfg: RunConfig, questions: list[MCQuestion]) -> list[str]:
        shots: dict[str, list[MCQuestion]] = {}
        if cfg.eval.num_fewshot:
            for q in read_mmlu(Path(cfg.data.root).expanduser(), "dev", tuple({q.subject for q in questions})):
                shots.setdefault(q.subject, []).append(q)
        return [mc_prompt(q, HARNESS_TOPICS[f"mmlu_{q.subject}"], shots.get(q.subject, [])[:cfg.eval.num_fewshot])
                for q in questions]

    def breakdown(self, questions: list[MCQuestion], correct: np.ndarray) -> dict[str, Any]:
        subjects: dict[str, list[float]] = {}
        for q, c in zip(questions, correct, strict=True):
            subjects.setdefault(q.subject, []).append(float(c))
        per_subject = {s: float(np.mean(v)) for s, v in sorted(subjects.items())}
        categories = {}
        for category in MMLU_CATEGORIES:
            values = [c for q, c in zip(questions, correct, strict=True) if CATEGORY_OF[q.subject] == category]
            if values:
                categories[category] = float(np.mean(values))
        return {"subjects": per_subject, "categories": categories,
                "macro_average": float(np.mean(list(per_subject.values())))}


class RetainMCTask(WmdpTask):
    """``retain_questions.json`` beside the WMDP files (ours, e.g. the embedded benchmark; WMDP has none)."""

    def __init__(self) -> None:
        self.domain, self.name = "retain", "retain_mc"
        self.summary = "questions on the retain knowledge (`retain_questions.json` in data.root; ours, optional)"
        self.sets = (SetSpec(self.name, "retain_questions.json", "log-likelihood of ` A`…` D`",
                             "eval.max_rows.retain_mc"),)

    def _path(self, cfg: RunConfig) -> Path:
        return Path(cfg.data.root).expanduser() / "retain_questions.json"

    def prompts(self, cfg: RunConfig, questions: list[MCQuestion]) -> list[str]:
        return [mc_prompt(q) for q in questions]


class WmdpSuiteEvaluator:
    """Each part's :class:`MCEvaluator` on the same model; metrics per part."""

    def __init__(self, parts: dict[str, MCEvaluator]):
        self.parts = parts

    def evaluate(self, model: torch.nn.Module, device: torch.device | None = None, desc: str = "eval",
                 n_resamples: int | None = None, generate: bool | None = None,
                 sets: Sequence[str] | None = None) -> EvalResult:
        samples, metrics = {}, {}
        for name, evaluator in self.parts.items():
            if sets is not None and name not in sets:
                continue
            result = evaluator.evaluate(model, device, f"{desc} {name}", n_resamples)
            samples.update(result.samples)
            metrics[name] = result.metrics
        return EvalResult(samples, metrics)

    def epoch_record(self, model: torch.nn.Module, device: torch.device, epoch: int, generate: bool,
                     sets: Sequence[str] | None) -> dict[str, Any]:
        result = self.evaluate(model, device, f"eval epoch {epoch}", 0, sets=sets)
        return {name: m["accuracy"] for name, m in result.metrics.items()}


class WmdpSuiteTask(Task):
    """WMDP as the papers report it (SimNPO Table 4, the WMDP paper): the WMDP domains in data.root and MMLU
    beside them, plus ``retain_questions.json`` when present — one run, one table."""

    name = "wmdp"
    version = 1
    summary = ("every WMDP domain file in data.root (bio/chem/cyber_questions.json) with MMLU (eval.mmlu_root) "
               "and, when present, retain_questions.json: accuracy per set in one run")
    data_kind = "muse"
    defaults: ClassVar[dict[str, Any]] = {"data.max_length": 512}
    requests = ("multiple_choice",)
    metrics = (MetricSpec("accuracy", "multiple-choice accuracy per set", "set", True,
                          "as wmdp_* and mmlu; chance 0.25", "lower is better on WMDP after unlearning"),)

    def __init__(self) -> None:
        self.domains = [WmdpTask(d) for d in WMDP_DOMAINS]
        self.retain = RetainMCTask()
        self.sets = (*(d.sets[0] for d in self.domains), self.retain.sets[0],
                     SetSpec("mmlu", "eval.mmlu_root (default <data.root>/mmlu when it exists)",
                             "log-likelihood of ` A`…` D`", "eval.max_rows.mmlu"))

    def mmlu_root(self, cfg: RunConfig) -> Path | None:
        if cfg.eval.mmlu_root:
            return Path(cfg.eval.mmlu_root).expanduser()
        inside = Path(cfg.data.root).expanduser() / "mmlu"
        return inside if inside.is_dir() else None

    def parts(self, cfg: RunConfig) -> dict[str, tuple[MCTask, RunConfig]]:
        root = Path(cfg.data.root).expanduser()
        found: dict[str, tuple[MCTask, RunConfig]] = {}
        for task in (*self.domains, self.retain):
            if (root / f"{task.domain}_questions.json").is_file():
                found[task.name] = (task, cfg)
        mmlu_root = self.mmlu_root(cfg)
        if mmlu_root is not None:
            sub = copy.deepcopy(cfg)
            sub.data.root = str(mmlu_root)
            found["mmlu"] = (MMLU, sub)
        if cfg.eval.sets is not None:
            found = {k: v for k, v in found.items() if k in cfg.eval.sets}
        return found

    def check(self, cfg: RunConfig) -> None:
        root = Path(cfg.data.root).expanduser()
        if not any((root / f"{d}_questions.json").is_file() for d in WMDP_DOMAINS):
            raise ConfigError(f"wmdp: data.root {cfg.data.root!r} holds none of "
                              f"{', '.join(f'{d}_questions.json' for d in WMDP_DOMAINS)}")
        if cfg.eval.mmlu_root and not (Path(cfg.eval.mmlu_root).expanduser() / "test").is_dir():
            raise ConfigError(f"eval.mmlu_root {cfg.eval.mmlu_root!r} has no test/ directory (MMLU's layout: "
                              f"dev/ and test/ CSVs)")
        unknown = sorted(set(cfg.eval.sets or ()) - set(self.set_names))
        if unknown:
            raise ConfigError(f"eval.sets: unknown set(s) {unknown} of task wmdp ({', '.join(self.set_names)})")
        for task, sub in self.parts(cfg).values():
            task.check(sub)

    def evaluator(self, cfg: RunConfig, formatter: ChatFormatter, device: str) -> WmdpSuiteEvaluator:
        return WmdpSuiteEvaluator({name: MCEvaluator(task, sub, formatter)
                                   for name, (task, sub) in self.parts(cfg).items()})

    def write(self, run_dir: RunDirectory, result: EvalResult) -> None:
        for name, rows in result.samples.items():
            run_dir.write_eval_rows(name, rows)

    def format_results(self, metrics: dict[str, Any]) -> str:
        rows = []
        for name, m in metrics.items():
            if not isinstance(m, dict) or "accuracy" not in m:
                continue
            ci = (m.get("ci95") or {}).get("accuracy")
            rows.append(f"| {name} | {m['accuracy']:.4f} | " + (f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "–")
                        + f" | {m['n']} |")
        table = "\n".join(["| set | accuracy (chance 0.25) | 95 % CI | questions |", "|---|---|---|---|", *rows])
        if "mmlu" not in metrics:
            table += "\n\nMMLU not evaluated: set eval.mmlu_root to a directory with MMLU's dev/ and test/ CSVs."
        return table


for _domain in WMDP_DOMAINS:
    register(WmdpTask(_domain))
MMLU = register(MmluTask())
WMDP_SUITE = register(WmdpSuiteTask())
