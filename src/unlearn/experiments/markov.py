"""``unlearn study markov``: the SimNPO paper's synthetic mixture-of-Markov-chains study (SPEC §8, SimNPO §5, App. H).

Per experiment and seed:

1. sample the three chains (:mod:`unlearn.data.markov`; state s of the paper = token id s − 1);
2. pretrain the original model on the experiment's pretraining chains and the Retrain model on retain only
   (GPT-2, 4 layers, 4 heads, 128 dims, vocabulary = the 10 states, no BOS; AdamW lr 5e-4, batch 128,
   5 epochs, token-mean cross entropy). Trained models are cached under ``OUTPUT_DIR/models`` keyed by a hash of
   everything they depend on, so a rerun (e.g. with ``--beta-grid``) skips pretraining;
3. unlearn the forget set (Forget1 ∪ Forget2 train sequences) from the original model with NPO and SimNPO —
   the project's own :func:`~unlearn.objectives.forget.npo_loss` / :func:`~unlearn.objectives.forget.simnpo_loss`
   on :func:`~unlearn.objectives.sequence.sequence_stats` — 50 iterations of 4 forget sequences, AdamW lr 5e-4,
   no retain term unless ``retain_weight > 0`` (then + ``retain_weight``·GD on 4 retain sequences);
4. after every iteration (and at iteration 0) measure the transition KL (see :func:`per_position_transition_kl`).

Sequences and likelihoods. The first state of a sequence is given (it plays the prompt's role); the model predicts
each following state, so a length-L sequence has |y| = L − 1 label positions (19 for length 20, 4 for Forget2's
length 5 in experiment 1). NPO's and SimNPO's log π(y|x) is the sum over those positions; NPO's reference
log-probs are computed once from the original model before unlearning (SPEC §1) — no second model is kept.

Metric (SPEC §8, App. H "Evaluation"). For a test sequence s_1..s_L of chain c and every position t = 1..L−1 the
model's next-state distribution q_t = softmax over the 10 states of the logits at position t (it has seen
s_1..s_t) is compared with the chain's true row T_c[s_t]: KL(T_c[s_t] ‖ q_t). The reported value is the mean over
all (sequence, position) pairs of the set — the first state's prediction is not scored because the model never
predicts it. "Forget quality" = this KL on Forget1 / Forget2 test data (higher = forgotten more); "retain
distance" = this KL on retain test data against the retain chain (lower = better). Per-iteration metrics use a
fixed seeded subset of at most ``eval_sequences`` test sequences per set (the same subset for every model of a
seed, Retrain included); ``eval_sequences=0`` uses all of them.

Seeds. Seed s controls everything: the data sample and split, model initialisation, pretraining and unlearning
batch order. Results report mean and standard deviation over seeds.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unlearn.data.formatting import IGNORE_INDEX
from unlearn.data.markov import (
    CHAIN_NAMES,
    EPSILON,
    EXPERIMENTS,
    N_SEQUENCES,
    N_STATES,
    TEST_FRACTION,
    ChainData,
    experiment_setup,
    generate_experiment_data,
)
from unlearn.errors import ConfigError, TrainingDiverged
from unlearn.io import atomic_path, write_json, write_text
from unlearn.objectives.forget import npo_loss, simnpo_loss
from unlearn.objectives.retain import gd_loss
from unlearn.objectives.sequence import SequenceStats, sequence_stats

METHODS = ("npo", "simnpo")
METHOD_LABELS = {"npo": "NPO", "simnpo": "SimNPO"}
# App. H "Choice of hyperparameters": β of the paper's Fig. 5.
PAPER_BETAS: dict[int, dict[str, float]] = {1: {"npo": 0.2, "simnpo": 4.0}, 2: {"npo": 1.0, "simnpo": 4.0}}
# The grid ``--beta-grid`` searches when given no values; it contains the paper's choices.
DEFAULT_BETA_GRID: dict[str, list[float]] = {"npo": [0.1, 0.2, 0.5, 1.0, 2.0], "simnpo": [1.0, 2.0, 4.0, 8.0]}
METRICS = ("forget1", "forget2", "retain")
N_POSITIONS = 32  # GPT-2 position table; longer than every sequence of SPEC §8 (20)
CACHE_VERSION = 1


@dataclass
class MarkovStudyConfig:
    """Everything the study depends on; defaults are SPEC §8 / App. H."""

    experiments: tuple[int, ...] = (1,)
    seeds: int = 3
    iterations: int = 50
    beta_grid: dict[str, list[float]] | None = None  # None: the paper's β (or ``betas``)
    betas: dict[int, dict[str, float]] | None = None  # override of PAPER_BETAS per experiment
    retain_weight: float = 0.0  # > 0: NPO+GD / SimNPO+GD with this weight on the retain term
    n_retain: int = N_SEQUENCES["retain"]
    n_forget: int = N_SEQUENCES["forget1"]  # per forget chain
    test_fraction: float = TEST_FRACTION
    epsilon: float = EPSILON
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    pretrain_epochs: int = 5
    pretrain_batch_size: int = 128
    pretrain_lr: float = 5e-4
    unlearn_batch_size: int = 4
    unlearn_lr: float = 5e-4
    weight_decay: float = 0.01  # torch's AdamW default; App. H does not say
    eval_sequences: int = 500  # per test set; 0 = all
    eval_batch_size: int = 500
    output_dir: str = "runs/markov"
    cache_models: bool = True
    progress: bool = True

    def validate(self) -> None:
        """Every input error as a :class:`ConfigError`, before any compute."""
        if not self.experiments:
            raise ConfigError("choose at least one Markov experiment (--experiment 1, --experiment 2 or --all)")
        for number in self.experiments:
            experiment_setup(number)
        if len(set(self.experiments)) != len(self.experiments):
            raise ConfigError(f"experiment listed twice: {list(self.experiments)}")
        _positive_int("seeds", self.seeds)
        _positive_int("iterations", self.iterations)
        for name in ("n_layer", "n_head", "n_embd", "pretrain_epochs", "pretrain_batch_size", "unlearn_batch_size",
                     "eval_batch_size"):
            _positive_int(name, getattr(self, name))
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not isinstance(self.eval_sequences, int) or self.eval_sequences < 0:
            raise ConfigError(f"eval_sequences must be 0 (all) or a positive integer, got {self.eval_sequences!r}")
        for name in ("pretrain_lr", "unlearn_lr"):
            if not _finite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if not _finite(self.weight_decay) or self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not _finite(self.retain_weight) or self.retain_weight < 0:
            raise ConfigError(f"retain_weight must be >= 0 (0 = no retain term), got {self.retain_weight!r}")
        if not _finite(self.epsilon) or not 0 < self.epsilon < 1:
            raise ConfigError(f"epsilon must be in (0, 1), got {self.epsilon!r}")
        if not _finite(self.test_fraction) or not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction!r}")
        for name in ("n_retain", "n_forget"):
            n = getattr(self, name)
            if not isinstance(n, int) or round(n * self.test_fraction) < 1 or round(n * self.test_fraction) >= n:
                raise ConfigError(f"{name}={n!r} leaves an empty train or test split at "
                                  f"test_fraction={self.test_fraction}")
        if self.beta_grid is not None:
            validate_beta_grid(self.beta_grid)
        if self.betas is not None:
            for number, betas in self.betas.items():
                validate_beta_grid({m: [b] for m, b in betas.items()})
                if set(betas) != set(METHODS):
                    raise ConfigError(f"betas for experiment {number} must name {', '.join(METHODS)}, got {betas}")

    def candidate_betas(self, number: int) -> dict[str, list[float]]:
        """The β values to run per method: the grid's where it names the method, else the paper's (or the
        overridden) β."""
        betas = (self.betas or {}).get(number, PAPER_BETAS[number])
        grid = self.beta_grid or {}
        return {m: list(grid[m]) if m in grid else [float(betas[m])] for m in METHODS}


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------------------------------- β grid
def validate_beta_grid(grid: dict[str, list[float]]) -> None:
    if not isinstance(grid, dict) or not grid:
        raise ConfigError("the β grid is empty")
    unknown = set(grid) - set(METHODS)
    if unknown:
        raise ConfigError(f"unknown method(s) {sorted(unknown)} in the β grid; choose from {', '.join(METHODS)}")
    for method, values in grid.items():
        if not values:
            raise ConfigError(f"the β grid has no values for {method}")
        for v in values:
            if not _finite(v) or v <= 0:
                raise ConfigError(f"β must be a positive number, got {v!r} for {method}")
        if len(set(values)) != len(values):
            raise ConfigError(f"β values repeat for {method}: {values}")


def parse_beta_grid(text: str | None) -> dict[str, list[float]] | None:
    """``--beta-grid``: None → paper β; ``default`` → :data:`DEFAULT_BETA_GRID`; ``0.1,0.2,1`` → the same values
    for both methods; ``npo=0.1,0.2;simnpo=2,4`` → per method (a method left out keeps the paper's β)."""
    if text is None:
        return None
    text = text.strip()
    if text in ("", "default"):
        return {m: list(v) for m, v in DEFAULT_BETA_GRID.items()}
    if "=" in text:
        grid: dict[str, list[float]] = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            name, sep, values = part.partition("=")
            if not sep:
                raise ConfigError(f"bad --beta-grid part {part!r}: expected METHOD=V1,V2,...")
            name = name.strip().lower()
            if name in grid:
                raise ConfigError(f"--beta-grid names {name} twice")
            grid[name] = _parse_floats(values)
    else:
        values = _parse_floats(text)
        grid = {m: list(values) for m in METHODS}
    validate_beta_grid(grid)
    return grid


def _parse_floats(text: str) -> list[float]:
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        try:
            out.append(float(item))
        except ValueError:
            raise ConfigError(f"bad β value {item!r} in --beta-grid (expected numbers separated by commas)") from None
    if not out:
        raise ConfigError(f"no β values in {text!r}")
    return out


# --------------------------------------------------------------------------------------------------- data
@dataclass
class SequencePool:
    """Sequences of possibly different lengths, right-padded: ``states`` [N, Lmax], ``lengths`` [N]."""

    states: np.ndarray
    lengths: np.ndarray
    chain: np.ndarray  # index into CHAIN_NAMES

    @classmethod
    def from_chains(cls, data: dict[str, ChainData], names: Sequence[str], split: str = "train") -> SequencePool:
        arrays = [getattr(data[n], split) for n in names]
        width = max(a.shape[1] for a in arrays)
        states = np.zeros((sum(len(a) for a in arrays), width), dtype=np.int64)
        lengths = np.concatenate([np.full(len(a), a.shape[1]) for a in arrays])
        chain = np.concatenate([np.full(len(a), CHAIN_NAMES.index(n)) for a, n in zip(arrays, names, strict=True)])
        row = 0
        for a in arrays:
            states[row:row + len(a), :a.shape[1]] = a
            row += len(a)
        return cls(states, lengths, chain)

    def __len__(self) -> int:
        return len(self.states)

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, labels): labels are the states with ``IGNORE_INDEX`` on padding. Right padding under causal
        attention never changes a real position's prediction, so no attention mask is needed."""
        lengths = self.lengths[idx]
        width = int(lengths.max())
        input_ids = torch.from_numpy(self.states[idx, :width].copy())
        labels = input_ids.clone()
        labels[torch.arange(width)[None, :] >= torch.from_numpy(lengths)[:, None]] = IGNORE_INDEX
        return input_ids, labels


