"""A command never removes or replaces its own inputs (the model it evaluates, the data, a reference run), removes
only files a run of this toolkit wrote, and says what it removes."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from tests.test_reliability import _error
from unlearn.cli import main
from unlearn.runs import CommandInput, RunDirectory


@pytest.fixture
def common(bench_dir, tiny_model_dir):
    return [f"model={tiny_model_dir}", f"data={bench_dir}", "progress=false", "train.max_steps=2",
            "train.batch_size=4", "train.grad_accum=1", "train.lr=1e-3", "eval.enabled=false", "data.max_length=128"]


def _with(common, **values) -> list[str]:
    keys = {k.replace("__", ".") for k in values}
    return [a for a in common if a.split("=", 1)[0] not in keys] + [f"{k.replace('__', '.')}={v}"
                                                                   for k, v in values.items()]


EVAL = {"eval__enabled": "true", "eval__sets": "[forget]", "eval__generate": "false", "eval__bootstrap": "0"}


def _weights(model_dir: Path) -> bytes:
    return (model_dir / "model.safetensors").read_bytes()


@pytest.fixture
def finished_run(common, tmp_path) -> Path:
    """A finished unlearning run with its saved model."""
    run = tmp_path / "RUN"
    assert main(["run", *_with(common, save_model="true", method="ga+gd"), f"output_dir={run}"]) == 0
    return run


def test_eval_overwrite_into_the_run_keeps_the_model_it_evaluates(capsys, caplog, common, finished_run):
    model = RunDirectory(finished_run).model_dir
    weights = _weights(model)
    args = _with(common, model=model, **EVAL)
    err = _error(capsys, ["eval", *args, f"output_dir={finished_run}"])
    assert "holds a finished run" in err and "it keeps model/, the input model.path" in err
    with caplog.at_level(logging.WARNING, logger="unlearn"):
        assert main(["eval", *args, f"output_dir={finished_run}", "--overwrite"]) == 0
    assert _weights(model) == weights  # the input survived the overwrite
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "removing config.yaml, train_log.jsonl, metrics.json from" in said and "keeps model/" in said
    assert json.loads(RunDirectory(finished_run).metrics_file.read_text())["run"]["stage"] == "eval"


def test_run_overwrite_keeps_the_input_model_and_refuses_to_save_over_it(capsys, common, finished_run):
    model = RunDirectory(finished_run).model_dir
    weights = _weights(model)
    args = _with(common, model=model, method="npo+gd")
    assert main(["run", *_with(args, save_model="false"), f"output_dir={finished_run}", "--overwrite"]) == 0
    assert _weights(model) == weights
    err = _error(capsys, ["run", *_with(args, save_model="true"), f"output_dir={finished_run}", "--overwrite"])
    assert "save_model=true would replace" in err and "model.path" in err
    assert _weights(model) == weights and "npo+gd" in RunDirectory(finished_run).config_file.read_text()
    err = _error(capsys, ["finetune", *_with(args, save_model="true"), f"output_dir={finished_run}", "--overwrite"])
    assert "save_model=true would replace" in err


def test_a_folder_of_the_users_own_model_and_data_is_not_an_earlier_run(capsys, common, bench_dir, tiny_model_dir,
                                                                         tmp_path):
    mine = tmp_path / "mine"
    shutil.copytree(tiny_model_dir, RunDirectory(mine).model_dir)
    shutil.copytree(bench_dir, mine / "data")
    weights = _weights(RunDirectory(mine).model_dir)
    args = _with(common, model=RunDirectory(mine).model_dir, data=mine / "data")
    assert main(["run", *args, f"output_dir={mine}"]) == 0  # no --overwrite needed: nothing there is a run's
    assert _weights(RunDirectory(mine).model_dir) == weights and (mine / "data" / "forget10.json").is_file()
    assert main(["run", *args, f"output_dir={mine}", "--overwrite"]) == 0
    assert _weights(RunDirectory(mine).model_dir) == weights and (mine / "data" / "forget10.json").is_file()


def test_a_model_folder_no_run_wrote_is_never_removed(capsys, common, tiny_model_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, RunDirectory(other).model_dir)  # somebody's model, not this command's input
    for flag in ([], ["--overwrite"]):
        err = _error(capsys, ["run", *common, f"output_dir={other}", *flag])
        assert "holds model/ but no run of unlearn" in err
    assert (RunDirectory(other).model_dir / "model.safetensors").is_file()


def test_output_dir_inside_an_input_run_is_refused(capsys, common, finished_run, tiny_model_dir):
    args = _with(common, **EVAL)
    err = _error(capsys, ["eval", *args, f"eval.retain_reference={finished_run}", f"output_dir={finished_run}",
                          "--overwrite"])
    assert "is (or lies inside)" in err and "eval.retain_reference" in err
    assert RunDirectory(finished_run).metrics_file.is_file()
    err = _error(capsys, ["run", *common, f"output_dir={tiny_model_dir / 'sub'}"])
    assert "model.path" in err and "choose another output_dir" in err


def test_a_symlinked_model_folder_is_unlinked_not_followed(capsys, common, finished_run, tiny_model_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(tiny_model_dir, elsewhere)
    weights = _weights(elsewhere)
    shutil.rmtree(RunDirectory(finished_run).model_dir)
    RunDirectory(finished_run).model_dir.symlink_to(elsewhere, target_is_directory=True)
    assert main(["run", *_with(common, save_model="true"), f"output_dir={finished_run}", "--overwrite"]) == 0
    assert _weights(elsewhere) == weights  # what the link pointed to is untouched
    kept = RunDirectory(finished_run).model_dir
    assert not kept.is_symlink() and (kept / "config.json").is_file()
    # the link pointing at this command's input model: refused, not replaced
    shutil.rmtree(RunDirectory(finished_run).model_dir)
    RunDirectory(finished_run).model_dir.symlink_to(elsewhere, target_is_directory=True)
    err = _error(capsys, ["run", *_with(common, save_model="true", model=elsewhere), f"output_dir={finished_run}",
                          "--overwrite"])
    assert "would replace" in err and _weights(elsewhere) == weights


def test_command_input_touch_rules(tmp_path):
    run = tmp_path / "run"
    model = CommandInput("model.path", RunDirectory(run).model_dir)
    assert model.touched_by(RunDirectory(run).model_dir) and model.touched_by(run)
    assert not model.touched_by(RunDirectory(run).eval_dir)
    assert model.touched_by(RunDirectory(run).model_dir / "config.json")  # read whole
    data = CommandInput("data.root", tmp_path / "data", kind="root")
    assert data.touched_by(tmp_path / "data") and not data.touched_by(tmp_path / "data" / "runs" / "x")
    assert not data.holds(tmp_path / "data" / "runs") and model.holds(RunDirectory(run).model_dir / "sub")
    reference = CommandInput("eval.retain_reference", tmp_path / "retain", kind="run")
    assert reference.holds(tmp_path / "retain") and reference.touched_by(tmp_path / "retain" / "eval")
    assert not reference.holds(RunDirectory(tmp_path / "retain").attacks_dir / "relearn" / "s0")  # an attack's own runs
    RunDirectory(run).model_dir.mkdir(parents=True)
    (run / "eval").mkdir()
    RunDirectory(run).config_file.write_text("x: 1\n")
    directory = RunDirectory(run)
    assert [p.name for p in directory.removable([model])] == [RunDirectory.CONFIG, RunDirectory.EVAL]
    assert [p.name for p, _ in directory.kept_inputs([model])] == ["model"]
    assert [p.name for p in directory.clear([model])] == [RunDirectory.CONFIG, RunDirectory.EVAL]
    assert RunDirectory(run).model_dir.is_dir()


def test_leftover_temporary_copies_of_a_killed_write_are_removed_on_resume(common, tmp_path, monkeypatch):
    from tests.test_reliability import _interrupted_run

    out = tmp_path / "run"
    args = _interrupted_run(common, out, monkeypatch)
    for name in (".checkpoint.k1ll3d.tmp", ".model.k1ll3d.tmp"):
        (out / name).mkdir()
        (out / name / "model.safetensors").write_bytes(b"\0" * 4096)  # as big as the model, in real life
    (out / ".metrics.json.k1ll3d.tmp").write_text("{")
    assert main(["run", *args, "method=npo+gd", f"output_dir={out}", "--resume"]) == 0
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert RunDirectory(out).metrics_file.is_file()


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"),
                                     RuntimeError("[enforce fail at inline_container.cc:783] . PytorchStreamWriter "
                                                  "failed writing file data/3: file write failed")])
def test_a_full_disk_during_a_checkpoint_is_one_line_and_the_previous_checkpoint_resumes(capsys, common, tmp_path,
                                                                                         monkeypatch, failure):
    import torch

    from unlearn.train import checkpoint as ckpt

    out = tmp_path / "run"
    args = _with(common, train__max_steps=3, train__save_every=1)
    real_save, saves = torch.save, []

    def fills_the_disk(obj, f, *a, **k):
        saves.append(f)
        if len(saves) == 2:
            raise failure
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(ckpt.torch, "save", fills_the_disk)
    err = _error(capsys, ["run", *args, f"output_dir={out}"])
    assert err.startswith("error: disk full while writing ") and str(RunDirectory(out).checkpoint_dir) in err
    monkeypatch.undo()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # nothing half-written left
    assert json.loads((RunDirectory(out).checkpoint_dir / "state.json").read_text())["global_step"] == 1
    assert main(["run", *args, f"output_dir={out}", "--resume"]) == 0
    assert json.loads(RunDirectory(out).metrics_file.read_text())["run"]["resumed_from_step"] == 1


def test_resume_after_the_data_changed_is_refused_naming_the_file(capsys, common, bench_dir, tmp_path, monkeypatch):
    from tests.test_reliability import _interrupted_run

    data = tmp_path / "data"
    shutil.copytree(bench_dir, data)
    out = tmp_path / "run"
    args = _interrupted_run(_with(common, data=data), out, monkeypatch)
    rows = [json.loads(line) for line in (data / "forget10.json").read_text().splitlines() if line.strip()]
    rows[0]["answer"] = "Something else entirely."
    (data / "forget10.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    err = _error(capsys, ["run", *args, "method=npo+gd", f"output_dir={out}", "--resume"])
    assert "data file forget10.json changed since the checkpoint" in err
    shutil.copy(bench_dir / "forget10.json", data / "forget10.json")  # the content it trained on: resumes
    assert main(["run", *args, "method=npo+gd", f"output_dir={out}", "--resume"]) == 0


def test_a_split_name_cannot_leave_the_data_root(capsys, common, bench_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(bench_dir, data)
    (tmp_path / "outside").mkdir()
    shutil.copy(bench_dir / "forget10.json", tmp_path / "outside" / "stolen.json")
    args = _with(common, data=data, model=tmp_path / "no_model_needed")
    err = _error(capsys, ["run", *args, "data.forget_split=../outside/stolen", "data.retain_split=retain90"])
    assert "split '../outside/stolen.json' lies outside data.root" in err
    err = _error(capsys, ["finetune", *args, "data.train_splits=[full,../outside/stolen]"])
    assert "lies outside data.root" in err
    err = _error(capsys, ["run", *args, "task=muse_news", "data.forget_split=../../etc/passwd"])
    assert "lies outside data.root" in err
