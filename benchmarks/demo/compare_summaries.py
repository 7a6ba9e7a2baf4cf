"""Every number of two `unlearn demo` outputs' summary.json side by side: the largest differences first.

Usage:  python benchmarks/demo/compare_summaries.py RUN_A RUN_B [--top 6]

Timings are left out. Used to say how far a change that keeps the printed table moved the numbers underneath
(benchmarks/demo/NOTES.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def flatten(value: Any, key: str = "") -> dict[str, Any]:
    """``{"/rows[2]/model_utility_9": 0.37, …}``: every leaf under its path."""
    if isinstance(value, dict):
        return {k: v for name, item in value.items() for k, v in flatten(item, f"{key}/{name}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{key}[{i}]").items()}
    return {key: value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--top", type=int, default=6)
    args = parser.parse_args()
    a, b = (flatten(json.loads((run / "summary.json").read_text())) for run in (args.run_a, args.run_b))
    numbers = [k for k, v in a.items() if isinstance(v, float) and isinstance(b.get(k), float)
               and "time" not in k and "second" not in k]
    diffs = sorted(((abs(a[k] - b[k]), k) for k in numbers), reverse=True)
    print(f"{len(numbers)} numbers compared; {sum(d > 0 for d, _ in diffs)} differ")
    for d, k in diffs[:args.top]:
        print(f"{d:.2e}  {k}: {a[k]!r} → {b[k]!r}")
    for row in ("rows[0]", "rows[1]"):
        worst = max((d for d, k in diffs if f"/{row}/" in k), default=0.0)
        print(f"largest change in {row}: {worst:.1e}")


if __name__ == "__main__":
    main()
