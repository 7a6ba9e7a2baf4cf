"""lm-evaluation-harness passthrough (issue: WMDP and MMLU …): ``task=lm_eval:<task>`` on a tiny local task file
offline, its accuracy against a hand computation, results joining another task's metrics.json and report
(``eval.lm_eval``), and the errors before any model is loaded."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from unlearn.config import RunConfig, load_config
from unlearn.errors import ConfigError
from unlearn.experiments.evaluate import run_evaluation
from unlearn.models.loading import load_model_and_tokenizer
from unlearn.runs import RunDirectory
from unlearn.tasks.lm_eval import harness
from unlearn.tasks.lm_eval.task import format_harness

pytest.importorskip("lm_eval", reason="the [lm-eval] extra (installed by `make install`)")

DOCS = [{"question": "Who wrote the book", "choices": ["the author", "a river", "blue", "seven"], "answer": 0},
        {"question": "The author was born in", "choices": ["1950", "a city", "the book", "red"], "answer": 1},
        {"question": "Her father was a", "choices": ["doctor", "teacher", "pilot", "farmer"], "answer": 2},
        {"question": "The book is about", "choices": ["love", "war", "the sea", "time"], "answer": 3},
        {"question": "She won the", "choices": ["award", "race", "game", "prize"], "answer": 0}]


def write_task(folder: Path, name: str = "tiny_local_mc", data: str | None = None) -> Path:
    data_file = folder / f"{name}.jsonl"
    if data is None:
        data_file.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    yaml = folder / f"{name}.yaml"
    yaml.write_text(f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data or data_file}\n"
                    "test_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{question}}\"\n"
                    "doc_to_choice: \"{{choices}}\"\ndoc_to_target: answer\nmetric_list:\n  - metric: acc\n")
    return yaml


def hand_scores(model_dir: Path) -> list[list[float]]:
    """lm-eval's multiple-choice scores by hand: context = the question, continuation = " " + choice, log p summed
    over the continuation's tokens, one plain forward pass per option."""
    model, tokenizer = load_model_and_tokenizer(str(model_dir))
    model.eval()
    out = []
    for doc in DOCS:
        scores = []
        for choice in doc["choices"]:
            context = tokenizer(doc["question"])["input_ids"]  # the tokenizer's own BOS, as lm-eval encodes
            whole = tokenizer(doc["question"] + " " + choice)["input_ids"]
            continuation = whole[len(context):]
            ids = torch.tensor([context + continuation])
            with torch.no_grad():
                logp = model(ids).logits.log_softmax(-1)[0]
            scores.append(sum(float(logp[len(context) - 1 + i, t]) for i, t in enumerate(continuation)))
        out.append(scores)
    return out


def hand_accuracy(model_dir: Path) -> float:
    scores = hand_scores(model_dir)
    return sum(max(range(4), key=s.__getitem__) == d["answer"] for s, d in zip(scores, DOCS, strict=True)) / len(DOCS)


def test_local_task_file_runs_offline_and_matches_a_hand_computation(tmp_path, tiny_model_dir):
    task_file = write_task(tmp_path)
    cfg = load_config(RunConfig, overrides=[f"task=lm_eval:{task_file}", f"model={tiny_model_dir}",
                                    f"output_dir={tmp_path / 'run'}", "eval.batch_size=2"])
    run = run_evaluation(cfg)
    metrics = json.loads(RunDirectory(run).metrics_file.read_text())
    assert metrics["task"] == f"lm_eval:{task_file}"
    result = metrics["lm_eval"]["tiny_local_mc"]
    assert result["n"] == len(DOCS)
    assert result["acc"] == pytest.approx(hand_accuracy(tiny_model_dir))
    rows = RunDirectory(run).read_eval_rows("lm_eval_tiny_local_mc")
    assert len(rows) == len(DOCS)
    hand = hand_scores(tiny_model_dir)
    for row in rows:  # every option's log-likelihood, not only the accuracy
        assert [r[0] for r in row["filtered_resps"]] == pytest.approx(hand[row["doc_id"]], abs=1e-4)
    report = RunDirectory(run).report_file.read_text()
    assert "| tiny_local_mc | acc |" in report


