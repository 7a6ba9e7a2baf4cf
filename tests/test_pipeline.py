"""End to end through the CLI on a tiny benchmark: finetune target/retain, unlearn, evaluate, score, demo."""

from __future__ import annotations

import json

import pytest

from unlearn.cli import main
from unlearn.io import read_json, read_jsonl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bench_dir, tiny_model_dir):
    """Retain and target models fine-tuned from the same tiny init (module-scoped: built once)."""
    out = tmp_path_factory.mktemp("pipeline")
    common = [f"data={bench_dir}", "progress=false", "eval.max_length=48", "eval.batch_size=32",
              "train.epochs=3", "train.lr=3e-3", "train.batch_size=16", "train.grad_accum=1", "data.max_length=96",
              "save_model=true", "model.template=qa"]
    assert main(["finetune", f"model={tiny_model_dir}", *common, "data.train_splits=retain90,real_authors,world_facts",
                 f"output_dir={out / 'retain'}"]) == 0
    assert main(["finetune", f"model={tiny_model_dir}", *common, "data.train_splits=full,real_authors,world_facts",
                 f"eval.retain_reference={out / 'retain'}", f"output_dir={out / 'target'}"]) == 0
    return out, common


def _unlearn_args(out, common, method, name, *extra):
    args = [a for a in common if not a.startswith(("train.epochs", "save_model"))]
    return ["run", f"model={out / 'target' / 'model'}", *args, f"method={method}", "train.epochs=2",
            "train.batch_size=4", f"eval.retain_reference={out / 'retain'}", f"output_dir={out / name}", *extra]


def test_finetune_writes_models_and_metrics(trained):
    out, _ = trained
    for name in ("retain", "target"):
        assert (out / name / "model" / "model.safetensors").is_file()
        metrics = read_json(out / name / "metrics.json")
        assert set(metrics["sets"]) == {"forget", "retain", "real_authors", "world_facts"}
        assert 0 <= metrics["model_utility_9"] <= 1
    assert read_json(out / "target" / "metrics.json")["forget_quality"] is not None
    assert read_json(out / "retain" / "metrics.json")["forget_quality"] is None
    assert len(read_jsonl(out / "target" / "train_log.jsonl")) == 3 * 9  # ceil(135/16) steps × 3 epochs


def test_unlearn_evaluate_score_and_reproduce(trained, capsys):
    out, common = trained
    assert main(_unlearn_args(out, common, "npo+gd", "npo", "train.eval_every_epoch=true", "save_model=true")) == 0
    metrics = read_json(out / "npo" / "metrics.json")
    assert 0 < metrics["forget_quality"] <= 1 and metrics["run"]["method"]["name"] == "npo+gd"
    epochs = read_jsonl(out / "npo" / "epochs.jsonl")
    assert [e["epoch"] for e in epochs] == [1, 2] and all("forget_quality" in e for e in epochs)
    assert epochs[-1]["sets"] == metrics["sets"]  # the last per-epoch evaluation is the final model
    rows = read_jsonl(out / "npo" / "eval" / "forget.jsonl")
    assert len(rows) == 8
    assert {"question", "answer", "generation", "truth_ratio", "prob", "rougeL_recall"} <= set(rows[0])
    # evaluating the saved model separately gives the same numbers
    assert main(["eval", f"model={out / 'npo' / 'model'}", *common, f"eval.retain_reference={out / 'retain'}",
                 f"output_dir={out / 'npo_eval'}"]) == 0
    again = read_json(out / "npo_eval" / "metrics.json")
    for name, values in metrics["sets"].items():
        assert again["sets"][name] == pytest.approx(values, rel=1e-5), name
    assert again["forget_quality"] == pytest.approx(metrics["forget_quality"], rel=1e-5)
    # unlearn score on the run's TOFU-format log reproduces the aggregates
    capsys.readouterr()
    assert main(["score", "--eval-log", str(out / "npo"), "--retain-log", str(out / "retain"),
                 "--json", str(out / "score.json")]) == 0
    scored = json.loads((out / "score.json").read_text())
    assert scored["forget_quality"] == pytest.approx(metrics["forget_quality"])
    assert scored["model_utility_9"] == pytest.approx(metrics["model_utility_9"])
    # the same command twice gives the same metrics
    assert main(_unlearn_args(out, common, "npo+gd", "npo_again", "train.eval_every_epoch=true")) == 0
    assert read_json(out / "npo_again" / "metrics.json")["sets"] == metrics["sets"]


@pytest.mark.parametrize(
    ("method", "extra"),
    [("simnpo+gd", ["train.lora=true", "train.lr=1e-2"]),
     ("npo+kl", ["retain.kl_positions=all_padded"]),
     ("me+gd", ["forget.me_scope=all_positions", "forget.me_direction=uniform_to_model"]),
     ("dpo+ap", []),
     ("idk+ap", ["eval.enabled=false"])],
)
def test_other_methods_run(trained, method, extra):
    out, common = trained
    name = method.replace("+", "_")
    assert main(_unlearn_args(out, common, method, name, *extra)) == 0
    metrics = read_json(out / name / "metrics.json")
    assert metrics["run"]["method"]["name"] == method
    assert metrics["run"]["optimizer_steps"] == 4  # 8 forget items, batch 4, 2 epochs
    if "eval.enabled=false" not in extra:
        assert metrics["forget_quality"] is not None


def test_demo_end_to_end_and_resume(tmp_path, capsys):
    args = ["demo", f"output_dir={tmp_path / 'demo'}", "n_authors=20", "questions_per_author=3", "finetune_epochs=2",
            "unlearn_epochs=1", "hidden_size=32", "num_layers=1", "intermediate_size=64", "vocab_size=300",
            "methods=npo+gd,idk+ap", "progress=false", "eval_batch_size=32"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| target |" in printed and "| idk+ap |" in printed
    summary = read_json(tmp_path / "demo" / "summary.json")
    assert [r["model"] for r in summary["rows"]] == ["target", "retain", "npo+gd", "idk+ap"]
    assert all(r["model_utility_9"] is not None for r in summary["rows"])
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "demo").rglob("metrics.json")}
    assert main(args) == 0  # everything is reused
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "demo").rglob("metrics.json")}
    assert before == after
    assert read_json(tmp_path / "demo" / "summary.json")["rows"][2]["forget_quality"] == summary["rows"][2][
        "forget_quality"]
