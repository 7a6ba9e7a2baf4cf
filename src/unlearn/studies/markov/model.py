"""The study's model (SimNPO App. H "Model and pretraining"): a small GPT-2 over the 10 states, pretrained with the
toolkit's training loop, and cached on disk keyed by everything it depends on."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator

from unlearn.data.markov import CHAIN_NAMES, N_STATES, ChainData
from unlearn.data.parts import sequence_part_data
from unlearn.io import atomic_path
from unlearn.studies.markov.config import MarkovStudyConfig
from unlearn.train.loop import LoopSettings, train_loop
from unlearn.train.steps import FinetuneStep

N_POSITIONS = 32  # GPT-2 position table; longer than every sequence of the study (20)
CACHE_VERSION = 1
PAD = 0  # right padding under causal attention never changes a real position's prediction


def chain_sequences(data: dict[str, ChainData], names: Sequence[str], split: str = "train") -> list[np.ndarray]:
    """The ``split`` sequences of the chains ``names``, in that order (one int array per sequence)."""
    return [row for n in names for row in getattr(data[n], split)]


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


def study_loop_settings(cfg: MarkovStudyConfig, *, lr: float, batch_size: int, epochs: int,
                        max_steps: int | None, desc: str) -> LoopSettings:
    """App. H's optimisation: AdamW with weight decay on every parameter, a constant learning rate, no clipping."""
    return LoopSettings(epochs=epochs, max_steps=max_steps, lr=lr, weight_decay=cfg.weight_decay,
                        batch_size=batch_size, grad_accum=1, warmup_epochs=0.0, max_grad_norm=None,
                        schedule="constant", decay="all", progress=cfg.progress, desc=desc)


def pretrain(model: torch.nn.Module, sequences: Sequence[np.ndarray], cfg: MarkovStudyConfig,
             rng: np.random.Generator, desc: str = "pretrain") -> list[float]:
    """App. H "Model and pretraining": token-mean cross entropy, batch 128, 5 epochs, each epoch in a fresh seeded
    permutation. Returns the mean loss per epoch."""
    data = sequence_part_data(sequences, PAD, N_POSITIONS, feed_attention_mask=False)
    n, bs = len(sequences), cfg.pretrain_batch_size
    orders = [rng.permutation(n) for _ in range(cfg.pretrain_epochs)]
    per_epoch = -(-n // bs)

    def plan(epoch: int) -> list[list[list[int]]]:
        return [[orders[epoch][i:i + bs].tolist()] for i in range(0, n, bs)]

    losses: list[float] = []

    def record(step: int, logs: dict[str, float], _model: torch.nn.Module) -> None:
        losses.append(logs["loss"])

    settings = study_loop_settings(cfg, lr=cfg.pretrain_lr, batch_size=bs, epochs=cfg.pretrain_epochs,
                                   max_steps=None, desc=desc)
    train_loop(model, FinetuneStep(data, torch.device("cpu")), n, settings, None, Accelerator(cpu=True), plan=plan,
               on_step_end=record)
    return [sum(losses[e * per_epoch:(e + 1) * per_epoch]) / per_epoch for e in range(cfg.pretrain_epochs)]


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
    losses = pretrain(model, chain_sequences(data, names), cfg, rng, desc=f"pretrain {kind} seed {seed}")
    info = {"cached": False, "epoch_losses": losses, "seconds": round(time.perf_counter() - start, 2)}
    if path is not None:
        with atomic_path(path) as tmp:
            torch.save(model.state_dict(), tmp)
        info["path"] = str(path)
    return model, info


__all__ = ["CHAIN_NAMES", "N_POSITIONS", "build_model", "chain_sequences", "pretrain", "pretrained_model"]
