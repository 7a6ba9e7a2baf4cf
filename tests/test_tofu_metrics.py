"""TOFU metrics against hand computations (SPEC §4) and against the TOFU authors' published eval logs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.conftest import TOFU_DIR
from unlearn.runs import RunDirectory
from unlearn.tasks.tofu import metrics as M
from unlearn.tasks.tofu.log import load_eval_log, log_from_samples, set_samples_from_log

REF_LOG = RunDirectory(TOFU_DIR / "reference_eval" / "ft_epoch5_lr1e-05_llama2-7b_retain95_wd0.01").tofu_log_file


def test_rouge_l_recall_by_hand():
    # LCS("the cat sat on the mat", "the cat is on the mat") = the cat on the mat = 5 of 6 reference tokens
    got = M.rouge_l_recall(["the cat sat on the mat"], ["the cat is on the mat"])
    assert got[0] == pytest.approx(5 / 6)
    # stemmer on: "cats running" matches "cat run"; punctuation and case ignored
    assert M.rouge_l_recall(["Cats running!"], ["cat run"])[0] == pytest.approx(1.0)
    assert M.rouge_l_recall(["nothing here"], ["cat run"])[0] == 0.0


def test_truth_ratio_probability_and_statistics_by_hand():
    gt = [0.5, 2.0]
    para = [0.4, 1.0]
    pert = [[1.0, 2.0, 3.0], [0.5, 0.7, 0.9]]
    q_hand = []
    for p, row in zip(para, pert, strict=True):
        p_para = math.exp(-p)
        geo = math.prod(math.exp(-x) for x in row) ** (1 / len(row))
        q_hand.append(p_para / geo)
    q = M.truth_ratios(np.array(para), np.array(pert))
    assert q.tolist() == pytest.approx(q_hand)
    assert M.truth_ratio_statistic(q, "forget") == pytest.approx(sum(min(x, 1 / x) for x in q_hand) / 2)
    assert M.truth_ratio_statistic(q, "retain") == pytest.approx(sum(max(0, 1 - 1 / x) for x in q_hand) / 2)
    mc = M.answer_probability(np.array(gt), np.array(pert), "option_normalised")
    hand = [math.exp(-g) / (math.exp(-g) + sum(math.exp(-x) for x in row)) for g, row in zip(gt, pert, strict=True)]
    assert mc.tolist() == pytest.approx(hand)
    assert M.answer_probability(np.array(gt), None, "retain").tolist() == pytest.approx([math.exp(-g) for g in gt])


def test_ragged_perturbed_answers():
    pert = M.as_ragged([[1.0, 3.0], [2.0]])
    assert M.truth_ratios(np.array([1.0, 1.0]), pert).tolist() == pytest.approx([math.exp(1.0), math.exp(1.0)])
    prob = M.answer_probability(np.array([0.0, 0.0]), pert, "option_normalised")
    assert prob[1] == pytest.approx(1 / (1 + math.exp(-2.0)))


def test_forget_quality_ks_p_values():
    a = np.arange(10, dtype=float)
    assert M.forget_quality(a, a) == pytest.approx(1.0)
    # completely separated samples, n = m = 10: exact two-sided P(D = 1) = 2 · 10! 10! / 20!
    exact = 2 * math.factorial(10) ** 2 / math.factorial(20)
    assert M.forget_quality(a, a + 100) == pytest.approx(exact, rel=1e-6)


def test_harmonic_mean_and_model_utility():
    values = [0.5, 0.25, 1.0, 0.8, 0.9, 0.6, 0.7, 0.4, 0.3]
    per_set = {s: {m: values[3 * i + j] for j, m in enumerate(M.UTILITY_METRICS)}
               for i, s in enumerate(M.UTILITY_SETS)}
    assert M.model_utility_9(per_set) == pytest.approx(9 / sum(1 / v for v in values))
    per_set["retain"]["rouge"] = 0.0
    assert M.model_utility_9(per_set) == 0.0
    del per_set["world_facts"]
    assert M.model_utility_9(per_set) is None


def _hand_aggregate(block: dict, kind: str) -> dict:
    """An independent implementation, straight from the JSON dicts, of SPEC §4's per-set numbers."""
    keys = sorted(block["avg_gt_loss"], key=int)
    probs, stats, rouges = [], [], []
    for k in keys:
        gt = block["avg_gt_loss"][k]
        pert = block["average_perturb_loss"][k]
        para = block["avg_paraphrased_loss"][k]
        if kind == "option_normalised":
            probs.append(math.exp(-gt) / (math.exp(-gt) + sum(math.exp(-x) for x in pert)))
        else:
            probs.append(math.exp(-gt))
        q = math.exp(sum(pert) / len(pert) - para)
        stats.append(min(q, 1 / q) if kind == "forget" else max(0.0, 1 - 1 / q))
        rouges.append(block["rougeL_recall"][k])
    n = len(keys)
    return {"prob": sum(probs) / n, "truth_ratio": sum(stats) / n, "rouge": sum(rouges) / n}


