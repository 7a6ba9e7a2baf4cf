"""Count refusal-style generations ("I'm not sure", "I don't know", …) per run in a recorded scale directory.

Usage: .venv/bin/python benchmarks/tofu_smollm2/count_refusals.py [benchmarks/tofu_smollm2/cpu20]

Reads the ``forget_generations.jsonl`` / ``retain_generations.jsonl`` that ``run_experiment.py --record`` wrote.
A crude surface check (a regular expression, not a metric of the papers): it shows whether a targeted method refuses
only on the forget questions or on the retain questions too (closer-look §4's motivation for AP).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REFUSAL = re.compile(r"not sure|not aware|don't know|do not know|no information|unable to|I have no", re.IGNORECASE)


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "cpu20")
    print("| run | forget refusals | retain refusals |\n|---|---|---|")
    for run in sorted((root / "runs").iterdir()):
        counts = []
        for rows in ("forget", "retain"):
            path = run / f"{rows}_generations.jsonl"
            lines = [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []
            counts.append(f"{sum(bool(REFUSAL.search(r['generation'] or '')) for r in lines)} / {len(lines)}")
        print(f"| {run.name} | {counts[0]} | {counts[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
