"""End to end through the CLI on a tiny benchmark: finetune target/retain, unlearn, evaluate, score, demo."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from unlearn.cli import main
from unlearn.io import read_json, read_jsonl
from unlearn.runs import RunDirectory

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
    return ["run", f"model={RunDirectory(out / 'target').model_dir}", *args, f"method={method}", "train.epochs=2",
            "train.batch_size=4", f"eval.retain_reference={out / 'retain'}", f"output_dir={out / name}", *extra]


def test_finetune_writes_models_and_metrics(trained):
    out, _ = trained
    for name in ("retain", "target"):
        assert (RunDirectory(out / name).model_dir / "model.safetensors").is_file()
        metrics = read_json(RunDirectory(out / name).metrics_file)
        assert set(metrics["sets"]) == {"forget", "retain", "real_authors", "world_facts"}
        assert 0 <= metrics["model_utility_9"] <= 1
    assert read_json(RunDirectory(out / "target").metrics_file)["forget_quality"] is not None
    assert read_json(RunDirectory(out / "retain").metrics_file)["forget_quality"] is None
    assert len(read_jsonl(RunDirectory(out / "target").train_log_file)) == 3 * 9  # ceil(135/16) steps × 3 epochs


def test_unlearn_evaluate_score_and_reproduce(trained, capsys):
    out, common = trained
    assert main(_unlearn_args(out, common, "npo+gd", "npo", "train.eval_every_epoch=true", "save_model=true")) == 0
    metrics = read_json(RunDirectory(out / "npo").metrics_file)
    assert 0 < metrics["forget_quality"] <= 1 and metrics["run"]["method"]["name"] == "npo+gd"
    assert metrics["task"] == "tofu" and metrics["run"]["stage"] == "unlearn"
    recipe = metrics["run"]["method"]["recipe"]  # the embedded benchmark is TOFU-layout: TOFU's NPO recipe
    assert recipe["name"] == "tofu/npo:npo_paper" and "Zhang et al." in recipe["source"]
    config = RunDirectory(out / "npo").config_file.read_text()
    assert config.startswith("# Resolved configuration of method npo+gd") and "beta: 0.1" in config
    epochs = read_jsonl(RunDirectory(out / "npo").epochs_file)
    assert [e["epoch"] for e in epochs] == [0, 1, 2] and all("forget_quality" in e for e in epochs)
    target = read_json(RunDirectory(out / "target").metrics_file)
    for name, values in target["sets"].items():  # epoch 0 is the starting (target) model
        expected = {k: v for k, v in values.items() if k != "ci95"}
        assert epochs[0]["sets"][name] == pytest.approx(expected, rel=1e-5)
    final = {name: {k: v for k, v in m.items() if k != "ci95"} for name, m in metrics["sets"].items()}
    assert epochs[-1]["sets"] == final  # the last per-epoch evaluation is the final model
    assert len(epochs[1]["forget_logp"]) == len(epochs[1]["forget_tokens"]) == 8
    assert all("ci95" in m for m in metrics["sets"].values())
    rows = RunDirectory(out / "npo").read_eval_rows("forget")
    assert len(rows) == 8
    assert {"question", "answer", "generation", "truth_ratio", "prob", "rougeL_recall"} <= set(rows[0])
    # evaluating the saved model separately gives the same numbers
    assert main(["eval", f"model={RunDirectory(out / 'npo').model_dir}", *common,
                 f"eval.retain_reference={out / 'retain'}", f"output_dir={out / 'npo_eval'}", "task=tofu"]) == 0
    again = read_json(RunDirectory(out / "npo_eval").metrics_file)
    for name, values in metrics["sets"].items():
        expected = {k: v for k, v in values.items() if k != "ci95"}
        assert {k: v for k, v in again["sets"][name].items() if k != "ci95"} == pytest.approx(expected, rel=1e-5)
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
    assert read_json(RunDirectory(out / "npo_again").metrics_file)["sets"] == metrics["sets"]


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
    metrics = read_json(RunDirectory(out / name).metrics_file)
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
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "demo").rglob(RunDirectory.METRICS)}
    assert main(args) == 0  # everything is reused
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "demo").rglob(RunDirectory.METRICS)}
    assert before == after
    assert read_json(tmp_path / "demo" / "summary.json")["rows"][2]["forget_quality"] == summary["rows"][2][
        "forget_quality"]


def test_rescore_saved_generations_with_an_nli_model(trained, tokenizer, tmp_path):
    from tests.test_closer_look import tiny_nli

    out, _ = trained
    tiny_nli(tokenizer, tmp_path / "nli")
    assert main(["eval", "--from-generations", str(out / "target"), f"eval.nli_model={tmp_path / 'nli'}",
                 f"output_dir={tmp_path / 'rescored'}", "progress=false"]) == 0
    before = read_json(RunDirectory(out / "target").metrics_file)
    after = read_json(RunDirectory(tmp_path / "rescored").metrics_file)
    assert before["closer_look"]["forget_efficacy"] is None and "ES" in before["closer_look"]["unavailable"]
    assert after["closer_look"]["forget_efficacy"] is not None and after["closer_look"]["model_utility_18"] is not None
    for name in ("forget", "retain"):  # model-dependent numbers are carried over unchanged
        for metric in ("prob", "truth_ratio", "rouge", "cosine_similarity"):
            assert after["sets"][name][metric] == pytest.approx(before["sets"][name][metric])
    assert after["forget_quality"] == pytest.approx(before["forget_quality"])
    rows = RunDirectory(tmp_path / "rescored").read_eval_rows("retain")
    assert {r["entailment"] for r in rows} <= {0.0, 1.0}
    assert after["sets"]["retain"]["entailment"] == pytest.approx(np.mean([r["entailment"] for r in rows]))
    assert RunDirectory(tmp_path / "rescored").report_file.is_file()


def test_runs_write_reports(trained):
    out, _ = trained
    report = RunDirectory(out / "target").report_file.read_text()
    assert "## TOFU metrics" in report and "## Closer-look metrics" in report
    assert not RunDirectory(out / "target").checkpoint_dir.exists()  # dropped once the results are written


def test_cheap_per_epoch_evaluation(trained):
    out, common = trained
    assert main(_unlearn_args(out, common, "lwga+gd", "lwga", "train.eval_every_epoch=true",
                              "eval.generate_every_epoch=false")) == 0
    epochs = read_jsonl(RunDirectory(out / "lwga").epochs_file)
    assert [e["epoch"] for e in epochs] == [0, 1, 2]
    assert "rouge" not in epochs[1]["sets"]["forget"] and "prob" in epochs[1]["sets"]["forget"]
    assert epochs[1]["forget_quality"] is not None and epochs[1]["model_utility_9"] is None
    final = read_json(RunDirectory(out / "lwga").metrics_file)
    assert "rouge" in final["sets"]["forget"]  # the final evaluation generates


def test_a_chosen_epoch_rebuilt_as_a_run_of_its_own(trained):
    """train.stop_after_epoch=1 of a 2-epoch run: a complete run whose final evaluation is the full run's epoch-1
    row, metric for metric (so a sweep's chosen epoch can be saved, scored and attacked)."""
    out, common = trained
    assert main(_unlearn_args(out, common, "ga+gd", "ga_full", "train.eval_every_epoch=true")) == 0
    assert main(_unlearn_args(out, common, "ga+gd", "ga_epoch1", "train.stop_after_epoch=1",
                              "save_model=true")) == 0
    epoch1 = read_jsonl(RunDirectory(out / "ga_full").epochs_file)[1]
    stopped = read_json(RunDirectory(out / "ga_epoch1").metrics_file)
    assert stopped["run"]["optimizer_steps"] == epoch1["step"] == 2
    assert stopped["forget_quality"] == pytest.approx(epoch1["forget_quality"], rel=1e-9)
    assert stopped["model_utility_9"] == pytest.approx(epoch1["model_utility_9"], rel=1e-9)
    for name, values in epoch1["sets"].items():
        for metric, value in values.items():
            if isinstance(value, float):
                assert stopped["sets"][name][metric] == pytest.approx(value, rel=1e-9, abs=1e-12), (name, metric)
    final = read_json(RunDirectory(out / "ga_full").metrics_file)
    assert final["sets"]["forget"]["prob"] != pytest.approx(stopped["sets"]["forget"]["prob"], rel=1e-6)
    assert RunDirectory(out / "ga_epoch1").model_dir.is_dir()


def test_separate_reference_model(trained):
    """method.reference=PATH: NPO's cached log-probs and KL's frozen reference come from another model."""
    out, common = trained
    args = _unlearn_args(out, common, "npo+kl", "npo_other_ref",
                         f"method.reference={RunDirectory(out / 'retain').model_dir}", "eval.enabled=false")
    assert main(args) == 0
    metrics = read_json(RunDirectory(out / "npo_other_ref").metrics_file)
    assert metrics["run"]["optimizer_steps"] == 4
    beta = metrics["run"]["method"]["forget"]["beta"]
    # Before the first update a self-reference gives KL = 0 and NPO = (2/β)·log 2 exactly; the retain model must not.
    first = json.loads(RunDirectory(out / "npo_other_ref").train_log_file.read_text().splitlines()[0])
    assert first["retain_loss"] > 1e-4
    assert abs(first["forget_loss"] - 2 / beta * math.log(2)) > 1e-3


def test_task_vector_end_to_end(trained):
    """A weight-edit method writes a normal run directory with TOFU metrics, and its weights are exactly
    θ₀ − α·(θ_ft − θ₀) with θ_ft the same fine-tuning on the forget split done by `unlearn finetune`."""
    from safetensors.torch import load_file

    out, common = trained
    assert main(_unlearn_args(out, common, "task_vector", "tv", "forget.alpha=2.0", "save_model=true",
                              "train.eval_every_epoch=true")) == 0
    metrics = read_json(RunDirectory(out / "tv").metrics_file)
    assert metrics["run"]["stage"] == "unlearn" and metrics["run"]["method"]["kind"] == "weight_edit"
    assert metrics["run"]["method"]["edit"] == {"method": "task_vector", "alpha": 2.0}
    assert metrics["forget_quality"] is not None and set(metrics["sets"]) == {"forget", "retain", "real_authors",
                                                                             "world_facts"}
    assert [e["epoch"] for e in read_jsonl(RunDirectory(out / "tv").epochs_file)] == [0, 1, 2]
    tv = RunDirectory(out / "tv")
    assert tv.report_file.is_file() and "alpha: 2.0" in tv.config_file.read_text()
    # the same fine-tuning on the forget split, done separately
    args = [a for a in _unlearn_args(out, common, "ga", "ft_forget")[1:] if not a.startswith(("method=",
                                                                                               "eval.retain"))]
    assert main(["finetune", *args, "data.train_splits=forget10", "save_model=true", "eval.enabled=false"]) == 0
    theta0 = load_file(str(RunDirectory(out / "target").model_dir / "model.safetensors"))
    tuned = load_file(str(RunDirectory(out / "ft_forget").model_dir / "model.safetensors"))
    edited = load_file(str(RunDirectory(out / "tv").model_dir / "model.safetensors"))
    assert set(edited) == set(theta0)
    changed = 0
    for name, w0 in theta0.items():
        expected = w0 - 2.0 * (tuned[name] - w0)
        assert torch.allclose(edited[name], expected, atol=1e-6), name
        changed += int(not torch.equal(tuned[name], w0))
    assert changed > 0
