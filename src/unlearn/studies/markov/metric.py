"""The study's metric (SimNPO App. H "Evaluation"): per-position KL between a chain's true transition row and the
model's next-state distribution.

For a test sequence s_1..s_L of chain c and every position t = 1..L−1, the model's next-state distribution q_t =
softmax over the 10 states of the logits at position t (it has seen s_1..s_t) is compared with the chain's true row
T_c[s_t]: KL(T_c[s_t] ‖ q_t). A set's value is the mean over all (sequence, position) pairs — the first state's
prediction is not scored because the model never predicts it. "Forget quality" = this KL on Forget1 / Forget2 test
data (higher = forgotten more); "retain distance" = this KL on retain test data against the retain chain (lower =
better).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from unlearn.data.markov import CHAIN_NAMES, N_STATES, ChainData


def per_position_transition_kl(logits: torch.Tensor, states: torch.Tensor, transition: torch.Tensor) -> torch.Tensor:
    """KL(T[s_t] ‖ q_t) for every position t = 0..L−2 (docs/formulas.md#markov) → [B, L−1].

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


