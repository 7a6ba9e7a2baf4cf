"""The synthetic mixture of Markov chains of SimNPO §5 and App. H (docs/formulas.md#markov).

Ten states. The paper numbers them s = 1..10; here state s is token id ``s - 1`` (0..9) everywhere — in the
arrays this module returns, in the model's vocabulary and in the transition matrices. So the retain chain
lives on ids {0, 1, 2}, Forget1 on {3, 4, 5}, Forget2 on {6, 7, 8}, and id 9 (state 10) belongs to no chain.

Each chain (App. H, ε = 0.2):

- a row ``i`` inside the chain's subset puts (1 − ε)/3 on each subset state and ε/7 on each of the 7 others;
- a row outside the subset is uniform, 0.1 on every state;
- the initial distribution equals an in-subset row.

Experiments (App. H "Choice of hyperparameters"): 10,000 retain and 5,000 each Forget1 / Forget2 sequences,
split 80/20 into train/test. Experiment 1: retain and Forget1 of length 20, Forget2 of length 5, all three
pretrained on. Experiment 2: all of length 20, Forget2 left out of pretraining.

Sampling is deterministic for a seed: each chain draws from its own ``numpy`` generator seeded by
``(seed, chain index)``, so the retain data of a seed are the same in both experiments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearn.errors import ConfigError

N_STATES = 10
EPSILON = 0.2
CHAIN_NAMES = ("retain", "forget1", "forget2")
# The paper's 1-based states of each chain's designated subset (App. H); token id = state − 1.
PAPER_SUBSETS: dict[str, tuple[int, ...]] = {"retain": (1, 2, 3), "forget1": (4, 5, 6), "forget2": (7, 8, 9)}
N_SEQUENCES = {"retain": 10_000, "forget1": 5_000, "forget2": 5_000}
TEST_FRACTION = 0.2


def state_to_token(state: int) -> int:
    """The paper's state s ∈ {1..10} → token id s − 1."""
    if not 1 <= state <= N_STATES:
        raise ValueError(f"states are 1..{N_STATES}, got {state}")
    return state - 1


def in_subset_row(subset: tuple[int, ...], epsilon: float = EPSILON) -> np.ndarray:
    """(1 − ε)/|subset| on each subset state, ε/(10 − |subset|) on every other state (App. H: π_r, π_f1, π_f2)."""
    ids = [state_to_token(s) for s in subset]
    row = np.full(N_STATES, epsilon / (N_STATES - len(ids)))
    row[ids] = (1.0 - epsilon) / len(ids)
    return row


def transition_matrix(subset: tuple[int, ...], epsilon: float = EPSILON) -> np.ndarray:
    """T[i] = the in-subset row for i in the subset, the uniform row 0.1·1 otherwise (App. H)."""
    matrix = np.full((N_STATES, N_STATES), 1.0 / N_STATES)
    row = in_subset_row(subset, epsilon)
    for state in subset:
        matrix[state_to_token(state)] = row
    return matrix


@dataclass(frozen=True)
class MarkovChain:
    """One chain of the mixture: its name, initial distribution π [10] and transition matrix T [10, 10]."""

    name: str
    initial: np.ndarray
    transition: np.ndarray

    def sample(self, n: int, length: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` sequences of ``length`` states (token ids, int64 [n, length]), vectorised over sequences."""
        if n < 0 or length < 1:
            raise ValueError(f"need n >= 0 and length >= 1, got n={n}, length={length}")
        out = np.empty((n, length), dtype=np.int64)
        out[:, 0] = _draw(np.broadcast_to(self.initial, (n, N_STATES)), rng)
        for t in range(1, length):
            out[:, t] = _draw(self.transition[out[:, t - 1]], rng)
        return out


def _draw(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of ``probs`` [n, K] by inverting the row CDF with a uniform."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cdf[:, -1:]
    return np.minimum((u >= cdf).sum(axis=1), probs.shape[1] - 1)


def make_chain(name: str, epsilon: float = EPSILON) -> MarkovChain:
    """The retain, Forget1 or Forget2 chain (App. H)."""
    if name not in PAPER_SUBSETS:
        raise ConfigError(f"unknown chain {name!r}; choose one of {', '.join(CHAIN_NAMES)}")
    subset = PAPER_SUBSETS[name]
    return MarkovChain(name, in_subset_row(subset, epsilon), transition_matrix(subset, epsilon))


def make_chains(epsilon: float = EPSILON) -> dict[str, MarkovChain]:
    return {name: make_chain(name, epsilon) for name in CHAIN_NAMES}


@dataclass(frozen=True)
class ExperimentSetup:
    """Sequence length per chain and which chains the original model is pretrained on (App. H)."""

    number: int
    lengths: dict[str, int]
    pretrain_chains: tuple[str, ...]
    description: str


EXPERIMENTS: dict[int, ExperimentSetup] = {
    1: ExperimentSetup(1, {"retain": 20, "forget1": 20, "forget2": 5}, ("retain", "forget1", "forget2"),
                       "short vs long forget data: Forget2 sequences of length 5, all chains pretrained"),
    2: ExperimentSetup(2, {"retain": 20, "forget1": 20, "forget2": 20}, ("retain", "forget1"),
                       "strongly vs weakly memorized forget data: Forget2 left out of pretraining"),
}


def experiment_setup(number: int) -> ExperimentSetup:
    if number not in EXPERIMENTS:
        raise ConfigError(f"unknown Markov experiment {number!r}; choose one of {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[number]


def train_test_split(sequences: np.ndarray, test_fraction: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random permutation; the last ``round(n·test_fraction)`` rows go to test (App. H: 80/20)."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = round(len(sequences) * test_fraction)
    if n_test < 1 or n_test >= len(sequences):
        raise ConfigError(f"{len(sequences)} sequences cannot be split {1 - test_fraction:.0%}/{test_fraction:.0%} "
                          "with at least one sequence on each side")
    order = rng.permutation(len(sequences))
    return sequences[order[n_test:]], sequences[order[:n_test]]


@dataclass(frozen=True)
class ChainData:
    """Train and test sequences of one chain (token ids, int64 [n, length])."""

    chain: MarkovChain
    train: np.ndarray
    test: np.ndarray


def generate_chain_data(chain: MarkovChain, chain_index: int, n: int, length: int, seed: int,
                        test_fraction: float = TEST_FRACTION) -> ChainData:
    """Sample ``n`` sequences with the generator seeded by ``(seed, chain_index)`` and split them."""
    rng = np.random.default_rng([seed, chain_index])
    train, test = train_test_split(chain.sample(n, length, rng), test_fraction, rng)
    return ChainData(chain, train, test)


def generate_experiment_data(number: int, seed: int, n_sequences: dict[str, int] | None = None,
                             test_fraction: float = TEST_FRACTION,
                             epsilon: float = EPSILON) -> dict[str, ChainData]:
    """All three chains' train/test data for experiment ``number`` (App. H), deterministic for ``seed``."""
    setup = experiment_setup(number)
    counts = {**N_SEQUENCES, **(n_sequences or {})}
    chains = make_chains(epsilon)
    return {name: generate_chain_data(chains[name], i, counts[name], setup.lengths[name], seed, test_fraction)
            for i, name in enumerate(CHAIN_NAMES)}
