"""The synthetic mixture-of-Markov-chains study (SimNPO §5, App. H)."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
import torch

from unlearn.cli import build_parser, main, parse_args
from unlearn.config import load_config
from unlearn.data.markov import (
    CHAIN_NAMES,
    EXPERIMENTS,
    generate_experiment_data,
    make_chain,
    make_chains,
    train_test_split,
)
from unlearn.errors import ConfigError
from unlearn.studies.markov import (
    DEFAULT_BETA_GRID,
    MarkovStudyConfig,
    TransitionEvaluator,
    beta_grid_flag,
    config_from_args,
    first_crossing,
    per_position_transition_kl,
    run_markov_study,
    select_beta,
)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """The models here are tiny: one intra-op thread is faster and does not thrash when other jobs share the cores.
    Restored afterwards so other test modules keep torch's default."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


IN = 0.8 / 3  # (1 − ε)/3 with ε = 0.2, written out independently of the module
OUT = 0.2 / 7  # ε/7
UNIFORM = 0.1


def _spec_row(subset_ids: list[int]) -> list[float]:
    return [IN if j in subset_ids else OUT for j in range(10)]


@pytest.mark.parametrize(("name", "subset_ids"), [("retain", [0, 1, 2]), ("forget1", [3, 4, 5]),
                                                  ("forget2", [6, 7, 8])])
def test_chains_equal_spec_values(name, subset_ids):
    chain = make_chain(name)
    expected = np.array([_spec_row(subset_ids) if i in subset_ids else [UNIFORM] * 10 for i in range(10)])
    np.testing.assert_allclose(chain.transition, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chain.initial, _spec_row(subset_ids), rtol=0, atol=1e-12)
    np.testing.assert_allclose(chain.transition.sum(1), 1.0, atol=1e-12)
    assert chain.initial.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(chain.transition[9], UNIFORM)  # state 10 belongs to no chain


def test_experiment_setups_and_split_sizes():
    assert EXPERIMENTS[1].lengths == {"retain": 20, "forget1": 20, "forget2": 5}
    assert EXPERIMENTS[1].pretrain_chains == ("retain", "forget1", "forget2")
    assert EXPERIMENTS[2].lengths == {"retain": 20, "forget1": 20, "forget2": 20}
    assert EXPERIMENTS[2].pretrain_chains == ("retain", "forget1")
    data = generate_experiment_data(1, seed=0)
    shapes = {n: (data[n].train.shape, data[n].test.shape) for n in CHAIN_NAMES}
    assert shapes == {"retain": ((8000, 20), (2000, 20)), "forget1": ((4000, 20), (1000, 20)),
                      "forget2": ((4000, 5), (1000, 5))}


def test_generator_is_deterministic_per_seed():
    chain = make_chain("forget2")
    a = chain.sample(50, 20, np.random.default_rng(7))
    assert np.array_equal(a, chain.sample(50, 20, np.random.default_rng(7)))
    assert not np.array_equal(a, chain.sample(50, 20, np.random.default_rng(8)))
    d1 = generate_experiment_data(1, seed=3, n_sequences={"retain": 100, "forget1": 50, "forget2": 50})
    d1b = generate_experiment_data(1, seed=3, n_sequences={"retain": 100, "forget1": 50, "forget2": 50})
    d2 = generate_experiment_data(2, seed=3, n_sequences={"retain": 100, "forget1": 50, "forget2": 50})
    d_other = generate_experiment_data(1, seed=4, n_sequences={"retain": 100, "forget1": 50, "forget2": 50})
    for n in CHAIN_NAMES:
        assert np.array_equal(d1[n].train, d1b[n].train) and np.array_equal(d1[n].test, d1b[n].test)
        assert not np.array_equal(d1[n].train, d_other[n].train)
    # the retain data of a seed are shared by both experiments (so is the Retrain model)
    assert np.array_equal(d1["retain"].train, d2["retain"].train)


def test_train_test_split_is_a_partition():
    rows = np.arange(100)[:, None]
    train, test = train_test_split(rows, 0.2, np.random.default_rng(0))
    assert len(train) == 80 and len(test) == 20
    assert sorted(np.concatenate([train, test])[:, 0].tolist()) == list(range(100))
    assert not np.array_equal(test[:, 0], np.arange(80, 100))  # shuffled, not the tail


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_empirical_transition_frequencies_match_the_matrix(name):
    chain = make_chain(name)
    seqs = chain.sample(20_000, 20, np.random.default_rng(1))
    counts = np.zeros((10, 10))
    np.add.at(counts, (seqs[:, :-1].ravel(), seqs[:, 1:].ravel()), 1)
    freq = counts / counts.sum(1, keepdims=True)
    assert counts.sum(1).min() > 5_000
    np.testing.assert_allclose(freq, chain.transition, atol=0.012)
    first = np.bincount(seqs[:, 0], minlength=10) / len(seqs)
    np.testing.assert_allclose(first, chain.initial, atol=0.012)


