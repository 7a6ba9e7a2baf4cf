"""Two side checks behind design choices of the speed work, each timed in one process on SmolLM2-135M-Instruct.

Usage:  python benchmarks/speed/side_checks.py stacking [--methods dpo+gd,npo+gd] [--steps 4]
        python benchmarks/speed/side_checks.py prompts [--rows 30] [--batch-size 16]

- ``stacking``: forward + backward of the unlearning step with a step's parts always stacked into one batch against
  always forwarded apart (``STACK_PADDING_SLACK`` forced either way), on the speed benchmark's synthetic batch
  (batch 4, lengths 64–128), alternating per step after one warm-up step of each: the reason for the padding rule
  in ``unlearn.train.steps``.
- ``prompts``: the TOFU likelihood pass over the demo's forget10 rows (answer, paraphrase, perturbed answers) with
  each question's prompt encoded once (``shared_prompt_sequence_nll``) against the length-sorted plain pass
  (``batched_sequence_nll``), two alternating rounds, and the largest difference of the summed NLLs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from demo_time import machine  # noqa: E402


def stacking(methods: list[str], steps: int, batch: int = 4, max_len: int = 128) -> None:
    from step_vs_baseline import load, synthetic_parts

    from unlearn.objectives.methods import build_method
    from unlearn.train import steps as step_module
    from unlearn.train.reference import cached_reference_logp
    from unlearn.train.steps import UnlearnStep

    cpu = torch.device("cpu")
    model = load("smollm2", cpu)
    model.train()
    for name in methods:
        parts = synthetic_parts(model.config.vocab_size, batch * (steps + 1), max_len, seed=0)
        method = build_method(name)
        method.prepare(model, 0)
        step = UnlearnStep(method, parts, cpu, cached_reference_logp(model, parts, method.cached_reference_parts,
                                                                     batch, cpu), fast=True)
        seconds = {"stacked": 0.0, "apart": 0.0}
        for k in range(steps + 1):
            idx = list(range(k * batch, (k + 1) * batch))
            for how, slack in (("stacked", float("inf")), ("apart", -1.0)):
                step_module.STACK_PADDING_SLACK = slack
                start = time.perf_counter()
                loss, _ = step(model, idx)
                loss.backward()
                model.zero_grad(set_to_none=True)
                if k:  # step 0 warms up
                    seconds[how] += time.perf_counter() - start
        print(f"| {name} | {steps} | {seconds['stacked']:.2f} | {seconds['apart']:.2f} | "
              f"{seconds['stacked'] / seconds['apart']:.3f} |", flush=True)


def prompts(rows: int, batch_size: int) -> None:
    from eval_vs_loop import MODELS

    from unlearn.data.formatting import ChatFormatter
    from unlearn.evaluation.likelihood import batched_sequence_nll, shared_prompt_sequence_nll
    from unlearn.models.loading import load_model_and_tokenizer
    from unlearn.tasks.tofu.data import EVAL_FIELDS, TofuData

    model, tokenizer = load_model_and_tokenizer(MODELS["smollm2"])
    model.eval()
    formatter = ChatFormatter(tokenizer, "chat_template")
    records = TofuData("runs/demo-bench/data").split("forget10_perturbed", EVAL_FIELDS)[:rows]
    encoded = formatter.encode_pairs([(r.question, a) for r in records
                                      for a in (r.answer, r.paraphrased_answer, *r.perturbed_answers)])
    cpu = torch.device("cpu")
    paths = {"plain": batched_sequence_nll, "shared prompt": shared_prompt_sequence_nll}
    for fn in paths.values():  # warm-up
        fn(model, encoded[:2 * batch_size], formatter.pad_id, batch_size, cpu)
    seconds, out = dict.fromkeys(paths, 0.0), {}
    for _ in range(2):
        for name, fn in paths.items():
            start = time.perf_counter()
            out[name] = fn(model, encoded, formatter.pad_id, batch_size, cpu)[0]
            seconds[name] += time.perf_counter() - start
    prompt = np.mean([e.prompt_length for e in encoded])
    length = np.mean([len(e.input_ids) for e in encoded])
    print(f"| {len(records)} | {len(encoded)} | {prompt:.1f} of {length:.1f} | {seconds['plain']:.1f} | "
          f"{seconds['shared prompt']:.1f} | {seconds['plain'] / seconds['shared prompt']:.2f}× | "
          f"{float(np.abs(out['plain'] - out['shared prompt']).max()):.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=("stacking", "prompts"))
    parser.add_argument("--methods", default="dpo+gd,npo+gd")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rows", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    print(f"{machine()}, {time.strftime('%Y-%m-%d')}")
    if args.check == "stacking":
        print("| method | timed steps | stacked s | apart s | stacked ÷ apart |\n|---|---|---|---|---|")
        stacking(args.methods.split(","), args.steps)
    else:
        print("| questions | sequences | prompt tokens of all | plain s | shared s | speed-up | max Δ summed NLL |\n"
              "|---|---|---|---|---|---|---|")
        prompts(args.rows, args.batch_size)


if __name__ == "__main__":
    main()
