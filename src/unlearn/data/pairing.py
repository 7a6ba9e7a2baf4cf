"""Forget ↔ retain ↔ IDK-template pairing (docs/formulas.md#pairing).

Forget item i gets retain item ``(i + r_i) mod |retain|`` and IDK template ``k_i``, both drawn from a generator
seeded by (seed, i). The pairing is therefore fixed across epochs, independent of batch order, and the
same IDK template is shared by the forget side (IDK/DPO targets) and the retain side (AP).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearn.errors import DataError


@dataclass(frozen=True)
class Pairing:
    retain_index: tuple[int, ...]
    idk_index: tuple[int, ...]


def pair_forget_items(n_forget: int, n_retain: int, n_idk: int, seed: int) -> Pairing:
    if n_forget <= 0:
        raise DataError("the forget set is empty: nothing to unlearn")
    if n_retain <= 0 or n_idk <= 0:
        raise DataError(f"cannot pair {n_forget} forget items with {n_retain} retain items / {n_idk} IDK templates")
    retain_index, idk_index = [], []
    for i in range(n_forget):
        rng = np.random.default_rng([seed, i])
        r_i = int(rng.integers(n_retain))
        retain_index.append((i + r_i) % n_retain)
        idk_index.append(int(rng.integers(n_idk)))
    return Pairing(tuple(retain_index), tuple(idk_index))
