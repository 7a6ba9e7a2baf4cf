"""TOFU evaluation of one set: our evaluator (batched likelihoods with each question's prompt encoded once, left-padded
batched generation) against the one-sample-at-a-time loop a script would write (one forward pass per answer,
paraphrase and perturbed answer; one `generate` call per question). Both compute the same numbers: the script checks
that every loss agrees within 1e-4 and reports how many greedy generations are identical, then prints samples/s and
the ratio measured in this one run (the speed issue's target: ≥ 3× on CPU).

Usage:  python benchmarks/speed/eval_vs_loop.py [--model tiny|smollm2|PATH] [--rows N] [--batch-size B] [--record]

Models: `tiny` = the embedded demo's target (`runs/demo-bench/target/model`, from `python benchmarks/demo_time.py`),
`smollm2` = SmolLM2-135M-Instruct as converted by `benchmarks/mc_vs_lm_eval/run.py` (or `SMOLLM2_PATH`). The set
is the demo's forget10 evaluation set (its first N rows). With --record, appends a row to benchmarks/speed/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from demo_time import machine  # noqa: E402

MODELS = {"tiny": "runs/demo-bench/target/model",
          "smollm2": os.environ.get("SMOLLM2_PATH", "runs/mc_vs_lm_eval/smollm2-135m-instruct")}


@torch.no_grad()
def per_sample_loop(model, formatter, records, max_length: int) -> tuple[list[float], list[str]]:
    """The straightforward loop: every sequence alone, every question generated alone."""
    from unlearn.objectives.sequence import sequence_stats

    losses, generations = [], []
    for r in records:
        for answer in (r.answer, r.paraphrased_answer, *r.perturbed_answers):
            (sample,) = formatter.encode_pairs([(r.question, answer)])
            ids = torch.tensor([sample.input_ids], device=model.device)
            stats = sequence_stats(model(input_ids=ids).logits, torch.tensor([sample.labels], device=model.device))
            losses.append(float(stats.nll_sum[0]))
        prompt = torch.tensor([formatter.encode_prompts([r.question])[0]], device=model.device)
        out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                             max_new_tokens=max_length - prompt.shape[1], eos_token_id=formatter.eos_id,
                             pad_token_id=formatter.pad_id, temperature=None, top_p=None, top_k=None)
        generations.append(formatter.tokenizer.decode(out[0, prompt.shape[1]:], skip_special_tokens=True).strip())
    return losses, generations


def measure_eval(model_name: str, data: str, rows: int, batch_size: int, max_length: int,
                 device_name: str = "cpu") -> dict:
    """Our evaluator and the per-sample loop on the same questions: samples/s of each, the largest loss difference
    and the number of identical generations."""
    from unlearn.data.formatting import ChatFormatter
    from unlearn.evaluation.generation import GenerationSettings
    from unlearn.models.loading import load_model_and_tokenizer
    from unlearn.tasks.tofu.data import EVAL_FIELDS, TofuData
    from unlearn.tasks.tofu.evaluate import EvalSet, EvalSettings, TofuEvaluator
    from unlearn.tasks.tofu.sets import FORGET

    path = MODELS.get(model_name, model_name)
    model, tokenizer = load_model_and_tokenizer(path)
    device = torch.device(device_name)
    model.to(device).eval()
    formatter = ChatFormatter(tokenizer, "qa" if model_name == "tiny" else "chat_template")
    records = TofuData(data).split("forget10_perturbed", EVAL_FIELDS)[:rows]
    settings = EvalSettings(batch_size=batch_size, generate=True, progress=False, bootstrap=0,
                            generation=GenerationSettings(max_length=max_length), embedding_model="none",
                            nli_model="none")
    evaluator = TofuEvaluator(formatter, {"forget": EvalSet("forget", FORGET, tuple(records))}, settings)
    evaluator.rows(model, device, generate=True)  # warm-up (allocator, kernels), not timed

    start = time.perf_counter()
    out_rows = evaluator.rows(model, device, generate=True)["forget"]
    ours = time.perf_counter() - start
    start = time.perf_counter()
    losses, generations = per_sample_loop(model, formatter, records, max_length)
    loop = time.perf_counter() - start

    ours_losses = [v for r in out_rows for v in (r["gt_loss"] * r["gt_tokens"], r["paraphrased_loss"] *
                                                 r["paraphrased_tokens"],
                                                 *[a * b for a, b in zip(r["perturbed_loss"], r["perturbed_tokens"],
                                                                         strict=True)])]
    worst = float(np.max(np.abs(np.array(ours_losses) - np.array(losses))))
    same = sum(r["generation"] == g for r, g in zip(out_rows, generations, strict=True))
    return {"model": model_name, "questions": len(records), "batch": batch_size, "ours_qps": len(records) / ours,
            "loop_qps": len(records) / loop, "ratio": loop / ours, "max_loss_diff": worst, "same_generation": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--data", default="runs/demo-bench/data")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=96, help="generation length, prompt included (the demo's)")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    r = measure_eval(args.model, args.data, args.rows, args.batch_size, args.max_length)
    line = (f"| {time.strftime('%Y-%m-%d')} | {machine()} | {args.model} | {r['questions']} | {args.batch_size} | "
            f"{r['ours_qps']:.2f} | {r['loop_qps']:.2f} | **{r['ratio']:.2f}×** | {r['max_loss_diff']:.1e} | "
            f"{r['same_generation']}/{r['questions']} |")
    print("| date | device | model | questions | batch | ours q/s | loop q/s | ratio | max Δ loss | same generation |")
    print(line)
    if r["max_loss_diff"] > 1e-4:
        raise SystemExit(f"the two paths disagree: max loss difference {r['max_loss_diff']:.2e}")
    if args.record:
        results = HERE / "RESULTS.md"
        if not results.exists():
            results.write_text(RESULTS_HEAD)
        with results.open("a") as f:
            f.write(line + "\n")


RESULTS_HEAD = """# Speed

## TOFU evaluation of one set: ours vs a one-sample-at-a-time loop

`python benchmarks/speed/eval_vs_loop.py --model MODEL --record`: both paths evaluate the same questions (answer,
paraphrase and the perturbed answers' likelihoods, and a greedy generation each); the script checks that every
summed NLL agrees within 1e-4 and counts identical generations (batched generation with left padding can differ from
one-at-a-time generation by float rounding where two tokens are nearly tied). The issue's target: ≥ 3× on CPU,
≥ 10× on GPU.

| date | device | model | questions | batch | ours q/s | loop q/s | ratio | max Δ loss | same generation |
|---|---|---|---|---|---|---|---|---|---|
"""


if __name__ == "__main__":
    main()
