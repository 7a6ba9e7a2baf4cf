"""Every speed comparison of the speed issue side by side, in one run, with the ratios printed.

Usage:  python benchmarks/speed/run.py [--device cpu|cuda] [--record]

- The training step (step_vs_baseline.py): ours against the field framework's step for NPO+GD, SimNPO+GD, DPO+GD,
  ME+GD and GA+KL — tokens/s, peak memory, and on a GPU MFU.
- TOFU evaluation of one set (eval_vs_loop.py): ours against a one-sample-at-a-time loop — samples/s.

On CPU: the demo's tiny model (`runs/demo-bench`, from `python benchmarks/demo_time.py`) and SmolLM2-135M-Instruct
(`runs/mc_vs_lm_eval/`, from `benchmarks/mc_vs_lm_eval/run.py`) at small batch, and NPO+GD on SmolLM2 at the GPU
rows' batch (32 × 256) with gradient checkpointing in both paths (peak memory where the logits matter; one step). On
CUDA: SmolLM2-135M-Instruct and a random-init Llama-3.2-1B config at batch 32 × 256 tokens, bf16. Each row is
measured in rounds, ours and the baseline alternating (each measurement a fresh process), so that a drift of the
machine's speed falls on both: the speed-up is the ratio of the rounds' summed tokens/s, with the rounds' own ratios
as its spread. The targets are checked and printed; with --record the tables are appended to RESULTS.md with the
command, device and date.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from demo_time import machine  # noqa: E402
from eval_vs_loop import measure_eval  # noqa: E402
from step_vs_baseline import METHODS, measure  # noqa: E402


@dataclass(frozen=True)
class StepRow:
    """One row of the step table: a model at a batch shape, ``steps`` timed optimizer steps per measurement, ``rounds``
    measurements of each path alternating."""

    model: str
    batch: int
    tokens: int
    steps: int
    rounds: int = 2
    methods: tuple[str, ...] = METHODS
    checkpointing: bool = False


PLANS = {
    "cpu": {"step": [StepRow("tiny", 8, 64, 10), StepRow("smollm2", 4, 128, 3),
                     StepRow("smollm2", 32, 256, 1, rounds=1, methods=("npo+gd",), checkpointing=True)],
            "eval": [("tiny", 100, 16, 96), ("smollm2", 30, 16, 160)]},
    "cuda": {"step": [StepRow("smollm2", 32, 256, 10), StepRow("llama1b", 32, 256, 10)],
             "eval": [("tiny", 400, 64, 96), ("smollm2", 100, 64, 160)]},
}
"""device → step rows and evaluation rows (model, questions, batch, length)."""
TARGETS = {("cpu", "smollm2", "npo+gd"): 1.3, ("cpu", "smollm2", "dpo+gd"): 1.3, ("cuda", "smollm2", "npo+gd"): 2.5,
           ("cuda", "llama1b", "npo+gd"): 1.6}
"""Step tokens/s ratio targets of the issue; peak memory NPO+GD ≤ 0.6× everywhere; evaluation ≥ 3× CPU, ≥ 10× GPU."""


def _gb(n: float) -> str:
    return f"{n / 2**30:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=sorted(PLANS))
    parser.add_argument("--data", default="runs/demo-bench/data")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    plan, started = PLANS[args.device], time.perf_counter()
    checks: list[tuple[str, bool]] = []
    gpu = args.device == "cuda"
    step_lines = ["| model | method | batch × tokens | ours tok/s | baseline tok/s | **speed-up** | ours peak GB | "
                  "baseline peak GB | **memory ratio** |" + (" ours MFU | baseline MFU |" if gpu else ""),
                  "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if gpu else "")]
    raw: dict = {"step": [], "eval": []}
    for row in plan["step"]:
        shape = f"{row.batch} × ≤{row.tokens}" + (", grad. ckpt." if row.checkpointing else "")
        for method in row.methods:
            ours, base, ratios = measure_rounds(row, method, args.device)
            raw["step"].append({"ours": ours, "baseline": base, "round_ratios": ratios})
            speed, memory = ours["tokens_per_s"] / base["tokens_per_s"], ours["peak_bytes"] / base["peak_bytes"]
            spread = f" ({min(ratios):.2f}–{max(ratios):.2f})" if len(ratios) > 1 else ""
            line = (f"| {row.model} | {method} | {shape} | {ours['tokens_per_s']:.0f} | "
                    f"{base['tokens_per_s']:.0f} | **{speed:.2f}×**{spread} | {_gb(ours['peak_bytes'])} | "
                    f"{_gb(base['peak_bytes'])} | **{memory:.2f}×** |")
            if gpu:
                line += f" {ours['mfu']:.1%} | {base['mfu']:.1%} |"
            step_lines.append(line)
            print(line, flush=True)
            target = None if row.checkpointing else TARGETS.get((args.device, row.model, method))
            where = f"{row.model} {shape} ({args.device})"
            if target is not None:
                checks.append((f"{method} step on {where}: {speed:.2f}× ≥ {target}×", speed >= target))
            if method == "npo+gd":
                checks.append((f"npo+gd peak memory on {where}: {memory:.2f}× ≤ 0.6×", memory <= 0.6))
                if gpu and row.model == "llama1b":
                    checks.append((f"npo+gd MFU on llama1b: {ours['mfu']:.1%} ≥ 40 %", ours["mfu"] >= 0.4))
    eval_lines = ["| model | questions | batch | ours q/s | loop q/s | **speed-up** | max Δ loss | same generation |",
                  "|---|---|---|---|---|---|---|---|"]
    for model, rows, batch, length in plan["eval"]:
        r = measure_eval(model, args.data, rows, batch, length, args.device)
        raw["eval"].append(r)
        line = (f"| {model} | {r['questions']} | {batch} | {r['ours_qps']:.2f} | {r['loop_qps']:.2f} | "
                f"**{r['ratio']:.2f}×** | {r['max_loss_diff']:.1e} | {r['same_generation']}/{r['questions']} |")
        eval_lines.append(line)
        print(line, flush=True)
        target = 3.0 if args.device == "cpu" else 10.0
        checks.append((f"evaluation on {model} ({args.device}): {r['ratio']:.2f}× ≥ {target}×", r["ratio"] >= target))
    seconds = time.perf_counter() - started
    device = machine() if args.device == "cpu" else f"CUDA {_cuda_name()}; {machine()}"
    text = [f"## {time.strftime('%Y-%m-%d')} — {args.device}", "",
            f"Command: `python benchmarks/speed/run.py --device {args.device}{' --record' * args.record}`. Device: "
            f"{device}. Wall time {seconds:.0f} s.", "", "### Training step: ours vs the field framework's step", "",
            *step_lines, "", "### TOFU evaluation of one set: ours vs one sample at a time", "", *eval_lines, "",
            "Targets:", "", *[f"- [{'x' if ok else ' '}] {what}" for what, ok in checks], ""]
    print("\n".join(text))
    if args.record:
        with (HERE / "RESULTS.md").open("a") as f:
            f.write("\n" + "\n".join(text))
        (HERE / f"results-{args.device}.json").write_text(json.dumps(raw, indent=1))


def measure_rounds(row: StepRow, method: str, device: str) -> tuple[dict, dict, list[float]]:
    """Both paths ``row.rounds`` times, alternating which goes first; each path's measurements combined (summed
    seconds and tokens, largest peak), and the speed-up of each round."""
    runs: dict[str, list[dict]] = {"ours": [], "baseline": []}
    for k in range(row.rounds):
        for path in ("ours", "baseline") if k % 2 == 0 else ("baseline", "ours"):
            runs[path].append(measure(row.model, method, path, row.batch, row.tokens, row.steps, device,
                                      row.checkpointing))
    ratios = [o["tokens_per_s"] / b["tokens_per_s"] for o, b in zip(runs["ours"], runs["baseline"], strict=True)]
    combined = {}
    for path, measured in runs.items():
        seconds = sum(m["seconds"] for m in measured)
        tokens = sum(m["tokens_per_s"] * m["seconds"] for m in measured)
        combined[path] = {**measured[0], "seconds": seconds, "tokens_per_s": tokens / seconds,
                          "peak_bytes": max(m["peak_bytes"] for m in measured), "rounds": measured}
        if "mfu" in measured[0]:
            combined[path]["mfu"] = measured[0]["mfu"] * combined[path]["tokens_per_s"] / measured[0]["tokens_per_s"]
    return combined["ours"], combined["baseline"], ratios


def _cuda_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


if __name__ == "__main__":
    main()