def test_true_transition_logits_have_zero_kl_and_perturbed_ones_do_not():
    chains = make_chains()
    assert set(chains) == set(CHAIN_NAMES)  # the loop below checks every chain, not none
    for chain in chains.values():
        states = torch.from_numpy(chain.sample(64, 12, np.random.default_rng(0)))
        transition = torch.from_numpy(chain.transition)
        logits = transition[states].log()  # the "model" predicts the true row of the current state
        kl = per_position_transition_kl(logits, states, transition)
        assert kl.shape == (64, 11)
        assert kl.abs().max().item() < 1e-6
        # an extra vocabulary entry is dropped and the 10 states renormalised: still exact
        extra = torch.cat([logits + 3.0, torch.full((64, 12, 1), 50.0, dtype=logits.dtype)], dim=-1)
        assert per_position_transition_kl(extra, states, transition).abs().max().item() < 1e-5
        noisy = logits + 0.3 * torch.randn(logits.shape, generator=torch.Generator().manual_seed(0),
                                           dtype=logits.dtype)
        assert per_position_transition_kl(noisy, states, transition).mean().item() > 1e-3
    # the wrong chain's rows give a large KL
    retain = chains["retain"]
    states = torch.from_numpy(retain.sample(64, 12, np.random.default_rng(0)))
    wrong = torch.from_numpy(chains["forget1"].transition)[states].log()
    assert per_position_transition_kl(wrong, states, torch.from_numpy(retain.transition)).mean().item() > 0.1


class _TableModel(torch.nn.Module):
    """Predicts from the current state only, via a fixed table of log-probabilities (no parameters trained)."""

    def __init__(self, log_table: torch.Tensor):
        super().__init__()
        self.register_buffer("log_table", log_table)

    def forward(self, input_ids):
        return type("Out", (), {"logits": self.log_table[input_ids]})()


def test_evaluator_averages_kl_over_every_transition_position():
    data = generate_experiment_data(1, seed=0, n_sequences={"retain": 200, "forget1": 100, "forget2": 100})
    evaluator = TransitionEvaluator.for_experiment(data, max_sequences=0, seed=0, batch_size=7)
    retain_rows = torch.from_numpy(data["retain"].chain.transition).log()
    scores = evaluator(_TableModel(retain_rows))
    assert scores["retain"] == pytest.approx(0.0, abs=1e-6)  # float32 logits
    # uniform predictions: KL(T[s] ‖ U) = log 10 − H(T[s]), averaged over s_1..s_{L−1} of the test sequences
    uniform = evaluator(_TableModel(torch.zeros(10, 10, dtype=torch.float64)))
    assert set(uniform) == set(CHAIN_NAMES)  # a score for every chain, each checked below
    for name in CHAIN_NAMES:
        t = data[name].chain.transition
        per_state = math.log(10) + (t * np.log(t)).sum(1)
        expected = per_state[data[name].test[:, :-1]].mean()
        assert uniform[name] == pytest.approx(expected, rel=1e-6)
    # Forget2's test sequences (length 5) give 4 scored positions each
    assert evaluator.sizes()["forget2"] == [20, 5]


def test_first_crossing_and_beta_selection():
    assert first_crossing([0.0, 1.0, 2.0], [10.0, 20.0, 30.0], 1.5) == pytest.approx(25.0)
    assert first_crossing([0.0, 1.0], [1.0, 2.0], 5.0) is None
    assert first_crossing([3.0, 1.0], [1.0, 2.0], 2.0) == 1.0
    retrain = {"forget1": 1.0, "forget2": 1.0, "retain": 0.0}
    trajs = {
        0.1: {"forget1": [0.0, 0.5, 2.0], "forget2": [0.0, 0.5, 2.0], "retain": [0.0, 0.5, 1.0]},  # reaches at 0.75
        1.0: {"forget1": [0.0, 2.0, 3.0], "forget2": [0.0, 2.0, 3.0], "retain": [0.0, 0.2, 0.3]},  # reaches at 0.1
        9.0: {"forget1": [0.0, 0.1, 0.9], "forget2": [0.0, 0.1, 0.9], "retain": [0.0, 0.0, 0.0]},  # never reaches
    }
    beta, ranking = select_beta(trajs, retrain)
    assert beta == 1.0
    assert [r["beta"] for r in ranking] == [1.0, 0.1, 9.0]
    assert ranking[0]["retain_at_retrain_mean_forget"] == pytest.approx(0.1)


