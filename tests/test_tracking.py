"""Experiment trackers (`report_to`): the flattening by hand, TensorBoard offline end to end, and the error when a
tracker's package is missing."""

from __future__ import annotations

import pytest

from unlearn.cli import main
from unlearn.io import read_jsonl
from unlearn.runs import RunDirectory
from unlearn.train.tracking import flat_config, flat_numbers


def test_flat_numbers_and_config_by_hand():
    metrics = {"sets": {"forget": {"rouge": 0.5, "n": 8, "ci95": {"rouge": [0.1, 0.9]}}}, "forget_quality": None,
               "model_utility_9": 0.25, "flag": True, "name": "x", "inf": float("inf")}
    assert flat_numbers(metrics, "eval") == {"eval/sets/forget/rouge": 0.5, "eval/sets/forget/n": 8.0,
                                             "eval/model_utility_9": 0.25}
    assert flat_config({"train": {"lr": 1e-3, "splits": ["a", "b"]}, "seed": 0, "x": None}) == {
        "train.lr": 1e-3, "train.splits": "['a', 'b']", "seed": 0, "x": "None"}


def test_tensorboard_logs_every_step_and_epoch_offline(bench_dir, tiny_model_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    assert main(["finetune", f"model={tiny_model_dir}", f"data={bench_dir}", "progress=false", "model.template=qa",
                 "data.train_splits=retain90", "train.epochs=2", "train.lr=3e-3", "train.batch_size=16",
                 "train.grad_accum=1", "data.max_length=96", "eval.max_length=48", "eval.batch_size=32",
                 "train.eval_every_epoch=true", "eval.generate_every_epoch=false", "report_to=tensorboard",
                 f"output_dir={out}"]) == 0
    events = EventAccumulator(str(out / "tracking" / out.name)).Reload()  # Accelerate: project_dir/<run name>
    logged = [(e.step, e.value) for e in events.Scalars("loss")]
    train_log = read_jsonl(RunDirectory(out).train_log_file)
    assert [s for s, _ in logged] == [r["step"] for r in train_log]
    assert [v for _, v in logged] == pytest.approx([r["loss"] for r in train_log], rel=1e-6)
    assert len(events.Scalars("eval/sets/forget/prob")) == 3  # epochs 0, 1, 2


def test_a_missing_tracker_is_one_line_before_compute(bench_dir, tiny_model_dir, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    import importlib.util

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    assert main(["finetune", f"model={tiny_model_dir}", f"data={bench_dir}", "report_to=wandb",
                 f"output_dir={tmp_path / 'w'}"]) == 2
    err = capsys.readouterr().err
    assert "report_to=wandb: the wandb package is not installed" in err and err.count("\n") == 1
    assert not (tmp_path / "w").exists()
    assert main(["finetune", f"model={tiny_model_dir}", f"data={bench_dir}", "report_to=comet"]) == 2
