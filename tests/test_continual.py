"""Continual unlearning (closer-look §5.2): the retain rule and the task grouping by hand, the errors before any
compute, and a tiny run of two tasks for two methods (each task from the previous model, reused when finished)."""

from __future__ import annotations

import pytest

from unlearn.cli import main
from unlearn.config import load_config
from unlearn.data.files import read_raw_rows
from unlearn.errors import ConfigError, DataError
from unlearn.io import read_json, write_jsonl
from unlearn.runs import RunDirectory
from unlearn.scenarios.continual import ContinualConfig, base_retain_split, continual_retain, rows_by_task


def test_base_retain_is_closer_looks_complement():
    assert [base_retain_split(s) for s in ("forget01", "forget05", "forget10")] == ["retain90", "retain50", "retain10"]


def test_retain_of_a_task_is_the_base_plus_every_later_task():
    base = [{"q": "r1"}, {"q": "r2"}]
    tasks = {1: [{"q": "a"}], 2: [{"q": "b"}, {"q": "c"}], 3: [{"q": "d"}]}
    assert continual_retain(base, tasks, 1) == [{"q": "r1"}, {"q": "r2"}, {"q": "b"}, {"q": "c"}, {"q": "d"}]
    assert continual_retain(base, tasks, 2) == [{"q": "r1"}, {"q": "r2"}, {"q": "d"}]
    assert continual_retain(base, tasks, 3) == base  # the last task: nothing left to forget later


def test_tasks_are_grouped_by_task_id_and_bad_rows_are_named(tmp_path):
    good = tmp_path / "forget01.json"
    write_jsonl(good, [{"task_id": "2", "question": "b"}, {"task_id": 1, "question": "a"},
                       {"task_id": "10", "question": "c"}])
    assert {t: [r["question"] for r in rows] for t, rows in rows_by_task(good).items()} == {1: ["a"], 2: ["b"],
                                                                                             10: ["c"]}
    assert list(rows_by_task(good)) == [1, 2, 10]  # numeric order, not string order
    bad = tmp_path / "bad.json"
    write_jsonl(bad, [{"task_id": "1", "question": "a"}, {"question": "b"}])
    with pytest.raises(DataError, match=r"bad\.json: row 1 \(line 2\): field 'task_id' is missing"):
        rows_by_task(bad)
    write_jsonl(bad, [{"task_id": "one", "question": "a"}])
    with pytest.raises(DataError, match="must be an integer"):
        rows_by_task(bad)


def test_scenario_settings_errors():
    with pytest.raises(ConfigError, match="reference must be one of"):
        load_config(ContinualConfig, None, ["reference=initial"])
    with pytest.raises(ConfigError, match="unknown method"):
        load_config(ContinualConfig, None, ["methods=[npo+gd,nop]"])
    with pytest.raises(ConfigError, match="tasks must be at least 1"):
        load_config(ContinualConfig, None, ["tasks=0"])


def test_embedded_continual_layout(bench_dir):
    """The generator's continual/ folder: task 1 is the standard forget split, tasks are equal blocks counted back
    from the end, and the base retain split is everything before them."""
    folder = bench_dir / "continual"
    full = [r for r, _ in read_raw_rows(bench_dir / "full.json")]
    standard = [r for r, _ in read_raw_rows(bench_dir / "forget10.json")]
    tasks = rows_by_task(folder / "forget10.json")
    assert [{"question": r["question"], "answer": r["answer"]} for r in tasks[1]] == standard
    n = len(standard)
    assert all(len(rows) == n for rows in tasks.values())
    retain = [r for r, _ in read_raw_rows(folder / "retain10.json")]
    assert retain == full[: len(full) - n * len(tasks)]
    assert len(tasks) == 9  # closer-look's nine forget10 tasks


def test_continual_run_end_to_end(bench_dir, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "cont"
    args = ["scenario", "continual", f"model={tiny_model_dir}", f"data={bench_dir / 'continual'}",
            "data.forget_split=forget05", "methods=[npo+gd,ga+gd]", "tasks=2", "progress=false", "model.template=qa",
            "train.epochs=1", "train.lr=1e-3", "train.batch_size=4", "train.grad_accum=1", "data.max_length=96",
            "eval.max_length=48", "eval.batch_size=32", "reference=original", f"output_dir={out}"]
    assert main(args) == 0
    result = read_json(out / "continual.json")
    assert result["tasks"] == [1, 2] and result["base_retain"] == "retain50"
    assert set(result["methods"]) == {"npo+gd", "ga+gd"}
    for method in ("npo_gd", "ga_gd"):
        task1, task2 = RunDirectory(out / method / "task_01"), RunDirectory(out / method / "task_02")
        config2 = task2.config_file.read_text()
        assert f"path: {task1.model_dir}" in config2  # task 2 starts from task 1's model
        assert not task1.model_dir.exists() and (task2.model_dir / "config.json").is_file()  # only the latest kept
        # task 1's retain: the base retain split plus task 2..10's rows; task 2's: one task fewer
        retain1 = [r for r, _ in read_raw_rows(out / "data" / "task_01" / "continual_retain.json")]
        retain2 = [r for r, _ in read_raw_rows(out / "data" / "task_02" / "continual_retain.json")]
        assert len(retain1) - len(retain2) == 4 and read_json(task1.metrics_file)["sets"]["forget"]["n"] == 4
    assert f"reference: {tiny_model_dir}" in RunDirectory(out / "npo_gd" / "task_02").config_file.read_text()
    assert "recipe_benchmark: tofu_continual" in RunDirectory(out / "npo_gd" / "task_01").config_file.read_text()
    assert all(r["model_utility_9"] is not None for rows in result["methods"].values() for r in rows)
    assert "## MU" in (out / "continual.md").read_text() and (out / "plots").is_dir()
    stamp = RunDirectory(out / "ga_gd" / "task_02").metrics_file.stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0  # every task finished: nothing is trained again
    assert RunDirectory(out / "ga_gd" / "task_02").metrics_file.stat().st_mtime_ns == stamp
    assert "task 1 of" not in capsys.readouterr().out


def test_continual_tasks_use_closer_looks_continual_recipes_and_tofus_otherwise():
    from unlearn.objectives.methods import build_method

    def weight(benchmark):
        return build_method("me+gd", recipe="auto", benchmark=benchmark, forget_split="forget01").forget_weight

    assert (weight("tofu_continual"), weight("tofu")) == (1.0, 0.1)  # closer-look App. D: §5.2 vs §5.1
    npo = build_method("npo+gd", recipe="auto", benchmark="tofu_continual", forget_split="forget01")
    assert npo.forget.params.beta == 0.1  # no continual recipe of its own: TOFU's
