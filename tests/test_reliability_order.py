"""Checks that need the tokenizer or the model's configuration, but not its weights, run before the weights load:
lengths against the model's context, the number of processes against the micro-batches. A model folder without its
weights file proves the order — reaching the weights would fail with another message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.test_reliability import _error
from unlearn.tasks.muse.embedded import generate_news_benchmark


@pytest.fixture
def weightless(tiny_model_dir, tmp_path) -> Path:
    """The tiny model's tokenizer and config (256 positions), without model.safetensors."""
    out = tmp_path / "weightless"
    shutil.copytree(tiny_model_dir, out)
    (out / "model.safetensors").unlink()
    assert json.loads((out / "config.json").read_text())["max_position_embeddings"] == 256
    return out


@pytest.fixture
def common(bench_dir, weightless):
    return [f"model={weightless}", f"data={bench_dir}", "progress=false", "train.max_steps=2", "train.batch_size=4",
            "train.grad_accum=1", "eval.enabled=false", "data.max_length=128"]


def test_the_weights_would_fail_to_load(capsys, common):
    assert "could not load model" in _error(capsys, ["run", *common])  # so every error below came before them


def test_eval_max_length_beyond_the_context_is_refused_before_generation(capsys, common):
    for command in ("run", "eval", "finetune"):
        err = _error(capsys, [command, *common, "eval.enabled=true", "eval.max_length=1000"])
        assert "eval.max_length=1000 (prompt + generated tokens) exceeds the context" in err and "256 positions" in err


def test_chunk_length_beyond_the_context_is_refused(capsys, weightless, tmp_path):
    news = generate_news_benchmark(tmp_path / "news", n_forget=4, n_retain=4, n_holdout=4, seed=0)
    args = [f"model={weightless}", f"data={news}", "task=muse_news", "progress=false", "eval.enabled=false",
            "data.retain_split=privleak/retain2", "data.max_length=1000"]
    assert "data.max_length=1000 (the text chunk length) exceeds the context" in _error(capsys, ["run", *args])


def test_a_qa_sample_longer_than_the_context_is_refused(capsys, common, bench_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(bench_dir, data)
    rows = [json.loads(line) for line in (data / "forget10.json").read_text().splitlines() if line.strip()]
    rows[0]["answer"] = " ".join(["The author wrote many books about the sea."] * 40)
    (data / "forget10.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = [a for a in common if not a.startswith(("data=", "data.max_length"))] + [f"data={data}",
                                                                                     "data.max_length=2000"]
    err = _error(capsys, ["run", *args])
    assert "a training item has" in err and "more than the 256 positions" in err


def test_more_processes_than_micro_batches_is_refused_before_the_weights(capsys, common, monkeypatch):
    from unlearn.experiments import pipeline

    class FourProcesses:
        num_processes, is_main_process = 4, True

    monkeypatch.setattr(pipeline, "process_state", lambda: FourProcesses())
    err = _error(capsys, ["run", *common, "method=ga+gd"])
    assert "4 processes but an optimizer step has only 1 micro-batch" in err


@pytest.mark.parametrize("override", ["train.lr=inf", "method.forget_weight=inf", "train.warmup_epochs=.inf",
                                      "train.lr=nan", "method.retain_weight=-.inf"])
def test_infinite_numbers_are_refused_naming_the_key(capsys, common, override):
    key = override.split("=")[0]
    err = _error(capsys, ["run", *common, override])
    assert f"{key} must be a finite number" in err or f"{key} must be a non-negative number" in err


def test_continual_tasks_beyond_the_file_are_refused(capsys, common, bench_dir):
    args = [a for a in common if not a.startswith("data=")] + [f"data={bench_dir / 'continual'}"]
    err = _error(capsys, ["scenario", "continual", *args, "tasks=99"])
    assert "tasks=99" in err and "holds 9 tasks" in err


def test_yaml_errors_are_one_line(capsys, common, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text('train:\n  lr: !!python/object/apply:os.system ["echo owned"]\n')
    for command in ("run", "demo", "sweep"):
        err = _error(capsys, [command, "-c", str(config)])
        assert "not valid YAML" in err and "at line 2, column 7" in err and "never read" in err
    task = tmp_path / "broken_task.yaml"
    task.write_text("task: mine\ndataset_path: [unclosed\n")
    pytest.importorskip("lm_eval")
    err = _error(capsys, ["eval", *common, "eval.enabled=true", f"eval.lm_eval=[{task}]"])
    assert f"lm_eval: task file {task} cannot be read" in err and "at line 3, column 1" in err


def test_a_bad_wmdp_corpus_row_is_named_before_the_weights(capsys, weightless, tmp_path):
    wmdp = tmp_path / "wmdp"
    wmdp.mkdir()
    (wmdp / "bio_questions.json").write_text(json.dumps([{"question": "q", "choices": ["a", "b", "c", "d"],
                                                          "answer": 0}]))
    corpus = tmp_path / "forget.jsonl"
    corpus.write_text('{"text": "a forget text"}\n{"text": oops}\n')
    args = [f"model={weightless}", f"data={wmdp}", "task=wmdp_bio", "method=ga", "progress=false",
            "eval.enabled=false", "data.max_length=64", f"data.forget_corpus={corpus}"]
    err = _error(capsys, ["run", *args])
    assert "data.forget_corpus" in err and "forget.jsonl: line 2 is not valid JSON" in err