def test_beta_grid_in_the_one_override_syntax_and_the_flag():
    assert beta_grid_flag(None) is None
    assert beta_grid_flag("default") == DEFAULT_BETA_GRID
    assert beta_grid_flag("0.5, 2") == {"npo": [0.5, 2.0], "simnpo": [0.5, 2.0]}
    with pytest.warns(FutureWarning, match=r"beta_grid\.npo"):
        assert beta_grid_flag("npo=0.1,0.2;simnpo=4") == {"npo": [0.1, 0.2], "simnpo": [4.0]}
    cfg = load_config(MarkovStudyConfig, overrides=["beta_grid.npo=0.1,0.3"])
    assert cfg.beta_grid == {"npo": [0.1, 0.3]}
    assert cfg.candidate_betas(1) == {"npo": [0.1, 0.3], "simnpo": [4.0]}  # SimNPO keeps the paper's β
    assert MarkovStudyConfig().candidate_betas(2) == {"npo": [1.0], "simnpo": [4.0]}
    assert load_config(MarkovStudyConfig, overrides=["betas.2.npo=0.3", "betas.2.simnpo=3"]).candidate_betas(2) == {
        "npo": [0.3], "simnpo": [3.0]}
    for bad in ("abc", "npo=", "foo=1", "0", "-1,2", "nan", "inf", "npo=1;npo=2", "1,1", "npo=1;x"):
        with pytest.raises(ConfigError), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            beta_grid_flag(bad)
    for bad in ("beta_grid.npo=0,1", "beta_grid.foo=1", "beta_grid.npo=x", "betas.1.npo=0.2"):
        with pytest.raises(ConfigError):
            load_config(MarkovStudyConfig, overrides=[bad])


@pytest.mark.parametrize("change", [{"experiments": (3,)}, {"seeds": 0}, {"seeds": -2}, {"iterations": 0},
                                    {"experiments": ()}, {"beta_grid": {"npo": [0.0]}}, {"retain_weight": -1.0},
                                    {"n_forget": 2}, {"n_embd": 10, "n_head": 4}, {"eval_sequences": -1}])
def test_bad_config_is_a_config_error_before_any_compute(tmp_path, change):
    with pytest.raises(ConfigError):
        dataclasses.replace(MarkovStudyConfig(output_dir=str(tmp_path / "out")), **change)
    assert not (tmp_path / "out").exists()


