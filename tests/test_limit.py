"""`--limit N` (lm-evaluation-harness's convention): the first N rows of every set, for smoke tests only; every
result says "limited — not comparable"."""

from __future__ import annotations

import json

import pytest
import yaml

from unlearn.cli import main
from unlearn.config import RunConfig, load_config
from unlearn.errors import ConfigError
from unlearn.experiments.plan import plan_evaluation, plan_unlearning
from unlearn.runs import LIMITED, RunDirectory

SMALL = ["progress=false", "train.max_steps=1", "train.batch_size=2", "train.grad_accum=1", "data.max_length=96",
         "eval.max_length=40", "eval.generate=false"]


def test_the_limit_caps_every_eval_set_of_the_task():
    tofu = plan_unlearning(load_config(RunConfig, None, ["method.name=ga+gd", "limit=3", "eval.option_rows=2"])).cfg
    e = tofu.eval
    assert (e.forget_rows, e.retain_rows, e.option_rows) == (3, 3, 2)  # a smaller cap stays
    assert e.max_rows == {"forget": 3, "retain": 3, "real_authors": 3, "world_facts": 3}
    muse = plan_evaluation(load_config(RunConfig, None, ["eval.task=muse_news", "limit=4",
                                                         "eval.max_rows.verbmem_forget=2"])).cfg
    assert muse.eval.max_rows["verbmem_forget"] == 2 and muse.eval.max_rows["knowmem_retain"] == 4
    unlimited = plan_unlearning(load_config(RunConfig, None, ["method.name=ga+gd"])).cfg
    assert unlimited.eval.max_rows == {} and unlimited.eval.forget_rows == 300


@pytest.mark.parametrize("value", ["0", "-1", "x", "2.5"])
def test_a_limit_that_is_not_a_positive_integer_is_one_line(capsys, tmp_path, bench_dir, tiny_model_dir, value):
    out = tmp_path / "run"
    assert main(["run", f"model={tiny_model_dir}", f"data={bench_dir}", "method=ga+gd", f"output_dir={out}",
                 "--limit", value]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --limit must be a positive integer (the first N rows of each set), got {value!r}\n"
    assert not out.exists()
    with pytest.raises(ConfigError, match="limit must be a positive integer"):
        load_config(RunConfig, None, ["limit=0"])


def test_a_limited_run_trains_and_evaluates_the_first_rows_and_says_so(capsys, tmp_path, bench_dir,
                                                                       tiny_model_dir):
    out = tmp_path / "run"
    assert main(["run", f"model={tiny_model_dir}", f"data={bench_dir}", "method=ga+gd", f"output_dir={out}",
                 *SMALL, "--limit", "3"]) == 0
    assert LIMITED in capsys.readouterr().out
    run = RunDirectory(out)
    metrics = json.loads(run.metrics_file.read_text())
    assert metrics["limited"]["limit"] == 3 and metrics["limited"]["note"].startswith(LIMITED)
    assert metrics["run"]["n_forget"] == 3  # trained on the first 3 forget rows
    assert {name: s["n"] for name, s in metrics["sets"].items()} == {"forget": 3, "retain": 3, "real_authors": 3,
                                                                     "world_facts": 3}
    assert metrics["provenance"]["limit"] == 3
    config = yaml.safe_load(run.config_file.read_text())
    assert config["limit"] == 3 and config["eval"]["forget_rows"] == 3
    assert run.report_file.read_text().startswith(f"**{LIMITED}")
    assert main(["compare", str(out), "--examples", "0"]) == 0
    assert f"ga+gd ({LIMITED})" in capsys.readouterr().out
    # an evaluation too
    assert main(["eval", f"model={tiny_model_dir}", f"data={bench_dir}", f"output_dir={tmp_path / 'eval'}",
                 *SMALL, "--limit", "2"]) == 0
    evaluated = json.loads(RunDirectory(tmp_path / "eval").metrics_file.read_text())
    assert evaluated["limited"]["limit"] == 2 and evaluated["sets"]["retain"]["n"] == 2
