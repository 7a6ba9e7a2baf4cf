"""What recording a model's identity costs: sha256 of its weight files (unlearn.provenance.weights_sha256) against
loading the same weights into memory with safetensors (as a model's parameters), both measured in this one run on
a synthetic file of --gib GiB; and the cached second look (weights.sha256.json) that the next stage of a pipeline
pays instead.

Usage:  python benchmarks/provenance/hash_speed.py [--gib 1.0] [--record]

With --record, appends the measured row to benchmarks/provenance/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from unlearn import provenance as prov

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0, help="size of the synthetic weights file (GiB)")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    n = int(args.gib * 2**30 / 2)  # bf16: two bytes a parameter
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        model.mkdir()
        save_file({"w": torch.zeros(n, dtype=torch.bfloat16)}, model / "model.safetensors")
        size = (model / "model.safetensors").stat().st_size
        load_file(model / "model.safetensors")  # the page cache warm for both, as after a run saved the model
        t = time.perf_counter()
        prov.weights_sha256(model, cache=True)
        hashed = time.perf_counter() - t
        prov._memo.clear()  # the process memo aside: only the file cache answers
        t = time.perf_counter()
        prov.weights_sha256(model, cache=True)
        cached = time.perf_counter() - t
        t = time.perf_counter()
        weights = {k: v.clone() for k, v in load_file(model / "model.safetensors").items()}  # copied in, as a model's
        loaded = time.perf_counter() - t  # parameters are (safetensors alone maps the file lazily)
        del weights
    gb = size / 1e9
    line = (f"| {time.strftime('%Y-%m-%d')} | {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
            f"| {gb:.2f} GB | {hashed:.2f} s ({gb / hashed:.2f} GB/s) | {cached * 1e3:.1f} ms | {loaded:.2f} s "
            f"| {hashed / loaded:.2f} | {14 / (gb / hashed):.0f} s |")
    print("| date | machine | file | sha256 (first time) | cached | safetensors load | hash / load | 7B bf16 "
          "(14 GB) at this rate |")
    print("|---|---|---|---|---|---|---|---|")
    print(line)
    if args.record:
        with (HERE / "RESULTS.md").open("a", encoding="utf-8") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
