"""Nothing lost, nothing mixed, nothing silently wrong: bad inputs and faults, each one clear line (exit 2) before
any model is loaded when the check needs no model, and no run directory ever left half old, half new."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import pytest

from tests.conftest import TOFU_DIR
from unlearn.cli import main
from unlearn.errors import DataError
from unlearn.io import atomic_dir
from unlearn.runs import RunDirectory
from unlearn.tasks.tofu.evaluate import RetainReference
from unlearn.train.checkpoint import Checkpoint, CheckpointError


def _error(capsys, args) -> str:
    capsys.readouterr()  # forget what earlier commands printed
    code = main(args)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2, err
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]) and "Traceback" not in err, err
    return errors[0]


@pytest.fixture
def common(bench_dir, tiny_model_dir):
    """Fast runs: a few optimizer steps, no evaluation unless a test turns it on."""
    return [f"model={tiny_model_dir}", f"data={bench_dir}", "progress=false", "train.max_steps=2",
            "train.batch_size=4", "train.grad_accum=1", "train.lr=1e-3", "eval.enabled=false", "data.max_length=128"]


@pytest.fixture
def not_a_model(tmp_path) -> str:
    """A model path that exists but holds no model: reaching the model loader would fail with another message, so
    an expected config error proves the check ran before any model was loaded."""
    path = tmp_path / "empty_model"
    path.mkdir()
    return str(path)


# ------------------------------------------------------------------------------------------ data loss
def test_demo_fresh_deletes_only_a_demo_and_only_after_validation(capsys, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    err = _error(capsys, ["demo", "--fresh", f"output_dir={mine}"])
    assert "holds no demo" in err and (mine / "thesis.tex").read_text() == "years of work"
    assert "holds no demo" in _error(capsys, ["demo", f"output_dir={mine}"])  # without --fresh too: no mixing
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "demo_config.yaml").write_text("seed: 0\n")
    (demo / "summary.md").write_text("old")
    (demo / "notes.txt").write_text("mine")
    assert "did you mean 'unlearn_epochs'" in _error(capsys, ["demo", "--fresh", f"output_dir={demo}",
                                                            "unlearn_epoch=3"])
    assert (demo / "summary.md").read_text() == "old"  # validation failed: nothing deleted


def test_finished_run_is_refused_and_overwrite_removes_the_old_results_first(capsys, common, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert main(["run", *common, "method=ga+gd", f"output_dir={out}"]) == 0
    finished = RunDirectory(out).metrics_file.read_text()
    err = _error(capsys, ["run", *common, "method=npo+gd", f"output_dir={out}"])
    assert "holds a finished run" in err and "--overwrite" in err
    assert RunDirectory(out).metrics_file.read_text() == finished
    assert "ga+gd" in RunDirectory(out).config_file.read_text()
    assert "holds a finished run" in _error(capsys, ["eval", *common, "eval.enabled=true", f"output_dir={out}"])
    assert RunDirectory(out).metrics_file.read_text() == finished
    # an overwrite that fails (NaN) must not leave the old results beside the new config
    import unlearn.objectives.forget as F

    monkeypatch.setattr(F, "npo_loss", lambda *a, **k: F.ga_loss(a[0]) * float("nan"))
    assert "loss became nan" in _error(capsys, ["run", *common, "method=npo+gd", f"output_dir={out}", "--overwrite"])
    assert not RunDirectory(out).metrics_file.exists() and "npo+gd" in RunDirectory(out).config_file.read_text()
    monkeypatch.undo()
    assert main(["run", *common, "method=npo+gd", f"output_dir={out}", "--overwrite"]) == 0
    assert json.loads(RunDirectory(out).metrics_file.read_text())["run"]["method"]["name"] == "npo+gd"


def test_unwritable_output_dir_is_one_line_before_the_model_loads(capsys, common, not_a_model, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    args = [a for a in common if not a.startswith("model=")] + [f"model={not_a_model}"]
    assert "is a file, not a directory" in _error(capsys, ["run", *args, f"output_dir={blocker}"])
    assert "not writable" in _error(capsys, ["run", *args, f"output_dir={blocker / 'sub'}"])


def _interrupted_run(common, out, monkeypatch, method="npo+gd"):
    """A run killed after training (during the final evaluation): a checkpoint, no metrics.json."""
    from unlearn.tasks.tofu import evaluate as tofu_eval

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tofu_eval.TofuEvaluator, "evaluate", killed)
    args = [a for a in common if a != "eval.enabled=false"] + ["eval.generate=false", "eval.bootstrap=0"]
    assert main(["run", *args, f"method={method}", f"output_dir={out}"]) == 130
    monkeypatch.undo()
    assert (RunDirectory(out).checkpoint_dir / "state.json").is_file() and not RunDirectory(out).metrics_file.exists()
    return args


def test_resume_is_refused_without_a_checkpoint_or_under_another_config(capsys, common, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    assert "has no checkpoint" in _error(capsys, ["run", *common, f"output_dir={empty}", "--resume"])
    done = tmp_path / "done"
    assert main(["run", *common, "method=ga+gd", f"output_dir={done}"]) == 0
    assert "the run finished" in _error(capsys, ["run", *common, "method=ga+gd", f"output_dir={done}", "--resume"])

    out = tmp_path / "killed"
    args = _interrupted_run(common, out, monkeypatch)
    config = RunDirectory(out).config_file.read_text()
    err = _error(capsys, ["run", *args, "method=ga+gd", f"output_dir={out}"])
    assert "unfinished run with a checkpoint at step 2" in err and "--resume" in err
    err = _error(capsys, ["run", *args, "method=ga+gd", f"output_dir={out}", "--resume"])
    assert "belongs to another configuration" in err and "method.name: 'npo+gd' in the checkpoint, 'ga+gd' now" in err
    err = _error(capsys, ["run", *args, "method=npo+gd", "forget.beta=0.3", f"output_dir={out}", "--resume"])
    assert "forget.beta: 0.1 in the checkpoint, 0.3 now" in err
    assert RunDirectory(out).config_file.read_text() == config  # nothing rewritten before the refusal
    assert main(["run", *args, "method=npo+gd", f"output_dir={out}", "--resume"]) == 0
    metrics = json.loads(RunDirectory(out).metrics_file.read_text())
    assert metrics["run"]["resumed_from_step"] == 2 and not RunDirectory(out).checkpoint_dir.exists()


def test_killed_while_swapping_checkpoints_keeps_the_previous_one(tmp_path, monkeypatch):
    target = RunDirectory(tmp_path).checkpoint_dir
    with atomic_dir(target) as tmp:
        (tmp / "state.json").write_text(json.dumps({"global_step": 1, "epoch": 0, "group": 1, "settings": {}}))
    real_replace, calls = os.replace, []

    def dies_on_the_second_rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dies_on_the_second_rename)
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        (tmp / "state.json").write_text(json.dumps({"global_step": 2, "epoch": 0, "group": 2, "settings": {}}))
    monkeypatch.undo()
    assert not target.exists()  # the kill left no checkpoint in place ...
    checkpoint = Checkpoint(target)
    assert checkpoint.exists() and checkpoint.read_state()["global_step"] == 1  # ... and the old one comes back


def test_damaged_checkpoint_files_are_one_line_naming_the_file(capsys, common, tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = _interrupted_run(common, out, monkeypatch)
    optim = RunDirectory(out).checkpoint_dir / "optim.pt"
    optim.write_bytes(optim.read_bytes()[:100])
    err = _error(capsys, ["run", *args, "method=npo+gd", f"output_dir={out}", "--resume"])
    assert "optim.pt: damaged optimizer state" in err
    (RunDirectory(out).checkpoint_dir / "state.json").write_text("{ not json")
    err = _error(capsys, ["run", *args, "method=npo+gd", f"output_dir={out}", "--resume"])
    assert "state.json: damaged checkpoint state" in err
    with pytest.raises(CheckpointError, match=r"state\.json"):
        Checkpoint(RunDirectory(out).checkpoint_dir).read_state()


# ------------------------------------------------------------------------------------------ wrong numbers
def test_forget_quality_refuses_a_reference_of_other_rows(tmp_path, common, capsys):
    ref_dir = tmp_path / "ref"
    args = [a for a in common if a != "eval.enabled=false"] + ["eval.generate=false", "eval.bootstrap=0"]
    assert main(["eval", *args, f"output_dir={ref_dir}"]) == 0
    reference = RetainReference.load(ref_dir)
    rows = RunDirectory(ref_dir).read_eval_rows("forget")
    questions, answers = [r["question"] for r in rows], [r["answer"] for r in rows]
    reference.check_matches(questions, answers)
    with pytest.raises(DataError, match="other forget answers"):
        reference.check_matches(questions, answers[1:] + answers[:1])
    with pytest.raises(DataError, match="same forget rows"):
        reference.check_matches(questions[:-1], answers[:-1])


def test_score_compares_the_rows_of_two_tofu_logs(capsys, tmp_path):
    ref = TOFU_DIR / "reference_eval"
    llama = RunDirectory(ref / "ft_epoch5_lr1e-05_llama2-7b_retain95_wd0.01").tofu_log_file
    phi = RunDirectory(ref / "ft_epoch5_lr2e-05_phi_retain95_wd0.01").tofu_log_file
    assert main(["score", "--eval-log", str(phi), "--retain-log", str(llama)]) == 0  # same rows, other model
    log = json.loads(llama.read_text())
    log["eval_log_forget.json"]["generated_text"]["7"][2] = "A different author altogether."
    other = tmp_path / "other.json"
    other.write_text(json.dumps(log))
    err = _error(capsys, ["score", "--eval-log", str(other), "--retain-log", str(llama)])
    assert "other forget answers (row 7" in err
    log["eval_log_forget.json"]["avg_gt_loss"]["3"] = "n/a"
    other.write_text(json.dumps(log))
    assert "avg_gt_loss: row 3 is 'n/a', not a number" in _error(capsys, ["score", "--eval-log", str(other)])


@pytest.mark.parametrize(
    ("override", "message"),
    [("forget.beta=0", r"forget\.beta \(npo\) must be > 0, got 0"),
     ("forget.beta=-0.5", r"forget\.beta \(npo\) must be > 0, got -0\.5"),
     ("forget.beta=abc", r"forget\.beta \(npo\) must be a number, got 'abc'")],
)
def test_objective_parameters_are_checked_when_the_method_is_built(capsys, common, not_a_model, override, message):
    args = [a for a in common if not a.startswith("model=")] + [f"model={not_a_model}"]
    assert __import__("re").search(message, _error(capsys, ["run", *args, "method=npo+gd", override]))


@pytest.mark.parametrize(
    ("method", "override", "key"),
    [("simnpo+gd", "forget.beta=0", "forget.beta (simnpo)"), ("simnpo+gd", "forget.gamma=-1", "forget.gamma"),
     ("dpo+gd", "forget.beta=0", "forget.beta (dpo)"), ("idk+ap", "retain.beta=0", "retain.beta (ap)"),
     ("task_vector", "forget.alpha=0", "forget.alpha")],
)
def test_every_beta_like_parameter_has_a_range(capsys, common, not_a_model, method, override, key):
    args = [a for a in common if not a.startswith("model=")] + [f"model={not_a_model}"]
    assert key in _error(capsys, ["run", *args, f"method={method}", override])


@pytest.mark.parametrize(
    ("override", "message"),
    [("eval.forget_rows=-5", "eval.forget_rows must be at least 1"),
     ("train.warmup_epochs=-3", "train.warmup_epochs must be ≥ 0"),
     ("train.seed=-1", "train.seed must be ≥ 0"),
     ("train.lora_r=0", "train.lora_r must be at least 1"),
     ("eval.temperature=0", "eval.temperature must be positive"),
     ("train.mixed_precision=fp16", "train.mixed_precision must be one of auto, no, bf16"),
     ("model.template=alpaca", "model.template must be one of"),
     ("eval.sets=forget,bogus", "unknown eval set(s) ['bogus']"),
     ("eval.batch_size=0", "eval.batch_size must be at least 1"),
     ("seed=1", "did you mean 'train.seed'"),
     ("eval.retain_reference=/no/such/run", "eval.retain_reference '/no/such/run' does not exist"),
     ("method.reference=/no/such/model", "method.reference path '/no/such/model' does not exist")],
)
def test_bad_settings_fail_before_the_model_loads(capsys, common, not_a_model, override, message):
    args = [a for a in common if not a.startswith(("model=", "eval.enabled"))] + [f"model={not_a_model}"]
    method = ["method=npo+gd"] if override.startswith("method.reference") else []
    err = _error(capsys, ["run", *args, *method, override])
    assert message in err, err


def test_a_reference_for_a_method_that_uses_none_is_a_warning(capsys, common, tiny_model_dir, tmp_path):
    assert main(["run", *common, "method=ga+gd", f"method.reference={tiny_model_dir}",
                 f"output_dir={tmp_path / 'r'}"]) == 0
    assert "warning: method.reference=" in capsys.readouterr().err


def test_duplicates_and_overlap_warn_and_fail_under_strict(capsys, common, bench_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(bench_dir, data)
    retain = (data / "retain90.json").read_text().splitlines()
    forget = (data / "forget10.json").read_text().splitlines()
    (data / "retain90.json").write_text("\n".join([*retain, forget[0], retain[0]]) + "\n")
    args = [a for a in common if not a.startswith("data=")] + [f"data={data}"]
    assert main(["run", *args, "method=ga+gd", f"output_dir={tmp_path / 'warned'}"]) == 0
    err = capsys.readouterr().err
    assert "1 forget row(s) also appear in the retain split" in err and "forget10.json:0 = " in err
    assert "1 question(s) of the retain split appear more than once" in err
    err = _error(capsys, ["run", *args, "method=ga+gd", f"output_dir={tmp_path / 'strict'}", "--strict"])
    assert "appear" in err and "data.strict=true" in err


# ------------------------------------------------------------------------------------------ unclear errors
def test_mistyped_paths_say_so_at_once(capsys, common, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    base = [a for a in common if not a.startswith("model=")]
    assert "model path 'm/nosuch' does not exist" in _error(capsys, ["run", *base, "model=m/nosuch"])
    err = _error(capsys, ["run", *base, "model=dd/data"])
    assert "not a local path" in err and "tried it as a Hugging Face hub name" in err and "HF_HUB_OFFLINE" in err
    base = [a for a in common if not a.startswith("data=")]
    err = _error(capsys, ["run", *base, "data=dd/data"])
    assert "data.root 'dd/data' is not a local directory" in err and "Hugging Face dataset name" in err
    assert "data.root './dd/data' does not exist" in _error(capsys, ["run", *base, "data=./dd/data"])


def test_non_utf8_data_names_the_file_and_line(capsys, common, bench_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(bench_dir, data)
    raw = (data / "forget10.json").read_bytes().split(b"\n")
    raw[2] = raw[2][:20] + "\xf6".encode("latin-1") + raw[2][20:]
    (data / "forget10.json").write_bytes(b"\n".join(raw))
    args = [a for a in common if not a.startswith("data=")] + [f"data={data}"]
    err = _error(capsys, ["run", *args, f"output_dir={tmp_path / 'o'}"])
    assert "forget10.json: not UTF-8 text (line 3" in err


def test_a_too_long_question_is_blamed_on_the_question(capsys, common, bench_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(bench_dir, data)
    rows = [json.loads(line) for line in (data / "forget10.json").read_text().splitlines()]
    rows[1]["question"] = "Tell me " + "very " * 200 + "much?"
    (data / "forget10.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = [a for a in common if not a.startswith("data=")] + [f"data={data}"]
    err = _error(capsys, ["run", *args, "method=ga", f"output_dir={tmp_path / 'o'}"])
    assert "forget10.json:1 field 'question' (the prompt alone)" in err


def test_truncated_gguf_names_the_file(capsys, common, tmp_path):
    model = RunDirectory(tmp_path).model_dir
    model.mkdir()
    (model / "weights.gguf").write_bytes(b"GGUF\x03\x00\x00\x00truncated")
    base = [a for a in common if not a.startswith("model=")]
    err = _error(capsys, ["run", *base, f"model={model}", f"output_dir={tmp_path / 'o'}"])
    assert "weights.gguf" in err


def test_generate_data_onto_a_file_or_someones_directory(capsys, tmp_path):
    target = tmp_path / "file.json"
    target.write_text("[]")
    assert "is a file" in _error(capsys, ["generate-data", str(target)])
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    assert "is not empty" in _error(capsys, ["generate-data", str(busy)])
    assert main(["generate-data", str(tmp_path / "new"), "--authors", "20", "--questions", "2"]) == 0
    assert main(["generate-data", str(tmp_path / "new"), "--authors", "20", "--questions", "2"]) == 0  # its own


def test_library_deprecation_chatter_is_silenced_but_ours_is_not():
    from unlearn.experiments.common import quiet_libraries

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_libraries()
        warnings.warn_explicit("old API", FutureWarning, "modeling_utils.py", 1, module="transformers.modeling_utils")
        warnings.warn_explicit("old API", FutureWarning, "tuners.py", 1, module="peft.tuners")
        warnings.warn_explicit("renamed key", FutureWarning, "parsing.py", 1, module="unlearn.config.parsing")
    assert [str(w.message) for w in seen] == ["renamed key"]


def test_every_run_file_name_is_spelled_only_in_runs_py():
    """The package and its tests name a run's files through RunDirectory; only runs.py (and the tests of runs.py
    itself, which pin the layout) spell them."""
    root = Path(__file__).resolve().parents[1]
    files = [*(root / "src" / "unlearn").rglob("*.py"), *(root / "tests").glob("test_*.py")]
    names = [q + n + q for n in ("metrics.json", "epochs.jsonl", "train_log.jsonl", "config.yaml", "report.md",
                                 "checkpoint", "generated_answers.json") for q in "\"'"]
    own = {"runs.py", "test_runs.py", Path(__file__).name}
    hits = [f"{p.relative_to(root)}: {n}" for p in files if p.name not in own
            for n in names if n in p.read_text(encoding="utf-8")]
    assert not hits, hits
