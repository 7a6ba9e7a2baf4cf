"""Real-world unlearning (closer-look §5.3): the aggregates and the two metric rules that differ from TOFU (CS against
the model's own answer, the generation as NLI premise on both sets) against hand computations, the embedded layout,
the own-answer targets, the errors before any compute, and a tiny end-to-end scenario."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unlearn.cli import main
from unlearn.config import RunConfig, load_config
from unlearn.data.files import read_raw_rows
from unlearn.errors import ConfigError, DataError
from unlearn.io import read_json, write_jsonl
from unlearn.runs import RunDirectory
from unlearn.scenarios.real_world import RealWorldConfig, with_own_answers
from unlearn.tasks.real_world.data import check_layout, read_eval_records
from unlearn.tasks.real_world.task import NO_FORGET_QUALITY, score_real_world
from unlearn.tasks.tofu.evaluate import TextScorer


class MatchEmbedder:
    """Cosine 1 when the generation equals its reference, else 0.25: shows which reference CS used."""

    def similarity(self, texts, references):
        return np.array([1.0 if t == r else 0.25 for t, r in zip(texts, references, strict=True)])


class RecordingNLI:
    """Entails when the premise contains the hypothesis (without its full stop); records every pair it was asked
    about."""

    def __init__(self):
        self.pairs = []

    def entails(self, premises, hypotheses):
        self.pairs += list(zip(premises, hypotheses, strict=True))
        return [h.rstrip(".") in p for p, h in zip(premises, hypotheses, strict=True)]


def _row(question, golden, own, generation, gt_loss, para, perturbed):
    return {"question": question, "answer": golden, "own_answer": own, "generation": generation,
            "generation_tokens": list(range(len(generation.split()))), "gt_loss": gt_loss, "paraphrased_loss": para,
            "perturbed_loss": perturbed}


def test_aggregates_and_metric_rules_match_a_hand_computation():
    forget = [_row("q1", "Ann was born in Oslo.", "Ann was born in Oslo in 1950.", "Ann was born in Oslo in 1950.",
                   0.5, 1.0, [2.0, 2.0]),
              _row("q2", "Ann writes poetry.", "Ann writes poetry.", "I do not know.", 2.0, 1.5, [1.0, 1.0])]
    neighbor = [_row("q3", "Bo is Dutch.", "Bo is Dutch and tall.", "Bo is Dutch.", 0.2, 0.4, [1.4, 1.4]),
                _row("q4", "Bo won a prize.", "Bo won a prize.", "Bo won a prize.", 0.1, 0.3, [0.8, 0.8])]
    scorer = TextScorer(None, "none", "none")
    scorer.embedder, scorer.nli = MatchEmbedder(), RecordingNLI()
    result = score_real_world({"forget": forget, "neighbor": neighbor}, scorer)
    # Entailment: the generation is the premise on BOTH sets (closer-look App. D, real-world); q2's generation has
    # ROUGE 0 against its golden answer and never reaches the classifier
    assert ("Bo is Dutch.", "Bo is Dutch.") in scorer.nli.pairs
    assert ("Ann was born in Oslo in 1950.", "Ann was born in Oslo.") in scorer.nli.pairs
    assert all(p != "Ann writes poetry." for p, _ in scorer.nli.pairs)
    # CS compares with the model's own answer, not the golden one: q1 and q4 match their own answers, q3 does not
    assert [r["cosine_similarity"] for r in forget] == [1.0, 0.25]
    assert [r["cosine_similarity"] for r in neighbor] == [0.25, 1.0]
    m = result.metrics
    # by hand: forget ROUGE-L recall vs golden = (1 + 0)/2; Prob = mean exp(-gt_loss); Q = exp(mean perturbed - para)
    q_forget = [math.exp(2.0 - 1.0), math.exp(1.0 - 1.5)]
    tr_forget = np.mean([min(q, 1 / q) for q in q_forget])
    prob_forget = (math.exp(-0.5) + math.exp(-2.0)) / 2
    fe = 1 - np.mean([0.5, prob_forget, 1 - tr_forget, (1.0 + 0.25) / 2, 0.5])
    assert m["forget_efficacy"] == pytest.approx(fe)
    q_neighbor = [math.exp(1.4 - 0.4), math.exp(0.8 - 0.3)]
    numbers = [1.0, (math.exp(-0.2) + math.exp(-0.1)) / 2, np.mean([max(0, 1 - 1 / q) for q in q_neighbor]),
               np.mean([r["token_entropy"] for r in neighbor]), (0.25 + 1.0) / 2, 1.0]
    assert m["model_utility"] == pytest.approx(len(numbers) / sum(1 / x for x in numbers))
    assert m["forget_quality"] is None and m["unavailable"]["forget_quality"] == NO_FORGET_QUALITY


def test_without_an_nli_model_the_aggregates_are_named_without_es():
    rows = [_row("q", "A b.", "A b.", "A b.", 0.3, 0.5, [1.0])]
    scorer = TextScorer(None, "none", "none")
    scorer.embedder = MatchEmbedder()
    m = score_real_world({"forget": [dict(r) for r in rows], "neighbor": [dict(r) for r in rows]}, scorer).metrics
    assert m["forget_efficacy"] is None and m["model_utility"] is None
    assert m["forget_efficacy_without_es"] is not None and m["model_utility_without_es"] is not None
    assert "ES" in m["unavailable"]


def test_own_answers_replace_the_files_and_empty_ones_keep_it():
    rows = [{"question": "a", "answer": "file a", "golden_answer": "g"}, {"question": "b", "answer": "file b"}]
    out, kept = with_own_answers(rows, {"a": " mine ", "b": "  "})
    assert [r["answer"] for r in out] == ["mine", "file b"] and kept == 1
    assert out[0]["golden_answer"] == "g" and rows[0]["answer"] == "file a"  # the input is not changed


def test_embedded_real_world_layout(bench_dir):
    """Forget: the forget10 authors (task_id per author); neighbors: the block before; utility: the first authors.
    Every golden answer is the benchmark's answer; the three sets of people do not overlap."""
    folder = bench_dir / "real_world"
    check_layout(folder)
    full = [r for r, _ in read_raw_rows(bench_dir / "full.json")]
    forget = [r for r, _ in read_raw_rows(folder / "forget.json")]
    standard = [r for r, _ in read_raw_rows(bench_dir / "forget10.json")]
    assert [(r["question"], r["golden_answer"]) for r in forget] == [(r["question"], r["answer"]) for r in standard]
    assert [r["task_id"] for r in forget] == [1] * 4 + [2] * 4  # 2 authors × 4 questions
    neighbor = [r for r, _ in read_raw_rows(folder / "neighbor.json")]
    assert [r["question"] for r in neighbor] == [r["question"] for r in full[-16:-8]]
    utility = read_eval_records(folder, "neighbor")
    assert [r.question for r in utility] == [r["question"] for r in full[:8]]
    names = [{r["name"] for r in rows} for rows in (forget, neighbor, [r for r, _ in read_raw_rows(
        folder / "neighbor_perturbed.json")])]
    assert all(len(n) == 2 for n in names) and not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    task = (folder / "general" / "fictitious_world_facts.yaml").read_text()
    assert str((folder / "general" / "fictitious_world_facts.jsonl").resolve()) in task