def epoch_orders(n: int, total: int, rng: np.random.Generator) -> np.ndarray:
    """``total`` indices into ``n`` items: concatenated seeded permutations (each item once per pass)."""
    passes = -(-total // n)
    return np.concatenate([rng.permutation(n) for _ in range(passes)])[:total]


# --------------------------------------------------------------------------------------------------- model
def build_model(cfg: MarkovStudyConfig, seed: int) -> torch.nn.Module:
    """GPT-2 with the 10 states as its vocabulary (App. H: 4 layers, 4 heads, 128 dims), initialised from ``seed``.

    No dropout (App. H does not mention any). ``gelu_pytorch_tanh`` is GPT-2's ``gelu_new`` as one fused kernel.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=N_STATES, n_positions=N_POSITIONS, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
                        n_head=cfg.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        activation_function="gelu_pytorch_tanh", bos_token_id=None, eos_token_id=None)
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=None if enabled else True, leave=False, dynamic_ncols=True)


def pretrain(model: torch.nn.Module, pool: SequencePool, cfg: MarkovStudyConfig, rng: np.random.Generator,
             desc: str = "pretrain") -> list[float]:
    """App. H "Model and pretraining": AdamW, token-mean cross entropy, batch 128, 5 epochs. Returns epoch losses."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.pretrain_lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-len(pool) // cfg.pretrain_batch_size)
    losses = []
    with _progress(cfg.pretrain_epochs * steps_per_epoch, desc, cfg.progress) as bar:
        for _ in range(cfg.pretrain_epochs):
            order = rng.permutation(len(pool))
            total, count = 0.0, 0
            for start in range(0, len(pool), cfg.pretrain_batch_size):
                input_ids, labels = pool.batch(order[start:start + cfg.pretrain_batch_size])
                loss = sequence_stats(model(input_ids=input_ids).logits, labels).token_mean()
                _check_finite(loss, desc)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total, count = total + loss.item(), count + 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
            losses.append(total / count)
    model.eval()
    return losses


def _check_finite(loss: torch.Tensor, what: str) -> None:
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"{what}: the loss became {loss.item()}; lower the learning rate or β")


