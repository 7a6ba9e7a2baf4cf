"""The run directory owns every file of a run: names, typed and versioned results, complete?/clear, stages."""

from __future__ import annotations

import json

import pytest

from unlearn.errors import UnlearnError
from unlearn.experiments.stages import run_stage
from unlearn.runs import SCHEMA_VERSION, RunDirectory, RunInfo, RunResults


def test_results_round_trip_typed_and_versioned(tmp_path):
    run = RunDirectory(tmp_path / "r").create()
    assert not run.is_complete()
    info = RunInfo(stage="unlearn", method={"name": "npo+gd", "forget": {"objective": "npo", "beta": 0.1}},
                   forget_split="forget10", n_forget=8, optimizer_steps=4)
    run.write_results(RunResults(task="tofu", metrics={"sets": {}, "forget_quality": 0.5}, run=info, seconds=1.5))
    assert run.is_complete()
    raw = json.loads(run.metrics_file.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION and raw["task"] == "tofu" and raw["forget_quality"] == 0.5
    assert "resumed_from_step" not in raw["run"]  # unset fields are left out
    back = run.read_results()
    assert back.run == info and back.metrics == {"sets": {}, "forget_quality": 0.5} and back.seconds == 1.5
    assert back.run.objective == "npo" and back.stage == "unlearn"


def test_legacy_results_are_read_and_newer_ones_refused(tmp_path):
    run = RunDirectory(tmp_path).create()
    run.metrics_file.write_text(json.dumps({"sets": {"forget": {}}, "run": {"kind": "finetune", "n_train": 3},
                                            "seconds": 2}))
    old = run.read_results()
    assert (old.schema_version, old.task, old.stage, old.run.n_train) == (0, "tofu", "finetune", 3)
    run.metrics_file.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(UnlearnError, match="newer than this unlearn"):
        run.read_results()
    run.metrics_file.write_text("{not json")
    with pytest.raises(UnlearnError, match="not valid JSON"):
        run.read_results()


def test_clear_removes_only_the_runs_own_files(tmp_path):
    run = RunDirectory(tmp_path / "r").create()
    run.write_config("a: 1\n")
    run.append_train_log({"step": 1})
    run.write_eval_rows("forget", [{"x": 1}])
    run.checkpoint_dir.mkdir()
    (run.path / "notes.txt").write_text("mine")
    run.write_results(RunResults(task="tofu", metrics={}))
    run.clear()
    assert sorted(p.name for p in run.path.iterdir()) == ["notes.txt"]


def test_logs_truncate_for_resume_and_epochs_keep_the_last_row(tmp_path):
    run = RunDirectory(tmp_path).create()
    for step in range(1, 6):
        run.append_train_log({"step": step})
    for epoch in (0, 1, 2, 1):
        run.append_epoch({"epoch": epoch, "v": epoch * 10})
    assert [r["epoch"] for r in run.read_epochs()] == [0, 1, 2]
    run.truncate_logs(step=3, epoch=1)
    assert [r["step"] for r in run.read_train_log()] == [1, 2, 3]
    assert [r["epoch"] for r in run.read_epochs()] == [0, 1]
    run.reset_logs()
    assert run.read_train_log() == [] and run.read_epochs() is None


def test_run_stage_reuses_resumes_or_replaces(tmp_path):
    run = RunDirectory(tmp_path / "s")
    calls = []

    def execute(text):
        def go(resume, overwrite):
            calls.append((text, resume, overwrite))
            if overwrite:
                run.clear()
            run.create().write_config(text)
            run.write_results(RunResults(task="tofu", metrics={}))
        return go

    assert run_stage(run, "cfg A", execute("cfg A")) is True
    assert run_stage(run, "cfg A", execute("cfg A")) is False  # finished with the same config: reused
    run.metrics_file.unlink()  # interrupted with a checkpoint: resumed
    (run.checkpoint_dir).mkdir()
    (run.checkpoint_dir / "state.json").write_text("{}")
    (run.path / "keep.txt").write_text("x")
    assert run_stage(run, "cfg A", execute("cfg A")) is True and (run.path / "keep.txt").exists()
    run.append_train_log({"step": 1})
    assert run_stage(run, "cfg B", execute("cfg B")) is True  # another config: replaced, its files cleared first
    assert run.read_train_log() == [] and (run.path / "keep.txt").exists()
    assert calls == [("cfg A", False, True), ("cfg A", True, False), ("cfg B", False, True)]


def test_atomic_writes_make_ordinary_files_and_never_touch_the_umask(tmp_path):
    import os
    import stat
    import subprocess
    import sys

    import unlearn.io as io

    old = os.umask(0o027)
    try:
        io.write_text(tmp_path / "a.txt", "x")
        with io.atomic_dir(tmp_path / "d") as tmp:
            (tmp / "f").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640  # 0o666 under the umask, not mkstemp's 0o600
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "d"]  # no temporary left behind
    # neither importing nor writing calls os.umask (setting it, even briefly, races with other threads' files)
    probe = ("import os\ndef no(mask): raise SystemExit('os.umask called')\nos.umask = no\nimport unlearn.io as io\n"
             f"io.write_text({str(tmp_path / 'b.txt')!r}, 'z')\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