def test_bad_real_world_data_is_one_line_before_any_compute(bench_dir, tmp_path, capsys):
    folder = tmp_path / "rw"
    folder.mkdir()
    for path in (bench_dir / "real_world").glob("*.json"):
        (folder / path.name).write_text(path.read_text())
    rows = [r for r, _ in read_raw_rows(folder / "neighbor_perturbed.json")]
    del rows[3]["golden_answer"]
    write_jsonl(folder / "neighbor_perturbed.json", rows)
    with pytest.raises(DataError, match=r"neighbor_perturbed\.json: row 3 \(line 4\): field 'golden_answer' is "
                                        "missing"):
        check_layout(folder)
    # the scenario stops on it before loading the (here nonexistent) model
    args = ["scenario", "real_world", "model=no/such/model/here", f"data={folder}", f"output_dir={tmp_path / 'o'}"]
    assert main(args) != 0
    assert "field 'golden_answer' is missing" in capsys.readouterr().err and not (tmp_path / "o").exists()
    (folder / "neighbor.json").unlink()
    with pytest.raises(DataError, match=r"neighbor\.json not found"):
        check_layout(folder)
    with pytest.raises(ConfigError, match="targets must be one of"):
        load_config(RealWorldConfig, None, ["targets=golden"])
    cfg = load_config(RunConfig, None, ["task=real_world", f"data={bench_dir / 'real_world'}",
                                        f"eval.retain_reference={tmp_path}"])
    from unlearn.tasks import get_task

    with pytest.raises(ConfigError, match="no Forget Quality"):
        get_task("real_world").check(cfg)


