"""SimNPO App. B's perturbed reference: the weight average by hand, its effect on NPO's first step, and its errors."""

from __future__ import annotations

import math

import pytest
import torch

from tests.conftest import make_tiny
from unlearn.cli import main
from unlearn.io import read_jsonl
from unlearn.runs import RunDirectory
from unlearn.train.reference import perturbed_reference


def test_gaussian_perturbation_averages_with_standard_normal_weights(tokenizer):
    model = make_tiny(tokenizer, seed=1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ref = perturbed_reference(model, "gaussian", seed=3)
    first_name, first = next(iter(model.named_parameters()))
    z = torch.randn(first.shape, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(dict(ref.named_parameters())[first_name], (first + z) / 2)
    noise = torch.cat([(2 * p - before[n]).flatten() for n, p in ref.named_parameters()])
    assert abs(noise.mean().item()) < 0.02 and abs(noise.std().item() - 1) < 0.02  # 2θ' − θ ~ N(0, 1)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())  # the model itself is untouched


def test_init_perturbation_averages_with_a_fresh_initialisation(tokenizer):
    from transformers import AutoModelForCausalLM

    model = make_tiny(tokenizer, seed=1)
    ref = perturbed_reference(model, "init", seed=5)
    torch.manual_seed(5)
    fresh = dict(AutoModelForCausalLM.from_config(model.config).named_parameters())
    for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
        assert torch.allclose(q, (p + fresh[name]) / 2), name


def test_npo_first_step_is_2_ln2_over_beta_unless_the_reference_is_perturbed(bench_dir, tiny_model_dir, tmp_path,
                                                                            capsys):
    """At step 1 θ = θ_ref, so NPO's forget loss is (2/β)·ln 2 exactly; with the perturbed reference it is not."""
    common = [f"model={tiny_model_dir}", f"data={bench_dir}", "method=npo", "forget.beta=0.5", "progress=false",
              "model.template=qa", "train.epochs=1", "train.batch_size=8", "train.grad_accum=1", "data.max_length=96",
              "eval.enabled=false"]
    first = {}
    for name, extra in (("plain", []), ("perturbed", ["method.reference_perturbation=gaussian"])):
        assert main(["run", *common, *extra, f"output_dir={tmp_path / name}"]) == 0
        first[name] = read_jsonl(RunDirectory(tmp_path / name).train_log_file)[0]["forget_loss"]
    assert first["plain"] == pytest.approx(2 / 0.5 * math.log(2), rel=1e-5)
    assert abs(first["perturbed"] - first["plain"]) > 0.1
    assert "reference_perturbation: gaussian" in RunDirectory(tmp_path / "perturbed").config_file.read_text()
    capsys.readouterr()
    assert main(["run", *common[:2], "method=ga+gd", "method.reference_perturbation=gaussian",
                 f"output_dir={tmp_path / 'ga'}"]) == 2
    assert "perturbs the cached reference log-probs" in capsys.readouterr().err
    assert main(["run", *common, "method.reference_perturbation=uniform", f"output_dir={tmp_path / 'bad'}"]) == 2


def test_ref_perturbation_scenario_runs_plain_and_perturbed_side_by_side(bench_dir, tiny_model_dir, tmp_path):
    from unlearn.config import load_config
    from unlearn.errors import ConfigError
    from unlearn.io import read_json
    from unlearn.scenarios.ref_perturbation import RefPerturbationConfig

    out = tmp_path / "refp"
    args = ["scenario", "ref_perturbation", f"model={tiny_model_dir}", f"data={bench_dir}", "kinds=[init]",
            "progress=false", "model.template=qa", "train.epochs=1", "train.batch_size=8", "train.grad_accum=1",
            "data.max_length=96", "eval.max_length=48", "eval.batch_size=32", f"output_dir={out}"]
    assert main(args) == 0
    result = read_json(out / "ref_perturbation.json")
    rows = result["rows"]
    # the scenario's own provenance: every file it read (each run's is in its metrics.json), the starting model
    assert result["provenance"]["model"]["path"] == str(tiny_model_dir)
    assert "forget10.json" in {f["file"] for f in result["provenance"]["data"]}
    assert list(rows) == ["plain", "init"] and rows["plain"]["forget_prob"] != rows["init"]["forget_prob"]
    assert "reference_perturbation: init" in RunDirectory(out / "init").config_file.read_text()
    stamp = RunDirectory(out / "init").metrics_file.stat().st_mtime_ns
    assert main(args) == 0 and RunDirectory(out / "init").metrics_file.stat().st_mtime_ns == stamp  # reused
    with pytest.raises(ConfigError, match="cache reference log-probs"):
        load_config(RefPerturbationConfig, None, ["method=ga+gd"])
    with pytest.raises(ConfigError, match="kinds must be one of"):
        load_config(RefPerturbationConfig, None, ["kinds=[uniform]"])
