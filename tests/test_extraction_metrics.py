"""Exact Memorization, Extraction Strength and the knowledge truth ratio (registered by the unlearn_baselines plugin
through the sample-metric door): hand computations, the batched greedy hits against one sequence at a time, and what a
model that memorized the forget answers scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.conftest import make_tiny
from tests.test_baselines import _memorized
from unlearn.data.collate import pad_right
from unlearn.data.formatting import IGNORE_INDEX, ChatFormatter, EncodedSample
from unlearn.evaluation.likelihood import batched_greedy_hits, shared_prompt_scores
from unlearn.models.label_logps import label_argmax_hits
from unlearn.tasks.tofu.data import TofuData
from unlearn.tasks.tofu.evaluate import EvalSettings, TofuEvaluator
from unlearn.tasks.tofu.metrics import SetSamples, aggregate_set
from unlearn.tasks.tofu.task import TOFU
from unlearn_baselines.metrics import exact_memorization, extraction_strength, truth_ratio_knowledge

CPU = torch.device("cpu")


def test_em_and_es_by_hand():
    hits = [np.array([1, 1, 1, 1], bool),  # everything: EM 1, ES 1
            np.array([0, 1, 1, 1], bool),  # greedy decoding from y_<1 gives the rest: ES 1 − 1/4
            np.array([1, 1, 0, 1], bool),  # only the last token follows a prefix: ES 1/4
            np.array([1, 1, 1, 0], bool),  # the last token missed: no non-empty suffix is reproduced
            np.array([0, 0, 0], bool),
            np.array([1], bool)]
    assert exact_memorization(hits).tolist() == [1.0, 0.75, 0.75, 0.75, 0.0, 1.0]
    assert extraction_strength(hits).tolist() == [1.0, 0.75, 0.25, 0.0, 0.0, 1.0]
    assert np.isnan(extraction_strength([np.zeros(0, bool)])[0])


def test_greedy_hits_by_hand():
    """hidden = the logits themselves (identity head): position t predicts labels[t + 1]."""
    logits = torch.tensor([[[0.0, 5.0, 1.0],   # predicts 1 → label 1 ✓
                            [3.0, 0.0, 1.0],   # predicts 0 → label 2 ✗
                            [0.0, 1.0, 9.0],   # predicts 2 → label 2 ✓
                            [1.0, 0.0, 0.0]]])  # predicts nothing (last position)
    labels = torch.tensor([[IGNORE_INDEX, 1, 2, 2]])
    hits, mask = label_argmax_hits(logits, torch.nn.Identity(), labels)
    assert hits[mask].tolist() == [True, False, True]
    prompt_labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 2, 2]])  # the prompt's position is not counted
    hits, mask = label_argmax_hits(logits, torch.nn.Identity(), prompt_labels)
    assert hits[mask].tolist() == [False, True]


def _one_at_a_time(model, samples, pad_id):
    out = []
    for e in samples:
        with torch.no_grad():
            batch = pad_right([e], pad_id)
            logits = model(input_ids=batch["input_ids"]).logits
        target = batch["labels"][0, 1:]
        keep = target != IGNORE_INDEX
        out.append((logits[0, :-1].argmax(-1) == target)[keep].numpy())
    return out


@pytest.mark.parametrize("batch_size", [3, 100])
def test_batched_and_shared_prompt_hits_equal_one_at_a_time(tiny_model, tokenizer, bench_dir, batch_size):
    fmt = ChatFormatter(tokenizer)
    records = TofuData(bench_dir).split("retain_perturbed")[:4]
    pairs = [(r.question, a) for r in records for a in (r.answer, r.paraphrased_answer, *r.perturbed_answers)]
    encoded = fmt.encode_pairs(pairs)
    alone = _one_at_a_time(tiny_model, encoded, fmt.pad_id)
    batched = batched_greedy_hits(tiny_model, encoded, fmt.pad_id, batch_size, CPU)
    wanted = list(range(0, len(encoded), 3))
    _, _, shared = shared_prompt_scores(tiny_model, encoded, fmt.pad_id, batch_size, CPU, hits_for=wanted)
    assert sorted(shared) == wanted
    for i, expected in enumerate(alone):
        assert batched[i].tolist() == expected.tolist()
        if i in shared:
            assert shared[i].tolist() == expected.tolist()
    sequences = [EncodedSample.sequence(ids) for ids in ([5, 6, 7, 8], [5, 6, 9])]  # the plain path
    _, _, plain = shared_prompt_scores(tiny_model, sequences, fmt.pad_id, 8, CPU, hits_for=[1])
    assert plain[1].tolist() == _one_at_a_time(tiny_model, sequences, fmt.pad_id)[1].tolist()


def test_knowledge_truth_ratio_by_hand():
    para = np.array([1.0, 2.0])
    pert = np.array([[2.0, 4.0], [2.0, 2.0]])
    p_c = np.exp(-para)
    p_w = np.exp(-pert.mean(axis=1))  # the geometric mean of the perturbed answers' p̄
    assert truth_ratio_knowledge(para, pert) == pytest.approx(p_c / (p_c + p_w))
    assert truth_ratio_knowledge(para, pert)[1] == pytest.approx(0.5)  # the true answer no likelier


def test_the_set_aggregates_carry_the_new_metrics_with_intervals():
    hits = [[1, 1], [0, 1, 0, 1], [0]]  # EM 1, 1/2, 0; ES 1, 1/4, 0
    samples = SetSamples("forget", gt_loss=[1.0, 2.0, 0.5], paraphrased_loss=[1.5, 2.5, 1.0],
                         perturbed_loss=[[2.0], [3.0], [1.0]], greedy_hits=hits)
    out = aggregate_set(samples, n_resamples=200)
    assert out["exact_memorization"] == pytest.approx(0.5)
    assert out["extraction_strength"] == pytest.approx((1 + 0.25) / 3)
    assert out["paraphrase_prob"] == pytest.approx(np.mean(np.exp([-1.5, -2.5, -1.0])))
    assert out["truth_ratio_knowledge"] == pytest.approx(np.mean([1 / (1 + math.exp(x)) for x in (-0.5, -0.5, 0.0)]))
    low, high = out["ci95"]["exact_memorization"]
    assert low <= 0.5 <= high and low < high
    without_hits = aggregate_set(SetSamples("forget", gt_loss=[1.0], paraphrased_loss=[1.5], perturbed_loss=[[2.0]]))
    assert "exact_memorization" not in without_hits and "truth_ratio_knowledge" in without_hits  # a TOFU log's set


def test_rows_written_before_the_greedy_hits_keep_their_recorded_em_and_es():
    """Eval rows of task version 2 from before the rows carried greedy hits (only EM and ES per row) rescore with the
    recorded values; rows with the hits recompute them from the hits."""
    from unlearn.tasks.tofu.evaluate import set_samples_from_rows

    base = {"gt_loss": 1.0, "paraphrased_loss": 1.5, "perturbed_loss": [2.0]}
    old = [base | {"exact_memorization": 0.25, "extraction_strength": 0.0},
           base | {"exact_memorization": 0.75, "extraction_strength": 0.5}]
    out = aggregate_set(set_samples_from_rows(old, "forget"))
    assert out["exact_memorization"] == pytest.approx(0.5) and out["extraction_strength"] == pytest.approx(0.25)
    new = [base | {"greedy_hits": [1, 1], "exact_memorization": 0.0}, base | {"greedy_hits": [0, 1]}]
    out = aggregate_set(set_samples_from_rows(new, "forget"))
    assert out["exact_memorization"] == pytest.approx(0.75)  # from the hits, not a stale per-row value


def test_a_model_that_memorized_the_forget_answers_scores_high_em_and_es(tokenizer, forget10_parts, bench_dir,
                                                                      tmp_path):
    """Fine-tuned on the forget answers, the tiny model reproduces them; on the retain answers, and before the
    fine-tuning, it does not."""
    formatter, parts = forget10_parts
    sets = TOFU.eval_sets(TofuData(bench_dir), "forget10", include=("forget", "retain"))
    evaluator = TofuEvaluator(formatter, sets, EvalSettings(batch_size=8, progress=False, generate=False))
    memorized = _memorized(tokenizer, parts, tmp_path)
    after = evaluator.evaluate(memorized, n_resamples=0).metrics["sets"]
    before = evaluator.evaluate(make_tiny(tokenizer), n_resamples=0).metrics["sets"]
    assert after["forget"]["exact_memorization"] > 0.7 and after["forget"]["extraction_strength"] > 0.3
    assert before["forget"]["exact_memorization"] < 0.1 and before["forget"]["extraction_strength"] < 0.1
    assert after["retain"]["exact_memorization"] < after["forget"]["exact_memorization"] - 0.3
    rows = evaluator.rows(memorized)["forget"]
    assert all(r["extraction_strength"] <= r["exact_memorization"] for r in rows)  # the final run is of hits
    assert any(r["extraction_strength"] < r["exact_memorization"] for r in rows)