def test_real_world_scenario_end_to_end(bench_dir, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "rw"
    general = bench_dir / "real_world" / "general" / "fictitious_world_facts.yaml"
    lm_eval = [f"eval.lm_eval=[{general}]"] if _has_lm_eval() else []
    args = ["scenario", "real_world", f"model={tiny_model_dir}", f"data={bench_dir / 'real_world'}",
            "methods=[ga+gd,me+gd]", "progress=false", "model.template=qa", "train.epochs=1", "train.lr=1e-3",
            "train.batch_size=4", "data.max_length=96", "eval.max_length=48", "eval.batch_size=32",
            "eval.bootstrap=0", f"output_dir={out}", *lm_eval]
    assert main(args) == 0
    result = read_json(out / "real_world.json")
    assert set(result["methods"]) == {"ga+gd", "me+gd"} and result["targets"]["source"] == "generate"
    # the scenario's provenance names the task its runs were scored by, not the configuration's default (tofu)
    assert result["provenance"]["task"] == {"name": "real_world", "version": 1}
    # the forget set trains on the starting model's own greedy answers (its evaluation generated the same ones)
    trained = [r for r, _ in read_raw_rows(out / "data" / "forget.json")]
    initial_rows = RunDirectory(out / "initial").read_eval_rows("forget")
    for row, evaluated in zip(trained, initial_rows, strict=True):
        assert row["answer"] == (evaluated["generation"].strip() or row["golden_answer"])
        assert evaluated["answer"] == row["golden_answer"] and evaluated["own_answer"] == row["answer"]
    metrics = read_json(RunDirectory(out / "me_gd").metrics_file)
    assert metrics["task"] == "real_world" and metrics["forget_quality"] is None
    assert metrics["sets"]["forget"]["n"] == 8 and metrics["sets"]["neighbor"]["n"] == 8
    assert "forget_weight: 0.5" in RunDirectory(out / "me_gd").config_file.read_text()  # closer-look's real-world α
    if lm_eval:
        assert 0 <= result["methods"]["ga+gd"]["lm_eval"]["fictitious_world_facts"]["acc"] <= 1
    report = (out / "real_world.md").read_text()
    assert "## Table 2 layout" in report and "| initial |" in report
    assert (out / "plots" / "real_world_fe_mu.png").is_file()
    stamp = RunDirectory(out / "ga_gd").metrics_file.stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0  # finished stages and the targets are reused
    assert RunDirectory(out / "ga_gd").metrics_file.stat().st_mtime_ns == stamp
    printed = capsys.readouterr().out
    assert "targets: the starting model answers" not in printed and "ga+gd: unlearning" not in printed


def _has_lm_eval() -> bool:
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        return False
    return True
