"""OpenUnlearning's overall score: the privacy transform and the harmonic means by hand, runs of TOFU (with tofu_mia
evaluations) and MUSE, and the input errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from unlearn.cli import main
from unlearn.errors import ConfigError
from unlearn.io import read_json
from unlearn.reporting.overall import load_run, overall_scores, s_mia
from unlearn.runs import RunDirectory, RunResults

AUCS = {"loss": 0.9, "zlib": 0.8, "min_k": 0.95, "min_k_plus_plus": 0.7}
RETAIN_AUCS = {"loss": 0.5, "zlib": 0.6, "min_k": 0.4, "min_k_plus_plus": 0.5}


def _hm(*xs: float) -> float:
    return len(xs) / sum(1 / x for x in xs)


def test_s_mia_by_hand():
    assert s_mia(0.5, 0.5) == 1.0
    assert s_mia(1.0, 0.5) == 0.0 and s_mia(0.0, 0.5) == 0.0
    assert s_mia(0.8, 0.6) == pytest.approx(1 - 0.2 / 0.6)
    assert s_mia(0.2, 0.6) == pytest.approx(1 - 0.4 / 0.6)
    assert s_mia(0.0, 0.3) == pytest.approx(1 - 0.3 / 0.7)  # the farther side sets the span


def _tofu_run(root: Path, name: str, forget: dict[str, float], mu: float) -> Path:
    run = RunDirectory(root / name).create()
    run.model_dir.mkdir()
    run.write_results(RunResults("tofu", {"sets": {"forget": forget}, "model_utility_9": mu}))
    return run.path


def _mia_run(root: Path, name: str, model: Path, aucs: dict[str, float]) -> Path:
    run = RunDirectory(root / name).create()
    run.write_config(f"model:\n  path: {model}\n")
    run.write_results(RunResults("tofu_mia", {"mia": {"attacks": {a: {"auc": v} for a, v in aucs.items()}}}))
    return run.path


FORGET = {"extraction_strength": 0.2, "exact_memorization": 0.4, "paraphrase_prob": 0.3, "truth_ratio_knowledge": 0.6}
RETAIN_FORGET = {"extraction_strength": 0.05, "exact_memorization": 0.2, "paraphrase_prob": 0.1,
                 "truth_ratio_knowledge": 0.5}


@pytest.fixture
def tofu_runs(tmp_path):
    unlearned = _tofu_run(tmp_path, "npo", FORGET, 0.5)
    retain = _tofu_run(tmp_path, "retain", RETAIN_FORGET, 0.6)
    return (unlearned, _mia_run(tmp_path, "npo_mia", RunDirectory(unlearned).model_dir, AUCS),
            retain, _mia_run(tmp_path, "retain_mia", RunDirectory(retain).model_dir, RETAIN_AUCS))


def test_tofu_overall_by_hand(tofu_runs, tmp_path, capsys):
    unlearned, unlearned_mia, retain, retain_mia = tofu_runs
    out = tmp_path / "overall.json"
    assert main(["overall", str(unlearned), "--retain", str(retain), "--mia", str(unlearned), str(unlearned_mia),
                 "--mia", str(retain), str(retain_mia), "--json", str(out)]) == 0
    scores = read_json(out)["runs"]
    memorization = _hm(0.8, 0.6, 0.7, 0.4)
    privacy = _hm(1 - 0.4 / 0.5, 1 - 0.2 / 0.6, 1 - 0.55 / 0.6, 1 - 0.2 / 0.5)
    assert scores["npo"]["memorization"] == pytest.approx(memorization)
    assert scores["npo"]["privacy"] == pytest.approx(privacy)
    assert scores["npo"]["utility"] == 0.5
    assert scores["npo"]["overall"] == pytest.approx(_hm(memorization, privacy, 0.5))
    assert scores["retain"]["privacy"] == 1.0  # the retain model is its own reference
    assert "| npo |" in capsys.readouterr().out


def test_muse_overall_reads_the_runs_own_aucs(tmp_path):
    def muse_run(name, es, em, retain_f1, aucs):
        run = RunDirectory(tmp_path / name).create()
        sets = {"verbmem_forget": {"extraction_strength": es, "exact_memorization": em},
                "knowmem_forget": {"extraction_strength": es / 2, "exact_memorization": em / 2},
                "knowmem_retain": {"rougeL_f1": retain_f1}}
        run.write_results(RunResults("muse", {"sets": sets, "mia": {"attacks": {a: {"auc": v}
                                                                              for a, v in aucs.items()}}}))
        return run.path

    runs = [load_run(muse_run("ga", 0.5, 0.8, 0.3, AUCS))]
    scores = overall_scores(runs, load_run(muse_run("retrained", 0.1, 0.3, 0.4, RETAIN_AUCS)))["runs"]["ga"]
    assert scores["memorization"] == pytest.approx(_hm(0.5, 0.2, 0.75, 0.6))
    assert scores["utility"] == 0.3


def test_overall_input_errors(tofu_runs, tmp_path, capsys):
    unlearned, unlearned_mia, retain, retain_mia = tofu_runs

    def fails(mia: list[str], pattern: str) -> None:
        assert main(["overall", str(unlearned), "--retain", str(retain), "--mia", *mia]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(pattern, err[0]), err

    fails([str(unlearned), str(unlearned_mia)], r"retain: no membership-inference AUCs .*--mia")
    fails([str(tmp_path), str(unlearned_mia)], "not one of the runs scored")
    fails([str(unlearned), str(retain_mia)], r"evaluated .* not .*npo's model")
    muse = RunDirectory(tmp_path / "muse_run").create()
    muse.write_results(RunResults("muse", {"sets": {}}))
    with pytest.raises(ConfigError, match="one task; these are of npo: tofu, muse_run: muse"):
        overall_scores([load_run(unlearned, unlearned_mia), load_run(muse.path)], load_run(retain, retain_mia))
    wmdp = RunDirectory(tmp_path / "wmdp_run").create()
    wmdp.write_results(RunResults("wmdp", {}))
    with pytest.raises(ConfigError, match="defined for the tasks tofu, muse"):
        load_run(wmdp.path)
    old = _tofu_run(tmp_path, "old", {"prob": 0.5}, 0.5)
    with pytest.raises(ConfigError, match=r"old: sets.forget.extraction_strength is missing .*older task version"):
        overall_scores([load_run(old, _mia_run(tmp_path, "old_mia", RunDirectory(old).model_dir, AUCS))],
                       load_run(retain, retain_mia))


def test_meta_evaluation_formulas_by_hand():
    from unlearn.meta_eval import (
        faithfulness,
        knowledge,
        metric_names,
        quantization_robustness,
        relearn_settings,
        relearning_robustness,
    )

    # the paper's one epoch on random subsets by default
    assert relearn_settings(["seeds=2"]) == ["epochs=1", "subset=random", "seeds=2"]
    assert relearn_settings(["epochs=3", "seeds=2"]) == ["subset=random", "epochs=3", "seeds=2"]  # given: listed once
    assert faithfulness([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert faithfulness([0.5, 0.1], [0.3]) == 0.5  # one pair above, one below
    assert faithfulness([0.2], [0.2]) == 0.5
    assert quantization_robustness(0.2, 0.1) == 1.0 and quantization_robustness(0.2, 0.4) == 0.5
    assert quantization_robustness(0.0, 0.3) == 0.0
    assert relearning_robustness(0.1, 0.2, 0.1, 0.3) == 1.0  # relearns slower than the retain model
    assert relearning_robustness(0.1, 0.5, 0.1, 0.3) == pytest.approx(0.2 / 0.4)
    assert relearning_robustness(0.1, 0.5, 0.3, 0.2) == 0.0  # the retain model gains nothing, the unlearned does
    assert relearning_robustness(0.3, 0.2, 0.3, 0.1) == 1.0
    assert knowledge(0.3, "truth_ratio") == pytest.approx(0.7) and knowledge(0.3, "prob") == 0.3
    assert metric_names(["forget.prob", "exact_memorization"]) == ("prob", "exact_memorization")
    with pytest.raises(ConfigError, match=r"unknown metric 'forget\.bogus'.*exact_memorization"):
        metric_names(["forget.bogus"])
