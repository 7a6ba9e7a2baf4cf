"""Sampling-based leakage, leak@k (docs/formulas.md#leak): a model that looks forgotten under greedy decoding can
still give the answer in one of k samples.

Per forget question, k answers are sampled at temperature T (one batched, left-padded generation over all n·k
prompts, seeded) and scored by ROUGE-L recall against the answer. A question leaks when its best sample reaches the
threshold; leak@k is the fraction of questions that leak, reported beside greedy decoding's fraction. The curve
leak@j for j = 1..k uses the unbiased estimator 1 − C(k−c, j)/C(k, j) of Chen et al. (2021, pass@k), c being the
question's samples at or above the threshold, so it does not depend on the order the samples were drawn in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from unlearn.attacks.config import AttackConfig
from unlearn.attacks.target import AttackTarget
from unlearn.evaluation.generation import GenerationSettings, generate_answers
from unlearn.tasks.tofu.metrics import rouge_l_recall


def leak_at(hits: np.ndarray, k: int, j: int) -> np.ndarray:
    """Per question, the probability that j of its k samples drawn without replacement include a hit:
    1 − C(k − c, j)/C(k, j), with c = ``hits`` (the question's samples at or above the threshold)."""
    hits = np.asarray(hits, dtype=np.int64)
    if not 1 <= j <= k:
        raise ValueError(f"j must be in 1..{k}, got {j}")
    # C(k−c, j)/C(k, j) = Π_{i=0}^{j−1} (k − c − i)/(k − i); a factor ≤ 0 (j > k − c) means every draw of j hits
    i = np.arange(j)
    factors = (k - hits[:, None] - i[None, :]) / (k - i[None, :])
    return 1.0 - np.prod(np.clip(factors, 0, None), axis=1)


def summarize(greedy_rouge: np.ndarray, sample_rouge: np.ndarray, threshold: float) -> dict[str, Any]:
    """leak@k, greedy's fraction and the leak@j curve from ROUGE-L recalls (``sample_rouge``: n × k)."""
    n, k = sample_rouge.shape
    hits = (sample_rouge >= threshold).sum(axis=1)
    best = sample_rouge.max(axis=1)
    return {
        "n": int(n), "k": int(k), "threshold": threshold,
        "leak_at_k": float(np.mean(best >= threshold)),
        "greedy_leak": float(np.mean(greedy_rouge >= threshold)),
        "mean_best_rouge": float(np.mean(best)),
        "mean_sample_rouge": float(np.mean(sample_rouge)),
        "greedy_rouge": float(np.mean(greedy_rouge)),
        "curve": [float(np.mean(leak_at(hits, k, j))) for j in range(1, k + 1)],
    }


def check_leak(target: AttackTarget, settings: AttackConfig) -> None:
    target.forget_records(1)  # the forget evaluation file can be read, with its fields


def run_leak(target: AttackTarget, settings: AttackConfig, model: torch.nn.Module, formatter: Any,
             device: torch.device) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The attack on ``model``: (summary, one row per question)."""
    cfg = target.cfg
    records = target.forget_records(settings.max_rows or cfg.eval.forget_rows)
    prompts = formatter.encode_prompts([r.question for r in records])
    k, batch = settings.k, cfg.eval.batch_size
    bar = tqdm(total=len(prompts) * (k + 1), desc="leak: generating", disable=None if cfg.progress else True,
               leave=False, dynamic_ncols=True)
    try:
        greedy = generate_answers(model, formatter.tokenizer, prompts, formatter.eos_id, formatter.pad_id, batch,
                                  device, GenerationSettings(max_length=cfg.eval.max_length), bar.update)
        sampling = GenerationSettings(max_length=cfg.eval.max_length, do_sample=True,
                                      temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed)
        samples = generate_answers(model, formatter.tokenizer, [p for p in prompts for _ in range(k)],
                                   formatter.eos_id, formatter.pad_id, batch, device, sampling, bar.update)
    finally:
        bar.close()
    answers = [r.answer for r in records]
    greedy_rouge = rouge_l_recall(greedy, answers)
    sample_rouge = rouge_l_recall(samples, [a for a in answers for _ in range(k)]).reshape(len(records), k)
    summary = summarize(greedy_rouge, sample_rouge, settings.threshold)
    summary.update(temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed)
    rows = [{"index": i, "id": r.source, "question": r.question, "answer": r.answer, "greedy": greedy[i],
             "greedy_rouge": float(greedy_rouge[i]), "samples": samples[i * k:(i + 1) * k],
             "sample_rouge": sample_rouge[i].tolist(), "best_rouge": float(sample_rouge[i].max()),
             "leaked": bool(sample_rouge[i].max() >= settings.threshold)}
            for i, r in enumerate(records)]
    return summary, rows
