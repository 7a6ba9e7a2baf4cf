"""The CLI: every bad input is one clear error line (exit 2) before any compute; --help everywhere; score."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import TOFU_DIR
from unlearn.cli import main


def _run_error(capsys, args):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.fixture
def base_args(bench_dir, tiny_model_dir, tmp_path):
    return [f"model={tiny_model_dir}", f"data={bench_dir}", f"output_dir={tmp_path / 'out'}", "progress=false"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["method=simnpo+gdx"], "unknown method 'simnpo\\+gdx'"),
     (["data.forget_split=forget07"], "split 'forget07' not found"),
     (["method=npo+kl", "method.reference=none"], "KL regularizer needs a reference model"),
     (["method=npo+gd", "method.reference=none"], "NPO objective needs a reference model"),
     (["data.max_length=8"], "exceed max_length=8"),
     (["forget.betta=1"], "has no parameter\\(s\\) betta"),
     (["train.lr=0"], "train.lr must be positive"),
     (["train.epochs=0"], "train.epochs must be at least 1"),
     (["data.idk_path=/no/such/file.txt", "method=idk+gd"], "file not found")],
)
def test_run_rejects_bad_input_before_compute(capsys, base_args, tmp_path, extra, message):
    err = _run_error(capsys, ["run", *base_args, *extra])
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "out").exists()  # nothing was started, nothing half-written


def test_required_values(capsys, tmp_path):
    assert "model.path is required" in _run_error(capsys, ["run", f"data={tmp_path}"])
    assert "data.root is required" in _run_error(capsys, ["run", "model=x"])
    assert "does not exist" in _run_error(capsys, ["run", "model=x", "data=./nowhere"])


def test_ap_without_idk_templates(capsys, base_args, bench_dir, tmp_path):
    data = tmp_path / "no_idk"
    shutil.copytree(bench_dir, data)
    (data / "idontknow.jsonl").unlink()
    args = [a for a in base_args if not a.startswith("data=")] + [f"data={data}", "method=idk+ap"]
    err = _run_error(capsys, ["run", *args])
    assert "method idk+ap (idk and ap) needs IDK templates" in err and "data.idk_path" in err


def test_empty_forget_set(capsys, base_args, bench_dir, tmp_path):
    data = tmp_path / "empty"
    shutil.copytree(bench_dir, data)
    (data / "forget10.json").write_text("[]")
    args = [a for a in base_args if not a.startswith("data=")] + [f"data={data}"]
    assert "is empty: nothing to unlearn" in _run_error(capsys, ["run", *args])


def test_finetune_and_eval_errors(capsys, base_args):
    assert "split 'retain77' not found" in _run_error(capsys, ["finetune", *base_args, "data.train_splits=retain77"])
    assert "unknown eval set" in _run_error(capsys, ["eval", *base_args, "eval.sets=forget,bogus"])
    assert "did you mean 'unlearn_epochs'" in _run_error(capsys, ["demo", "unlearn_epoch=3"])


def test_help_for_every_command(capsys):
    for command in ("demo", "finetune", "run", "eval", "score", "methods", "tasks", "generate-data", "report",
                    "compare", "study"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: unlearn" in capsys.readouterr().out


def test_methods_lists_the_registry(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("simnpo", "npo", "idk", "dpo", "me", "wga", "gd", "kl", "ap", "task_vector"))
    assert "Recipes" in out and "reference_code (default)" in out and "SimNPO eq. 2" in out


def test_tasks_lists_the_registry(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tofu: ")
    for word in ("forget", "real_authors", "sequence_likelihood", "generation", "forget_quality ", "↑",
                 "eval.retain_reference"):
        assert word in out


def test_unknown_task_and_task_sets(capsys, base_args):
    error = _run_error(capsys, ["eval", *base_args, "task=muze"])
    assert "unknown eval.task 'muze'; did you mean 'muse'" in error and "muse_news" in error and "tofu_mia" in error
    assert "the tofu task has: forget, retain" in _run_error(capsys, ["eval", *base_args, "eval.sets=bogus"])


def test_recipe_errors_before_compute(capsys, base_args, tmp_path):
    err = _run_error(capsys, ["run", *base_args, "method=simnpo+gd", "method.recipe=papr"])
    assert "not a variant" in err and "reference_code, paper" in err
    assert not (tmp_path / "out").exists()
    err = _run_error(capsys, ["run", *base_args, "method=task_vector", "train.lora=true"])
    assert "train.lora=true is not supported" in err


def test_score_published_logs(capsys, tmp_path):
    ref = TOFU_DIR / "reference_eval"
    log95 = ref / "ft_epoch5_lr1e-05_llama2-7b_retain95_wd0.01" / "eval_log_aggregated.json"
    out = tmp_path / "agg.json"
    assert main(["score", "--eval-log", str(log95), "--retain-log", str(log95), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Forget Quality: 1" in printed and "Model Utility (9): 0." in printed
    assert json.loads(out.read_text())["forget_quality"] == pytest.approx(1.0)
    # the Phi retain95 log against the Llama retain95 log: same 200 forget rows, different models
    phi = ref / "ft_epoch5_lr2e-05_phi_retain95_wd0.01" / "eval_log_aggregated.json"
    assert main(["score", "--eval-log", str(phi), "--retain-log", str(log95)]) == 0
    assert "Forget Quality: " in capsys.readouterr().out
    # forget10 (300 rows) vs forget05 (200 rows): refused
    log90 = ref / "ft_epoch5_lr1e-05_llama2-7b_retain90_wd0.01" / "eval_log_aggregated.json"
    assert "Forget Quality compares the same forget rows" in _run_error(
        capsys, ["score", "--eval-log", str(log90), "--retain-log", str(log95)])
    (tmp_path / "junk.json").write_text('{"a": 1}')
    assert "none of the TOFU eval-log keys" in _run_error(capsys, ["score", "--eval-log", str(tmp_path / "junk.json")])
