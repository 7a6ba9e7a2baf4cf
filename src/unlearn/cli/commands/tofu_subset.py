"""`unlearn tofu-subset`: write a smaller TOFU (first N authors, the last K of them forgotten) for CPU-sized runs."""

from __future__ import annotations

import argparse

NAME = "tofu-subset"
HELP = "write a smaller TOFU (first N authors, the last K of them forgotten) for CPU-sized runs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="a TOFU release directory (full.json, retain_perturbed.json, ...)")
    p.add_argument("out_dir")
    p.add_argument("--authors", type=int, default=20, help="authors kept (at most 20: paraphrases exist for those)")
    p.add_argument("--forget-authors", type=int, default=2, help="last authors that form the forget split")


def run(args: argparse.Namespace) -> int:
    from unlearn.tasks.tofu.subset import make_subset

    out, forget = make_subset(args.src, args.out_dir, args.authors, args.forget_authors)
    print(f"wrote a {args.authors}-author TOFU subset to {out}; forget split: {forget}")
    return 0