def _cache_key(kind: str, chains: dict[str, tuple[int, int]], seed: int, cfg: MarkovStudyConfig) -> str:
    """Hash of everything a pretrained model depends on."""
    payload = {"version": CACHE_VERSION, "kind": kind, "chains": chains, "seed": seed, "epsilon": cfg.epsilon,
               "test_fraction": cfg.test_fraction,
               "model": [cfg.n_layer, cfg.n_head, cfg.n_embd, N_POSITIONS],
               "pretrain": [cfg.pretrain_epochs, cfg.pretrain_batch_size, cfg.pretrain_lr, cfg.weight_decay]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def pretrained_model(kind: str, data: dict[str, ChainData], names: Sequence[str], seed: int,
                     cfg: MarkovStudyConfig, cache_dir: Path | None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Pretrain (or load from the cache) a model on the train sequences of ``names``. ``kind`` names the model
    (``original`` / ``retrain``) and seeds its batch order; Retrain's key does not depend on the experiment, so
    both experiments of a seed share it."""
    chains = {n: (len(data[n].train) + len(data[n].test), int(data[n].train.shape[1])) for n in names}
    key = _cache_key(kind, chains, seed, cfg)
    model = build_model(cfg, seed)
    path = cache_dir / f"{kind}-seed{seed}-{key}.pt" if cache_dir is not None else None
    if path is not None and path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        model.eval()
        return model, {"cached": True, "path": str(path), "seconds": 0.0}
    start = time.perf_counter()
    rng = np.random.default_rng([seed, 1000 + ("original", "retrain").index(kind)])
    losses = pretrain(model, SequencePool.from_chains(data, names), cfg, rng, desc=f"pretrain {kind} seed {seed}")
    info = {"cached": False, "epoch_losses": losses, "seconds": round(time.perf_counter() - start, 2)}
    if path is not None:
        with atomic_path(path) as tmp:
            torch.save(model.state_dict(), tmp)
        info["path"] = str(path)
    return model, info


# --------------------------------------------------------------------------------------------------- metric
def per_position_transition_kl(logits: torch.Tensor, states: torch.Tensor, transition: torch.Tensor) -> torch.Tensor:
    """KL(T[s_t] ‖ q_t) for every position t = 0..L−2 (SPEC §8 metric) → [B, L−1].

    ``logits`` [B, L, V ≥ 10] are the model's outputs on ``states`` [B, L]; position t's logits predict s_{t+1}.
    q_t is renormalised over the 10 states (extra vocabulary entries, if any, are dropped). ``transition`` is the
    true chain's [10, 10] matrix; every entry is positive, so its log is finite.
    """
    log_q = F.log_softmax(logits[:, :-1, :N_STATES].float(), dim=-1)
    p = transition.to(log_q.dtype)[states[:, :-1]]
    return (p * (p.log() - log_q)).sum(-1)


class TransitionEvaluator:
    """Forget quality (Forget1, Forget2) and retain distance of a model: mean per-position transition KL on each
    set's test sequences, batched under ``torch.inference_mode``."""

    def __init__(self, sets: dict[str, tuple[np.ndarray, np.ndarray]], batch_size: int = 500):
        self.sets = {name: (torch.from_numpy(states), torch.from_numpy(transition))
                     for name, (states, transition) in sets.items()}
        self.batch_size = batch_size

    @classmethod
    def for_experiment(cls, data: dict[str, ChainData], max_sequences: int, seed: int,
                       batch_size: int = 500) -> TransitionEvaluator:
        """Each chain's test split (a seeded subset of ``max_sequences`` when > 0) against its own matrix."""
        sets = {}
        for i, name in enumerate(CHAIN_NAMES):
            test = data[name].test
            if 0 < max_sequences < len(test):
                keep = np.sort(np.random.default_rng([seed, 2000 + i]).choice(len(test), max_sequences, replace=False))
                test = test[keep]
            sets[name] = (test, data[name].chain.transition)
        return cls(sets, batch_size)

    def sizes(self) -> dict[str, list[int]]:
        return {name: list(states.shape) for name, (states, _) in self.sets.items()}

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        out = {}
        with torch.inference_mode():
            for name, (states, transition) in self.sets.items():
                total = 0.0
                for batch in states.split(self.batch_size):
                    total += per_position_transition_kl(model(input_ids=batch).logits, batch, transition).sum().item()
                out[name] = total / (states.shape[0] * (states.shape[1] - 1))
        model.train(was_training)
        return out


# --------------------------------------------------------------------------------------------------- unlearning
@torch.no_grad()
def reference_logp(model: torch.nn.Module, pool: SequencePool, batch_size: int = 500) -> torch.Tensor:
    """log π_ref(y|x) of every pool item under the original model, computed once (SPEC §1, NPO)."""
    model.eval()
    out = torch.empty(len(pool))
    for start in range(0, len(pool), batch_size):
        idx = np.arange(start, min(start + batch_size, len(pool)))
        input_ids, labels = pool.batch(idx)
        out[start:start + len(idx)] = sequence_stats(model(input_ids=input_ids).logits, labels).logp.float()
    return out


def forget_loss(method: str, stats: SequenceStats, ref_logp: torch.Tensor | None, beta: float) -> torch.Tensor:
    """NPO or SimNPO from :mod:`unlearn.objectives.forget` (SPEC §1; γ = 0)."""
    if method == "npo":
        if ref_logp is None:
            raise ValueError("NPO needs reference log-probs")
        return npo_loss(stats, ref_logp, beta)
    if method == "simnpo":
        return simnpo_loss(stats, beta)
    raise ConfigError(f"unknown unlearning method {method!r}; choose one of {', '.join(METHODS)}")


@dataclass
class UnlearnInputs:
    """What every unlearning run of one (experiment, seed) shares."""

    original: torch.nn.Module
    forget: SequencePool
    forget_order: np.ndarray  # [iterations · batch]
    ref_logp: torch.Tensor  # [len(forget)]
    retain: SequencePool
    retain_order: np.ndarray
    evaluate: Callable[[torch.nn.Module], dict[str, float]]
    initial: dict[str, float]  # metrics of the original model (iteration 0)


def unlearn(inputs: UnlearnInputs, method: str, beta: float, cfg: MarkovStudyConfig, seed: int,
            desc: str = "unlearn") -> dict[str, list[float]]:
    """App. H "Unlearning": ``cfg.iterations`` AdamW steps on ``cfg.unlearn_batch_size`` forget sequences (the same
    batches for every method of a seed), + ``retain_weight``·GD on as many retain sequences when > 0. Returns the
    trajectory: metric lists of length iterations + 1 (index 0 = the original model) and the loss per step."""
    model = copy.deepcopy(inputs.original)
    model.train()
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.unlearn_lr, weight_decay=cfg.weight_decay)
    traj: dict[str, list[float]] = {k: [inputs.initial[k]] for k in METRICS}
    traj["loss"] = []
    bs = cfg.unlearn_batch_size
    with _progress(cfg.iterations, desc, cfg.progress) as bar:
        for it in range(cfg.iterations):
            idx = inputs.forget_order[it * bs:(it + 1) * bs]
            input_ids, labels = inputs.forget.batch(idx)
            stats = sequence_stats(model(input_ids=input_ids).logits, labels)
            loss = forget_loss(method, stats, inputs.ref_logp[torch.from_numpy(idx)], beta)
            if cfg.retain_weight > 0:
                r_ids, r_labels = inputs.retain.batch(inputs.retain_order[it * bs:(it + 1) * bs])
                loss = loss + cfg.retain_weight * gd_loss(sequence_stats(model(input_ids=r_ids).logits, r_labels))
            _check_finite(loss, desc)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            traj["loss"].append(loss.item())
            for k, v in inputs.evaluate(model).items():
                traj[k].append(v)
            bar.update(1)
            bar.set_postfix(f1=f"{traj['forget1'][-1]:.3f}", f2=f"{traj['forget2'][-1]:.3f}",
                            ret=f"{traj['retain'][-1]:.3f}")
    return traj


# --------------------------------------------------------------------------------------------------- analysis
def first_crossing(xs: Sequence[float], ys: Sequence[float], level: float) -> float | None:
    """``ys`` linearly interpolated where ``xs`` first reaches ``level`` (xs[t−1] < level ≤ xs[t]); ``ys[0]`` if
    xs[0] ≥ level; None if never reached."""
    if xs[0] >= level:
        return float(ys[0])
    for t in range(1, len(xs)):
        if xs[t] >= level:
            frac = (level - xs[t - 1]) / (xs[t] - xs[t - 1])
            return float(ys[t - 1] + frac * (ys[t] - ys[t - 1]))
    return None


def forget_gap_at_matched_retain(trajs: dict[str, dict[str, list[float]]], retrain: dict[str, float],
                                 n_levels: int = 10) -> dict[str, dict[str, float]] | None:
    """Evenness (claim 2): at ``n_levels`` retain distances inside the range every method reaches, where each
    method first reaches that retain distance, the gap |Forget1 − Forget2| (raw KL) and the gap of the fractions
    of Retrain's forget quality |F1/F1_R − F2/F2_R|, averaged over the levels. Lower = more even."""
    start = max(t["retain"][0] for t in trajs.values())
    stop = min(max(t["retain"]) for t in trajs.values())
    if not stop > start:
        return None
    levels = np.linspace(start, stop, n_levels + 2)[1:-1]
    out = {}
    for method, t in trajs.items():
        raw, rel = [], []
        for level in levels:
            f1 = first_crossing(t["retain"], t["forget1"], level)
            f2 = first_crossing(t["retain"], t["forget2"], level)
            raw.append(abs(f1 - f2))
            rel.append(abs(f1 / retrain["forget1"] - f2 / retrain["forget2"]))
        out[method] = {"gap": float(np.mean(raw)), "relative_gap": float(np.mean(rel)),
                       "retain_range": [float(start), float(stop)]}
    return out


def seed_summary(traj: dict[str, list[float]], retrain: dict[str, float]) -> dict[str, Any]:
    """Per-seed numbers for one method: where it reaches Retrain's forget quality and how it splits its forgetting."""
    mean_fq = [(a + b) / 2 for a, b in zip(traj["forget1"], traj["forget2"], strict=True)]
    retrain_mean = (retrain["forget1"] + retrain["forget2"]) / 2
    split = {}
    for k in ("forget1", "forget2"):
        v = first_crossing(mean_fq, traj[k], retrain_mean)
        split[k] = None if v is None else v / retrain[k]
    return {
        "final": {k: traj[k][-1] for k in METRICS},
        "retain_at_retrain_forget1": first_crossing(traj["forget1"], traj["retain"], retrain["forget1"]),
        "retain_at_retrain_forget2": first_crossing(traj["forget2"], traj["retain"], retrain["forget2"]),
        "retain_at_retrain_mean_forget": first_crossing(mean_fq, traj["retain"], retrain_mean),
        "fraction_of_retrain_forget_at_retrain_mean_forget": split,
    }


def mean_std(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof = 1; 0 for one value) over the seeds where the value exists, and
    how many those are."""
    present = [v for v in values if v is not None]
    if not present:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(np.mean(present)), "std": float(np.std(present, ddof=min(1, len(present) - 1))),
            "n": len(present)}


def _aggregate(per_seed: list[dict[str, Any]]) -> Any:
    """Mean/std of a list of same-shaped nested dicts of numbers (None = missing for that seed)."""
    first = per_seed[0]
    if isinstance(first, dict):
        return {k: _aggregate([d[k] for d in per_seed]) for k in first}
    if isinstance(first, list):
        return _aggregate_lists(per_seed)
    return mean_std(per_seed)


def _aggregate_lists(per_seed: list[list[float]]) -> dict[str, list[float]]:
    arr = np.asarray(per_seed, dtype=float)
    return {"mean": arr.mean(0).tolist(), "std": arr.std(0, ddof=min(1, len(arr) - 1)).tolist()}


def select_beta(mean_trajs: dict[float, dict[str, list[float]]], retrain: dict[str, float]) -> tuple[float, list]:
    """The grid-search criterion (App. H: "optimize the tradeoff between forget quality and retain loss"), applied
    to the seed-mean trajectory of each β: the smallest retain distance at which the mean forget quality
    (Forget1 + Forget2)/2 first reaches Retrain's; β that never reach it within the iterations rank after, by
    their highest mean forget quality. Returns the chosen β and the ranking."""
    target = (retrain["forget1"] + retrain["forget2"]) / 2
    rows = []
    for beta, t in mean_trajs.items():
        mean_fq = [(a + b) / 2 for a, b in zip(t["forget1"], t["forget2"], strict=True)]
        rows.append({"beta": beta, "retain_at_retrain_mean_forget": first_crossing(mean_fq, t["retain"], target),
                     "max_mean_forget": max(mean_fq)})
    rows.sort(key=lambda r: (r["retain_at_retrain_mean_forget"] is None,
                             r["retain_at_retrain_mean_forget"] or 0.0, -r["max_mean_forget"]))
    return rows[0]["beta"], rows


# --------------------------------------------------------------------------------------------------- study
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
    forget = SequencePool.from_chains(data, ("forget1", "forget2"))
    retain = SequencePool.from_chains(data, ("retain",))
    total = cfg.iterations * cfg.unlearn_batch_size
    inputs = UnlearnInputs(
        original=original, forget=forget,
        forget_order=epoch_orders(len(forget), total, np.random.default_rng([seed, 3000])),
        ref_logp=reference_logp(original, forget, cfg.eval_batch_size), retain=retain,
        retain_order=epoch_orders(len(retain), total, np.random.default_rng([seed, 3001])),
        evaluate=evaluate, initial=evaluate(original))
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
    cfg.validate()
    _quiet_transformers()
    out = Path(cfg.output_dir)
    cache_dir = out / "models" if cfg.cache_models else None
    start = time.perf_counter()
    results: dict[str, Any] = {
        "study": "mixture of Markov chains (SPEC §8; SimNPO §5, App. H)",
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


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


# --------------------------------------------------------------------------------------------------- output
def _fmt(stat: dict[str, Any] | None, digits: int = 3) -> str:
    if stat is None or stat.get("mean") is None:
        return "never"
    text = f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return text


def format_summary(results: dict[str, Any]) -> str:
    """Markdown tables of the key numbers (mean ± std over seeds)."""
    lines = []
    for number, r in results["experiments"].items():
        n = len(r["seeds"])
        source = ", ".join(f"{METHOD_LABELS[m]} β from {src}" for m, src in r["beta_source"].items())
        lines += [f"### Experiment {number}: {r['description']} ({n} seed(s); {source})", "",
                  "| model | β | Forget1 quality | Forget2 quality | retain distance | "
                  "retain dist. when F1 reaches Retrain | retain dist. when F2 reaches Retrain | "
                  "F1−F2 gap at matched retain dist. |",
                  "|---|---|---|---|---|---|---|---|"]
        for name in ("original", "retrain"):
            s = r[name]
            lines.append(f"| {name.capitalize()} | | {_fmt(s['forget1'])} | {_fmt(s['forget2'])} | "
                         f"{_fmt(s['retain'])} | | | |")
        for m in METHODS:
            s, t = r["summary"][m], r["trajectories"][m]
            reach = [f"{_fmt(s[k])} ({s[k]['n']}/{n})"
                     for k in ("retain_at_retrain_forget1", "retain_at_retrain_forget2")]
            gap = s.get("gap_at_matched_retain")
            lines.append(f"| {t['label']} (iteration {len(t['forget1']['mean']) - 1}) | {t['beta']:g} | "
                         f"{_fmt(s['final']['forget1'])} | {_fmt(s['final']['forget2'])} | "
                         f"{_fmt(s['final']['retain'])} | {reach[0]} | {reach[1]} | "
                         f"{_fmt(gap['gap']) if gap else 'n/a'} |")
        if r.get("grid"):
            for m, g in r["grid"].items():
                ranking = ", ".join(f"β={row['beta']:g}: " + (f"{row['retain_at_retrain_mean_forget']:.3f}"
                                    if row["retain_at_retrain_mean_forget"] is not None
                                    else f"not reached (max {row['max_mean_forget']:.3f})") for row in g["ranking"])
                lines.append(f"\nGrid {METHOD_LABELS[m]}: selected β={g['selected']:g}; retain distance at "
                             f"Retrain's mean forget quality — {ranking}")
        lines.append(f"\nwall time {r['wall_time_s']} s (pretraining {r['timing']['pretrain_s']} s, "
                     f"unlearning + metrics {r['timing']['unlearn_s']} s)\n")
    return "\n".join(lines).rstrip()


COLORS = {"npo": "tab:blue", "simnpo": "tab:red"}


def plot_study(experiments: dict[str, dict[str, Any]], path: str | Path, log_x: bool = False) -> None:
    """The paper's Fig. 5: retain distance (x) vs forget quality (y) along the unlearning path, NPO vs SimNPO, one
    row per experiment, Forget1 and Forget2 panels; seed-mean path (thick; the per-iteration mean of both
    coordinates) and each seed (thin), the original model (iteration 0, ○) and Retrain (★ / ●, mean ± std over
    seeds, with its forget quality as a dotted line). ``log_x`` spreads out the early iterations, where the
    paths cross Retrain's forget quality."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(experiments)
    fig, axes = plt.subplots(rows, 2, figsize=(11, 4.4 * rows), squeeze=False)
    for row, (number, r) in enumerate(experiments.items()):
        for col, (key, marker) in enumerate((("forget1", "*"), ("forget2", "o"))):
            ax = axes[row][col]
            for m in METHODS:
                t = r["trajectories"][m]
                for run in t["per_seed"]:
                    ax.plot(run["retain"], run[key], color=COLORS[m], alpha=0.25, lw=0.8)
                ax.plot(t["retain"]["mean"], t[key]["mean"], color=COLORS[m], lw=2.2,
                        label=f"{t['label']} (β={t['beta']:g})")
                ax.plot(t["retain"]["mean"][-1], t[key]["mean"][-1], marker="s", color=COLORS[m], ms=6)
            o, rt = r["original"], r["retrain"]
            ax.plot(o["retain"]["mean"], o[key]["mean"], marker="o", mfc="white", mec="black", ms=8, ls="none",
                    label="original (iteration 0)")
            ax.errorbar(rt["retain"]["mean"], rt[key]["mean"], xerr=rt["retain"]["std"], yerr=rt[key]["std"],
                        marker=marker, color="black", ms=13 if marker == "*" else 8, ls="none", label="Retrain")
            ax.axhline(rt[key]["mean"], color="black", ls=":", lw=1)
            name = "Forget1" if key == "forget1" else f"Forget2 (length {r['lengths']['forget2']})"
            ax.set_title(f"Experiment {number}: {name}", fontsize=11)
            if log_x:
                ax.set_xscale("log")
            ax.set_xlabel("retain distance: KL on retain test data (lower = better)" + (", log scale" if log_x else ""))
            ax.set_ylabel(f"forget quality: KL on {name.split(' ')[0]} test data (higher = more forgotten)",
                          fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8.5, loc="best")
    n_seeds = len(next(iter(experiments.values()))["seeds"])
    fig.suptitle(f"Mixture of Markov chains (SPEC §8, SimNPO Fig. 5): unlearning paths, {n_seeds} seed(s) "
                 "(thick = mean, thin = each seed, ■ = last iteration)", fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)


# --------------------------------------------------------------------------------------------------- CLI
def config_from_args(args: Any) -> MarkovStudyConfig:
    """``unlearn study markov`` arguments → a validated config (errors before any compute)."""
    experiments = tuple(sorted(EXPERIMENTS)) if args.all else (args.experiment,)
    cfg = MarkovStudyConfig(experiments=experiments, seeds=args.seeds, iterations=args.iterations,
                            beta_grid=parse_beta_grid(args.beta_grid), retain_weight=args.retain_weight,
                            eval_sequences=args.eval_sequences, output_dir=args.output_dir)
    cfg.validate()
    return cfg


def run_from_cli(args: Any) -> int:
    cfg = config_from_args(args)
    results = run_markov_study(cfg)
    print(format_summary(results))
    print(f"results: {cfg.output_dir} (total wall time {results['wall_time_s']} s)")
    return 0


__all__ = [
    "DEFAULT_BETA_GRID", "PAPER_BETAS", "MarkovStudyConfig", "TransitionEvaluator", "build_model",
    "config_from_args", "first_crossing", "format_summary", "parse_beta_grid", "per_position_transition_kl",
    "plot_study", "run_experiment", "run_markov_study", "select_beta", "unlearn",
]
