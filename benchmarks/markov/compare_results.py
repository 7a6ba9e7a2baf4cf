"""Compare two Markov-study results files number by number (e.g. a rerun against the committed results.json).

Usage:  python benchmarks/markov/compare_results.py benchmarks/markov/results.json runs/markov/results.json

Prints, per experiment, method and metric, the largest absolute difference between the two runs' per-seed
trajectories (0 = bit-identical), and the same for Retrain and the original model. Timing, paths and the config
block are not compared. Exit status 0 when every number is identical.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

METRICS = ("forget1", "forget2", "retain", "loss")


def max_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def compare(first: dict, second: dict) -> float:
    worst = 0.0
    for number, x in first["experiments"].items():
        y = second["experiments"][number]
        for who in ("retrain", "original"):
            d = max(max_diff([s[k] for s in x[who]["per_seed"]], [s[k] for s in y[who]["per_seed"]])
                    for k in METRICS[:3])
            print(f"experiment {number} {who:8s} max |Δ| {d:.3g}")
            worst = max(worst, d)
        for method in ("npo", "simnpo"):
            a, b = x["trajectories"][method]["per_seed"], y["trajectories"][method]["per_seed"]
            for k in METRICS:
                d = max_diff([s[k] for s in a], [s[k] for s in b])
                print(f"experiment {number} {method:8s} {k:8s} max |Δ| {d:.3g}")
                worst = max(worst, d)
    return worst


def main(argv: list[str]) -> int:
    first, second = (json.loads(Path(p).read_text()) for p in argv[:2])
    worst = compare(first, second)
    print("bit-identical" if worst == 0 else f"largest difference {worst:.3g}")
    return 0 if worst == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
