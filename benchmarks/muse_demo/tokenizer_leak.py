"""Does the MUSE demo's tokenizer tell members from non-members? Characters per token of the forget and holdout
articles under tokenizers trained three ways, and the AUC with which that ratio alone separates the two sets.

Usage:  python benchmarks/muse_demo/tokenizer_leak.py [--seeds 0 1 2]

The demo's data (20 forget / 20 retain / 20 holdout articles, 1024 merges, spaces as tokens of their own). Rows:
- ``target text`` — the forget and retain corpora with their KnowMem QA: the rule before 2026-12-02;
- ``+ holdout`` — the same plus the holdout articles;
- ``own corpus`` — ``tokenizer/corpus.txt``, articles of no set (what the demo trains on now).
An AUC near 0.5 means the tokenizer gives a membership attack nothing. No model is involved; seconds on a CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from unlearn.evaluation import mia
from unlearn.models.tiny import train_tokenizer
from unlearn.tasks.muse.embedded import generate_news_benchmark, news_training_texts


def rows(seed: int, root: Path) -> list[tuple[str, float, float, float]]:
    data = generate_news_benchmark(root / f"seed{seed}", n_forget=20, n_retain=20, n_holdout=20, seed=seed)
    forget, holdout = (json.loads((data / "privleak" / f"{n}.json").read_text()) for n in ("forget", "holdout"))
    raw = {n: (data / "raw" / f"{n}.txt").read_text() for n in ("forget", "retain2", "holdout")}
    qa = [f"Question: {r['question']}\nAnswer: {r['answer']}" for n in ("forget_qa", "forget_qa_icl", "retain_qa",
                                                                          "retain_qa_icl")
          for r in json.loads((data / "knowmem" / f"{n}.json").read_text())]
    corpora = {"target text": [raw["forget"], raw["retain2"], *qa],
               "+ holdout": [raw["forget"], raw["retain2"], raw["holdout"], *qa],
               "own corpus": news_training_texts(data)}
    out = []
    for name, texts in corpora.items():
        tok = train_tokenizer(texts, 1024, separate_spaces=True)
        f, h = ([len(t) / len(tok(t, add_special_tokens=False)["input_ids"]) for t in s] for s in (forget, holdout))
        out.append((name, sum(f) / len(f), sum(h) / len(h), mia.auc(f, h)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    print("| seed | tokenizer trained on | chars/token forget | chars/token holdout | AUC forget vs holdout |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for name, f, h, auc in rows(seed, Path(tmp)):
                print(f"| {seed} | {name} | {f:.3f} | {h:.3f} | {auc:.3f} |")


if __name__ == "__main__":
    main()
