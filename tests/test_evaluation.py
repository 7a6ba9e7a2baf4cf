"""Batched evaluation equals one-at-a-time evaluation; evaluator rows and aggregates agree; outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unlearn.data.collate import pad_right
from unlearn.data.formatting import ChatFormatter, EncodedSample
from unlearn.errors import DataError
from unlearn.evaluation.generation import GenerationSettings, generate_answers
from unlearn.evaluation.likelihood import batched_sequence_nll, shared_prompt_sequence_nll
from unlearn.io import read_json
from unlearn.objectives.sequence import sequence_stats
from unlearn.runs import RunDirectory, RunResults
from unlearn.tasks.tofu.data import TofuData
from unlearn.tasks.tofu.evaluate import EvalSettings, RetainReference, TofuEvaluator
from unlearn.tasks.tofu.metrics import model_utility_9
from unlearn.tasks.tofu.task import TOFU


@pytest.fixture
def formatter(tokenizer):
    return ChatFormatter(tokenizer)


def assert_equals_one_at_a_time(model, encoded, pad_id, nll, ntok) -> None:
    """(S, |y|) of each sample scored alone, from the full logits, against the batched values."""
    for i, e in enumerate(encoded):
        with torch.no_grad():
            batch = pad_right([e], pad_id)
            stats = sequence_stats(model(input_ids=batch["input_ids"]).logits, batch["labels"])
        assert nll[i] == pytest.approx(float(stats.nll_sum[0]), rel=1e-5)
        assert ntok[i] == int(stats.n_tokens[0])


def test_batched_likelihood_equals_one_at_a_time(tiny_model, formatter, bench_dir):
    records = TofuData(bench_dir).split("full")[:13]
    encoded = formatter.encode_pairs([(r.question, r.answer) for r in records])
    nll, ntok = batched_sequence_nll(tiny_model, encoded, formatter.pad_id, 5, torch.device("cpu"))
    assert_equals_one_at_a_time(tiny_model, encoded, formatter.pad_id, nll, ntok)


@pytest.mark.parametrize("batch_size", [9, 100])
def test_shared_prompt_likelihood_equals_one_at_a_time(tiny_model, formatter, bench_dir, monkeypatch, batch_size):
    """A question's answer, paraphrase and perturbed answers through one prompt encoding: the same S and |y| as
    scoring each sequence alone, with prompts of different lengths left-padded in one batch."""
    records = TofuData(bench_dir).split("retain_perturbed")[:5]
    pairs = [(r.question, a) for r in records for a in (r.answer, r.paraphrased_answer, *r.perturbed_answers)]
    pairs.append(("Who?", records[0].answer))  # a short prompt with a single continuation
    encoded = formatter.encode_pairs(pairs)
    prompt_passes = []
    decoder = tiny_model.get_decoder()
    monkeypatch.setattr(decoder, "forward", lambda *a, _f=decoder.forward, **k: prompt_passes.append(
        k["input_ids"].shape) or _f(*a, **k))
    nll, ntok = shared_prompt_sequence_nll(tiny_model, encoded, formatter.pad_id, batch_size, torch.device("cpu"))
    prompts, continuations = prompt_passes[::2], prompt_passes[1::2]
    assert sum(shape[0] for shape in prompts) == len(records) + 1  # each prompt encoded once
    assert sum(shape[0] for shape in continuations) == len(encoded)
    assert max(shape[0] for shape in continuations) <= batch_size
    assert_equals_one_at_a_time(tiny_model, encoded, formatter.pad_id, nll, ntok)


def test_shared_prompt_likelihood_takes_the_plain_path_for_token_sequences(tiny_model, formatter):
    sequences = [EncodedSample.sequence(ids) for ids in ([5, 6, 7, 8], [5, 6, 9], [4, 3])]
    nll, ntok = shared_prompt_sequence_nll(tiny_model, sequences, formatter.pad_id, 8, torch.device("cpu"))
    assert list(ntok) == [3, 2, 1]
    assert_equals_one_at_a_time(tiny_model, sequences, formatter.pad_id, nll, ntok)


def test_left_padded_batched_generation_equals_single(tiny_model, formatter, tokenizer, bench_dir):
    questions = [r.question for r in TofuData(bench_dir).split("full")[:6]]
    questions[2] = "Who?"  # very different prompt lengths in one batch
    prompts = formatter.encode_prompts(questions)
    settings = GenerationSettings(max_length=60)
    batched = generate_answers(tiny_model, tokenizer, prompts, formatter.eos_id, formatter.pad_id, 6,
                               torch.device("cpu"), settings)
    single = [generate_answers(tiny_model, tokenizer, [p], formatter.eos_id, formatter.pad_id, 1,
                               torch.device("cpu"), settings)[0] for p in prompts]
    assert batched == single
    assert any(batched)
    with pytest.raises(DataError, match=r"eval\.max_length=5"):
        generate_answers(tiny_model, tokenizer, prompts, formatter.eos_id, formatter.pad_id, 2, torch.device("cpu"),
                         GenerationSettings(max_length=5))


@pytest.fixture
def evaluation(tiny_model, formatter, bench_dir):
    sets = TOFU.eval_sets(TofuData(bench_dir), "forget10")
    evaluator = TofuEvaluator(formatter, sets, EvalSettings(batch_size=7, progress=False,
                                                            generation=GenerationSettings(max_length=48)))
    return evaluator.evaluate(tiny_model)


def test_rows_and_aggregates_agree(evaluation):
    rows, metrics = evaluation.samples, evaluation.metrics
    assert set(rows) == {"forget", "retain", "real_authors", "world_facts"}
    for name, kind in (("forget", "forget"), ("retain", "retain"), ("world_facts", "option_normalised")):
        q = [math.exp(sum(r["perturbed_loss"]) / len(r["perturbed_loss"]) - r["paraphrased_loss"]) for r in rows[name]]
        assert [r["truth_ratio"] for r in rows[name]] == pytest.approx(q)
        if kind == "option_normalised":
            probs = [math.exp(-r["gt_loss"]) / (math.exp(-r["gt_loss"])
                                                  + sum(math.exp(-x) for x in r["perturbed_loss"]))
                     for r in rows[name]]
            assert all(r["paraphrased_loss"] == pytest.approx(r["gt_loss"]) for r in rows[name])
        else:
            probs = [math.exp(-r["gt_loss"]) for r in rows[name]]
        assert metrics["sets"][name]["prob"] == pytest.approx(np.mean(probs))
        assert metrics["sets"][name]["rouge"] == pytest.approx(np.mean([r["rougeL_recall"] for r in rows[name]]))
        stat = [min(x, 1 / x) if kind == "forget" else max(0, 1 - 1 / x) for x in q]
        assert metrics["sets"][name]["truth_ratio"] == pytest.approx(np.mean(stat))
    assert metrics["model_utility_9"] == pytest.approx(model_utility_9(metrics["sets"]))
    assert metrics["forget_quality"] is None  # no retain reference given
    assert len(rows["forget"]) == 8 and rows["forget"][0]["id"].endswith("forget10_perturbed.json:0")
    assert all(len(r["perturbed_loss"]) == 5 for r in rows["forget"])


def test_write_eval_and_retain_reference(evaluation, tmp_path, tiny_model, formatter, bench_dir):
    run = RunDirectory(tmp_path / "run")
    TOFU.write(run, evaluation)
    run.write_results(RunResults(task="tofu", metrics=evaluation.metrics))
    metrics = read_json(RunDirectory(tmp_path / "run").metrics_file)
    assert metrics["schema_version"] == 1 and metrics["task"] == "tofu" and metrics["sets"]["forget"]["n"] == 8
    assert run.read_results().metrics == evaluation.metrics
    assert len(RunDirectory(tmp_path / "run").read_eval_rows("forget")) == 8
    assert "eval_log_forget.json" in read_json(RunDirectory(tmp_path / "run").tofu_log_file)
    # the run directory serves as a retain reference: FQ against itself is 1
    sets = TOFU.eval_sets(TofuData(bench_dir), "forget10")
    ref = RetainReference.load(tmp_path / "run")
    evaluator = TofuEvaluator(formatter, sets, EvalSettings(batch_size=8, generate=False, progress=False), ref)
    assert evaluator.evaluate(tiny_model).metrics["forget_quality"] == pytest.approx(1.0)
    # the TOFU-format log alone works too (no questions to compare, counts must match)
    ref_log = RetainReference.load(RunDirectory(tmp_path / "run").tofu_log_file)
    assert ref_log.truth_ratios.tolist() == pytest.approx(ref.truth_ratios.tolist())
    other = TOFU.eval_sets(TofuData(bench_dir), "forget05")
    with pytest.raises(DataError, match="Forget Quality compares the same forget rows"):
        TofuEvaluator(formatter, other, EvalSettings(progress=False), ref)
    ref.questions = list(reversed(ref.questions))
    with pytest.raises(DataError, match="other forget questions"):
        TofuEvaluator(formatter, sets, EvalSettings(progress=False), ref)


def test_evaluator_rejects_too_long_samples(formatter, bench_dir):
    sets = TOFU.eval_sets(TofuData(bench_dir), "forget10")
    with pytest.raises(DataError, match=r"exceed max_length=10 .*forget10_perturbed\.json:0 field 'question' \(the "
                                        r"prompt alone\) has 14 tokens"):
        TofuEvaluator(formatter, sets, EvalSettings(max_length=10, progress=False))
    with pytest.raises(DataError, match=r"exceed max_length=20 .*forget10_perturbed\.json:0 field 'answer'"):
        TofuEvaluator(formatter, sets, EvalSettings(max_length=20, progress=False))