def test_cli_parses_into_the_config_and_reports_errors(tmp_path, capsys):
    args = build_parser().parse_args(["study", "markov", "--all", "--seeds", "4", "--iterations", "7",
                                      "--beta-grid", "--output-dir", str(tmp_path / "m"), "--retain-weight", "1"])
    cfg = config_from_args(args)
    assert cfg.experiments == (1, 2) and cfg.seeds == 4 and cfg.iterations == 7
    assert cfg.beta_grid == DEFAULT_BETA_GRID and cfg.retain_weight == 1.0 and cfg.output_dir == str(tmp_path / "m")
    cfg = config_from_args(build_parser().parse_args(["study", "markov", "--experiment", "2"]))
    assert cfg.experiments == (2,) and cfg.seeds == 3 and cfg.iterations == 50 and cfg.beta_grid is None
    args = parse_args(["study", "markov", "--experiment", "1", "seeds=2", "beta_grid.simnpo=2,4", "unlearn_lr=1e-3"])
    cfg = config_from_args(args)
    assert (cfg.seeds, cfg.beta_grid, cfg.unlearn_lr) == (2, {"simnpo": [2.0, 4.0]}, 1e-3)
    for argv in (["--experiment", "3"], ["--experiment", "1", "--seeds", "0"],
                 ["--all", "--beta-grid", "npo=x"], ["--all", "iterations=0"], ["--all", "itrations=3"]):
        assert main(["study", "markov", *argv, "--output-dir", str(tmp_path / "bad")]) == 2
        assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "bad").exists()
    # studies are a registry: an unknown name is one line with the closest one
    assert main(["study", "markvo", "--all", "--output-dir", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "unknown study 'markvo'; did you mean 'markov'?" in err and err.count("\n") == 1
    assert not (tmp_path / "bad").exists()


TINY = {"seeds": 1, "iterations": 4, "n_retain": 100, "n_forget": 50, "n_layer": 1, "n_head": 2, "n_embd": 16,
        "pretrain_epochs": 2, "pretrain_batch_size": 32, "eval_sequences": 0, "progress": False,
        "unlearn_lr": 1e-2}


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("markov")
    cfg = MarkovStudyConfig(experiments=(1, 2), output_dir=str(out), **TINY)
    return out, cfg, run_markov_study(cfg)


def test_study_runs_end_to_end_and_writes_json_and_png(tiny_study):
    out, cfg, _ = tiny_study
    for name in ("experiment1.json", "experiment2.json", "results.json", "summary.md", "experiment1.png",
                 "experiment2.png", "experiment1_logx.png", "figure5.png", "figure5_logx.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "figure5.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["experiments"]) == {"1", "2"}
    for number, r in saved["experiments"].items():
        assert r["betas"] == {"npo": [0.2, 1.0][int(number) - 1], "simnpo": 4.0}
        for method in ("npo", "simnpo"):
            run = r["trajectories"][method]["per_seed"][0]
            for key in ("forget1", "forget2", "retain"):
                assert len(run[key]) == cfg.iterations + 1
                assert all(v >= 0 for v in run[key])
            assert len(run["loss"]) == cfg.iterations
            # iteration 0 is the original model, the same for both methods
            assert run["forget1"][0] == r["original"]["per_seed"][0]["forget1"]
        assert set(r["retrain"]["per_seed"][0]) == {"forget1", "forget2", "retain"}
    # Retrain is pretrained on retain only, the same data in both experiments: one cached model for both
    assert len(list((out / "models").glob("retrain-*.pt"))) == 1
    assert len(list((out / "models").glob("original-*.pt"))) == 2
    assert "| NPO (iteration 4) | 0.2 |" in (out / "summary.md").read_text()


def test_npo_reference_logprobs_line_up_with_the_batch(tiny_study):
    """At the first step π_θ = π_ref, so NPO's loss is exactly (2/β)·log 2 — only if the cached reference log-probs
    are those of the batch's own sequences."""
    _, _, results = tiny_study
    for r in results["experiments"].values():
        beta = r["betas"]["npo"]
        assert r["trajectories"]["npo"]["per_seed"][0]["loss"][0] == pytest.approx(2 / beta * math.log(2), rel=1e-4)


def test_npo_with_a_high_learning_rate_forgets_forget1(tiny_study):
    _, _, results = tiny_study
    for r in results["experiments"].values():
        f1 = r["trajectories"]["npo"]["per_seed"][0]["forget1"]
        assert f1[-1] > f1[0] + 0.05


def test_study_is_deterministic_for_a_seed(tiny_study, tmp_path):
    _, _, results = tiny_study
    cfg = MarkovStudyConfig(experiments=(2,), output_dir=str(tmp_path), cache_models=False, **TINY)
    again = run_markov_study(cfg)["experiments"]["2"]
    first = results["experiments"]["2"]
    assert again["retrain"]["per_seed"] == first["retrain"]["per_seed"]
    for method in ("npo", "simnpo"):
        assert again["trajectories"][method]["per_seed"] == first["trajectories"][method]["per_seed"]


def test_beta_grid_runs_every_value_and_records_the_selection(tmp_path):
    cfg = MarkovStudyConfig(experiments=(1,), output_dir=str(tmp_path), beta_grid={"npo": [0.1, 0.5]},
                            **{**TINY, "iterations": 2})
    r = run_markov_study(cfg)["experiments"]["1"]
    assert r["beta_source"] == {"npo": "grid search", "simnpo": "paper (App. H)"}
    grid = r["grid"]["npo"]
    assert set(grid["trajectories"]) == {"0.1", "0.5"} and grid["selected"] in (0.1, 0.5)
    assert r["betas"]["npo"] == grid["selected"] and r["betas"]["simnpo"] == 4.0
    assert grid["ranking"][0]["beta"] == grid["selected"] and len(grid["ranking"]) == 2
    assert "simnpo" not in r["grid"]
    assert "Grid NPO: selected" in (tmp_path / "summary.md").read_text()
