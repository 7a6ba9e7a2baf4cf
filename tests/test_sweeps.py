"""`unlearn sweep`: grid expansion (common and per-method axes), the front, the FQ ladder and the selection rule on
hand-made candidates, every input error before a run starts, and a tiny sweep that resumes and runs in processes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy import stats

from unlearn.cli import main
from unlearn.config import RunConfig, load_config
from unlearn.errors import ConfigError
from unlearn.io import read_json
from unlearn.sweeps.config import SweepConfig
from unlearn.sweeps.grid import expand, parse_grid, split_values
from unlearn.sweeps.run import plan_sweep, selection_axes
from unlearn.sweeps.select import Axis, Candidate, choose, fq_ladder, metric_value, pareto_front


def test_values_split_at_top_level_commas_only():
    assert split_values("1e-5,2e-5") == ["1e-5", "2e-5"]
    assert split_values("[full,world_facts],[full]") == ["[full,world_facts]", "[full]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]


def test_grid_expands_common_axes_times_each_methods_own(tmp_path):
    grid = parse_grid(["method=npo+gd,simnpo+gd", "train.lr=1e-5,2e-5", "npo+gd:forget.beta=0.05,0.1",
                       "simnpo+gd:forget.beta=2.5", "train.epochs=3"])
    runs = expand(grid, {"model": {"path": "m"}, "data": {"root": "d"}}, (), tmp_path)
    npo = [r for r in runs if r.method == "npo+gd"]
    simnpo = [r for r in runs if r.method == "simnpo+gd"]
    assert len(npo) == 4 and len(simnpo) == 2  # 2 lr × 2 β, and 2 lr × the one β
    pairs = sorted((r.config.train.lr, r.config.forget["beta"]) for r in npo)
    assert pairs == [(1e-5, 0.05), (1e-5, 0.1), (2e-5, 0.05), (2e-5, 0.1)]
    assert {r.config.forget["beta"] for r in simnpo} == {2.5} and all(r.config.train.epochs == 3 for r in runs)
    assert npo[0].settings == {"train.lr": "1e-5", "forget.beta": "0.05"}  # only what varies names the run
    assert len({r.name for r in runs}) == 6
    assert all(r.config.output_dir.startswith(str(tmp_path / "runs")) for r in runs)


def test_a_methods_own_axis_replaces_the_common_one_of_its_key(tmp_path):
    grid = parse_grid(["method=npo+gd,ga+gd", "train.lr=1e-5,2e-5", "ga+gd:train.lr=3e-5,4e-5,5e-5"])
    runs = expand(grid, {"model": {"path": "m"}, "data": {"root": "d"}}, (), tmp_path)
    assert sorted(r.config.train.lr for r in runs if r.method == "npo+gd") == [1e-5, 2e-5]
    assert sorted(r.config.train.lr for r in runs if r.method == "ga+gd") == [3e-5, 4e-5, 5e-5]  # not 2 × 3


@pytest.mark.parametrize(("items", "message"), [
    ([], "the grid is empty"),
    (["train.lr=1e-5"], "every axis has one value"),
    (["train.lrr=1e-5,2e-5"], "unknown config key 'train.lrr'"),
    (["train.lr=1e-5,fast"], "train.lr must be a number"),
    (["method=npo+gd,ga+gd", "simnpo+gd:forget.beta=1,2"], r"simnpo\+gd is not a method of the sweep"),
    (["train.lr=1e-5,2e-5", "train.lr=3e-5,4e-5"], "given twice"),
    (["train.lr"], "must look like key=v1,v2"),
])
def test_grid_errors(items, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        expand(parse_grid(items), {}, (), tmp_path)


def test_more_runs_than_the_limit_need_yes(tmp_path):
    with pytest.raises(ConfigError, match=r"6 runs, more than sweep.max_runs=5; pass --yes"):
        plan_sweep({}, ["train.lr=1,2,3", "train.epochs=1,2"], SweepConfig(max_runs=5), tmp_path)


def test_selection_metrics_must_be_the_tasks():
    cfg = load_config(RunConfig)
    assert selection_axes(cfg, SweepConfig()) == (Axis("forget_quality"), "model_utility_9")
    with pytest.raises(ConfigError, match=r"sweep.utility_metric='retain_rouge': the tofu task does not produce"):
        selection_axes(cfg, SweepConfig(utility_metric="retain_rouge"))
    with pytest.raises(ConfigError, match=r"sweep\.threads"):
        SweepConfig(jobs=2, threads=10_000)


def test_selection_axes_take_the_tasks_directions():
    tofu = load_config(RunConfig)
    assert selection_axes(tofu, SweepConfig(forget_metric="forget.rouge"))[0] == Axis("forget.rouge", True)
    assert selection_axes(tofu, SweepConfig(forget_metric="forget.truth_ratio"))[0] == Axis("forget.truth_ratio")
    muse = load_config(RunConfig, overrides=["eval.task=muse"])
    assert selection_axes(muse, SweepConfig()) == (Axis("knowmem_f", lower_is_better=True), "knowmem_r")
    assert selection_axes(muse, SweepConfig(forget_metric="privleak"))[0] == Axis("privleak", True, goal=0.0)
    wmdp = load_config(RunConfig, overrides=["eval.task=wmdp"])
    axis, utility = selection_axes(wmdp, SweepConfig(forget_metric="wmdp_bio.accuracy",
                                                     utility_metric="mmlu.accuracy"))
    assert axis == Axis("wmdp_bio.accuracy", lower_is_better=True) and utility == "mmlu.accuracy"
    with pytest.raises(ConfigError, match=r"sweep.forget_metric is required for the wmdp task .*SET one of "
                                          r"wmdp_bio, wmdp_chem, wmdp_cyber, retain_mc, mmlu"):
        selection_axes(wmdp, SweepConfig())
    with pytest.raises(ConfigError, match=r"sweep.forget_metric='bio.accuracy': the wmdp task does not produce it"):
        selection_axes(wmdp, SweepConfig(forget_metric="bio.accuracy", utility_metric="mmlu.accuracy"))
    with pytest.raises(ConfigError, match=r"sweep.utility_metric='knowmem_f': .* needs a higher-is-better metric"):
        selection_axes(muse, SweepConfig(utility_metric="knowmem_f"))


def test_metric_value_reads_set_metrics_of_every_layout():
    tofu_row = {"sets": {"forget": {"rouge": 0.25}}, "forget_quality": 0.1}
    assert metric_value(tofu_row, "forget.rouge") == 0.25 and metric_value(tofu_row, "forget_quality") == 0.1
    assert metric_value({"wmdp_bio": {"accuracy": 0.5, "n": 64}}, "wmdp_bio.accuracy") == 0.5  # metrics.json
    assert metric_value({"epoch": 1, "wmdp_bio": 0.375}, "wmdp_bio.accuracy") == 0.375  # an epoch row
    assert metric_value({"wmdp_bio": 0.375}, "mmlu.accuracy") is None


def test_lower_is_better_and_goal_axes_rank_by_their_direction():
    cands = [_c("most_forgotten", "m", 2.0, 0.9), _c("least", "m", 9.0, 0.95), _c("below_floor", "m", 0.5, 0.2)]
    lower = Axis("knowmem_f", lower_is_better=True)
    assert choose(cands, 1.0, 0.8, forget_is_fq=False, axis=lower)["m"].chosen.run == "most_forgotten"
    assert choose(cands, 1.0, 0.8, forget_is_fq=False)["m"].chosen.run == "least"  # higher is better: the other
    # the front under "lower is better": below_floor has the lowest value, least the highest utility; most_forgotten
    # is beaten by neither on both axes, so all three stay; with higher-is-better, least beats both others on both
    assert pareto_front(cands, lower) == [cands[2], cands[0], cands[1]]
    assert pareto_front(cands) == [cands[1]]
    leak = [_c("far", "m", -80.0, 0.9), _c("near", "m", 5.0, 0.9), _c("over", "m", 40.0, 0.9)]
    assert choose(leak, 1.0, 0.8, forget_is_fq=False, axis=Axis("privleak", True, goal=0.0))["m"].chosen.run == "near"


def _c(run, method, forget, utility, epoch=1, **settings):
    """A candidate; without settings, its own configuration (runs that differ only in train.seed are one)."""
    return Candidate(run, method, epoch, forget, utility, settings or {"config": run})


def test_pareto_front_by_hand():
    a, b, c, d = _c("a", "m", 0.9, 0.1), _c("b", "m", 0.5, 0.5), _c("c", "m", 0.4, 0.4), _c("d", "m", 0.1, 0.9)
    tie = _c("e", "m", 0.5, 0.5)
    assert pareto_front([a, b, c, d, tie]) == [a, b, tie, d]  # c is beaten by b; equal points both stay


def test_fq_ladder_holds_every_ks_p_value_of_n_rows():
    ladder = fq_ladder(20)
    assert len(ladder) == 21 and ladder[-1] == pytest.approx(1.0) and np.all(np.diff(ladder) > 0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = stats.ks_2samp(rng.normal(size=20), rng.normal(0.5, size=20)).pvalue
        assert np.min(np.abs(ladder - p)) < 1e-9 * max(p, 1e-300) + 1e-15


def test_choice_is_the_best_forgetting_above_the_utility_floor():
    cands = [_c("low_mu", "npo", 0.99, 0.50), _c("best", "npo", 0.60, 0.85), _c("ok", "npo", 0.30, 0.95),
             _c("s", "simnpo", 0.2, 0.2)]
    chosen = choose(cands, target_utility=1.0, ratio=0.8, forget_is_fq=False)
    assert chosen["npo"].chosen.run == "best" and chosen["npo"].eligible == 2  # low_mu is below 0.8 × 1.0
    assert chosen["simnpo"].chosen is None and "no configuration reaches utility 0.8" in chosen["simnpo"].reason


def test_fq_on_the_same_rung_is_a_tie_won_by_utility():
    ladder = fq_ladder(20)
    cands = [_c("a", "npo", float(ladder[15]), 0.80), _c("b", "npo", float(ladder[15]), 0.90),
             _c("c", "npo", float(ladder[14]), 0.99)]
    choice = choose(cands, 1.0, 0.5, forget_is_fq=True, n_forget=20)["npo"]
    assert choice.chosen.run == "b" and choice.tied_with == ["a@e1"]  # c is a rung lower: not tied


def test_seed_spread_makes_close_configurations_ties():
    cands = [_c("x0", "npo", 0.50, 0.70, **{"train.lr": "1", "train.seed": "0"}),
             _c("x1", "npo", 0.30, 0.70, **{"train.lr": "1", "train.seed": "1"}),  # mean 0.40, spread 0.14
             _c("y0", "npo", 0.35, 0.90, **{"train.lr": "2", "train.seed": "0"}),
             _c("y1", "npo", 0.33, 0.90, **{"train.lr": "2", "train.seed": "1"})]  # mean 0.34: within the spread
    choice = choose(cands, 1.0, 0.5, forget_is_fq=False)["npo"]
    assert choice.chosen.run in ("y0", "y1") and choice.seed_spread == pytest.approx(np.std([0.35, 0.33], ddof=1))


def test_sweep_end_to_end_resumes_and_runs_in_processes(bench_dir, tiny_model_dir, tmp_path, capsys):
    retain = tmp_path / "retain"
    common = [f"model={tiny_model_dir}", f"data={bench_dir}", "progress=false", "model.template=qa",
              "data.max_length=96", "eval.max_length=48", "eval.batch_size=32", "eval.bootstrap=0"]
    assert main(["eval", *common, f"output_dir={retain}"]) == 0
    out = tmp_path / "sweep"
    args = ["sweep", *common, "method=ga+gd,npo+gd", "train.lr=1e-3,3e-3", "train.epochs=1", "train.batch_size=4",
            "train.eval_every_epoch=true", f"eval.retain_reference={retain}", f"output_dir={out}"]
    assert main(args) == 0
    result = read_json(out / "sweep.json")
    assert len(result["runs"]) == 4 and len(result["candidates"]) == 4
    runs = result["provenance"]["runs"]  # each run's provenance, and what differs (nothing: one target, one data)
    assert len(runs) == 4 and all(p["task"] == {"name": "tofu", "version": 2} for p in runs.values())
    assert result["provenance"]["differences"] == []
    assert set(result["chosen"]) == {"ga+gd", "npo+gd"} and result["retain"]["forget"] == 1.0
    assert result["target"]["utility"] is not None and (out / "plots" / "sweep_front.png").is_file()
    report = (out / "sweep.md").read_text()
    assert "## Chosen per method" in report and "it takes only 9 values" in report  # 8 forget rows
    assert "train.stop_after_epoch=EPOCH save_model=true" in report  # how to rebuild a chosen epoch's model
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/metrics.json")}
    capsys.readouterr()
    wider = [a if a != "train.lr=1e-3,3e-3" else "train.lr=1e-3,3e-3,5e-3" for a in args]
    # the report on demand, from what has finished: nothing runs, the missing runs are named
    assert main([*wider, "--report-only", "sweep.name=partial"]) == 0
    assert "the report from 4 of 6 finished runs" in capsys.readouterr().out
    partial = read_json(out / "partial.json")
    assert len(partial["candidates"]) == 4 and len(partial["missing"]) == 2
    assert (out / "partial.md").read_text().count("**Partial: 2 run(s) have not finished") == 1
    assert len(list(out.glob("runs/*/metrics.json"))) == 4
    assert main([*wider, "sweep.jobs=2", "sweep.threads=1"]) == 0
    assert "6 runs, 4 finished, 2 to run" in capsys.readouterr().out
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # the finished runs were not run again
    assert len(read_json(out / "sweep.json")["candidates"]) == 6 and len(list((out / "logs").glob("*.log"))) == 2
    capsys.readouterr()
    assert main([*wider, "sweep.name=loose", "sweep.utility_ratio=0.5"]) == 0  # re-select under another name
    assert "6 runs, 6 finished, 0 to run" in capsys.readouterr().out
    loose = read_json(out / "loose.json")
    assert loose["utility_ratio"] == 0.5 and read_json(out / "sweep.json")["utility_ratio"] == 0.9
    assert (out / "loose.md").is_file() and (out / "plots" / "loose_front.png").is_file()


def test_sweep_never_replaces_finished_runs_and_ignores_where_it_lives(bench_dir, tiny_model_dir, tmp_path, capsys,
                                                                       monkeypatch):
    retain = tmp_path / "retain"
    common = [f"model={tiny_model_dir}", f"data={bench_dir}", "progress=false", "model.template=qa",
              "data.max_length=96", "eval.max_length=48", "eval.batch_size=32", "eval.bootstrap=0",
              "eval.generate=false", "eval.sets=[forget]", "sweep.forget_metric=forget_quality",
              "sweep.utility_metric=forget_quality"]
    assert main(["eval", *common[:-2], f"output_dir={retain}"]) == 0
    out = tmp_path / "sweep"
    args = ["sweep", *common, "method=ga+gd", "train.lr=1e-3,3e-3", "train.max_steps=1", "train.batch_size=4",
            "train.grad_accum=1", "train.eval_every_epoch=true", f"eval.retain_reference={retain}"]
    # no retain reference: refused before any run, not after every run has trained and been evaluated
    no_fq = [a for a in args if not a.startswith("eval.retain_reference")]
    err = _cli_error(capsys, [*no_fq, f"output_dir={out}"])
    assert "needs eval.retain_reference" in err and not out.exists()
    assert main([*args, f"output_dir={out}"]) == 0
    stamps = {p: p.read_bytes() for p in out.glob("runs/*/metrics.json")}
    assert len(stamps) == 2
    # the same grid with another base value into the same directory: refused, nothing replaced
    err = _cli_error(capsys, [*args, "train.weight_decay=0.1", f"output_dir={out}"])
    assert "already hold a run of another configuration" in err and "train.weight_decay" in err
    assert "--overwrite" in err and all(p.read_bytes() == b for p, b in stamps.items())
    # a copied sweep directory is the same sweep: nothing runs again
    copy = tmp_path / "copied"
    shutil.copytree(out, copy)
    capsys.readouterr()
    assert main([*args, f"output_dir={copy}"]) == 0
    assert "2 runs, 2 finished, 0 to run" in capsys.readouterr().out
    # a diverging grid point names its run
    import unlearn.objectives.forget as F

    real_ga = F.ga_loss
    monkeypatch.setattr(F, "ga_loss", lambda forget: real_ga(forget) * float("nan"))
    err = _cli_error(capsys, [*args, f"output_dir={tmp_path / 'nan'}"])
    assert "sweep run ga_gd-train.lr=1e-3-" in err and "loss became nan" in err


def _cli_error(capsys, args) -> str:
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_a_failed_run_process_is_named_with_its_own_error_line(tmp_path):
    from unlearn.sweeps.run import _last_error

    log = tmp_path / "run.log"
    log.write_text("training...\nerror: loss became nan at step 3 (method npo+gd)\n\n")
    assert _last_error(log) == "loss became nan at step 3 (method npo+gd)"
    log.write_text("Traceback (most recent call last):\n  ...\nRuntimeError: boom\n")
    assert _last_error(log) == "RuntimeError: boom"
    log.write_text("")
    assert _last_error(log) == "no output"
