"""A run is resolved once (experiments/plan.py): the plan says what the run will do before it runs, and a pipeline
given a plan runs it without resolving the configuration again."""

from __future__ import annotations

from pathlib import Path

import pytest

import unlearn
from unlearn.errors import ConfigError
from unlearn.experiments import plan as plan_module
from unlearn.experiments.plan import as_plan, plan_evaluation, plan_finetune
from unlearn.experiments.stages import run_planned
from unlearn.experiments.unlearning import run_unlearning
from unlearn.runs import RunDirectory

SMALL = {"progress": False, "train.max_steps": 2, "train.batch_size": 4, "train.grad_accum": 1,
         "data.max_length": 96, "eval.max_length": 40, "eval.generate": False, "eval.sets": ["forget"]}


def test_the_plan_holds_the_task_defaults_the_recipe_and_the_run_directory(bench_dir, tiny_model_dir):
    plan = unlearn.plan(model=str(tiny_model_dir), data=str(bench_dir), method="npo+gd")
    assert plan.stage == "unlearn" and plan.task.name == "tofu" and plan.data_kind == "tofu"
    assert plan.cfg.data.forget_split == "forget10" and plan.cfg.data.max_length == 500  # TOFU's defaults
    assert plan.method.recipe.name == "tofu/npo:npo_paper" and plan.method.forget.params.beta == pytest.approx(0.1)
    assert plan.run.path == Path("runs/npo+gd-forget10")  # the default run directory, named by method and split
    assert plan.config_text.startswith("# Resolved configuration of method npo+gd") and "beta: 0.1" in plan.config_text
    assert plan.fingerprint["forget.beta"] == pytest.approx(0.1) and "output_dir" not in plan.fingerprint
    finetune = plan_finetune(unlearn.configure(model=str(tiny_model_dir), data=str(bench_dir),
                                            **{"data.train_splits": ["full"]}))
    assert finetune.method is None and finetune.run.path == Path("runs/finetune-full")
    assert plan_evaluation(finetune.cfg).fingerprint is None and plan_evaluation(finetune.cfg).run.path == Path(
        "runs/eval")


def test_a_plan_for_another_stage_is_refused(bench_dir, tiny_model_dir):
    finetune = plan_finetune(unlearn.configure(model=str(tiny_model_dir), data=str(bench_dir)))
    with pytest.raises(ConfigError, match="a plan for the finetune stage was given to the unlearn pipeline"):
        as_plan(finetune, "unlearn")
    with pytest.raises(ValueError, match="stage must be one of"):
        unlearn.plan("train", model=str(tiny_model_dir))


def test_a_planned_run_is_not_resolved_again(tmp_path, bench_dir, tiny_model_dir, monkeypatch):
    plan = unlearn.plan(model=str(tiny_model_dir), data=str(bench_dir), method="npo+gd",
                        output_dir=str(tmp_path / "run"), **SMALL)

    def resolved_again(*args, **kwargs):
        raise AssertionError("the configuration was resolved again after planning")

    for name in ("get_task", "build_method", "with_task_defaults", "method_from_config", "resolved_config"):
        monkeypatch.setattr(plan_module, name, resolved_again)
    assert run_unlearning(plan) == plan.run.path
    run = RunDirectory(plan.run.path)
    assert run.config_file.read_text() == plan.config_text  # config.yaml is the plan's text
    assert run.read_results().run.method["recipe"]["name"] == "tofu/npo:npo_paper"
    assert run.read_results().metrics["sets"]["forget"]["prob"] > 0
    # the finished run is reused as the stage of the same plan, and nothing runs
    assert run_planned(plan, lambda *a, **k: pytest.fail("a finished run was run again")) is False


def test_every_public_name_of_the_package_is_the_api_function():
    """``unlearn.<name>`` is the API's function, not a subpackage that happens to share its name."""
    from unlearn import api

    for name in ("run", "finetune", "evaluate", "configure", "plan", "RunOutcome"):
        assert getattr(unlearn, name) is getattr(api, name), name