def test_harness_results_join_another_tasks_metrics_and_report(tmp_path, tiny_model_dir):
    root = tmp_path / "wmdp"
    root.mkdir()
    (root / "bio_questions.json").write_text(json.dumps(DOCS))
    task_file = write_task(tmp_path)
    cfg = load_config(RunConfig, overrides=["task=wmdp_bio", f"data={root}", f"model={tiny_model_dir}",
                                    f"output_dir={tmp_path / 'run'}", f"eval.lm_eval=[{task_file}]",
                                    "eval.bootstrap=0"])
    run = run_evaluation(cfg)
    metrics = json.loads(RunDirectory(run).metrics_file.read_text())
    assert metrics["n"] == len(DOCS) and 0 <= metrics["accuracy"] <= 1
    assert metrics["lm_eval"]["tiny_local_mc"]["acc"] == pytest.approx(hand_accuracy(tiny_model_dir))
    assert all(RunDirectory(run).eval_rows_file(name).is_file() for name in ("wmdp_bio", "lm_eval_tiny_local_mc"))
    assert "## General capability (lm-evaluation-harness)" in RunDirectory(run).report_file.read_text()


def test_errors_come_before_the_model_is_loaded(tmp_path, monkeypatch):
    absent_model = f"model={tmp_path / 'no_model_here'}"  # loading it would fail with another error

    def evaluate(task: str) -> None:
        run_evaluation(load_config(RunConfig, overrides=[f"task={task}", absent_model, f"output_dir={tmp_path / 'r'}"]))

    with pytest.raises(ConfigError, match=r"unknown task 'arc_chalenge'; close matches: arc_challenge"):
        evaluate("lm_eval:arc_chalenge")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # deterministic whatever the network: the hub is never asked
    with pytest.raises(ConfigError, match=r"arc_challenge needs allenai/ai2_arc \(ARC-Challenge\): it is not in the "
                                          r"local Hugging Face cache and HF_HUB_OFFLINE is set"):
        evaluate("lm_eval:arc_challenge")
    with pytest.raises(ConfigError, match=r"task file .*nope.yaml not found"):
        evaluate(f"lm_eval:{tmp_path / 'nope.yaml'}")
    missing = write_task(tmp_path, "missing_data", data=str(tmp_path / "gone.jsonl"))
    with pytest.raises(ConfigError, match=r"missing_data needs local json data .*gone.jsonl\): its data file .*"
                                          r"gone.jsonl does not exist\.$"):
        evaluate(f"lm_eval:{missing}")
    assert not (tmp_path / "r").exists()


def test_training_on_a_harness_task_is_refused(tmp_path):
    from unlearn.experiments.unlearning import run_unlearning

    cfg = load_config(RunConfig, overrides=["task=lm_eval:arc_challenge", "model=x", "method=ga"])
    with pytest.raises(ConfigError, match=r"only evaluates .* eval.lm_eval"):
        run_unlearning(cfg)


def test_missing_lm_eval_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # import lm_eval now raises ImportError
    with pytest.raises(ConfigError, match=r"optional lm-eval package, which is not installed .*llm-unlearn\[lm-eval\]"):
        harness.import_lm_eval()


def test_results_are_tidied_and_formatted():
    raw = {"results": {"gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.25,
                                 "exact_match_stderr,strict-match": 0.05, "acc,none": 0.5, "acc_stderr,none": 0.1}},
           "n-samples": {"gsm8k": {"original": 1319, "effective": 8}}}
    tidy = harness.tidy_results(raw)
    assert tidy == {"gsm8k": {"exact_match (strict-match)": 0.25, "exact_match_stderr (strict-match)": 0.05,
                              "acc": 0.5, "acc_stderr": 0.1, "n": 8}}
    table = format_harness(tidy)
    assert "| gsm8k | exact_match (strict-match) | 0.2500 | 0.0500 | 8 |" in table
    assert "| gsm8k | acc | 0.5000 | 0.1000 | 8 |" in table
    assert harness.split_specs("lm_eval:arc_challenge, gsm8k") == ["arc_challenge", "gsm8k"]
