"""`sweep.launcher=slurm`: one job per grid run through submitit, tested with submitit's local executor (real
processes); a sweep whose jobs die resumes them when it is run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unlearn.cli import main
from unlearn.errors import ConfigError
from unlearn.runs import RunDirectory
from unlearn.sweeps.slurm import SlurmConfig, check_slurm, executor_for, executor_parameters

pytest.importorskip("submitit", reason="submitit is the [slurm] extra (in dev)")


def test_sbatch_options_are_checked_against_submitits(tmp_path):
    with pytest.raises(ConfigError, match=r"sweep.slurm.options.acount: not an option submitit's SLURM executor "
                                          r"knows; known: .*account"):
        check_slurm(SlurmConfig(options={"acount": "x"}))
    with pytest.raises(ConfigError, match=r"sweep.slurm.options.partition: set it with its own key"):
        check_slurm(SlurmConfig(options={"partition": "gpu"}))
    params = executor_parameters(SlurmConfig(partition="gpu", gpus_per_job=2, time_min=30, array_parallelism=4,
                                             options={"account": "lab"}), "t")
    assert params == {"name": "t", "timeout_min": 30, "gpus_per_node": 2, "slurm_array_parallelism": 4,
                      "slurm_partition": "gpu", "slurm_account": "lab"}
    assert executor_for(SlurmConfig(cluster="local", gpus_per_job=0), tmp_path, "t").cluster == "local"
    with pytest.raises(ConfigError, match=r"sweep.slurm.cluster must be one of slurm, local"):
        SlurmConfig(cluster="pbs")


def test_the_slurm_launcher_without_submitit_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if not installed
    assert main(["sweep", "model=m", "data=d", "method=ga+gd", "train.lr=1e-3,2e-3", f"output_dir={tmp_path / 's'}",
                 "sweep.launcher=slurm"]) == 2
    err = capsys.readouterr().err
    assert err == "error: sweep.launcher=slurm needs submitit: pip install 'llm-unlearn[slurm]'\n"
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs process groups")
def test_jobs_killed_mid_run_resume_when_the_sweep_runs_again(bench_dir, tiny_model_dir, tmp_path):
    out, retain = tmp_path / "sweep", tmp_path / "retain"
    common = [f"model={tiny_model_dir}", f"data={bench_dir}", "progress=false", "model.template=qa",
              "data.max_length=96", "eval.max_length=48", "eval.batch_size=32", "eval.bootstrap=0"]
    assert main(["eval", *common, f"output_dir={retain}"]) == 0
    args = ["sweep", *common, f"eval.retain_reference={retain}", "method=ga+gd", "train.lr=1e-3,3e-3",
            "train.epochs=3", "train.batch_size=2", "train.grad_accum=1", "train.save_every=2",
            "train.eval_every_epoch=true",
            "sweep.launcher=slurm", "sweep.slurm.cluster=local", "sweep.slurm.gpus_per_job=0",
            f"output_dir={out}"]
    driver = subprocess.Popen([sys.executable, "-m", "unlearn.cli", *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300

    def checkpoints() -> list[Path]:
        runs = sorted((out / "runs").glob("*")) if (out / "runs").is_dir() else []
        return [p for p in runs if (RunDirectory(p).checkpoint_dir / "state.json").is_file()]

    while not checkpoints() and driver.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(driver.pid, signal.SIGKILL)  # the sweep and its jobs die (the local jobs are its children)
    driver.wait()
    killed = [p for p in checkpoints() if not RunDirectory(p).metrics_file.exists()]
    assert killed, "no job was caught mid-run"
    time.sleep(1)  # the killed jobs' processes are gone
    assert main(args) == 0  # the same sweep again: only the unfinished runs are submitted, and they resume
    for run in killed:
        metrics = json.loads(RunDirectory(run).metrics_file.read_text())
        assert metrics["run"]["resumed_from_step"] > 0
    result = json.loads((out / "sweep.json").read_text())
    assert len(result["runs"]) == 2 and set(result["chosen"]) == {"ga+gd"}
    assert list((out / "slurm").glob("*")), "submitit's job files and logs"
