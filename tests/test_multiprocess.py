"""Multi-process training on Accelerate: two CPU processes (`accelerate launch --multi_gpu --num_processes 2` on a
machine without GPUs: torchrun with gloo) against one, with the same effective batch — the same final weights and
metrics, and different items on the two ranks."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from unlearn.cli import main
from unlearn.data.idk import builtin_idk_templates
from unlearn.data.pairing import pair_forget_items
from unlearn.io import read_json, read_jsonl
from unlearn.runs import RunDirectory
from unlearn.tasks.tofu.data import TofuData

ACCELERATE = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")


def _numbers(value, prefix=""):
    """Every number of a nested metrics value, by its dotted path."""
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in _numbers(sub, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, sub in enumerate(value) for k, v in _numbers(sub, f"{prefix}{i}.").items()}
    return {prefix[:-1]: float(value)} if isinstance(value, (int, float)) and not isinstance(value, bool) else {}


def _kill_every_process_of(marker: str) -> None:
    """SIGKILL every process whose command line holds ``marker`` (Linux /proc)."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


@pytest.mark.skipif(ACCELERATE is None or not Path("/proc/self/cmdline").exists(),
                    reason="needs the accelerate launcher and Linux /proc")
def test_two_processes_give_the_single_process_result(bench_dir, tiny_model_dir, tmp_path):
    args = [f"model={tiny_model_dir}", f"data={bench_dir}", "progress=false", "model.template=qa",
            "data.max_length=96", "eval.max_length=48", "eval.batch_size=16", "eval.bootstrap=0", "method=npo+gd",
            "data.forget_split=forget10", "train.epochs=2", "train.batch_size=2", "train.grad_accum=3",
            "train.lr=1e-3", "train.eval_every_epoch=true", "save_model=true", "eval.embedding_model=none",
            "eval.nli_model=none", "report_to=none"]
    assert main(["run", *args, f"output_dir={tmp_path / 'one'}"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    # `--multi_gpu` is accelerate's torchrun launcher; on a machine without GPUs its processes run on the CPU with the
    # gloo backend (MULTI_CPU). accelerate 1.15's `--cpu --num_processes 2` starts ONE process unless an MPI hostfile
    # is given, which would make this comparison trivially true (the rank logs below prove two ran).
    launch = [ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
              "no", "--dynamo_backend", "no", "-m", "unlearn.cli", "run", *args]
    launched = subprocess.run([*launch, f"output_dir={tmp_path / 'two'}"], env=env, capture_output=True, text=True,
                              timeout=600)
    assert launched.returncode == 0, launched.stderr[-4000:]
    one, two = tmp_path / "one", tmp_path / "two"

    w1, w2 = (load_file(RunDirectory(run).model_dir / "model.safetensors") for run in (one, two))
    assert w1.keys() == w2.keys()
    assert max(float((w1[k] - w2[k]).abs().max()) for k in w1) < 1e-5
    assert not all(torch.equal(w1[k], load_file(tiny_model_dir / "model.safetensors")[k]) for k in w1)  # it trained
    m1, m2 = _numbers(read_json(RunDirectory(one).metrics_file)), _numbers(read_json(RunDirectory(two).metrics_file))
    shared = {k for k in m1.keys() & m2.keys() if not k.startswith(("seconds", "run."))}
    assert shared and all(abs(m1[k] - m2[k]) <= 1e-5 * max(1.0, abs(m1[k])) for k in shared), \
        sorted((k, m1[k], m2[k]) for k in shared if abs(m1[k] - m2[k]) > 1e-5 * max(1.0, abs(m1[k])))[:5]
    # the step's losses and gradient norm as one process logs them (AdamW would hide a wrongly scaled gradient in the
    # weights; the norm does not)
    t1, t2 = read_jsonl(RunDirectory(one).train_log_file), read_jsonl(RunDirectory(two).train_log_file)
    assert len(t1) == len(t2) == 4
    for r1, r2 in zip(t1, t2, strict=True):
        assert r1.keys() == r2.keys() and all(r1[k] == pytest.approx(r2[k], rel=1e-5, abs=1e-6) for k in r1)
    e1, e2 = read_jsonl(RunDirectory(one).epochs_file), read_jsonl(RunDirectory(two).epochs_file)
    assert [r["epoch"] for r in e1] == [r["epoch"] for r in e2] == [0, 1, 2]  # evaluated during training
    for r1, r2 in zip(e1, e2, strict=True):
        n1, n2 = _numbers(r1["sets"]), _numbers(r2["sets"])
        assert n1.keys() == n2.keys() and all(abs(n1[k] - n2[k]) <= 1e-5 * max(1.0, abs(n1[k])) for k in n1)
    assert e1[0]["sets"]["forget"]["prob"] != e1[-1]["sets"]["forget"]["prob"]  # the epochs differ

    # each rank trained on its own micro-batches, so on its own paired retain items
    data = TofuData(bench_dir)
    pairing = pair_forget_items(len(data.forget_split("forget10")), len(data.retain_split("forget10")),
                                len(builtin_idk_templates()), seed=0)
    ranks = [read_jsonl(two / "ranks" / f"rank{r}.jsonl") for r in (0, 1)]
    assert [r["step"] for r in ranks[0]] == [r["step"] for r in ranks[1]] and ranks[0]
    both = 0
    for a, b in zip(*ranks, strict=True):  # steps of 3 micro-batches: 2 + 1; the epoch's last step has 1: 1 + 0
        retain_a = {pairing.retain_index[i] for mb in a["items"] for i in mb}
        retain_b = {pairing.retain_index[i] for mb in b["items"] for i in mb}
        assert retain_a and not retain_a & retain_b
        both += bool(retain_b)
    assert both == 2  # the first step of each epoch
    assert not (one / "ranks").exists()  # one process writes no rank logs

    # interrupted after the first epoch's checkpoint, then resumed with two processes: the same final weights
    three = tmp_path / "three"
    interrupted = subprocess.Popen([*launch, f"output_dir={three}"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    state = RunDirectory(three).checkpoint_dir / "state.json"
    while not state.is_file() and interrupted.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    _kill_every_process_of(f"output_dir={three}")  # torchrun's workers outlive a signal to the launcher's group
    interrupted.wait()
    assert not RunDirectory(three).metrics_file.exists()  # it was stopped before finishing
    resumed = subprocess.run([*launch, f"output_dir={three}", "--resume"], env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert read_json(RunDirectory(three).metrics_file)["run"]["resumed_from_step"] == 2  # epoch 1's two optimizer steps
    w3 = load_file(RunDirectory(three).model_dir / "model.safetensors")
    assert max(float((w1[k] - w3[k]).abs().max()) for k in w1) < 1e-5


def test_more_processes_than_micro_batches_is_one_clear_error():
    from unlearn.errors import ConfigError
    from unlearn.train.loop import LoopSettings, check_processes, check_world_size, epoch_groups

    groups = epoch_groups(16, LoopSettings(batch_size=4, grad_accum=2), 0)
    check_world_size(2, groups)
    with pytest.raises(ConfigError, match="4 processes but an optimizer step has only 2 micro-batches"):
        check_world_size(4, groups)
    grouped = LoopSettings(batch_size=4, grad_accum=2, group_by_length=True)  # checked before any lengths exist
    check_processes(2, 16, grouped)
    with pytest.raises(ConfigError, match="3 processes but an optimizer step has only 2 micro-batches"):
        check_processes(3, 16, grouped)


def test_launch_settings_that_cannot_work_are_one_line_each(monkeypatch):
    import importlib.util

    from unlearn.errors import ConfigError
    from unlearn.train.distributed import check_launch

    check_launch(lora=True, grad_accum=8, env={})  # a single process: nothing to check
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real(name, *a))
    with pytest.raises(ConfigError, match="uses DeepSpeed but deepspeed is not installed"):
        check_launch(False, 2, {"ACCELERATE_USE_DEEPSPEED": "true", "WORLD_SIZE": "2"})
    def found(name, *args):
        return object() if name == "deepspeed" else real(name, *args)
    monkeypatch.setattr(importlib.util, "find_spec", found)
    with pytest.raises(ConfigError, match=r"set train\.grad_accum=2"):
        check_launch(False, 8, {"ACCELERATE_USE_DEEPSPEED": "true", "WORLD_SIZE": "2"})
    check_launch(False, 2, {"ACCELERATE_USE_DEEPSPEED": "true", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="FSDP1 needs fsdp_use_orig_params: true"):
        check_launch(True, 8, {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1"})
    check_launch(True, 8, {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1", "FSDP_USE_ORIG_PARAMS": "true"})
    check_launch(True, 8, {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"})
    check_launch(False, 8, {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1"})  # no LoRA: nothing to shard apart
