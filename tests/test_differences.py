"""`unlearn compare` and the sweep report warn when runs differ in what produced them; `--strict` refuses."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_report import NPO, SIMNPO, make_run
from unlearn.cli import main
from unlearn.reporting.differences import provenance_differences
from unlearn.runs import RunDirectory, RunInfo, RunResults


def _provenance(forget_sha: str = "a" * 64, task_version: int = 1, model: str = "m" * 64,
                version: str = "0.1.0") -> dict:
    return {"toolkit": {"name": "unlearn", "version": version}, "task": {"name": "tofu", "version": task_version},
            "data": [{"file": "forget10.json", "sha256": forget_sha, "rows": 40},
                     {"file": "retain90.json", "sha256": "r" * 64, "rows": 360}],
            "model": {"path": "target/model", "weights_sha256": model}}


def _result(stage: str, **provenance) -> RunResults:
    return RunResults(task="tofu", metrics={}, run=RunInfo(stage=stage), provenance=_provenance(**provenance))


def test_runs_that_agree_have_no_difference():
    same = [_result("unlearn"), _result("unlearn")]
    assert provenance_differences(same, ["a", "b"]) == ([], [])


def test_each_kind_of_difference_is_named_with_its_runs():
    runs = [_result("unlearn"), _result("unlearn", forget_sha="b" * 64, task_version=2, model="n" * 64,
                                        version="0.2.0"), _result("unlearn")]
    differences, unchecked = provenance_differences(runs, ["npo", "simnpo", "ga"])
    found = {d.what: d.values for d in differences}
    assert found == {
        "data file forget10.json": {f"sha256 {'a' * 12}…": ["npo", "ga"], f"sha256 {'b' * 12}…": ["simnpo"]},
        "tofu task version": {"version 1": ["npo", "ga"], "version 2": ["simnpo"]},
        "starting model of the unlearning runs": {f"sha256 {'m' * 12}…": ["npo", "ga"],
                                                  f"sha256 {'n' * 12}…": ["simnpo"]},
        "toolkit version": {"0.1.0": ["npo", "ga"], "0.2.0": ["simnpo"]},
    }
    assert unchecked == []


def test_models_are_compared_within_a_stage_and_old_runs_are_named_unchecked():
    target = _result("finetune", model="b" * 64)  # the target starts from the base, its unlearned runs from it
    old = RunResults(task="tofu", metrics={}, run=RunInfo(stage="unlearn"))
    differences, unchecked = provenance_differences([target, _result("unlearn"), old], ["target", "npo", "old"])
    assert differences == [] and unchecked == ["old"]


def _runs(tmp_path: Path) -> list[Path]:
    runs = [make_run(tmp_path, "npo", method=NPO), make_run(tmp_path, "simnpo", method=SIMNPO)]
    for run, sha in zip(runs, ("a" * 64, "c" * 64), strict=True):
        metrics = json.loads(RunDirectory(run).metrics_file.read_text())
        metrics["run"]["stage"] = "unlearn"
        metrics["provenance"] = _provenance(forget_sha=sha)
        RunDirectory(run).metrics_file.write_text(json.dumps(metrics))
    return runs


def test_compare_warns_in_bold_and_strict_refuses(tmp_path, capsys):
    runs = _runs(tmp_path)
    assert main(["compare", *map(str, runs), "--examples", "0"]) == 0
    out = capsys.readouterr().out
    assert "**Warning: these runs differ in what produced them; their numbers may not be comparable.**" in out
    assert f"- **data file forget10.json**: sha256 {'a' * 12}… (npo+gd); sha256 {'c' * 12}… (simnpo+gd)" in out
    assert main(["compare", *map(str, runs), "--strict", "--output", str(tmp_path / "c.md")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --strict: the runs differ in what produced them — data file forget10.json")
    assert err.count("\n") == 1 and not (tmp_path / "c.md").exists()


def test_compare_of_agreeing_runs_has_no_warning(tmp_path, capsys):
    runs = [make_run(tmp_path, "npo", method=NPO), make_run(tmp_path, "simnpo", method=SIMNPO)]
    for run in runs:
        metrics = json.loads(RunDirectory(run).metrics_file.read_text())
        metrics["provenance"] = _provenance()
        RunDirectory(run).metrics_file.write_text(json.dumps(metrics))
    assert main(["compare", *map(str, runs), "--strict", "--examples", "0"]) == 0
    assert "Warning" not in capsys.readouterr().out


def test_runs_without_provenance_are_said_to_be_unchecked(tmp_path, capsys):
    runs = [make_run(tmp_path, "npo", method=NPO)]
    assert main(["compare", *map(str, runs), "--examples", "0"]) == 0
    assert "_Not checked: npo+gd record no provenance (written by an earlier unlearn)._" in capsys.readouterr().out
