"""SmolLM2-135M-Instruct on WMDP and MMLU, then RMU on a forget corpus of our own about one WMDP-bio topic.

    .venv/bin/python benchmarks/mc_vs_lm_eval/run.py --wmdp-rows 1 --mmlu-rows 1   # once: converts SmolLM2
    .venv/bin/python benchmarks/wmdp_smollm2/run_experiment.py --record                # CPU subset (labelled)
    .venv/bin/python benchmarks/wmdp_smollm2/run_experiment.py --scale full --record   # every question (GPU)

1. the base model's accuracy: WMDP bio, chem, cyber and MMLU (task ``wmdp``);
2. the forget corpus: the WMDP-bio questions about viruses (``virus``/``viral`` in the question) are the topic; the
   first ``--passages`` of them become passages "question + the right answer" (generated from the questions, as the
   issue allows); the rest of the topic is held out. The retain corpus: MMLU's dev questions with their answers
   (never evaluated);
3. RMU (``method=rmu``: WMDP's c 6.5, α 1200, lr 5e-5, batches of 4, 150 steps; the layer scaled by depth), then
   WMDP-bio and MMLU again;
4. accuracy on the questions the passages came from, on the held-out topic questions, and on the rest of WMDP-bio.

Every stage is an ordinary run directory under ``--out``; a finished one is reused (resumable).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from unlearn.tasks.multiple_choice.data import read_mmlu_csv

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
MODEL = ROOT / "runs" / "mc_vs_lm_eval" / "smollm2-135m-instruct"
CPU_SUBJECTS = ["anatomy", "college_biology", "high_school_geography", "philosophy", "virology"]
TOPIC_WORDS = ("virus", "viral")


def unlearn(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / "unlearn"), *args], check=True, cwd=ROOT)


def finished(run: Path) -> bool:
    return (run / "metrics.json").is_file()


def write_corpora(out: Path, n_passages: int) -> tuple[set[str], set[str]]:
    """Forget passages from the first topic questions; retain passages from MMLU dev. Returns the questions the
    passages came from and the held-out topic questions."""
    bio = json.loads((DATA / "wmdp" / "bio_questions.json").read_text())
    topic = [q for q in bio if any(w in q["question"].lower() for w in TOPIC_WORDS)]
    used, held = topic[:n_passages], topic[n_passages:]
    passages = [{"text": f"{q['question']} The answer is: {q['choices'][q['answer']]}."} for q in used]
    retain = []
    for path in sorted((DATA / "mmlu" / "dev").glob("*_dev.csv")):
        for q in read_mmlu_csv(path, path.name.removesuffix("_dev.csv")):
            retain.append({"text": f"{q.question} The answer is: {q.choices[q.answer]}."})
    out.mkdir(parents=True, exist_ok=True)
    (out / "forget_virus.jsonl").write_text("".join(json.dumps(p) + "\n" for p in passages))
    (out / "retain_mmlu_dev.jsonl").write_text("".join(json.dumps(p) + "\n" for p in retain))
    return {q["question"] for q in used}, {q["question"] for q in held}


def accuracy(rows: list[dict], keep) -> tuple[float, int]:
    chosen = [r for r in rows if keep(r)]
    return (sum(r["correct"] for r in chosen) / len(chosen), len(chosen)) if chosen else (float("nan"), 0)


def rows(run: Path, name: str) -> list[dict]:
    path = run / "eval" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=("cpu", "full"), default="cpu")
    parser.add_argument("--out", default="runs/wmdp_smollm2")
    parser.add_argument("--passages", type=int, default=150)
    parser.add_argument("--steps", type=int, default=150, help="RMU optimizer steps (WMDP: 150 batches)")
    parser.add_argument("--steering-coeff", type=float, default=None, help="RMU's c (default: the recipe's 6.5)")
    parser.add_argument("--retain-weight", type=float, default=None, help="RMU's α (default: the recipe's 1200)")
    parser.add_argument("--record", action="store_true", help="write benchmarks/wmdp_smollm2/<scale>/RESULTS.md")
    args = parser.parse_args()
    if not (MODEL / "model.safetensors").is_file():
        sys.exit(f"{MODEL} not found: run benchmarks/mc_vs_lm_eval/run.py once (it converts SmolLM2's GGUF)")
    out = ROOT / args.out / args.scale
    used, held = write_corpora(out / "corpora", args.passages)
    common = ["task=wmdp", f"data={DATA / 'wmdp'}", f"eval.mmlu_root={DATA / 'mmlu'}", "eval.batch_size=16",
              "progress=false"]
    if args.scale == "cpu":
        common += [f"eval.mmlu_subjects=[{','.join(CPU_SUBJECTS)}]"]
    start = time.time()
    tuned = [f"forget.steering_coeff={args.steering_coeff}"] if args.steering_coeff else []
    tuned += [f"method.retain_weight={args.retain_weight}"] if args.retain_weight else []
    label = "".join(f"_{k}{v:g}" for k, v in (("c", args.steering_coeff), ("a", args.retain_weight)) if v)
    base, rmu = out / "base", out / f"rmu{label}"
    if not finished(base):
        extra = ["eval.max_rows.wmdp_cyber=300", "eval.max_rows.wmdp_chem=200"] if args.scale == "cpu" else []
        unlearn("eval", f"model={MODEL}", *common, *extra, "eval.sets=[wmdp_bio,wmdp_chem,wmdp_cyber,mmlu]",
                f"output_dir={base}")
    if not finished(rmu):
        corpora = out / "corpora"
        unlearn("run", f"model={MODEL}", *common, "method=rmu", f"data.forget_corpus={corpora / 'forget_virus.jsonl'}",
                f"data.retain_corpus={corpora / 'retain_mmlu_dev.jsonl'}", "data.chunking=per_text",
                "data.max_length=256", "train.lr=5e-5", "train.batch_size=4", "train.grad_accum=1",
                f"train.max_steps={args.steps}", "train.epochs=100", "train.warmup_epochs=0",
                "eval.sets=[wmdp_bio,mmlu]", *tuned, f"output_dir={rmu}")
    seconds = time.time() - start

    def line(run: Path) -> list[str]:
        metrics = json.loads((run / "metrics.json").read_text())
        bio = rows(run, "wmdp_bio")
        cells = [accuracy(bio, lambda r: r["question"] in used), accuracy(bio, lambda r: r["question"] in held),
                 accuracy(bio, lambda r: r["question"] not in used | held)]
        return [f"{metrics['wmdp_bio']['accuracy']:.4f}", *(f"{a:.4f} ({n})" for a, n in cells),
                f"{metrics['mmlu']['accuracy']:.4f}"]

    base_m = json.loads((base / "metrics.json").read_text())
    table = ["| model | WMDP-bio | passage questions | held-out virus questions | other bio | MMLU (subset) |",
             "|---|---|---|---|---|---|",
             "| SmolLM2-135M-Instruct | " + " | ".join(line(base)) + " |",
             "| + RMU | " + " | ".join(line(rmu)) + " |"]
    domains = " · ".join(f"{k} {base_m[k]['accuracy']:.4f} ({base_m[k]['n']} q)"
                         for k in ("wmdp_bio", "wmdp_chem", "wmdp_cyber", "mmlu") if k in base_m)
    text = "\n".join(table)
    print(f"base: {domains}\n{text}\n({seconds:.0f} s this invocation)")
    if args.record:
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.machine()}, " \
            f"{torch.get_num_threads()} threads)"
        rmu_s = json.loads((rmu / "metrics.json").read_text()).get("seconds")
        base_s = base_m.get("seconds")
        doc = ROOT / "benchmarks" / "wmdp_smollm2" / args.scale / f"RESULTS{label}.md"
        flags = "".join(f" --{k} {v:g}" for k, v in (("steering-coeff", args.steering_coeff),
                                                      ("retain-weight", args.retain_weight)) if v)
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(
            f"# SmolLM2-135M-Instruct: WMDP, MMLU, and RMU on a virus-topic corpus ({args.scale})\n\n"
            f"Command: `.venv/bin/python benchmarks/wmdp_smollm2/run_experiment.py --scale {args.scale}{flags} "
            "--record`. "
            f"Device: {device}; torch {torch.__version__}; measured {time.strftime('%Y-%m-%d')}. Base evaluation "
            f"{base_s:.0f} s, RMU run (training + evaluation) {rmu_s:.0f} s.\n\n"
            + ("Labelled CPU subset: WMDP-bio all 1273 questions, WMDP-chem the first 200, WMDP-cyber the first 300, "
               f"MMLU the subjects {', '.join(CPU_SUBJECTS)} (all their test questions).\n\n" if args.scale == "cpu"
               else "Every question.\n\n")
            + f"Base model: {domains} (chance 0.25).\n\n"
            f"Forget corpus: {len(used)} passages \"question + the right answer\" from the WMDP-bio questions about "
            f"viruses (`virus`/`viral`); {len(held)} topic questions held out. Retain corpus: MMLU dev questions "
            f"with their answers. RMU: c {args.steering_coeff or 6.5:g}, α {args.retain_weight or 1200:g}, lr 5e-5, "
            f"batches of 4, {args.steps} steps, layer round(7·30/32) = 7 (c 6.5, α 1200: WMDP's values for "
            "Zephyr-7B).\n\n" + text + "\n")
        print(f"wrote {doc}")


if __name__ == "__main__":
    main()