def test_scoring_the_tofu_authors_log_matches_hand_computation():
    log = json.loads(REF_LOG.read_text())
    result = M.aggregate(set_samples_from_log(log, str(REF_LOG)))
    kinds = {"eval_log.json": ("retain", "retain"), "eval_log_forget.json": ("forget", "forget"),
             "eval_real_author_wo_options.json": ("real_authors", "option_normalised"),
             "eval_real_world_wo_options.json": ("world_facts", "option_normalised")}
    nine = []
    for key, (name, kind) in kinds.items():
        hand = _hand_aggregate(log[key], kind)
        for metric in ("prob", "truth_ratio", "rouge"):
            assert result["sets"][name][metric] == pytest.approx(hand[metric], rel=1e-9), (name, metric)
        if name != "forget":
            nine += [hand["rouge"], hand["prob"], hand["truth_ratio"]]
    assert result["model_utility_9"] == pytest.approx(len(nine) / sum(1 / v for v in nine), rel=1e-9)
    assert result["sets"]["forget"]["n"] == 10  # the fixture's first 10 rows of the published log
    # Forget Quality of the retain model against itself is 1
    sets = set_samples_from_log(log)
    q = M.truth_ratios(sets["forget"].paraphrased_loss, sets["forget"].perturbed_loss)
    assert M.aggregate(sets, q)["forget_quality"] == pytest.approx(1.0)


def test_our_rows_round_trip_through_the_tofu_layout(tmp_path):
    rows = [{"prompt": "Q: a?", "question": "a?", "answer": "x", "generation": "x", "rougeL_recall": 1.0,
             "gt_loss": 0.5, "gt_tokens": 2, "paraphrased_loss": 0.7, "paraphrased_tokens": 3,
             "perturbed_loss": [1.0, 1.5], "perturbed_tokens": [2, 2], "truth_ratio": 1.0},
            {"prompt": "Q: b?", "question": "b?", "answer": "y", "generation": "z", "rougeL_recall": 0.0,
             "gt_loss": 1.5, "gt_tokens": 4, "paraphrased_loss": 0.2, "paraphrased_tokens": 3,
             "perturbed_loss": [2.0, 0.5], "perturbed_tokens": [2, 5], "truth_ratio": 1.0}]
    log = log_from_samples({"forget": rows})
    assert log["eval_log_forget.json"]["gt_loss"]["1"] == pytest.approx(6.0)
    path = RunDirectory(tmp_path).tofu_log_file
    path.write_text(json.dumps(log))
    back = load_eval_log(tmp_path)["forget"]
    assert back.gt_loss.tolist() == [0.5, 1.5]
    assert back.perturbed_loss.tolist() == [[1.0, 1.5], [2.0, 0.5]]
    assert back.rouge.tolist() == [1.0, 0.0]
