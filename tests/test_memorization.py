"""SimNPO App. C: the half split and Forget Quality per half by hand, and the scenario end to end on a tiny model."""

from __future__ import annotations

import pytest
from scipy import stats

from unlearn.cli import main
from unlearn.io import read_json, read_jsonl
from unlearn.scenarios.memorization import fq_per_half, halves


def test_halves_split_the_forget_rows_evenly():
    assert halves(8) == (slice(0, 4), slice(4, 8))
    assert halves(9) == (slice(0, 4), slice(4, 9))  # the unseen half takes the odd row
    assert halves(1) == (slice(0, 0), slice(0, 1))


def test_forget_quality_per_half_by_hand():
    retain = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    model = [0.1, 0.2, 0.3, 2.0, 3.0, 4.0]  # the memorized rows match the retain model, the others do not
    mask = [True, True, True, False, False, False]
    fq = fq_per_half(model, retain, mask)
    assert fq["memorized"] == pytest.approx(1.0)
    assert fq["unseen"] == pytest.approx(stats.ks_2samp([2.0, 3.0, 4.0], [0.4, 0.5, 0.6]).pvalue)
    assert fq["all"] == pytest.approx(stats.ks_2samp(model, retain).pvalue)
    with pytest.raises(ValueError, match="both halves"):
        fq_per_half(model, retain, [True] * 6)


def test_memorization_scenario_end_to_end(bench_dir, tiny_model_dir, tmp_path, capsys):
    common = [f"data={bench_dir}", "progress=false", "model.template=qa", "data.max_length=96", "eval.max_length=48",
              "eval.batch_size=32"]
    retain = tmp_path / "retain"
    assert main(["finetune", f"model={tiny_model_dir}", *common, "data.train_splits=retain90", "train.epochs=2",
                 "train.lr=3e-3", "train.batch_size=16", "train.grad_accum=1", f"output_dir={retain}"]) == 0
    out = tmp_path / "memo"
    assert main(["scenario", "memorization", f"model={tiny_model_dir}", *common, "methods=[npo+gd,simnpo+gd]",
                 "finetune_epochs=3", "finetune_lr=3e-3", "finetune_batch_size=16", "train.epochs=1",
                 "train.lr=1e-3", "train.batch_size=4", "train.grad_accum=1",
                 f"eval.retain_reference={retain}", f"output_dir={out}"]) == 0
    result = read_json(out / "memorization.json")
    assert set(result["models"]) == {"target", "npo+gd", "simnpo+gd"}
    assert (result["n_forget"], result["memorized_rows"]) == (8, 4)
    # the target learned retain90 and the first 4 forget rows only
    train = read_jsonl(out / "data" / "memorization_train.json")
    forget = read_jsonl(bench_dir / "forget10.json")
    assert train == read_jsonl(bench_dir / "retain90.json") + forget[:4]
    for fq in (m["forget_quality"] for m in result["models"].values()):
        assert 0 <= fq["memorized"] <= 1 and 0 <= fq["unseen"] <= 1
    assert "FQ on D_f,1 (memorized)" in capsys.readouterr().out
