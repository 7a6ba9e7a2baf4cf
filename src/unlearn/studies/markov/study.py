"""``unlearn study markov``: the SimNPO paper's synthetic mixture-of-Markov-chains study (SimNPO §5, App. H),
on the toolkit's own pieces: NPO and SimNPO from the method registry, the shared training loop and unlearning
step, token-sequence batch parts and cached reference log-probs.

Per experiment and seed:

1. sample the three chains (:mod:`unlearn.data.markov`; state s of the paper = token id s − 1);
2. pretrain the original model on the experiment's pretraining chains and the Retrain model on retain only
   (:mod:`.model`; cached under ``OUTPUT_DIR/models``, so a rerun with other β skips pretraining);
3. unlearn the forget set (Forget1 ∪ Forget2 train sequences) from the original model with NPO and SimNPO:
   ``iterations`` AdamW steps of ``unlearn_batch_size`` forget sequences (the same batches for every method of a
   seed), no retain term unless ``retain_weight > 0`` (then NPO+GD / SimNPO+GD, each forget sequence paired with a
   retain sequence by the toolkit's pairing rule);
4. after every iteration (and at iteration 0) measure the transition KL (:mod:`.metric`).

Sequences and likelihoods: the first state of a sequence is given (it plays the prompt's role); the model predicts
each following state, so a length-L sequence has |y| = L − 1 label positions. NPO's reference log-probs are computed
once from the original model before unlearning — no second model is kept. Seed s controls everything: the data
sample and split, model initialisation, pretraining and unlearning batch order.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator

from unlearn.config.parsing import load_config
from unlearn.data.markov import CHAIN_NAMES, EXPERIMENTS, experiment_setup, generate_experiment_data
from unlearn.data.pairing import pair_forget_items
from unlearn.data.parts import PartData, SequenceSource
from unlearn.io import write_json, write_text
from unlearn.objectives.methods import build_method
from unlearn.studies.markov.analysis import (
    _aggregate,
    _aggregate_lists,
    forget_gap_at_matched_retain,
    seed_summary,
    select_beta,
)
from unlearn.studies.markov.config import METHOD_LABELS, METHODS, METRICS, MarkovStudyConfig, beta_grid_flag
from unlearn.studies.markov.metric import TransitionEvaluator
from unlearn.studies.markov.model import N_POSITIONS, PAD, chain_sequences, pretrained_model, study_loop_settings
from unlearn.studies.markov.output import format_summary, plot_study
from unlearn.train.loop import train_loop
from unlearn.train.reference import cached_reference_logp
from unlearn.train.steps import UnlearnStep


def epoch_orders(n: int, total: int, rng: np.random.Generator) -> np.ndarray:
    """``total`` indices into ``n`` items: concatenated seeded permutations (each item once per pass)."""
    passes = -(-total // n)
    return np.concatenate([rng.permutation(n) for _ in range(passes)])[:total]


@dataclass
class UnlearnInputs:
    """What every unlearning run of one (experiment, seed) shares."""

    original: torch.nn.Module
    source: SequenceSource  # forget sequences, each paired with a retain sequence
    forget_order: np.ndarray  # [iterations · batch]
    ref_logp: dict[str, torch.Tensor]  # NPO's cached log π_ref of every forget sequence
    evaluate: Callable[[torch.nn.Module], dict[str, float]]
    initial: dict[str, float]  # metrics of the original model (iteration 0)


def method_name(method: str, cfg: MarkovStudyConfig) -> str:
    """The registry name: ``npo`` / ``simnpo``, with ``+gd`` when the study has a retain term."""
    return f"{method}+gd" if cfg.retain_weight > 0 else method


def unlearn(inputs: UnlearnInputs, method: str, beta: float, cfg: MarkovStudyConfig, seed: int,
            desc: str = "unlearn") -> dict[str, list[float]]:
    """App. H "Unlearning" with the registry's method and the shared loop: constant lr, AdamW with weight decay on
    every parameter, no clipping, forget weight 1 and the study's β. Returns the trajectory: metric lists of length
    iterations + 1 (index 0 = the original model) and the loss per step."""
    unlearning = build_method(method_name(method, cfg), {"beta": beta}, forget_weight=1.0,
                              retain_weight=cfg.retain_weight if cfg.retain_weight > 0 else 1.0)
    parts: PartData = inputs.source.part_data(unlearning.parts)
    model = copy.deepcopy(inputs.original)
    model.train()
    torch.manual_seed(seed)
    traj: dict[str, list[float]] = {k: [inputs.initial[k]] for k in METRICS}
    traj["loss"] = []

    def after_step(step: int, logs: dict[str, float], m: torch.nn.Module) -> None:
        traj["loss"].append(logs["loss"])
        for k, v in inputs.evaluate(m).items():
            traj[k].append(v)

    bs = cfg.unlearn_batch_size
    order = inputs.forget_order

    def plan(epoch: int) -> list[list[list[int]]]:
        return [[order[it * bs:(it + 1) * bs].tolist()] for it in range(cfg.iterations)]

    settings = study_loop_settings(cfg, lr=cfg.unlearn_lr, batch_size=bs, epochs=1, max_steps=cfg.iterations,
                                   desc=desc)
    step = UnlearnStep(unlearning, parts, torch.device("cpu"),
                       {p: inputs.ref_logp[p] for p in unlearning.cached_reference_parts})
    train_loop(model, step, len(parts), settings, None, Accelerator(cpu=True), plan=plan, on_step_end=after_step)
    return traj


def _prepare(number: int, seed: int, cfg: MarkovStudyConfig, cache_dir: Path | None) -> tuple[UnlearnInputs, dict]:
    """Data, original + Retrain models, evaluator, reference log-probs and batch orders for one (experiment, seed)."""
    setup = experiment_setup(number)
    counts = {"retain": cfg.n_retain, "forget1": cfg.n_forget, "forget2": cfg.n_forget}
    data = generate_experiment_data(number, seed, counts, cfg.test_fraction, cfg.epsilon)
    evaluate = TransitionEvaluator.for_experiment(data, cfg.eval_sequences, seed, cfg.eval_batch_size)
    original, original_info = pretrained_model("original", data, setup.pretrain_chains, seed, cfg, cache_dir)
    retrain_model, retrain_info = pretrained_model("retrain", data, ("retain",), seed, cfg, cache_dir)
    retrain = evaluate(retrain_model)
    del retrain_model
    forget, retain = chain_sequences(data, ("forget1", "forget2")), chain_sequences(data, ("retain",))
    pairing = pair_forget_items(len(forget), len(retain), 1, seed)
    source = SequenceSource(forget, retain, pairing.retain_index, PAD, N_POSITIONS, feed_attention_mask=False)
    # the reference in item order (batches of eval_batch_size, as the metric): computed once, then freed
    ref_logp = cached_reference_logp(original, source.part_data(("forget",)), ("forget",), cfg.eval_batch_size,
                                     torch.device("cpu"), sort_by_length=False)
    total = cfg.iterations * cfg.unlearn_batch_size
    inputs = UnlearnInputs(
        original=original, source=source,
        forget_order=epoch_orders(len(forget), total, np.random.default_rng([seed, 3000])),
        ref_logp=ref_logp, evaluate=evaluate, initial=evaluate(original))
    info = {"retrain": retrain, "original": inputs.initial, "eval_sets": evaluate.sizes(),
            "pretraining": {"original": original_info, "retrain": retrain_info},
            "train_sizes": {n: len(data[n].train) for n in CHAIN_NAMES}}
    return inputs, info


def method_label(method: str, cfg: MarkovStudyConfig) -> str:
    return METHOD_LABELS[method] + ("+GD" if cfg.retain_weight > 0 else "")


def _beta_source(cfg: MarkovStudyConfig, number: int, method: str) -> str:
    if cfg.beta_grid and method in cfg.beta_grid:
        return "grid search"
    return "config" if cfg.betas and number in cfg.betas else "paper (App. H)"


def run_experiment(number: int, cfg: MarkovStudyConfig, cache_dir: Path | None = None) -> dict[str, Any]:
    """All seeds of one experiment: trajectories for every candidate β, the selected β per method, summaries."""
    start = time.perf_counter()
    setup = experiment_setup(number)
    candidates = cfg.candidate_betas(number)
    seeds = list(range(cfg.seeds))
    runs: dict[str, dict[float, list[dict]]] = {m: {b: [] for b in candidates[m]} for m in METHODS}
    seed_infos = []
    timing = {"pretrain_s": 0.0, "unlearn_s": 0.0}
    for seed in seeds:
        t0 = time.perf_counter()
        inputs, info = _prepare(number, seed, cfg, cache_dir)
        timing["pretrain_s"] += time.perf_counter() - t0
        seed_infos.append(info)
        t0 = time.perf_counter()
        for method in METHODS:
            for beta in candidates[method]:
                desc = f"exp {number} seed {seed} {method_label(method, cfg)} β={beta:g}"
                runs[method][beta].append({"seed": seed, **unlearn(inputs, method, beta, cfg, seed, desc)})
        timing["unlearn_s"] += time.perf_counter() - t0
    retrain_mean = {k: float(np.mean([i["retrain"][k] for i in seed_infos])) for k in METRICS}
    trajectories, grid = {}, {}
    for method in METHODS:
        means = {b: {k: np.mean([r[k] for r in rs], 0).tolist() for k in METRICS} for b, rs in runs[method].items()}
        beta, ranking = select_beta(means, retrain_mean)
        if _beta_source(cfg, number, method) == "grid search":
            grid[method] = {"values": candidates[method], "selected": beta, "ranking": ranking,
                            "trajectories": {str(b): rs for b, rs in runs[method].items()}}
        trajectories[method] = {"label": method_label(method, cfg), "beta": beta, "per_seed": runs[method][beta],
                                **{k: _aggregate_lists([r[k] for r in runs[method][beta]]) for k in METRICS}}
    summary_per_seed = []
    for i, info in enumerate(seed_infos):
        per_method = {m: trajectories[m]["per_seed"][i] for m in METHODS}
        summary_per_seed.append({
            **{m: seed_summary(t, info["retrain"]) for m, t in per_method.items()},
            "gap": forget_gap_at_matched_retain(per_method, info["retrain"])})
    summary = {m: _aggregate([s[m] for s in summary_per_seed]) for m in METHODS}
    gaps = [s["gap"] for s in summary_per_seed if s["gap"] is not None]
    for m in METHODS:
        summary[m]["gap_at_matched_retain"] = _aggregate([g[m] for g in gaps]) if gaps else None
    timing = {k: round(v, 1) for k, v in timing.items()}
    return {
        "experiment": number, "description": setup.description, "lengths": setup.lengths,
        "pretrain_chains": list(setup.pretrain_chains), "seeds": seeds,
        "beta_source": {m: _beta_source(cfg, number, m) for m in METHODS},
        "betas": {m: trajectories[m]["beta"] for m in METHODS},
        "retrain": {"per_seed": [i["retrain"] for i in seed_infos], **_aggregate([i["retrain"] for i in seed_infos])},
        "original": {"per_seed": [i["original"] for i in seed_infos],
                     **_aggregate([i["original"] for i in seed_infos])},
        "trajectories": trajectories, "grid": grid or None, "summary": summary,
        "summary_per_seed": summary_per_seed,
        "seed_details": [{k: v for k, v in i.items() if k not in ("retrain", "original")} for i in seed_infos],
        "wall_time_s": round(time.perf_counter() - start, 1), "timing": timing,
    }


def run_markov_study(cfg: MarkovStudyConfig) -> dict[str, Any]:
    """Run every experiment of ``cfg``; write ``experiment{N}.json`` / ``.png`` / ``_logx.png`` (and ``figure5.png``,
    ``figure5_logx.png`` + ``results.json`` for several experiments) and ``summary.md`` under ``cfg.output_dir``;
    return the results."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    out = Path(cfg.output_dir)
    cache_dir = out / "models" if cfg.cache_models else None
    start = time.perf_counter()
    results: dict[str, Any] = {
        "study": "mixture of Markov chains (SimNPO §5, App. H)",
        "config": dataclasses.asdict(cfg),
        "state_mapping": "paper state s (1..10) = token id s-1 (0..9); retain {1,2,3}, Forget1 {4,5,6}, "
                         "Forget2 {7,8,9}; state 10 in no chain",
        "metric": "mean over test sequences and positions t=1..L-1 of KL(T_chain[s_t] || model's next-state "
                  "distribution given s_1..s_t); forget1/forget2 = forget quality (higher = more forgotten), "
                  "retain = retain distance (lower = better)",
        "device": f"cpu, {torch.get_num_threads()} torch threads", "torch": torch.__version__,
        "experiments": {},
    }
    for number in cfg.experiments:
        result = run_experiment(number, cfg, cache_dir)
        results["experiments"][str(number)] = result
        write_json(out / f"experiment{number}.json", {**{k: v for k, v in results.items() if k != "experiments"},
                                                      "experiments": {str(number): result}})
        plot_study({str(number): result}, out / f"experiment{number}.png")
        plot_study({str(number): result}, out / f"experiment{number}_logx.png", log_x=True)
    results["wall_time_s"] = round(time.perf_counter() - start, 1)
    if len(cfg.experiments) > 1:
        write_json(out / "results.json", results)
        plot_study(results["experiments"], out / "figure5.png")
        plot_study(results["experiments"], out / "figure5_logx.png", log_x=True)
    write_text(out / "summary.md", format_summary(results) + "\n")
    return results


def config_from_args(args: Any) -> MarkovStudyConfig:
    """``unlearn study markov`` arguments → the config: ``-c FILE`` and ``key=value`` overrides, with the flags as
    shorthands for their keys (errors before any compute)."""
    base: dict[str, Any] = {}
    if getattr(args, "all", False):
        base["experiments"] = sorted(EXPERIMENTS)
    elif getattr(args, "experiment", None) is not None:
        base["experiments"] = [args.experiment]
    flags = {"seeds": "seeds", "iterations": "iterations", "retain_weight": "retain_weight",
             "eval_sequences": "eval_sequences", "output_dir": "output_dir"}
    for attr, key in flags.items():
        if getattr(args, attr, None) is not None:
            base[key] = getattr(args, attr)
    grid = beta_grid_flag(getattr(args, "beta_grid", None))
    if grid is not None:
        base["beta_grid"] = grid
    return load_config(MarkovStudyConfig, getattr(args, "config", None), getattr(args, "overrides", None) or (),
                       base=base)
